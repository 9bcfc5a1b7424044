/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Op exec: run a command, bounded in time and output. */

#include <stddef.h>

#include "agent-request.h"

/* The environment every child of the agent starts from. */
#define EXEC_BASE_PATH "PATH=/usr/sbin:/usr/bin:/sbin:/bin"

int op_exec(Request *rq, Buf *out);

/* "SIGKILL", or "SIG<n>" written to buf. */
const char *signal_name(int sig, char *buf, size_t size);
/* The minimal PATH, then env entries ("NAME=value"); a later entry
 * replaces an earlier one with the same name. In arena. */
char **exec_environment(Arena *arena, char **env, size_t n_env);
/* In a child about to exec: every fd above stderr close-on-exec. */
void exec_close_other_fds(void);
