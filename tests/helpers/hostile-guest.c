/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hostile-guest: a guest-side test helper (static, musl) that plays a guest
 * attacking its host, for the `hostile` scenario of
 * tests/integration/test-zvmd.py. The scenario builds a tiny root image with
 * this program as /sbin/zvm-agent (initrd/mkrootfs-tiny --agent), so busybox
 * init starts it where the real agent runs, and zvmd hands the VM its agent
 * secret over fw_cfg as for any agent VM.
 *
 *   hostile-guest [PHASE[:SECONDS[:ARG]]]...
 *
 * runs the given phases in order, then serves the control port (vsock 7000):
 * a connection sends one line "PHASE[:SECONDS[:ARG]]", reads "started PHASE"
 * when the phase begins and "done PHASE" when it has ended (all its processes
 * killed), then the connection closes. Closing it first ends the phase early;
 * flood reports "progress BYTES" on it every second. Without arguments the phases come from
 * the kernel command line: zvm.hostile=PHASE[:S[:ARG]],... Every phase runs
 * in its own process group for SECONDS (default 10, at most 600) and is
 * killed when its time is up.
 *
 *   idle          nothing (a baseline for the host's figures)
 *   flood         writes to the serial console as fast as the guest can
 *                 (through printk, /dev/kmsg's rate limit lifted)
 *   ready-bad     READY lines zvmd must ignore, over and over: empty, missing,
 *                 numeric and wrong secrets, not JSON, 30k-deep nesting, a
 *                 line past zvmd's 64 KiB READY buffer
 *   ready-flood   holds ARG (default 400) connections to the READY port, each
 *                 with a started line, reopening those the host closes
 *   ready         one valid READY (the real secret) whose ssh_host_keys try
 *                 to put a CA marker, options and a second line into the
 *                 host's known_hosts; then the phase ends
 *   agent-nested  serves the agent port (1024): answers auth with ok, then
 *                 every request with {"ok":true,"x":[[[…]]]} 100k deep
 *   agent-huge    … with {"ok":true,"pong":true,"x":[0,0,…]} of ARG MiB
 *                 (default 16)
 *   agent-stall   accepts and never answers (nor reads)
 *
 * Everything it sends over vsock goes in writes of at most 16 KiB: on hybrid
 * vsock, vhost-device-vsock drops larger guest packets (api/agent-protocol.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helper-say.h"
#include "musl-vsock.h"

#define PREFIX "hostile: "
#define CONTROL_PORT 7000U
#define AGENT_PORT 1024U
#define READY_PORT 1025U
#define SECRET_PATH "/sys/firmware/qemu_fw_cfg/by_name/opt/zvm/agent-secret/raw"
#define CHUNK 16384
#define SECONDS_DEFAULT 10U
#define SECONDS_MAX 600U
#define FLOOD_CONNS_DEFAULT 400U
#define FLOOD_CONNS_MAX 900U            /* below the guest's 1024 fds */
#define HUGE_MIB_DEFAULT 16U
#define HUGE_MIB_MAX 64U
#define NESTED_DEPTH 100000U
#define AGENT_CHILDREN_MAX 64U
#define LINE_MAX_BYTES 65536U

typedef struct Phase {
        const char *name;
        void (*run)(unsigned arg, long long deadline_ms);
        unsigned arg_default, arg_max;
} Phase;

/* The control connection of the running phase (-1: none), for progress. */
static int report_fd = -1;

#define say(...) helper_say(PREFIX, __VA_ARGS__)

static long long now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int left_ms(long long deadline_ms) {
        long long d = deadline_ms - now_ms();

        return d <= 0 ? 0 : d > 60000 ? 60000 : (int) d;
}

static void sleep_ms(int ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* Writes all of p in pieces of at most CHUNK bytes; -1 once the peer is gone
 * or the deadline passed. */
static int send_all(int fd, const char *p, size_t n, long long deadline_ms) {
        while (n > 0) {
                struct pollfd pfd = { .fd = fd, .events = POLLOUT };
                ssize_t k;

                if (poll(&pfd, 1, left_ms(deadline_ms)) <= 0 && errno != EINTR)
                        return -1;
                k = send(fd, p, n > CHUNK ? CHUNK : n, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                continue;
                        return -1;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

/* Sends the byte c count times. */
static int send_repeated(int fd, char c, size_t count, long long deadline_ms) {
        char buf[CHUNK];

        memset(buf, c, sizeof(buf));
        while (count > 0) {
                size_t n = count > sizeof(buf) ? sizeof(buf) : count;

                if (send_all(fd, buf, n, deadline_ms) < 0)
                        return -1;
                count -= n;
        }
        return 0;
}

/* Reads and drops bytes up to and including the next newline: -1 on EOF,
 * error, deadline or a line past LINE_MAX_BYTES. */
static int skip_line(int fd, long long deadline_ms) {
        size_t total = 0;

        while (total < LINE_MAX_BYTES) {
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                char buf[4096];
                ssize_t k;

                if (poll(&pfd, 1, left_ms(deadline_ms)) <= 0)
                        return -1;
                /* Peek, then consume only through the newline: the next
                 * line may already be in the socket. */
                k = recv(fd, buf, sizeof(buf), MSG_PEEK);
                if (k <= 0)
                        return -1;
                char *nl = memchr(buf, '\n', (size_t) k);
                size_t take = nl ? (size_t) (nl - buf) + 1 : (size_t) k;

                if (recv(fd, buf, take, 0) != (ssize_t) take)
                        return -1;
                if (nl)
                        return 0;
                total += take;
        }
        return -1;
}

/* A connection to the host (CID 2) on port; the kernel bounds the connect
 * (2 s by default for vsock). */
static int connect_host(unsigned port) {
        struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_port = port, .svm_cid = VMADDR_CID_HOST };
        int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return -1;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

static int listen_port(unsigned port, int backlog) {
        struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_port = port, .svm_cid = VMADDR_CID_ANY };
        int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return -1;
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, backlog) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

/* The VM's agent secret (64 hex digits) from fw_cfg, or "" without one. */
static void read_secret(char *buf, size_t size) {
        ssize_t n = -1;
        int fd = open(SECRET_PATH, O_RDONLY | O_CLOEXEC);

        if (fd >= 0) {
                n = read(fd, buf, size - 1);
                close(fd);
        }
        buf[n > 0 ? n : 0] = 0;
        buf[strcspn(buf, "\r\n")] = 0;
}

/* ---- phases ------------------------------------------------------------------- */

/* Writes s to a /proc/sys file; errors are the caller's to notice later. */
static void write_proc(const char *path, const char *s) {
        int fd = open(path, O_WRONLY | O_CLOEXEC);

        if (fd >= 0) {
                (void) !write(fd, s, strlen(s));
                close(fd);
        }
}

/* Through printk: the kernel writes its console by polling the UART, far
 * faster than the interrupt-driven tty path (~45 KB/s under TCG). Root in a
 * guest may lift /dev/kmsg's rate limit, and level 1 (alert) passes "quiet". */
static void phase_flood(unsigned arg, long long deadline_ms) {
        char buf[960];
        unsigned long long lines = 0, bytes = 0;
        bool kmsg = true;
        int fd;

        write_proc("/proc/sys/kernel/printk_devkmsg", "on\n");
        fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
        if (fd < 0) {
                kmsg = false;
                fd = open("/dev/ttyS0", O_WRONLY | O_NOCTTY | O_CLOEXEC);
        }
        if (fd < 0) {
                say("flood: no console to write to: %s", strerror(errno));
                return;
        }
        for (long long next_report = now_ms() + 1000; now_ms() < deadline_ms;) {
                int n = snprintf(buf, sizeof(buf), "%shostile flood %012llu ", kmsg ? "<1>" : "", lines++);

                memset(buf + n, 'x', sizeof(buf) - 1 - (size_t) n);
                buf[sizeof(buf) - 1] = '\n';
                ssize_t k = write(fd, buf, sizeof(buf));

                if (k < 0 && errno != EINTR && errno != EAGAIN) {
                        say("flood: write failed: %s", strerror(errno));
                        break;
                }
                if (k > 0)
                        bytes += (unsigned long long) k;
                if (report_fd >= 0 && now_ms() >= next_report) {
                        /* So the test can end the phase once it wrote enough. */
                        char line[64];
                        int len = snprintf(line, sizeof(line), "progress %llu\n", bytes);

                        (void) send(report_fd, line, (size_t) len, MSG_NOSIGNAL | MSG_DONTWAIT);
                        next_report += 1000;
                }
        }
        close(fd);
        say("flood: wrote %llu bytes to %s", bytes, kmsg ? "/dev/kmsg" : "/dev/ttyS0");
}

static void phase_ready_bad(unsigned arg, long long deadline_ms) {
        static const char *const lines[] = {
                "{\"op\":\"ready\",\"secret\":\"\"}\n",
                "{\"op\":\"ready\"}\n",
                "{\"op\":\"ready\",\"secret\":null}\n",
                "{\"op\":\"ready\",\"secret\":1234}\n",
                "{\"op\":\"ready\",\"secret\":\"0000000000000000000000000000000000000000000000000000000000000000\"}\n",
                "{\"op\":\"ready\",\"secret\":\"\",\"agent_version\":\"hostile\",\"ssh_host_keys\":[\"@cert-authority * ssh-ed25519 AAAA\"]}\n",
                "\x01\x02 not JSON at all {{{ \"op\":\"ready\"\n",
                "[\"op\",\"ready\"]\n",
        };
        unsigned long long sent = 0;

        while (now_ms() < deadline_ms) {
                for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]) + 2 && now_ms() < deadline_ms; i++) {
                        int fd = connect_host(READY_PORT);

                        if (fd < 0)
                                continue;
                        if (i < sizeof(lines) / sizeof(lines[0]))
                                (void) send_all(fd, lines[i], strlen(lines[i]), deadline_ms);
                        else if (i == sizeof(lines) / sizeof(lines[0])) {
                                /* Deep nesting that still fits zvmd's READY buffer. */
                                static const char head[] = "{\"op\":\"ready\",\"secret\":\"\",\"x\":";

                                if (send_all(fd, head, sizeof(head) - 1, deadline_ms) == 0 &&
                                    send_repeated(fd, '[', 30000, deadline_ms) == 0 &&
                                    send_repeated(fd, ']', 30000, deadline_ms) == 0)
                                        (void) send_all(fd, "}\n", 2, deadline_ms);
                        } else
                                /* A line that never ends within the buffer. */
                                (void) send_repeated(fd, 'A', 80 * 1024, deadline_ms);
                        sent++;
                        close(fd);
                }
                sleep_ms(100);
        }
        say("ready-bad: sent %llu bad READY connections", sent);
}

typedef struct Slot {
        int fd;
        bool connected;
        long long retry_ms;
} Slot;

static void slot_close(Slot *s, long long now) {
        close(s->fd);
        s->fd = -1;
        s->connected = false;
        s->retry_ms = now + 100;        /* do not spin on a host that refuses */
}

static void phase_ready_flood(unsigned conns, long long deadline_ms) {
        static const char partial[] = "{\"op\":\"ready\",\"secret\":\"";
        static Slot slots[FLOOD_CONNS_MAX];
        static struct pollfd pfds[FLOOD_CONNS_MAX];
        unsigned long long opened = 0, closed_by_host = 0;
        unsigned held_max = 0;

        for (unsigned i = 0; i < conns; i++)
                slots[i] = (Slot) { .fd = -1 };
        while (now_ms() < deadline_ms) {
                long long now = now_ms();
                unsigned held = 0;

                for (unsigned i = 0; i < conns; i++) {
                        Slot *s = &slots[i];

                        if (s->fd < 0 && now >= s->retry_ms) {
                                struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_port = READY_PORT,
                                                          .svm_cid = VMADDR_CID_HOST };

                                s->fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                                if (s->fd < 0) {
                                        s->retry_ms = now + 100;
                                        continue;
                                }
                                if (connect(s->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
                                        slot_close(s, now);
                                        continue;
                                }
                        }
                        pfds[i] = (struct pollfd) { .fd = s->fd, .events = s->connected ? POLLIN : POLLOUT };
                        held += s->connected;
                }
                if (held > held_max)
                        held_max = held;
                if (poll(pfds, conns, 100) < 0 && errno != EINTR)
                        break;
                now = now_ms();
                for (unsigned i = 0; i < conns; i++) {
                        Slot *s = &slots[i];
                        int err = 0;
                        socklen_t len = sizeof(err);
                        char buf[256];

                        if (s->fd < 0 || !pfds[i].revents)
                                continue;
                        if (!s->connected) {
                                if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
                                        slot_close(s, now);
                                        continue;
                                }
                                /* A started line the host has to keep. */
                                s->connected = true;
                                opened++;
                                (void) send(s->fd, partial, sizeof(partial) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
                                continue;
                        }
                        if (recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0 && errno != EAGAIN) {
                                closed_by_host++;
                                slot_close(s, now);
                        }
                }
        }
        say("ready-flood: %llu connections opened, %llu closed by the host, at most %u held at once", opened,
            closed_by_host, held_max);
}

static void phase_ready(unsigned arg, long long deadline_ms) {
        char secret[160], msg[1024];
        int fd, n;

        read_secret(secret, sizeof(secret));
        if (!secret[0])
                say("ready: no agent secret in fw_cfg");
        n = snprintf(msg, sizeof(msg),
                     "{\"op\":\"ready\",\"secret\":\"%s\",\"agent_version\":\"hostile-guest\",\"uptime\":1.0,"
                     "\"initrd_timing\":null,\"ssh_host_keys\":["
                     "\"@cert-authority * ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostileCA\","
                     "\"command=\\\"/bin/sh\\\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostileOpt\","
                     "\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostile\\n* ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIInjected\"]}\n",
                     secret);
        fd = connect_host(READY_PORT);
        if (fd < 0) {
                say("ready: cannot connect to the host's READY port: %s", strerror(errno));
                return;
        }
        if (send_all(fd, msg, (size_t) n, deadline_ms) < 0)
                say("ready: cannot send READY: %s", strerror(errno));
        else
                say("ready: sent a valid READY");
        close(fd);
}

typedef enum AgentMode { AGENT_NESTED, AGENT_HUGE, AGENT_STALL } AgentMode;

/* One connection from zvmd to the agent port, in its own process. */
static void agent_connection(int fd, AgentMode mode, unsigned arg, long long deadline_ms) {
        static const char ok[] = "{\"ok\":true}\n";

        if (mode == AGENT_STALL) {
                sleep_ms(left_ms(deadline_ms));
                return;
        }
        /* Auth passes, so zvmd goes on to parse the real answer. */
        if (skip_line(fd, deadline_ms) < 0 || send_all(fd, ok, sizeof(ok) - 1, deadline_ms) < 0)
                return;
        while (skip_line(fd, deadline_ms) == 0) {
                if (mode == AGENT_NESTED) {
                        static const char head[] = "{\"ok\":true,\"pong\":true,\"x\":";

                        if (send_all(fd, head, sizeof(head) - 1, deadline_ms) < 0 ||
                            send_repeated(fd, '[', NESTED_DEPTH, deadline_ms) < 0 ||
                            send_repeated(fd, ']', NESTED_DEPTH, deadline_ms) < 0 ||
                            send_all(fd, "}\n", 2, deadline_ms) < 0)
                                return;
                } else {
                        static const char head[] = "{\"ok\":true,\"pong\":true,\"x\":[";
                        static char zeros[CHUNK];
                        size_t total = (size_t) arg << 20;

                        for (size_t i = 0; i < sizeof(zeros); i += 2)
                                memcpy(zeros + i, "0,", 2);
                        if (send_all(fd, head, sizeof(head) - 1, deadline_ms) < 0)
                                return;
                        for (size_t sent = 0; sent < total; sent += sizeof(zeros))
                                if (send_all(fd, zeros, sizeof(zeros), deadline_ms) < 0)
                                        return;
                        if (send_all(fd, "0]}\n", 4, deadline_ms) < 0)
                                return;
                }
        }
}

static void serve_agent(AgentMode mode, unsigned arg, long long deadline_ms) {
        unsigned children = 0;
        unsigned long long accepted = 0, refused = 0;
        int lfd = listen_port(AGENT_PORT, 16);

        if (lfd < 0) {
                say("agent: cannot listen on vsock port %u: %s", AGENT_PORT, strerror(errno));
                return;
        }
        while (now_ms() < deadline_ms) {
                struct pollfd pfd = { .fd = lfd, .events = POLLIN };
                pid_t pid;
                int fd;

                while (children > 0 && waitpid(-1, NULL, WNOHANG) > 0)
                        children--;
                if (poll(&pfd, 1, left_ms(deadline_ms) < 200 ? left_ms(deadline_ms) : 200) <= 0)
                        continue;
                fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                        continue;
                accepted++;
                if (children >= AGENT_CHILDREN_MAX) {
                        refused++;
                        close(fd);
                        continue;
                }
                pid = fork();
                if (pid == 0) {
                        close(lfd);
                        agent_connection(fd, mode, arg, deadline_ms);
                        _exit(EXIT_SUCCESS);
                }
                if (pid > 0)
                        children++;
                close(fd);
        }
        close(lfd);
        say("agent: %llu connections from the host, %llu turned away", accepted, refused);
}

static void phase_agent_nested(unsigned arg, long long deadline_ms) {
        serve_agent(AGENT_NESTED, arg, deadline_ms);
}

static void phase_agent_huge(unsigned arg, long long deadline_ms) {
        serve_agent(AGENT_HUGE, arg, deadline_ms);
}

static void phase_agent_stall(unsigned arg, long long deadline_ms) {
        serve_agent(AGENT_STALL, arg, deadline_ms);
}

/* Nothing: a baseline for the host's figures, and a way to wait until the
 * guest is up. */
static void phase_idle(unsigned arg, long long deadline_ms) {
        sleep_ms(left_ms(deadline_ms));
}

static const Phase phases[] = {
        { "idle", phase_idle, 0, 0 },
        { "flood", phase_flood, 0, 0 },
        { "ready-bad", phase_ready_bad, 0, 0 },
        { "ready-flood", phase_ready_flood, FLOOD_CONNS_DEFAULT, FLOOD_CONNS_MAX },
        { "ready", phase_ready, 0, 0 },
        { "agent-nested", phase_agent_nested, 0, 0 },
        { "agent-huge", phase_agent_huge, HUGE_MIB_DEFAULT, HUGE_MIB_MAX },
        { "agent-stall", phase_agent_stall, 0, 0 },
};

/* ---- running phases ------------------------------------------------------------- */

static bool parse_uint(const char *s, size_t len, unsigned max, unsigned *ret) {
        unsigned long v = 0;

        if (len == 0 || len > 9)
                return false;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                v = v * 10 + (unsigned long) (s[i] - '0');
        }
        if (v == 0 || v > max)
                return false;
        *ret = (unsigned) v;
        return true;
}

/* "NAME[:SECONDS[:ARG]]" (len bytes of spec) → phase, seconds, arg. */
static const Phase *parse_phase(const char *spec, size_t len, unsigned *ret_seconds, unsigned *ret_arg) {
        const char *c1 = memchr(spec, ':', len), *c2;
        size_t name_len = c1 ? (size_t) (c1 - spec) : len;
        const Phase *p = NULL;

        for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++)
                if (strlen(phases[i].name) == name_len && memcmp(phases[i].name, spec, name_len) == 0)
                        p = &phases[i];
        if (!p)
                return NULL;
        *ret_seconds = SECONDS_DEFAULT;
        *ret_arg = p->arg_default;
        if (!c1)
                return p;
        c1++;
        c2 = memchr(c1, ':', len - (size_t) (c1 - spec));
        if (!parse_uint(c1, c2 ? (size_t) (c2 - c1) : len - (size_t) (c1 - spec), SECONDS_MAX, ret_seconds))
                return NULL;
        if (c2 && (!p->arg_max || !parse_uint(c2 + 1, len - (size_t) (c2 + 1 - spec), p->arg_max, ret_arg)))
                return NULL;
        return p;
}

/* True once the peer of the control connection fd has closed it. */
static bool peer_gone(int fd) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLRDHUP };
        char c;

        if (poll(&pfd, 1, 0) <= 0)
                return false;
        return (pfd.revents & (POLLHUP | POLLRDHUP | POLLERR)) ||
               recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* Runs a phase in a child process group and waits for it, bounded: the
 * group is killed a little after its deadline whatever it does, or as soon
 * as the control connection ctl_fd (-1: none) is closed by the host. */
static void run_phase(const Phase *p, unsigned seconds, unsigned arg, int ctl_fd) {
        long long deadline_ms = now_ms() + (long long) seconds * 1000;
        bool reaped = false, stopped = false;
        pid_t pid;

        say("phase %s for %u s (arg %u)", p->name, seconds, arg);
        pid = fork();
        if (pid < 0) {
                say("fork failed: %s", strerror(errno));
                return;
        }
        if (pid == 0) {
                (void) setpgid(0, 0);
                (void) signal(SIGCHLD, SIG_DFL);
                report_fd = ctl_fd;
                p->run(arg, deadline_ms);
                _exit(EXIT_SUCCESS);
        }
        (void) setpgid(pid, pid);
        while (!reaped && !stopped && now_ms() < deadline_ms + 3000) {
                reaped = waitpid(pid, NULL, WNOHANG) == pid;
                stopped = ctl_fd >= 0 && peer_gone(ctl_fd);
                if (!reaped && !stopped)
                        sleep_ms(50);
        }
        /* The whole group: connection children outlive a leader that
         * ended, and the group id stays valid while any of them lives. */
        (void) kill(-pid, SIGKILL);
        if (!reaped)
                (void) waitpid(pid, NULL, 0);
        say("phase %s %s", p->name, stopped ? "stopped by the host" : "done");
}

/* Serves control connections one at a time, forever. */
static int serve_control(void) {
        int lfd = listen_port(CONTROL_PORT, 4);

        if (lfd < 0) {
                say("cannot listen on vsock port %u: %s", CONTROL_PORT, strerror(errno));
                return -1;
        }
        say("control: listening on vsock port %u", CONTROL_PORT);
        for (;;) {
                char line[128];
                size_t n = 0;
                const Phase *p = NULL;
                unsigned seconds, arg;
                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                long long deadline_ms = now_ms() + 10000;

                if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        say("control: accept failed: %s", strerror(errno));
                        sleep_ms(1000);
                        continue;
                }
                while (n < sizeof(line) - 1 && !memchr(line, '\n', n)) {
                        struct pollfd pfd = { .fd = fd, .events = POLLIN };
                        ssize_t k;

                        if (poll(&pfd, 1, left_ms(deadline_ms)) <= 0)
                                break;
                        k = read(fd, line + n, sizeof(line) - 1 - n);
                        if (k <= 0)
                                break;
                        n += (size_t) k;
                }
                line[n] = 0;
                n = strcspn(line, "\r\n");
                if (n > 0 && n < sizeof(line) - 1)
                        p = parse_phase(line, n, &seconds, &arg);
                if (!p) {
                        static const char bad[] = "error: usage PHASE[:SECONDS[:ARG]]\n";

                        (void) send_all(fd, bad, sizeof(bad) - 1, now_ms() + 2000);
                        close(fd);
                        continue;
                }
                char reply[160];
                int len = snprintf(reply, sizeof(reply), "started %s\n", p->name);

                (void) send_all(fd, reply, (size_t) len, now_ms() + 2000);
                run_phase(p, seconds, arg, fd);
                len = snprintf(reply, sizeof(reply), "done %s\n", p->name);
                (void) send_all(fd, reply, (size_t) len, now_ms() + 2000);
                close(fd);
        }
}

/* The phases named by zvm.hostile= on the kernel command line. */
static void run_cmdline_phases(void) {
        char buf[4096], *s, *end;
        ssize_t n = -1;
        int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);

        if (fd >= 0) {
                n = read(fd, buf, sizeof(buf) - 1);
                close(fd);
        }
        buf[n > 0 ? n : 0] = 0;
        s = strstr(buf, "zvm.hostile=");
        if (!s)
                return;
        s += strlen("zvm.hostile=");
        end = s + strcspn(s, " \n");
        while (s < end) {
                size_t len = strcspn(s, ",");
                unsigned seconds, arg;
                const Phase *p;

                if (s + len > end)
                        len = (size_t) (end - s);
                p = parse_phase(s, len, &seconds, &arg);
                if (p)
                        run_phase(p, seconds, arg, -1);
                else
                        say("ignoring unknown phase '%.*s' on the command line", (int) len, s);
                s += len + 1;
        }
}

int main(int argc, char **argv) {
        (void) signal(SIGPIPE, SIG_IGN);
        for (int i = 1; i < argc; i++) {
                unsigned seconds, arg;
                const Phase *p = parse_phase(argv[i], strlen(argv[i]), &seconds, &arg);

                if (!p) {
                        say("unknown phase '%s'; usage: hostile-guest [PHASE[:SECONDS[:ARG]]]...", argv[i]);
                        return 2;
                }
                run_phase(p, seconds, arg, -1);
        }
        if (argc == 1)
                run_cmdline_phases();
        if (serve_control() < 0) {
                /* busybox init respawns us: do not make it spin. */
                sleep_ms(10000);
                return 1;
        }
        return 0;
}
