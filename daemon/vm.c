/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One VM's life: start (writable layer, vsock helper, QMP socket, QEMU),
 * supervision (pidfd, QMP events), shutdown/stop/kill/reboot, balloon target,
 * crash bookkeeping and re-adoption after a zvmd restart.
 *
 * Runtime files live in <run>/vms/<vmid>/:
 *   qmp.sock          QMP; zvmd creates and listens on it, QEMU inherits the fd
 *   console.sock      serial console (QEMU listens; `zvm console` attaches)
 *   console.log       everything the serial console printed
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
#include "fd-util.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "process.h"
#include "qemu-argv.h"
#include "string-util.h"
#include "ssh.h"
#include "vm.h"

#define QMP_READY_TIMEOUT_USEC (30ULL * 1000000ULL)
#define STOP_TIMEOUT_USEC (10ULL * 1000000ULL)
#define HELPER_SOCKET_TIMEOUT_MS 5000
#define MKFS_TIMEOUT_MS 60000

static void vm_qmp_detach(Vm *vm);
static void vm_finish_waiters(Vm *vm);
static void vm_taps_remove(Vm *vm);

static uint64_t now_usec(clockid_t clock) {
        struct timespec ts;

        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

static char *vm_run_path(const Vm *vm, const char *name) {
        return strjoin(vm->run_dir, "/", name);
}

Vm *vm_free(Vm *vm) {
        if (!vm)
                return NULL;
        /* A reply consumes a request: tell whoever still waits. */
        for (size_t i = 0; i < vm->n_waiters; i++) {
                http_request_set_closed_handler(vm->waiters[i].req, NULL, NULL);
                http_request_reply_error(vm->waiters[i].req, API_ERROR_UNAVAILABLE, NULL, "VM %u went away", vm->vmid);
        }
        /* The VM may outlive us (zvmd exiting leaves VMs up): forget its
         * agent without deleting the secret and socket the next zvmd needs. */
        vm->agent_state = AGENT_NONE;
        agent_stop(vm);
        sd_event_source_disable_unref(vm->acpi_source);
        vm_qmp_detach(vm);
        sd_event_source_disable_unref(vm->pid_source);
        sd_event_source_disable_unref(vm->helper_source);
        sd_event_source_disable_unref(vm->timeout_source);
        safe_close(vm->pidfd);
        safe_close(vm->helper_pidfd);
        config_file_free(vm->cf);
        vm_config_free(vm->config);
        free(vm->run_dir);
        free(vm->data_dir);
        strv_free(vm->exit_stderr);
        strv_free(vm->pending_restart);
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
                if (ret_error && asprintf(ret_error, "%s: %s", path, err.message[0] ? err.message : strerror(-r)) < 0)
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

void vm_set_state(Vm *vm, VmState s) {
        VmState old = vm->state;

        if (old == s)
                return;
        vm->state = s;
        log_info("VM %u (%s): %s → %s", vm->vmid, vm->config->name, vm_state_to_string(old),
                 vm_state_to_string(s));
        manager_emit_state(vm->manager, vm, old);
        vm_finish_waiters(vm);
}

/* ---- run state (for re-adoption) ------------------------------------ */

static int vm_state_file_save(Vm *vm) {
        _cleanup_free_ char *text = NULL;
        json_object *o = json_object_new_object();

        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "pid", json_object_new_int64(vm->pid));
        json_object_object_add(o, "starttime", json_object_new_int64((int64_t) vm->starttime));
        json_object_object_add(o, "helper_pid", json_object_new_int64(vm->helper_pid));
        json_object_object_add(o, "helper_starttime", json_object_new_int64((int64_t) vm->helper_starttime));
        json_object_object_add(o, "accel", json_object_new_string(vm_accel_to_string(vm->accel)));
        json_object_object_add(o, "started_usec", json_object_new_int64((int64_t) vm->started_usec));
        json_object_object_add(o, "balloon_target_mib", json_object_new_int64((int64_t) vm->balloon_target_mib));
        text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        if (!text)
                return -ENOMEM;
        return write_file_atomic(vm->run_dir, "state.json", text, strlen(text), 0600);
}

static void vm_state_file_remove(Vm *vm) {
        _cleanup_free_ char *p = vm_run_path(vm, "state.json");

        if (p)
                (void) unlink(p);
}

/* ---- exit handling ---------------------------------------------------- */

static char **tail_lines(const char *path, size_t n) {
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

static void vm_stop_helper(Vm *vm) {
        if (vm->helper_pidfd >= 0)
                (void) syscall(SYS_pidfd_send_signal, vm->helper_pidfd, SIGTERM, NULL, 0);
        vm->helper_source = sd_event_source_disable_unref(vm->helper_source);
        vm->helper_pidfd = safe_close(vm->helper_pidfd);
        /* Our own helper child is reaped by the SIGCHLD-less path: a zombie
         * would linger, so reap it here without blocking for long. */
        if (vm->helper_pid > 0) {
                for (int i = 0; i < 50; i++) {
                        pid_t w = waitpid(vm->helper_pid, NULL, WNOHANG);

                        if (w != 0)
                                break;          /* reaped, or not our child */
                        struct timespec ts = { .tv_nsec = 10 * 1000 * 1000 };
                        nanosleep(&ts, NULL);
                }
        }
        vm->helper_pid = 0;
        vm->helper_starttime = 0;
}

static void vm_cleanup_runtime(Vm *vm) {
        static const char *const files[] = { "qmp.sock", "console.sock", "vhost-vsock.sock", "vsock.sock" };

        agent_stop(vm);
        vm_qmp_detach(vm);
        vm->pid_source = sd_event_source_disable_unref(vm->pid_source);
        vm->timeout_source = sd_event_source_disable_unref(vm->timeout_source);
        vm->acpi_source = sd_event_source_disable_unref(vm->acpi_source);
        vm->pidfd = safe_close(vm->pidfd);
        vm_stop_helper(vm);
        vm_taps_remove(vm);
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
static void vm_handle_exit(Vm *vm, int code, int sig) {
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

                vm->exit_stderr = log ? tail_lines(log, VM_EXIT_STDERR_LINES) : NULL;
                if (why)
                        vm->crash_reason = TAKE_PTR(why);
                else if (sig > 0)
                        (void) asprintf(&vm->crash_reason, "QEMU was killed by signal %d (%s)", sig, strsignal(sig));
                else if (code >= 0)
                        (void) asprintf(&vm->crash_reason, "QEMU exited with status %d", code);
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
        Vm *vm = userdata;
        int code = -1, sig = 0;

        if (si->si_code == CLD_EXITED)
                code = si->si_status;
        else
                sig = si->si_status;
        vm_handle_exit(vm, code, sig);
        return 0;
}

static int on_adopted_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        vm_handle_exit(userdata, -1, 0);
        return 0;
}

static int on_helper_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Vm *vm = userdata;

        if (vm->helper_pid > 0)
                (void) waitpid(vm->helper_pid, NULL, WNOHANG);
        log_warning("VM %u (%s): the vsock helper exited; vsock is down until the VM restarts", vm->vmid,
                    vm->config->name);
        vm->helper_source = sd_event_source_disable_unref(vm->helper_source);
        vm->helper_pidfd = safe_close(vm->helper_pidfd);
        vm->helper_pid = 0;
        return 0;
}

/* ---- waiters ------------------------------------------------------------ */

/* The client went away: forget it, and reply (a no-op that frees the
 * request, see http-server.h). */
static void on_waiter_closed(HttpRequest *req, void *userdata) {
        Vm *vm = userdata;

        for (size_t i = 0; i < vm->n_waiters; i++)
                if (vm->waiters[i].req == req) {
                        vm->waiters[i] = vm->waiters[--vm->n_waiters];
                        break;
                }
        http_request_reply_error(req, API_ERROR_UNAVAILABLE, NULL, "client went away");
}

int vm_add_waiter(Vm *vm, HttpRequest *req, VmWaitFor what, bool delete_after) {
        if (vm->n_waiters >= VM_WAITERS_MAX)
                return -EBUSY;
        vm->waiters[vm->n_waiters++] = (VmWaiter) { req, what, delete_after };
        http_request_set_closed_handler(req, on_waiter_closed, vm);
        return 0;
}

static void reply_vm(HttpRequest *req, Vm *vm) {
        json_object *j = NULL;

        if (vm_to_json(vm, true, &j) < 0) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return;
        }
        http_request_reply_json(req, 200, j);
}

static void vm_finish_waiters(Vm *vm) {
        bool down = vm->state == VM_STATE_STOPPED || vm->state == VM_STATE_CRASHED;
        bool delete = false;

        for (size_t i = 0; i < vm->n_waiters;) {
                VmWaiter w = vm->waiters[i];
                bool done = false;

                if (w.what == VM_WAIT_RUNNING && vm->state == VM_STATE_RUNNING)
                        done = true;
                else if (w.what == VM_WAIT_RUNNING && down) {
                        http_request_set_closed_handler(w.req, NULL, NULL);
                        http_request_reply_error(w.req, API_ERROR_QEMU_FAILED, NULL, "VM %u failed to start: %s",
                                                 vm->vmid, vm->crash_reason ? vm->crash_reason : "QEMU exited");
                        vm->waiters[i] = vm->waiters[--vm->n_waiters];
                        continue;
                } else if (w.what == VM_WAIT_DOWN && down)
                        done = true;
                if (!done) {
                        i++;
                        continue;
                }
                vm->waiters[i] = vm->waiters[--vm->n_waiters];
                http_request_set_closed_handler(w.req, NULL, NULL);
                if (w.delete_after)
                        delete = true;
                reply_vm(w.req, vm);
        }
        if (delete && down) {
                Manager *m = vm->manager;

                (void) vm_remove_files(vm);
                manager_remove_vm(m, vm);
                vm_free(vm);
        }
}

/* ---- QMP ---------------------------------------------------------------- */

static void vm_qmp_update_events(Vm *vm) {
        short ev;
        uint32_t mask = 0;

        if (!vm->qmp || !vm->qmp_source)
                return;
        ev = qmp_client_poll_events(vm->qmp);
        if (ev & POLLIN)
                mask |= EPOLLIN;
        if (ev & POLLOUT)
                mask |= EPOLLOUT;
        (void) sd_event_source_set_io_events(vm->qmp_source, mask);
}

static void vm_qmp_detach(Vm *vm) {
        vm->qmp_source = sd_event_source_disable_unref(vm->qmp_source);
        vm->qmp = qmp_client_free(vm->qmp);
}

/* Takes ownership of args. */
static int vm_qmp_invoke(Vm *vm, const char *cmd, json_object *args, qmp_result_fn cb, void *userdata) {
        int r;

        if (!vm->qmp) {
                json_object_put(args);
                return -ENOTCONN;
        }
        /* qmp_client_invoke() takes a reference of its own; ours was
         * handed to us by the caller. */
        r = qmp_client_invoke(vm->qmp, cmd, args, cb, userdata);
        json_object_put(args);
        vm_qmp_update_events(vm);
        return r;
}

static int on_qmp_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Vm *vm = userdata;
        int r;

        r = qmp_client_process(vm->qmp);
        if (r < 0) {
                /* QEMU closed QMP: it is exiting; the pidfd tells us when. */
                log_debug_errno(r, "VM %u: QMP connection closed: %m", vm->vmid);
                vm_qmp_detach(vm);
                return 0;
        }
        vm_qmp_update_events(vm);
        return 0;
}

static void on_qmp_event(QmpClient *c, const char *event, json_object *data, void *userdata) {
        Vm *vm = userdata;
        json_object *v;

        if (streq(event, "SHUTDOWN")) {
                vm->guest_shutdown_seen = true;
                if (vm->state == VM_STATE_RUNNING)
                        vm_set_state(vm, VM_STATE_STOPPING);
        } else if (streq(event, "RESET") && json_object_object_get_ex(data, "guest", &v) &&
                   json_object_get_boolean(v)) {
                /* The kernel runs with panic=-1, so a panicking guest resets
                 * (zvmd does not pass -no-reboot: `zvm reboot` must work).
                 * Three guest resets within a minute are a boot loop: stop
                 * it and report a crash rather than burn CPU forever. */
                uint64_t now = now_usec(CLOCK_MONOTONIC);

                memmove(vm->resets, vm->resets + 1, sizeof(vm->resets) - sizeof(vm->resets[0]));
                vm->resets[ELEMENTSOF(vm->resets) - 1] = now;
                if (vm->resets[0] > 0 && now - vm->resets[0] < 60ULL * 1000000ULL && vm->pidfd >= 0) {
                        log_warning("VM %u (%s): %zu guest resets within a minute, stopping the boot loop", vm->vmid,
                                    vm->config->name, ELEMENTSOF(vm->resets));
                        free(vm->kill_reason);
                        vm->kill_reason = strdup("boot loop: the guest reset 3 times within a minute "
                                                 "(kernel panic? see the console log)");
                        (void) syscall(SYS_pidfd_send_signal, vm->pidfd, SIGKILL, NULL, 0);
                }
        } else if (streq(event, "BALLOON_CHANGE") && json_object_object_get_ex(data, "actual", &v))
                vm->balloon_actual_mib = (uint64_t) json_object_get_int64(v) >> 20;
}

static void on_query_balloon(QmpClient *c, json_object *result, const char *error_class, const char *error_desc,
                             void *userdata) {
        Vm *vm = userdata;
        json_object *v;

        if (result && json_object_object_get_ex(result, "actual", &v))
                vm->balloon_actual_mib = (uint64_t) json_object_get_int64(v) >> 20;
}

static void on_query_status(QmpClient *c, json_object *result, const char *error_class, const char *error_desc,
                            void *userdata) {
        Vm *vm = userdata;

        if (!result) {
                log_warning("VM %u: query-status failed: %s", vm->vmid, strnull(error_desc));
                return;
        }
        vm->timeout_source = sd_event_source_disable_unref(vm->timeout_source);
        if (vm->config->balloon_mib > 0)
                (void) vm_qmp_invoke(vm, "query-balloon", NULL, on_query_balloon, vm);
        if (vm->state == VM_STATE_STARTING)
                vm_set_state(vm, VM_STATE_RUNNING);
}

static int vm_qmp_attach(Vm *vm, int fd) {
        int r;

        r = qmp_client_new(fd, &vm->qmp);
        if (r < 0) {
                safe_close(fd);
                return r;
        }
        qmp_client_set_event_handler(vm->qmp, on_qmp_event, vm);
        r = sd_event_add_io(vm->manager->event, &vm->qmp_source, qmp_client_fd(vm->qmp), EPOLLIN, on_qmp_io, vm);
        if (r < 0) {
                vm->qmp = qmp_client_free(vm->qmp);
                return r;
        }
        return vm_qmp_invoke(vm, "query-status", NULL, on_query_status, vm);
}

static int vm_qmp_connect(Vm *vm) {
        _cleanup_free_ char *path = vm_run_path(vm, "qmp.sock");
        int fd, r;

        if (!path)
                return -ENOMEM;
        r = qmp_connect_unix(path, &fd);
        if (r < 0)
                return r;
        return vm_qmp_attach(vm, fd);
}

/* ---- start ---------------------------------------------------------------- */

static int set_error(char **ret_error, const char *fmt, ...) _printf_(2, 3);
static int set_error(char **ret_error, const char *fmt, ...) {
        va_list ap;

        if (!ret_error)
                return 0;
        va_start(ap, fmt);
        if (vasprintf(ret_error, fmt, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
        return 0;
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
                return set_error(ret_error, "cannot create %s: %s", vm->data_dir, strerror(-r)), r;
        snprintf(size, sizeof(size), "%" PRIu64 "k", vm->config->rootfs_size / 1024);
        char *argv[] = { (char *) "mkfs.ext4", (char *) "-q", (char *) "-F", (char *) "-L", (char *) "zvm-upper",
                         (char *) "-E", (char *) "root_owner=0:0", (char *) "-m", (char *) "0", tmp, size, NULL };
        r = process_run(argv, MKFS_TIMEOUT_MS, &out);
        if (r != 0) {
                (void) unlink(tmp);
                set_error(ret_error, "creating the writable layer failed (mkfs.ext4: %s)",
                          r < 0 ? strerror(-r) : strstrip(out));
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

/* Waits (bounded, on inotify) until `name` exists in dir. */
static int wait_for_file(const char *dir, const char *name, int pidfd, int timeout_ms) {
        _cleanup_close_ int ifd = -EBADF;
        _cleanup_free_ char *path = strjoin(dir, "/", name);
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + (uint64_t) timeout_ms * 1000;

        if (!path)
                return -ENOMEM;
        ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (ifd < 0)
                return -errno;
        if (inotify_add_watch(ifd, dir, IN_CREATE | IN_MOVED_TO) < 0)
                return -errno;
        for (;;) {
                struct pollfd p[2] = { { .fd = ifd, .events = POLLIN }, { .fd = pidfd, .events = POLLIN } };
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                char buf[4096];

                if (access(path, F_OK) == 0)
                        return 0;
                if (now >= deadline)
                        return -ETIMEDOUT;
                if (poll(p, pidfd >= 0 ? 2 : 1, (int) ((deadline - now) / 1000) + 1) < 0 && errno != EINTR)
                        return -errno;
                if (p[1].revents)
                        return -ECHILD;         /* the process that should create it died */
                while (read(ifd, buf, sizeof(buf)) > 0)
                        ;
        }
}

static int vm_spawn_helper(Vm *vm, char **ret_error) {
        Host *h = &vm->manager->host;
        _cleanup_free_ char *sock = vm_run_path(vm, "vhost-vsock.sock"), *uds = vm_run_path(vm, "vsock.sock");
        _cleanup_free_ char *log = vm_run_path(vm, "vsock-helper.log");
        _cleanup_free_ char *a_cid = NULL, *a_sock = NULL, *a_uds = NULL;
        _cleanup_close_ int log_fd = -EBADF;
        int r;

        if (!h->vsock_helper)
                return set_error(ret_error, "hybrid vsock needs vhost-device-vsock, which is not installed "
                                            "(scripts/install-deps installs it)"), -ENOENT;
        if (!sock || !uds || !log)
                return -ENOMEM;
        /* Stale sockets from a VM that died with us: the VM is not running
         * (we hold the daemon lock and its state is stopped), so nobody
         * else can be using them. */
        (void) unlink(sock);
        (void) unlink(uds);
        if (asprintf(&a_cid, "--guest-cid=%u", vm->config->cid) < 0 || !(a_sock = strjoin("--socket=", sock)) ||
            !(a_uds = strjoin("--uds-path=", uds)))
                return -ENOMEM;
        log_fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        if (log_fd < 0)
                return -errno;
        /* The TX buffer is the credit the guest gets, so it bounds the
         * guest's packet size: vhost-device-vsock 0.3.0 drops a guest packet
         * over ~32 KiB (a 6.12 guest splits it across two descriptors:
         * DescriptorLengthTooSmall) and the stream stalls or is corrupted.
         * With 32 KiB, 40 MB went guest->host over ssh at ~5 MB/s (TCG). */
        char *argv[] = { h->vsock_helper, a_cid, a_sock, a_uds, (char *) "--tx-buffer-size=32768", NULL };
        r = process_spawn(argv, NULL, 0, log_fd, true, &vm->helper_pid);
        if (r < 0)
                return set_error(ret_error, "cannot start vhost-device-vsock: %s", strerror(-r)), r;
        r = process_starttime(vm->helper_pid, &vm->helper_starttime);
        if (r >= 0)
                r = pidfd_open_checked(vm->helper_pid, vm->helper_starttime, &vm->helper_pidfd);
        if (r >= 0)
                r = wait_for_file(vm->run_dir, "vhost-vsock.sock", vm->helper_pidfd, HELPER_SOCKET_TIMEOUT_MS);
        if (r < 0) {
                _cleanup_strv_free_ char **tail = tail_lines(log, 3);
                _cleanup_free_ char *joined = tail ? strv_join(tail, " | ") : NULL;

                set_error(ret_error, "vhost-device-vsock did not come up (%s)%s%s", strerror(-r),
                          joined ? ": " : "", strempty(joined));
                vm_stop_helper(vm);
                return r;
        }
        return sd_event_add_io(vm->manager->event, &vm->helper_source, vm->helper_pidfd, EPOLLIN, on_helper_exit, vm);
}

/* ---- bridged networking ---------------------------------------------------------- */

static void vm_tap_name(const Vm *vm, unsigned n, char buf[static 16]) {
        /* Must match the ifname= qemu-argv gives QEMU. */
        snprintf(buf, 16, "zvm%" PRIu32 "i%u", vm->vmid, n);
}

static int run_ip(char **argv, char **ret_error) {
        _cleanup_free_ char *out = NULL;
        int r = process_run(argv, 10000, &out);

        if (r != 0) {
                _cleanup_free_ char *cmd = strv_join(argv, " ");

                set_error(ret_error, "'%s' failed: %s", strnull(cmd), r < 0 ? strerror(-r) : strstrip(out));
                return r < 0 ? r : -EIO;
        }
        return 0;
}

static void vm_taps_remove(Vm *vm) {
        for (unsigned n = 0; n < VM_NETS_MAX; n++) {
                char tap[16];

                if (!vm->config->nets[n].present || !vm->config->nets[n].bridge)
                        continue;
                vm_tap_name(vm, n, tap);
                char *argv[] = { (char *) "ip", (char *) "link", (char *) "del", tap, NULL };
                (void) process_run(argv, 10000, NULL);
        }
}

/* Bridged NICs: zvmd makes each tap (persistent, so QEMU only opens it),
 * enslaves it to the bridge and sets its VLAN, before QEMU starts. */
static int vm_taps_create(Vm *vm, char **ret_error) {
        for (unsigned n = 0; n < VM_NETS_MAX; n++) {
                const VmNet *net = &vm->config->nets[n];
                _cleanup_free_ char *brpath = NULL;
                char tap[16], vid[16];
                int r;

                if (!net->present || !net->bridge)
                        continue;
                brpath = strjoin("/sys/class/net/", net->ifname, "/bridge");
                if (!brpath)
                        return -ENOMEM;
                if (access(brpath, F_OK) < 0)
                        return set_error(ret_error, "net%u: bridge '%s' does not exist on this host", n, net->ifname),
                               -ENODEV;
                vm_tap_name(vm, n, tap);
                char *del[] = { (char *) "ip", (char *) "link", (char *) "del", tap, NULL };
                (void) process_run(del, 10000, NULL);      /* a stale tap of ours */
                char *add[] = { (char *) "ip", (char *) "tuntap", (char *) "add", (char *) "dev", tap, (char *) "mode",
                                (char *) "tap", (char *) "vnet_hdr", NULL };
                char *up[] = { (char *) "ip", (char *) "link", (char *) "set", (char *) "dev", tap, (char *) "master",
                               net->ifname, (char *) "up", NULL };
                r = run_ip(add, ret_error);
                if (r >= 0)
                        r = run_ip(up, ret_error);
                if (r >= 0 && net->tag > 0) {
                        snprintf(vid, sizeof(vid), "%u", net->tag);
                        char *vlan[] = { (char *) "bridge", (char *) "vlan", (char *) "add", (char *) "dev", tap,
                                         (char *) "vid", vid, (char *) "pvid", (char *) "untagged", NULL };
                        char *novlan1[] = { (char *) "bridge", (char *) "vlan", (char *) "del", (char *) "dev", tap,
                                            (char *) "vid", (char *) "1", NULL };
                        _cleanup_free_ char *why = NULL;

                        r = run_ip(vlan, &why);
                        if (r >= 0)
                                (void) process_run(novlan1, 10000, NULL);
                        else {
                                set_error(ret_error, "net%u: cannot put the tap on VLAN %u of bridge %s (is "
                                          "vlan_filtering on?): %s", n, net->tag, net->ifname, strnull(why));
                                r = -EOPNOTSUPP;
                        }
                }
                if (r < 0) {
                        vm_taps_remove(vm);
                        return r;
                }
        }
        return 0;
}

/* Kernel vsock: reserve the VM's CID on /dev/vhost-vsock and keep the fd for
 * QEMU. If another user of the host holds the CID, pick the next free one
 * and persist it in the config. */
static int vm_reserve_cid(Vm *vm, int *ret_fd, char **ret_error) {
        Manager *m = vm->manager;
        CidVhostProbe probe = CID_VHOST_PROBE_INIT;
        _cleanup_free_ uint32_t *taken = NULL;
        size_t n_taken = 0;
        uint32_t cid = vm->config->cid;
        int r;

        r = cid > 0 ? cid_probe_vhost(cid, &probe) : -EADDRINUSE;
        if (r == -EADDRINUSE) {
                r = manager_taken_cids(m, vm, &taken, &n_taken);
                if (r >= 0)
                        r = cid_alloc_pick(vm->vmid, taken, n_taken, cid_probe_vhost, &probe, &cid);
                if (r >= 0) {
                        char value[32];
                        _cleanup_free_ char *err = NULL;
                        VmConfig *c = NULL;

                        snprintf(value, sizeof(value), "cid=%u", cid);
                        r = vm_config_set(vm->cf, "vsock", value, &err);
                        if (r >= 0)
                                r = vm_config_from_file(vm->cf, vm->vmid, &c, &err);
                        if (r >= 0) {
                                vm_config_free(vm->config);
                                vm->config = c;
                                r = vm_save_config(vm);
                        }
                        log_notice("VM %u: vsock CID in use on this host, moved to %u", vm->vmid, cid);
                }
        }
        if (r < 0) {
                safe_close(probe.fd);
                return set_error(ret_error, "cannot reserve a vsock CID on /dev/vhost-vsock: %s", strerror(-r)), r;
        }
        *ret_fd = probe.fd;
        return 0;
}

/* QMP listens on a socket we create: QEMU inherits the listening fd, and we
 * can connect at once (the connection waits in the backlog until QEMU's
 * monitor accepts it), so nothing polls for the socket to appear. */
static int vm_qmp_listen(Vm *vm, int *ret_fd) {
        _cleanup_free_ char *path = vm_run_path(vm, "qmp.sock");
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        if (!path)
                return -ENOMEM;
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        (void) unlink(path);            /* stale: see vm_spawn_helper() */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 4) < 0)
                return -errno;
        (void) chmod(path, 0600);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static void vm_move_to_scope(Vm *vm) {
        Manager *m = vm->manager;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        char unit[64], desc[128];
        int r;

        if (!m->bus)
                return;
        snprintf(unit, sizeof(unit), "zvm-%u.scope", vm->vmid);
        snprintf(desc, sizeof(desc), "zvm VM %u (%s)", vm->vmid, vm->config->name);
        r = sd_bus_call_method(m->bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "StartTransientUnit", &error, NULL,
                               "ssa(sv)a(sa(sv))", unit, "fail", 4, "PIDs", "au", 2, (uint32_t) vm->pid,
                               (uint32_t) vm->helper_pid, "Slice", "s", "zvm.slice", "Description", "s", desc,
                               "CollectMode", "s", "inactive-or-failed", 0);
        if (r < 0)
                log_warning("VM %u: cannot move QEMU into %s, it stays in zvmd's cgroup: %s", vm->vmid, unit,
                            error.message ? error.message : strerror(-r));
}

static int on_start_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
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

int vm_start(Vm *vm, char **ret_error) {
        Manager *m = vm->manager;
        Host *h = &m->host;
        _cleanup_free_ char *template = NULL, *upper = NULL, *err = NULL, *qemu_log = NULL, *secret = NULL;
        _cleanup_free_ char *qmp_path = NULL, *console_sock = NULL, *console_log = NULL, *vhost_sock = NULL;
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_close_ int qmp_fd = -EBADF, log_fd = -EBADF, client_fd = -EBADF, vhost_fd = -EBADF;
        int keep_fds[2];
        size_t n_keep = 0;
        VmPaths vp;
        VmAccel accel;
        int r;

        if (vm->state != VM_STATE_STOPPED && vm->state != VM_STATE_CRASHED)
                return set_error(ret_error, "VM %u is %s", vm->vmid, vm_state_to_string(vm->state)), -EBUSY;

        accel = qemu_effective_accel(vm->config, &h->caps, &err);
        if (accel < 0 || err)
                return set_error(ret_error, "%s", err ? err : "no usable accelerator"), -EINVAL;

        r = mkdir_p(vm->run_dir, 0750);
        if (r < 0)
                return set_error(ret_error, "cannot create %s: %s", vm->run_dir, strerror(-r)), r;

        if (vm->config->rootfs_template) {
                r = paths_template_image(&m->paths, vm->config->rootfs_template, &template);
                if (r < 0)
                        return set_error(ret_error, "template '%s' not found (looked in %s and %s)",
                                         vm->config->rootfs_template, m->paths.templates, m->paths.guest_dir), r;
                r = vm_ensure_upper(vm, &upper, ret_error);
                if (r < 0)
                        return r;
        }
        const char *kernel = vm->config->kernel ? vm->config->kernel : h->caps.kernel;
        if (access(kernel, R_OK) < 0)
                return set_error(ret_error, "kernel %s: %s", kernel, strerror(errno)), -errno;

        qmp_path = vm_run_path(vm, "qmp.sock");
        console_sock = vm_run_path(vm, "console.sock");
        console_log = vm_run_path(vm, "console.log");
        vhost_sock = vm_run_path(vm, "vhost-vsock.sock");
        qemu_log = vm_run_path(vm, "qemu.log");
        if (!qmp_path || !console_sock || !console_log || !vhost_sock || !qemu_log)
                return -ENOMEM;
        (void) unlink(console_sock);    /* stale: see vm_spawn_helper() */

        if (h->caps.vhost_vsock) {
                r = vm_reserve_cid(vm, &vhost_fd, ret_error);
                if (r < 0)
                        return r;
                keep_fds[n_keep++] = vhost_fd;
        }
        r = vm_qmp_listen(vm, &qmp_fd);
        if (r < 0)
                return set_error(ret_error, "cannot create the QMP socket: %s", strerror(-r)), r;
        keep_fds[n_keep++] = qmp_fd;
        r = agent_prepare(vm, &secret);
        if (r < 0)
                return set_error(ret_error, "cannot prepare the guest agent's secret and listener: %s",
                                 strerror(-r)), r;

        vp = (VmPaths) {
                .run_dir = vm->run_dir,
                .qmp_socket = qmp_path,
                .qmp_fd = qmp_fd,
                .console_socket = console_sock,
                .console_log = console_log,
                .vhost_user_vsock_socket = vhost_sock,
                .vhost_vsock_fd = vhost_fd >= 0 ? vhost_fd : -1,
                .template_image = template,
                .upper_image = upper,
                .agent_secret = secret,
        };
        r = qemu_argv_build(vm->config, &h->caps, &vp, &argv, &err);
        if (r < 0)
                return set_error(ret_error, "%s", err ? err : strerror(-r)), r;

        /* Everything that can be refused is checked: now spawn. */
        vm->exit_stderr = strv_free(vm->exit_stderr);
        vm->crash_reason = mfree(vm->crash_reason);
        vm->exit_code = vm->exit_signal = 0;
        vm->kill_reason = mfree(vm->kill_reason);
        memset(vm->resets, 0, sizeof(vm->resets));
        vm->pending_restart = strv_free(vm->pending_restart);
        vm->guest_shutdown_seen = vm->stop_requested = false;

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

        log_fd = open(qemu_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        if (log_fd < 0) {
                r = -errno;
                vm_stop_helper(vm);
                vm_taps_remove(vm);
                return set_error(ret_error, "cannot open %s: %s", qemu_log, strerror(-r)), r;
        }
        {
                _cleanup_free_ char *cmd = strv_join(argv, " ");

                log_debug("VM %u: %s", vm->vmid, strnull(cmd));
                if (cmd)
                        (void) loop_write(log_fd, cmd, strlen(cmd), false), (void) loop_write(log_fd, "\n", 1, false);
        }
        r = process_spawn(argv, keep_fds, n_keep, log_fd, true, &vm->pid);
        if (r < 0) {
                vm_stop_helper(vm);
                vm_taps_remove(vm);
                return set_error(ret_error, "cannot start %s: %s", argv[0], strerror(-r)), r;
        }
        vm->own_child = true;
        vm->accel = accel;
        vm->started_usec = now_usec(CLOCK_REALTIME);
        vm->started_mono = now_usec(CLOCK_MONOTONIC);
        vm->balloon_target_mib = vm->config->balloon_mib > 0 ? vm->config->memory_mib : 0;
        r = process_starttime(vm->pid, &vm->starttime);
        if (r >= 0)
                r = pidfd_open_checked(vm->pid, vm->starttime, &vm->pidfd);
        if (r >= 0)
                r = sd_event_add_child_pidfd(m->event, &vm->pid_source, vm->pidfd, WEXITED, on_qemu_child, vm);
        if (r < 0) {
                /* QEMU died at once (bad argv?): report its output. */
                int status = 0;

                (void) waitpid(vm->pid, &status, 0);
                vm_handle_exit(vm, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                               WIFSIGNALED(status) ? WTERMSIG(status) : 0);
                return set_error(ret_error, "QEMU exited at once: %s",
                                 vm->exit_stderr && vm->exit_stderr[0] ? vm->exit_stderr[strv_length(vm->exit_stderr) - 1]
                                                                        : strerror(-r)),
                       -EIO;
        }
        vm_move_to_scope(vm);
        vm_set_state(vm, VM_STATE_STARTING);

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

/* ---- stop ------------------------------------------------------------------ */

static int on_kill_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Vm *vm = userdata;

        vm->timeout_source = sd_event_source_disable_unref(vm->timeout_source);
        if (vm->pidfd >= 0) {
                log_notice("VM %u (%s) did not stop in time, killing it", vm->vmid, vm->config->name);
                (void) syscall(SYS_pidfd_send_signal, vm->pidfd, SIGKILL, NULL, 0);
        }
        return 0;
}

static bool vm_is_up(const Vm *vm) {
        return vm->state == VM_STATE_RUNNING || vm->state == VM_STATE_STARTING || vm->state == VM_STATE_STOPPING;
}

static int on_shutdown_acpi(sd_event_source *s, uint64_t usec, void *userdata) {
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
        json_object *args;
        int r;

        if (vm->state != VM_STATE_RUNNING)
                return set_error(ret_error, "VM %u is %s", vm->vmid, vm_state_to_string(vm->state)), -ESRCH;
        if (vm->config->balloon_mib == 0)
                return set_error(ret_error, "VM %u has no balloon device (balloon: 0)", vm->vmid), -EOPNOTSUPP;
        if (target_mib < vm->config->balloon_mib || target_mib > vm->config->memory_mib)
                return set_error(ret_error, "target %" PRIu64 " MiB is outside [balloon %" PRIu64 ", memory %" PRIu64 "] MiB",
                                 target_mib, vm->config->balloon_mib, vm->config->memory_mib),
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

/* ---- re-adoption ------------------------------------------------------------ */

int vm_adopt(Vm *vm) {
        _cleanup_free_ char *path = vm_run_path(vm, "state.json");
        json_object *j, *v;
        int r;

        if (!path)
                return -ENOMEM;
        j = json_object_from_file(path);
        if (!j)
                return 0;               /* not running */
#define GET_INT(key, dst) \
        if (json_object_object_get_ex(j, key, &v)) \
                dst = json_object_get_int64(v)
        GET_INT("pid", vm->pid);
        GET_INT("starttime", vm->starttime);
        GET_INT("helper_pid", vm->helper_pid);
        GET_INT("helper_starttime", vm->helper_starttime);
        GET_INT("started_usec", vm->started_usec);
        GET_INT("balloon_target_mib", vm->balloon_target_mib);
#undef GET_INT
        vm->accel = json_object_object_get_ex(j, "accel", &v) && streq_ptr(json_object_get_string(v), "kvm")
                            ? VM_ACCEL_KVM
                            : VM_ACCEL_TCG;
        json_object_put(j);

        if (vm->helper_pid > 0 && pidfd_open_checked(vm->helper_pid, vm->helper_starttime, &vm->helper_pidfd) >= 0)
                (void) sd_event_add_io(vm->manager->event, &vm->helper_source, vm->helper_pidfd, EPOLLIN,
                                       on_helper_exit, vm);
        else
                vm->helper_pid = 0;

        r = vm->pid > 0 ? pidfd_open_checked(vm->pid, vm->starttime, &vm->pidfd) : -ESRCH;
        if (r < 0) {
                log_warning("VM %u (%s): QEMU (pid %d) exited while zvmd was not running", vm->vmid,
                            vm->config->name, (int) vm->pid);
                vm->state = VM_STATE_RUNNING;   /* so the transition below is reported */
                vm_handle_exit(vm, -1, 0);
                return 0;
        }
        vm->own_child = false;
        r = sd_event_add_io(vm->manager->event, &vm->pid_source, vm->pidfd, EPOLLIN, on_adopted_exit, vm);
        if (r < 0)
                return r;
        vm->state = VM_STATE_RUNNING;
        r = vm_qmp_connect(vm);
        if (r < 0)
                log_warning_errno(r, "VM %u: re-adopted, but QMP is unreachable: %m", vm->vmid);
        r = agent_readopt(vm);
        if (r < 0)
                log_warning_errno(r, "VM %u: re-adopted, but the agent cannot be reached: %m", vm->vmid);
        log_info("VM %u (%s): re-adopted QEMU pid %d", vm->vmid, vm->config->name, (int) vm->pid);
        return 0;
}

int vm_remove_files(Vm *vm) {
        _cleanup_free_ char *conf = NULL, *upper = strjoin(vm->data_dir, "/upper.img"),
                            *hostkeys = strjoin(vm->data_dir, "/" SSH_HOST_KEYS_FILE);
        static const char *const run_files[] = { "console.log", "qemu.log", "vsock-helper.log", "state.json",
                                                 "qmp.sock", "console.sock", "vhost-vsock.sock", "vsock.sock" };
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

/* ---- JSON ------------------------------------------------------------------- */

int vm_status_to_json(Vm *vm, json_object **ret) {
        json_object *o = json_object_new_object();
        uint64_t cpu_ns = 0, rss = 0, hcpu, hrss;

        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "vmid", json_object_new_int64(vm->vmid));
        json_object_object_add(o, "name", json_object_new_string(vm->config->name));
        json_object_object_add(o, "state", json_object_new_string(vm_state_to_string(vm->state)));
        json_object_object_add(o, "cid", json_object_new_int64(vm->config->cid));
        json_object_object_add(o, "memory_mib", json_object_new_int64((int64_t) vm->config->memory_mib));
        if (vm->pid > 0 && vm_is_up(vm)) {
                json_object_object_add(o, "pid", json_object_new_int64(vm->pid));
                json_object_object_add(o, "uptime",
                                       json_object_new_double((double) (now_usec(CLOCK_REALTIME) - vm->started_usec) / 1e6));
                (void) process_usage(vm->pid, &cpu_ns, &rss);
                if (vm->helper_pid > 0 && process_usage(vm->helper_pid, &hcpu, &hrss) >= 0)
                        rss += hrss;
                json_object_object_add(o, "cpu_seconds", json_object_new_double((double) cpu_ns / 1e9));
                json_object_object_add(o, "rss_bytes", json_object_new_int64((int64_t) rss));
                json_object_object_add(o, "accel", json_object_new_string(vm_accel_to_string(vm->accel)));
                (void) agent_to_json(vm, o);
                if (vm->config->balloon_mib > 0) {
                        json_object_object_add(o, "balloon_target_mib",
                                               json_object_new_int64((int64_t) vm->balloon_target_mib));
                        json_object_object_add(o, "balloon_actual_mib",
                                               json_object_new_int64((int64_t) vm->balloon_actual_mib));
                }
        }
        if (vm->state == VM_STATE_CRASHED) {
                json_object *e = json_object_new_object(), *lines = json_object_new_array();

                if (vm->exit_code >= 0)
                        json_object_object_add(e, "code", json_object_new_int(vm->exit_code));
                if (vm->exit_signal > 0)
                        json_object_object_add(e, "signal", json_object_new_string(sigabbrev_np(vm->exit_signal)
                                                                                       ? sigabbrev_np(vm->exit_signal)
                                                                                       : "?"));
                if (vm->crash_reason)
                        json_object_object_add(e, "reason", json_object_new_string(vm->crash_reason));
                STRV_FOREACH(l, vm->exit_stderr)
                        json_object_array_add(lines, json_object_new_string(*l));
                json_object_object_add(e, "stderr", lines);
                json_object_object_add(o, "exit", e);
        }
        *ret = o;
        return 0;
}

int vm_to_json(Vm *vm, bool with_status, json_object **ret) {
        json_object *o = json_object_new_object(), *config = NULL, *pending = json_object_new_array();
        int r;

        if (!o || !pending) {
                json_object_put(o);
                json_object_put(pending);
                return -ENOMEM;
        }
        r = vm_config_to_json(vm->cf, &config);
        if (r < 0) {
                json_object_put(o);
                json_object_put(pending);
                return r;
        }
        json_object_object_add(o, "vmid", json_object_new_int64(vm->vmid));
        json_object_object_add(o, "name", json_object_new_string(vm->config->name));
        json_object_object_add(o, "state", json_object_new_string(vm_state_to_string(vm->state)));
        json_object_object_add(o, "cid", json_object_new_int64(vm->config->cid));
        json_object_object_add(o, "config", config);
        STRV_FOREACH(k, vm->pending_restart)
                json_object_array_add(pending, json_object_new_string(*k));
        json_object_object_add(o, "pending_restart", pending);
        if (with_status) {
                json_object *s = NULL;

                if (vm_status_to_json(vm, &s) >= 0)
                        json_object_object_add(o, "status", s);
        }
        *ret = o;
        return 0;
}
