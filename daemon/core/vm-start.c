/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Starting a VM without blocking the loop. vm_start() checks and prepares
 * at once what a bad request must be told about (state, accelerator,
 * template, kernel, bridges and VLANs, sockets, agent secret, argv), sets
 * `starting` and returns; then, each step reporting by callback:
 *
 *   mkfs.ext4 of a missing writable layer (ProcessJob)
 *   → the taps' ip/bridge commands, one after the other (ProcessJobs)
 *   → state.json (a start in progress), passt for a user NIC (its
 *     socketpair's other end goes to QEMU: nothing to wait for)
 *   → hybrid vsock: the helper, a
 *     FileWait for its socket, state.json again with the helper's pid
 *   → QEMU, state.json with its pid, QMP, console, `running` on query-status.
 *
 * A step that fails undoes everything (vm_cleanup_runtime(): helper, taps
 * by fire-and-forget jobs, agent, sockets, state.json), says why in
 * crash_reason and goes back to `stopped`, which answers the waiting start
 * request. stop/kill/shutdown/delete and zvmd's exit cancel it the same way.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include "console.h"
#include "fd-util.h"
#include "fileio.h"
#include "log.h"
#include "loop.h"
#include "macro.h"
#include "model-store.h"
#include "process-async.h"
#include "process.h"
#include "qemu-argv.h"
#include "scope.h"
#include "string-util.h"
#include "time-util.h"
#include "vm.h"
#include "vm-internal.h"

#define QMP_READY_TIMEOUT_USEC (30ULL * 1000000ULL)
#define MKFS_TIMEOUT_USEC (60ULL * 1000000ULL)
#define IP_TIMEOUT_USEC (10ULL * 1000000ULL)
#define HELPER_SOCKET_TIMEOUT_USEC (5ULL * 1000000ULL)

struct VmStart {
        Vm *vm;
        char **argv;
        char *qmp_path, *qemu_log;
        char *upper, *upper_tmp;        /* upper_tmp: mkfs.ext4 still to make it */
        char *vsock_dir;                /* hybrid: the one dir the VM's processes may write */
        int qmp_fd, serial_fd, vhost_fd;
        ProcessSandbox sb;              /* the VM's own uid, for the helper and QEMU */
        VmSandboxFds fds;               /* what QEMU (and the helper) are given instead of paths */
        int passt_qemu_fd, passt_fd;    /* the socketpair: QEMU's end, passt's end */
        VmAccel accel;
        bool root;                      /* the caller is root: the config's paths are opened as they are */
        VmTapStep *taps;
        size_t n_taps, next_tap;
        ProcessJob *job;
        FileWait *wait;
};

VmStart *vm_start_free(VmStart *s) {
        if (!s)
                return NULL;
        process_job_free(s->job);       /* kills a job still running */
        file_wait_free(s->wait);
        if (s->upper_tmp)
                (void) unlink(s->upper_tmp);
        strv_free(s->argv);
        free(s->qmp_path);
        free(s->qemu_log);
        free(s->upper);
        free(s->upper_tmp);
        free(s->vsock_dir);
        safe_close(s->qmp_fd);
        safe_close(s->serial_fd);
        safe_close(s->vhost_fd);
        vm_sandbox_fds_close(&s->fds);
        safe_close(s->passt_qemu_fd);
        safe_close(s->passt_fd);
        vm_tap_steps_free(s->taps, s->n_taps);
        return mfree(s);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(VmStart *, vm_start_free);

/* why: taken; NULL for a cancel. */
static void start_end(Vm *vm, char *why) {
        vm_cleanup_runtime(vm);         /* frees vm->start */
        free(vm->crash_reason);
        vm->crash_reason = why;
        vm_set_state_after_taps(vm, VM_STATE_STOPPED);
}

static void start_fail(VmStart *s, int r, char *why) {
        Vm *vm = s->vm;

        if (!why)
                set_error(&why, "%s", errno_str(r));
        log_warning("VM %u (%s): start failed: %s", vm->vmid, vm->config->name, strnull(why));
        start_end(vm, why);
}

int vm_start_cancel(Vm *vm, const char *how) {
        char *why = NULL;

        log_info("VM %u (%s): start cancelled by %s", vm->vmid, vm->config->name, how);
        set_error(&why, "the start was cancelled (%s)", how);
        start_end(vm, why);
        return 0;
}

static int on_scope_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        uint32_t vmid = (uint32_t) (uintptr_t) userdata;

        if (e)
                log_warning("VM %u: cannot move QEMU into zvm-%u.scope, it stays in zvmd's cgroup: %s", vmid, vmid,
                            e->message ?: e->name);
        return 0;
}

/* Asked without waiting: systemd answers through the loop. Only real pids
 * go out (kernel vsock has no helper): systemd reads 0 as the caller, and
 * would move zvmd itself into the VM's scope. */
static void vm_move_to_scope(Vm *vm) {
        VmContext *ctx = vm->ctx;
        const pid_t pids[] = { vm->pid, vm->helper.pid, vm->passt.pid };
        const ScopeLimits limits = vm_sandbox_scope_limits(vm);
        char unit[64], desc[128];
        int r;

        if (!ctx->bus)
                return;
        snprintf(unit, sizeof(unit), "zvm-%u.scope", vm->vmid);
        snprintf(desc, sizeof(desc), "zvm VM %u (%s)", vm->vmid, vm->config->name);
        r = scope_start_async(ctx->bus, unit, "zvm.slice", desc, pids, ELEMENTSOF(pids), &limits, on_scope_reply,
                              (void *) (uintptr_t) vm->vmid);
        if (r < 0)
                log_warning_errno(r, "VM %u: cannot move QEMU into %s, it stays in zvmd's cgroup: %m", vm->vmid, unit);
}

static int on_start_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        loop_note("VM %s: start timeout", ((Vm *) userdata)->config->name);
        Vm *vm = userdata;

        vm->timeout_source = sd_event_source_disable_unref(vm->timeout_source);
        if (vm->state != VM_STATE_STARTING)
                return 0;
        log_error("VM %u: QEMU did not answer QMP within %llu s, killing it", vm->vmid,
                  QMP_READY_TIMEOUT_USEC / 1000000ULL);
        free(vm->kill_reason);
        vm->kill_reason = strdup("QEMU did not answer QMP in time");
        if (vm->pidfd >= 0)
                (void) syscall(SYS_pidfd_send_signal, vm->pidfd, SIGKILL, NULL, 0);
        return 0;
}

/* What a start needs before anything is created: a stopped VM, a usable
 * accelerator, its run dir, its template, a kernel. The writable layer's
 * path is known now; it is made later if missing. */
static int vm_start_check(Vm *vm, VmStart *s, char **ret_template, char **ret_error) {
        VmContext *ctx = vm->ctx;
        _cleanup_free_ char *template = NULL, *err = NULL;
        const char *kernel = vm->config->kernel ? vm->config->kernel : ctx->host->caps.kernel;
        int r;

        if (vm->state != VM_STATE_STOPPED && vm->state != VM_STATE_CRASHED)
                return set_error(ret_error, "VM %u is %s", vm->vmid, vm_state_to_string(vm->state)), -EBUSY;

        s->accel = qemu_effective_accel(vm->config, &ctx->host->caps, &err);
        if (s->accel < 0 || err)
                return set_error(ret_error, "%s", err ? err : "no usable accelerator"), -EINVAL;
        r = vm_sandbox_identity(vm, s->accel == VM_ACCEL_KVM, &s->sb, ret_error);
        if (r < 0)
                return r;

        r = mkdir_p(vm->run_dir, 0750);
        if (r < 0)
                return set_error(ret_error, "cannot create %s: %s", vm->run_dir, errno_str(r)), r;

        if (vm->config->rootfs_template) {
                r = paths_template_image(ctx->paths, vm->config->rootfs_template, &template);
                if (r < 0)
                        return set_error(ret_error, "template '%s' not found (looked in %s and %s)",
                                         vm->config->rootfs_template, ctx->paths->templates, ctx->paths->guest_dir), r;
                s->upper = strjoin(vm->data_dir, "/upper.img");
                if (!s->upper)
                        return -ENOMEM;
                if (access(s->upper, F_OK) < 0) {
                        r = mkdir_p(vm->data_dir, 0750);
                        if (r < 0)
                                return set_error(ret_error, "cannot create %s: %s", vm->data_dir, errno_str(r)), r;
                        s->upper_tmp = strjoin(vm->data_dir, "/.upper.img.tmp");
                        if (!s->upper_tmp)
                                return -ENOMEM;
                }
        }
        if (access(kernel, R_OK) < 0)
                return set_error(ret_error, "kernel %s: %s", kernel, errno_str(errno)), -errno;
        if (!ctx->host->caps.vhost_vsock && !ctx->host->vsock_helper)
                return set_error(ret_error, "hybrid vsock needs vhost-device-vsock, which is not installed "
                                            "(scripts/install-deps installs it)"), -ENOENT;
        *ret_template = TAKE_PTR(template);
        return 0;
}

/* A new run: forget how the last one ended. */
static void vm_reset_run_record(Vm *vm) {
        vm->exit_stderr = strv_free(vm->exit_stderr);
        vm->crash_reason = mfree(vm->crash_reason);
        vm->exit_code = vm->exit_signal = 0;
        vm->kill_reason = mfree(vm->kill_reason);
        memset(vm->resets, 0, sizeof(vm->resets));
        vm->guest_shutdown_seen = vm->stop_requested = false;
}

/* A missing writable layer: zvmd makes the file (0600, root's) now, and
 * keeps it open for QEMU; mkfs.ext4 formats it later, off the loop. The
 * temporary exists from now until the rename, so a zvmd killed meanwhile
 * leaves a name the next one knows to remove (vm_remove_files()). */
static int vm_start_upper_tmp(VmStart *s, char **ret_error) {
        /* One that a start cut by a killed zvmd left half made: O_TRUNC
         * would free its blocks on the loop (100+ ms on a busy disk), so it
         * goes aside for the fsync worker to remove. */
        if (s->vm->ctx->sync && access(s->upper_tmp, F_OK) >= 0) {
                _cleanup_close_ int dfd = open(s->vm->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                char aside[64];

                snprintf(aside, sizeof(aside), ".#deleted-upper.%" PRIx64, now_usec(CLOCK_MONOTONIC));
                if (dfd >= 0 && renameat(dfd, ".upper.img.tmp", dfd, aside) >= 0 &&
                    sync_worker_remove(s->vm->ctx->sync, dfd, aside) >= 0)
                        TAKE_FD(dfd);
        }
        s->fds.qemu.upper.fd = open(s->upper_tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (s->fds.qemu.upper.fd >= 0)
                s->fds.qemu.upper.ro_fd = open(s->upper_tmp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (s->fds.qemu.upper.fd < 0 || s->fds.qemu.upper.ro_fd < 0) {
                int r = -errno;

                return set_error(ret_error, "creating the writable layer failed (%s: %s)", s->upper_tmp,
                                 errno_str(r)), r;
        }
        return 0;
}

/* What QEMU is given instead of paths (core/vm-sandbox.c). */
static int vm_start_open_files(Vm *vm, VmStart *s, const char *template, const char *model_image,
                               char **ret_error) {
        const VmConfig *c = vm->running;
        const Host *h = vm->ctx->host;
        VmSandboxFiles in = {
                .template_image = template,
                .upper_image = s->upper_tmp ? NULL : s->upper,
                .model_image = model_image,
                .kernel = c->kernel ?: h->caps.kernel,
                .initrd = c->initrd ?: h->caps.initrd,
                .agent_secret = vm->agent.secret[0] ? vm->agent.secret : NULL,
                .policy = vm->ctx->policy,
                .root = s->root,
        };
        int r;

        if (s->upper_tmp) {
                r = vm_start_upper_tmp(s, ret_error);
                if (r < 0)
                        return r;
        }
        return vm_sandbox_open_files(c, &in, &s->fds, ret_error);
}

/* Sockets, the agent's secret, the files, the argv: everything QEMU will be
 * given. */
static int vm_start_prepare(Vm *vm, VmStart *s, const char *template, char **ret_error) {
        const Host *h = vm->ctx->host;
        _cleanup_free_ char *vhost_sock = NULL, *secret = NULL, *err = NULL;
        _cleanup_free_ char *model_image = NULL;      /* models: the store's image of "model:" */
        char kernel[64], initrd[64], secret_fd[64];
        VmPaths vp;
        int r;

        s->qmp_path = vm_run_path(vm, "qmp.sock");
        s->qemu_log = vm_run_path(vm, "qemu.log");
        if (!s->qmp_path || !s->qemu_log)
                return -ENOMEM;
        if (h->caps.vhost_vsock) {
                r = vm_reserve_cid(vm, &s->vhost_fd, ret_error);
                if (r < 0)
                        return r;
        } else {
                /* Before the agent's READY listener, which goes in it. */
                r = vm_sandbox_vsock_dir(vm, &s->sb, &s->fds.vsock_dir);
                if (r < 0)
                        return set_error(ret_error, "cannot prepare the VM's vsock dir: %s", errno_str(r)), r;
                if (asprintf(&vhost_sock, "/proc/self/fd/%d/vhost-vsock.sock", s->fds.vsock_dir) < 0)
                        return -ENOMEM;
                s->vsock_dir = vm_run_path(vm, "vsock");
                if (!s->vsock_dir)
                        return -ENOMEM;
                s->sb.writable = s->vsock_dir;
        }
        r = vm_running_take(vm, ret_error);     /* from here on, the run uses vm->running */
        if (r < 0)
                return r;
        if (vm->running->model) {               /* models: resolved once per start */
                r = model_store_resolve(vm->ctx->paths->models, vm->running->model, &model_image, ret_error);
                if (r < 0)
                        return r;
        }
        r = vm_taps_plan(vm, &s->taps, &s->n_taps, ret_error);
        if (r < 0)
                return r;
        r = vm_qmp_listen(vm, &s->qmp_fd);
        if (r < 0)
                return set_error(ret_error, "cannot create the QMP socket: %s", errno_str(r)), r;
        r = console_listen_serial(vm->run_dir, &s->serial_fd);
        if (r < 0)
                return set_error(ret_error, "cannot create the serial console socket: %s", errno_str(r)), r;
        r = vm_passt_socketpair(vm, &s->passt_qemu_fd, &s->passt_fd, ret_error);
        if (r < 0 && r != -EOPNOTSUPP)
                return r;
        r = vm_hostfwd_check(vm_running_config(vm), ret_error);
        if (r < 0)
                return r;
        r = agent_prepare(&vm->agent, vm_running_config(vm)->agent, vm_running_config(vm)->cid, &secret);
        if (r < 0)
                return set_error(ret_error, "cannot prepare the guest agent's secret and listener: %s",
                                 errno_str(r)), r;
        r = vm_start_open_files(vm, s, template, model_image, ret_error);
        if (r < 0)
                return r;
        snprintf(kernel, sizeof(kernel), "/proc/self/fd/%d", s->fds.kernel);
        snprintf(initrd, sizeof(initrd), "/proc/self/fd/%d", s->fds.initrd);
        snprintf(secret_fd, sizeof(secret_fd), "/proc/self/fd/%d", s->fds.secret);
        vp = (VmPaths) {
                .run_dir = vm->run_dir,
                .qmp_socket = s->qmp_path,
                .qmp_fd = s->qmp_fd,
                .serial_fd = s->serial_fd,
                .vhost_user_vsock_socket = vhost_sock,
                .vhost_vsock_fd = s->vhost_fd >= 0 ? s->vhost_fd : -1,
                .template_image = template,
                .upper_image = s->upper,
                .model_image = model_image,
                .agent_secret = secret ? secret_fd : NULL,
                .kernel = kernel,
                .initrd = s->fds.initrd >= 0 ? initrd : NULL,
                .fds = &s->fds.qemu,
                .passt = s->passt_qemu_fd >= 0,
                .passt_fd = s->passt_qemu_fd,
        };
        r = qemu_argv_build(vm->running, &h->caps, &vp, &s->argv, &err);
        if (r < 0)
                return set_error(ret_error, "%s", err ? err : errno_str(r)), r;
        return 0;
}

/* Watches the QEMU just spawned through a pidfd. If that fails, QEMU died
 * at once (bad argv?): its exit is handled and its output reported. */
/* Why zvmd is about to kill QEMU: what the VM's crash_reason will say. */
static void vm_set_kill_reason(Vm *vm, int r, const char *what) {
        log_error_errno(r, "VM %u: %s, killing it: %m", vm->vmid, what);
        free(vm->kill_reason);
        if (asprintf(&vm->kill_reason, "%s: %s", what, errno_str(r)) < 0)
                vm->kill_reason = NULL;
}

static int vm_watch_qemu(Vm *vm) {
        int r;

        r = process_starttime(vm->pid, &vm->starttime);
        if (r >= 0)
                r = pidfd_open_checked(vm->pid, vm->starttime, &vm->pidfd);
        if (r >= 0)
                r = sd_event_add_child_pidfd(vm->ctx->event, &vm->pid_source, vm->pidfd, WEXITED,
                                             vm_on_qemu_child, vm);
        if (r < 0) {
                int status = 0;

                /* Without a pidfd zvmd cannot run this VM. Out of fds
                 * (EMFILE: /proc and pidfd_open both need one) QEMU is
                 * alive and well, and a plain waitpid() would block the
                 * loop until it exits, which it never does: kill it first.
                 * Our own unreaped child, so the pid is still QEMU's, and
                 * the wait is short. */
                if (r != -ESRCH)
                        vm_set_kill_reason(vm, r, "zvmd cannot watch QEMU");
                (void) kill(vm->pid, SIGKILL);
                (void) waitpid(vm->pid, &status, 0);
                vm_handle_exit(vm, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                               WIFSIGNALED(status) ? WTERMSIG(status) : 0);
                return -EIO;
        }
        return 0;
}

/* The start cannot be carried on with a running QEMU (no QMP, no
 * deadline): end it now with the reason, not later as "did not answer".
 * Its exit handling cleans up. */
static void vm_start_abort(Vm *vm, int r, const char *what) {
        vm_set_kill_reason(vm, r, what);
        (void) syscall(SYS_pidfd_send_signal, vm->pidfd, SIGKILL, NULL, 0);
}

/* The last step: QEMU, with its output (after its command line) in
 * qemu.log. Once it runs, its own exit handling undoes what a failure
 * leaves, and the VmStart goes. */
static void step_qemu(VmStart *s) {
        _cleanup_(vm_start_freep) VmStart *done = NULL;
        Vm *vm = s->vm;
        _cleanup_free_ char *cmd = strv_join(s->argv, " ");
        _cleanup_close_ int log_fd = -EBADF, client_fd = -EBADF;
        int keep_fds[4 + VM_SANDBOX_FDS_MAX];
        size_t n_keep = 0;
        char *why = NULL;
        int r;

        if (s->vhost_fd >= 0)
                keep_fds[n_keep++] = s->vhost_fd;
        keep_fds[n_keep++] = s->qmp_fd;
        keep_fds[n_keep++] = s->serial_fd;
        n_keep += vm_sandbox_fds_list(&s->fds, keep_fds + n_keep);
        if (s->passt_qemu_fd >= 0)
                keep_fds[n_keep++] = s->passt_qemu_fd;
        log_fd = open(s->qemu_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        if (log_fd < 0) {
                r = -errno;
                set_error(&why, "cannot open %s: %s", s->qemu_log, errno_str(r));
                return start_fail(s, r, why);
        }
        r = vm_taps_attach(vm, s->fds.qemu.taps, &why);
        if (r < 0)
                return start_fail(s, r, why);
        log_debug("VM %u: %s", vm->vmid, strnull(cmd));
        if (cmd)
                (void) loop_write(log_fd, cmd, strlen(cmd), false), (void) loop_write(log_fd, "\n", 1, false);
        r = process_spawn_guest_facing(s->argv, keep_fds, n_keep, log_fd, &s->sb, &vm->pid);
        if (r < 0) {
                set_error(&why, "cannot start %s: %s", s->argv[0], errno_str(r));
                return start_fail(s, r, why);
        }
        done = TAKE_PTR(vm->start);
        vm->own_child = true;
        vm->accel = s->accel;
        vm->started_usec = now_usec(CLOCK_REALTIME);
        vm->started_mono = vm->agent.started_mono = now_usec(CLOCK_MONOTONIC);
        vm->balloon_target_mib = vm->running->balloon_mib > 0 ? vm->running->memory_mib : 0;
        vm->balloon_manual = false;
        if (vm_watch_qemu(vm) < 0)
                return;         /* QEMU died at once: handled as its exit (crashed, with its output) */
        r = vm_state_file_save(vm);
        if (r < 0)
                log_warning_errno(r, "VM %u: cannot save runtime state, re-adoption will not work: %m", vm->vmid);
        vm_move_to_scope(vm);

        s->serial_fd = safe_close(s->serial_fd);        /* QEMU holds its own copy */
        s->passt_qemu_fd = safe_close(s->passt_qemu_fd);
        r = console_open(vm->ctx->event, vm->vmid, vm->run_dir, vm->ctx->console_log_max, &vm->console);
        if (r < 0)
                log_warning_errno(r, "VM %u: cannot relay the serial console: %m", vm->vmid);
        r = qmp_connect_unix(s->qmp_path, &client_fd);
        s->qmp_fd = safe_close(s->qmp_fd);              /* QEMU holds its own copy */
        if (r >= 0)
                r = vm_qmp_attach(vm, TAKE_FD(client_fd));
        if (r < 0)
                return vm_start_abort(vm, r, "zvmd cannot connect to QEMU's QMP socket");      /* out of fds, say */
        /* Without its deadline a QEMU that never answers QMP would stay
         * "starting" for ever. */
        r = vm_arm_timeout(vm, QMP_READY_TIMEOUT_USEC, on_start_timeout);
        if (r < 0)
                return vm_start_abort(vm, r, "zvmd cannot arm the start deadline");
}

static void on_helper_socket(FileWait *w, int r, void *userdata) {
        VmStart *s = userdata;
        loop_note("VM %s: helper socket", s->vm->config->name);
        Vm *vm = s->vm;
        char *why = NULL;

        s->wait = file_wait_free(w);
        if (r >= 0)
                r = vm_helper_watch(&vm->helper);
        if (r < 0) {
                vm_helper_failed(vm, r, &why);
                return start_fail(s, r, why);
        }
        step_qemu(s);
}

/* Hybrid vsock: the helper must be listening before QEMU connects to it.
 * state.json goes first (also with kernel vsock: issue 14), so that a zvmd
 * killed from now on finds (and ends) a helper or a QEMU whose pid it had
 * not recorded yet. */
static void step_helper(VmStart *s) {
        Vm *vm = s->vm;
        char *why = NULL;
        int r;

        r = vm_state_file_save(vm);
        if (r < 0) {
                set_error(&why, "cannot write state.json: %s", errno_str(r));
                return start_fail(s, r, why);
        }
        if (s->passt_fd >= 0) {
                r = vm_passt_spawn(vm, s->passt_fd, &why);
                if (r < 0)
                        return start_fail(s, r, why);
                s->passt_fd = safe_close(s->passt_fd);  /* passt holds its own copy */
                (void) vm_state_file_save(vm);
        }
        if (vm->ctx->host->caps.vhost_vsock)
                return step_qemu(s);
        r = vm_spawn_helper(vm, &s->sb, s->fds.vsock_dir, &why);
        if (r < 0)
                return start_fail(s, r, why);
        (void) vm_state_file_save(vm);
        _cleanup_free_ char *dir = vm_run_path(vm, "vsock");
        r = dir ? file_wait_start(vm->ctx->event, dir, "vhost-vsock.sock", vm->helper.pidfd,
                                  HELPER_SOCKET_TIMEOUT_USEC, on_helper_socket, s, &s->wait) : -ENOMEM;
        if (r < 0) {
                vm_helper_failed(vm, r, &why);
                return start_fail(s, r, why);
        }
}

static void step_taps(VmStart *s);

static void on_tap_done(ProcessJob *j, int status, const char *output, void *userdata) {
        VmStart *s = userdata;
        loop_note("VM %s: tap step", s->vm->config->name);
        const VmTapStep *st = &s->taps[s->next_tap++];
        char *why = NULL;

        if (status != 0 && !st->may_fail) {
                int r = vm_tap_step_error(s->vm, st, status, output, &why);

                s->job = process_job_free(j);
                return start_fail(s, r, why);
        }
        s->job = process_job_free(j);
        step_taps(s);
}

static void step_taps(VmStart *s) {
        char *why = NULL;
        int r;

        if (s->next_tap >= s->n_taps)
                return step_helper(s);
        r = process_job_start(s->vm->ctx->event, s->taps[s->next_tap].argv, IP_TIMEOUT_USEC, on_tap_done, s,
                              &s->job);
        if (r < 0) {
                set_error(&why, "cannot run %s: %s", s->taps[s->next_tap].argv[0], errno_str(r));
                return start_fail(s, r, why);
        }
}

static void on_mkfs_done(ProcessJob *j, int status, const char *output, void *userdata) {
        VmStart *s = userdata;
        loop_note("VM %s: mkfs.ext4 done", s->vm->config->name);
        _cleanup_free_ char *out = strdup(output);
        char *why = NULL;

        s->job = process_job_free(j);
        if (status == 0 && rename(s->upper_tmp, s->upper) < 0)
                status = -errno;
        if (status != 0) {
                set_error(&why, "creating the writable layer failed (mkfs.ext4: %s)",
                                status < 0 ? errno_str(status) : out ? strstrip(out) : "out of memory");
                return start_fail(s, status < 0 ? status : -EIO, why);
        }
        s->upper_tmp = mfree(s->upper_tmp);
        step_taps(s);
}

/* The per-VM writable layer over a shared template: a sparse ext4 image,
 * made once, kept across restarts, removed by delete. */
static void step_upper(VmStart *s) {
        char size[32], *why = NULL;
        int r;

        if (!s->upper_tmp)
                return step_taps(s);
        /* The file was made by vm_start_upper_tmp(), and QEMU gets its fd. */
        snprintf(size, sizeof(size), "%" PRIu64 "k", s->vm->config->rootfs_size / 1024);
        char *argv[] = { (char *) "mkfs.ext4", (char *) "-q", (char *) "-F", (char *) "-L", (char *) "zvm-upper",
                         (char *) "-E", (char *) "root_owner=0:0", (char *) "-m", (char *) "0", s->upper_tmp, size,
                         NULL };
        r = process_job_start(s->vm->ctx->event, argv, MKFS_TIMEOUT_USEC, on_mkfs_done, s, &s->job);
        if (r < 0) {
                set_error(&why, "creating the writable layer failed (mkfs.ext4: %s)", errno_str(r));
                return start_fail(s, r, why);
        }
}

int vm_start(Vm *vm, bool root, char **ret_error) {
        _cleanup_(vm_start_freep) VmStart *s = NULL;
        _cleanup_free_ char *template = NULL;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->vm = vm;
        s->root = root;
        s->qmp_fd = s->serial_fd = s->vhost_fd = s->passt_qemu_fd = s->passt_fd = -EBADF;
        vm_sandbox_fds_init(&s->fds);
        /* The steps named for the loop's timing (a start is one iteration). */
        loop_note("VM %s: start: checks", vm->config->name);
        r = vm_start_check(vm, s, &template, ret_error);
        if (r < 0)
                return r;
        loop_note("VM %s: start: sockets, files, argv", vm->config->name);
        r = vm_start_prepare(vm, s, template, ret_error);
        if (r < 0) {
                agent_stop(&vm->agent);
                vm_running_drop(vm);    /* no run came of it */
                return r;
        }
        /* Everything that can be refused is checked: the rest runs off the loop. */
        vm_reset_run_record(vm);
        vm->accel = s->accel;
        vm->start = TAKE_PTR(s);
        vm_set_state(vm, VM_STATE_STARTING);
        loop_note("VM %s: start: first step", vm->config->name);
        step_upper(vm->start);
        /* A step that could not even be started, or a QEMU that died at
         * once, ended the start already: the caller hears it now, as no
         * state change is left for it to wait on. */
        if (!vm_is_up(vm))
                return set_error(ret_error, "%s", vm->crash_reason ? vm->crash_reason : "the start failed"), -EIO;
        return 0;
}
