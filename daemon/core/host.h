/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

#include "paths.h"
#include "qemu-argv.h"

/* What zvmd learns about its host once, at start. */
typedef struct Host {
        HostCaps caps;
        char *qemu_path;
        char *qemu_version;             /* "7.2.22" */
        char *accel_reason;             /* why KVM is or is not used */
        char *vsock_helper;             /* vhost-device-vsock binary, NULL if missing */
        char *passt;                    /* passt for user NICs (ZVM_USER_NET=passt), else NULL: slirp restrict=on */
        unsigned cpus;
        uint64_t memory_mib;
} Host;

/* Probes QEMU, KVM (by booting the shared kernel under KVM with a short
 * bound, cached in <cache>/accel-probe.json), vsock and the TSC. Honours
 * ZVM_QEMU and ZVM_ACCEL (kvm|tcg: skip the probe). */
int host_probe(Host *h, const Paths *p);
void host_done(Host *h);
int host_to_json(const Host *h, const Paths *p, json_object **ret);
