/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * User-mode networking through passt (issue 10, item 5), when the host's
 * administrator asks for it (ZVM_USER_NET=passt in zvmd's environment).
 * Otherwise a user NIC is slirp with restrict=on: isolated (qemu-argv.c).
 *
 * QEMU's open slirp (-netdev user) maps 10.0.2.2 to the host's 127.0.0.1,
 * so every guest reached the services bound to the host's loopback, as
 * root. passt runs as its own process (nobody, in its own namespaces and
 * seccomp filter), and with --no-map-gw the gateway is not the host's
 * loopback. But passt 2023.03 (Debian 12) connects wherever the guest's
 * packet points: a guest with root that routes 127.0.0.1 out of its eth0
 * reaches the host's loopback (measured: tests/integration/zvmd_net.py,
 * docs/networking.md). Neither -o nor --outbound-if4 binds its TCP
 * sockets, and this host has no nftables to stop uid nobody's loopback
 * traffic. Hence opt-in: passt gives guests the network at the price of
 * that hole; restricted slirp gives them nothing, and no hole.
 *
 * zvmd makes a socketpair: one end goes to QEMU (-netdev stream, addr.type=fd),
 * the other to passt (--fd). Nothing listens on a path, no socket has to be
 * waited for, and passt (--fd implies --one-off) exits when QEMU closes its
 * end, so a QEMU that dies while zvmd is away takes its passt with it.
 *
 * The guest's address plan is slirp's, so a guest configured for one works
 * with the other: 10.0.2.15/24, gateway 10.0.2.2 (not the host), DNS from the
 * host's resolv.conf (DHCP offers all of it).
 */
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fd-util.h"
#include "log.h"
#include "macro.h"
#include "string-util.h"
#include "vm.h"
#include "vm-internal.h"

#define PASST_LOG_SIZE "262144"         /* passt caps its own log file */

/* The user NIC that passt serves: the first one; -ENOENT if none. A second
 * user NIC is refused: one passt serves one guest interface, and a NIC that
 * silently went to slirp would be the hole this closes. */
static int passt_nic(const VmConfig *c, char **ret_error) {
        int nic = -ENOENT;

        for (unsigned i = 0; i < VM_NETS_MAX; i++) {
                if (!c->nets[i].present || c->nets[i].bridge)
                        continue;
                if (nic >= 0)
                        return set_error(ret_error, "net%u: a VM has at most one user-mode NIC (net%d is one)", i,
                                         nic), -EINVAL;
                nic = (int) i;
        }
        return nic;
}

int vm_passt_socketpair(Vm *vm, int *ret_qemu_fd, int *ret_passt_fd, char **ret_error) {
        int fds[2], r;

        r = passt_nic(vm_running_config(vm), ret_error);
        if (r < 0)
                return r == -ENOENT ? -EOPNOTSUPP : r;
        if (!vm->ctx->host->passt)
                return -EOPNOTSUPP;     /* restricted slirp */
        /* passt forwards nothing unless told (-t/-u); not wired up yet, and
         * a forward silently missing would be worse than a refusal. */
        if (vm_running_config(vm)->nets[r].n_hostfwd > 0)
                return set_error(ret_error, "net%d: hostfwd= is not supported with ZVM_USER_NET=passt (only with "
                                            "zvm's default restricted slirp)",
                                 r),
                       -EINVAL;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
                return set_error(ret_error, "cannot create passt's socket pair: %s", errno_str(-errno)), -errno;
        *ret_qemu_fd = fds[0];
        *ret_passt_fd = fds[1];
        return 0;
}

int vm_passt_spawn(Vm *vm, int passt_fd, char **ret_error) {
        _cleanup_free_ char *log = vm_run_path(vm, "passt.log");
        char fd[16];
        int r;

        if (!log)
                return -ENOMEM;
        snprintf(fd, sizeof(fd), "%d", passt_fd);
        /* -f: the pid zvmd records is passt's. -t/-u none: nothing of the
         * host is forwarded into the guest. --no-map-gw: the gateway is not
         * the host's loopback. IPv4 only: passt maps the IPv6 gateway the
         * same way, and the guests' plan is slirp's IPv4 one. -l: passt's
         * own log, capped by it (and it names the run dir, so a start cut
         * by a killed zvmd finds it: vm-adopt.c). */
        char *argv[] = { vm->ctx->host->passt, (char *) "-f", (char *) "-q", (char *) "-F", fd,
                         (char *) "--no-map-gw", (char *) "-t", (char *) "none", (char *) "-u", (char *) "none",
                         (char *) "--ipv4-only", (char *) "-a", (char *) "10.0.2.15", (char *) "-n", (char *) "24",
                         (char *) "-g", (char *) "10.0.2.2", (char *) "-l", log, (char *) "--log-size",
                         (char *) PASST_LOG_SIZE, NULL };
        /* passt drops to nobody itself; it needs no file of the VM. */
        r = vm_helper_spawn(&vm->passt, argv, &passt_fd, 1, NULL, NULL);
        if (r >= 0)
                r = vm_helper_watch(&vm->passt);
        if (r < 0) {
                vm_helper_stop(&vm->passt);
                return set_error(ret_error, "cannot start passt: %s", errno_str(r)), r;
        }
        return 0;
}
