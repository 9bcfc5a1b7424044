/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* For the static musl guest programs (zvm-agent, test helpers). */
#include <sys/socket.h>

/* musl ships no kernel UAPI headers, so no <linux/vm_sockets.h>. This is the
 * kernel's vsock socket ABI (include/uapi/linux/socket.h and
 * include/uapi/linux/vm_sockets.h), stable since Linux 3.9. */
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#define VMADDR_CID_ANY  (~0U)
#define VMADDR_CID_HOST 2U
struct sockaddr_vm {
        sa_family_t svm_family;
        unsigned short svm_reserved1;
        unsigned int svm_port;
        unsigned int svm_cid;
        unsigned char svm_flags;
        unsigned char svm_zero[sizeof(struct sockaddr) - sizeof(sa_family_t) - sizeof(unsigned short) -
                               2 * sizeof(unsigned int) - sizeof(unsigned char)];
};

#include <errno.h>
#include <unistd.h>

/* A non-blocking, close-on-exec stream listener on port (any CID);
 * returns the fd or -errno. */
static inline int vsock_listen(unsigned port, int backlog) {
        struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_port = port, .svm_cid = VMADDR_CID_ANY };
        int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), r;

        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, backlog) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        return fd;
}
