/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The capped, once-rotated console log (see console-log.h). Writes go to a
 * regular file on /run (a tmpfs): they do not block, and each one is at most
 * as large as what the caller hands in (daemon/console.c reads 64 KiB at a
 * time), so one call stays short.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "console-log.h"
#include "fd-util.h"
#include "string-util.h"

struct ConsoleLog {
        char *path;
        char *path_old;                 /* <path>.1 */
        int fd;                         /* -EBADF after a failed reopen: retried at the next write */
        uint64_t size;                  /* bytes in the current file */
        uint64_t max;
};

static int console_log_reopen(ConsoleLog *l, bool truncate) {
        struct stat st;
        int fd;

        fd = open(l->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK |
                                   (truncate ? O_TRUNC : 0),
                  0640);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0) {
                int r = -errno;

                safe_close(fd);
                return r;
        }
        l->fd = fd;
        l->size = (uint64_t) st.st_size;
        return 0;
}

/* <path> → <path>.1, and a new empty <path>. If the rename fails, the
 * current part is dropped instead: the cap holds either way. */
static int console_log_rotate(ConsoleLog *l) {
        if (rename(l->path, l->path_old) < 0 && errno != ENOENT && l->fd >= 0) {
                if (ftruncate(l->fd, 0) < 0)
                        return -errno;
                l->size = 0;
                return 0;
        }
        l->fd = safe_close(l->fd);
        l->size = 0;
        return console_log_reopen(l, true);
}

int console_log_open(const char *path, uint64_t max, ConsoleLog **ret) {
        _cleanup_(console_log_freep) ConsoleLog *l = NULL;
        int r;

        if (!path || max == 0)
                return -EINVAL;
        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->fd = -EBADF;
        l->max = max;
        l->path = strdup(path);
        l->path_old = strjoin(path, ".1");
        if (!l->path || !l->path_old)
                return -ENOMEM;
        r = console_log_reopen(l, false);
        if (r < 0)
                return r;
        if (l->size > max) {
                /* Left by QEMU's own logfile (before zvmd owned the
                 * console) or a higher cap: keep its first max bytes. */
                r = console_log_rotate(l);
                if (r < 0)
                        return r;
                if (truncate(l->path_old, (off_t) max) < 0 && errno != ENOENT)
                        return -errno;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

ConsoleLog *console_log_free(ConsoleLog *l) {
        if (!l)
                return NULL;
        safe_close(l->fd);
        free(l->path);
        free(l->path_old);
        return mfree(l);
}

uint64_t console_log_size(const ConsoleLog *l) {
        return l ? l->size : 0;
}

int console_log_write(ConsoleLog *l, const void *p, size_t n) {
        const char *b = p;
        int r;

        if (l->fd < 0) {
                r = console_log_reopen(l, false);
                if (r < 0)
                        return r;
        }
        while (n > 0) {
                size_t chunk;
                ssize_t w;

                if (l->size >= l->max) {
                        r = console_log_rotate(l);
                        if (r < 0)
                                return r;
                }
                chunk = (size_t) MIN((uint64_t) n, l->max - l->size);
                w = write(l->fd, b, chunk);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return -errno;
                if (w == 0)
                        return -EIO;
                l->size += (uint64_t) w;
                b += w;
                n -= (size_t) w;
        }
        return 0;
}

/* Appends the last `want` bytes of the file at path to buf + *len. */
static int read_file_tail(const char *path, uint64_t want, char *buf, size_t *len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
        struct stat st;
        ssize_t n;

        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        want = MIN(want, (uint64_t) st.st_size);
        n = pread(fd, buf + *len, (size_t) want, (off_t) ((uint64_t) st.st_size - want));
        if (n < 0)
                return -errno;
        *len += (size_t) n;
        return 0;
}

static uint64_t file_size(const char *path) {
        struct stat st;

        return stat(path, &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t) st.st_size : 0;
}

int console_log_read_tail(const char *path, uint64_t tail, char **ret, size_t *ret_size) {
        _cleanup_free_ char *old = strjoin(path, ".1");
        _cleanup_free_ char *buf = NULL;
        uint64_t cur_size, old_size, from_old;
        size_t len = 0;
        int r;

        if (!old)
                return -ENOMEM;
        /* zvmd is the only writer, and it runs this in its loop: neither
         * file changes between these sizes and the reads below. */
        cur_size = MIN(file_size(path), tail);
        old_size = file_size(old);
        from_old = MIN(tail - cur_size, old_size);
        if (cur_size + from_old >= SIZE_MAX)
                return -EFBIG;
        buf = malloc((size_t) (cur_size + from_old) + 1);
        if (!buf)
                return -ENOMEM;
        if (from_old > 0) {
                r = read_file_tail(old, from_old, buf, &len);
                if (r < 0)
                        return r;
        }
        r = read_file_tail(path, cur_size, buf, &len);
        if (r < 0)
                return r;
        buf[len] = 0;
        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = len;
        return 0;
}
