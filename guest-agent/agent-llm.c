/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent-exec.h"
#include "agent-llm.h"
#include "fd-util.h"
#include "fileio.h"
#include "log.h"
#include "time-util.h"

extern char **environ;

const char *llm_state_name(LlmState s) {
        static const char *const names[] = {
                [LLM_STOPPED] = "stopped", [LLM_LOADING] = "loading", [LLM_READY] = "ready",
                [LLM_FAILED] = "failed",   [LLM_STOPPING] = "stopping",
        };

        return (unsigned) s < ELEMENTSOF(names) ? names[s] : "unknown";
}

/* A server left by an agent that was restarted (its unit keeps the
 * processes it runs for the host, KillMode=process) would hold the model's
 * memory forever: its pid file names it, and only if that process still
 * serves our socket (the pid may have been reused) its group is killed. */
static void llm_kill_stale(Llm *l) {
        char path[PATH_MAX + 16], buf[32], cmdline[8192], want[PATH_MAX + 8];
        ssize_t n;
        long pid;

        snprintf(path, sizeof(path), "%s/%s", l->dir, LLM_PID_NAME);
        if (read_file_to_buffer(path, buf, sizeof(buf)) <= 0 || (pid = strtol(buf, NULL, 10)) <= 1)
                return;
        (void) unlink(path);
        snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
        n = read_file_to_buffer(path, cmdline, sizeof(cmdline));
        snprintf(want, sizeof(want), "--host%c%s", 0, l->sock);
        for (ssize_t i = 0; n > 0 && i + (ssize_t) (7 + strlen(l->sock)) <= n; i++)
                if (memcmp(cmdline + i, want, 7 + strlen(l->sock)) == 0) {
                        log_info("killing llama-server %ld left by an earlier agent", pid);
                        (void) kill((pid_t) -pid, SIGKILL);
                        (void) kill((pid_t) pid, SIGKILL);
                        return;
                }
}

void llm_init(Llm *l, const char *server, const char *dir) {
        *l = (Llm) { .server = server, .dir = dir, .log_fd = -EBADF, .probe_fd = -EBADF, .last_exit_code = -1,
                     .bridge = BRIDGE_NULL, .i_log = -1, .i_probe = -1 };
        snprintf(l->sock, sizeof(l->sock), "%s/%s", dir, LLM_SOCKET_NAME);
        llm_kill_stale(l);
}

void llm_forget(Llm *l) {
        l->log_fd = safe_close(l->log_fd);
        l->probe_fd = safe_close(l->probe_fd);
        bridge_forget(&l->bridge);
        free(l->log.data);
        l->log = (LlmLog) {};
}

static void llm_set_state(Llm *l, LlmState s) {
        if (l->state != s)
                log_info("llama-server: %s → %s", llm_state_name(l->state), llm_state_name(s));
        l->state = s;
        l->state_since = now_msec(CLOCK_MONOTONIC);
}

static void log_append(LlmLog *g, const char *p, size_t n) {
        if (!g->data && !(g->data = malloc(LLM_LOG_MAX)))
                return;
        if (n > LLM_LOG_MAX) {
                p += n - LLM_LOG_MAX;
                n = LLM_LOG_MAX;
        }
        for (size_t i = 0; i < n; i++) {
                g->data[(g->start + g->len) % LLM_LOG_MAX] = p[i];
                if (g->len < LLM_LOG_MAX)
                        g->len++;
                else
                        g->start = (g->start + 1) % LLM_LOG_MAX;
        }
}

/* The last whole lines that fit in size - 1 bytes. */
static void log_tail(const LlmLog *g, char *out, size_t size) {
        size_t n = MIN(g->len, size - 1), from = g->len - n, skip = 0;

        for (size_t i = 0; i < n; i++)
                out[i] = g->data[(g->start + from + i) % LLM_LOG_MAX];
        out[n] = 0;
        if (from > 0) {         /* cut in the middle of a line: start at the next one */
                char *nl = memchr(out, '\n', n);

                skip = nl ? (size_t) (nl - out) + 1 : 0;
                memmove(out, out + skip, n - skip + 1);
        }
}

static void llm_note(Llm *l, const char *fmt, ...) _printf_(2, 3);
static void llm_note(Llm *l, const char *fmt, ...) {
        char line[512];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        n = MIN(n, (int) sizeof(line) - 2);
        log_info("llama-server: %s", line);
        line[n++] = '\n';
        log_append(&l->log, "zvm-agent: ", 11);
        log_append(&l->log, line, (size_t) n);
}

static _noreturn_ void llm_child(Llm *l, int out_fd) {
        char threads[16], ctx[16], parallel[16], batch[16];
        char *argv[] = { (char *) l->server, "-m", l->config.model, "--host", l->sock, "-t", threads, "-c", ctx,
                         "-np", parallel, "-b", batch, "--metrics", NULL, NULL, NULL };
        static char *envp[] = { (char *) EXEC_BASE_PATH, "HOME=/root", NULL };
        sigset_t none;
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

        (void) setsid();        /* its own group: a stop kills all of it */
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        (void) signal(SIGPIPE, SIG_DFL);
        snprintf(threads, sizeof(threads), "%u", l->config.threads);
        snprintf(ctx, sizeof(ctx), "%u", l->config.ctx);
        snprintf(parallel, sizeof(parallel), "%u", l->config.parallel);
        snprintf(batch, sizeof(batch), "%u", l->config.batch);
        if (l->config.alias[0]) {
                argv[ELEMENTSOF(argv) - 3] = (char *) "--alias";
                argv[ELEMENTSOF(argv) - 2] = l->config.alias;
        }
        if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
            dup2(out_fd, STDERR_FILENO) < 0)
                _exit(127);
        exec_close_other_fds();
        environ = envp;
        execvp(argv[0], argv);
        dprintf(STDERR_FILENO, "zvm-agent: cannot execute %s: %s\n", argv[0], strerror(errno));
        _exit(127);
}

static int llm_spawn(Llm *l) {
        char num[16];
        int p[2], n;
        pid_t pid;

        if (mkdir(l->dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        (void) unlink(l->sock);         /* a dead server's socket: bind would fail */
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                close_many(p, 2);
                return -errno;
        }
        if (pid == 0)
                llm_child(l, p[1]);
        close(p[1]);
        safe_close(l->log_fd);
        l->log_fd = p[0];
        (void) fd_nonblock(l->log_fd, true);
        l->pid = pid;
        n = snprintf(num, sizeof(num), "%d\n", (int) pid);
        (void) write_file_atomic(l->dir, LLM_PID_NAME, num, (size_t) n, 0600);
        l->started_at = l->probe_at = now_msec(CLOCK_MONOTONIC);
        l->ready_at = 0;
        llm_note(l, "started (pid %d): %s -m %s --host %s -t %u -c %u -np %u -b %u --metrics", (int) pid, l->server,
                 l->config.model, l->sock, l->config.threads, l->config.ctx, l->config.parallel, l->config.batch);
        llm_set_state(l, LLM_LOADING);
        return 0;
}

static void probe_close(Llm *l) {
        l->probe_fd = safe_close(l->probe_fd);
        l->probe_len = 0;
        l->probe_sent = false;
}

static void llm_kill(Llm *l, int sig) {
        if (l->pid > 0) {
                (void) kill(-l->pid, sig);
                (void) kill(l->pid, sig);
        }
}

/* Stop: SIGTERM now, SIGKILL after LLM_STOP_GRACE_MS. */
bool llm_stop(Llm *l) {
        l->wanted = false;
        l->respawn_now = false;
        bridge_close(&l->bridge);
        probe_close(l);
        if (l->pid <= 0) {
                llm_set_state(l, LLM_STOPPED);
                return true;
        }
        if (l->state != LLM_STOPPING) {
                llm_kill(l, SIGTERM);
                l->kill_at = now_msec(CLOCK_MONOTONIC) + LLM_STOP_GRACE_MS;
                llm_set_state(l, LLM_STOPPING);
        }
        return false;
}

static void llm_after_death(Llm *l) {
        uint64_t now = now_msec(CLOCK_MONOTONIC);

        if (l->respawn_now) {           /* a new config: not a failure */
                l->respawn_now = false;
                if (llm_spawn(l) < 0)
                        llm_set_state(l, LLM_FAILED);
                return;
        }
        if (!l->wanted) {
                llm_set_state(l, LLM_STOPPED);
                return;
        }
        if (l->ready_at > 0 && now - l->ready_at >= LLM_STABLE_MS) {
                l->quick_deaths = 0;
                l->backoff_ms = LLM_BACKOFF_MIN_MS;
        }
        if (++l->quick_deaths >= LLM_FAIL_AFTER) {
                llm_note(l, "died %u times in a row without running %u s: failed, not restarted",
                         l->quick_deaths, LLM_STABLE_MS / 1000);
                llm_set_state(l, LLM_FAILED);
                return;
        }
        l->restart_at = now + l->backoff_ms;
        llm_note(l, "restarting in %u ms", l->backoff_ms);
        l->backoff_ms = MIN(l->backoff_ms * 2, LLM_BACKOFF_MAX_MS);
        llm_set_state(l, LLM_LOADING);
}

bool llm_reaped(Llm *l, pid_t pid, int status) {
        char sig[16];

        if (pid <= 0 || pid != l->pid)
                return false;
        l->pid = 0;
        (void) kill(-pid, SIGKILL);     /* anything it left in its group */
        probe_close(l);
        /* Whatever it still had in the pipe goes into the log first. */
        if (l->log_fd >= 0) {
                char buf[4096];
                ssize_t k;

                while ((k = read(l->log_fd, buf, sizeof(buf))) > 0)
                        log_append(&l->log, buf, (size_t) k);
        }
        l->last_exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        l->last_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        if (WIFSIGNALED(status))
                llm_note(l, "pid %d killed by %s", (int) pid, signal_name(WTERMSIG(status), sig, sizeof(sig)));
        else
                llm_note(l, "pid %d exited with status %d", (int) pid, l->last_exit_code);
        llm_after_death(l);
        return true;
}

/* GET /health on the unix socket, one step per poll round: connect (a unix
 * connect completes at once), send, read the status line. 200: ready; 503
 * (loading) or no answer: try again in LLM_PROBE_INTERVAL_MS. */
static void probe_start(Llm *l) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        static const char req[] = "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        int fd;

        l->probe_at = now_msec(CLOCK_MONOTONIC) + LLM_PROBE_INTERVAL_MS;
        if (strlen(l->sock) >= sizeof(sa.sun_path))
                return;
        strcpy(sa.sun_path, l->sock);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
            send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t) sizeof(req) - 1) {
                close(fd);
                return;
        }
        l->probe_fd = fd;
        l->probe_len = 0;
        l->probe_deadline = now_msec(CLOCK_MONOTONIC) + LLM_PROBE_TIMEOUT_MS;
}

static void probe_read(Llm *l) {
        ssize_t k = recv(l->probe_fd, l->probe_buf + l->probe_len, sizeof(l->probe_buf) - 1 - l->probe_len,
                         MSG_DONTWAIT);
        int code = 0;

        if (k < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        if (k > 0) {
                l->probe_len += (size_t) k;
                l->probe_buf[l->probe_len] = 0;
                if (!strstr(l->probe_buf, "\r\n") && l->probe_len < sizeof(l->probe_buf) - 1)
                        return;         /* the status line is not complete yet */
        }
        l->probe_buf[l->probe_len] = 0;
        if (sscanf(l->probe_buf, "HTTP/1.%*1[01] %3d", &code) != 1)
                code = 0;
        probe_close(l);
        if (code == 200 && l->state == LLM_LOADING) {
                l->ready_at = now_msec(CLOCK_MONOTONIC);
                llm_note(l, "ready: /health answered 200, %.1f s after the start",
                         (double) (l->ready_at - l->started_at) / 1000.0);
                llm_set_state(l, LLM_READY);
        }
}

void llm_poll_add(Llm *l, PollSet *ps) {
        l->i_log = poll_set_add(ps, l->log_fd, POLLIN);
        l->i_probe = poll_set_add(ps, l->probe_fd, POLLIN);
        if (l->probe_fd >= 0)
                poll_set_deadline(ps, l->probe_deadline);
        else if (l->state == LLM_LOADING && l->pid > 0)
                poll_set_deadline(ps, l->probe_at);
        if (l->state == LLM_LOADING && l->pid == 0 && l->wanted)
                poll_set_deadline(ps, l->restart_at);
        if (l->state == LLM_STOPPING)
                poll_set_deadline(ps, l->kill_at);
        bridge_poll_add(&l->bridge, ps);
}

static void llm_read_log(Llm *l) {
        char buf[16384];
        ssize_t k = read(l->log_fd, buf, sizeof(buf));

        if (k > 0)
                log_append(&l->log, buf, (size_t) k);
        else if (k == 0 || (errno != EAGAIN && errno != EINTR))
                l->log_fd = safe_close(l->log_fd);      /* EOF: it (and its group) closed the pipe */
}

void llm_poll_dispatch(Llm *l, const PollSet *ps) {
        uint64_t now;

        if (poll_set_revents(ps, l->i_log))
                llm_read_log(l);
        if (poll_set_revents(ps, l->i_probe) && l->probe_fd >= 0)
                probe_read(l);
        bridge_poll_dispatch(&l->bridge, ps);
        now = now_msec(CLOCK_MONOTONIC);
        if (l->probe_fd >= 0 && now >= l->probe_deadline)
                probe_close(l);
        if (l->state == LLM_LOADING && l->pid > 0 && l->probe_fd < 0 && now >= l->probe_at)
                probe_start(l);
        if (l->state == LLM_LOADING && l->pid == 0 && l->wanted && now >= l->restart_at) {
                int r = llm_spawn(l);

                l->restarts++;
                if (r < 0) {
                        llm_note(l, "cannot start: %s", strerror(-r));
                        llm_after_death(l);
                }
        }
        if (l->state == LLM_STOPPING && l->pid > 0 && now >= l->kill_at) {
                llm_note(l, "still running %u s after SIGTERM: SIGKILL", LLM_STOP_GRACE_MS / 1000);
                llm_kill(l, SIGKILL);
                l->kill_at = UINT64_MAX;
        }
}

static bool config_equal(const LlmConfig *a, const LlmConfig *b) {
        return streq(a->model, b->model) && streq(a->alias, b->alias) && a->threads == b->threads && a->ctx == b->ctx &&
               a->parallel == b->parallel && a->batch == b->batch && a->port == b->port;
}

/* Idempotent: the same config while it runs (or loads, or waits to
 * restart) changes nothing; after a failure or with a new config it
 * starts over (a running server is stopped first). */
static int llm_start(Llm *l, const LlmConfig *c, char *msg, size_t msg_size) {
        bool same = l->have_config && config_equal(c, &l->config);
        int r;

        if (same && l->wanted && l->state != LLM_FAILED && l->state != LLM_STOPPING)
                return 0;
        if (c->port > 0) {
                r = bridge_open(&l->bridge, c->port, l->sock);
                if (r < 0) {
                        snprintf(msg, msg_size, "cannot listen on vsock port %u: %s", c->port, strerror(-r));
                        return r;
                }
        } else
                bridge_close(&l->bridge);
        l->config = *c;
        l->have_config = l->wanted = true;
        l->restarts = l->quick_deaths = 0;
        l->backoff_ms = LLM_BACKOFF_MIN_MS;
        l->last_exit_code = -1;
        l->last_signal = 0;
        if (l->pid > 0) {               /* another config: replace it */
                llm_kill(l, SIGTERM);
                l->kill_at = now_msec(CLOCK_MONOTONIC) + LLM_STOP_GRACE_MS;
                l->respawn_now = true;
                llm_set_state(l, LLM_STOPPING);
                return 0;
        }
        r = llm_spawn(l);
        if (r < 0) {
                snprintf(msg, msg_size, "cannot start %s: %s", l->server, strerror(-r));
                l->wanted = false;
                bridge_close(&l->bridge);
                llm_set_state(l, LLM_FAILED);
        }
        return r;
}

static void llm_status(const Llm *l, LlmStatus *s) {
        uint64_t now = now_msec(CLOCK_MONOTONIC);

        *s = (LlmStatus) {
                .state = (int32_t) l->state,
                .pid = l->pid,
                .restarts = l->restarts,
                .last_exit_code = l->last_exit_code,
                .last_signal = l->last_signal,
                .ready_ms = l->ready_at > 0 ? l->ready_at - l->started_at : 0,
                .state_ms = now - l->state_since,
                .restart_in_ms = l->state == LLM_LOADING && l->pid == 0 && l->restart_at > now ?
                        l->restart_at - now : 0,
                .connections = l->bridge.n_relays,
                .have_config = l->have_config,
                .config = l->config,
        };
        if (l->log.data)
                log_tail(&l->log, s->log_tail, sizeof(s->log_tail));
}

static bool config_valid(LlmConfig *c) {
        c->model[sizeof(c->model) - 1] = 0;
        return c->model[0] == '/' && c->threads >= 1 && c->ctx >= 1 && c->parallel >= 1 && c->batch >= 1;
}

int llm_ctl_serve(Llm *l, int fd) {
        LlmCtlRequest rq;
        LlmCtlReply *reply;
        ssize_t k = recv(fd, &rq, sizeof(rq), MSG_DONTWAIT);
        int r = 0;

        if (k < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        if (k == 0)
                return -ECONNRESET;
        if (k != sizeof(rq))
                return -EBADMSG;
        reply = calloc(1, sizeof(*reply));
        if (!reply)
                return -ENOMEM;
        if (rq.op == LLM_CTL_START && !config_valid(&rq.config)) {
                r = -EINVAL;
                snprintf(reply->message, sizeof(reply->message), "bad configuration");
        } else if (rq.op == LLM_CTL_START)
                r = llm_start(l, &rq.config, reply->message, sizeof(reply->message));
        else if (rq.op == LLM_CTL_STOP)
                (void) llm_stop(l);
        else if (rq.op != LLM_CTL_STATUS)
                r = -EINVAL;
        reply->err = -r;
        llm_status(l, &reply->status);
        /* One message, small next to the socket buffer; a peer that does not
         * read has gone and loses it. */
        (void) send(fd, reply, sizeof(*reply), MSG_NOSIGNAL | MSG_DONTWAIT);
        free(reply);
        return 0;
}
