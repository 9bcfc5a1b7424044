/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fd-util.h"
#include "macro.h"
#include "socket-util.h"

/* A new unix stream socket and the address of path: the part listen and
 * connect share. Returns the fd or -errno. */
static int socket_for_path(const char *path, int flags, struct sockaddr_un *sa, socklen_t *ret_len) {
        size_t l;
        int fd;

        assert_return(!isempty(path), -EINVAL);
        l = strlen(path);
        if (l >= sizeof(sa->sun_path))
                return -ENAMETOOLONG;
        *sa = (struct sockaddr_un) { .sun_family = AF_UNIX };
        memcpy(sa->sun_path, path, l + 1);
        *ret_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + l + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
        return fd < 0 ? -errno : fd;
}

int socket_listen_unix(const char *path, mode_t mode, int backlog, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa;
        socklen_t len;
        int r;

        assert_return(ret_fd, -EINVAL);

        fd = socket_for_path(path, 0, &sa, &len);
        if (fd < 0)
                return fd;
        (void) unlink(path);
        if (bind(fd, (const struct sockaddr *) &sa, len) < 0)
                return -errno;
        /* chmod after bind: until then the socket has the umask's mode,
         * which (022 or stricter) lets nobody but us connect. */
        if (chmod(path, mode) < 0 || listen(fd, backlog) < 0) {
                r = -errno;
                (void) unlink(path);
                return r;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int socket_connect_unix(const char *path, bool nonblock, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa;
        socklen_t len;

        assert_return(ret_fd, -EINVAL);

        fd = socket_for_path(path, nonblock ? SOCK_NONBLOCK : 0, &sa, &len);
        if (fd < 0)
                return fd;
        if (connect(fd, (const struct sockaddr *) &sa, len) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}
