/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The processes zvmd runs beside a VM's QEMU (vhost-device-vsock, passt):
 * spawned guest-facing with their output in a log of the run dir, watched
 * by a pidfd, ended on stop without waiting (the loop reaps them), and
 * re-adopted from state.json by pid + start time. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fd-util.h"
#include "log.h"
#include "macro.h"
#include "process.h"
#include "string-util.h"
#include "vm.h"
#include "vm-internal.h"

void vm_helper_init(VmHelper *hp, Vm *vm, const char *what, const char *lost) {
        *hp = (VmHelper) { .vm = vm, .what = what, .lost = lost, .pidfd = -EBADF };
}

int vm_helper_spawn(VmHelper *hp, char *const *argv, const int *keep_fds, size_t n_keep_fds, const char *log_name,
                    const ProcessSandbox *sb) {
        _cleanup_free_ char *log = log_name ? vm_run_path(hp->vm, log_name) : NULL;
        _cleanup_close_ int log_fd = -EBADF;
        int r;

        if (log_name) {
                if (!log)
                        return -ENOMEM;
                log_fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
                if (log_fd < 0)
                        return -errno;
        }
        r = process_spawn_guest_facing(argv, keep_fds, n_keep_fds, log_fd, sb, &hp->pid);
        if (r < 0)
                return r;
        hp->own_child = true;
        r = process_starttime(hp->pid, &hp->starttime);
        if (r >= 0)
                r = pidfd_open_checked(hp->pid, hp->starttime, &hp->pidfd);
        if (r < 0)
                vm_helper_stop(hp);
        return r;
}

static int on_helper_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        VmHelper *hp = userdata;
        Vm *vm = hp->vm;

        if (hp->pid > 0 && hp->own_child)
                (void) waitpid(hp->pid, NULL, WNOHANG);
        /* passt also ends when QEMU closes its end: no news on the way down. */
        log_full(vm->state == VM_STATE_RUNNING && !vm->stop_requested && !vm->guest_shutdown_seen ? LOG_WARNING
                                                                                                  : LOG_DEBUG,
                 "VM %u (%s): %s exited; %s until the VM restarts", vm->vmid, vm->config->name, hp->what, hp->lost);
        hp->source = sd_event_source_disable_unref(hp->source);
        hp->pidfd = safe_close(hp->pidfd);
        hp->pid = 0;
        return 0;
}

/* From now on its exit is only reported. */
int vm_helper_watch(VmHelper *hp) {
        return sd_event_add_io(hp->vm->ctx->event, &hp->source, hp->pidfd, EPOLLIN, on_helper_exit, hp);
}

/* A helper named by state.json: watched if it is still the process recorded. */
void vm_helper_adopt(VmHelper *hp, pid_t pid, uint64_t starttime) {
        hp->pid = pid;
        hp->starttime = starttime;
        hp->own_child = false;
        if (pid > 0 && pidfd_open_checked(pid, starttime, &hp->pidfd) >= 0) {
                /* A claimed pool guest's helper is this zvmd's child. */
                hp->own_child = process_is_child(pid);
                (void) vm_helper_watch(hp);
        } else
                hp->pid = 0;
}

static int on_helper_reaped(sd_event_source *s, const siginfo_t *si, void *userdata) {
        return 0;
}

void vm_helper_stop(VmHelper *hp) {
        hp->source = sd_event_source_disable_unref(hp->source);
        if (hp->pidfd >= 0) {
                (void) syscall(SYS_pidfd_send_signal, hp->pidfd, SIGTERM, NULL, 0);
                /* And whatever it started (a wrapper's children): it leads
                 * its own session and group. Only our own child: unreaped,
                 * its pid, hence its group id, cannot have been reused. */
                if (hp->own_child && hp->pid > 0)
                        (void) kill(-hp->pid, SIGTERM);
                /* Our own child is reaped by the loop when it has gone (a
                 * floating source that owns the pidfd): nothing waits here. A
                 * re-adopted helper is not our child; its pidfd just closes. */
                if (hp->own_child) {
                        sd_event_source *s = NULL;

                        if (sd_event_add_child_pidfd(hp->vm->ctx->event, &s, hp->pidfd, WEXITED, on_helper_reaped,
                                                     NULL) >= 0) {
                                (void) sd_event_source_set_child_pidfd_own(s, true);
                                (void) sd_event_source_set_floating(s, true);
                                sd_event_source_unref(s);
                                hp->pidfd = -EBADF;
                        }
                }
        } else if (hp->pid > 0 && hp->own_child) {
                /* No pidfd (pidfd_open failed right after the spawn): the
                 * pid is still our unreaped child; SIGKILL ends it at once. */
                (void) kill(hp->pid, SIGKILL);
                (void) waitpid(hp->pid, NULL, 0);
        }
        hp->pidfd = safe_close(hp->pidfd);
        hp->pid = 0;
        hp->starttime = 0;
        hp->own_child = false;
}

/* The VM object goes, the helper may run on (zvmd exits, the VM stays). */
void vm_helper_detach(VmHelper *hp) {
        hp->source = sd_event_source_disable_unref(hp->source);
        hp->pidfd = safe_close(hp->pidfd);
}
