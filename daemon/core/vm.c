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
#include "console.h"
#include "fd-util.h"
#include "fileio.h"
#include "log.h"
#include "loop.h"
#include "macro.h"
#include "manager.h"
#include "process.h"
#include "qemu-argv.h"
#include "scope.h"
#include "string-util.h"
#include "ssh.h"
#include "time-util.h"
#include "vm.h"
#include "vm-internal.h"


#define QMP_READY_TIMEOUT_USEC (30ULL * 1000000ULL)
#define STOP_TIMEOUT_USEC (10ULL * 1000000ULL)
#define MKFS_TIMEOUT_MS 60000

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
        agent_detach(vm);     /* the VM may run on: its agent state on disk stays for the next zvmd */
        sd_event_source_disable_unref(vm->acpi_source);
        vm_qmp_detach(vm);
        vm_console_close(vm);
        sd_event_source_disable_unref(vm->pid_source);
        sd_event_source_disable_unref(vm->helper_source);
        sd_event_source_disable_unref(vm->timeout_source);
        safe_close(vm->pidfd);
        safe_close(vm->helper_pidfd);
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
int vm_load(Manager *m, uint32_t vmid, Vm **ret, char **ret_error) {
        _cleanup_(config_file_freep) ConfigFile *cf = NULL;
        _cleanup_free_ char *path = NULL;
        char name[32];
        ConfigError err = {};
        VmConfig *config = NULL;
        Vm *vm;
        int r;

        snprintf(name, sizeof(name), "/%u.conf", vmid);
        path = strjoin(m->paths.vms_dir, name);
        if (!path)
                return -ENOMEM;
        r = config_file_load(path, &cf, &err);
        if (r < 0) {
                if (ret_error && asprintf(ret_error, "%s: %s", path, err.message[0] ? err.message : errno_str(r)) < 0)
                        *ret_error = NULL;
                return r;
        }
        r = vm_config_from_file(cf, vmid, &config, ret_error);
        if (r < 0)
                return r;

        vm = calloc(1, sizeof(*vm));
        if (!vm) {
                vm_config_free(config);
                return -ENOMEM;
        }
        vm->manager = m;
        vm->vmid = vmid;
        vm->cf = TAKE_PTR(cf);
        vm->config = config;
        vm->state = VM_STATE_STOPPED;
        vm->pidfd = vm->helper_pidfd = -EBADF;
        vm->run_dir = paths_vm_run_dir(&m->paths, vmid);
        vm->data_dir = paths_vm_data_dir(&m->paths, vmid);
        if (!vm->run_dir || !vm->data_dir) {
                vm_free(vm);
                return -ENOMEM;
        }
        *ret = vm;
        return 0;
}
/* Writes the config atomically under a per-VM lock file, so that tools
 * other than zvmd that follow the same protocol (flock on
 * <etc>/vms/.<vmid>.lock) never interleave with us. */
int vm_save_config(Vm *vm) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *lock = NULL;
        char name[32];
        int r;

        snprintf(name, sizeof(name), "/.%u.lock", vm->vmid);
        lock = strjoin(vm->manager->paths.vms_dir, name);
        if (!lock)
                return -ENOMEM;
        fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        if (flock(fd, LOCK_EX) < 0)
                return -errno;
        snprintf(name, sizeof(name), "%u.conf", vm->vmid);
        r = config_file_save(vm->cf, vm->manager->paths.vms_dir, name, 0640);
        (void) flock(fd, LOCK_UN);
        return r;
}
int vm_update_config(Vm *vm, json_object *body, char **ret_error, char **ret_key) {
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
        r = manager_unique_error(vm->manager, vm, c, ret_error, ret_key);
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
                (void) ssh_known_hosts_write(vm->manager);
        if (keys_changed && vm->state == VM_STATE_RUNNING && vm->agent_state == AGENT_READY)
                ssh_push_authorized_keys(vm);
        return 0;
}
void vm_set_state(Vm *vm, VmState s) {
        VmState old = vm->state;

        if (old == s)
                return;
        vm->state = s;
        log_info("VM %u (%s): %s → %s", vm->vmid, vm->config->name, vm_state_to_string(old),
                 vm_state_to_string(s));
        manager_emit_state(vm->manager, vm, old);
        vm_finish_waits(vm);
}
char **vm_tail_lines(const char *path, size_t n) {
        _cleanup_free_ char *buf = NULL;
        _cleanup_strv_free_ char **lines = NULL;
        size_t size = 0, count;
        char **out = NULL;

        if (read_full_file(path, &buf, &size, 4 * 1024 * 1024) < 0)
                return NULL;
        if (strv_split(buf, "\n", &lines) < 0)
                return NULL;
        count = strv_length(lines);
        for (size_t i = count > n ? count - n : 0; i < count; i++)
                if (strv_extend(&out, lines[i]) < 0)
                        break;
        return out;
}
static void vm_cleanup_runtime(Vm *vm) {
        static const char *const files[] = { "qmp.sock", "serial.sock", "console.sock", "vhost-vsock.sock",
                                             "vsock.sock" };

        agent_stop(vm);
        vm_qmp_detach(vm);
        vm_console_close(vm);
        vm->pid_source = sd_event_source_disable_unref(vm->pid_source);
        vm->timeout_source = sd_event_source_disable_unref(vm->timeout_source);
        vm->acpi_source = sd_event_source_disable_unref(vm->acpi_source);
        vm->pidfd = safe_close(vm->pidfd);
        vm_stop_helper(vm);
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

                vm->exit_stderr = log ? vm_tail_lines(log, VM_EXIT_STDERR_LINES) : NULL;
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
        vm_set_state(vm, clean ? VM_STATE_STOPPED : VM_STATE_CRASHED);
}
static int on_qemu_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
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
/* The per-VM writable layer over a shared template: a sparse ext4 image,
 * made once, kept across restarts, removed by delete. */
static int vm_ensure_upper(Vm *vm, char **ret_path, char **ret_error) {
        _cleanup_free_ char *path = strjoin(vm->data_dir, "/upper.img");
        _cleanup_free_ char *tmp = strjoin(vm->data_dir, "/.upper.img.tmp");
        _cleanup_free_ char *out = NULL;
        char size[32];
        int r;

        if (!path || !tmp)
                return -ENOMEM;
        if (access(path, F_OK) == 0) {
                *ret_path = TAKE_PTR(path);
                return 0;
        }
        r = mkdir_p(vm->data_dir, 0750);
        if (r < 0)
                return set_error(ret_error, "cannot create %s: %s", vm->data_dir, errno_str(r)), r;
        snprintf(size, sizeof(size), "%" PRIu64 "k", vm->config->rootfs_size / 1024);
        char *argv[] = { (char *) "mkfs.ext4", (char *) "-q", (char *) "-F", (char *) "-L", (char *) "zvm-upper",
                         (char *) "-E", (char *) "root_owner=0:0", (char *) "-m", (char *) "0", tmp, size, NULL };
        r = process_run(argv, MKFS_TIMEOUT_MS, &out);
        if (r != 0) {
                (void) unlink(tmp);
                set_error(ret_error, "creating the writable layer failed (mkfs.ext4: %s)",
                          r < 0 ? errno_str(r) : strstrip(out));
                return r < 0 ? r : -EIO;
        }
        if (rename(tmp, path) < 0) {
                r = -errno;
                (void) unlink(tmp);
                return r;
        }
        *ret_path = TAKE_PTR(path);
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
        Manager *m = vm->manager;
        const pid_t pids[] = { vm->pid, vm->helper_pid };
        char unit[64], desc[128];
        int r;

        if (!m->bus)
                return;
        snprintf(unit, sizeof(unit), "zvm-%u.scope", vm->vmid);
        snprintf(desc, sizeof(desc), "zvm VM %u (%s)", vm->vmid, vm->config->name);
        r = scope_start_async(m->bus, unit, "zvm.slice", desc, pids, ELEMENTSOF(pids), on_scope_reply,
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
static int vm_arm_timeout(Vm *vm, uint64_t usec, sd_event_time_handler_t cb) {
        vm->timeout_source = sd_event_source_disable_unref(vm->timeout_source);
        return sd_event_add_time_relative(vm->manager->event, &vm->timeout_source, CLOCK_MONOTONIC, usec, 0, cb, vm);
}
/* What a start needs before anything is created: a stopped VM, a usable
 * accelerator, its run dir, its template and writable layer, a kernel. */
static int vm_start_check(Vm *vm, VmAccel *ret_accel, char **ret_template, char **ret_upper, char **ret_error) {
        Manager *m = vm->manager;
        _cleanup_free_ char *template = NULL, *upper = NULL, *err = NULL;
        const char *kernel = vm->config->kernel ? vm->config->kernel : m->host.caps.kernel;
        VmAccel accel;
        int r;

        if (vm->state != VM_STATE_STOPPED && vm->state != VM_STATE_CRASHED)
                return set_error(ret_error, "VM %u is %s", vm->vmid, vm_state_to_string(vm->state)), -EBUSY;

        accel = qemu_effective_accel(vm->config, &m->host.caps, &err);
        if (accel < 0 || err)
                return set_error(ret_error, "%s", err ? err : "no usable accelerator"), -EINVAL;

        r = mkdir_p(vm->run_dir, 0750);
        if (r < 0)
                return set_error(ret_error, "cannot create %s: %s", vm->run_dir, errno_str(r)), r;

        if (vm->config->rootfs_template) {
                r = paths_template_image(&m->paths, vm->config->rootfs_template, &template);
                if (r < 0)
                        return set_error(ret_error, "template '%s' not found (looked in %s and %s)",
                                         vm->config->rootfs_template, m->paths.templates, m->paths.guest_dir), r;
                r = vm_ensure_upper(vm, &upper, ret_error);
                if (r < 0)
                        return r;
        }
        if (access(kernel, R_OK) < 0)
                return set_error(ret_error, "kernel %s: %s", kernel, errno_str(errno)), -errno;
        *ret_accel = accel;
        *ret_template = TAKE_PTR(template);
        *ret_upper = TAKE_PTR(upper);
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

/* Spawns QEMU with its output (after its command line) in qemu.log. On
 * failure the taps and the helper made for it go again. */
static int vm_spawn_qemu(Vm *vm, char **argv, const int *keep_fds, size_t n_keep, const char *qemu_log,
                         char **ret_error) {
        _cleanup_free_ char *cmd = strv_join(argv, " ");
        _cleanup_close_ int log_fd = -EBADF;
        int r;

        log_fd = open(qemu_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        if (log_fd < 0) {
                r = -errno;
                vm_stop_helper(vm);
                vm_taps_remove(vm);
                return set_error(ret_error, "cannot open %s: %s", qemu_log, errno_str(r)), r;
        }
        log_debug("VM %u: %s", vm->vmid, strnull(cmd));
        if (cmd)
                (void) loop_write(log_fd, cmd, strlen(cmd), false), (void) loop_write(log_fd, "\n", 1, false);
        r = process_spawn(argv, keep_fds, n_keep, log_fd, true, &vm->pid);
        if (r < 0) {
                vm_stop_helper(vm);
                vm_taps_remove(vm);
                return set_error(ret_error, "cannot start %s: %s", argv[0], errno_str(r)), r;
        }
        return 0;
}

/* Watches the QEMU just spawned through a pidfd. If that fails, QEMU died
 * at once (bad argv?): its exit is handled and its output reported. */
static int vm_watch_qemu(Vm *vm, char **ret_error) {
        int r;

        r = process_starttime(vm->pid, &vm->starttime);
        if (r >= 0)
                r = pidfd_open_checked(vm->pid, vm->starttime, &vm->pidfd);
        if (r >= 0)
                r = sd_event_add_child_pidfd(vm->manager->event, &vm->pid_source, vm->pidfd, WEXITED, on_qemu_child, vm);
        if (r < 0) {
                int status = 0;

                (void) waitpid(vm->pid, &status, 0);
                vm_handle_exit(vm, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                               WIFSIGNALED(status) ? WTERMSIG(status) : 0);
                return set_error(ret_error, "QEMU exited at once: %s",
                                 vm->exit_stderr && vm->exit_stderr[0] ? vm->exit_stderr[strv_length(vm->exit_stderr) - 1]
                                                                        : errno_str(r)),
                       -EIO;
        }
        return 0;
}

static int vm_start_run(Vm *vm, char **ret_error) {
        Host *h = &vm->manager->host;
        _cleanup_free_ char *template = NULL, *upper = NULL, *err = NULL, *qemu_log = NULL, *secret = NULL;
        _cleanup_free_ char *qmp_path = NULL, *vhost_sock = NULL;
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_close_ int qmp_fd = -EBADF, client_fd = -EBADF, vhost_fd = -EBADF, serial_fd = -EBADF;
        int keep_fds[3];
        size_t n_keep = 0;
        VmPaths vp;
        VmAccel accel = VM_ACCEL_TCG;
        int r;

        r = vm_start_check(vm, &accel, &template, &upper, ret_error);
        if (r < 0)
                return r;

        qmp_path = vm_run_path(vm, "qmp.sock");
        vhost_sock = vm_run_path(vm, "vhost-vsock.sock");
        qemu_log = vm_run_path(vm, "qemu.log");
        if (!qmp_path || !vhost_sock || !qemu_log)
                return -ENOMEM;

        if (h->caps.vhost_vsock) {
                r = vm_reserve_cid(vm, &vhost_fd, ret_error);
                if (r < 0)
                        return r;
                keep_fds[n_keep++] = vhost_fd;
        }
        r = vm_running_take(vm, ret_error);     /* from here on, the run uses vm->running */
        if (r < 0)
                return r;
        r = vm_qmp_listen(vm, &qmp_fd);
        if (r < 0)
                return set_error(ret_error, "cannot create the QMP socket: %s", errno_str(r)), r;
        keep_fds[n_keep++] = qmp_fd;
        r = vm_console_listen_serial(vm, &serial_fd);
        if (r < 0)
                return set_error(ret_error, "cannot create the serial console socket: %s", errno_str(r)), r;
        keep_fds[n_keep++] = serial_fd;
        r = agent_prepare(vm, &secret);
        if (r < 0)
                return set_error(ret_error, "cannot prepare the guest agent's secret and listener: %s",
                                 errno_str(r)), r;

        vp = (VmPaths) {
                .run_dir = vm->run_dir,
                .qmp_socket = qmp_path,
                .qmp_fd = qmp_fd,
                .serial_fd = serial_fd,
                .vhost_user_vsock_socket = vhost_sock,
                .vhost_vsock_fd = vhost_fd >= 0 ? vhost_fd : -1,
                .template_image = template,
                .upper_image = upper,
                .agent_secret = secret,
        };
        r = qemu_argv_build(vm->running, &h->caps, &vp, &argv, &err);
        if (r < 0)
                return set_error(ret_error, "%s", err ? err : errno_str(r)), r;

        /* Everything that can be refused is checked: now spawn. */
        vm_reset_run_record(vm);
        r = vm_taps_create(vm, ret_error);
        if (r < 0)
                return r;
        if (!h->caps.vhost_vsock) {
                r = vm_spawn_helper(vm, ret_error);
                if (r < 0) {
                        vm_taps_remove(vm);
                        return r;
                }
        }
        r = vm_spawn_qemu(vm, argv, keep_fds, n_keep, qemu_log, ret_error);
        if (r < 0)
                return r;
        vm->own_child = true;
        vm->accel = accel;
        vm->started_usec = now_usec(CLOCK_REALTIME);
        vm->started_mono = now_usec(CLOCK_MONOTONIC);
        vm->balloon_target_mib = vm->running->balloon_mib > 0 ? vm->running->memory_mib : 0;
        r = vm_watch_qemu(vm, ret_error);
        if (r < 0)
                return r;
        vm_move_to_scope(vm);
        vm_set_state(vm, VM_STATE_STARTING);

        serial_fd = safe_close(serial_fd);      /* QEMU holds its own copy */
        r = vm_console_open(vm);
        if (r < 0)
                log_warning_errno(r, "VM %u: cannot relay the serial console: %m", vm->vmid);

        r = qmp_connect_unix(qmp_path, &client_fd);
        qmp_fd = safe_close(qmp_fd);    /* QEMU holds its own copy */
        if (r >= 0)
                r = vm_qmp_attach(vm, TAKE_FD(client_fd));
        if (r < 0)
                log_warning_errno(r, "VM %u: cannot connect to QMP: %m", vm->vmid);
        (void) vm_arm_timeout(vm, QMP_READY_TIMEOUT_USEC, on_start_timeout);
        r = vm_state_file_save(vm);
        if (r < 0)
                log_warning_errno(r, "VM %u: cannot save runtime state, re-adoption will not work: %m", vm->vmid);
        return 0;
}
int vm_start(Vm *vm, char **ret_error) {
        int r = vm_start_run(vm, ret_error);

        if (r < 0 && !vm_is_up(vm))
                vm_running_drop(vm);    /* no run came of it */
        return r;
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
static void on_agent_shutdown(Vm *vm, json_object *response, const char *code, const char *message, void *userdata) {
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
        vm->stop_requested = true;
        vm_set_state(vm, VM_STATE_STOPPING);
        if (vm->agent_state == AGENT_READY) {
                json_object *req = json_object_new_object();

                json_object_object_add(req, "op", json_object_new_string("shutdown"));
                via_agent = agent_call(vm, req, 10ULL * 1000000ULL, on_agent_shutdown, NULL, NULL) >= 0;
                if (via_agent)
                        log_info("VM %u (%s): asked the agent to shut down", vm->vmid, vm->config->name);
        }
        if (via_agent) {
                uint64_t acpi_after = MIN((uint64_t) timeout_s * 1000000ULL / 2, 10ULL * 1000000ULL);

                vm->acpi_source = sd_event_source_disable_unref(vm->acpi_source);
                (void) sd_event_add_time_relative(vm->manager->event, &vm->acpi_source, CLOCK_MONOTONIC, acpi_after,
                                                  0, on_shutdown_acpi, vm);
                r = 0;
        } else
                r = vm_qmp_invoke(vm, "system_powerdown", NULL, NULL, NULL);
        if (r < 0)
                timeout_s = 0;          /* nothing can ask the guest */
        return vm_arm_timeout(vm, (uint64_t) timeout_s * 1000000ULL, on_kill_timeout);
}
int vm_stop(Vm *vm) {
        int r;

        if (!vm_is_up(vm))
                return -ESRCH;
        vm->stop_requested = true;
        vm_set_state(vm, VM_STATE_STOPPING);
        /* quit lets QEMU flush its block layer; the timer is the backstop. */
        r = vm_qmp_invoke(vm, "quit", NULL, NULL, NULL);
        return vm_arm_timeout(vm, r < 0 ? 0 : STOP_TIMEOUT_USEC, on_kill_timeout);
}
int vm_kill(Vm *vm) {
        if (!vm_is_up(vm) || vm->pidfd < 0)
                return -ESRCH;
        vm->stop_requested = true;
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
int vm_set_balloon(Vm *vm, uint64_t target_mib, qmp_result_fn cb, void *userdata, char **ret_error) {
        /* The device and the memory are the run's; the floor is a live
         * key (no restart), so the pending one applies at once. */
        const VmConfig *c = vm_running_config(vm);
        uint64_t floor_mib = vm->config->balloon_mib > 0 ? vm->config->balloon_mib : c->balloon_mib;
        json_object *args;
        int r;

        if (vm->state != VM_STATE_RUNNING)
                return set_error(ret_error, "VM %u is %s", vm->vmid, vm_state_to_string(vm->state)), -ESRCH;
        if (c->balloon_mib == 0)
                return set_error(ret_error, "VM %u has no balloon device (balloon: 0)", vm->vmid), -EOPNOTSUPP;
        if (target_mib < floor_mib || target_mib > c->memory_mib)
                return set_error(ret_error, "target %" PRIu64 " MiB is outside [balloon %" PRIu64 ", memory %" PRIu64 "] MiB",
                                 target_mib, floor_mib, c->memory_mib),
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
int vm_remove_files(Vm *vm) {
        _cleanup_free_ char *conf = NULL, *upper = strjoin(vm->data_dir, "/upper.img"),
                            *hostkeys = strjoin(vm->data_dir, "/" SSH_HOST_KEYS_FILE);
        static const char *const run_files[] = { "console.log", "console.log.1", "qemu.log", "vsock-helper.log",
                                                 "state.json", "running.conf", "qmp.sock", "serial.sock", "console.sock",
                                                 "vhost-vsock.sock", "vsock.sock" };
        char name[32];

        /* Only what zvm created: never the user's disks, models or rootfs
         * images named in the config. */
        for (size_t i = 0; i < ELEMENTSOF(run_files); i++) {
                _cleanup_free_ char *p = vm_run_path(vm, run_files[i]);

                if (p)
                        (void) unlink(p);
        }
        (void) rmdir(vm->run_dir);
        if (upper)
                (void) unlink(upper);
        if (hostkeys)
                (void) unlink(hostkeys);
        (void) rmdir(vm->data_dir);
        snprintf(name, sizeof(name), "/%u.conf", vm->vmid);
        conf = strjoin(vm->manager->paths.vms_dir, name);
        if (!conf)
                return -ENOMEM;
        if (unlink(conf) < 0 && errno != ENOENT)
                return -errno;
        snprintf(name, sizeof(name), "/.%u.lock", vm->vmid);
        free(conf);
        conf = strjoin(vm->manager->paths.vms_dir, name);
        if (conf)
                (void) unlink(conf);
        return 0;
}
