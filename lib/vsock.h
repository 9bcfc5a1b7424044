/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Host side of vsock, on both paths a host may have:
 *
 *  - kernel vsock (/dev/vhost-vsock present): AF_VSOCK sockets, the guest is
 *    addressed by its CID;
 *  - hybrid vsock (Firecracker-style, spoken by vhost-device-vsock and by
 *    Firecracker itself): the device listens on a unix socket ("uds_path");
 *    the host connects to it and asks for a guest port with
 *    "CONNECT <port>\n", the device answers "OK <n>\n" and from then on the
 *    unix stream is the vsock stream. Guest-initiated connections to host
 *    port P arrive as unix connections on "<uds_path>_<P>", where the host
 *    must be listening.
 *
 * All functions return >= 0 or -errno and never log above debug.
 */

#include <stdbool.h>

typedef struct VsockTarget {
        unsigned cid;            /* guest CID (kernel vsock) */
        const char *uds_path;    /* hybrid vsock: vhost-device-vsock's --uds-path socket; NULL = kernel AF_VSOCK */
} VsockTarget;

/* Longest accepted reply line of the hybrid handshake ("OK 4294967295\n" is
 * 14 bytes); a longer line is garbage and refused. */
#define VSOCK_HYBRID_REPLY_MAX 64

/* Connects to guest port `port`. The whole operation (connect and, on the
 * hybrid path, the CONNECT/OK handshake) is bounded by timeout_ms (>= 0):
 * -ETIMEDOUT when it passes. Errors: -ECONNREFUSED when the guest refuses
 * (hybrid: EOF, a reset or any reply other than "OK <number>\n"), the
 * kernel's errno on the kernel path (-ENODEV without a vsock transport,
 * -ECONNRESET, ...), -ENAMETOOLONG for a uds_path that does not fit a unix
 * socket address. The hybrid handshake never reads past the reply's newline,
 * so no guest data is lost.
 *
 * On success *ret_fd is a connected SOCK_STREAM socket, O_CLOEXEC, in
 * blocking mode (use fd_nonblock() for an event loop). */
int vsock_connect(const VsockTarget *t, unsigned port, int timeout_ms, int *ret_fd);

/* "<uds_path>_<port>": where the hybrid device delivers guest-initiated
 * connections to host port `port`. -ENAMETOOLONG if the result does not fit
 * a unix socket address. */
int vsock_hybrid_listen_path(const char *uds_path, unsigned port, char **ret_path);

/* Listens for guest-initiated connections to host port `port`: on the kernel
 * path an AF_VSOCK socket bound to (VMADDR_CID_ANY, port), on the hybrid
 * path a unix socket bound at vsock_hybrid_listen_path() (an existing file
 * there gives -EADDRINUSE: whether a leftover socket may be removed is the
 * caller's call). Returns a listening SOCK_STREAM socket, O_CLOEXEC,
 * blocking. Accepted connections carry the guest's bytes directly, no
 * handshake. */
int vsock_listen(const VsockTarget *t, unsigned port, int backlog, int *ret_fd);
