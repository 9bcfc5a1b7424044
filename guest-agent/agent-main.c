/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * zvm-agent: the guest side of api/agent-protocol.md. Static (musl), no
 * library beyond libc and lib/'s libc-only subset. README.md has the module
 * map; this file is the program: options, the listener, the process table.
 *
 * The main process listens on vsock port 1024 and forks one process per
 * host connection (at most MAX_CONNECTIONS at once; further connections
 * wait in the listen backlog). A connection proves the per-VM secret on its
 * first line, then sends requests, one JSON object per line, each answered
 * by one line. At start a separate child tells the host "ready" on port 1025
 * with a bounded back-off. The main process never reads host data at all.
 *
 *   zvm-agent [--port N] [--ready-port N] [--secret-file PATH] [--foreground]
 *   zvm-agent --stdio [--secret-file PATH]     serve one connection on stdin/
 *                                              stdout (tests, fuzzing; the
 *                                              secret from PATH or from
 *                                              $ZVM_AGENT_SECRET, never from
 *                                              fw_cfg; shutdown and reboot
 *                                              are answered, not done)
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent-auth.h"
#include "agent-contract.h"
#include "agent-exec.h"
#include "agent-info.h"
#include "agent-llm.h"
#include "agent-poll.h"
#include "agent-power.h"
#include "agent-ready.h"
#include "agent-serve.h"
#include "fd-util.h"
#include "log.h"
#include "musl-vsock.h"
#include "string-util.h"
#include "time-util.h"

#define MAX_CONNECTIONS 16
#define LISTEN_BACKLOG 128
#define SECRET_ENV "ZVM_AGENT_SECRET"

typedef struct Options {
        uint32_t port, ready_port;
        const char *secret_file;        /* NULL: the default (fw_cfg), or $ZVM_AGENT_SECRET with --stdio */
        const char *llm_server, *llm_dir;
        bool foreground, stdio;
} Options;

/* The connection processes and the llm supervisor: the main loop's whole
 * state. Each connection process has a control socket to the supervisor. */
typedef struct Children {
        pid_t active[MAX_CONNECTIONS];
        int ctl[MAX_CONNECTIONS];       /* our end, -EBADF: none */
        int i_ctl[MAX_CONNECTIONS];     /* index in this round's PollSet */
        unsigned n_active;
        pid_t ready;
        Llm llm;
} Children;

static void usage(FILE *f) {
        fprintf(f,
                "usage: zvm-agent [--port N] [--ready-port N] [--secret-file PATH] [--foreground]\n"
                "                 [--llm-server PATH] [--llm-dir DIR]\n"
                "       zvm-agent --stdio [--secret-file PATH] [--llm-server PATH] [--llm-dir DIR]\n"
                "  --port N          vsock port to serve (default %u)\n"
                "  --ready-port N    host port to say READY on (default %u, 0: do not)\n"
                "  --secret-file P   the per-VM secret (default %s)\n"
                "  --foreground      keep the caller's session and stdin (for a shell)\n"
                "  --llm-server P    the program op llm-start runs (default %s, in PATH)\n"
                "  --llm-dir DIR     where its unix socket goes (default %s)\n"
                "  --stdio           serve one connection on stdin/stdout (tests); the secret\n"
                "                    from --secret-file or $" SECRET_ENV "\n",
                AGENT_PORT, AGENT_READY_PORT, AGENT_SECRET_SYSFS_PATH, LLM_DEFAULT_SERVER, LLM_DEFAULT_DIR);
}

/* Returns 1 to run, 0 to exit successfully (--help, --version), or 2 (a
 * usage error, the exit status). */
static int parse_args(int argc, char **argv, Options *o) {
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

                if (streq(a, "--port") && v && safe_atou32(v, &o->port) >= 0 && o->port > 0)
                        i++;
                else if (streq(a, "--ready-port") && v && safe_atou32(v, &o->ready_port) >= 0)
                        i++;
                else if (streq(a, "--secret-file") && !isempty(v)) {
                        o->secret_file = v;
                        i++;
                } else if (streq(a, "--llm-server") && !isempty(v)) {
                        o->llm_server = v;
                        i++;
                } else if (streq(a, "--llm-dir") && v && v[0] == '/') {
                        o->llm_dir = v;
                        i++;
                } else if (streq(a, "--foreground"))
                        o->foreground = true;
                else if (streq(a, "--stdio"))
                        o->stdio = true;
                else if (streq(a, "--version")) {
                        printf("zvm-agent %s\n", ZVM_AGENT_VERSION);
                        return 0;
                } else if (streq(a, "--help") || streq(a, "-h")) {
                        usage(stdout);
                        return 0;
                } else {
                        log_error("bad argument '%s'", a);
                        usage(stderr);
                        return 2;
                }
        }
        return 1;
}

static void ensure_std_fds(void) {
        for (int fd = 0; fd < 3; fd++)
                if (fcntl(fd, F_GETFD) < 0) {
                        int n = open("/dev/null", O_RDWR);

                        if (n >= 0 && n != fd) {
                                dup2(n, fd);
                                close(n);
                        }
                }
}

static bool loop_round(Children *ch, int sigfd, int lfd);

/* --stdio's supervisor process: the llm supervisor for the one connection,
 * until that connection's control socket closes; then it stops llama-server
 * (bounded: SIGKILL after LLM_STOP_GRACE_MS) and exits. */
static _noreturn_ void run_stdio_supervisor(const Options *o, int ctl, int sigfd) {
        Children ch = { .ctl = { [0 ... MAX_CONNECTIONS - 1] = -EBADF } };
        uint64_t deadline;
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);

        /* The host reads stdout until EOF: we must not hold it. */
        if (null >= 0) {
                dup2(null, STDIN_FILENO);
                dup2(null, STDOUT_FILENO);
                close(null);
        }
        llm_init(&ch.llm, o->llm_server ?: LLM_DEFAULT_SERVER, o->llm_dir ?: LLM_DEFAULT_DIR);
        ch.ctl[0] = ctl;
        while (ch.ctl[0] >= 0)
                (void) loop_round(&ch, sigfd, -EBADF);
        deadline = now_msec(CLOCK_MONOTONIC) + LLM_STOP_GRACE_MS + 2000;
        while (!llm_stop(&ch.llm) && msec_until(deadline) > 0)
                (void) loop_round(&ch, sigfd, -EBADF);
        _exit(EXIT_SUCCESS);
}

/* --stdio: one connection on stdin/stdout, then exit. The secret never
 * comes from fw_cfg here: this mode runs on hosts and under fuzzers. The
 * llm supervisor runs in a process of its own, as it would in the main
 * process. */
static int run_stdio(const Options *o, int sigfd) {
        Conn c = { .in_fd = STDIN_FILENO, .out_fd = STDOUT_FILENO, .sigfd = sigfd, .ctl_fd = -EBADF };
        const char *env = getenv(SECRET_ENV);
        int sv[2];
        pid_t pid = -1;

        if (o->secret_file)
                (void) secret_load(o->secret_file);
        else if (env)
                (void) secret_set(env, "$" SECRET_ENV);
        power_set_dry_run(true);
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) >= 0) {
                pid = fork();
                if (pid == 0) {
                        close(sv[1]);
                        run_stdio_supervisor(o, sv[0], sigfd);
                }
                close(sv[0]);
                if (pid > 0)
                        c.ctl_fd = sv[1];
                else
                        close(sv[1]);
        }
        (void) fd_nonblock(STDIN_FILENO, true);
        serve_connection(&c);
        free(c.buf);
        c.ctl_fd = safe_close(c.ctl_fd);
        if (pid > 0)
                (void) waitpid(pid, NULL, 0);     /* bounded by the supervisor's own stop */
        return EXIT_SUCCESS;
}

/* A guest without a vsock device never gets one (no hotplug on microvm), so
 * retry slowly and quietly rather than exit and be respawned in a loop by
 * init. */
static int listen_with_retry(unsigned port) {
        uint64_t start = now_msec(CLOCK_MONOTONIC);
        int lfd;

        for (unsigned delay = 1000, failures = 0;; failures++) {
                lfd = vsock_listen(port, LISTEN_BACKLOG);
                if (lfd >= 0)
                        break;
                if (failures == 0 || failures % 64 == 0)
                        log_info("cannot listen on vsock port %u: %s; retrying", port, strerror(-lfd));
                sleep_msec(delay);
                delay = MIN(delay * 2, 30000U);
        }
        log_info("listening on vsock port %u (agent %s, %.2f s after kernel start%s)", port, ZVM_AGENT_VERSION,
                 info_uptime(), now_msec(CLOCK_MONOTONIC) - start > 1000 ? ", after retries" : "");
        return lfd;
}

static void ready_start(Children *ch, unsigned port, int lfd, int sigfd) {
        if (port == 0)
                return;
        if (!secret_loaded()) {
                log_info("not saying READY: no secret");
                return;
        }
        ch->ready = fork();
        if (ch->ready == 0) {
                close(lfd);
                close(sigfd);
                ready_run(port);
        }
        if (ch->ready < 0) {
                log_info("cannot fork to say READY: %s", strerror(errno));
                ch->ready = 0;
        }
}

static void children_reap(Children *ch, int sigfd) {
        struct signalfd_siginfo si;
        int status;
        pid_t pid;

        while (read(sigfd, &si, sizeof(si)) > 0)
                ;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
                if (pid == ch->ready) {
                        ch->ready = 0;
                        continue;
                }
                if (llm_reaped(&ch->llm, pid, status))
                        continue;
                for (unsigned i = 0; i < MAX_CONNECTIONS; i++)
                        if (ch->active[i] == pid) {
                                ch->active[i] = 0;
                                ch->ctl[i] = safe_close(ch->ctl[i]);
                                ch->n_active--;
                                if (WIFSIGNALED(status))
                                        log_info("connection process %d killed by %s", (int) pid,
                                                 signal_name(WTERMSIG(status), (char[16]) {}, 16));
                        }
        }
}

/* The connection process: nothing of the main loop's but its own control
 * socket (a bridged connection held here would outlive its close there). */
static _noreturn_ void connection_run(Children *ch, int lfd, int cfd, int ctl, int sigfd) {
        Conn c = { .in_fd = cfd, .out_fd = cfd, .sigfd = sigfd, .ctl_fd = ctl };

        close(lfd);
        for (unsigned i = 0; i < MAX_CONNECTIONS; i++)
                ch->ctl[i] = safe_close(ch->ctl[i]);
        llm_forget(&ch->llm);
        (void) fd_nonblock(cfd, true);
        serve_connection(&c);
        _exit(EXIT_SUCCESS);
}

static void children_accept(Children *ch, const Options *o, int lfd, int sigfd) {
        int sv[2] = { -EBADF, -EBADF };
        unsigned slot = 0;
        pid_t pid;
        int cfd;

        cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (cfd < 0) {
                if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS) {
                        log_info("accept: %s", strerror(errno));
                        sleep_msec(100);        /* would spin on a listen fd that stays readable */
                }
                return;
        }
        if (!secret_loaded())
                (void) secret_load(o->secret_file ?: AGENT_SECRET_SYSFS_PATH);  /* maybe it was just late */
        while (slot < MAX_CONNECTIONS && ch->active[slot] != 0)
                slot++;
        /* Without a control socket the connection still serves, minus llm. */
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                sv[0] = sv[1] = -EBADF;
        pid = fork();
        if (pid == 0) {
                safe_close(sv[0]);
                connection_run(ch, lfd, cfd, sv[1], sigfd);
        }
        safe_close(sv[1]);
        if (pid < 0 || slot == MAX_CONNECTIONS) {
                if (pid < 0)
                        log_info("cannot fork for a connection: %s", strerror(errno));
                safe_close(sv[0]);
        } else {
                ch->active[slot] = pid;
                ch->ctl[slot] = sv[0];
                (void) fd_nonblock(sv[0], true);
                ch->n_active++;
        }
        close(cfd);
}

/* One poll() over everything the main loop serves. Returns true when the
 * listener has a connection waiting. */
static bool loop_round(Children *ch, int sigfd, int lfd) {
        PollSet ps = { .deadline = UINT64_MAX };
        int i_sig, i_listen = -1;

        i_sig = poll_set_add(&ps, sigfd, POLLIN);
        if (lfd >= 0 && ch->n_active < MAX_CONNECTIONS)         /* full: the rest wait in the backlog */
                i_listen = poll_set_add(&ps, lfd, POLLIN);
        for (unsigned i = 0; i < MAX_CONNECTIONS; i++)
                ch->i_ctl[i] = poll_set_add(&ps, ch->ctl[i], POLLIN);
        llm_poll_add(&ch->llm, &ps);
        if (poll(ps.pfd, ps.n, poll_set_timeout(&ps)) < 0) {
                if (errno != EINTR)
                        log_info("poll: %s", strerror(errno));
                return false;
        }
        if (poll_set_revents(&ps, i_sig))
                children_reap(ch, sigfd);
        for (unsigned i = 0; i < MAX_CONNECTIONS; i++)
                if (poll_set_revents(&ps, ch->i_ctl[i]) && ch->ctl[i] >= 0 &&
                    llm_ctl_serve(&ch->llm, ch->ctl[i]) < 0)
                        ch->ctl[i] = safe_close(ch->ctl[i]);
        llm_poll_dispatch(&ch->llm, &ps);
        return (poll_set_revents(&ps, i_listen) & POLLIN) != 0;
}

static _noreturn_ void run_vsock(const Options *o, int sigfd) {
        Children ch = { .ctl = { [0 ... MAX_CONNECTIONS - 1] = -EBADF } };
        int lfd;

        if (!secret_load(o->secret_file ?: AGENT_SECRET_SYSFS_PATH))
                log_info("no secret (%s): refusing every connection", secret_problem());
        if (!o->foreground) {
                /* Away from the console's session: a ^C or hangup on the
                 * console shell must not reach us. */
                int n = open("/dev/null", O_RDONLY | O_CLOEXEC);

                (void) setsid();
                if (n >= 0) {
                        dup2(n, STDIN_FILENO);
                        close(n);
                }
        }
        llm_init(&ch.llm, o->llm_server ?: LLM_DEFAULT_SERVER, o->llm_dir ?: LLM_DEFAULT_DIR);
        lfd = listen_with_retry(o->port);
        ready_start(&ch, o->ready_port, lfd, sigfd);
        for (;;)
                if (loop_round(&ch, sigfd, lfd))
                        children_accept(&ch, o, lfd, sigfd);
}

int main(int argc, char **argv) {
        Options o = { .port = AGENT_PORT, .ready_port = AGENT_READY_PORT };
        sigset_t mask;
        int sigfd, r;

        /* Under busybox init our stderr is the console; the binary's name
         * may differ (a host build for tests), the prefix may not. */
        log_set_program_name("zvm-agent");
        r = parse_args(argc, argv, &o);
        if (r != 1)
                return r == 0 ? EXIT_SUCCESS : r;

        ensure_std_fds();
        (void) signal(SIGPIPE, SIG_IGN);
        /* SIGCHLD only through a signalfd: blocked, so no exit is missed
         * between a waitpid() and the next poll(). */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
            (sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
                log_error("cannot set up signal handling: %m");
                return EXIT_FAILURE;
        }
        if (o.stdio)
                return run_stdio(&o, sigfd);
        run_vsock(&o, sigfd);
}
