/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent-base64.h"
#include "agent-files.h"
#include "fileio.h"

/* Reads up to max + 1 bytes (one more than wanted tells whether there is
 * more) into a malloc'ed buffer: 0, -ENOMEM or the read error. A
 * non-blocking file with nothing more to give ends the read. */
static int file_read_upto(int fd, const struct stat *st, size_t max, unsigned char **ret, size_t *ret_len) {
        _cleanup_free_ unsigned char *data = NULL;
        size_t len = 0, cap = max + 1;

        if (st->st_size > 0 && (uint64_t) st->st_size < cap)
                cap = (size_t) st->st_size + 1;
        data = malloc(cap);
        if (!data)
                return -ENOMEM;
        for (;;) {
                ssize_t k;

                if (len == cap) {
                        size_t want = MIN(cap * 2, max + 1);
                        unsigned char *p;

                        if (want <= cap)
                                break;
                        p = realloc(data, want);
                        if (!p)
                                return -ENOMEM;
                        data = p;
                        cap = want;
                }
                k = read(fd, data + len, cap - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN)
                        break;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                len += (size_t) k;
        }
        *ret = TAKE_PTR(data);
        *ret_len = len;
        return 0;
}

/* The size to report for a file cut at max_bytes: stat's, or for files
 * whose size stat() does not know (procfs) the rest counted, bounded. */
static size_t file_total_size(int fd, const struct stat *st, size_t got) {
        size_t total = got;

        if (st->st_size <= 0) {
                unsigned char tmp[65536];

                while (total < ((size_t) 256 << 20)) {
                        ssize_t k = read(fd, tmp, sizeof(tmp));

                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k <= 0)
                                break;
                        total += (size_t) k;
                }
        }
        return MAX(total, st->st_size > 0 ? (size_t) st->st_size : 0);
}

int file_read_parse_args(Request *rq, FileReadArgs *a) {
        int r;

        if ((r = request_get_path(rq, "path", &a->path)) < 0 ||
            (r = request_get_int(rq, "max_bytes", (int64_t) FILE_MAX, 0, (int64_t) FILE_MAX, &a->max_bytes)) < 0)
                return r;
        return 0;
}

int op_file_read(Request *rq, Buf *out) {
        FileReadArgs a;
        const char *path;
        int64_t max_bytes;
        unsigned char *data = NULL;
        size_t len = 0, total;
        struct stat st;
        bool truncated;
        int fd, r;

        r = file_read_parse_args(rq, &a);
        if (r < 0)
                return r;
        path = a.path;
        max_bytes = a.max_bytes;
        /* O_NONBLOCK: opening a FIFO must not wait for a writer, and
         * /proc/kmsg-like files must not wait for data. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return request_fail(rq, errno, "cannot open '%s': %s", path, strerror(errno));
        if (fstat(fd, &st) < 0) {
                r = request_fail(rq, errno, "cannot stat '%s': %s", path, strerror(errno));
                goto finish;
        }
        if (S_ISDIR(st.st_mode)) {
                r = request_fail(rq, EISDIR, "'%s' is a directory", path);
                goto finish;
        }
        if (!S_ISREG(st.st_mode)) {
                r = request_fail(rq, EINVAL, "'%s' is not a regular file", path);
                goto finish;
        }
        r = file_read_upto(fd, &st, (size_t) max_bytes, &data, &len);
        if (r == -ENOMEM) {
                r = request_fail(rq, ENOMEM, "out of memory");
                goto finish;
        }
        if (r < 0) {
                r = request_fail(rq, -r, "cannot read '%s': %s", path, strerror(-r));
                goto finish;
        }
        truncated = len > (size_t) max_bytes;
        if (truncated) {
                total = file_total_size(fd, &st, len);
                len = (size_t) max_bytes;
        } else
                total = MAX(len, st.st_size > 0 ? (size_t) st.st_size : 0);
        json_put_key(out, "data");
        base64_put(out, data, len);
        json_put_key(out, "size");
        buf_printf(out, "%llu", (unsigned long long) total);
        json_put_key(out, "mode");
        buf_printf(out, "%u", (unsigned) (st.st_mode & 07777));
        json_put_key(out, "truncated");
        buf_puts(out, truncated ? "true" : "false");
        r = 0;
finish:
        free(data);
        close(fd);
        return r;
}

int file_write_parse_args(Request *rq, FileWriteArgs *a) {
        const char *slash;
        int r;

        if ((r = request_get_path(rq, "path", &a->path)) < 0 ||
            (r = request_get_base64(rq, "data", FILE_MAX, &a->data, &a->len)) < 0 ||
            (r = request_get_int(rq, "mode", 0644, 0, 07777, &a->mode)) < 0)
                return r;
        if (!json_get(rq->args, "data"))
                return request_fail(rq, EINVAL, "'data' is required");
        slash = strrchr(a->path, '/');
        a->name = slash + 1;
        if (!*a->name || strcmp(a->name, ".") == 0 || strcmp(a->name, "..") == 0)
                return request_fail(rq, EINVAL, "'path' must name a file");
        if (slash == a->path)
                strcpy(a->dir, "/");
        else {
                memcpy(a->dir, a->path, (size_t) (slash - a->path));
                a->dir[slash - a->path] = 0;
        }
        return 0;
}

int op_file_write(Request *rq, Buf *out) {
        FileWriteArgs args, *a = &args;
        int dfd, r;

        r = file_write_parse_args(rq, a);
        if (r < 0)
                return r;
        dfd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return request_fail(rq, errno, "cannot open directory '%s': %s", a->dir, strerror(errno));
        r = write_file_atomic_at_full(dfd, a->name, a->data ? (const void *) a->data : "", a->len, (mode_t) a->mode,
                                      (uid_t) -1, (gid_t) -1);
        close(dfd);
        if (r < 0)
                return request_fail(rq, -r, "cannot write '%s': %s", a->path, strerror(-r));
        json_put_key(out, "size");
        buf_printf(out, "%zu", a->len);
        return 0;
}

