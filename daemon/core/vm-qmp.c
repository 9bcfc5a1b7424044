/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A VM's QMP connection: the socket QEMU inherits, commands, and the
 * events (SHUTDOWN, guest RESET boot loops, balloon changes) that drive its
 * state. */
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
#include "loop.h"
#include "macro.h"
#include "process.h"
#include "qemu-argv.h"
#include "socket-util.h"
#include "string-util.h"
#include "time-util.h"
#include "vm.h"
#include "vm-internal.h"


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
void vm_qmp_detach(Vm *vm) {
        vm->qmp_source = sd_event_source_disable_unref(vm->qmp_source);
        vm->qmp = qmp_client_free(vm->qmp);
}
/* Takes ownership of args. */
int vm_qmp_invoke(Vm *vm, const char *cmd, json_object *args, qmp_result_fn cb, void *userdata) {
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
        loop_note("VM %s: QMP", ((Vm *) userdata)->config->name);
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
        if (vm_running_config(vm)->balloon_mib > 0)
                (void) vm_qmp_invoke(vm, "query-balloon", NULL, on_query_balloon, vm);
        if (vm->state == VM_STATE_STARTING && vm->naming != VM_NAMING_IN_FLIGHT) {
                /* The start's deadline only: a re-adopted VM's stop in
                 * flight has its kill timer there too (issue 14, chaos). */
                vm->timeout_source = sd_event_source_disable_unref(vm->timeout_source);
                vm_set_state(vm, VM_STATE_RUNNING);
        }
}
int vm_qmp_attach(Vm *vm, int fd) {
        int r;

        r = qmp_client_new(fd, &vm->qmp);
        if (r < 0) {
                safe_close(fd);
                return r;
        }
        qmp_client_set_event_handler(vm->qmp, on_qmp_event, vm);
        r = sd_event_add_io(vm->ctx->event, &vm->qmp_source, qmp_client_fd(vm->qmp), EPOLLIN, on_qmp_io, vm);
        if (r < 0) {
                vm->qmp = qmp_client_free(vm->qmp);
                return r;
        }
        return vm_qmp_invoke(vm, "query-status", NULL, on_query_status, vm);
}
int vm_qmp_connect(Vm *vm) {
        _cleanup_free_ char *path = vm_run_path(vm, "qmp.sock");
        int fd, r;

        if (!path)
                return -ENOMEM;
        r = qmp_connect_unix(path, &fd);
        if (r < 0)
                return r;
        return vm_qmp_attach(vm, fd);
}
/* QMP listens on a socket we create: QEMU inherits the listening fd, and we
 * can connect at once (the connection waits in the backlog until QEMU's
 * monitor accepts it), so nothing polls for the socket to appear. */
int vm_qmp_listen(Vm *vm, int *ret_fd) {
        _cleanup_free_ char *path = vm_run_path(vm, "qmp.sock");

        if (!path)
                return -ENOMEM;
        return socket_listen_unix(path, 0600, 4, ret_fd);
}
