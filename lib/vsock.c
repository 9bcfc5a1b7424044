/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vsock connector for the host: kernel AF_VSOCK, or Firecracker-style hybrid
 * vsock over a unix socket (vhost-device-vsock). See vsock.h and
 * lib/README.md for the protocol as observed.
 */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <linux/vm_sockets.h>

#include "fd-util.h"
#include "log.h"
#include "string-util.h"
#include "time-util.h"
#include "vsock.h"

/* Milliseconds left until deadline, rounded up so that we never wake up
 * just before it and spin; 0 once it has passed. */
/* The device drops the unix connection when there is no guest or the guest
 * port refuses; depending on timing we see EOF or one of these. */
static bool errno_is_peer_gone(int e) {
        return e == ECONNRESET || e == EPIPE || e == ENOTCONN;
}

static int sockaddr_un_fill(struct sockaddr_un *sa, const char *path, socklen_t *ret_len) {
        size_t l = strlen(path);

        if (l == 0)
                return -EINVAL;
        if (l >= sizeof(sa->sun_path))
                return -ENAMETOOLONG;
        *sa = (struct sockaddr_un) { .sun_family = AF_UNIX };
        memcpy(sa->sun_path, path, l + 1);
        *ret_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + l + 1);
        return 0;
}

/* ---- connecting, as a state machine ------------------------------------------ */

typedef enum VsockConnectPhase {
        VSOCK_PHASE_CONNECTING,         /* kernel: connect() in progress, POLLOUT says when it ends */
        VSOCK_PHASE_SENDING,            /* hybrid: "CONNECT <port>\n" going out */
        VSOCK_PHASE_READING,            /* hybrid: reading "OK <n>\n" */
        VSOCK_PHASE_CONNECTED,          /* the fd is ready to hand over */
        VSOCK_PHASE_HANDED_OVER,
} VsockConnectPhase;

struct VsockConnect {
        int fd;
        VsockConnectPhase phase;
        unsigned port;
        char request[sizeof("CONNECT 4294967295\n")];
        size_t request_size, request_sent;
        char reply[VSOCK_HYBRID_REPLY_MAX];
        size_t reply_size;
        char *uds_path;                 /* for debug messages */
};

VsockConnect *vsock_connect_free(VsockConnect *c) {
        if (!c)
                return NULL;
        safe_close(c->fd);
        free(c->uds_path);
        return mfree(c);
}

static int connect_kernel_begin(VsockConnect *c, unsigned cid, unsigned port, int timeout_ms) {
        struct sockaddr_vm sa = {
                .svm_family = AF_VSOCK,
                .svm_cid = cid,
                .svm_port = port,
        };
        struct timeval tv = {
                .tv_sec = timeout_ms / 1000,
                .tv_usec = (timeout_ms % 1000) * 1000,
        };

        c->fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (c->fd < 0)
                return -errno;

        /* The kernel fails a pending vsock connect after its own timeout (2 s
         * by default), which would cut longer bounds short. Best effort: an
         * old kernel without the option keeps its default. */
        if (timeout_ms > 0 && setsockopt(c->fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof(tv)) < 0)
                log_debug("Cannot set vsock connect timeout, ignoring: %m");

        if (connect(c->fd, (const struct sockaddr *) &sa, sizeof(sa)) < 0) {
                if (errno != EINPROGRESS)
                        return -errno;
                c->phase = VSOCK_PHASE_CONNECTING;
        } else
                c->phase = VSOCK_PHASE_CONNECTED;
        return 0;
}

/* A unix connect() completes at once or fails; it only waits while the
 * listener's backlog is full, and there is nothing to poll for then. The
 * asynchronous path (blocking_ms < 0) reports that as -EAGAIN; the blocking
 * one bounds the wait with SO_SNDTIMEO (never 0: that means "forever"). */
static int connect_hybrid_begin(VsockConnect *c, const char *uds_path, bool no_follow, unsigned port,
                                int blocking_ms) {
        _cleanup_close_ int pfd = -EBADF;
        struct sockaddr_un sa;
        socklen_t salen;
        char proc[64];
        struct stat st;
        int r;

        if (no_follow) {
                /* Pinned: the connect goes to this very inode. */
                pfd = open(uds_path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (pfd < 0)
                        return -errno;
                if (fstat(pfd, &st) < 0)
                        return -errno;
                if (S_ISLNK(st.st_mode))
                        return -ELOOP;
                if (!S_ISSOCK(st.st_mode))
                        return -ENOTSOCK;
                (void) snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
        }
        r = sockaddr_un_fill(&sa, no_follow ? proc : uds_path, &salen);
        if (r < 0)
                return r;
        c->uds_path = strdup(uds_path);
        if (!c->uds_path)
                return -ENOMEM;

        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (blocking_ms < 0 ? SOCK_NONBLOCK : 0), 0);
        if (c->fd < 0)
                return -errno;
        if (blocking_ms >= 0) {
                int ms = MAX(blocking_ms, 1);
                struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

                if (setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
                        return -errno;
        }
        if (connect(c->fd, (const struct sockaddr *) &sa, salen) < 0) {
                if (errno == EAGAIN || errno == EINPROGRESS)
                        return blocking_ms < 0 ? -EAGAIN : -ETIMEDOUT;
                return -errno;
        }
        if (blocking_ms >= 0) {
                struct timeval tv = {};

                if (setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
                        return -errno;
                r = fd_nonblock(c->fd, true);
                if (r < 0)
                        return r;
        }

        /* vhost-device-vsock parses whatever one read() returns as the whole
         * request and drops the connection if it has no newline: it goes out
         * in one piece (a fresh socket always has room for 19 bytes). */
        c->request_size = (size_t) snprintf(c->request, sizeof(c->request), "CONNECT %u\n", port);
        c->phase = VSOCK_PHASE_SENDING;
        return 0;
}

static int connect_begin(const VsockTarget *t, unsigned port, int timeout_ms, int blocking_ms, VsockConnect **ret) {
        _cleanup_(vsock_connect_freep) VsockConnect *c = NULL;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->fd = -EBADF;
        c->port = port;
        if (t->uds_path)
                r = connect_hybrid_begin(c, t->uds_path, t->uds_no_follow, port, blocking_ms);
        else
                r = connect_kernel_begin(c, t->cid, port, timeout_ms);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

int vsock_connect_start(const VsockTarget *t, unsigned port, int timeout_ms, VsockConnect **ret) {
        assert_return(t, -EINVAL);
        assert_return(timeout_ms >= 0, -EINVAL);
        assert_return(ret, -EINVAL);

        return connect_begin(t, port, timeout_ms, -1, ret);
}

int vsock_connect_fd(const VsockConnect *c) {
        assert_return(c, -EINVAL);
        return c->fd;
}

short vsock_connect_events(const VsockConnect *c) {
        assert_return(c, 0);
        return c->phase == VSOCK_PHASE_READING ? POLLIN : POLLOUT;
}

/* Whether the pending kernel connect ended (POLLOUT, or an error/hangup
 * that SO_ERROR then names). Checked before SO_ERROR, which reads 0 while
 * the connect is still in progress. */
static int kernel_connect_done(VsockConnect *c) {
        struct pollfd p = { .fd = c->fd, .events = POLLOUT };
        socklen_t l = sizeof(int);
        int r, err = 0;

        r = poll(&p, 1, 0);
        if (r < 0)
                return errno == EINTR ? 0 : -errno;
        if (r == 0)
                return 0;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
                return -errno;
        if (err != 0)
                return -err;
        c->phase = VSOCK_PHASE_CONNECTED;
        return 1;
}

/* What a failed non-blocking send/recv of the handshake means: 1 = retry
 * (EINTR), 0 = not now (EAGAIN), -ECONNREFUSED = the device closed on us
 * (no guest yet, or the guest port refuses), else -errno. */
static int handshake_io_error(int e) {
        if (e == EINTR)
                return 1;
        if (e == EAGAIN)
                return 0;
        if (errno_is_peer_gone(e))
                return -ECONNREFUSED;
        return -e;
}

static int hybrid_send_request(VsockConnect *c) {
        while (c->request_sent < c->request_size) {
                ssize_t k = send(c->fd, c->request + c->request_sent, c->request_size - c->request_sent,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);

                if (k < 0) {
                        int r = handshake_io_error(errno);

                        if (r > 0)
                                continue;
                        return r;
                }
                c->request_sent += (size_t) k;
        }
        c->phase = VSOCK_PHASE_READING;
        return 1;
}

/* Reads the handshake reply one byte at a time: whatever follows the newline
 * is already the guest's data and must stay in the socket for the caller. A
 * peek would not do: with a partial line buffered, the socket would stay
 * readable and the caller's loop would spin. The line is bounded by
 * VSOCK_HYBRID_REPLY_MAX, so a device (or guest) that trickles bytes costs a
 * bounded number of reads. */
static int hybrid_read_reply(VsockConnect *c) {
        const char *p;
        uint32_t n;

        for (;;) {
                ssize_t k;
                char ch;

                k = recv(c->fd, &ch, 1, MSG_DONTWAIT);
                if (k < 0) {
                        int r = handshake_io_error(errno);

                        if (r > 0)
                                continue;
                        return r;
                }
                if (k == 0)
                        return -ECONNREFUSED; /* The device closes when the guest port refuses. */
                if (ch == '\n')
                        break;
                /* A NUL would end the line for the parser early and let
                 * "OK 5\0<anything>" pass as "OK 5". */
                if (ch == '\0')
                        return -ECONNREFUSED;
                if (c->reply_size + 1 >= sizeof(c->reply))
                        return -ECONNREFUSED; /* Not a reply we know. */
                c->reply[c->reply_size++] = ch;
        }
        c->reply[c->reply_size] = '\0';

        /* Firecracker answers "OK <host-side port>"; vhost-device-vsock
         * 0.3.0 echoes the guest port. Only the form is checked. */
        p = startswith(c->reply, "OK ");
        if (!p || safe_atou32(p, &n) < 0) {
                log_debug("Hybrid vsock %s: unexpected reply to CONNECT %u, refusing: \"%s\"", strnull(c->uds_path),
                          c->port, c->reply);
                return -ECONNREFUSED;
        }
        c->phase = VSOCK_PHASE_CONNECTED;
        return 1;
}

int vsock_connect_step(VsockConnect *c, int *ret_fd) {
        assert_return(c, -EINVAL);
        assert_return(ret_fd, -EINVAL);

        for (;;) {
                int r;

                switch (c->phase) {
                case VSOCK_PHASE_CONNECTING:
                        r = kernel_connect_done(c);
                        break;
                case VSOCK_PHASE_SENDING:
                        r = hybrid_send_request(c);
                        break;
                case VSOCK_PHASE_READING:
                        r = hybrid_read_reply(c);
                        break;
                case VSOCK_PHASE_CONNECTED:
                        c->phase = VSOCK_PHASE_HANDED_OVER;
                        *ret_fd = TAKE_FD(c->fd);
                        return 1;
                default:
                        return -ESTALE;
                }
                if (r <= 0)
                        return r;
        }
}

int vsock_connect(const VsockTarget *t, unsigned port, int timeout_ms, int *ret_fd) {
        _cleanup_(vsock_connect_freep) VsockConnect *c = NULL;
        uint64_t deadline;
        int fd = -EBADF, r;

        assert_return(t, -EINVAL);
        assert_return(timeout_ms >= 0, -EINVAL);
        assert_return(ret_fd, -EINVAL);

        deadline = now_usec(CLOCK_MONOTONIC) + (uint64_t) timeout_ms * USEC_PER_MSEC;
        r = connect_begin(t, port, timeout_ms, timeout_ms, &c);
        if (r < 0)
                return r;
        while ((r = vsock_connect_step(c, &fd)) == 0) {
                r = fd_wait_until(c->fd, vsock_connect_events(c), (deadline + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = fd_nonblock(fd, false);
        if (r < 0) {
                safe_close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

int vsock_hybrid_listen_path(const char *uds_path, unsigned port, char **ret_path) {
        struct sockaddr_un sa;
        char *p;

        assert_return(!isempty(uds_path), -EINVAL);
        assert_return(ret_path, -EINVAL);

        if (asprintf(&p, "%s_%u", uds_path, port) < 0)
                return -ENOMEM;
        if (strlen(p) >= sizeof(sa.sun_path)) {
                free(p);
                return -ENAMETOOLONG;
        }
        *ret_path = p;
        return 0;
}

int vsock_listen(const VsockTarget *t, unsigned port, int backlog, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;

        assert_return(t, -EINVAL);
        assert_return(backlog > 0, -EINVAL);
        assert_return(ret_fd, -EINVAL);

        if (t->uds_path) {
                _cleanup_free_ char *path = NULL;
                struct sockaddr_un sa;
                socklen_t salen;
                int r;

                r = vsock_hybrid_listen_path(t->uds_path, port, &path);
                if (r < 0)
                        return r;
                r = sockaddr_un_fill(&sa, path, &salen);
                if (r < 0)
                        return r;
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return -errno;
                if (bind(fd, (const struct sockaddr *) &sa, salen) < 0)
                        return -errno;
                if (listen(fd, backlog) < 0) {
                        r = -errno;
                        (void) unlink(path); /* We just created it. */
                        return r;
                }
        } else {
                struct sockaddr_vm sa = {
                        .svm_family = AF_VSOCK,
                        .svm_cid = VMADDR_CID_ANY,
                        .svm_port = port,
                };

                fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return -errno;
                if (bind(fd, (const struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, backlog) < 0)
                        return -errno;
        }

        *ret_fd = TAKE_FD(fd);
        return 0;
}
