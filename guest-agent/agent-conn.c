/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent-conn.h"
#include "fd-util.h"
#include "time-util.h"

static const char *errno_name(int e) {
        static const struct {
                int e;
                const char *name;
        } table[] = {
                { EPERM, "EPERM" },     { ENOENT, "ENOENT" },   { ESRCH, "ESRCH" },         { EINTR, "EINTR" },
                { EIO, "EIO" },         { ENXIO, "ENXIO" },     { E2BIG, "E2BIG" },         { ENOEXEC, "ENOEXEC" },
                { EBADF, "EBADF" },     { ECHILD, "ECHILD" },   { EAGAIN, "EAGAIN" },       { ENOMEM, "ENOMEM" },
                { EACCES, "EACCES" },   { EFAULT, "EFAULT" },   { EBUSY, "EBUSY" },         { EEXIST, "EEXIST" },
                { EXDEV, "EXDEV" },     { ENODEV, "ENODEV" },   { ENOTDIR, "ENOTDIR" },     { EISDIR, "EISDIR" },
                { EINVAL, "EINVAL" },   { ENFILE, "ENFILE" },   { EMFILE, "EMFILE" },       { ETXTBSY, "ETXTBSY" },
                { EFBIG, "EFBIG" },     { ENOSPC, "ENOSPC" },   { ESPIPE, "ESPIPE" },       { EROFS, "EROFS" },
                { EMLINK, "EMLINK" },   { EPIPE, "EPIPE" },     { ERANGE, "ERANGE" },       { ENAMETOOLONG, "ENAMETOOLONG" },
                { ENOSYS, "ENOSYS" },   { ENOTEMPTY, "ENOTEMPTY" }, { ELOOP, "ELOOP" },     { EDQUOT, "EDQUOT" },
                { ETIMEDOUT, "ETIMEDOUT" }, { EOPNOTSUPP, "EOPNOTSUPP" }, { ECONNRESET, "ECONNRESET" },
                { ENOTSUP, "ENOTSUP" }, { EOVERFLOW, "EOVERFLOW" }, { ECANCELED, "ECANCELED" },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (table[i].e == e)
                        return table[i].name;
        return "EIO";
}


/* Returns 1 with a line (NUL-terminated in place, without its '\n'), 0 at
 * EOF, -ETIMEDOUT, -E2BIG for a line over AGENT_REQUEST_LINE_MAX, or -errno. */
int conn_read_line(Conn *c, int timeout_ms, char **ret_line, size_t *ret_len) {
        uint64_t deadline = now_msec(CLOCK_MONOTONIC) + (uint64_t) timeout_ms;

        /* Drop the line handed out last time. */
        if (c->consumed > 0) {
                memmove(c->buf, c->buf + c->consumed, c->len - c->consumed);
                c->len -= c->consumed;
                c->consumed = 0;
                c->scanned = 0;
        }
        for (;;) {
                char *nl = c->scanned < c->len ? memchr(c->buf + c->scanned, '\n', c->len - c->scanned) : NULL;
                struct pollfd pfd = { .fd = c->in_fd, .events = POLLIN };
                ssize_t k;
                int r;

                if (nl) {
                        size_t n = (size_t) (nl - c->buf);

                        if (n > (size_t) AGENT_REQUEST_LINE_MAX)
                                return -E2BIG;
                        *nl = 0;
                        c->consumed = n + 1;
                        *ret_line = c->buf;
                        *ret_len = n;
                        return 1;
                }
                c->scanned = c->len;
                if (c->len > (size_t) AGENT_REQUEST_LINE_MAX)
                        return -E2BIG;
                if (c->cap - c->len < 65536) {
                        size_t want = c->cap ? c->cap * 2 : 131072;
                        char *p;

                        if (want > (size_t) AGENT_REQUEST_LINE_MAX + 131072)
                                want = (size_t) AGENT_REQUEST_LINE_MAX + 131072;
                        p = want > c->cap ? realloc(c->buf, want) : NULL;
                        if (!p)
                                return -ENOMEM;
                        c->buf = p;
                        c->cap = want;
                }
                r = poll(&pfd, 1, msec_until(deadline));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        return -ETIMEDOUT;
                k = read(c->in_fd, c->buf + c->len, c->cap - c->len - 1);
                if (k < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return 0;
                c->len += (size_t) k;
        }
}

int conn_send(Conn *c, Buf *b) {
        if (b->failed)
                return -ENOMEM;
        return loop_write_full(c->out_fd, b->data, b->len, VSOCK_WRITE_MAX, WRITE_TIMEOUT_MS);
}

int conn_send_error(Conn *c, const Json *id, int err, const char *message) {
        Buf b = {};
        int r;

        buf_puts(&b, "{\"id\":");
        json_put_value(&b, id);
        buf_puts(&b, ",\"ok\":false,\"error\":{\"code\":");
        json_put_cstring(&b, errno_name(err));
        buf_puts(&b, ",\"message\":");
        json_put_cstring(&b, message);
        buf_puts(&b, "}}\n");
        r = conn_send(c, &b);
        buf_free(&b);
        return r;
}

/* Before closing on an error the host may still be sending (an over-long
 * line): stop writing, then read and drop for a moment, so that closing
 * with unread data does not reset the connection before the host has read
 * our answer. */
void conn_linger(Conn *c) {
        uint64_t deadline = now_msec(CLOCK_MONOTONIC) + LINGER_MS;
        char buf[65536];

        (void) shutdown(c->out_fd, SHUT_WR);
        for (;;) {
                struct pollfd pfd = { .fd = c->in_fd, .events = POLLIN };
                int ms = msec_until(deadline);

                ssize_t k;

                if (ms == 0 || poll(&pfd, 1, ms) <= 0)
                        return;
                k = read(c->in_fd, buf, sizeof(buf));
                if (k == 0 || (k < 0 && errno != EINTR && errno != EAGAIN))
                        return;
        }
}

