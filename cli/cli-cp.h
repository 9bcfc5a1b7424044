/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* zvm cp beyond one files request (cli-cp.c): the kind of a guest path and
 * files of any size in bounded chunks through the agent's exec. Program
 * code: errors are logged and returned as -errno. */

#include <stdbool.h>
#include <stdint.h>

#include "zvm.h"

typedef struct CliCpStat {
        uint64_t size;
        bool is_dir;
} CliCpStat;

/* stat(1) in the guest, following symlinks; -ENOENT if it failed there. */
int cli_cp_guest_stat(const Cli *cli, const char *vm, const char *path, CliCpStat *ret);
/* Writes the guest file src to fd, chunk by chunk. */
int cli_cp_from_guest(const Cli *cli, const char *vm, const char *src, int fd);
/* Writes fd (to its end) to the guest file dst (absolute) with mode: into
 * a temporary file next to it, renamed over dst once complete. */
int cli_cp_to_guest(const Cli *cli, const char *vm, int fd, const char *dst, unsigned mode);
