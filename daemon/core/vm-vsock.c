/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vsock for a VM: the kernel CID reservation on /dev/vhost-vsock, or the
 * hybrid vhost-device-vsock helper process (spawned here; vm-start.c waits
 * for its socket off the loop). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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
#include "process.h"
#include "qemu-argv.h"
#include "string-util.h"
#include "time-util.h"
#include "vm.h"
#include "vm-internal.h"


/* The helper runs as the VM's uid and makes its sockets in the VM's vsock
 * dir, which it reaches through the dir's fd: no path above it needs to be
 * open to that uid. */
int vm_spawn_helper(Vm *vm, const ProcessSandbox *sb, int vsock_dir_fd, char **ret_error) {
        const Host *h = vm->ctx->host;
        _cleanup_free_ char *log = vm_run_path(vm, "vsock-helper.log");
        _cleanup_free_ char *a_cid = NULL, *a_sock = NULL, *a_uds = NULL;
        _cleanup_close_ int log_fd = -EBADF;
        int r;

        if (!h->vsock_helper)
                return set_error(ret_error, "hybrid vsock needs vhost-device-vsock, which is not installed "
                                            "(scripts/install-deps installs it)"), -ENOENT;
        if (!log)
                return -ENOMEM;
        /* Stale sockets from a VM that died with us: the VM is not running
         * (we hold the daemon lock and its state is stopped), so nobody
         * else can be using them. unlinkat() never follows a symlink the
         * uid may have left there. */
        (void) unlinkat(vsock_dir_fd, "vhost-vsock.sock", 0);
        (void) unlinkat(vsock_dir_fd, "vsock.sock", 0);
        if (asprintf(&a_cid, "--guest-cid=%u", vm_running_config(vm)->cid) < 0 ||
            asprintf(&a_sock, "--socket=/proc/self/fd/%d/vhost-vsock.sock", vsock_dir_fd) < 0 ||
            asprintf(&a_uds, "--uds-path=/proc/self/fd/%d/vsock.sock", vsock_dir_fd) < 0)
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
        r = process_spawn_guest_facing(argv, &vsock_dir_fd, 1, log_fd, sb, &vm->helper_pid);
        if (r < 0)
                return set_error(ret_error, "cannot start vhost-device-vsock: %s", errno_str(r)), r;
        vm->helper_own_child = true;
        r = process_starttime(vm->helper_pid, &vm->helper_starttime);
        if (r >= 0)
                r = pidfd_open_checked(vm->helper_pid, vm->helper_starttime, &vm->helper_pidfd);
        if (r < 0) {
                vm_helper_failed(vm, r, ret_error);
                return r;
        }
        return 0;
}
/* The helper's socket did not appear (r): the message names why, with the
 * helper's last words, and the helper goes. */
void vm_helper_failed(Vm *vm, int r, char **ret_error) {
        _cleanup_free_ char *log = vm_run_path(vm, "vsock-helper.log");
        _cleanup_strv_free_ char **tail = log ? vm_tail_lines(log, 3, false) : NULL;
        _cleanup_free_ char *joined = tail ? strv_join(tail, " | ") : NULL;

        set_error(ret_error, "vhost-device-vsock did not come up (%s)%s%s",
                  r == -ECHILD ? "it exited" : errno_str(r), joined ? ": " : "", strempty(joined));
        vm_stop_helper(vm);
}
/* Its socket is there: from now on its exit is only reported. */
int vm_helper_watch(Vm *vm) {
        return sd_event_add_io(vm->ctx->event, &vm->helper_source, vm->helper_pidfd, EPOLLIN, vm_on_helper_exit, vm);
}
static int on_helper_reaped(sd_event_source *s, const siginfo_t *si, void *userdata) {
        return 0;
}
void vm_stop_helper(Vm *vm) {
        int r = -ECHILD;

        vm->helper_source = sd_event_source_disable_unref(vm->helper_source);
        if (vm->helper_pidfd >= 0) {
                (void) syscall(SYS_pidfd_send_signal, vm->helper_pidfd, SIGTERM, NULL, 0);
                /* And whatever it started (a wrapper's children): it leads
                 * its own session and group. Only our own child: unreaped,
                 * its pid, hence its group id, cannot have been reused. */
                if (vm->helper_own_child && vm->helper_pid > 0)
                        (void) kill(-vm->helper_pid, SIGTERM);
                /* Our own child is reaped by the loop when it has gone (a
                 * floating source that owns the pidfd): nothing waits here. A
                 * re-adopted helper is not our child; its pidfd just closes. */
                if (vm->helper_own_child) {
                        sd_event_source *s = NULL;

                        r = sd_event_add_child_pidfd(vm->ctx->event, &s, vm->helper_pidfd, WEXITED,
                                                     on_helper_reaped, NULL);
                        if (r >= 0) {
                                (void) sd_event_source_set_child_pidfd_own(s, true);
                                (void) sd_event_source_set_floating(s, true);
                                sd_event_source_unref(s);
                                vm->helper_pidfd = -EBADF;
                        }
                }
        } else if (vm->helper_pid > 0 && vm->helper_own_child) {
                /* No pidfd (pidfd_open failed right after the spawn): the
                 * pid is still our unreaped child; SIGKILL ends it at once. */
                (void) kill(vm->helper_pid, SIGKILL);
                (void) waitpid(vm->helper_pid, NULL, 0);
        }
        vm->helper_pidfd = safe_close(vm->helper_pidfd);
        vm->helper_pid = 0;
        vm->helper_starttime = 0;
        vm->helper_own_child = false;
}
int vm_on_helper_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Vm *vm = userdata;

        if (vm->helper_pid > 0 && vm->helper_own_child)
                (void) waitpid(vm->helper_pid, NULL, WNOHANG);
        log_warning("VM %u (%s): the vsock helper exited; vsock is down until the VM restarts", vm->vmid,
                    vm->config->name);
        vm->helper_source = sd_event_source_disable_unref(vm->helper_source);
        vm->helper_pidfd = safe_close(vm->helper_pidfd);
        vm->helper_pid = 0;
        return 0;
}
/* Kernel vsock: reserve the VM's CID on /dev/vhost-vsock and keep the fd for
 * QEMU. If another user of the host holds the CID, pick the next free one
 * and persist it in the config. */
int vm_reserve_cid(Vm *vm, int *ret_fd, char **ret_error) {
        VmContext *ctx = vm->ctx;
        CidVhostProbe probe = CID_VHOST_PROBE_INIT;
        _cleanup_free_ uint32_t *taken = NULL;
        size_t n_taken = 0;
        uint32_t cid = vm->config->cid;
        int r;

        r = cid > 0 ? cid_probe_vhost(cid, &probe) : -EADDRINUSE;
        if (r == -EADDRINUSE) {
                r = ctx->taken_cids(vm, &taken, &n_taken, ctx->userdata);
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
                return set_error(ret_error, "cannot reserve a vsock CID on /dev/vhost-vsock: %s", errno_str(r)), r;
        }
        *ret_fd = probe.fd;
        return 0;
}
