/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent-keys.h"
#include "fileio.h"

int keys_parse_args(Request *rq, KeysArgs *a) {
        int r;

        if ((r = request_get_string(rq, "user", false, &a->user)) < 0 ||
            (r = request_get_strv(rq, "keys", true, KEYS_MAX, &a->keys, &a->n_keys)) < 0)
                return r;
        if (!a->user)
                a->user = "root";
        for (size_t i = 0; i < a->n_keys; i++) {
                size_t len = strlen(a->keys[i]);

                if (len == 0 || len > KEY_LINE_MAX)
                        return request_fail(rq, EINVAL, "'keys' entries must be 1 to %d bytes", KEY_LINE_MAX);
                for (size_t k = 0; k < len; k++)
                        if ((unsigned char) a->keys[i][k] < 0x20 && a->keys[i][k] != '\t')
                                return request_fail(rq, EINVAL, "'keys' entries must be single lines");
        }
        return 0;
}

int op_set_authorized_keys(Request *rq, Buf *out) {
        KeysArgs a;
        const char *user;
        char path[PATH_MAX];
        struct passwd *pw;
        Buf content = {};
        int home = -1, ssh = -1, r;
        bool created;

        r = keys_parse_args(rq, &a);
        if (r < 0)
                return r;
        user = a.user;
        for (size_t i = 0; i < a.n_keys; i++) {
                buf_puts(&content, a.keys[i]);
                buf_putc(&content, '\n');
        }
        errno = 0;
        pw = getpwnam(user);
        if (!pw) {
                r = request_fail(rq, errno && errno != ENOENT ? errno : ENOENT, "no user '%s'", user);
                goto finish;
        }
        if (content.failed) {
                r = request_fail(rq, ENOMEM, "out of memory");
                goto finish;
        }
        if (snprintf(path, sizeof(path), "%s%s.ssh/authorized_keys", pw->pw_dir,
                     pw->pw_dir[0] && pw->pw_dir[strlen(pw->pw_dir) - 1] == '/' ? "" : "/") >= (int) sizeof(path)) {
                r = request_fail(rq, ENAMETOOLONG, "home directory of '%s' is too long", user);
                goto finish;
        }
        home = open(pw->pw_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (home < 0) {
                r = request_fail(rq, errno, "cannot open the home directory '%s': %s", pw->pw_dir, strerror(errno));
                goto finish;
        }
        created = mkdirat(home, ".ssh", 0700) == 0;
        if (!created && errno != EEXIST) {
                r = request_fail(rq, errno, "cannot create %s/.ssh: %s", pw->pw_dir, strerror(errno));
                goto finish;
        }
        /* O_NOFOLLOW: a user's ~/.ssh symlink must not make us write
         * elsewhere as root. */
        ssh = openat(home, ".ssh", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (ssh < 0) {
                r = request_fail(rq, errno, "cannot open %s/.ssh: %s", pw->pw_dir, strerror(errno));
                goto finish;
        }
        if (created && (fchown(ssh, pw->pw_uid, pw->pw_gid) < 0 || fchmod(ssh, 0700) < 0)) {
                r = request_fail(rq, errno, "cannot give %s/.ssh to '%s': %s", pw->pw_dir, user, strerror(errno));
                goto finish;
        }
        r = write_file_atomic_at_full(ssh, "authorized_keys", content.data ? content.data : "", content.len, 0600,
                            pw->pw_uid, pw->pw_gid);
        if (r < 0) {
                r = request_fail(rq, -r, "cannot write %s: %s", path, strerror(-r));
                goto finish;
        }
        json_put_key(out, "path");
        json_put_cstring(out, path);
        r = 0;
finish:
        if (home >= 0)
                close(home);
        if (ssh >= 0)
                close(ssh);
        buf_free(&content);
        return r;
}

