/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd-util.h"
#include "socket-util.h"
#include "string-util.h"
#include "tap.h"

static char tmpdir[] = "/tmp/test-socket-util.XXXXXX";

static void test_listen_connect(void) {
        _cleanup_free_ char *path = strjoin(tmpdir, "/a.sock");
        _cleanup_close_ int l = -EBADF, c = -EBADF, a = -EBADF;
        struct stat st;
        char b = 0;

        assert_se(path);
        is_int(socket_listen_unix(path, 0600, 4, &l), 0, "listen");
        ok(stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0600, "a socket, mode 0600");
        ok(fcntl(l, F_GETFD) & FD_CLOEXEC, "listening fd is O_CLOEXEC");
        is_int(socket_connect_unix(path, false, &c), 0, "blocking connect");
        ok(fcntl(c, F_GETFD) & FD_CLOEXEC, "client fd is O_CLOEXEC");
        ok(!(fcntl(c, F_GETFL) & O_NONBLOCK), "blocking client");
        a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        ok(a >= 0 && write(c, "x", 1) == 1 && read(a, &b, 1) == 1 && b == 'x', "bytes pass");

        /* The path of a listener that died: replaced, not EADDRINUSE. */
        l = safe_close(l);
        is_int(socket_listen_unix(path, 0660, 4, &l), 0, "listen again on a stale socket");
        ok(stat(path, &st) == 0 && (st.st_mode & 07777) == 0660, "mode 0660 applied");
}

static void test_nonblock_backlog(void) {
        _cleanup_free_ char *path = strjoin(tmpdir, "/b.sock");
        _cleanup_close_ int l = -EBADF;
        int fds[8], n = 0, r = 0;

        assert_se(path);
        is_int(socket_listen_unix(path, 0600, 0, &l), 0, "listen with backlog 0");
        /* Nobody accepts: the backlog fills, and a non-blocking connect
         * must then say EAGAIN rather than wait. */
        while (n < (int) ELEMENTSOF(fds)) {
                r = socket_connect_unix(path, true, &fds[n]);
                if (r < 0)
                        break;
                ok(fcntl(fds[n], F_GETFL) & O_NONBLOCK, "client %d is non-blocking", n);
                n++;
        }
        is_int(r, -EAGAIN, "full backlog: -EAGAIN after %d connects", n);
        close_many(fds, (size_t) n);
}

static void test_errors(void) {
        _cleanup_free_ char *missing = strjoin(tmpdir, "/missing.sock");
        char longpath[200];
        int fd = 12345;

        memset(longpath, 'a', sizeof(longpath) - 1);
        longpath[0] = '/';
        longpath[sizeof(longpath) - 1] = 0;
        is_int(socket_connect_unix(missing, true, &fd), -ENOENT, "missing path: -ENOENT");
        is_int(socket_listen_unix(longpath, 0600, 1, &fd), -ENAMETOOLONG, "long path refused");
        is_int(socket_connect_unix(longpath, false, &fd), -ENAMETOOLONG, "long path refused (connect)");
        is_int(fd, 12345, "ret_fd untouched on failure");
}

int main(void) {
        assert_se(mkdtemp(tmpdir));
        test_listen_connect();
        test_nonblock_backlog();
        test_errors();
        {
                _cleanup_free_ char *a = strjoin(tmpdir, "/a.sock"), *b = strjoin(tmpdir, "/b.sock");

                (void) unlink(a);
                (void) unlink(b);
        }
        ok(rmdir(tmpdir) == 0, "temporary directory empty and removed");
        return done_testing();
}
