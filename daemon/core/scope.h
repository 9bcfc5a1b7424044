/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A VM's processes in a transient systemd scope under zvm.slice, asked for
 * over D-Bus without waiting for the answer. */

#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#define SCOPE_PIDS_MAX 4U

/* The unit's resource limits; 0: not set. */
typedef struct ScopeLimits {
        uint64_t memory_max;            /* MemoryMax=, bytes */
        uint64_t tasks_max;             /* TasksMax= */
} ScopeLimits;

/* StartTransientUnit(unit, "fail", [PIDs, Slice, Description, CollectMode,
 * MemoryMax, TasksMax], []) for the pids that are real (> 0): systemd reads
 * a PID of 0 as "the caller", which would move zvmd itself into the VM's
 * scope. -EINVAL if no pid is left. limits may be NULL. */
int scope_message_new(sd_bus *bus, const char *unit, const char *slice, const char *description, const pid_t *pids,
                      size_t n_pids, const ScopeLimits *limits, sd_bus_message **ret);

/* Sends it; cb gets systemd's reply (or the bus's error) from the event
 * loop the bus is attached to. The slot is floating: it lives until the
 * reply. */
int scope_start_async(sd_bus *bus, const char *unit, const char *slice, const char *description, const pid_t *pids,
                      size_t n_pids, const ScopeLimits *limits, sd_bus_message_handler_t cb, void *userdata);
