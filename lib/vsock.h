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

#include "macro.h"

typedef struct VsockTarget {
        unsigned cid;            /* guest CID (kernel vsock) */
        const char *uds_path;    /* hybrid vsock: vhost-device-vsock's --uds-path socket; NULL = kernel AF_VSOCK */
        /* uds_path's last component lies in a directory someone less trusted
         * controls (the VM's own uid): it must be the socket itself, not a
         * symlink to some other socket (-ELOOP, -ENOTSOCK otherwise). */
        bool uds_no_follow;
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
 * Blocks the caller (poll()) for up to timeout_ms: for tools and tests. An
 * event loop uses the VsockConnect state machine below.
 *
 * On success *ret_fd is a connected SOCK_STREAM socket, O_CLOEXEC, in
 * blocking mode (use fd_nonblock() for an event loop). */
int vsock_connect(const VsockTarget *t, unsigned port, int timeout_ms, int *ret_fd);

/* The same connect, never blocking, driven by the caller's event loop (no
 * event library here):
 *
 *     r = vsock_connect_start(&t, port, timeout_ms, &c);
 *     watch vsock_connect_fd(c) for vsock_connect_events(c)   (re-read both
 *         after every step: POLLIN/POLLOUT, the same bits as EPOLLIN/EPOLLOUT)
 *     on readiness: r = vsock_connect_step(c, &fd);
 *         0: not yet, keep watching; 1: connected, fd is the caller's;
 *         < 0: failed (the same errors as vsock_connect())
 *     vsock_connect_free(c) in every case (it closes what it still owns)
 *
 * The caller owns the deadline (a timer): the state machine never waits.
 * timeout_ms only tells the kernel how long a pending AF_VSOCK connect may
 * take (its default is 2 s). A hybrid device whose listen backlog is full
 * cannot be waited for without blocking: start fails with -EAGAIN. The fd
 * handed over is O_CLOEXEC and non-blocking. A step may be called without
 * readiness (it then returns 0). */
typedef struct VsockConnect VsockConnect;

int vsock_connect_start(const VsockTarget *t, unsigned port, int timeout_ms, VsockConnect **ret);
int vsock_connect_fd(const VsockConnect *c);
short vsock_connect_events(const VsockConnect *c);
int vsock_connect_step(VsockConnect *c, int *ret_fd);
VsockConnect *vsock_connect_free(VsockConnect *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(VsockConnect *, vsock_connect_free);

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
