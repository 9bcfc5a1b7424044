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

static int sockaddr_un_set(struct sockaddr_un *sa, const char *path, socklen_t *ret_len) {
        size_t l = strlen(path);

        if (l >= sizeof(sa->sun_path))
                return -ENAMETOOLONG;
        *sa = (struct sockaddr_un) { .sun_family = AF_UNIX };
        memcpy(sa->sun_path, path, l + 1);
        *ret_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + l + 1);
        return 0;
}

int socket_listen_unix(const char *path, mode_t mode, int backlog, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa;
        socklen_t len;
        int r;

        assert_return(!isempty(path), -EINVAL);
        assert_return(ret_fd, -EINVAL);

        r = sockaddr_un_set(&sa, path, &len);
        if (r < 0)
                return r;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
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
        int r;

        assert_return(!isempty(path), -EINVAL);
        assert_return(ret_fd, -EINVAL);

        r = sockaddr_un_set(&sa, path, &len);
        if (r < 0)
                return r;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (const struct sockaddr *) &sa, len) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}
