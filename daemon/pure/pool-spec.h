/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The warm pool's setting (zvmd --pool, $ZVM_POOL; core/pool.h runs it):
 * how many booted, unclaimed guests of one shape zvmd keeps ready, and the
 * config each of them boots with. Pure.
 *
 *   off
 *   size=N[,template=NAME][,memory=MIB][,cores=N]
 *
 * template, memory and cores default to a new VM's defaults (tiny, 256,
 * 1), so that a VM created without those keys is served by the pool.
 */

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

#define POOL_SIZE_MAX 64U      /* pool-spec.c's message says so too */
/* A pool guest's slot is a VMID above every VM's (core/vm-sandbox.c refuses
 * a VMID from here on to VMs): its run dir, data dir and uid are the slot's
 * until a VM claims the guest. The top 1024 ids below the end of the VMs'
 * uid range (0x71000000 + 251527168). */
#define POOL_VMID_BASE 251526144U
#define POOL_VMID_END (POOL_VMID_BASE + 1024U)

typedef struct PoolSpec {
        unsigned size;                  /* 0: off */
        char template_name[64];
        uint64_t memory_mib;
        unsigned cores;
} PoolSpec;

/* -EINVAL with a message naming the bad part. */
int pool_spec_parse(const char *s, PoolSpec *ret, char **ret_error);
/* The config text of the pool guest in slot vmid, with vsock CID cid. The
 * text passes vm_config_from_file() for every spec pool_spec_parse() took. */
int pool_spec_config(const PoolSpec *s, uint32_t vmid, uint32_t cid, char **ret_text);
static inline bool pool_vmid(uint32_t vmid) {
        return vmid >= POOL_VMID_BASE && vmid < POOL_VMID_END;
}
