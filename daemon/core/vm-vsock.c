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
        _cleanup_free_ char *a_cid = NULL, *a_sock = NULL, *a_uds = NULL;
        int r;

        if (!h->vsock_helper)
                return set_error(ret_error, "hybrid vsock needs vhost-device-vsock, which is not installed "
                                            "(scripts/install-deps installs it)"), -ENOENT;
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
        /* The TX buffer is the credit the guest gets, so it bounds the
         * guest's packet size: vhost-device-vsock 0.3.0 drops a guest packet
         * over ~32 KiB (a 6.12 guest splits it across two descriptors:
         * DescriptorLengthTooSmall) and the stream stalls or is corrupted.
         * With 32 KiB, 40 MB went guest->host over ssh at ~5 MB/s (TCG). */
        char *argv[] = { h->vsock_helper, a_cid, a_sock, a_uds, (char *) "--tx-buffer-size=32768", NULL };
        r = vm_helper_spawn(&vm->helper, argv, &vsock_dir_fd, 1, "vsock-helper.log", sb);
        if (r < 0)
                return set_error(ret_error, "cannot start vhost-device-vsock: %s", errno_str(r)), r;
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
        vm_helper_stop(&vm->helper);
}
int vm_config_save_cid(Vm *vm, uint32_t cid, char **ret_error) {
        char value[32];
        VmConfig *c = NULL;
        int r;

        snprintf(value, sizeof(value), "cid=%u", cid);
        r = vm_config_set(vm->cf, "vsock", value, ret_error);
        if (r >= 0)
                r = vm_config_from_file(vm->cf, vm->vmid, &c, ret_error);
        if (r < 0)
                return r;
        vm_config_free(vm->config);
        vm->config = c;
        return vm_save_config(vm);
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
                        r = vm_config_save_cid(vm, cid, NULL);
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
