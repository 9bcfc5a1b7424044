/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* File descriptor helpers. All functions return >= 0 or -errno. */

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

/* Default bound for read_full_file() when max_size is 0. */
#define READ_FULL_FILE_DEFAULT_MAX (4U * 1024U * 1024U)
/* Bound for read_one_line_file(). */
#define READ_LINE_MAX (64U * 1024U)

/* Closes fd if it is >= 0, keeping errno; always returns -EBADF so that
 * "fd = safe_close(fd);" leaves the variable invalid. */
int safe_close(int fd);
void close_many(const int fds[], size_t n);

/* poll()s until fd is ready for events (errors and hangups count as ready:
 * the next read or write reports them), or until deadline_msec on
 * CLOCK_MONOTONIC passes (-ETIMEDOUT); UINT64_MAX waits for ever. EINTR
 * does not extend the deadline. -EBADF for an fd that is not open. */
int fd_wait_until(int fd, short events, uint64_t deadline_msec);

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);
#define _cleanup_closedir_ _cleanup_(closedirp)

int fd_cloexec(int fd, bool cloexec);
int fd_nonblock(int fd, bool nonblock);

/* Reads until nbytes were read or EOF, retrying on EINTR. With do_poll, a
 * non-blocking fd that returns EAGAIN is waited on with poll() instead of
 * failing. Returns the number of bytes read (less than nbytes only at EOF),
 * or -errno if an error occurred before anything was read. */
ssize_t loop_read(int fd, void *buf, size_t nbytes, bool do_poll);

/* Like loop_read() but a short read is an error: -EIO. */
int loop_read_exact(int fd, void *buf, size_t nbytes, bool do_poll);

/* Writes all of buf, retrying on EINTR and short writes. Returns 0 or
 * -errno; a write() that makes no progress yields -EIO. */
int loop_write(int fd, const void *buf, size_t nbytes, bool do_poll);

/* Like loop_write() with do_poll, but never more than max_chunk bytes per
 * write() (0: no limit), and waiting at most timeout_ms (-1: forever) for
 * each POLLOUT: -ETIMEDOUT when the reader makes no progress for that long.
 * The chunk bound is for hybrid vsock, see guest-agent/README.md. */
int loop_write_full(int fd, const void *buf, size_t nbytes, size_t max_chunk, int timeout_ms);

/* Reads a whole fd/file into a NUL-terminated buffer. *ret_size (optional)
 * excludes the terminating NUL. Files larger than max_size bytes (0 = use
 * READ_FULL_FILE_DEFAULT_MAX) fail with -EFBIG. Works on files whose
 * st_size lies (procfs, pipes). */
int read_full_fd(int fd, char **ret, size_t *ret_size, size_t max_size);
int read_full_file(const char *path, char **ret, size_t *ret_size, size_t max_size);

/* Reads at most size - 1 bytes of path into buf and NUL-terminates them;
 * returns the number of bytes read. For small files (sysfs, procfs, a
 * secret) read into a fixed buffer: anything beyond is ignored, so callers
 * that must see all of a file use read_full_file(). Opened O_NONBLOCK: a
 * FIFO in its place does not hang us. */
ssize_t read_file_to_buffer(const char *path, char *buf, size_t size);

/* Reads the first line of a file, without its trailing newline. Lines longer
 * than READ_LINE_MAX fail with -ENOBUFS. An empty file yields "". */
int read_one_line_file(const char *path, char **ret);
