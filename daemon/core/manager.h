/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The daemon's core state: one event loop, the VM registry, the template
 * builds. It knows no HTTP: what happens to a VM reaches the API layer
 * through the event handler that layer registers
 * (manager_set_event_handler()).
 */

#include <json-c/json.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "agent.h"
#include "autoballoon.h"
#include "host.h"
#include "macro.h"
#include "paths.h"
#include "policy.h"
#include "pool-spec.h"
#include "sync-worker.h"
#include "template.h"
#include "vm.h"

typedef struct Manager Manager;

typedef enum ManagerEvent {
        MANAGER_EVENT_STATE,            /* vm->state changed; previous is the old VmState, -1 for a new VM */
        MANAGER_EVENT_AGENT,            /* vm->agent_state changed */
} ManagerEvent;

typedef void (*manager_event_fn)(Manager *m, Vm *vm, ManagerEvent event, int previous, void *userdata);

struct Manager {
        sd_event *event;
        sd_bus *bus;                    /* system bus when systemd is PID 1, else NULL */
        SyncWorker *sync;               /* fsyncs off the loop (sync-worker.h) */
        Paths paths;
        Policy *policy;                 /* <etc>/zvm.conf's storage and network policy */
        Host host;
        int lock_fd;                    /* flock on <run>/zvmd.lock: one zvmd per root */
        Vm **vms;                       /* sorted by vmid */
        size_t n_vms;
        sd_event_source *watchdog;
        uint64_t watchdog_usec;
        /* What the modules below get from the manager: the VMs (registry
         * hooks, console log size), the agents (READY listener, hooks), the
         * templates (builds, users). */
        VmContext vm_ctx;
        AgentHost agent_host;
        Templates templates;
        manager_event_fn on_event;
        void *event_userdata;
        /* automatic ballooning (manager-balloon.c) */
        AutoballoonSettings autoballoon;
        sd_event_source *autoballoon_source;
        unsigned autoballoon_used_pct;
        AutoballoonMode autoballoon_mode;
        /* the warm pool (manager-pool.c) */
        PoolSpec pool_spec;
        ConfigFile *pool_cf;            /* the shape a VM must have to claim a guest */
        VmContext pool_ctx;             /* the guests' hooks: no events, no registry */
        Vm **pool_guests;
        size_t n_pool_guests;
        sd_event_source *pool_timer;
        unsigned pool_failures;         /* boots that failed in a row: back-off */
        uint64_t pool_retry_mono;
        uint64_t pool_quiet_mono;       /* no boot before: the last claim was just now */
        uint64_t pool_claims, pool_misses;      /* starts from the pool; cold starts while it is on */
        uint64_t pool_empty;                    /* of those, ones a ready guest would have served */
};

#define MANAGER_VMS_MAX 4096U

/* Takes the daemon-wide lock under root, creates the directories and the
 * event loop. Probing the host is a separate step (manager_probe_host()) so
 * that tests can build a registry without QEMU. */
int manager_new(const char *root, Manager **ret);
int manager_probe_host(Manager *m);
Manager *manager_free(Manager *m);
int manager_load(Manager *m);           /* configs + re-adoption of running VMs */
void manager_start_onboot(Manager *m);
/* Automatic ballooning with these settings (off: high_pct 0). */
int manager_autoballoon_setup(Manager *m, const AutoballoonSettings *settings);
/* GET /host's "autoballoon": settings, the host's use, the mode. */
int manager_autoballoon_to_json(Manager *m, json_object *o);
void manager_set_event_handler(Manager *m, manager_event_fn fn, void *userdata);

/* ---- the warm pool (manager-pool.c) ---- */
/* After manager_load(): re-adopts the guests that outlived the last zvmd,
 * removes what dead ones left, and keeps spec->size guests booted (0:
 * none; the guests there are stop). */
int manager_pool_setup(Manager *m, const PoolSpec *spec);
void manager_pool_free(Manager *m);
/* A claimed VM whose guest has not taken its name and keys yet
 * (vm->naming VM_NAMING_PENDING) takes them. */
void manager_pool_personalise(Manager *m, Vm *vm);
/* A guest's agent state changed (READY: claimable, and boots work). */
void manager_pool_agent_changed(Manager *m, Vm *guest);
/* Starts vm: on a ready pool guest when one fits (vm_pool_claim()), else
 * cold (vm_start(), whose errors these are). */
int manager_start_vm(Manager *m, Vm *vm, bool root, char **ret_error);
/* Template name was removed: the guests booted on it are stopped (the
 * pool boots new ones, which fail while the template is missing). */
void manager_pool_template_removed(Manager *m, const char *name);
/* GET /host's "pool". */
int manager_pool_to_json(Manager *m, json_object *o);

/* ---- registry ---- */
Vm *manager_find(Manager *m, const char *id);   /* vmid or name */
Vm *manager_find_vmid(Manager *m, uint32_t vmid);
Vm *manager_find_name(Manager *m, const char *name);
int manager_add_vm(Manager *m, Vm *vm);
void manager_remove_vm(Manager *m, Vm *vm);
int manager_free_vmid(Manager *m, uint32_t *ret);
/* CIDs held by any VM's config except `except`. */
int manager_taken_cids(Manager *m, const Vm *except, uint32_t **ret, size_t *ret_n);
/* A vsock CID for a new VM: VMID+1000 first, skipping those other VMs hold
 * (and, with kernel vsock, those other users of the host hold). */
int manager_pick_cid(Manager *m, uint32_t vmid, uint32_t *ret);
/* The cross-VM rules a single config cannot check: -EEXIST if another VM
 * has c's name, -EADDRINUSE if another VM has its CID; *ret_other is that
 * VM. */
int manager_check_unique(Manager *m, const Vm *self, const VmConfig *c, Vm **ret_other);
/* The same, with the message and key the API reports. */
int manager_unique_error(Manager *m, const Vm *self, const VmConfig *c, char **ret_error, char **ret_key);

/*
 * Creates VM vmid from the JSON config keys in body. Errors, with a
 * message in *ret_error and the offending key in *ret_key:
 *   -EEXIST (key "name" or "vmid")  taken
 *   -EADDRINUSE (key "vsock")       the CID is another VM's
 *   -ENOSPC                         the VM limit, or no free CID
 *   -EACCES (the key)               the storage and network policy refuses it
 *                                   for this caller (root: uid 0, else held
 *                                   to the policy; see config-check.h)
 *   -EIO                            writing or reloading the config failed
 *   -ENOMEM
 *   anything else                   a config key or value was refused
 */
int manager_create_vm(Manager *m, uint32_t vmid, json_object *body, bool root, Vm **ret, char **ret_error,
                      char **ret_key);
/* Removes the VM's files, drops it from the registry and frees it (see
 * vm_free() for the deferral while its waiters are being told). */
int manager_delete_vm(Manager *m, Vm *vm);

/* Reports upward through the registered handler. */
void manager_emit_state(Manager *m, Vm *vm, int previous_state);
void manager_emit_agent(Manager *m, Vm *vm);
/* Rewrites the zvm-managed known_hosts from every VM's recorded keys. */
int manager_known_hosts_write(Manager *m);

DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);
