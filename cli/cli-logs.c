/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * zvm logs: the serial console log of a VM, its last lines or bytes, and
 * following it. zvmd serves only tails (GET .../console/log?tail=N, at most
 * 1 MiB), so --tail N lines cuts the lines out of the largest tail and
 * --follow polls a tail and prints what is new in it (cli-text.c).
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli-http.h"
#include "cli-text.h"
#include "cli-util.h"
#include "cli-vm.h"
#include "fd-util.h"
#include "log.h"
#include "string-util.h"

/* The most zvmd sends of a log (daemon: CONSOLE_LOG_TAIL_MAX). */
#define LOGS_TAIL_MAX (1024U * 1024U)
/* What each poll of --follow asks for: more than a guest prints in one
 * interval (zvmd paces a flooding console to some 25 KB/s). */
#define LOGS_FOLLOW_TAIL (256U * 1024U)
#define LOGS_FOLLOW_INTERVAL_MS 500U

/* Writes the guest's bytes to stdout; on a terminal without its control
 * sequences (a guest's "ESC[6n" makes the terminal answer into the shell). */
static int logs_write(const char *data, size_t size, bool strip) {
        _cleanup_free_ char *copy = NULL;
        int r;

        if (size == 0)
                return 0;
        if (strip) {
                copy = malloc(size);
                if (!copy)
                        return log_oom();
                memcpy(copy, data, size);
                cli_strip_terminal_escapes(copy, &size);
                data = copy;
        }
        if (fflush(stdout) != 0)
                return log_error_errno(-errno, "failed to write to stdout: %m");
        r = loop_write(STDOUT_FILENO, data, size, false);
        if (r < 0)
                return log_error_errno(r, "failed to write to stdout: %m");
        return 0;
}

static int logs_fetch(const Cli *cli, const char *id, uint64_t tail, char **ret, size_t *ret_size) {
        _cleanup_free_ char *path = NULL;
        char suffix[64];
        int r;

        if (tail > 0)
                (void) snprintf(suffix, sizeof(suffix), "/console/log?tail=%" PRIu64, tail);
        else
                (void) snprintf(suffix, sizeof(suffix), "/console/log");
        r = cli_vm_path(id, suffix, &path);
        if (r < 0)
                return r;
        return cli_http_request(cli, "GET", path, NULL, ret, ret_size);
}

/* Polls until the VM is gone (0), a request fails, or a signal ends zvm.
 * prev is the last tail printed. */
static int logs_follow(const Cli *cli, const char *id, char *prev, size_t prev_size, bool strip) {
        _cleanup_free_ char *last = prev;
        int level = log_get_max_level(), r;

        for (;;) {
                _cleanup_free_ char *cur = NULL;
                size_t size = 0, off;

                cli_sleep_ms(LOGS_FOLLOW_INTERVAL_MS);
                /* cli-http.c logs failures; the VM going away is the normal end. */
                log_set_max_level(LOG_CRIT);
                r = logs_fetch(cli, id, LOGS_FOLLOW_TAIL, &cur, &size);
                log_set_max_level(level);
                if (r == -ENOENT) {
                        log_info("VM '%s' was deleted.", id);
                        return 0;
                }
                if (r < 0)
                        return log_error_errno(r, "cannot follow the log of VM '%s': %m", id);

                off = cli_log_new_offset(last, prev_size, cur, size);
                r = logs_write(cur + off, size - off, strip);
                if (r < 0)
                        return r;
                free(last);
                last = TAKE_PTR(cur);
                prev_size = size;
        }
}

int cli_vm_logs(Cli *cli, const char *id, const CliLogs *o) {
        _cleanup_free_ char *log = NULL;
        size_t size = 0, off = 0;
        bool strip = isatty(STDOUT_FILENO);
        int r;

        cli->vm_name = id;
        r = logs_fetch(cli, id, o->have_tail_lines ? LOGS_TAIL_MAX : o->tail_bytes, &log, &size);
        if (r < 0)
                return r;
        if (o->have_tail_lines)
                off = cli_last_lines(log, size, o->tail_lines);
        r = logs_write(log + off, size - off, strip);
        if (r < 0 || !o->follow)
                return r;

        /* The next poll compares with the same window it will fetch. */
        if (size > LOGS_FOLLOW_TAIL) {
                memmove(log, log + size - LOGS_FOLLOW_TAIL, LOGS_FOLLOW_TAIL);
                size = LOGS_FOLLOW_TAIL;
        }
        return logs_follow(cli, id, TAKE_PTR(log), size, strip);
}
