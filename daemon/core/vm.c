/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One VM's life: start (writable layer, vsock helper, QMP socket, QEMU),
 * supervision (pidfd, QMP events), shutdown/stop/kill/reboot, balloon target,
 * crash bookkeeping and re-adoption after a zvmd restart.
 *
 * Runtime files live in <run>/vms/<vmid>/:
 *   qmp.sock          QMP; zvmd creates and listens on it, QEMU inherits the fd
 *   serial.sock       serial console: QEMU listens (zvmd creates it), zvmd is its client
 *   console.sock      serial console for `zvm console`: zvmd listens and relays
 *   console.log(.1)   what the serial console printed, capped (core/console.h)
 *   qemu.log          QEMU's stdout+stderr (last lines reported on a crash)
 *   vhost-vsock.sock  vhost-user socket of the hybrid vsock helper
 *   vsock.sock        host side of hybrid vsock (CONNECT <port>)
 *   state.json        pid + start time of QEMU and helper: what re-adoption needs
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "cid-alloc.h"
#include "config-check.h"
#include "console.h"
#include "fd-util.h"
#include "fileio.h"
#include "log.h"
#include "loop.h"
#include "macro.h"
#include "process.h"
#include "qemu-argv.h"
#include "scope.h"
#include "string-util.h"
#include "ssh.h"
#include "sync-worker.h"
#include "time-util.h"
#include "vm.h"
#include "vm-internal.h"


#define STOP_TIMEOUT_USEC (10ULL * 1000000ULL)

struct VmWait {
        Vm *vm;
        unsigned what;
        vm_wait_fn cb;
        void *userdata;
};

static void vm_finish_waits(Vm *vm);

char *vm_run_path(const Vm *vm, const char *name) {
        return strjoin(vm->run_dir, "/", name);
}

Vm *vm_free(Vm *vm) {
        if (!vm)
                return NULL;
        if (vm->dispatching > 0) {
                vm->free_pending = true;        /* vm_finish_waits() frees it */
                return NULL;
        }
        /* Whoever still waits learns that the VM is gone. */
        vm->dispatching++;
        while (vm->n_waits > 0) {
                VmWait w = *vm->waits[--vm->n_waits];

                free(vm->waits[vm->n_waits]);
                w.cb(vm, -ESHUTDOWN, w.userdata);
        }
        if (vm->start)
                vm_cleanup_runtime(vm); /* a start in preparation: nothing of it stays */
        vm_taps_removal_detach(vm);
        agent_detach(&vm->agent);     /* the VM may run on: its agent state on disk stays for the next zvmd */
        sd_event_source_disable_unref(vm->acpi_source);
        vm_qmp_detach(vm);
        console_close(&vm->console);
        sd_event_source_disable_unref(vm->pid_source);
        sd_event_source_disable_unref(vm->timeout_source);
        safe_close(vm->pidfd);
        vm_helper_detach(&vm->helper);
        vm_helper_detach(&vm->passt);
        config_file_free(vm->cf);
        vm_config_free(vm->config);
        config_file_free(vm->running_cf);
        vm_config_free(vm->running);
        free(vm->run_dir);
        free(vm->data_dir);
        strv_free(vm->exit_stderr);
        free(vm->crash_reason);
        free(vm->kill_reason);
        return mfree(vm);
}
/* Takes cf, on failure too. */
int vm_new(VmContext *ctx, uint32_t vmid, ConfigFile *cf, Vm **ret, char **ret_error) {
        _cleanup_(config_file_freep) ConfigFile *owned = cf;
        VmConfig *config = NULL;
        Vm *vm;
        int r;

        r = vm_config_from_file(owned, vmid, &config, ret_error);
        if (r < 0)
                return r;
        vm = calloc(1, sizeof(*vm));
        if (!vm) {
                vm_config_free(config);
                return -ENOMEM;
        }
        vm->ctx = ctx;
        vm->vmid = vmid;
        vm->cf = TAKE_PTR(owned);
        vm->config = config;
        vm->state = VM_STATE_STOPPED;
        vm->pidfd = -EBADF;
        vm_helper_init(&vm->helper, vm, "the vsock helper", "vsock is down");
        vm_helper_init(&vm->passt, vm, "passt", "its user-mode network is down");
        vm->run_dir = paths_vm_run_dir(ctx->paths, vmid);
        vm->data_dir = paths_vm_data_dir(ctx->paths, vmid);
        agent_init(&vm->agent, ctx->agent, vmid, vm->run_dir);
        if (!vm->run_dir || !vm->data_dir) {
                vm_free(vm);
                return -ENOMEM;
        }
        *ret = vm;
        return 0;
}

int vm_load(VmContext *ctx, uint32_t vmid, Vm **ret, char **ret_error) {
        _cleanup_(config_file_freep) ConfigFile *cf = NULL;
        _cleanup_free_ char *path = NULL;
        char name[32];
        ConfigError err = {};
        int r;

        snprintf(name, sizeof(name), "/%u.conf", vmid);
        path = strjoin(ctx->paths->vms_dir, name);
        if (!path)
                return -ENOMEM;
        r = config_file_load(path, &cf, &err);
        if (r < 0) {
                if (ret_error && asprintf(ret_error, "%s: %s", path, err.message[0] ? err.message : errno_str(r)) < 0)
                        *ret_error = NULL;
                return r;
        }
        return vm_new(ctx, vmid, TAKE_PTR(cf), ret, ret_error);
}
/* Writes the config atomically under a per-VM lock file, so that tools
 * other than zvmd that follow the same protocol (flock on
 * <etc>/vms/.<vmid>.lock) never interleave with us. */
int vm_save_config(Vm *vm) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *lock = NULL;
        char name[32];
        int r;

        if (vm->pool)
                return 0;       /* its config is running.conf, never in <etc>/vms */
        snprintf(name, sizeof(name), "/.%u.lock", vm->vmid);
        lock = strjoin(vm->ctx->paths->vms_dir, name);
        if (!lock)
                return -ENOMEM;
        fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        if (flock(fd, LOCK_EX) < 0)
                return -errno;
        snprintf(name, sizeof(name), "%u.conf", vm->vmid);
        r = config_file_save(vm->cf, vm->ctx->paths->vms_dir, name, 0640);
        (void) flock(fd, LOCK_UN);
        return r;
}
int vm_check_start_policy(Vm *vm, bool root, char **ret_error, char **ret_key) {
        /* Root may start anything, and its start fails where it always did
         * (a missing file: QEMU's error), so that nothing changes for it. */
        if (root)
                return 0;
        return config_check_host(vm->ctx->paths, vm->ctx->policy, vm->config, NULL, root, ret_error, ret_key);
}

int vm_update_config(Vm *vm, json_object *body, bool root, char **ret_error, char **ret_key) {
        _cleanup_(config_file_freep) ConfigFile *copy = NULL;
        _cleanup_free_ char *old_text = NULL;
        ConfigFile *old_cf;
        VmConfig *c = NULL;
        bool renamed, keys_changed;
        int r;

        if (json_object_object_get_ex(body, "vmid", NULL))
                return set_error(ret_error, "vmid: cannot be changed"), set_error(ret_key, "vmid"), -EPERM;
        r = config_file_format(vm->cf, &old_text, NULL);
        if (r < 0)
                return r;
        /* Validate on a copy: nothing changes unless everything passes. */
        r = config_file_parse(old_text, strlen(old_text), &copy, NULL);
        if (r >= 0)
                r = vm_config_apply_json(copy, body, NULL, ret_error, ret_key);
        if (r < 0)
                return r;
        r = vm_config_from_file(copy, vm->vmid, &c, ret_error);
        if (r < 0)
                return r;
        r = vm->ctx->unique_error(vm, c, ret_error, ret_key, vm->ctx->userdata);
        if (r >= 0)     /* firsthour: files and templates exist now, not only at the next start */
                r = config_check_host(vm->ctx->paths, vm->ctx->policy, c, body, root, ret_error, ret_key);
        if (r < 0) {
                vm_config_free(c);
                return r;
        }

        old_cf = vm->cf;
        vm->cf = copy;
        r = vm_save_config(vm);
        if (r < 0) {
                vm->cf = old_cf;
                vm_config_free(c);
                return set_error(ret_error, "cannot write the config: %s", errno_str(r)), -EIO;
        }
        copy = NULL;
        config_file_free(old_cf);
        renamed = !streq(vm->config->name, c->name);
        keys_changed = !strv_equal(vm->config->sshkeys, c->sshkeys);
        vm_config_free(vm->config);
        vm->config = c;
        if (renamed)
                vm->ctx->renamed(vm, vm->ctx->userdata);
        if (keys_changed && vm->state == VM_STATE_RUNNING && vm->agent.state == AGENT_READY)
                ssh_push_authorized_keys(&vm->agent, vm->config->sshkeys);
        return 0;
}
void vm_set_state(Vm *vm, VmState s) {
        VmState old = vm->state;

        if (old == s)
                return;
        vm->state = s;
        log_info("VM %u (%s): %s → %s", vm->vmid, vm->config->name, vm_state_to_string(old),
                 vm_state_to_string(s));
        if (vm->ctx->state_changed)
                vm->ctx->state_changed(vm, old, vm->ctx->userdata);
        vm_finish_waits(vm);
}
char **vm_tail_lines(const char *path, size_t n, bool skip_first) {
        _cleanup_free_ char *buf = NULL;
        _cleanup_strv_free_ char **lines = NULL;
        size_t size = 0, count;
        char **out = NULL;

        if (read_full_file(path, &buf, &size, 4 * 1024 * 1024) < 0)
                return NULL;
        if (strv_split(buf, "\n", &lines) < 0)
                return NULL;
        count = strv_length(lines);
        for (size_t i = MAX(count > n ? count - n : 0, (size_t) skip_first); i < count; i++)
                if (strv_extend(&out, lines[i]) < 0)
                        break;
        return out;
}
void vm_cleanup_runtime(Vm *vm) {
        static const char *const files[] = { "qmp.sock", "serial.sock", "console.sock", "vhost-vsock.sock",
                                             "vsock.sock", "agent.secret", "vsock.sock_1025",
                                             "vsock/vhost-vsock.sock", "vsock/vsock.sock", "vsock/vsock.sock_1025" };

        vm->start = vm_start_free(vm->start);
        agent_stop(&vm->agent);
        vm_qmp_detach(vm);
        console_close(&vm->console);
        vm->pid_source = sd_event_source_disable_unref(vm->pid_source);
        vm->timeout_source = sd_event_source_disable_unref(vm->timeout_source);
        vm->acpi_source = sd_event_source_disable_unref(vm->acpi_source);
        vm->pidfd = safe_close(vm->pidfd);
        vm_helper_stop(&vm->helper);
        vm_helper_stop(&vm->passt);
        vm_taps_remove(vm);
        vm_running_drop(vm);
        vm_state_file_remove(vm);
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *p = vm_run_path(vm, files[i]);

                if (p)
                        (void) unlink(p);
        }
        vm->pid = 0;
        vm->starttime = 0;
        vm->started_usec = 0;
        vm->pool_slot = vm->pool ? vm->vmid : 0;
        vm->naming = VM_NAMING_NONE;
        vm->from_pool = false;
        vm->balloon_actual_mib = 0;
}
/* code < 0: unknown (re-adopted QEMU is not our child). */
void vm_handle_exit(Vm *vm, int code, int sig) {
        bool clean;

        clean = (sig == 0 && code == 0 && (vm->guest_shutdown_seen || vm->stop_requested)) ||
                (vm->stop_requested && (sig == SIGKILL || sig == SIGTERM)) ||
                (code < 0 && (vm->guest_shutdown_seen || vm->stop_requested));

        vm->exit_code = code;
        vm->exit_signal = sig;
        vm->exit_stderr = strv_free(vm->exit_stderr);
        vm->crash_reason = mfree(vm->crash_reason);
        if (!clean) {
                _cleanup_free_ char *why = TAKE_PTR(vm->kill_reason);

                _cleanup_free_ char *log = vm_run_path(vm, "qemu.log");

                /* firsthour: line 1 is the command line zvmd wrote, not QEMU's words. */
                vm->exit_stderr = log ? vm_tail_lines(log, VM_EXIT_STDERR_LINES, true) : NULL;
                if (why)
                        vm->crash_reason = TAKE_PTR(why);
                else if (sig > 0)
                        vm->crash_reason = asprintf(&why, "QEMU was killed by signal %d (%s)", sig, strsignal(sig)) < 0
                                                   ? NULL : TAKE_PTR(why);
                else if (code >= 0)
                        vm->crash_reason = asprintf(&why, "QEMU exited with status %d", code) < 0 ? NULL : TAKE_PTR(why);
                else
                        vm->crash_reason = strdup("QEMU exited while zvmd was not its parent "
                                                  "(re-adopted); exit status unknown");
                log_warning("VM %u (%s) crashed: %s", vm->vmid, vm->config->name, strnull(vm->crash_reason));
        }
        vm_cleanup_runtime(vm);
        vm->stop_requested = vm->guest_shutdown_seen = false;
        vm_set_state_after_taps(vm, clean ? VM_STATE_STOPPED : VM_STATE_CRASHED);
}
int vm_on_qemu_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
        loop_note("VM %s: QEMU exited", ((Vm *) userdata)->config->name);
        Vm *vm = userdata;
        int code = -1, sig = 0;

        if (si->si_code == CLD_EXITED)
                code = si->si_status;
        else
                sig = si->si_status;
        vm_handle_exit(vm, code, sig);
        return 0;
}
int vm_wait(Vm *vm, unsigned what, vm_wait_fn cb, void *userdata, VmWait **ret) {
        VmWait *w;

        if (vm->n_waits >= VM_WAITERS_MAX)
                return -EBUSY;
        w = malloc(sizeof(*w));
        if (!w)
                return -ENOMEM;
        *w = (VmWait) { vm, what, cb, userdata };
        vm->waits[vm->n_waits++] = w;
        if (ret)
                *ret = w;
        return 0;
}
static void vm_wait_unlink(VmWait *w) {
        Vm *vm = w->vm;

        for (size_t i = 0; i < vm->n_waits; i++)
                if (vm->waits[i] == w) {
                        vm->waits[i] = vm->waits[--vm->n_waits];
                        return;
                }
}
void vm_wait_cancel(VmWait *w) {
        if (!w)
                return;
        vm_wait_unlink(w);
        free(w);
}
/* Tells every wait the state matches. A callback may delete the VM
 * (DELETE ?force): vm_free() then only marks it, and the VM is freed here
 * once all of them have run. */
static void vm_finish_waits(Vm *vm) {
        VmWait *fire[VM_WAITERS_MAX];
        size_t n = 0;
        unsigned reached = vm->state == VM_STATE_RUNNING ? VM_WAIT_RUNNING
                           : !vm_is_up(vm)             ? VM_WAIT_DOWN
                                                       : 0;

        if (reached == 0)
                return;
        for (size_t i = 0; i < vm->n_waits;)
                if (vm->waits[i]->what & reached) {
                        fire[n++] = vm->waits[i];
                        vm->waits[i] = vm->waits[--vm->n_waits];
                } else
                        i++;
        vm->dispatching++;
        for (size_t i = 0; i < n; i++) {
                VmWait w = *fire[i];

                free(fire[i]);
                w.cb(vm, vm->state, w.userdata);
        }
        if (--vm->dispatching == 0 && vm->free_pending)
                vm_free(vm);
}
int vm_arm_timeout(Vm *vm, uint64_t usec, sd_event_time_handler_t cb) {
        vm->timeout_source = sd_event_source_disable_unref(vm->timeout_source);
        return sd_event_add_time_relative(vm->ctx->event, &vm->timeout_source, CLOCK_MONOTONIC, usec, 0, cb, vm);
}
static int on_kill_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        loop_note("VM %s: stop timeout", ((Vm *) userdata)->config->name);
        Vm *vm = userdata;

        vm->timeout_source = sd_event_source_disable_unref(vm->timeout_source);
        if (vm->pidfd >= 0) {
                log_notice("VM %u (%s) did not stop in time, killing it", vm->vmid, vm->config->name);
                (void) syscall(SYS_pidfd_send_signal, vm->pidfd, SIGKILL, NULL, 0);
        }
        return 0;
}
/* The backstop of a stop or shutdown: without it a guest that ignores the
 * request keeps its VM "stopping" for ever (and the requests waiting on
 * it), so a deadline that cannot be armed (no memory) means the kill now. */
static int vm_arm_stop_deadline(Vm *vm, uint64_t usec) {
        int r = vm_arm_timeout(vm, usec, on_kill_timeout);

        if (r >= 0)
                return 0;
        log_warning_errno(r, "VM %u (%s): cannot arm the stop deadline, killing it now: %m", vm->vmid,
                          vm->config->name);
        if (vm->pidfd >= 0 && syscall(SYS_pidfd_send_signal, vm->pidfd, SIGKILL, NULL, 0) >= 0)
                return 0;
        return r;
}
bool vm_is_up(const Vm *vm) {
        return vm->state == VM_STATE_RUNNING || vm->state == VM_STATE_STARTING || vm->state == VM_STATE_STOPPING;
}
static int on_shutdown_acpi(sd_event_source *s, uint64_t usec, void *userdata) {
        loop_note("VM %s: ACPI shutdown timer", ((Vm *) userdata)->config->name);
        Vm *vm = userdata;

        vm->acpi_source = sd_event_source_disable_unref(vm->acpi_source);
        log_info("VM %u (%s): asking by ACPI power button", vm->vmid, vm->config->name);
        (void) vm_qmp_invoke(vm, "system_powerdown", NULL, NULL, NULL);
        return 0;
}
static void on_agent_shutdown(VmAgent *a, json_object *response, const char *code, const char *message,
                              void *userdata) {
        Vm *vm = container_of(a, Vm, agent);

        if (!response && vm->acpi_source) {
                /* The agent could not take it: go to ACPI right away. */
                log_info("VM %u: agent shutdown failed (%s)", vm->vmid, strnull(message));
                on_shutdown_acpi(vm->acpi_source, 0, vm);
        }
}
/* A clean shutdown asks the agent first (it knows the guest's init), then
 * presses the ACPI power button, then kills at the timeout. */
int vm_shutdown(Vm *vm, unsigned timeout_s) {
        bool via_agent = false;
        int r;

        if (!vm_is_up(vm))
                return -ESRCH;
        if (vm->start)
                return vm_start_cancel(vm, "shutdown");
        vm->stop_requested = true;
        vm_set_state(vm, VM_STATE_STOPPING);
        if (vm->agent.state == AGENT_READY) {
                json_object *req = json_object_new_object();

                json_object_object_add(req, "op", json_object_new_string("shutdown"));
                via_agent = agent_call(&vm->agent, req, 10ULL * 1000000ULL, on_agent_shutdown, NULL, NULL) >= 0;
                if (via_agent)
                        log_info("VM %u (%s): asked the agent to shut down", vm->vmid, vm->config->name);
        }
        if (via_agent) {
                uint64_t acpi_after = MIN((uint64_t) timeout_s * 1000000ULL / 2, 10ULL * 1000000ULL);

                vm->acpi_source = sd_event_source_disable_unref(vm->acpi_source);
                (void) sd_event_add_time_relative(vm->ctx->event, &vm->acpi_source, CLOCK_MONOTONIC, acpi_after,
                                                  0, on_shutdown_acpi, vm);
                r = 0;
        } else
                r = vm_qmp_invoke(vm, "system_powerdown", NULL, NULL, NULL);
        if (r < 0)
                timeout_s = 0;          /* nothing can ask the guest */
        (void) vm_state_file_save(vm);  /* a stop in flight: a new zvmd carries it on */
        return vm_arm_stop_deadline(vm, (uint64_t) timeout_s * 1000000ULL);
}
int vm_stop(Vm *vm) {
        int r;

        if (!vm_is_up(vm))
                return -ESRCH;
        if (vm->start)
                return vm_start_cancel(vm, "stop");
        vm->stop_requested = true;
        vm_set_state(vm, VM_STATE_STOPPING);
        /* quit lets QEMU flush its block layer; the timer is the backstop. */
        r = vm_qmp_invoke(vm, "quit", NULL, NULL, NULL);
        (void) vm_state_file_save(vm);
        return vm_arm_stop_deadline(vm, r < 0 ? 0 : STOP_TIMEOUT_USEC);
}
int vm_kill(Vm *vm) {
        if (vm_is_up(vm) && vm->start)
                return vm_start_cancel(vm, "kill");
        if (!vm_is_up(vm) || vm->pidfd < 0)
                return -ESRCH;
        vm->stop_requested = true;
        (void) vm_state_file_save(vm);
        if (syscall(SYS_pidfd_send_signal, vm->pidfd, SIGKILL, NULL, 0) < 0)
                return -errno;
        return 0;
}
int vm_reboot(Vm *vm, qmp_result_fn cb, void *userdata) {
        if (vm->state != VM_STATE_RUNNING)
                return -ESRCH;
        return vm_qmp_invoke(vm, "system_reset", NULL, cb, userdata);
}
/* The one code path that sets a balloon target; the later host-pressure
 * policy drives it too. */
uint64_t vm_balloon_floor(Vm *vm) {
        /* The device and the memory are the run's; the floor is a live
         * key (no restart), so the pending one applies at once. firsthour:
         * a floor left at its default follows the memory that runs (half of
         * it), not a pending memory change. */
        return vm->config->balloon_mib > 0 && config_file_get(vm->cf, NULL, "balloon") ? vm->config->balloon_mib
                                                                                         : vm_running_config(vm)->balloon_mib;
}

int vm_set_balloon(Vm *vm, uint64_t target_mib, qmp_result_fn cb, void *userdata, char **ret_error) {
        const VmConfig *c = vm_running_config(vm);
        uint64_t floor_mib = vm_balloon_floor(vm);
        json_object *args;
        int r;

        if (vm->state != VM_STATE_RUNNING)
                return set_error(ret_error, "VM %u is %s", vm->vmid, vm_state_to_string(vm->state)), -ESRCH;
        if (c->balloon_mib == 0)
                return set_error(ret_error, "VM %u has no balloon device (balloon: 0)", vm->vmid), -EOPNOTSUPP;
        if (target_mib < floor_mib || target_mib > c->memory_mib)
                return set_error(ret_error, "target %" PRIu64 " MiB is outside [balloon %" PRIu64 ", memory %" PRIu64 "] MiB"
                                 "%s", target_mib, floor_mib, c->memory_mib,   /* firsthour: say how to go lower */
                                 target_mib < floor_mib ? "; the floor is the config key balloon: set it lower first" : ""),
                       -ERANGE;
        args = json_object_new_object();
        if (!args)
                return -ENOMEM;
        json_object_object_add(args, "value", json_object_new_int64((int64_t) (target_mib << 20)));
        r = vm_qmp_invoke(vm, "balloon", args, cb, userdata);
        if (r < 0)
                return set_error(ret_error, "QMP is not connected"), r;
        vm->balloon_target_mib = target_mib;
        (void) vm_state_file_save(vm);
        return 0;
}
/* What zvm puts in a VM's run and data dirs (first path components). */
const char *const vm_run_names[] = { "console.log", "console.log.1", "qemu.log", "vsock-helper.log",
                                            "passt.log", "state.json", "running.conf", "qmp.sock", "serial.sock",
                                            "console.sock", "vhost-vsock.sock", "vsock.sock", "vsock.sock_1025",
                                            "agent.secret", "vsock", NULL };
static const char *const vm_data_names[] = { "upper.img", ".upper.img.tmp", SSH_HOST_KEYS_FILE, NULL };

/* -ENOTEMPTY if dir holds a name not in names (a disk the user put there:
 * never ours to remove), -ENOENT if there is no dir. */
static int dir_holds_only(const char *dir, const char *const *names) {
        struct dirent *de;
        DIR *d = opendir(dir);
        int r = 0;

        if (!d)
                return -errno;
        while (r >= 0 && (de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, "..") &&
                    !startswith(de->d_name, ".#deleted-") &&   /* the worker's, on its way out */
                    !strv_contains((char *const *) names, de->d_name))
                        r = -ENOTEMPTY;
        closedir(d);
        return r;
}

/* Issue 14 (the loop under a busy disk): one rename on the loop, which
 * frees the VMID's names at once, and the fsync worker removes the rest.
 * A zvmd killed meanwhile leaves ".#deleted-…", which the next one removes
 * (paths_sweep_temporaries()). 0 also when there is no dir; < 0: the
 * caller removes the files itself. */
int vm_remove_dir_aside(Vm *vm, const char *dir, const char *const *names) {
        _cleanup_free_ char *parent = NULL;
        _cleanup_close_ int pfd = -EBADF;
        const char *base = strrchr(dir, '/');
        char aside[64];
        int r;

        if (!vm->ctx->sync || !base)
                return -EOPNOTSUPP;
        r = dir_holds_only(dir, names);
        if (r < 0)
                return r == -ENOENT ? 0 : r;
        parent = strndup(dir, (size_t) (base - dir));
        if (!parent)
                return -ENOMEM;
        pfd = open(isempty(parent) ? "/" : parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd < 0)
                return -errno;
        snprintf(aside, sizeof(aside), ".#deleted-%u-%" PRIx64, vm->vmid, now_usec(CLOCK_MONOTONIC));
        if (renameat(pfd, base + 1, pfd, aside) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (sync_worker_remove(vm->ctx->sync, pfd, aside) >= 0)
                TAKE_FD(pfd);
        else
                (void) rm_rf_at(pfd, aside);
        return 0;
}

int vm_remove_files(Vm *vm) {
        _cleanup_free_ char *conf = NULL;
        _cleanup_close_ int vms_fd = -EBADF;
        char name[32];

        /* Only what zvm created: never the user's disks, models or rootfs
         * images named in the config. The run dir's names are also what a
         * start cut by a killed zvmd leaves (issue 14, chaos): else the
         * rmdir()s fail and the dirs outlive the VM. */
        if (vm_remove_dir_aside(vm, vm->run_dir, vm_run_names) < 0) {
                static const char *const in_vsock[] = { "vsock/vhost-vsock.sock", "vsock/vsock.sock",
                                                        "vsock/vsock.sock_1025" };

                for (size_t i = 0; i < ELEMENTSOF(in_vsock); i++) {
                        _cleanup_free_ char *p = vm_run_path(vm, in_vsock[i]);

                        if (p)
                                (void) unlink(p);
                }
                for (size_t i = 0; vm_run_names[i]; i++) {
                        _cleanup_free_ char *p = vm_run_path(vm, vm_run_names[i]);

                        if (p && unlink(p) < 0 && errno == EISDIR)
                                (void) rmdir(p);        /* vsock/, emptied above */
                }
                (void) rmdir(vm->run_dir);
        }
        if (vm_remove_dir_aside(vm, vm->data_dir, vm_data_names) < 0) {
                for (size_t i = 0; vm_data_names[i]; i++) {
                        _cleanup_free_ char *p = strjoin(vm->data_dir, "/", vm_data_names[i]);

                        if (p)
                                (void) unlink(p);
                }
                (void) rmdir(vm->data_dir);
        }
        snprintf(name, sizeof(name), "/%u.conf", vm->vmid);
        conf = strjoin(vm->ctx->paths->vms_dir, name);
        if (!conf)
                return -ENOMEM;
        if (unlink(conf) < 0 && errno != ENOENT)
                return -errno;
        /* The delete is durable before it is acknowledged. */
        vms_fd = open(vm->ctx->paths->vms_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (vms_fd >= 0)
                (void) fileio_sync_dir(vms_fd);
        snprintf(name, sizeof(name), "/.%u.lock", vm->vmid);
        free(conf);
        conf = strjoin(vm->ctx->paths->vms_dir, name);
        if (conf)
                (void) unlink(conf);
        return 0;
}
