/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "agent.h"
#include "api.h"
#include "config-file.h"
#include "host.h"
#include "paths.h"
#include "policy.h"
#include "qmp.h"
#include "sync-worker.h"
#include "vm-config.h"

typedef struct Vm Vm;
typedef struct VmConsole VmConsole;
typedef struct VmStart VmStart;
typedef struct VmTapRemoval VmTapRemoval;

/* What vm_wait() waits for; a mask. */
typedef enum VmWaitFor {
        VM_WAIT_RUNNING = 1 << 0,       /* state running */
        VM_WAIT_DOWN = 1 << 1,          /* state stopped or crashed */
} VmWaitFor;

/* A registered wait, owned by the VM until it fires or is cancelled. */
typedef struct VmWait VmWait;

/* state: the VmState reached, or -ESHUTDOWN when the VM object goes away
 * (zvmd exits) first. The wait is over when this runs: the handle is
 * already freed and must not be cancelled. */
typedef void (*vm_wait_fn)(Vm *vm, int state, void *userdata);

#define VM_WAITERS_MAX 32U
#define VM_EXIT_STDERR_LINES 10U

/* What every VM needs from the daemon around it, given by the one module
 * above (core/manager.c): the loop, the bus, paths, the host, the agents'
 * host, and the hooks through which a VM reports upward or asks about the
 * other VMs. */
typedef struct VmContext {
        sd_event *event;
        sd_bus *bus;                    /* system bus when systemd is PID 1, else NULL */
        const Paths *paths;
        const Policy *policy;           /* what callers other than root may name (pure/policy.h) */
        const Host *host;
        AgentHost *agent;
        uint64_t console_log_max;       /* bytes per console.log part (core/console-log.h) */
        SyncWorker *sync;               /* fsyncs and removals off the loop; NULL: inline */
        /* vm->state changed; previous is the old VmState, -1 for a new VM */
        void (*state_changed)(Vm *vm, int previous, void *userdata);
        /* the VM's name changed (known_hosts lists VMs by name) */
        void (*renamed)(Vm *vm, void *userdata);
        /* -EEXIST/-EADDRINUSE with the API's message and key if another VM
         * holds c's name or CID */
        int (*unique_error)(Vm *vm, const VmConfig *c, char **ret_error, char **ret_key, void *userdata);
        /* the CIDs every other VM holds (pending or running) */
        int (*taken_cids)(Vm *vm, uint32_t **ret, size_t *ret_n, void *userdata);
        void *userdata;
} VmContext;

/* A process zvmd runs beside QEMU for one VM (core/vm-helper.c). */
typedef struct VmHelper {
        Vm *vm;
        const char *what, *lost;        /* for the log: who exited, what is down now */
        pid_t pid;
        uint64_t starttime;             /* clock ticks since boot, with pid = identity */
        int pidfd;
        sd_event_source *source;
        bool own_child;                 /* spawned by this zvmd: the loop reaps it */
} VmHelper;

typedef enum VmNaming {
        VM_NAMING_NONE,                 /* a cold start, or the guest has its name */
        VM_NAMING_PENDING,              /* claimed: the name and keys are still to be given */
        VM_NAMING_IN_FLIGHT,            /* set-hostname is on its way: starting until it answers */
} VmNaming;

struct Vm {
        VmContext *ctx;
        uint32_t vmid;
        ConfigFile *cf;                 /* the config text, source of truth */
        VmConfig *config;               /* typed view of cf: the pending config */
        /* The config the VM was started with, from start until it is down
         * (core/vm-running.c); NULL while stopped. */
        ConfigFile *running_cf;
        VmConfig *running;
        VmState state;
        char *run_dir;
        char *data_dir;
        /* A warm-pool guest (core/manager-pool.c): vmid is its slot, its
         * config lives only in running.conf (never in <etc>/vms), and no
         * API request names it. */
        bool pool;
        bool from_pool;                 /* this run claimed a pool guest ("start_path": "pool") */
        uint32_t pool_slot;             /* the slot whose uid this run's QEMU has (pool guest: vmid); 0: none */
        /* A claimed guest takes the VM's name and keys after the claim
         * (manager_pool_personalise()); state.json records that it has
         * not yet, so a zvmd killed meanwhile does it after re-adoption. */
        VmNaming naming;

        /* QEMU */
        pid_t pid;
        uint64_t starttime;             /* clock ticks since boot, with pid = identity */
        int pidfd;
        sd_event_source *pid_source;
        bool own_child;                 /* spawned by this zvmd (else re-adopted) */
        uint64_t started_usec;          /* CLOCK_REALTIME */
        VmAccel accel;

        VmHelper helper;                /* vhost-device-vsock (hybrid vsock) */
        VmHelper passt;                 /* passt, the user-mode network of the user NIC */
        VmStart *start;                 /* a start being prepared (core/vm-start.c), else NULL */
        VmTapRemoval *tap_removal;      /* taps being removed (core/vm-net.c); the state waits for it */

        QmpClient *qmp;
        sd_event_source *qmp_source;
        VmConsole *console;             /* serial console relay and log (daemon/console.h) */
        bool guest_shutdown_seen;       /* QMP SHUTDOWN event: the exit that follows is clean */
        bool stop_requested;            /* stop/kill/shutdown by us: the exit that follows is expected */
        sd_event_source *timeout_source;/* shutdown → kill, stop → kill, start → fail */

        uint64_t balloon_target_mib;
        uint64_t balloon_actual_mib;
        bool balloon_manual;            /* the target was set by hand: automatic ballooning leaves it */

        /* CPU time and RSS of QEMU + helpers, as a list shows them: read
         * from /proc at most once a second (10 system calls a VM). */
        uint64_t usage_mono;            /* CLOCK_MONOTONIC µs of the reading; 0: none */
        uint64_t usage_cpu_ns, usage_rss;

        /* last exit, for crashed */
        int exit_code;
        int exit_signal;
        char **exit_stderr;
        char *crash_reason;
        char *kill_reason;              /* why zvmd killed it (start timeout, reboot loop) */
        uint64_t resets[3];             /* CLOCK_MONOTONIC µs of the last guest resets */

        VmAgent agent;                  /* the guest agent's host side (core/agent.h) */
        uint64_t started_mono;          /* CLOCK_MONOTONIC µs of the start */
        sd_event_source *acpi_source;   /* shutdown: agent first, ACPI when this fires */

        VmWait *waits[VM_WAITERS_MAX];
        size_t n_waits;
        unsigned dispatching;           /* > 0 while waits are being told: vm_free() defers */
        bool free_pending;
};

Vm *vm_free(Vm *vm);
/* Loads <vms_dir>/<vmid>.conf. */
int vm_load(VmContext *ctx, uint32_t vmid, Vm **ret, char **ret_error);
/* A warm-pool guest of slot vmid with this config text (core/manager-pool.c). */
int vm_new_pool(VmContext *ctx, uint32_t vmid, const char *text, Vm **ret, char **ret_error);
/* Claims the running, ready pool guest for vm (stopped, never started: no
 * writable layer yet). The commit is one rename: the guest's run dir
 * becomes vm's, with its state.json, running.conf, sockets and secret.
 * The caller then frees guest (which lets go of the processes, as a zvmd
 * that exits does) and re-adopts vm (vm_adopt()), which finishes the
 * claim: the writable layer and recorded ssh host keys move to vm's data
 * dir, vm's config takes the guest's CID, running.conf becomes vm's
 * config. A zvmd killed anywhere in between finishes it on re-adoption.
 * -EBUSY: vm cannot take a pool guest (it has a writable layer, or runs). */
int vm_pool_claim(Vm *vm, Vm *guest, char **ret_error);
/* 1: vm has no writable layer yet (its first start, which a pool guest
 * can serve); 0: it has one; -errno: cannot tell. */
int vm_pool_first_start(const Vm *vm);
/* The claimed guest took the VM's name and keys, or will not: state.json
 * stops saying naming. */
void vm_pool_named(Vm *vm);
/* Re-adopts a VM that runs since before this zvmd (state file in run dir). */
int vm_adopt(Vm *vm);

/* root: the caller is root (onboot starts are): the config's paths are
 * opened as they are; else through the storage policy (config_open_path()),
 * the same check the caller passed, now on the very files QEMU gets. */
int vm_start(Vm *vm, bool root, char **ret_error);
int vm_shutdown(Vm *vm, unsigned timeout_s);
int vm_stop(Vm *vm);
int vm_kill(Vm *vm);
int vm_reboot(Vm *vm, qmp_result_fn cb, void *userdata);
int vm_set_balloon(Vm *vm, uint64_t target_mib, qmp_result_fn cb, void *userdata, char **ret_error);
/* The lowest balloon target the VM allows (its config key balloon; 0 without
 * a balloon device). */
uint64_t vm_balloon_floor(Vm *vm);
/* Removes what zvm created for the VM: config, run dir, data dir. */
int vm_remove_files(Vm *vm);

/* Calls cb once, when the VM reaches a state in `what` (a VmWaitFor
 * mask), or with -ESHUTDOWN when it is freed first. *ret (optional) is a
 * handle for vm_wait_cancel(), valid until cb runs. -EBUSY when
 * VM_WAITERS_MAX waits are registered already. */
int vm_wait(Vm *vm, unsigned what, vm_wait_fn cb, void *userdata, VmWait **ret);
/* Forgets a wait that has not fired; cb is never called. NULL is fine. */
void vm_wait_cancel(VmWait *w);
bool vm_is_up(const Vm *vm);
/*
 * Applies the JSON config changes in body, all or nothing: validated on a
 * copy, checked against the other VMs, then written. While the VM runs,
 * keys that need a restart only become pending (vm_pending_keys()). Errors as
 * manager_create_vm() (-EEXIST "name", -EADDRINUSE "vsock", -EIO, -ENOMEM,
 * -EPERM "vmid": it cannot be changed, -EACCES the policy refuses a key for
 * this caller, else a refused key or value), with a message in *ret_error.
 * root: the caller is uid 0 on the unix socket (core/config-check.h).
 */
int vm_update_config(Vm *vm, json_object *body, bool root, char **ret_error, char **ret_key);
/* The pending config against the storage and network policy and the host,
 * every key, for a start by this caller: zvm.conf may have changed since
 * the keys were set, a file in storage may have become a symlink, and a
 * config root made (a raw disk, a bridge) is root's to start unless
 * zvm.conf declares what it names. 0 at once for root. -EACCES and the
 * others of config_check_host(), with a message and the key. */
int vm_check_start_policy(Vm *vm, bool root, char **ret_error, char **ret_key);
/* What the running instance uses (CID, NICs, agent, balloon): the config
 * it was started with from the start until it is down, else the pending
 * config. */
const VmConfig *vm_running_config(const Vm *vm);
/* Keys that need a restart and whose pending value differs from the
 * running one (none without a run); *ret may be NULL (none). */
int vm_pending_keys(const Vm *vm, char ***ret);
/* GET /vms and /vms/{id}: config, pending keys, and with_status the status
 * without host_memory (cheap per VM, a list of hundreds stays fast). */
int vm_to_json(Vm *vm, bool with_status, json_object **ret);
/* GET /vms/{id}/status; host_memory: also the PSS split, which walks QEMU's
 * /proc/PID/smaps (~4 ms of the loop per VM: never for a list). */
int vm_status_to_json(Vm *vm, bool host_memory, json_object **ret);
void vm_set_state(Vm *vm, VmState s);
int vm_save_config(Vm *vm);
