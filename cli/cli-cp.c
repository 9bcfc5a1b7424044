/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * zvm cp's guest side beyond one request: what a path in the guest is, and
 * files of any size moved in chunks. The files API carries one body of at
 * most 1 MiB and the agent's file-read/file-write have no offset, so a
 * bigger file goes through the agent's exec as `dd` with skip=/seek= in
 * CP_CHUNK pieces (every template has dd: busybox or coreutils). zvm holds
 * one chunk at a time, so memory stays bounded whatever the size.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base64.h"
#include "cli-cp.h"
#include "cli-http.h"
#include "cli-vm.h"
#include "fd-util.h"
#include "log.h"
#include "string-util.h"

/* Half of a request body (HTTP_BODY_MAX, 1 MiB) once base64 grows it. */
#define CP_CHUNK (512U * 1024U)
#define CP_CHUNK_BS "bs=524288"
_Static_assert(CP_CHUNK == 524288, "CP_CHUNK_BS names CP_CHUNK");
#define CP_EXEC_TIMEOUT_S 120

/* Runs argv in the guest (stdin: in, may be NULL). Returns its exit code,
 * or -errno after logging; *ret_out (optional) gets its stdout. A command
 * that failed has its stderr shown, unless quiet. */
static int guest_run(const Cli *cli, const char *vm, const char *const *argv, const void *in, size_t in_size,
                     bool quiet, unsigned char **ret_out, size_t *ret_out_size) {
        _cleanup_(json_object_putp) json_object *body = json_object_new_object(), *res = NULL;
        _cleanup_free_ char *path = NULL, *b64 = NULL;
        json_object *args = json_object_new_array(), *v;
        int r, code;

        if (!body || !args)
                return log_oom();
        json_object_object_add(body, "argv", args);
        for (size_t i = 0; argv[i]; i++)
                json_object_array_add(args, json_object_new_string(argv[i]));
        json_object_object_add(body, "timeout", json_object_new_int(CP_EXEC_TIMEOUT_S));
        if (in && in_size > 0) {
                b64 = base64_encode(in, in_size);
                if (!b64)
                        return log_oom();
                json_object_object_add(body, "stdin", json_object_new_string(b64));
        }
        r = cli_vm_path(vm, "/exec", &path);
        if (r < 0)
                return r;
        r = cli_http_call(cli, "POST", path, body, &res);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(res, "exit_code", &v) || !json_object_is_type(v, json_type_int))
                return log_error_errno(SYNTHETIC_ERRNO(EIO), "%s in VM %s was killed", argv[0], vm);
        code = json_object_get_int(v);
        if (code != 0 && !quiet) {
                _cleanup_free_ unsigned char *err = NULL;
                size_t n = 0;

                if (json_object_object_get_ex(res, "stderr", &v) && base64_decode(json_object_get_string(v), &err, &n) >= 0 &&
                    n > 0)
                        (void) loop_write(STDERR_FILENO, err, n, false);
        }
        if (code != 0)
                return code;
        if (ret_out) {
                if (!json_object_object_get_ex(res, "stdout", &v) ||
                    base64_decode(json_object_get_string(v), ret_out, ret_out_size) < 0)
                        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "zvmd sent malformed exec output");
        }
        return 0;
}

int cli_cp_guest_stat(const Cli *cli, const char *vm, const char *path, CliCpStat *ret) {
        const char *const argv[] = { "stat", "-L", "-c", "%s %F", path, NULL };
        _cleanup_free_ unsigned char *out = NULL;
        char *end;
        size_t n = 0;
        int r;

        r = guest_run(cli, vm, argv, NULL, 0, true, &out, &n);
        if (r > 0)
                return -ENOENT;
        if (r < 0)
                return r;
        out = realloc(out, n + 1);      /* NUL-terminate what may hold none */
        if (!out)
                return log_oom();
        out[n] = 0;
        errno = 0;
        ret->size = strtoull((char *) out, &end, 10);
        if (errno || end == (char *) out || *end != ' ')
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "cannot understand stat in VM %s: %s", vm, out);
        ret->is_dir = startswith(end + 1, "directory") != NULL;
        return 0;
}

int cli_cp_from_guest(const Cli *cli, const char *vm, const char *src, int fd) {
        char skip[32];

        for (uint64_t i = 0;; i++) {
                _cleanup_free_ unsigned char *out = NULL;
                const char *argv[] = { "dd", NULL, CP_CHUNK_BS, skip, "count=1", NULL };
                _cleanup_free_ char *in = strjoin("if=", src);
                size_t n = 0;
                int r;

                if (!in)
                        return log_oom();
                argv[1] = in;
                snprintf(skip, sizeof(skip), "skip=%" PRIu64, i);
                r = guest_run(cli, vm, argv, NULL, 0, false, &out, &n);
                if (r > 0)
                        return log_error_errno(SYNTHETIC_ERRNO(EIO), "reading %s in VM %s failed (dd exited %d)", src, vm,
                                               r);
                if (r < 0)
                        return r;
                r = loop_write(fd, out, n, false);
                if (r < 0)
                        return log_error_errno(r, "cannot write: %m");
                if (n < CP_CHUNK)
                        return 0;
        }
}

int cli_cp_to_guest(const Cli *cli, const char *vm, int fd, const char *dst, unsigned mode) {
        _cleanup_free_ char *buf = malloc(CP_CHUNK), *dir = NULL, *tmp = NULL, *of = NULL;
        const char *slash = strrchr(dst, '/');
        char seek[32], mode_s[8];
        int r;

        if (!buf)
                return log_oom();
        if (!slash)
                return -EINVAL;
        /* Next to the target, so the final mv is a rename. */
        dir = strndup(dst, (size_t) (slash - dst + 1));
        tmp = dir ? strjoin(dir, ".", slash + 1, ".zvm-cp") : NULL;
        of = tmp ? strjoin("of=", tmp) : NULL;
        if (!of)
                return log_oom();
        for (uint64_t i = 0;; i++) {
                /* CP_CHUNK bytes, fewer only at the end of fd. */
                ssize_t n = loop_read(fd, buf, CP_CHUNK, false);
                const char *argv[] = { "dd", of, CP_CHUNK_BS, seek, i ? "conv=notrunc" : NULL, NULL };

                if (n < 0)
                        return log_error_errno((int) n, "cannot read: %m");
                if (n == 0 && i > 0)
                        break;
                snprintf(seek, sizeof(seek), "seek=%" PRIu64, i);
                r = guest_run(cli, vm, argv, buf, (size_t) n, false, NULL, NULL);
                if (r != 0)
                        goto fail;
                if ((size_t) n < CP_CHUNK)
                        break;
        }
        snprintf(mode_s, sizeof(mode_s), "%04o", mode & 07777);
        r = guest_run(cli, vm, (const char *const[]) { "chmod", mode_s, tmp, NULL }, NULL, 0, false, NULL, NULL);
        if (r == 0)
                r = guest_run(cli, vm, (const char *const[]) { "mv", "-f", tmp, dst, NULL }, NULL, 0, false, NULL, NULL);
        if (r == 0)
                return 0;
fail:
        (void) guest_run(cli, vm, (const char *const[]) { "rm", "-f", tmp, NULL }, NULL, 0, false, NULL, NULL);
        return r < 0 ? r : log_error_errno(SYNTHETIC_ERRNO(EIO), "writing %s in VM %s failed", dst, vm);
}
