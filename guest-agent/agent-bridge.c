/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent-bridge.h"
#include "agent-conn.h"
#include "fd-util.h"
#include "log.h"
#include "musl-vsock.h"

/* Bytes waiting to go one way. */
typedef struct Flow {
        char *data;
        size_t off, len;        /* pending: data[off, off + len) */
        bool eof;               /* the reading side is at EOF */
        bool shut;              /* and we have passed that on with shutdown(SHUT_WR) */
} Flow;

struct Relay {
        int vfd, ufd;           /* the host's vsock connection, llama-server's unix socket */
        Flow up, down;          /* vsock → unix, unix → vsock */
        uint64_t last_activity;
        int i_v, i_u;
};

/* What a host connecting while llama-server is not listening gets: a clear
 * HTTP answer instead of a bare close. */
#define NOT_LISTENING_BODY "{\"error\":{\"code\":503,\"message\":\"llama-server is not listening\"}}\n"
#define NOT_LISTENING_FMT \
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n" \
        "Retry-After: 1\r\nContent-Length: %zu\r\n\r\n" NOT_LISTENING_BODY

static void send_not_listening(int fd) {
        char msg[sizeof(NOT_LISTENING_FMT) + 16];
        int n = snprintf(msg, sizeof(msg), NOT_LISTENING_FMT, sizeof(NOT_LISTENING_BODY) - 1);

        if (n > 0 && (size_t) n < sizeof(msg))
                (void) send(fd, msg, (size_t) n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

bool bridge_is_open(const Bridge *b) {
        return b->lfd >= 0;
}

int bridge_open(Bridge *b, uint32_t port, const char *target) {
        if (b->lfd >= 0 && b->port == port) {
                b->target = target;
                return 0;
        }
        bridge_close(b);
        b->lfd = vsock_listen(port, 16);
        if (b->lfd < 0)
                return b->lfd;
        b->port = port;
        b->target = target;
        log_info("llm bridge listening on vsock port %u", port);
        return 0;
}

static void relay_free(Relay *r) {
        if (!r)
                return;
        safe_close(r->vfd);
        safe_close(r->ufd);
        free(r->up.data);
        free(r->down.data);
        free(r);
}

static void bridge_drop(Bridge *b, unsigned i) {
        relay_free(b->relays[i]);
        b->relays[i] = b->relays[--b->n_relays];
        b->relays[b->n_relays] = NULL;
}

void bridge_forget(Bridge *b) {
        while (b->n_relays > 0)
                bridge_drop(b, b->n_relays - 1);
        b->lfd = safe_close(b->lfd);
}

void bridge_close(Bridge *b) {
        if (b->lfd >= 0)
                log_info("llm bridge on vsock port %u closed (%u connections dropped)", b->port, b->n_relays);
        bridge_forget(b);
}

static int unix_connect(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        /* A unix connect() completes at once or fails (EAGAIN: backlog full). */
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
                return -errno;
        return TAKE_FD(fd);
}

static void bridge_accept(Bridge *b) {
        _cleanup_close_ int vfd = -EBADF, ufd = -EBADF;
        Relay *r;

        vfd = accept4(b->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (vfd < 0)
                return;
        ufd = unix_connect(b->target);
        if (ufd < 0) {
                send_not_listening(vfd);
                return;
        }
        r = calloc(1, sizeof(*r));
        if (r) {
                r->up.data = malloc(BRIDGE_BUFFER);
                r->down.data = malloc(BRIDGE_BUFFER);
        }
        if (!r || !r->up.data || !r->down.data) {
                if (r)
                        r->vfd = r->ufd = -EBADF;
                relay_free(r);
                return;
        }
        r->vfd = TAKE_FD(vfd);
        r->ufd = TAKE_FD(ufd);
        r->last_activity = now_msec(CLOCK_MONOTONIC);
        b->relays[b->n_relays++] = r;
}

/* Reads from fd into f; returns bytes read, 0 at EOF (f->eof set), -errno. */
static ssize_t flow_fill(Flow *f, int fd) {
        ssize_t k;

        if (f->off > 0 && f->len > 0)
                memmove(f->data, f->data + f->off, f->len);
        f->off = 0;
        k = recv(fd, f->data + f->len, BRIDGE_BUFFER - f->len, MSG_DONTWAIT);
        if (k < 0)
                return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
        if (k == 0)
                f->eof = true;
        f->len += (size_t) k;
        return k;
}

/* Writes what f holds to fd, at most max per send(); returns bytes
 * written or -errno. */
static ssize_t flow_drain(Flow *f, int fd, size_t max) {
        ssize_t total = 0;

        while (f->len > 0) {
                ssize_t k = send(fd, f->data + f->off, MIN(f->len, max), MSG_NOSIGNAL | MSG_DONTWAIT);

                if (k < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                break;
                        return -errno;
                }
                f->off += (size_t) k;
                f->len -= (size_t) k;
                total += k;
        }
        if (f->len == 0)
                f->off = 0;
        return total;
}

/* Passes a drained EOF on as a half-close, so HTTP keep-alive and
 * request-then-shutdown clients both work. */
static void flow_pass_eof(Flow *f, int fd) {
        if (f->eof && f->len == 0 && !f->shut) {
                (void) shutdown(fd, SHUT_WR);
                f->shut = true;
        }
}

/* Returns false when the relay is finished (or broken) and must go. */
static bool relay_step(Relay *r, short rv, short ru, uint64_t now) {
        bool moved = false;
        ssize_t k;

        if ((rv | ru) & POLLERR)
                return false;
        if ((rv & (POLLIN | POLLHUP)) && !r->up.eof && r->up.len < BRIDGE_BUFFER) {
                if ((k = flow_fill(&r->up, r->vfd)) < 0 && k != -EAGAIN)
                        return false;
                moved = moved || k >= 0;
        }
        if ((ru & (POLLIN | POLLHUP)) && !r->down.eof && r->down.len < BRIDGE_BUFFER) {
                if ((k = flow_fill(&r->down, r->ufd)) < 0 && k != -EAGAIN)
                        return false;
                moved = moved || k >= 0;
        }
        if (r->up.len > 0) {
                if ((k = flow_drain(&r->up, r->ufd, SIZE_MAX)) < 0)
                        return false;
                moved = moved || k > 0;
        }
        if (r->down.len > 0) {
                /* VSOCK_WRITE_MAX: see agent-conn.h (vhost-device-vsock). */
                if ((k = flow_drain(&r->down, r->vfd, VSOCK_WRITE_MAX)) < 0)
                        return false;
                moved = moved || k > 0;
        }
        flow_pass_eof(&r->up, r->ufd);
        flow_pass_eof(&r->down, r->vfd);
        if (r->up.shut && r->down.shut)
                return false;
        /* A hangup we can do nothing about (we are not reading that side,
         * and nothing moved) would make poll() spin. */
        if (((rv | ru) & POLLHUP) && !moved)
                return false;
        if (moved)
                r->last_activity = now;
        return now - r->last_activity < BRIDGE_IDLE_MS;
}

void bridge_poll_add(Bridge *b, PollSet *ps) {
        b->i_listen = -1;
        if (b->lfd < 0)
                return;
        if (b->n_relays < BRIDGE_MAX_CONNECTIONS)       /* full: the rest wait in the backlog */
                b->i_listen = poll_set_add(ps, b->lfd, POLLIN);
        for (unsigned i = 0; i < b->n_relays; i++) {
                Relay *r = b->relays[i];
                short ev = 0, eu = 0;

                if (!r->up.eof && r->up.len < BRIDGE_BUFFER)
                        ev |= POLLIN;
                if (r->down.len > 0)
                        ev |= POLLOUT;
                if (!r->down.eof && r->down.len < BRIDGE_BUFFER)
                        eu |= POLLIN;
                if (r->up.len > 0)
                        eu |= POLLOUT;
                r->i_v = poll_set_add(ps, r->vfd, ev);
                r->i_u = poll_set_add(ps, r->ufd, eu);
                poll_set_deadline(ps, r->last_activity + BRIDGE_IDLE_MS);
        }
}

void bridge_poll_dispatch(Bridge *b, const PollSet *ps) {
        uint64_t now = now_msec(CLOCK_MONOTONIC);

        if (b->lfd < 0)
                return;
        for (unsigned i = b->n_relays; i > 0; i--) {
                Relay *r = b->relays[i - 1];

                if (r->i_v < 0 || r->i_u < 0)
                        continue;       /* not polled this round (the set was full) */
                if (!relay_step(r, poll_set_revents(ps, r->i_v), poll_set_revents(ps, r->i_u), now))
                        bridge_drop(b, i - 1);
        }
        if (poll_set_revents(ps, b->i_listen) & POLLIN)
                bridge_accept(b);
}
