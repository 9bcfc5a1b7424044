/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli-cp.h"
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

static bool ends_in_slash(const char *s) {
        return *s && s[strlen(s) - 1] == '/';
}

/* The last component of a path, or NULL for one that names no file
 * ("/", "dir/"). */
static const char *base_name(const char *path) {
        const char *slash = strrchr(path, '/'), *b = slash ? slash + 1 : path;

        return isempty(b) || streq(b, ".") || streq(b, "..") ? NULL : b;
}

/* A target that is a directory gets the source's name, as cp and scp do. */
static int into_dir(const char *dir, const char *src, char **ret) {
        const char *b = base_name(src);

        if (!b)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "%s names no file to copy", src);
        *ret = strjoin(dir, ends_in_slash(dir) ? "" : "/", b);
        return *ret ? 0 : log_oom();
}

/* Out of the guest into dst (a file, a directory, or "-"). Up to CP_MAX
 * in one files request, bigger files in chunks to a temporary file next
 * to the target, renamed once complete. */
static int cp_from_guest(Cli *cli, const char *vm, const char *src, const char *dst) {
        _cleanup_free_ char *q = NULL, *path = NULL, *data = NULL, *target = NULL, *dir = NULL, *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        CliCpStat gst;
        size_t size = 0;
        int r;

        r = cli_cp_guest_stat(cli, vm, src, &gst);
        if (r == -ENOENT)
                return log_error_errno(r, "cannot copy %s:%s: it does not exist in the VM (or cannot be read)", vm, src);
        if (r < 0)
                return r;
        if (gst.is_dir)
                return log_error_errno(SYNTHETIC_ERRNO(EISDIR), "%s:%s is a directory (zvm cp copies files)", vm, src);
        if (streq(dst, "-") && gst.size > CP_MAX)
                return cli_cp_from_guest(cli, vm, src, STDOUT_FILENO);
        if (!streq(dst, "-") && ((stat(dst, &st) >= 0 && S_ISDIR(st.st_mode)) || ends_in_slash(dst))) {
                r = into_dir(dst, src, &target);
                if (r < 0)
                        return r;
                dst = target;
        }
        if (gst.size > CP_MAX) {
                const char *b = base_name(dst);

                dir = b ? strndup(dst, (size_t) (b - dst)) : NULL;
                tmp = dir ? strjoin(isempty(dir) ? "./" : dir, ".", b, ".zvm-cp-XXXXXX") : NULL;
                if (!tmp)
                        return b ? log_oom() : log_error_errno(SYNTHETIC_ERRNO(EINVAL), "%s names no file", dst);
                fd = mkostemp(tmp, O_CLOEXEC);
                if (fd < 0)
                        return log_error_errno(errno, "cannot create a file next to %s: %m", dst);
                r = cli_cp_from_guest(cli, vm, src, fd);
                if (r >= 0 && (fchmod(fd, 0644) < 0 || fsync(fd) < 0 || rename(tmp, dst) < 0))
                        r = log_error_errno(errno, "cannot write %s: %m", dst);
                if (r < 0)
                        (void) unlink(tmp);
                return r;
        }

        q = escape_query(src);
        path = q ? strjoin("/vms/", vm, "/files?path=", q) : NULL;
        if (!path)
                return log_oom();
        r = cli_http_request_data(cli, "GET", path, NULL, 0, NULL, &data, &size);
        if (r < 0)
                return r;
        if (streq(dst, "-"))
                return loop_write(STDOUT_FILENO, data, size, false);
        const char *b = base_name(dst);

        dir = b ? strndup(dst, (size_t) (b - dst)) : NULL;
        if (!dir)
                return b ? log_oom() : log_error_errno(SYNTHETIC_ERRNO(EINVAL), "%s names no file", dst);
        r = write_file_atomic(isempty(dir) ? "." : dir, b, data, size, 0644);
        if (r < 0)
                return log_error_errno(r, "cannot write %s: %m", dst);
        return 0;
}

/* Into the guest: a target ending in '/' or naming a directory there gets
 * the source's name. Up to CP_MAX in one files request, else chunked. */
static int cp_to_guest(Cli *cli, const char *src, const char *vm, const char *dst) {
        _cleanup_free_ char *q = NULL, *path = NULL, *data = NULL, *target = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct stat st = {};
        CliCpStat gst;
        char suffix[64];
        size_t size = 0;
        int r;

        if (!streq(src, "-")) {
                fd = open(src, O_RDONLY | O_CLOEXEC);
                if (fd < 0 || fstat(fd, &st) < 0)
                        return log_error_errno(errno, "cannot read %s: %m", src);
                if (S_ISDIR(st.st_mode))
                        return log_error_errno(SYNTHETIC_ERRNO(EISDIR), "%s is a directory (zvm cp copies files)", src);
        }
        if (ends_in_slash(dst) || (cli_cp_guest_stat(cli, vm, dst, &gst) >= 0 && gst.is_dir)) {
                if (streq(src, "-"))
                        return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "stdin has no name: give the file's path in the VM");
                r = into_dir(dst, src, &target);
                if (r < 0)
                        return r;
                dst = target;
        }
        /* stdin and big files: chunked, whatever their size. */
        if (streq(src, "-") || (S_ISREG(st.st_mode) && (uint64_t) st.st_size > CP_MAX) || !S_ISREG(st.st_mode))
                return cli_cp_to_guest(cli, vm, fd >= 0 ? fd : STDIN_FILENO, dst,
                                       st.st_mode ? (unsigned) (st.st_mode & 07777) : 0644U);

        r = read_full_fd(fd, &data, &size, CP_MAX);
        if (r < 0)
                return log_error_errno(r, "cannot read %s: %m", src);
        q = escape_query(dst);
        if (!q)
                return log_oom();
        snprintf(suffix, sizeof(suffix), "&mode=%04o", (unsigned) (st.st_mode & 07777));
        path = strjoin("/vms/", vm, "/files?path=", q, suffix);
        if (!path)
                return log_oom();
        return cli_http_request_data(cli, "PUT", path, data, size, "application/octet-stream", NULL, NULL);
}

/* zvm cp SRC DST: one side is NAME:/path in the guest, through the agent. */
int verb_cp(Cli *cli, int argc, char *argv[]) {
        _cleanup_free_ char *src_vm = NULL, *dst_vm = NULL, *check = NULL;
        const char *src_path = NULL, *dst_path = NULL, *vm;
        int r;

        r = verb_parse_simple(cli, argc, argv, 2, 2);
        if (r != 0)
                return r;
        src_vm = split_remote(argv[optind], &src_path);
        dst_vm = split_remote(argv[optind + 1], &dst_path);
        if (!!src_vm == !!dst_vm)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                       "exactly one of SRC and DST must be NAME:/absolute/path");
        vm = src_vm ?: dst_vm;
        cli->vm_name = vm;
        r = cli_vm_path(vm, NULL, &check);      /* refuses a VM name that is no safe path segment */
        if (r < 0)
                return r;
        /* As exec: right after a start, wait for the agent. */
        r = cli_vm_wait_agent(cli, vm, CLI_AGENT_WAIT_DEFAULT_S, NULL);
        if (r < 0)
                return r;
        if (src_vm)
                return cp_from_guest(cli, src_vm, src_path, argv[optind + 1]);
        return cp_to_guest(cli, argv[optind], dst_vm, dst_path);
}
