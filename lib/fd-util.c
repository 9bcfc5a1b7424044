/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <sys/stat.h>

#include "fd-util.h"
#include "time-util.h"

int safe_close(int fd) {
        if (fd >= 0) {
                int saved_errno = errno;

                /* Linux frees the descriptor even if close() fails, also on
                 * EINTR: retrying could close an fd another thread just got. */
                (void) close(fd);
                errno = saved_errno;
        }
        return -EBADF;
}

void close_many(const int fds[], size_t n) {
        assert_return_void(fds || n == 0);

        for (size_t i = 0; i < n; i++)
                (void) safe_close(fds[i]);
}

static int fd_update_flag(int fd, int get_cmd, int set_cmd, int flag, bool on) {
        int flags, nflags;

        assert_return(fd >= 0, -EBADF);

        flags = fcntl(fd, get_cmd, 0);
        if (flags < 0)
                return -errno;

        nflags = on ? flags | flag : flags & ~flag;
        if (nflags == flags)
                return 0;

        if (fcntl(fd, set_cmd, nflags) < 0)
                return -errno;
        return 0;
}

int fd_cloexec(int fd, bool cloexec) {
        return fd_update_flag(fd, F_GETFD, F_SETFD, FD_CLOEXEC, cloexec);
}

int fd_nonblock(int fd, bool nonblock) {
        return fd_update_flag(fd, F_GETFL, F_SETFL, O_NONBLOCK, nonblock);
}

int fd_wait_until(int fd, short events, uint64_t deadline_msec) {
        struct pollfd p = { .fd = fd, .events = events };

        for (;;) {
                int r = poll(&p, 1, deadline_msec == UINT64_MAX ? -1 : msec_until(deadline_msec));
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

/* Wait for the fd to become ready instead of spinning on EAGAIN; at most
 * timeout_ms (-1: forever), then -ETIMEDOUT. */
static int fd_wait_for(int fd, short events, int timeout_ms) {
        return fd_wait_until(fd, events, timeout_ms < 0 ? UINT64_MAX
                                                        : now_msec(CLOCK_MONOTONIC) + (uint64_t) timeout_ms);
}

ssize_t loop_read(int fd, void *buf, size_t nbytes, bool do_poll) {
        uint8_t *p = buf;
        size_t n = 0;

        assert_return(fd >= 0, -EBADF);
        assert_return(buf || nbytes == 0, -EINVAL);

        /* The result must fit ssize_t. */
        assert_return(nbytes <= SSIZE_MAX, -EINVAL);

        while (n < nbytes) {
                ssize_t k;

                k = read(fd, p + n, nbytes - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN && do_poll) {
                                int r = fd_wait_for(fd, POLLIN, -1);
                                if (r < 0)
                                        return n > 0 ? (ssize_t) n : r;
                                continue;
                        }
                        return n > 0 ? (ssize_t) n : -errno;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }

        return (ssize_t) n;
}

int loop_read_exact(int fd, void *buf, size_t nbytes, bool do_poll) {
        ssize_t n;

        n = loop_read(fd, buf, nbytes, do_poll);
        if (n < 0)
                return (int) n;
        if ((size_t) n != nbytes)
                return -EIO;
        return 0;
}

static int loop_write_internal(int fd, const void *buf, size_t nbytes, size_t max_chunk, bool do_poll,
                               int timeout_ms) {
        const uint8_t *p = buf;

        assert_return(fd >= 0, -EBADF);
        assert_return(buf || nbytes == 0, -EINVAL);

        while (nbytes > 0) {
                ssize_t k;

                k = write(fd, p, max_chunk > 0 ? MIN(nbytes, max_chunk) : nbytes);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN && do_poll) {
                                int r = fd_wait_for(fd, POLLOUT, timeout_ms);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                        return -errno;
                }
                if (k == 0) /* Not expected for nbytes > 0, but never loop forever. */
                        return -EIO;

                p += k;
                nbytes -= (size_t) k;
        }

        return 0;
}

int loop_write(int fd, const void *buf, size_t nbytes, bool do_poll) {
        return loop_write_internal(fd, buf, nbytes, 0, do_poll, -1);
}

int loop_write_full(int fd, const void *buf, size_t nbytes, size_t max_chunk, int timeout_ms) {
        return loop_write_internal(fd, buf, nbytes, max_chunk, true, timeout_ms);
}

int read_full_fd(int fd, char **ret, size_t *ret_size, size_t max_size) {
        _cleanup_free_ char *buf = NULL;
        size_t n = 0, allocated = 0;
        struct stat st;

        assert_return(fd >= 0, -EBADF);
        assert_return(ret, -EINVAL);

        if (max_size == 0)
                max_size = READ_FULL_FILE_DEFAULT_MAX;
        assert_return(max_size < SIZE_MAX - 1, -EINVAL);

        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;

        /* Regular files announce their size; start with that (+1 to see EOF
         * in the same read). procfs and pipes report 0 or garbage, so the
         * loop below grows the buffer as needed anyway. */
        if (S_ISREG(st.st_mode) && st.st_size > 0) {
                if ((uint64_t) st.st_size > max_size)
                        return -EFBIG;
                allocated = (size_t) st.st_size + 1;
        } else
                allocated = 4096;

        for (;;) {
                ssize_t k;

                if (n >= allocated) {
                        size_t a = allocated > (max_size + 1) / 2 ? max_size + 1 : allocated * 2;
                        char *t;

                        if (a <= allocated) /* Already at max_size + 1 and still not at EOF. */
                                return -EFBIG;
                        t = realloc(buf, a + 1);
                        if (!t)
                                return -ENOMEM;
                        buf = t;
                        allocated = a;
                } else if (!buf) {
                        buf = malloc(allocated + 1);
                        if (!buf)
                                return -ENOMEM;
                }

                k = loop_read(fd, buf + n, allocated - n, /* do_poll= */ true);
                if (k < 0)
                        return (int) k;
                n += (size_t) k;
                if (n > max_size)
                        return -EFBIG;
                if (n < allocated)
                        break; /* EOF */
        }

        buf[n] = '\0';
        if (ret_size)
                *ret_size = n;
        *ret = TAKE_PTR(buf);
        return 0;
}

int read_full_file(const char *path, char **ret, size_t *ret_size, size_t max_size) {
        _cleanup_close_ int fd = -EBADF;

        assert_return(path, -EINVAL);
        assert_return(ret, -EINVAL);

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;

        return read_full_fd(fd, ret, ret_size, max_size);
}

ssize_t read_file_to_buffer(const char *path, char *buf, size_t size) {
        _cleanup_close_ int fd = -EBADF;
        ssize_t n;

        assert_return(path, -EINVAL);
        assert_return(buf && size > 0, -EINVAL);

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        n = loop_read(fd, buf, size - 1, /* do_poll= */ false);
        if (n < 0)
                return n;
        buf[n] = '\0';
        return n;
}

int read_one_line_file(const char *path, char **ret) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t n = 0;
        char *line;

        assert_return(path, -EINVAL);
        assert_return(ret, -EINVAL);

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;

        /* One allocation of the bound; the line is copied out at the end so
         * the caller does not keep 64 KiB per short line. */
        buf = malloc(READ_LINE_MAX + 1);
        if (!buf)
                return -ENOMEM;

        for (;;) {
                char *nl;
                ssize_t k;

                if (n >= READ_LINE_MAX + 1)
                        return -ENOBUFS;

                k = read(fd, buf + n, READ_LINE_MAX + 1 - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;

                nl = memchr(buf + n, '\n', (size_t) k);
                n += (size_t) k;
                if (nl) {
                        n = (size_t) (nl - buf);
                        break;
                }
        }

        if (n > READ_LINE_MAX)
                return -ENOBUFS;

        buf[n] = '\0';
        line = strdup(buf);
        if (!line)
                return -ENOMEM;

        *ret = line;
        return 0;
}
