/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The QEMU command line of a VM: a pure function of the VM config, the
 * host's capabilities and the runtime paths. No I/O, no globals, no
 * logging; golden-tested (tests/unit/test-qemu-argv.c).
 *
 * What the daemon must prepare before spawning (not checked here):
 *   - qmp_fd / serial_fd / vhost_vsock_fd open, without O_CLOEXEC, so QEMU
 *     inherits them;
 *   - a client already connected to serial_fd (QEMU waits for one: wait=on);
 *   - for hybrid vsock, vhost-device-vsock listening on vhost_user_vsock_socket;
 *   - for netN with bridge=, a tap device "zvm<vmid>i<N>" owned by the user
 *     QEMU runs as and enslaved to the bridge (with the VLAN tag): QEMU only
 *     opens it (script=no), so it needs no CAP_NET_ADMIN;
 *   - the per-VM writable layer (upper_image) as an ext4 image labelled
 *     "zvm-upper".
 */

#include <stdbool.h>
#include <stdint.h>

#include "vm-config.h"

/* Translation cache of TCG, MiB: an eighth of the guest's memory, between
 * QEMU_TCG_TB_MIN_MIB and QEMU_TCG_TB_MAX_MIB. QEMU 7.2 reserves 1 GiB per VM
 * by default (VmSize 1.76 GB for a 256 MiB guest). The cache is touched as
 * code is translated and not given back when it is flushed, so its size is
 * what it costs: booting the kernel alone fills ~38 MB. bench/density, idle
 * tiny VMs (128 MiB): PSS 102.6 MB with 64 MiB, 80.0 with 16, 71.5 with 8,
 * with no slower start → READY at 16; a full cache is flushed and refilled,
 * which costs time, not correctness. Bigger guests run bigger programs
 * (llama-server's vector kernels) and get a bigger cache. */
#define QEMU_TCG_TB_MIN_MIB 16U
#define QEMU_TCG_TB_MAX_MIB 256U

/* virtio-mmio transports of "-M microvm". QEMU >= 6.0 has 24 when ACPI is on
 * (the default; zvm needs it for fw_cfg) because the second IO-APIC
 * ("ioapic2", default on with ACPI) serves them; 8 with acpi=off or
 * ioapic2=off. Measured here with QEMU 7.2: the 25th device is refused
 * ("No 'virtio-bus' bus found"), 23 virtio-mmio devices bind in the guest. */
#define QEMU_MICROVM_MMIO_TRANSPORTS 24U

typedef struct HostCaps {
        const char *qemu_binary;        /* "qemu-system-x86_64" */
        unsigned qemu_version;          /* major*10000 + minor*100 + micro, e.g. 70222 or 100002 */
        bool kvm_usable;                /* probed: KVM can really boot a guest here */
        bool vhost_vsock;               /* /dev/vhost-vsock usable → kernel vsock; else hybrid (vhost-device-vsock) */
        uint64_t tsc_khz;               /* host TSC kHz, 0 unknown */
        const char *qboot_rom;          /* "/usr/share/qemu/qboot.rom" */
        const char *kernel, *initrd;    /* host defaults */
        unsigned mmio_transports;       /* 0: by qemu_version: QEMU_MICROVM_MMIO_TRANSPORTS, 8 before 6.0 */
        unsigned tcg_tb_mib;            /* TCG translation cache, MiB; 0: by the guest's memory, see QEMU_TCG_TB_MIN_MIB */
} HostCaps;

/* Descriptors zvmd opened for QEMU (daemon/core/vm-sandbox.c): QEMU, which
 * runs as the VM's own uid, then needs no access to the paths. A disk's
 * fds go in with -add-fd into its own fdset and the drive names
 * /dev/fdset/N: QEMU dups the fd of the set whose access mode matches each
 * open. A writable disk needs two: QEMU 7.2 reopens it O_RDONLY while no
 * device writes to it yet (raw_reconfigure_getfd), then O_RDWR; libvirt
 * passes both too. fd < 0: open by path. */
typedef struct VmDiskFd {
        int fd;                         /* O_RDONLY for a read-only disk, else O_RDWR */
        int ro_fd;                      /* writable disks: the same file O_RDONLY; else -1 */
} VmDiskFd;

typedef struct VmFds {
        VmDiskFd root, upper, model;
        VmDiskFd disks[VM_DISKS_MAX];
        int taps[VM_NETS_MAX];          /* bridged NICs: /dev/net/tun attached to the tap (tap,fd=), or -1 */
} VmFds;

typedef struct VmPaths {
        const char *run_dir;            /* <run>/vms/<vmid> (not used by the builder: every path is explicit) */
        const char *qmp_socket;         /* path, used if qmp_fd < 0 */
        int qmp_fd;                     /* pre-opened LISTENING unix socket inherited by QEMU, or -1 */
        const char *serial_socket;      /* path, used if serial_fd < 0 (server, nowait) */
        int serial_fd;                  /* pre-opened LISTENING unix socket for the serial console, inherited
                                         * by QEMU, which waits for its first client (zvmd, daemon/console.h)
                                         * before the guest runs; or -1 */
        const char *vhost_user_vsock_socket; /* hybrid: vhost-device-vsock --socket path */
        int vhost_vsock_fd;             /* kernel vsock: opened /dev/vhost-vsock fd, or -1 */
        /* The first user NIC goes to passt over this socket (QEMU's end of a
         * socketpair, -netdev stream); other user NICs, and all without
         * passt, get slirp with restrict=on: isolated, never the host's
         * loopback. */
        bool passt;
        int passt_fd;
        const char *template_image;     /* resolved image of rootfs_template (NULL if rootfs_path) */
        const char *upper_image;        /* per-VM writable layer image (NULL if rootfs_path; NULL with a
                                         * template: the upper layer is a tmpfs, lost at power-off) */
        const char *model_image;        /* the store's image of the config's model (NULL if none) */
        const char *pidfile;            /* optional */
        const char *agent_secret;       /* file with the agent's secret, handed over by fw_cfg; NULL: none */
        const char *kernel, *initrd;    /* instead of the config's or the host's (/proc/self/fd/N); NULL: theirs */
        const VmFds *fds;               /* NULL: every disk by path */
} VmPaths;

/* auto → kvm if usable, else tcg. Returns the accelerator, or -EOPNOTSUPP
 * (accel=kvm where KVM is not usable) with the reason in *ret_error
 * (optional), or -ENOMEM. */
VmAccel qemu_effective_accel(const VmConfig *c, const HostCaps *h, char **ret_error);

/* Builds the argv (a strv, argv[0] = h->qemu_binary). Returns 0, or
 *   -EOPNOTSUPP  accel=kvm without usable KVM
 *   -E2BIG       more virtio-mmio devices than microvm has transports
 *   -EINVAL      missing input (no kernel, no template image, ...)
 *   -ENOMEM
 * with a reason in *ret_error (optional) for all but -ENOMEM. */
int qemu_argv_build(const VmConfig *c, const HostCaps *h, const VmPaths *p, char ***ret_argv, char **ret_error);

/* The guest's name of the model disk ("/dev/vdc"), as passed in
 * zvm.models=, or NULL if the VM has none. Virtio-blk disks are named in
 * the order of their -device options (verified for virtio-mmio under ACPI
 * and for PCIe): the root (and the writable layer) come first, then the
 * model disk, then virtio-blk diskN. Returns 0 or -ENOMEM. */
int qemu_model_device(const VmConfig *c, const VmPaths *p, char **ret);
