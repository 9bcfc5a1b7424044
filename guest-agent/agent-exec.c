/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent-base64.h"
#include "agent-exec.h"
#include "fd-util.h"
#include "log.h"
#include "time-util.h"

/* include/uapi/linux/close_range.h (Linux 5.11). */
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#define CLOSE_RANGE_CLOEXEC_FLAG (1U << 2)

#define EXEC_KILL_GRACE_MS 2000                 /* after SIGKILL, how long we wait for the pipes and the exit */

extern char **environ;

const char *signal_name(int sig, char *buf, size_t size) {
        static const char *const names[] = {
                [SIGHUP] = "SIGHUP",   [SIGINT] = "SIGINT",       [SIGQUIT] = "SIGQUIT", [SIGILL] = "SIGILL",
                [SIGTRAP] = "SIGTRAP", [SIGABRT] = "SIGABRT",     [SIGBUS] = "SIGBUS",   [SIGFPE] = "SIGFPE",
                [SIGKILL] = "SIGKILL", [SIGUSR1] = "SIGUSR1",     [SIGSEGV] = "SIGSEGV", [SIGUSR2] = "SIGUSR2",
                [SIGPIPE] = "SIGPIPE", [SIGALRM] = "SIGALRM",     [SIGTERM] = "SIGTERM", [SIGCHLD] = "SIGCHLD",
                [SIGCONT] = "SIGCONT", [SIGSTOP] = "SIGSTOP",     [SIGTSTP] = "SIGTSTP", [SIGTTIN] = "SIGTTIN",
                [SIGTTOU] = "SIGTTOU", [SIGURG] = "SIGURG",       [SIGXCPU] = "SIGXCPU", [SIGXFSZ] = "SIGXFSZ",
                [SIGVTALRM] = "SIGVTALRM", [SIGPROF] = "SIGPROF", [SIGWINCH] = "SIGWINCH", [SIGIO] = "SIGIO",
                [SIGPWR] = "SIGPWR",   [SIGSYS] = "SIGSYS",
        };

        if (sig > 0 && (size_t) sig < ELEMENTSOF(names) && names[sig])
                return names[sig];
        snprintf(buf, size, "SIG%d", sig);
        return buf;
}


typedef struct Stream {
        int fd;
        unsigned char *data;
        size_t len, cap, max;
        bool truncated;
} Stream;

/* Reads what is there; keeps up to max bytes and drops the rest, so the
 * command never blocks on a full pipe. Returns false at EOF or error. */
static bool stream_drain(Stream *s) {
        unsigned char buf[65536];

        for (;;) {
                ssize_t k = read(s->fd, buf, sizeof(buf));
                size_t keep;

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN)
                        return true;
                if (k <= 0)
                        return false;
                keep = MIN((size_t) k, s->max - s->len);
                if (keep < (size_t) k)
                        s->truncated = true;
                if (keep > 0) {
                        if (s->cap - s->len < keep) {
                                size_t want = s->cap ? s->cap : 65536;
                                unsigned char *p;

                                while (want - s->len < keep)
                                        want *= 2;
                                want = MIN(want, s->max);
                                p = realloc(s->data, want);
                                if (!p) {
                                        /* Out of memory: keep what we have and flag it. */
                                        s->max = s->len;
                                        s->truncated = true;
                                        continue;
                                }
                                s->data = p;
                                s->cap = want;
                        }
                        memcpy(s->data + s->len, buf, keep);
                        s->len += keep;
                }
        }
}

/* Builds the command's environment: the minimal PATH, then env entries; a
 * later entry replaces an earlier one with the same name. */
char **exec_environment(Arena *arena, char **env, size_t n_env) {
        char **envp = arena_alloc(arena, (n_env + 2) * sizeof(char *));
        size_t n = 0;

        if (!envp)
                return NULL;
        envp[n++] = (char *) EXEC_BASE_PATH;
        for (size_t i = 0; i < n_env; i++) {
                size_t klen = (size_t) (strchr(env[i], '=') - env[i]) + 1;
                size_t j;

                for (j = 0; j < n; j++)
                        if (strncmp(envp[j], env[i], klen) == 0)
                                break;
                envp[j] = env[i];
                if (j == n)
                        n++;
        }
        envp[n] = NULL;
        return envp;
}

void exec_close_other_fds(void) {
        DIR *d;
        struct dirent *de;

        if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC_FLAG) == 0)
                return;
        /* Before Linux 5.11: mark each open fd close-on-exec. */
        d = opendir("/proc/self/fd");
        if (!d)
                return;
        while ((de = readdir(d))) {
                int fd = atoi(de->d_name);

                if (fd > 2 && fd != dirfd(d))
                        (void) fcntl(fd, F_SETFD, FD_CLOEXEC);
        }
        closedir(d);
}

_noreturn_ void exec_child_fail(int fd_status, int stage, int err) {
        ExecFailure f = { stage, err };

        (void) !write(fd_status, &f, sizeof(f));
        _exit(127);
}

void exec_child_begin(void) {
        sigset_t none;

        (void) setsid();
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        (void) signal(SIGPIPE, SIG_DFL);
}

_noreturn_ void exec_child_run(char **argv, char **envp, const char *cwd, int fd_in, int fd_out, int fd_err,
                               int fd_status) {
        if (dup2(fd_in, STDIN_FILENO) < 0 || dup2(fd_out, STDOUT_FILENO) < 0 || dup2(fd_err, STDERR_FILENO) < 0)
                exec_child_fail(fd_status, EXEC_STAGE_SETUP, errno);
        exec_close_other_fds();
        if (chdir(cwd) < 0)
                exec_child_fail(fd_status, EXEC_STAGE_CHDIR, errno);
        environ = envp;
        execvp(argv[0], argv);
        exec_child_fail(fd_status, EXEC_STAGE_EXEC, errno);
}

int exec_failure_reply(Request *rq, const ExecFailure *f, const char *cwd, const char *cmd) {
        switch (f->stage) {
        case EXEC_STAGE_CHDIR:
                return request_fail(rq, f->err, "cannot change to directory '%s': %s", cwd, strerror(f->err));
        case EXEC_STAGE_EXEC:
                return request_fail(rq, f->err, "cannot execute '%s': %s", cmd, strerror(f->err));
        default:
                return request_fail(rq, f->err, "cannot set up the command's %s: %s",
                                    f->stage == EXEC_STAGE_TERMINAL ? "terminal" : "stdin, stdout and stderr",
                                    strerror(f->err));
        }
}

/* Reaps pid if it has exited. */
static bool exec_reap(pid_t pid, int *status, uint64_t *end) {
        pid_t w;

        do
                w = waitpid(pid, status, WNOHANG);
        while (w < 0 && errno == EINTR);
        if (w == pid) {
                *end = now_msec(CLOCK_MONOTONIC);
                return true;
        }
        return false;
}

/* SIGKILL for the command's process group. The group outlives its leader
 * while members remain, and the kernel does not hand out an id still in use
 * as a group id, so -pid is safe; pid alone only while not yet reaped (the
 * command may have left its group with setsid()). */
static void exec_kill(pid_t pid, bool reaped) {
        (void) kill(-pid, SIGKILL);
        if (!reaped)
                (void) kill(pid, SIGKILL);
}

/* One running command, as the poll loop sees it. */
typedef struct ExecRun {
        pid_t pid;
        int stdin_fd;           /* our end of its stdin, until all is written */
        size_t stdin_off;
        int status_fd;          /* ExecFailure from the child, EOF once exec() worked */
        ExecFailure failure;
        size_t failure_got;
        Stream out, err;
        bool reaped, killed, timed_out, hangup;
        int status;
        uint64_t start, end, deadline, kill_deadline;
} ExecRun;

int exec_parse_args(Request *rq, ExecArgs *a) {
        char **env;
        size_t n_argv, n_env;
        int r;

        if ((r = request_get_strv(rq, "argv", true, EXEC_MAX_ARGV, &a->argv, &n_argv)) < 0 ||
            (r = request_get_strv(rq, "env", false, EXEC_MAX_ENV, &env, &n_env)) < 0 ||
            (r = request_get_string(rq, "cwd", false, &a->cwd)) < 0 ||
            (r = request_get_base64(rq, "stdin", EXEC_MAX_STDIN, &a->stdin_data, &a->stdin_len)) < 0 ||
            (r = request_get_int(rq, "timeout_ms", EXEC_DEFAULT_TIMEOUT_MS, 1, EXEC_MAX_TIMEOUT_MS,
                                 &a->timeout_ms)) < 0 ||
            (r = request_get_int(rq, "max_output", (int64_t) EXEC_DEFAULT_MAX_OUTPUT, 0, (int64_t) EXEC_MAX_OUTPUT,
                                 &a->max_output)) < 0)
                return r;
        if (n_argv == 0 || a->argv[0][0] == 0)
                return request_fail(rq, EINVAL, "'argv' must name a command");
        for (size_t i = 0; i < n_env; i++)
                if (!strchr(env[i], '=') || env[i][0] == '=')
                        return request_fail(rq, EINVAL, "'env' entries must be \"NAME=value\"");
        if (!a->cwd)
                a->cwd = "/";
        a->envp = exec_environment(rq->arena, env, n_env);
        if (!a->envp)
                return request_fail(rq, ENOMEM, "out of memory");
        return 0;
}

static void exec_run_done(ExecRun *x) {
        x->stdin_fd = safe_close(x->stdin_fd);
        x->status_fd = safe_close(x->status_fd);
        x->out.fd = safe_close(x->out.fd);
        x->err.fd = safe_close(x->err.fd);
        free(x->out.data);
        free(x->err.data);
}

/* Pipes, fork, the child on its way to exec(); our ends non-blocking in x. */
static int exec_start(Request *rq, const ExecArgs *a, ExecRun *x) {
        int p_in[2] = { -1, -1 }, p_out[2] = { -1, -1 }, p_err[2] = { -1, -1 }, p_status[2] = { -1, -1 };
        int r = 0;

        if (pipe2(p_in, O_CLOEXEC) < 0 || pipe2(p_out, O_CLOEXEC) < 0 || pipe2(p_err, O_CLOEXEC) < 0 ||
            pipe2(p_status, O_CLOEXEC) < 0) {
                r = request_fail(rq, errno, "cannot create pipes: %s", strerror(errno));
                goto finish;
        }
        x->start = now_msec(CLOCK_MONOTONIC);
        x->pid = fork();
        if (x->pid < 0) {
                r = request_fail(rq, errno, "cannot fork: %s", strerror(errno));
                goto finish;
        }
        if (x->pid == 0) {
                /* Its own session and process group: the timeout kills the
                 * group, and nothing the command does reaches the agent's
                 * terminal. */
                exec_child_begin();
                exec_child_run(a->argv, a->envp, a->cwd, p_in[0], p_out[1], p_err[1], p_status[1]);
        }

        x->stdin_fd = TAKE_FD(p_in[1]);
        x->out = (Stream) { .fd = TAKE_FD(p_out[0]), .max = (size_t) a->max_output };
        x->err = (Stream) { .fd = TAKE_FD(p_err[0]), .max = (size_t) a->max_output };
        x->status_fd = TAKE_FD(p_status[0]);
        (void) fd_nonblock(x->stdin_fd, true);
        (void) fd_nonblock(x->out.fd, true);
        (void) fd_nonblock(x->err.fd, true);
        if (a->stdin_len == 0)
                x->stdin_fd = safe_close(x->stdin_fd);
        x->deadline = x->start + (uint64_t) a->timeout_ms;
finish:
        close_many(p_in, 2);
        close_many(p_out, 2);
        close_many(p_err, 2);
        close_many(p_status, 2);
        return r;
}

static void exec_read_failure(ExecRun *x) {
        ssize_t k = read(x->status_fd, (char *) &x->failure + x->failure_got, sizeof(x->failure) - x->failure_got);

        if (k > 0)
                x->failure_got += (size_t) k;
        else if (k == 0 || (errno != EINTR && errno != EAGAIN))
                x->status_fd = safe_close(x->status_fd);
}

static void exec_kill_all(ExecRun *x, bool hangup) {
        exec_kill(x->pid, x->reaped);
        x->killed = true;
        x->timed_out = x->timed_out || !hangup;
        x->hangup = hangup;
        x->kill_deadline = now_msec(CLOCK_MONOTONIC) + EXEC_KILL_GRACE_MS;
}

/* One poll() over the command's pipes, SIGCHLD and the host connection.
 * Returns false when the wait is over. */
static bool exec_poll(ExecRun *x, const ExecArgs *a, Conn *c) {
        struct pollfd pfd[6];
        int n = 0, i_in = -1, i_out = -1, i_err = -1, i_status = -1, i_conn, ms;

        if (!x->reaped)
                x->reaped = exec_reap(x->pid, &x->status, &x->end);
        if (x->reaped && x->out.fd < 0 && x->err.fd < 0)
                return false;
        ms = msec_until(x->killed ? x->kill_deadline : x->deadline);
        if (ms == 0) {
                if (x->killed)
                        return false;   /* something outside the group holds the pipes */
                exec_kill_all(x, false);
                return true;
        }
        pfd[n++] = (struct pollfd) { .fd = c->sigfd, .events = POLLIN };
        if (x->stdin_fd >= 0) {
                i_in = n;
                pfd[n++] = (struct pollfd) { .fd = x->stdin_fd, .events = POLLOUT };
        }
        if (x->out.fd >= 0) {
                i_out = n;
                pfd[n++] = (struct pollfd) { .fd = x->out.fd, .events = POLLIN };
        }
        if (x->err.fd >= 0) {
                i_err = n;
                pfd[n++] = (struct pollfd) { .fd = x->err.fd, .events = POLLIN };
        }
        if (x->status_fd >= 0) {
                i_status = n;
                pfd[n++] = (struct pollfd) { .fd = x->status_fd, .events = POLLIN };
        }
        /* The host hanging up (it gave up on us) ends the command. */
        i_conn = n;
        pfd[n++] = (struct pollfd) { .fd = c->in_fd, .events = 0 };

        if (poll(pfd, (nfds_t) n, ms) < 0)
                return errno == EINTR;
        if (pfd[0].revents) {
                struct signalfd_siginfo si;

                while (read(c->sigfd, &si, sizeof(si)) > 0)
                        ;
        }
        if (i_in >= 0 && pfd[i_in].revents) {
                ssize_t k = write(x->stdin_fd, a->stdin_data + x->stdin_off,
                                  MIN(a->stdin_len - x->stdin_off, (size_t) 65536));

                if (k > 0)
                        x->stdin_off += (size_t) k;
                if ((k < 0 && errno != EAGAIN && errno != EINTR) || x->stdin_off == a->stdin_len)
                        x->stdin_fd = safe_close(x->stdin_fd);  /* done, or the command closed its stdin */
        }
        if (i_out >= 0 && pfd[i_out].revents && !stream_drain(&x->out))
                x->out.fd = safe_close(x->out.fd);
        if (i_err >= 0 && pfd[i_err].revents && !stream_drain(&x->err))
                x->err.fd = safe_close(x->err.fd);
        if (i_status >= 0 && pfd[i_status].revents)
                exec_read_failure(x);
        if ((pfd[i_conn].revents & (POLLHUP | POLLERR)) && !x->killed)
                exec_kill_all(x, true);
        return true;
}

static void exec_reply(const ExecRun *x, Buf *out) {
        char signame[16];

        json_put_key(out, "exit_code");
        if (x->reaped && WIFEXITED(x->status))
                buf_printf(out, "%d", WEXITSTATUS(x->status));
        else
                buf_puts(out, "null");
        json_put_key(out, "signal");
        if (x->reaped && WIFSIGNALED(x->status))
                json_put_cstring(out, signal_name(WTERMSIG(x->status), signame, sizeof(signame)));
        else
                buf_puts(out, "null");
        json_put_key(out, "timed_out");
        buf_puts(out, x->timed_out ? "true" : "false");
        json_put_key(out, "stdout");
        base64_put(out, x->out.data, x->out.len);
        json_put_key(out, "stderr");
        base64_put(out, x->err.data, x->err.len);
        json_put_key(out, "stdout_truncated");
        buf_puts(out, x->out.truncated ? "true" : "false");
        json_put_key(out, "stderr_truncated");
        buf_puts(out, x->err.truncated ? "true" : "false");
        json_put_key(out, "duration_ms");
        buf_printf(out, "%llu", (unsigned long long) (x->end - x->start));
}

int op_exec(Request *rq, Buf *out) {
        ExecArgs a = {};
        ExecRun x = { .stdin_fd = -EBADF, .status_fd = -EBADF, .out.fd = -EBADF, .err.fd = -EBADF };
        int r;

        r = exec_parse_args(rq, &a);
        if (r < 0)
                return r;
        r = exec_start(rq, &a, &x);
        if (r < 0)
                goto finish;

        /* Until the command has exited and both pipes are at EOF (output
         * from a background child that keeps them open counts as the
         * command's), or the timeout: then SIGKILL the whole group and
         * give it EXEC_KILL_GRACE_MS to go. */
        while (exec_poll(&x, &a, rq->conn))
                ;
        if (!x.reaped)
                x.end = now_msec(CLOCK_MONOTONIC);
        /* A failed exec() reported itself before the command could run. */
        if (x.status_fd >= 0 && x.failure_got < sizeof(x.failure))
                exec_read_failure(&x);
        if (x.hangup)
                log_info("exec %s: the host hung up, killed the command", a.argv[0]);
        if (x.failure_got == sizeof(x.failure) && x.failure.err > 0) {
                r = exec_failure_reply(rq, &x.failure, a.cwd, a.argv[0]);
                goto finish;
        }
        exec_reply(&x, out);
finish:
        exec_run_done(&x);
        return r;
}
