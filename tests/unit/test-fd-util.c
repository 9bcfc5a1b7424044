/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "fd-util.h"
#include "fileio.h"
#include "string-util.h"
#include "tap.h"

static char tmpdir[] = "/tmp/test-fd-util.XXXXXX";

static char *tmp_path(const char *name) {
        char *p = strjoin(tmpdir, "/", name);
        assert_se(p);
        return p;
}

static void write_test_file(const char *name, const void *data, size_t len) {
        assert_se(write_file_atomic(tmpdir, name, data, len, 0644) >= 0);
}

static void fill_pattern(uint8_t *b, size_t n) {
        for (size_t i = 0; i < n; i++)
                b[i] = (uint8_t) (i * 7 + i / 251);
}

/* A child that writes `total` bytes of the pattern in small chunks with
 * pauses, so the reader sees short reads (and, with a timer, EINTR). */
static pid_t spawn_slow_writer(int fd, size_t total, size_t chunk) {
        pid_t pid = fork();

        assert_se(pid >= 0);
        if (pid == 0) {
                _cleanup_free_ uint8_t *b = malloc(total);

                if (!b)
                        _exit(EXIT_FAILURE);
                fill_pattern(b, total);
                for (size_t off = 0; off < total; off += chunk) {
                        (void) usleep(2000);
                        if (loop_write(fd, b + off, MIN(chunk, total - off), false) < 0)
                                _exit(EXIT_FAILURE);
                }
                _exit(EXIT_SUCCESS);
        }
        return pid;
}

static bool wait_ok(pid_t pid) {
        int status;

        return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void on_alarm(int sig) {
}

static void test_safe_close(void) {
        int p[2];

        assert_se(pipe2(p, O_CLOEXEC) == 0);
        errno = EBUSY;
        is_int(safe_close(p[0]), -EBADF, "safe_close returns -EBADF");
        is_int(errno, EBUSY, "safe_close keeps errno");
        ok(fcntl(p[0], F_GETFD) < 0 && errno == EBADF, "fd is closed");
        is_int(safe_close(-EBADF), -EBADF, "safe_close of an invalid fd is a no-op");

        close_many((int[]) { p[1], -EBADF }, 2);
        ok(fcntl(p[1], F_GETFD) < 0 && errno == EBADF, "close_many closes");

        {
                _cleanup_close_ int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                int taken;

                taken = TAKE_FD(fd);
                is_int(fd, -EBADF, "TAKE_FD invalidates the variable");
                ok(fcntl(taken, F_GETFD) >= 0, "TAKE_FD keeps the fd open");
                (void) safe_close(taken);
        }
}

static void test_flags(void) {
        _cleanup_close_ int fd = open("/dev/null", O_RDONLY);

        assert_se(fd >= 0);
        is_int(fd_cloexec(fd, true), 0, "fd_cloexec(true)");
        ok(fcntl(fd, F_GETFD) & FD_CLOEXEC, "FD_CLOEXEC set");
        is_int(fd_cloexec(fd, false), 0, "fd_cloexec(false)");
        ok(!(fcntl(fd, F_GETFD) & FD_CLOEXEC), "FD_CLOEXEC cleared");
        is_int(fd_nonblock(fd, true), 0, "fd_nonblock(true)");
        ok(fcntl(fd, F_GETFL) & O_NONBLOCK, "O_NONBLOCK set");
        is_int(fd_nonblock(fd, false), 0, "fd_nonblock(false)");
        ok(!(fcntl(fd, F_GETFL) & O_NONBLOCK), "O_NONBLOCK cleared");
        is_int(fd_nonblock(-EBADF, true), -EBADF, "fd_nonblock of invalid fd");
        is_int(fd_cloexec(12345, true), -EBADF, "fd_cloexec of a closed fd");
}

static void test_loop_read_short_and_eintr(void) {
        struct sigaction sa = { .sa_handler = on_alarm }, old;   /* no SA_RESTART */
        struct itimerval it = { .it_interval = { 0, 500 }, .it_value = { 0, 500 } };
        const size_t total = 64 * 1024;
        _cleanup_free_ uint8_t *got = malloc(total + 16), *want = malloc(total);
        int p[2];
        pid_t pid;
        ssize_t n;

        assert_se(got && want);
        fill_pattern(want, total);
        assert_se(pipe2(p, O_CLOEXEC) == 0);

        pid = spawn_slow_writer(p[1], total, 1000);
        p[1] = safe_close(p[1]);

        /* A fast periodic timer makes the blocking read()s fail with EINTR. */
        assert_se(sigaction(SIGALRM, &sa, &old) == 0);
        assert_se(setitimer(ITIMER_REAL, &it, NULL) == 0);
        n = loop_read(p[0], got, total + 16, false);
        assert_se(setitimer(ITIMER_REAL, &(struct itimerval) {}, NULL) == 0);
        assert_se(sigaction(SIGALRM, &old, NULL) == 0);

        is_int(n, total, "loop_read collects short reads until EOF, through EINTR");
        ok(n == (ssize_t) total && memcmp(got, want, total) == 0, "data intact");
        ok(wait_ok(pid), "writer exited cleanly");
        (void) safe_close(p[0]);
}

static void test_loop_read_nonblock(void) {
        const size_t total = 20000;
        _cleanup_free_ uint8_t *got = malloc(total), *want = malloc(total);
        uint8_t c;
        int p[2];
        pid_t pid;

        assert_se(got && want);
        fill_pattern(want, total);
        assert_se(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);

        is_int(loop_read(p[0], &c, 1, false), -EAGAIN, "non-blocking empty pipe: -EAGAIN without do_poll");

        assert_se(fd_nonblock(p[1], false) == 0);
        pid = spawn_slow_writer(p[1], total, 3000);
        is_int(loop_read_exact(p[0], got, total, true), 0, "loop_read_exact with do_poll waits for data");
        ok(memcmp(got, want, total) == 0, "data intact");
        ok(wait_ok(pid), "writer exited cleanly");

        p[1] = safe_close(p[1]);
        is_int(loop_read(p[0], got, 10, true), 0, "loop_read at EOF returns 0");
        is_int(loop_read_exact(p[0], got, 10, true), -EIO, "loop_read_exact short read is -EIO");
        (void) safe_close(p[0]);
}

static void test_loop_write(void) {
        const size_t total = 1024 * 1024; /* far more than the pipe buffer */
        _cleanup_free_ uint8_t *data = malloc(total);
        _cleanup_free_ char *got = NULL;
        int p[2];
        pid_t pid;
        size_t size = 0;

        assert_se(data);
        fill_pattern(data, total);
        assert_se(pipe2(p, O_CLOEXEC) == 0);

        pid = fork();
        assert_se(pid >= 0);
        if (pid == 0) {
                (void) safe_close(p[0]);
                assert_se(fd_nonblock(p[1], true) == 0);
                _exit(loop_write(p[1], data, total, true) == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
        }
        p[1] = safe_close(p[1]);

        is_int(read_full_fd(p[0], &got, &size, total), 0, "read_full_fd of a pipe");
        is_int(size, total, "all bytes arrived");
        ok(got && memcmp(got, data, total) == 0, "loop_write wrote everything in order (non-blocking + poll)");
        ok(wait_ok(pid), "writer exited cleanly");
        (void) safe_close(p[0]);

        assert_se(pipe2(p, O_CLOEXEC) == 0);
        p[0] = safe_close(p[0]);
        {
                struct sigaction sa = { .sa_handler = SIG_IGN }, old;

                assert_se(sigaction(SIGPIPE, &sa, &old) == 0);
                is_int(loop_write(p[1], "x", 1, false), -EPIPE, "loop_write reports -EPIPE");
                assert_se(sigaction(SIGPIPE, &old, NULL) == 0);
        }
        (void) safe_close(p[1]);
}

static void test_read_full_file(void) {
        _cleanup_free_ char *a = tmp_path("a"), *empty = tmp_path("empty"), *buf = NULL;
        size_t size = 1;

        write_test_file("a", "hello\nworld", 11);
        write_test_file("empty", "", 0);

        is_int(read_full_file(a, &buf, &size, 0), 0, "read_full_file");
        is_int(size, 11, "size");
        is_str(buf, "hello\nworld", "content, NUL-terminated");
        buf = mfree(buf);

        is_int(read_full_file(a, &buf, &size, 11), 0, "max_size equal to the size is fine");
        buf = mfree(buf);
        is_int(read_full_file(a, &buf, &size, 10), -EFBIG, "over max_size is -EFBIG");
        ok(!buf, "no buffer returned on failure");

        is_int(read_full_file(empty, &buf, &size, 0), 0, "empty file");
        is_int(size, 0, "empty size");
        is_str(buf, "", "empty content");
        buf = mfree(buf);

        is_int(read_full_file("/proc/self/status", &buf, &size, 0), 0, "procfs file (st_size 0)");
        ok(buf && startswith(buf, "Name:") && size == strlen(buf), "procfs content");
        buf = mfree(buf);
        is_int(read_full_file("/proc/self/status", &buf, &size, 8), -EFBIG, "procfs file over max_size");

        is_int(read_full_file(tmpdir, &buf, &size, 0), -EISDIR, "directory is -EISDIR");
        is_int(read_full_file("/nonexistent/x", &buf, &size, 0), -ENOENT, "missing file is -ENOENT");
}

static void test_read_one_line_file(void) {
        _cleanup_free_ char *two = tmp_path("two"), *noeol = tmp_path("noeol"), *empty = tmp_path("empty1"),
                            *longp = tmp_path("long"), *maxp = tmp_path("max"), *line = NULL;
        _cleanup_free_ char *big = malloc(READ_LINE_MAX + 2);

        assert_se(big);
        write_test_file("two", "first\nsecond\n", 13);
        write_test_file("noeol", "only", 4);
        write_test_file("empty1", "", 0);
        memset(big, 'a', READ_LINE_MAX + 1);
        big[READ_LINE_MAX] = '\n';
        write_test_file("max", big, READ_LINE_MAX + 1);
        big[READ_LINE_MAX] = 'a';
        write_test_file("long", big, READ_LINE_MAX + 1);

        is_int(read_one_line_file(two, &line), 0, "read_one_line_file");
        is_str(line, "first", "first line without newline");
        line = mfree(line);
        is_int(read_one_line_file(noeol, &line), 0, "no trailing newline");
        is_str(line, "only", "whole content");
        line = mfree(line);
        is_int(read_one_line_file(empty, &line), 0, "empty file");
        is_str(line, "", "empty line");
        line = mfree(line);
        is_int(read_one_line_file(maxp, &line), 0, "line of exactly READ_LINE_MAX bytes");
        is_int(line ? strlen(line) : 0, READ_LINE_MAX, "length");
        line = mfree(line);
        is_int(read_one_line_file(longp, &line), -ENOBUFS, "longer line is -ENOBUFS");
        is_int(read_one_line_file("/nonexistent", &line), -ENOENT, "missing file");
}

static void cleanup_tmpdir(void) {
        const char *names[] = { "a", "empty", "two", "noeol", "empty1", "long", "max" };

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                _cleanup_free_ char *p = tmp_path(names[i]);
                (void) unlink(p);
        }
        ok(rmdir(tmpdir) == 0, "temporary directory empty and removed");
}

static void test_loop_write_full(void) {
        _cleanup_close_ int a = -EBADF, b = -EBADF;
        _cleanup_free_ char *big = malloc(200000);
        int p[2], sv[2];

        assert_se(big);
        memset(big, 'x', 200000);
        /* A socket buffer smaller than the data: the writer must wait for
         * POLLOUT, in pieces of at most 1000 bytes, while a child drains. */
        assert_se(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        a = sv[0];
        b = sv[1];
        assert_se(fd_nonblock(a, true) == 0);
        if (fork() == 0) {
                char buf[4096];
                size_t total = 0;
                ssize_t k;

                close(a);
                while ((k = read(b, buf, sizeof(buf))) > 0)
                        total += (size_t) k;
                _exit(total == 200000 ? 0 : 1);
        }
        is_int(loop_write_full(a, big, 200000, 1000, 5000), 0, "loop_write_full: 200000 bytes in <= 1000-byte writes");
        a = safe_close(a);
        {
                int status = 0;

                assert_se(wait(&status) > 0);
                ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "...all of them arrive");
        }

        /* Nobody reads: the pipe fills and the timeout ends the wait. */
        assert_se(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
        is_int(loop_write_full(p[1], big, 200000, 0, 100), -ETIMEDOUT, "loop_write_full: -ETIMEDOUT when nobody reads");
        close(p[0]);
        close(p[1]);
}

static void test_read_file_to_buffer(void) {
        char buf[8];

        is_int(read_file_to_buffer("/proc/self/cmdline", buf, sizeof(buf)), 7,
               "read_file_to_buffer: at most size - 1 bytes");
        ok(buf[7] == '\0', "...NUL-terminated");
        is_int(read_file_to_buffer("/no/such/file", buf, sizeof(buf)), -ENOENT, "read_file_to_buffer: -ENOENT");
        is_int(read_file_to_buffer("/dev/null", buf, sizeof(buf)), 0, "read_file_to_buffer: an empty file");
        is_int(read_file_to_buffer("/dev/null", buf, 0), -EINVAL, "read_file_to_buffer: size 0 is -EINVAL");
}

int main(void) {
        assert_se(mkdtemp(tmpdir));

        test_safe_close();
        test_flags();
        test_loop_read_short_and_eintr();
        test_loop_read_nonblock();
        test_loop_write();
        test_read_full_file();
        test_read_one_line_file();
        test_loop_write_full();
        test_read_file_to_buffer();

        cleanup_tmpdir();
        return done_testing();
}
