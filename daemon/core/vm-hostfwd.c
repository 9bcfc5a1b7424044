/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hostfwd= of user NICs, before QEMU runs: a host port that is taken (by
 * another VM's forward or a host service) makes slirp, and so QEMU, exit
 * at start with "Could not set up host forwarding rule". A probe bind
 * turns that into a refusal that names the NIC and the port. It is a
 * check, not a reservation: a port taken between the probe and QEMU's
 * bind still ends the start with QEMU's own message (the VM's exit.stderr).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fd-util.h"
#include "string-util.h"
#include "vm.h"
#include "vm-internal.h"

static int probe(const VmHostfwd *f) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(f->host_port) };
        _cleanup_close_ int fd = -EBADF;
        int one = 1;

        if (inet_pton(AF_INET, f->addr, &sa.sin_addr) != 1)
                return -EINVAL;
        fd = socket(AF_INET, (f->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        /* As slirp's own listener: a port in TIME_WAIT is free. */
        if (!f->udp && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        return 0;
}

int vm_hostfwd_check(const VmConfig *c, char **ret_error) {
        for (unsigned i = 0; i < VM_NETS_MAX; i++)
                for (unsigned j = 0; c->nets[i].present && !c->nets[i].bridge && j < c->nets[i].n_hostfwd; j++) {
                        const VmHostfwd *f = &c->nets[i].hostfwd[j];
                        int r = probe(f);

                        if (r == -EADDRINUSE)
                                return set_error(ret_error, "net%u: hostfwd= %s %s:%u is in use on the host (another "
                                                            "VM's forward or a host service)",
                                                 i, f->udp ? "udp" : "tcp", f->addr, f->host_port),
                                       r;
                        if (r == -EADDRNOTAVAIL)
                                return set_error(ret_error, "net%u: hostfwd= address %s is not an address of this host",
                                                 i, f->addr),
                                       -EINVAL;
                        if (r == -EACCES)
                                return set_error(ret_error, "net%u: hostfwd= %s port %u is privileged and zvmd may not "
                                                            "bind it",
                                                 i, f->udp ? "udp" : "tcp", f->host_port),
                                       -EINVAL;
                        if (r < 0)
                                return set_error(ret_error, "net%u: hostfwd= %s %s:%u: %s", i, f->udp ? "udp" : "tcp",
                                                 f->addr, f->host_port, errno_str(r)),
                                       r;
                }
        return 0;
}
