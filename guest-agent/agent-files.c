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

int op_file_read(Request *rq, Buf *out) {
        const char *path;
        int64_t max_bytes;
        unsigned char *data = NULL;
        size_t len = 0, cap, total;
        struct stat st;
        bool truncated;
        int fd, r;

        if ((r = request_get_path(rq, "path", &path)) < 0 ||
            (r = request_get_int(rq, "max_bytes", (int64_t) FILE_MAX, 0, (int64_t) FILE_MAX, &max_bytes)) < 0)
                return r;
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
        /* One byte more than wanted tells us whether there is more. */
        cap = (size_t) max_bytes + 1;
        if (st.st_size >= 0 && (uint64_t) st.st_size < cap && st.st_size > 0)
                cap = (size_t) st.st_size + 1;
        data = malloc(cap);
        if (!data) {
                r = request_fail(rq, ENOMEM, "out of memory");
                goto finish;
        }
        for (;;) {
                ssize_t k;

                if (len == cap) {
                        size_t want = MIN(cap * 2, (size_t) max_bytes + 1);
                        unsigned char *p;

                        if (want <= cap)
                                break;
                        p = realloc(data, want);
                        if (!p) {
                                r = request_fail(rq, ENOMEM, "out of memory");
                                goto finish;
                        }
                        data = p;
                        cap = want;
                }
                k = read(fd, data + len, cap - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN)
                        break;
                if (k < 0) {
                        r = request_fail(rq, errno, "cannot read '%s': %s", path, strerror(errno));
                        goto finish;
                }
                if (k == 0)
                        break;
                len += (size_t) k;
        }
        truncated = len > (size_t) max_bytes;
        total = len;
        if (truncated) {
                len = (size_t) max_bytes;
                /* Files whose size stat() does not know (procfs): count the
                 * rest, bounded. */
                if (st.st_size <= 0) {
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
        }
        if (st.st_size > 0 && (uint64_t) st.st_size > total)
                total = (size_t) st.st_size;
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

int op_file_write(Request *rq, Buf *out) {
        const char *path, *slash, *name;
        unsigned char *data;
        size_t len;
        int64_t mode;
        char dir[PATH_MAX];
        int dfd, r;

        if ((r = request_get_path(rq, "path", &path)) < 0 ||
            (r = request_get_base64(rq, "data", FILE_MAX, &data, &len)) < 0 ||
            (r = request_get_int(rq, "mode", 0644, 0, 07777, &mode)) < 0)
                return r;
        if (!json_get(rq->args, "data"))
                return request_fail(rq, EINVAL, "'data' is required");
        slash = strrchr(path, '/');
        name = slash + 1;
        if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                return request_fail(rq, EINVAL, "'path' must name a file");
        if (slash == path)
                strcpy(dir, "/");
        else {
                memcpy(dir, path, (size_t) (slash - path));
                dir[slash - path] = 0;
        }
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return request_fail(rq, errno, "cannot open directory '%s': %s", dir, strerror(errno));
        r = write_file_atomic_at_full(dfd, name, data ? (const void *) data : "", len, (mode_t) mode, (uid_t) -1,
                                      (gid_t) -1);
        close(dfd);
        if (r < 0)
                return request_fail(rq, -r, "cannot write '%s': %s", path, strerror(-r));
        json_put_key(out, "size");
        buf_printf(out, "%zu", len);
        return 0;
}

