/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A VM's serial console log with a size cap: <path> holds at most `max`
 * bytes; when it is full it becomes <path>.1 (replacing the previous one)
 * and a new <path> starts, so the log costs at most 2 × max bytes on disk
 * (/run is a tmpfs). No event loop, no logging: daemon/console.c feeds it,
 * the console/log route reads it, tests/unit/test-console-log.c tests it.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

/* Default cap of one file: a guest printing to ttyS0 costs /run at most
 * twice this. zvmd --console-log-max / $ZVM_CONSOLE_LOG_MAX change it. */
#define CONSOLE_LOG_MAX_DEFAULT (4ULL * 1024 * 1024)
#define CONSOLE_LOG_MAX_MIN (64ULL * 1024)
#define CONSOLE_LOG_MAX_MAX (1ULL * 1024 * 1024 * 1024)

typedef struct ConsoleLog ConsoleLog;

/* Opens <path> for appending (creating it, 0640). A file already larger
 * than max (an older zvmd, a lower cap) is rotated at once and the rotated
 * part cut to max, so the bound holds from the first write. max >= 1. */
int console_log_open(const char *path, uint64_t max, ConsoleLog **ret);
ConsoleLog *console_log_free(ConsoleLog *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(ConsoleLog *, console_log_free);

/* Appends n bytes, rotating whenever the current file reaches max (so
 * about n / max + 1 write() calls, none larger than n). Returns 0, or
 * -errno (ENOSPC, EIO...) with what was not written dropped: the caller
 * goes on. */
int console_log_write(ConsoleLog *l, const void *p, size_t n);
/* Bytes in the current file. */
uint64_t console_log_size(const ConsoleLog *l);

/* The last `tail` bytes of the log, <path>.1 then <path> (a tail longer
 * than the current file reaches into the rotated part). A missing file is
 * empty. *ret is NUL-terminated; *ret_size excludes the NUL. */
int console_log_read_tail(const char *path, uint64_t tail, char **ret, size_t *ret_size);
