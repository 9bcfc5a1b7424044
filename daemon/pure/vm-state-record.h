/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * <run>/vms/<vmid>/state.json, the intent record a restarted zvmd re-adopts
 * a VM from (core/vm-adopt.c): written before the helper and QEMU are
 * spawned, again as each pid appears and when a stop is asked. Kept apart
 * from Vm so that it can be parsed (and fuzzed) on its own: the file is
 * whatever a killed zvmd, a full disk or a hand edit left.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* zvmd writes ~250 bytes; anything much larger is not its record. */
#define VM_STATE_RECORD_MAX (4U * 1024U)

typedef struct VmStateRecord {
        int32_t pid;                    /* QEMU; 0: not spawned yet */
        uint64_t starttime;             /* clock ticks since boot, with pid = identity */
        int32_t helper_pid;             /* the network/vsock helper; 0: none */
        uint64_t helper_starttime;
        int32_t passt_pid;              /* passt, the user NIC's network; 0: none */
        uint64_t passt_starttime;
        bool kvm;                       /* accelerator: KVM, else TCG */
        uint64_t started_usec;          /* CLOCK_REALTIME */
        uint64_t balloon_target_mib;
        bool balloon_manual;            /* set by hand: automatic ballooning leaves it */
        bool starting;                  /* written before QEMU was spawned */
        bool stop_requested;
        /* The warm-pool slot (core/manager-pool.c) whose uid QEMU runs as:
         * a pool guest's own VMID, or the slot a VM's run came from; 0:
         * none (a cold start). */
        uint32_t pool_slot;
        /* The run is a claimed pool guest and the claim is complete. A
         * pool_slot of another VMID without it: the VM claimed the guest
         * and the claim may not be finished (the writable layer still in
         * the slot's data dir). */
        bool from_pool;
        /* A claimed guest that has not yet taken the VM's name and keys
         * (the agent's set-hostname, the VM's sshkeys). */
        bool naming;
} VmStateRecord;

/* The record as one JSON line; NULL on OOM. */
char *vm_state_record_format(const VmStateRecord *rec);

/* Parses a record: 0 and *ret filled (members absent or of the wrong type
 * are 0/false; a pid outside [1, INT32_MAX] is 0: never a process the
 * record did not name), -EBADMSG if the text is not a JSON object of at
 * most VM_STATE_RECORD_MAX bytes, -ENOMEM. format → parse is identity. */
int vm_state_record_parse(const char *text, size_t len, VmStateRecord *ret);
