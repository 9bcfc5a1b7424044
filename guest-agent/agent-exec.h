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

/* What a forked child reports on its status pipe (CLOEXEC: EOF once the
 * command runs) when a step before the command fails. */
typedef struct ExecFailure {
        int stage;              /* EXEC_STAGE_* */
        int err;
} ExecFailure;
enum {
        EXEC_STAGE_CHDIR = 1,
        EXEC_STAGE_EXEC,
        EXEC_STAGE_SETUP,       /* stdin, stdout, stderr */
        EXEC_STAGE_TERMINAL,    /* a pty's: open, controlling terminal */
};
/* In a forked child, first: a session of its own, no blocked signal,
 * SIGPIPE's default back. */
void exec_child_begin(void);
/* Then: stdin/stdout/stderr from the fds, every other fd closed at exec,
 * cwd, envp, execvp(argv). A failing step goes to exec_child_fail(). */
_noreturn_ void exec_child_run(char **argv, char **envp, const char *cwd, int fd_in, int fd_out, int fd_err,
                               int fd_status);
/* Writes {stage, err} to fd_status and exits 127. */
_noreturn_ void exec_child_fail(int fd_status, int stage, int err);
/* The request's error for a child's failure, naming the step. */
int exec_failure_reply(Request *rq, const ExecFailure *f, const char *cwd, const char *cmd);
