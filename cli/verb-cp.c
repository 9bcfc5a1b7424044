/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli-http.h"
#include "cli-vm.h"
#include "fd-util.h"
#include "fileio.h"
#include "log.h"
#include "string-util.h"

#define CP_MAX (1024U * 1024U)

/* "NAME:/abs/path" → name and path; NULL if the argument is a local path. */
static char *split_remote(const char *arg, const char **ret_path) {
        const char *colon = strchr(arg, ':');

        if (!colon || colon == arg || colon[1] != '/' || strchr(arg, '/') < colon)
                return NULL;
        *ret_path = colon + 1;
        return strndup(arg, (size_t) (colon - arg));
}

static char *escape_query(const char *s) {
        static const char hex[] = "0123456789ABCDEF";
        char *out = malloc(strlen(s) * 3 + 1), *p = out;

        if (!out)
                return NULL;
        for (; *s; s++) {
                unsigned char c = (unsigned char) *s;

                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("/-_.~", c))
                        *p++ = (char) c;
                else {
                        *p++ = '%';
                        *p++ = hex[c >> 4];
                        *p++ = hex[c & 15];
                }
        }
        *p = 0;
        return out;
}

/* zvm cp SRC DST: one side is NAME:/path in the guest, through the agent. */
int verb_cp(Cli *cli, int argc, char *argv[]) {
        _cleanup_free_ char *src_vm = NULL, *dst_vm = NULL, *path = NULL, *q = NULL, *data = NULL;
        const char *src_path = NULL, *dst_path = NULL;
        size_t size = 0;
        char suffix[64];
        int r;

        r = verb_parse_simple(cli, argc, argv, 2, 2);
        if (r != 0)
                return r;
        src_vm = split_remote(argv[optind], &src_path);
        dst_vm = split_remote(argv[optind + 1], &dst_path);
        if (!!src_vm == !!dst_vm)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                       "exactly one of SRC and DST must be NAME:/absolute/path");

        if (src_vm) {
                _cleanup_free_ char *dir = NULL, *base = NULL;

                q = escape_query(src_path);
                cli->vm_name = src_vm;
                if (!q || cli_vm_path(src_vm, NULL, &path) < 0)
                        return log_oom();
                free(path);
                path = strjoin("/vms/", src_vm, "/files?path=", q);
                if (!path)
                        return log_oom();
                r = cli_http_request_data(cli, "GET", path, NULL, 0, NULL, &data, &size);
                if (r < 0)
                        return r;
                if (streq(argv[optind + 1], "-"))
                        return loop_write(STDOUT_FILENO, data, size, false);
                const char *dst = argv[optind + 1];
                const char *slash = strrchr(dst, '/');

                dir = slash ? strndup(dst, (size_t) (slash - dst)) : strdup(".");
                base = strdup(slash ? slash + 1 : dst);
                if (!dir || !base)
                        return log_oom();
                if (isempty(dir)) {
                        free(dir);
                        dir = strdup("/");
                }
                r = write_file_atomic(dir, base, data, size, 0644);
                if (r < 0)
                        return log_error_errno(r, "cannot write %s: %m", dst);
                return 0;
        }

        struct stat st = {};
        r = streq(argv[optind], "-") ? read_full_fd(STDIN_FILENO, &data, &size, CP_MAX)
                                     : read_full_file(argv[optind], &data, &size, CP_MAX);
        if (r == -EFBIG)
                return log_error_errno(r, "%s is larger than %u bytes, the limit of zvm cp", argv[optind], CP_MAX);
        if (r < 0)
                return log_error_errno(r, "cannot read %s: %m", argv[optind]);
        if (!streq(argv[optind], "-") && stat(argv[optind], &st) < 0)
                return log_error_errno(-errno, "cannot stat %s: %m", argv[optind]);
        q = escape_query(dst_path);
        if (!q)
                return log_oom();
        snprintf(suffix, sizeof(suffix), "&mode=%04o", st.st_mode ? (unsigned) (st.st_mode & 07777) : 0644U);
        cli->vm_name = dst_vm;
        r = cli_vm_path(dst_vm, NULL, &path);
        if (r < 0)
                return r;
        free(path);
        path = strjoin("/vms/", dst_vm, "/files?path=", q, suffix);
        if (!path)
                return log_oom();
        return cli_http_request_data(cli, "PUT", path, data, size, "application/octet-stream", NULL, NULL);
}
