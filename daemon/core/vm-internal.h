/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared between the files of the VM state machine (vm.c, vm-qmp.c,
 * vm-net.c, vm-vsock.c, vm-adopt.c, vm-json.c); nobody else includes it. */

#include <signal.h>

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "api.h"
#include "process-sandbox.h"
#include "qemu-argv.h"
#include "qmp.h"
#include "scope.h"

/* Not vm.h: every user includes it itself, so this private header is a leaf
 * and vm.c ↔ vm-internal.h is no include cycle. */
typedef struct Vm Vm;

/* <run>/vms/<vmid>/<name>; NULL on OOM. */
char *vm_run_path(const Vm *vm, const char *name);
/* The last n lines of a file; skip_first: never its first line (qemu.log
 * starts with the command line zvmd wrote). */
char **vm_tail_lines(const char *path, size_t n, bool skip_first);
/* QEMU exited: code < 0 when unknown (a re-adopted QEMU is not our child). */
void vm_handle_exit(Vm *vm, int code, int sig);
int vm_on_qemu_child(sd_event_source *s, const siginfo_t *si, void *userdata);
/* Undoes what a run made (agent, QMP, console, helper, taps, state.json,
 * sockets) without blocking; a start in preparation is dropped first. */
void vm_cleanup_runtime(Vm *vm);
int vm_arm_timeout(Vm *vm, uint64_t usec, sd_event_time_handler_t cb);

/* vm-start.c */
VmStart *vm_start_free(VmStart *s);
/* stop/kill/shutdown while a start is prepared: its jobs are killed, what
 * it made is undone, the VM is stopped. Returns 0. */
int vm_start_cancel(Vm *vm, const char *why);

/* vm-qmp.c */
int vm_qmp_listen(Vm *vm, int *ret_fd);
int vm_qmp_attach(Vm *vm, int fd);
int vm_qmp_connect(Vm *vm);
void vm_qmp_detach(Vm *vm);
/* Takes ownership of args. */
int vm_qmp_invoke(Vm *vm, const char *cmd, json_object *args, qmp_result_fn cb, void *userdata);

/* vm-net.c: making the taps is planned (checks now), then run by vm-start.c */
typedef struct VmTapStep {
        char **argv;
        bool may_fail;          /* removing a stale tap, dropping default VLAN 1 */
        unsigned net;
        unsigned tag;           /* > 0: the VLAN step, for its message */
} VmTapStep;
int vm_taps_plan(Vm *vm, VmTapStep **ret, size_t *ret_n, char **ret_error);
void vm_tap_steps_free(VmTapStep *steps, size_t n);
int vm_tap_step_error(const Vm *vm, const VmTapStep *st, int status, const char *output, char **ret_error);
/* Removal never blocks the loop: ProcessJobs, and the VM's next state
 * (stopped, crashed) is set once they are done (vm_set_state_after_taps()),
 * so that a VM reported stopped has no tap left. */
void vm_taps_remove(Vm *vm);
/* The taps are made: each fd of /dev/net/tun in tap_fds (-1: none) is
 * attached to its NIC's tap, for QEMU (tap,fd=). */
int vm_taps_attach(Vm *vm, const int *tap_fds, char **ret_error);
void vm_set_state_after_taps(Vm *vm, VmState s);
/* The VM goes away: its removals run on detached. */
void vm_taps_removal_detach(Vm *vm);

/* vm-sandbox.c: the VM's own uid, its vsock dir, the files QEMU is given */
typedef struct VmSandboxFiles {
        const char *template_image, *upper_image, *model_image;
        const char *kernel, *initrd;
        const char *agent_secret;       /* the secret itself, or NULL */
        /* The config's own paths (rootfs, diskN, kernel, initrd) are opened
         * through the policy unless the starter is root. */
        const Policy *policy;
        bool root;
} VmSandboxFiles;
typedef struct VmSandboxFds {
        VmFds qemu;
        int kernel, initrd, secret, vsock_dir;
} VmSandboxFds;
#define VM_SANDBOX_FDS_MAX (10 + 2 * VM_DISKS_MAX + VM_NETS_MAX)
int vm_sandbox_identity(const Vm *vm, bool kvm, ProcessSandbox *ret, char **ret_error);
int vm_sandbox_vsock_dir(const Vm *vm, const ProcessSandbox *sb, int *ret_fd);
ScopeLimits vm_sandbox_scope_limits(const Vm *vm);
/* Opens what in names (config's disks too) into out; on failure what was
 * opened stays in out for vm_sandbox_fds_close(). */
int vm_sandbox_open_files(const VmConfig *c, const VmSandboxFiles *in, VmSandboxFds *out, char **ret_error);
void vm_sandbox_fds_init(VmSandboxFds *f);
void vm_sandbox_fds_close(VmSandboxFds *f);
size_t vm_sandbox_fds_list(const VmSandboxFds *f, int *fds);

/* vm-vsock.c */
/* Sets the config's vsock CID (text, typed view, file). */
int vm_config_save_cid(Vm *vm, uint32_t cid, char **ret_error);
int vm_reserve_cid(Vm *vm, int *ret_fd, char **ret_error);
/* Spawns the helper; its socket is waited for by the caller. */
int vm_spawn_helper(Vm *vm, const ProcessSandbox *sb, int vsock_dir_fd, char **ret_error);
void vm_helper_failed(Vm *vm, int r, char **ret_error);

/* vm-helper.c: a process beside QEMU (vm->helper, vm->passt) */
void vm_helper_init(VmHelper *hp, Vm *vm, const char *what, const char *lost);
/* Output to <run_dir>/log_name (NULL: /dev/null); keep_fds as process_spawn(). */
/* sb: the VM's own uid (vm-sandbox.c), or NULL: as zvmd, guest-facing. */
int vm_helper_spawn(VmHelper *hp, char *const *argv, const int *keep_fds, size_t n_keep_fds, const char *log_name,
                    const ProcessSandbox *sb);
int vm_helper_watch(VmHelper *hp);
void vm_helper_adopt(VmHelper *hp, pid_t pid, uint64_t starttime);
void vm_helper_stop(VmHelper *hp);
void vm_helper_detach(VmHelper *hp);

/* vm-passt.c: passt for the user NIC (needs h->passt) */
/* The socketpair: *ret_qemu_fd goes to QEMU (-netdev stream), the other
 * end is kept for vm_passt_spawn(). -EOPNOTSUPP: no user NIC, or no passt. */
int vm_passt_socketpair(Vm *vm, int *ret_qemu_fd, int *ret_passt_fd, char **ret_error);
int vm_passt_spawn(Vm *vm, int passt_fd, char **ret_error);

/* vm-hostfwd.c: whether every hostfwd= of c's user NICs could bind now;
 * -EADDRINUSE (a taken port), -EINVAL, with the NIC and port named. */
int vm_hostfwd_check(const VmConfig *c, char **ret_error);

/* vm-running.c: the running config, in memory and in running.conf */
int vm_running_take(Vm *vm, char **ret_error);
/* The same, with the vsock CID the guest runs with (a claimed pool guest's). */
int vm_running_take_cid(Vm *vm, uint32_t cid, char **ret_error);
/* Re-adoption: running.conf, else (older zvmd) the current config. */
int vm_running_load(Vm *vm);
void vm_running_drop(Vm *vm);

/* vm.c */
/* Takes cf, on failure too. */
int vm_new(VmContext *ctx, uint32_t vmid, ConfigFile *cf, Vm **ret, char **ret_error);
/* What zvm puts in a VM's run dir (first path components). */
extern const char *const vm_run_names[];
/* Renames dir aside (if it holds only names) for the fsync worker to
 * remove: 0 also when there is no dir; < 0 (-ENOTEMPTY: something else is
 * in it; -EOPNOTSUPP: no worker) the caller removes the files itself. */
int vm_remove_dir_aside(Vm *vm, const char *dir, const char *const *names);

/* vm-pool.c: a claim of a warm-pool guest, finished on re-adoption */
int vm_pool_finish(Vm *vm, uint32_t slot);

/* vm-adopt.c */
int vm_state_file_save(Vm *vm);
void vm_state_file_remove(Vm *vm);
