/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Where a VM's host memory goes, from /proc/PID/smaps: the proportional set
 * size (PSS, KiB) of its QEMU by kind of mapping. A leaf. */

#include <stdint.h>
#include <sys/types.h>

typedef struct MemoryUsage {
        uint64_t pss_kib;               /* all of it */
        uint64_t guest_ram_kib;         /* shared memory: the memfd guest RAM lives in (hybrid vsock) */
        uint64_t tcg_cache_kib;         /* the anonymous rwx mapping: TCG's translation cache */
        uint64_t files_kib;             /* file mappings: binaries, libraries (shared between VMs) */
        uint64_t private_kib;           /* the rest: QEMU's heap, stacks, device state (and guest RAM
                                         * when it is not in shared memory) */
} MemoryUsage;

/* Reads and adds up pid's mappings (bounded: /proc/PID/smaps of a QEMU has
 * a few hundred). -ESRCH when pid is gone. */
int memory_usage_read(pid_t pid, MemoryUsage *ret);
