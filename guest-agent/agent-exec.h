/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Op exec: run a command, bounded in time and output. */

#include <stddef.h>

#include "agent-request.h"

/* The environment every child of the agent starts from. */
#define EXEC_BASE_PATH "PATH=/usr/sbin:/usr/bin:/sbin:/bin"

/* exec's bounds. */
#define EXEC_MAX_ARGV 4096
#define EXEC_MAX_ENV 4096
#define EXEC_MAX_STDIN ((size_t) 1 << 20)
#define EXEC_DEFAULT_TIMEOUT_MS 30000
#define EXEC_MAX_TIMEOUT_MS 86400000
#define EXEC_DEFAULT_MAX_OUTPUT ((size_t) 1 << 20)
#define EXEC_MAX_OUTPUT ((size_t) 8 << 20)

/* exec's arguments, in the request's arena. */
typedef struct ExecArgs {
        char **argv, **envp;
        const char *cwd;
        unsigned char *stdin_data;
        size_t stdin_len;
        int64_t timeout_ms, max_output;
} ExecArgs;

/* Checks and reads exec's arguments, nothing run (also tests/fuzz). */
int exec_parse_args(Request *rq, ExecArgs *a);
int op_exec(Request *rq, Buf *out);

/* "SIGKILL", or "SIG<n>" written to buf. */
const char *signal_name(int sig, char *buf, size_t size);
/* The minimal PATH, then env entries ("NAME=value"); a later entry
 * replaces an earlier one with the same name. In arena. */
char **exec_environment(Arena *arena, char **env, size_t n_env);
/* In a child about to exec: every fd above stderr close-on-exec. */
void exec_close_other_fds(void);
