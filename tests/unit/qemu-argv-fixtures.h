/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The host and the paths of the common case (TCG host with hybrid vsock,
 * QMP by fd), shared by test-qemu-argv and tests/fuzz/fuzz-vm-config. */

#include "qemu-argv.h"

static const HostCaps host_tcg = {
        .qemu_binary = "qemu-system-x86_64",
        .qemu_version = 70222,
        .kvm_usable = false,
        .vhost_vsock = false,
        .tsc_khz = 2100000,
        .qboot_rom = "/usr/share/qemu/qboot.rom",
        .kernel = "/usr/lib/zvm/vmlinux",
        .initrd = "/usr/lib/zvm/initrd.img",
};

static const VmPaths paths_std = {
        .run_dir = "/run/zvm/vms/100",
        .qmp_socket = "/run/zvm/vms/100/qmp.sock",
        .qmp_fd = 3,
        .serial_fd = 5,
        .vhost_user_vsock_socket = "/run/zvm/vms/100/vhost-vsock.sock",
        .vhost_vsock_fd = -1,
        .template_image = "/var/lib/zvm/templates/tiny.img",
        .upper_image = "/var/lib/zvm/images/100/upper.img",
        .model_image = "/var/lib/zvm/models/images/5e1f.img",
        .pidfile = "/run/zvm/vms/100/qemu.pid",
        .agent_secret = "/run/zvm/vms/100/agent.secret",
};
