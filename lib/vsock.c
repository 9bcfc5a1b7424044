/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vsock connector for the host: kernel AF_VSOCK, or Firecracker-style hybrid
 * vsock over a unix socket (vhost-device-vsock). See vsock.h and
 * lib/README.md for the protocol as observed.
 */
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
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
static int remaining_msec(uint64_t deadline) {
        uint64_t n = now_usec(CLOCK_MONOTONIC), ms;

        if (n >= deadline)
                return 0;
        ms = (deadline - n + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
        return ms > INT_MAX ? INT_MAX : (int) ms;
}

/* Waits until fd is ready for events or the deadline passes (-ETIMEDOUT). A
 * fd that is ready exactly at the deadline still counts. Errors and hangups
 * count as ready: the following read/write reports them. */
static int wait_until(int fd, short events, uint64_t deadline) {
        for (;;) {
                struct pollfd p = { .fd = fd, .events = events };
                int r;

                r = poll(&p, 1, remaining_msec(deadline));
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r == 0)
                        return -ETIMEDOUT;
                if (p.revents & POLLNVAL)
                        return -EBADF;
                return 0;
        }
}

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

static int vsock_connect_kernel(unsigned cid, unsigned port, int timeout_ms, uint64_t deadline, int *ret_fd) {
        struct sockaddr_vm sa = {
                .svm_family = AF_VSOCK,
                .svm_cid = cid,
                .svm_port = port,
        };
        struct timeval tv = {
                .tv_sec = timeout_ms / 1000,
                .tv_usec = (timeout_ms % 1000) * 1000,
        };
        _cleanup_close_ int fd = -EBADF;
        int r;

        fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;

        /* The kernel fails a pending vsock connect after its own timeout (2 s
         * by default), which would cut longer bounds short. Best effort: an
         * old kernel without the option keeps its default. */
        if (setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof(tv)) < 0)
                log_debug("Cannot set vsock connect timeout, ignoring: %m");

        if (connect(fd, (const struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int err = 0;
                socklen_t l = sizeof(err);

                if (errno != EINPROGRESS)
                        return -errno;
                r = wait_until(fd, POLLOUT, deadline);
                if (r < 0)
                        return r;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
                        return -errno;
                if (err != 0)
                        return -err;
        }

        r = fd_nonblock(fd, false);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* Reads the handshake reply one byte at a time: whatever follows the newline
 * is already the guest's data and must stay in the socket for the caller. A
 * peek would not do: with a partial line buffered, poll() would report the
 * socket readable again at once and we would spin. */
static int hybrid_read_reply(int fd, uint64_t deadline, char *buf, size_t size) {
        size_t n = 0;

        for (;;) {
                ssize_t k;
                char ch;

                k = recv(fd, &ch, 1, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                int r = wait_until(fd, POLLIN, deadline);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                        if (errno_is_peer_gone(errno))
                                return -ECONNREFUSED;
                        return -errno;
                }
                if (k == 0)
                        return -ECONNREFUSED; /* The device closes when the guest port refuses. */
                if (ch == '\n') {
                        buf[n] = '\0';
                        return 0;
                }
                if (n + 1 >= size)
                        return -ECONNREFUSED; /* Not a reply we know. */
                buf[n++] = ch;
        }
}

static int vsock_connect_hybrid(const char *uds_path, unsigned port, uint64_t deadline, int *ret_fd) {
        char request[sizeof("CONNECT 4294967295\n")], reply[VSOCK_HYBRID_REPLY_MAX];
        struct sockaddr_un sa;
        socklen_t salen;
        _cleanup_close_ int fd = -EBADF;
        const char *p;
        size_t len, off = 0;
        uint32_t n;
        int r, ms;

        r = sockaddr_un_fill(&sa, uds_path, &salen);
        if (r < 0)
                return r;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;

        /* A unix connect only blocks while the listener's backlog is full,
         * and there is nothing to poll for then; SO_SNDTIMEO bounds that
         * wait (EAGAIN when it passes). Never 0: that means "forever". */
        ms = MAX(remaining_msec(deadline), 1);
        {
                struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

                if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
                        return -errno;
        }
        if (connect(fd, (const struct sockaddr *) &sa, salen) < 0) {
                if (errno == EAGAIN || errno == EINPROGRESS)
                        return -ETIMEDOUT;
                return -errno;
        }
        {
                struct timeval tv = {};

                if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
                        return -errno;
        }
        r = fd_nonblock(fd, true);
        if (r < 0)
                return r;

        /* vhost-device-vsock parses whatever one read() returns as the whole
         * request and drops the connection if it has no newline: send it in
         * one piece (a fresh socket always has room for 19 bytes). */
        len = (size_t) snprintf(request, sizeof(request), "CONNECT %u\n", port);
        while (off < len) {
                ssize_t k = send(fd, request + off, len - off, MSG_NOSIGNAL);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                r = wait_until(fd, POLLOUT, deadline);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                        /* The device closed on us: it has no guest (yet). */
                        if (errno_is_peer_gone(errno))
                                return -ECONNREFUSED;
                        return -errno;
                }
                off += (size_t) k;
        }

        r = hybrid_read_reply(fd, deadline, reply, sizeof(reply));
        if (r < 0)
                return r;

        /* Firecracker answers "OK <host-side port>"; vhost-device-vsock
         * 0.3.0 echoes the guest port. Only the form is checked. */
        p = startswith(reply, "OK ");
        if (!p || safe_atou32(p, &n) < 0) {
                log_debug("Hybrid vsock %s: unexpected reply to CONNECT %u, refusing: \"%.*s\"",
                          uds_path, port, (int) sizeof(reply), reply);
                return -ECONNREFUSED;
        }

        r = fd_nonblock(fd, false);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int vsock_connect(const VsockTarget *t, unsigned port, int timeout_ms, int *ret_fd) {
        uint64_t deadline;

        assert_return(t, -EINVAL);
        assert_return(timeout_ms >= 0, -EINVAL);
        assert_return(ret_fd, -EINVAL);

        deadline = now_usec(CLOCK_MONOTONIC) + (uint64_t) timeout_ms * USEC_PER_MSEC;
        if (t->uds_path)
                return vsock_connect_hybrid(t->uds_path, port, deadline, ret_fd);
        return vsock_connect_kernel(t->cid, port, timeout_ms, deadline, ret_fd);
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
