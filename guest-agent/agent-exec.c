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

#define EXEC_MAX_ARGV 4096
#define EXEC_MAX_ENV 4096
#define EXEC_MAX_STDIN ((size_t) 1 << 20)
#define EXEC_DEFAULT_TIMEOUT_MS 30000
#define EXEC_MAX_TIMEOUT_MS 86400000
#define EXEC_DEFAULT_MAX_OUTPUT ((size_t) 1 << 20)
#define EXEC_MAX_OUTPUT ((size_t) 8 << 20)
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
static char **exec_environment(Request *rq, char **env, size_t n_env) {
        char **envp = arena_alloc(rq->arena, (n_env + 2) * sizeof(char *));
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

static void close_other_fds(void) {
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

typedef struct ExecFailure {
        int stage;              /* 1: chdir, 2: exec */
        int err;
} ExecFailure;

static __attribute__((noreturn)) void exec_child(char **argv, char **envp, const char *cwd, int fd_in, int fd_out,
                                                  int fd_err, int fd_status) {
        ExecFailure f = {};
        sigset_t none;

        /* Our own session and process group: the timeout kills the group,
         * and nothing the command does reaches the agent's terminal. */
        (void) setsid();
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        (void) signal(SIGPIPE, SIG_DFL);
        if (dup2(fd_in, STDIN_FILENO) < 0 || dup2(fd_out, STDOUT_FILENO) < 0 || dup2(fd_err, STDERR_FILENO) < 0) {
                f = (ExecFailure) { 2, errno };
                goto fail;
        }
        close_other_fds();
        if (chdir(cwd) < 0) {
                f = (ExecFailure) { 1, errno };
                goto fail;
        }
        environ = envp;
        execvp(argv[0], argv);
        f = (ExecFailure) { 2, errno };
fail:
        (void) !write(fd_status, &f, sizeof(f));
        _exit(127);
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

int op_exec(Request *rq, Buf *out) {
        Conn *c = rq->conn;
        char **argv, **env, **envp;
        size_t n_argv, n_env, stdin_len, stdin_off = 0;
        unsigned char *stdin_data;
        const char *cwd;
        int64_t timeout_ms, max_output;
        int p_in[2] = { -1, -1 }, p_out[2] = { -1, -1 }, p_err[2] = { -1, -1 }, p_status[2] = { -1, -1 };
        Stream so = { .fd = -1 }, se = { .fd = -1 };
        ExecFailure failure = {};
        size_t failure_got = 0;
        bool reaped = false, killed = false, timed_out = false, hangup = false;
        uint64_t start, end = 0, deadline, kill_deadline = 0;
        char signame[16];
        int status = 0, r;
        pid_t pid;

        if ((r = request_get_strv(rq, "argv", true, EXEC_MAX_ARGV, &argv, &n_argv)) < 0 ||
            (r = request_get_strv(rq, "env", false, EXEC_MAX_ENV, &env, &n_env)) < 0 ||
            (r = request_get_string(rq, "cwd", false, &cwd)) < 0 ||
            (r = request_get_base64(rq, "stdin", EXEC_MAX_STDIN, &stdin_data, &stdin_len)) < 0 ||
            (r = request_get_int(rq, "timeout_ms", EXEC_DEFAULT_TIMEOUT_MS, 1, EXEC_MAX_TIMEOUT_MS, &timeout_ms)) < 0 ||
            (r = request_get_int(rq, "max_output", (int64_t) EXEC_DEFAULT_MAX_OUTPUT, 0, (int64_t) EXEC_MAX_OUTPUT,
                         &max_output)) < 0)
                return r;
        if (n_argv == 0 || argv[0][0] == 0)
                return request_fail(rq, EINVAL, "'argv' must name a command");
        for (size_t i = 0; i < n_env; i++)
                if (!strchr(env[i], '=') || env[i][0] == '=')
                        return request_fail(rq, EINVAL, "'env' entries must be \"NAME=value\"");
        if (!cwd)
                cwd = "/";
        envp = exec_environment(rq, env, n_env);
        if (!envp)
                return request_fail(rq, ENOMEM, "out of memory");

        if (pipe2(p_in, O_CLOEXEC) < 0 || pipe2(p_out, O_CLOEXEC) < 0 || pipe2(p_err, O_CLOEXEC) < 0 ||
            pipe2(p_status, O_CLOEXEC) < 0) {
                r = request_fail(rq, errno, "cannot create pipes: %s", strerror(errno));
                goto finish;
        }
        start = now_msec(CLOCK_MONOTONIC);
        pid = fork();
        if (pid < 0) {
                r = request_fail(rq, errno, "cannot fork: %s", strerror(errno));
                goto finish;
        }
        if (pid == 0)
                exec_child(argv, envp, cwd, p_in[0], p_out[1], p_err[1], p_status[1]);

        p_in[0] = safe_close(p_in[0]);
        p_out[1] = safe_close(p_out[1]);
        p_err[1] = safe_close(p_err[1]);
        p_status[1] = safe_close(p_status[1]);
        so = (Stream) { .fd = p_out[0], .max = (size_t) max_output };
        se = (Stream) { .fd = p_err[0], .max = (size_t) max_output };
        p_out[0] = p_err[0] = -1;
        (void) fd_nonblock(p_in[1], true);
        (void) fd_nonblock(so.fd, true);
        (void) fd_nonblock(se.fd, true);
        if (stdin_len == 0)
                p_in[1] = safe_close(p_in[1]);
        deadline = start + (uint64_t) timeout_ms;

        /* Until the command has exited and both pipes are at EOF (output
         * from a background child that keeps them open counts as the
         * command's), or the timeout: then SIGKILL the whole group and
         * give it EXEC_KILL_GRACE_MS to go. */
        for (;;) {
                struct pollfd pfd[6];
                int n = 0, i_sig, i_in = -1, i_out = -1, i_err = -1, i_status = -1, i_conn, ms;

                if (!reaped)
                        reaped = exec_reap(pid, &status, &end);
                if (reaped && so.fd < 0 && se.fd < 0)
                        break;
                ms = msec_until(killed ? kill_deadline : deadline);
                if (ms == 0) {
                        if (killed)
                                break;          /* something outside the group holds the pipes */
                        exec_kill(pid, reaped);
                        killed = timed_out = true;
                        kill_deadline = now_msec(CLOCK_MONOTONIC) + EXEC_KILL_GRACE_MS;
                        continue;
                }
                i_sig = n;
                pfd[n++] = (struct pollfd) { .fd = c->sigfd, .events = POLLIN };
                if (p_in[1] >= 0) {
                        i_in = n;
                        pfd[n++] = (struct pollfd) { .fd = p_in[1], .events = POLLOUT };
                }
                if (so.fd >= 0) {
                        i_out = n;
                        pfd[n++] = (struct pollfd) { .fd = so.fd, .events = POLLIN };
                }
                if (se.fd >= 0) {
                        i_err = n;
                        pfd[n++] = (struct pollfd) { .fd = se.fd, .events = POLLIN };
                }
                if (p_status[0] >= 0) {
                        i_status = n;
                        pfd[n++] = (struct pollfd) { .fd = p_status[0], .events = POLLIN };
                }
                /* The host hanging up (it gave up on us) ends the command. */
                i_conn = n;
                pfd[n++] = (struct pollfd) { .fd = c->in_fd, .events = 0 };

                if (poll(pfd, (nfds_t) n, ms) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (pfd[i_sig].revents) {
                        struct signalfd_siginfo si;

                        while (read(c->sigfd, &si, sizeof(si)) > 0)
                                ;
                }
                if (i_in >= 0 && pfd[i_in].revents) {
                        ssize_t k = write(p_in[1], stdin_data + stdin_off, MIN(stdin_len - stdin_off, (size_t) 65536));

                        if (k > 0)
                                stdin_off += (size_t) k;
                        if ((k < 0 && errno != EAGAIN && errno != EINTR) || stdin_off == stdin_len)
                                p_in[1] = safe_close(p_in[1]);   /* done, or the command closed its stdin */
                }
                if (i_out >= 0 && pfd[i_out].revents && !stream_drain(&so))
                        so.fd = safe_close(so.fd);
                if (i_err >= 0 && pfd[i_err].revents && !stream_drain(&se))
                        se.fd = safe_close(se.fd);
                if (i_status >= 0 && pfd[i_status].revents) {
                        ssize_t k = read(p_status[0], (char *) &failure + failure_got, sizeof(failure) - failure_got);

                        if (k > 0)
                                failure_got += (size_t) k;
                        else if (k == 0 || (errno != EINTR && errno != EAGAIN))
                                p_status[0] = safe_close(p_status[0]);
                }
                if ((pfd[i_conn].revents & (POLLHUP | POLLERR)) && !killed) {
                        exec_kill(pid, reaped);
                        killed = hangup = true;
                        kill_deadline = now_msec(CLOCK_MONOTONIC) + EXEC_KILL_GRACE_MS;
                }
        }
        if (!reaped)
                end = now_msec(CLOCK_MONOTONIC);
        /* A failed exec() reported itself before the command could run. */
        if (p_status[0] >= 0 && failure_got < sizeof(failure)) {
                ssize_t k = read(p_status[0], (char *) &failure + failure_got, sizeof(failure) - failure_got);

                if (k > 0)
                        failure_got += (size_t) k;
        }
        if (hangup)
                log_info("exec %s: the host hung up, killed the command", argv[0]);
        if (failure_got == sizeof(failure) && failure.err > 0) {
                if (failure.stage == 1)
                        r = request_fail(rq, failure.err, "cannot change to directory '%s': %s", cwd,
                                         strerror(failure.err));
                else
                        r = request_fail(rq, failure.err, "cannot execute '%s': %s", argv[0], strerror(failure.err));
                goto finish;
        }

        json_put_key(out, "exit_code");
        if (reaped && WIFEXITED(status))
                buf_printf(out, "%d", WEXITSTATUS(status));
        else
                buf_puts(out, "null");
        json_put_key(out, "signal");
        if (reaped && WIFSIGNALED(status))
                json_put_cstring(out, signal_name(WTERMSIG(status), signame, sizeof(signame)));
        else
                buf_puts(out, "null");
        json_put_key(out, "timed_out");
        buf_puts(out, timed_out ? "true" : "false");
        json_put_key(out, "stdout");
        base64_put(out, so.data, so.len);
        json_put_key(out, "stderr");
        base64_put(out, se.data, se.len);
        json_put_key(out, "stdout_truncated");
        buf_puts(out, so.truncated ? "true" : "false");
        json_put_key(out, "stderr_truncated");
        buf_puts(out, se.truncated ? "true" : "false");
        json_put_key(out, "duration_ms");
        buf_printf(out, "%llu", (unsigned long long) (end - start));
        r = 0;
finish:
        p_in[0] = safe_close(p_in[0]);
        p_in[1] = safe_close(p_in[1]);
        p_out[0] = safe_close(p_out[0]);
        p_out[1] = safe_close(p_out[1]);
        p_err[0] = safe_close(p_err[0]);
        p_err[1] = safe_close(p_err[1]);
        p_status[0] = safe_close(p_status[0]);
        p_status[1] = safe_close(p_status[1]);
        so.fd = safe_close(so.fd);
        se.fd = safe_close(se.fd);
        free(so.data);
        free(se.data);
        return r;
}

