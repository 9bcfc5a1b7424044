/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vsock connector.
 *
 * (a) The hybrid handshake against a peer of our own on a unix socket:
 *     OK, refusal, silence, garbage, split replies, data right after the
 *     reply line, a full listen backlog; plus argument and path checks and
 *     the kernel path's failure without a vsock transport.
 * (b) End to end: a real microVM (TCG) with vhost-device-vsock, whose root
 *     image has tests/helpers/vsock-echo as /sbin/init. Host→guest through
 *     vsock_connect(), guest→host through vsock_listen() on
 *     vsock_hybrid_listen_path().
 *
 * (b) needs the guest artifacts (ZVM_BUILD_DIR/guest, else this build's
 * guest/, else the source tree's build/guest/), the musl-built helper,
 * qemu-system-x86_64, vhost-device-vsock and mkfs.ext4; without them its
 * tests are reported as skipped, and ZVM_MUST_BOOT=1 makes that a failure.
 * Every wait is bounded; a watchdog ends the test after 100 s whatever
 * happens, killing what it started.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "fd-util.h"
#include "fileio.h"
#include "string-util.h"
#include "tap.h"
#include "test-children.h"
#include "tsc.h"
#include "vsock.h"
#include "zvm-config.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

#define GUEST_ECHO_PORT 5000U
#define HOST_PORT 6000U
#define GUEST_MESSAGE "hello-from-guest"
#define BOOT_TIMEOUT_MS 60000
#define STEP_TIMEOUT_MS 10000
#define WATCHDOG_S 100

extern char **environ;

static char tmpdir[] = "/tmp/test-vsock.XXXXXX";

static uint64_t now_ms(void) {
        struct timespec ts;

        assert_se(clock_gettime(CLOCK_MONOTONIC, &ts) == 0);
        return (uint64_t) ts.tv_sec * 1000ULL + (uint64_t) ts.tv_nsec / 1000000ULL;
}

static char *tmp_path(const char *name) {
        char *p = strjoin(tmpdir, "/", name);

        assert_se(p);
        return p;
}

static void cleanup(void) {
        test_children_cleanup(tmpdir, "/tmp/test-vsock.");
}

static void on_watchdog(int sig) {
        static const char msg[] = "Bail out! watchdog: test-vsock took longer than 100 s\n";

        (void) !write(STDOUT_FILENO, msg, sizeof(msg) - 1);
        /* Not async-signal-safe in theory (waitpid, system); we are about to
         * exit anyway and leaving a QEMU behind is worse. */
        cleanup();
        _exit(EXIT_FAILURE);
}

/* Waits for pid to exit, at most timeout_ms. Returns the wait status, or
 * -ETIMEDOUT (the child is then left running). */
static int wait_pid_bounded(pid_t pid, int timeout_ms) {
        _cleanup_close_ int pfd = (int) syscall(SYS_pidfd_open, pid, 0);
        int status;

        if (pfd >= 0) {
                struct pollfd p = { .fd = pfd, .events = POLLIN };

                if (poll(&p, 1, timeout_ms) == 0)
                        return -ETIMEDOUT;
        }
        if (waitpid(pid, &status, 0) != pid)
                return -errno;
        test_child_forget(pid);
        return status;
}

static void stop_child(pid_t pid) {
        if (pid <= 0)
                return;
        (void) kill(pid, SIGKILL);
        (void) wait_pid_bounded(pid, STEP_TIMEOUT_MS);
}

/* ---- (a) the handshake against our own peer -------------------------------- */

typedef enum PeerMode {
        PEER_OK_THEN_ECHO,      /* "OK 1234\n" + what we received, in one write, then echo */
        PEER_SPLIT_OK,          /* "O", "K 12", "34\n" with pauses, then echo */
        PEER_CLOSE,             /* close after the request */
        PEER_SILENT,            /* read the request, say nothing */
        PEER_REPLY,             /* send `reply`, then say nothing */
        PEER_REPLY_NUL,         /* send `reply`, a NUL byte, "\n", then say nothing */
} PeerMode;

static int listen_unix(const char *path, int backlog) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        assert_se(strlen(path) < sizeof(sa.sun_path));
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_se(fd >= 0);
        assert_se(bind(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0);
        assert_se(listen(fd, backlog) == 0);
        return fd;
}

/* Reads until the peer closes (bounded). */
static void drain_until_eof(int fd) {
        char buf[4096];

        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };

                if (poll(&p, 1, STEP_TIMEOUT_MS) <= 0 || read(fd, buf, sizeof(buf)) <= 0)
                        return;
        }
}

static void echo_until_eof(int fd) {
        char buf[4096];

        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                ssize_t n;

                if (poll(&p, 1, STEP_TIMEOUT_MS) <= 0)
                        return;
                n = read(fd, buf, sizeof(buf));
                if (n <= 0 || loop_write(fd, buf, (size_t) n, false) < 0)
                        return;
        }
}

/* A child that accepts one connection on lfd and plays `mode`. */
static pid_t peer_spawn(int lfd, PeerMode mode, const char *reply) {
        pid_t pid = fork();

        assert_se(pid >= 0);
        if (pid > 0) {
                test_child_track(pid);
                return pid;
        }

        (void) signal(SIGPIPE, SIG_IGN);
        {
                struct pollfd p = { .fd = lfd, .events = POLLIN };
                char req[128], out[256];
                size_t n = 0;
                int fd;

                if (poll(&p, 1, STEP_TIMEOUT_MS) <= 0)
                        _exit(10);
                fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                        _exit(11);
                /* Byte by byte, so that nothing after the request is eaten. */
                while (n < sizeof(req) - 1) {
                        p = (struct pollfd) { .fd = fd, .events = POLLIN };
                        if (poll(&p, 1, STEP_TIMEOUT_MS) <= 0 || read(fd, req + n, 1) != 1)
                                _exit(12);
                        if (req[n++] == '\n')
                                break;
                }
                req[n] = '\0';

                switch (mode) {
                case PEER_OK_THEN_ECHO:
                        /* The request goes back as stream data right behind
                         * the reply line: the client must see it intact. */
                        snprintf(out, sizeof(out), "OK 1234\n%s", req);
                        if (loop_write(fd, out, strlen(out), false) < 0)
                                _exit(13);
                        echo_until_eof(fd);
                        break;
                case PEER_SPLIT_OK: {
                        static const char *const parts[] = { "O", "K 12", "34\n" };
                        struct timespec pause = { .tv_nsec = 50 * 1000 * 1000 };

                        for (size_t i = 0; i < ELEMENTSOF(parts); i++) {
                                (void) nanosleep(&pause, NULL); /* the peer's pacing, not a wait */
                                if (loop_write(fd, parts[i], strlen(parts[i]), false) < 0)
                                        _exit(13);
                        }
                        echo_until_eof(fd);
                        break;
                }
                case PEER_CLOSE:
                        break;
                case PEER_SILENT:
                        drain_until_eof(fd);
                        break;
                case PEER_REPLY:
                case PEER_REPLY_NUL:
                        if (loop_write(fd, reply, strlen(reply), false) < 0 ||
                            (mode == PEER_REPLY_NUL && loop_write(fd, "\0\n", 2, false) < 0))
                                _exit(13);
                        drain_until_eof(fd);
                        break;
                }
                close(fd);
                _exit(0);
        }
}

/* Reads exactly n bytes within timeout_ms. */
static int read_exact_bounded(int fd, void *buf, size_t n, int timeout_ms) {
        uint64_t deadline = now_ms() + (uint64_t) timeout_ms;
        size_t got = 0;

        while (got < n) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                uint64_t t = now_ms();
                ssize_t k;

                if (t >= deadline || poll(&p, 1, (int) (deadline - t)) <= 0)
                        return -ETIMEDOUT;
                k = read(fd, (char *) buf + got, n - got);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -EPIPE;
                got += (size_t) k;
        }
        return 0;
}

static void test_hybrid_handshake(void) {
        _cleanup_free_ char *path = tmp_path("dev.sock");
        VsockTarget t = { .cid = 3, .uds_path = path };
        _cleanup_close_ int lfd = listen_unix(path, 8);
        char buf[64];
        uint64_t t0, dt;
        pid_t pid;
        int fd = -EBADF, r;

        diag("hybrid handshake against our own peer");

        /* OK, with stream data right behind the reply line. */
        pid = peer_spawn(lfd, PEER_OK_THEN_ECHO, NULL);
        r = vsock_connect(&t, 5000, STEP_TIMEOUT_MS, &fd);
        is_int(r, 0, "OK: connected");
        if (r >= 0) {
                ok(!(fcntl(fd, F_GETFL) & O_NONBLOCK) && (fcntl(fd, F_GETFD) & FD_CLOEXEC),
                   "returned fd is blocking and O_CLOEXEC");
                memset(buf, 0, sizeof(buf));
                is_int(read_exact_bounded(fd, buf, strlen("CONNECT 5000\n"), STEP_TIMEOUT_MS), 0,
                       "data behind the reply line not lost");
                is_str(buf, "CONNECT 5000\n", "request was exactly 'CONNECT 5000\\n'");
                assert_se(loop_write(fd, "ping", 4, false) == 0);
                memset(buf, 0, sizeof(buf));
                is_int(read_exact_bounded(fd, buf, 4, STEP_TIMEOUT_MS), 0, "stream works after the handshake");
                is_str(buf, "ping", "echoed");
                fd = safe_close(fd);
        }
        is_int(wait_pid_bounded(pid, STEP_TIMEOUT_MS), 0, "peer done");

        /* The reply trickling in. */
        pid = peer_spawn(lfd, PEER_SPLIT_OK, NULL);
        r = vsock_connect(&t, 42, STEP_TIMEOUT_MS, &fd);
        is_int(r, 0, "reply split over three writes: connected");
        if (r >= 0) {
                assert_se(loop_write(fd, "x", 1, false) == 0);
                is_int(read_exact_bounded(fd, buf, 1, STEP_TIMEOUT_MS), 0, "stream works");
                fd = safe_close(fd);
        }
        (void) wait_pid_bounded(pid, STEP_TIMEOUT_MS);

        /* Refusal: the device closes the connection. */
        pid = peer_spawn(lfd, PEER_CLOSE, NULL);
        is_int(vsock_connect(&t, 5000, STEP_TIMEOUT_MS, &fd), -ECONNREFUSED, "EOF instead of a reply: -ECONNREFUSED");
        (void) wait_pid_bounded(pid, STEP_TIMEOUT_MS);

        /* Silence: bounded. */
        pid = peer_spawn(lfd, PEER_SILENT, NULL);
        t0 = now_ms();
        r = vsock_connect(&t, 5000, 300, &fd);
        dt = now_ms() - t0;
        is_int(r, -ETIMEDOUT, "no reply: -ETIMEDOUT");
        ok(dt >= 290 && dt < 1500, "after the timeout (%llu ms for 300 ms)", (unsigned long long) dt);
        (void) wait_pid_bounded(pid, STEP_TIMEOUT_MS);

        /* Garbage. */
        static const struct {
                const char *reply;
                int expect;
                const char *what;
        } cases[] = {
                { "NOPE\n",                     -ECONNREFUSED, "a line other than OK" },
                { "OK\n",                       -ECONNREFUSED, "OK without a number" },
                { "OK abc\n",                   -ECONNREFUSED, "OK with garbage" },
                { "OK 12 34\n",                 -ECONNREFUSED, "OK with two numbers" },
                { "ok 5000\n",                  -ECONNREFUSED, "lower-case ok" },
                { "OK -1\n",                    -ECONNREFUSED, "negative number" },
                { "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                                                -ECONNREFUSED, "a long line without a newline" },
                { "OK 5000",                    -ETIMEDOUT,    "OK without its newline, then silence" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                pid = peer_spawn(lfd, PEER_REPLY, cases[i].reply);
                t0 = now_ms();
                r = vsock_connect(&t, 5000, 300, &fd);
                is_int(r, cases[i].expect, "%s", cases[i].what);
                ok(now_ms() - t0 < 1500, "  bounded (%llu ms)", (unsigned long long) (now_ms() - t0));
                if (r >= 0)
                        fd = safe_close(fd);
                (void) wait_pid_bounded(pid, STEP_TIMEOUT_MS);
        }

        /* Found by tests/fuzz/fuzz-vsock: a NUL ended the line for the
         * parser, so "OK 5000\0\n" (or "OK 5000\0anything\n") passed. */
        pid = peer_spawn(lfd, PEER_REPLY_NUL, "OK 5000");
        r = vsock_connect(&t, 5000, 300, &fd);
        is_int(r, -ECONNREFUSED, "OK with a NUL byte before the newline");
        if (r >= 0)
                fd = safe_close(fd);
        (void) wait_pid_bounded(pid, STEP_TIMEOUT_MS);
}

static void test_hybrid_errors(void) {
        _cleanup_free_ char *path = tmp_path("full.sock"), *lp = NULL;
        _cleanup_close_ int lfd = -EBADF, filler = -EBADF, lfd2 = -EBADF;
        VsockTarget t = { .uds_path = path };
        char longpath[200];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        uint64_t t0, dt;
        int fd = -EBADF, r;

        diag("hybrid: paths, a full backlog, listening");

        t.uds_path = "/nonexistent/vsock.sock";
        is_int(vsock_connect(&t, 1, 1000, &fd), -ENOENT, "missing device socket: -ENOENT");
        memset(longpath, 'x', sizeof(longpath) - 1);
        longpath[sizeof(longpath) - 1] = '\0';
        t.uds_path = longpath;
        is_int(vsock_connect(&t, 1, 1000, &fd), -ENAMETOOLONG, "over-long device path: -ENAMETOOLONG");
        is_int(vsock_connect(NULL, 1, 1000, &fd), -EINVAL, "NULL target: -EINVAL");
        t.uds_path = path;
        is_int(vsock_connect(&t, 1, -1, &fd), -EINVAL, "negative timeout: -EINVAL");

        /* A listener that never accepts, with its backlog full: connect()
         * itself would block, and must not for longer than the bound. */
        lfd = listen_unix(path, 0);
        filler = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        strcpy(sa.sun_path, path);
        assert_se(connect(filler, (struct sockaddr *) &sa, sizeof(sa)) == 0);
        t0 = now_ms();
        r = vsock_connect(&t, 5000, 300, &fd);
        dt = now_ms() - t0;
        is_int(r, -ETIMEDOUT, "full backlog: -ETIMEDOUT");
        ok(dt >= 250 && dt < 1500, "after the timeout (%llu ms for 300 ms)", (unsigned long long) dt);

        is_int(vsock_hybrid_listen_path("/run/zvm/vms/100/vsock.sock", 6000, &lp), 0, "listen path");
        is_str(lp, "/run/zvm/vms/100/vsock.sock_6000", "listen path is <uds>_<port>");
        lp = mfree(lp);
        is_int(vsock_hybrid_listen_path(longpath, 6000, &lp), -ENAMETOOLONG, "over-long listen path: -ENAMETOOLONG");
        memset(longpath, 'y', sizeof(sa.sun_path) - 3);
        longpath[sizeof(sa.sun_path) - 3] = '\0';
        is_int(vsock_hybrid_listen_path(longpath, 6, &lp), 0, "listen path of exactly 107 bytes fits");
        lp = mfree(lp);
        is_int(vsock_hybrid_listen_path(longpath, 60, &lp), -ENAMETOOLONG, "108 bytes do not");

        is_int(vsock_listen(&t, 7000, 4, &lfd2), 0, "vsock_listen (hybrid)");
        lp = tmp_path("full.sock_7000");
        {
                struct stat st;

                ok(stat(lp, &st) == 0 && S_ISSOCK(st.st_mode), "socket at <uds>_7000");
        }
        is_int(vsock_listen(&t, 7000, 4, &fd), -EADDRINUSE, "second listener on the same port: -EADDRINUSE");
        is_int(vsock_listen(&t, 7000, 0, &fd), -EINVAL, "backlog 0: -EINVAL");
}

static void test_kernel_path(void) {
        VsockTarget t = { .cid = 3 };
        uint64_t t0 = now_ms(), dt;
        int fd = -EBADF, r;

        diag("kernel AF_VSOCK path (this host has no vsock transport for CID 3)");
        r = vsock_connect(&t, 5000, 2000, &fd);
        dt = now_ms() - t0;
        if (r >= 0) {
                /* A host with a real guest at CID 3 listening on 5000. */
                diag("kernel vsock connected to CID 3 port 5000: a real guest is there");
                fd = safe_close(fd);
        }
        ok(r != -EINVAL, "kernel connect returns a real outcome (%d: %s)", r, r < 0 ? strerror(-r) : "connected");
        ok(dt < 3000, "within the bound (%llu ms for 2000 ms)", (unsigned long long) dt);
}

/* ---- (a') the same handshake, asynchronously -------------------------------- */

/* Drives the state machine with poll() as an event loop would, up to
 * timeout_ms. Records the longest single start/step call: the state machine
 * must never wait itself. */
static int drive_async(const VsockTarget *t, unsigned port, int timeout_ms, int *ret_fd, uint64_t *ret_max_call_ms) {
        _cleanup_(vsock_connect_freep) VsockConnect *c = NULL;
        uint64_t deadline = now_ms() + (uint64_t) timeout_ms, t0, max_call;
        int fd = -EBADF, r;

        t0 = now_ms();
        r = vsock_connect_start(t, port, timeout_ms, &c);
        max_call = now_ms() - t0;
        while (r >= 0) {
                struct pollfd p = { .fd = vsock_connect_fd(c), .events = vsock_connect_events(c) };
                uint64_t n = now_ms();

                if (n >= deadline) {
                        r = -ETIMEDOUT;
                        break;
                }
                if (poll(&p, 1, (int) (deadline - n)) < 0 && errno != EINTR) {
                        r = -errno;
                        break;
                }
                t0 = now_ms();
                r = vsock_connect_step(c, &fd);
                max_call = MAX(max_call, now_ms() - t0);
                if (r > 0)
                        break;
        }
        if (ret_max_call_ms)
                *ret_max_call_ms = max_call;
        if (r > 0) {
                *ret_fd = fd;
                return 0;
        }
        return r;
}

static void test_hybrid_async(void) {
        _cleanup_free_ char *path = tmp_path("async.sock"), *full = tmp_path("async-full.sock");
        VsockTarget t = { .uds_path = path };
        _cleanup_close_ int lfd = listen_unix(path, 8), flfd = -EBADF, filler = -EBADF;
        _cleanup_(vsock_connect_freep) VsockConnect *c = NULL;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        uint64_t max_call = 0, t0;
        char buf[64];
        pid_t pid;
        int fd = -EBADF, r;

        diag("hybrid handshake driven as an event loop would (vsock_connect_start/step)");

        pid = peer_spawn(lfd, PEER_OK_THEN_ECHO, NULL);
        r = drive_async(&t, 5000, STEP_TIMEOUT_MS, &fd, &max_call);
        is_int(r, 0, "async: connected");
        ok(max_call < 50, "async: no call waited (longest %llu ms)", (unsigned long long) max_call);
        if (r >= 0) {
                ok((fcntl(fd, F_GETFL) & O_NONBLOCK) && (fcntl(fd, F_GETFD) & FD_CLOEXEC),
                   "async: fd is non-blocking and O_CLOEXEC");
                memset(buf, 0, sizeof(buf));
                is_int(read_exact_bounded(fd, buf, strlen("CONNECT 5000\n"), STEP_TIMEOUT_MS), 0,
                       "async: data behind the reply line not lost");
                is_str(buf, "CONNECT 5000\n", "async: request was exactly 'CONNECT 5000\\n'");
                fd = safe_close(fd);
        }
        (void) wait_pid_bounded(pid, STEP_TIMEOUT_MS);

        pid = peer_spawn(lfd, PEER_SPLIT_OK, NULL);
        r = drive_async(&t, 42, STEP_TIMEOUT_MS, &fd, &max_call);
        is_int(r, 0, "async: reply split over three writes: connected");
        ok(max_call < 50, "async: no call waited for the trickle (longest %llu ms)", (unsigned long long) max_call);
        fd = safe_close(fd);
        (void) wait_pid_bounded(pid, STEP_TIMEOUT_MS);

        pid = peer_spawn(lfd, PEER_CLOSE, NULL);
        is_int(drive_async(&t, 5000, STEP_TIMEOUT_MS, &fd, NULL), -ECONNREFUSED, "async: EOF instead of a reply: -ECONNREFUSED");
        (void) wait_pid_bounded(pid, STEP_TIMEOUT_MS);

        /* A peer that stalls the handshake: the state machine waits for
         * readability and hands the deadline to its caller. */
        pid = peer_spawn(lfd, PEER_SILENT, NULL);
        assert_se(vsock_connect_start(&t, 5000, 1000, &c) == 0);
        {
                bool never_waited = true, all_zero = true;

                for (int i = 0; i < 5; i++) {
                        struct pollfd p = { .fd = vsock_connect_fd(c), .events = vsock_connect_events(c) };

                        (void) poll(&p, 1, 60);
                        t0 = now_ms();
                        r = vsock_connect_step(c, &fd);
                        never_waited = never_waited && now_ms() - t0 < 50;
                        all_zero = all_zero && r == 0;
                }
                ok(all_zero, "async: a stalled handshake stays pending (step returns 0)");
                ok(never_waited, "async: and no step waits for it");
                is_int(vsock_connect_events(c), POLLIN, "async: waiting to read the reply");
        }
        c = vsock_connect_free(c);
        (void) wait_pid_bounded(pid, STEP_TIMEOUT_MS);

        pid = peer_spawn(lfd, PEER_SILENT, NULL);
        t0 = now_ms();
        is_int(drive_async(&t, 5000, 300, &fd, &max_call), -ETIMEDOUT, "async: the caller's deadline ends a stall");
        ok(now_ms() - t0 < 1500 && max_call < 50, "  bounded (%llu ms), no call waited", (unsigned long long) (now_ms() - t0));
        (void) wait_pid_bounded(pid, STEP_TIMEOUT_MS);

        pid = peer_spawn(lfd, PEER_REPLY,
                         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        is_int(drive_async(&t, 5000, STEP_TIMEOUT_MS, &fd, NULL), -ECONNREFUSED,
               "async: a reply longer than %u bytes: -ECONNREFUSED", VSOCK_HYBRID_REPLY_MAX);
        (void) wait_pid_bounded(pid, STEP_TIMEOUT_MS);

        /* A device that accepts nothing more: nothing to wait for without
         * blocking, so start says so at once. */
        flfd = listen_unix(full, 0);
        filler = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        strcpy(sa.sun_path, full);
        assert_se(connect(filler, (struct sockaddr *) &sa, sizeof(sa)) == 0);
        t.uds_path = full;
        t0 = now_ms();
        is_int(vsock_connect_start(&t, 5000, 1000, &c), -EAGAIN, "async: full backlog: -EAGAIN");
        ok(now_ms() - t0 < 50, "  at once (%llu ms)", (unsigned long long) (now_ms() - t0));
        ok(!c, "  nothing returned");
        t.uds_path = "/nonexistent/vsock.sock";
        is_int(vsock_connect_start(&t, 1, 1000, &c), -ENOENT, "async: missing device socket: -ENOENT");
        is_int(vsock_connect_start(NULL, 1, 1000, &c), -EINVAL, "async: NULL target: -EINVAL");

        /* Kernel path: pending or failed, never waiting. */
        t = (VsockTarget) { .cid = 3 };
        t0 = now_ms();
        r = drive_async(&t, 5000, 2000, &fd, &max_call);
        ok(r != -EINVAL && max_call < 50, "async kernel path: a real outcome (%s), no call waited (%llu ms)",
           r < 0 ? strerror(-r) : "connected", (unsigned long long) max_call);
        if (r >= 0)
                fd = safe_close(fd);
}

/* ---- (b) end to end ------------------------------------------------------- */

static bool is_file(const char *p) {
        struct stat st;

        return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* The first of ZVM_BUILD_DIR/guest, <this build>/guest, <source>/build/guest
 * that has both vmlinux and initrd.img. */
static char *find_guest_dir(void) {
        const char *bases[] = { getenv("ZVM_BUILD_DIR"), ZVM_BUILD_ROOT, ZVM_SOURCE_ROOT "/build" };

        for (size_t i = 0; i < ELEMENTSOF(bases); i++) {
                _cleanup_free_ char *g = NULL, *k = NULL, *ird = NULL;

                if (isempty(bases[i]))
                        continue;
                g = strjoin(bases[i], "/guest");
                k = strjoin(g, "/vmlinux");
                ird = strjoin(g, "/initrd.img");
                assert_se(g && k && ird);
                if (is_file(k) && is_file(ird))
                        return TAKE_PTR(g);
        }
        return NULL;
}

static pid_t spawn(char *const argv[], const char *log) {
        posix_spawn_file_actions_t fa;
        pid_t pid;
        int r;

        assert_se(posix_spawn_file_actions_init(&fa) == 0);
        assert_se(posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) == 0);
        assert_se(posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644) == 0);
        assert_se(posix_spawn_file_actions_adddup2(&fa, 1, 2) == 0);
        r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return -r;
        test_child_track(pid);
        return pid;
}

static int run(char *const argv[], const char *log, int timeout_ms) {
        pid_t pid = spawn(argv, log);
        int status;

        if (pid < 0)
                return pid;
        status = wait_pid_bounded(pid, timeout_ms);
        if (status < 0) {
                stop_child(pid);
                return status;
        }
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

static void diag_file_tail(const char *path, size_t max) {
        _cleanup_free_ char *s = NULL;
        size_t n = 0;

        if (read_full_file(path, &s, &n, 0) < 0) {
                diag("(%s unreadable)", path);
                return;
        }
        diag("--- last bytes of %s ---\n%s", path, s + (n > max ? n - max : 0));
}

/* Waits until `needle` shows up in `path` (written by QEMU), or pidfd (the
 * QEMU) exits, or timeout_ms passes. Woken by inotify on the directory;
 * the 100 ms cap only guards against a missed event. */
static bool wait_for_text(int inotify_fd, int pidfd, const char *path, const char *needle, int timeout_ms) {
        uint64_t deadline = now_ms() + (uint64_t) timeout_ms;

        for (;;) {
                _cleanup_free_ char *s = NULL;
                struct pollfd p[2] = {
                        { .fd = inotify_fd, .events = POLLIN },
                        { .fd = pidfd, .events = POLLIN },
                };
                uint64_t t;

                if (read_full_file(path, &s, NULL, 0) >= 0 && strstr(s, needle))
                        return true;
                t = now_ms();
                if (t >= deadline)
                        return false;
                if (poll(p, 2, (int) MIN(deadline - t, (uint64_t) 100)) < 0 && errno != EINTR)
                        return false;
                if (p[0].revents & POLLIN) {
                        char ev[4096];

                        while (read(inotify_fd, ev, sizeof(ev)) > 0)
                                ;
                }
                if (p[1].revents & POLLIN) {
                        s = mfree(s);
                        /* Exited: one last look at what it wrote. */
                        return read_full_file(path, &s, NULL, 0) >= 0 && strstr(s, needle);
                }
        }
}

/* Until `size` of a pattern went through fd and came back, within
 * timeout_ms; writing and reading interleaved, so that neither side's
 * buffers fill up and stall the echo. */
static int echo_roundtrip(int fd, size_t size, uint8_t seed, int timeout_ms) {
        _cleanup_free_ uint8_t *out = malloc(size), *in = malloc(size);
        uint64_t deadline = now_ms() + (uint64_t) timeout_ms;
        size_t sent = 0, got = 0;

        assert_se(out && in);
        for (size_t i = 0; i < size; i++)
                out[i] = (uint8_t) (i * 31 + seed + i / 253);
        assert_se(fd_nonblock(fd, true) == 0);

        while (got < size) {
                struct pollfd p = { .fd = fd, .events = POLLIN | (sent < size ? POLLOUT : 0) };
                uint64_t t = now_ms();
                ssize_t k;

                if (t >= deadline)
                        return -ETIMEDOUT;
                if (poll(&p, 1, (int) (deadline - t)) <= 0)
                        continue;
                if ((p.revents & POLLOUT) && sent < size) {
                        k = send(fd, out + sent, MIN(size - sent, (size_t) 16384), MSG_NOSIGNAL);
                        if (k < 0 && errno != EAGAIN && errno != EINTR)
                                return -errno;
                        if (k > 0)
                                sent += (size_t) k;
                }
                if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
                        k = read(fd, in + got, size - got);
                        if (k == 0)
                                return -EPIPE;
                        if (k < 0 && errno != EAGAIN && errno != EINTR)
                                return -errno;
                        if (k > 0)
                                got += (size_t) k;
                }
        }
        return memcmp(in, out, size) == 0 ? 0 : -EBADMSG;
}

typedef struct E2e {
        char *qemu, *vhost, *mkfs, *guest_dir, *helper;
} E2e;

static void e2e_done(E2e *e) {
        free(e->qemu);
        free(e->vhost);
        free(e->mkfs);
        free(e->guest_dir);
        free(e->helper);
}

static void skip_or_fail(const char *reason) {
        if (streq_ptr(getenv("ZVM_MUST_BOOT"), "1"))
                ok(false, "cannot run the end-to-end test (ZVM_MUST_BOOT=1): %s", reason);
        else
                skip(1, "end-to-end: %s", reason);
}

static void test_end_to_end(void) {
        _cleanup_free_ char *stage = tmp_path("stage"), *img = tmp_path("root.img"), *vhost_sock = tmp_path("vhost.sock"),
                            *uds = tmp_path("vsock.sock"), *console = tmp_path("console.log"), *log = tmp_path("e2e.log"),
                            *init = NULL, *append = NULL, *serial = NULL, *drive = NULL, *chardev = NULL, *kernel = NULL,
                            *initrd = NULL, *a_sock = NULL, *a_uds = NULL, *mkfs_d = NULL;
        _cleanup_close_ int ino = -EBADF, qemu_pidfd = -EBADF, vhost_pidfd = -EBADF, host_lfd = -EBADF, fd = -EBADF,
                            fd2 = -EBADF, gfd = -EBADF;
        _cleanup_(e2e_done) E2e e = {};
        VsockTarget t = { .cid = 3 };
        pid_t vhost_pid = -1, qemu_pid = -1;
        uint64_t khz = 0, t0;
        char buf[256];
        int r;

        diag("end to end: microVM + vhost-device-vsock + vsock-echo as PID 1");

        e.guest_dir = find_guest_dir();
        e.helper = strjoin(ZVM_BUILD_ROOT, "/tests/helpers/vsock-echo");
        e.qemu = find_executable(getenv("ZVM_QEMU") ?: "qemu-system-x86_64");
        e.vhost = find_executable("vhost-device-vsock");
        e.mkfs = find_executable("mkfs.ext4");
        if (!e.guest_dir) {
                skip_or_fail("guest artifacts (vmlinux, initrd.img) missing; run scripts/build-guest");
                return;
        }
        if (!is_file(e.helper)) {
                skip_or_fail("tests/helpers/vsock-echo not built (musl-gcc missing?)");
                return;
        }
        if (!e.qemu || !e.vhost || !e.mkfs) {
                skip_or_fail("qemu-system-x86_64, vhost-device-vsock or mkfs.ext4 not installed");
                return;
        }
        diag("guest artifacts: %s", e.guest_dir);

        /* A root image holding only our helper as /sbin/init, plus the mount
         * points the initrd moves its API filesystems to. */
        init = strjoin(stage, "/sbin/init");
        assert_se(mkdir(stage, 0755) == 0);
        {
                static const char *const dirs[] = { "sbin", "dev", "proc", "sys", "run" };
                _cleanup_free_ char *bin = NULL;
                size_t n;

                for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                        _cleanup_free_ char *d = strjoin(stage, "/", dirs[i]);
                        assert_se(d && mkdir(d, 0755) == 0);
                }
                _cleanup_close_ int o = -EBADF;

                assert_se(read_full_file(e.helper, &bin, &n, 0) == 0);
                o = open(init, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
                assert_se(o >= 0 && loop_write(o, bin, n, false) == 0);
        }
        mkfs_d = strdup(stage);
        {
                char *argv[] = { e.mkfs, (char *) "-q", (char *) "-F", (char *) "-L", (char *) "rootfs",
                                 (char *) "-d", mkfs_d, img, (char *) "16M", NULL };

                r = run(argv, log, STEP_TIMEOUT_MS * 3);
                is_int(r, 0, "mkfs.ext4 -d built the test root image");
                if (r < 0) {
                        diag_file_tail(log, 2000);
                        return;
                }
        }

        /* Guest→host: listen before the guest boots, it connects at once. */
        t.uds_path = uds;
        is_int(vsock_listen(&t, HOST_PORT, 4, &host_lfd), 0, "listening on <uds>_%u for the guest", HOST_PORT);

        ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        assert_se(ino >= 0);
        assert_se(inotify_add_watch(ino, tmpdir, IN_CREATE | IN_MODIFY | IN_MOVED_TO) >= 0);

        a_sock = strjoin("--socket=", vhost_sock);
        a_uds = strjoin("--uds-path=", uds);
        {
                char *argv[] = { e.vhost, (char *) "--guest-cid=3", a_sock, a_uds, NULL };

                vhost_pid = spawn(argv, log);
                ok(vhost_pid > 0, "vhost-device-vsock started");
                if (vhost_pid < 0)
                        return;
        }
        vhost_pidfd = (int) syscall(SYS_pidfd_open, vhost_pid, 0);
        assert_se(vhost_pidfd >= 0);
        /* Its sockets appear when it is ready for QEMU. */
        {
                uint64_t deadline = now_ms() + 5000;
                bool ready = false;

                for (;;) {
                        struct stat st;
                        struct pollfd p[2] = { { .fd = ino, .events = POLLIN }, { .fd = vhost_pidfd, .events = POLLIN } };
                        char ev[4096];
                        uint64_t n = now_ms();

                        if (stat(vhost_sock, &st) == 0 && S_ISSOCK(st.st_mode) && stat(uds, &st) == 0 && S_ISSOCK(st.st_mode)) {
                                ready = true;
                                break;
                        }
                        if (n >= deadline)
                                break;
                        (void) poll(p, 2, (int) MIN(deadline - n, (uint64_t) 100));
                        if (p[1].revents & POLLIN)
                                break;
                        while (read(ino, ev, sizeof(ev)) > 0)
                                ;
                }
                ok(ready, "vhost-device-vsock sockets appeared (bounded, 5 s)");
                if (!ready)
                        goto finish;
        }

        r = tsc_khz_measure(&khz);
        if (r < 0)
                diag("no TSC frequency (%s): booting without tsc_early_khz=", strerror(-r));
        if (khz > 0)
                assert_se(asprintf(&append,
                                   "console=ttyS0 panic=-1 tsc_early_khz=%llu root=LABEL=rootfs ro zvm.init=/sbin/init -- %u --connect-host %u %s",
                                   (unsigned long long) khz, GUEST_ECHO_PORT, HOST_PORT, GUEST_MESSAGE) > 0);
        else
                assert_se(asprintf(&append, "console=ttyS0 panic=-1 root=LABEL=rootfs ro zvm.init=/sbin/init -- %u --connect-host %u %s",
                                   GUEST_ECHO_PORT, HOST_PORT, GUEST_MESSAGE) > 0);
        serial = strjoin("file:", console);
        drive = strjoin("id=d0,file=", img, ",format=raw,if=none,readonly=on");
        chardev = strjoin("socket,id=vs0,path=", vhost_sock);
        kernel = strjoin(e.guest_dir, "/vmlinux");
        initrd = strjoin(e.guest_dir, "/initrd.img");
        {
                char *argv[] = {
                        e.qemu,
                        (char *) "-M", (char *) "microvm,x-option-roms=off,rtc=on,memory-backend=mem",
                        (char *) "-object", (char *) "memory-backend-memfd,id=mem,size=256M,share=on",
                        (char *) "-accel", (char *) "tcg", (char *) "-cpu", (char *) "max",
                        (char *) "-m", (char *) "256", (char *) "-smp", (char *) "1",
                        (char *) "-nodefaults", (char *) "-no-user-config", (char *) "-display", (char *) "none",
                        (char *) "-no-reboot", (char *) "-bios", (char *) "/usr/share/qemu/qboot.rom",
                        (char *) "-serial", serial, (char *) "-kernel", kernel, (char *) "-initrd", initrd,
                        (char *) "-append", append,
                        (char *) "-drive", drive, (char *) "-device", (char *) "virtio-blk-device,drive=d0",
                        (char *) "-chardev", chardev, (char *) "-device", (char *) "vhost-user-vsock-device,chardev=vs0",
                        NULL,
                };

                t0 = now_ms();
                qemu_pid = spawn(argv, log);
                ok(qemu_pid > 0, "QEMU started");
                if (qemu_pid < 0)
                        goto finish;
        }
        qemu_pidfd = (int) syscall(SYS_pidfd_open, qemu_pid, 0);
        assert_se(qemu_pidfd >= 0);

        snprintf(buf, sizeof(buf), "vsock-echo: listening on %u", GUEST_ECHO_PORT);
        r = wait_for_text(ino, qemu_pidfd, console, buf, BOOT_TIMEOUT_MS);
        ok(r, "guest echo server up after %.1f s (bounded, %d s)", (double) (now_ms() - t0) / 1000.0,
           BOOT_TIMEOUT_MS / 1000);
        if (!r)
                goto finish;

        /* Host → guest. */
        t0 = now_ms();
        r = vsock_connect(&t, GUEST_ECHO_PORT, STEP_TIMEOUT_MS, &fd);
        is_int(r, 0, "vsock_connect (hybrid) to guest port %u (%llu ms)", GUEST_ECHO_PORT,
               (unsigned long long) (now_ms() - t0));
        if (r >= 0) {
                assert_se(loop_write(fd, "hello vsock\n", 12, false) == 0);
                memset(buf, 0, sizeof(buf));
                is_int(read_exact_bounded(fd, buf, 12, STEP_TIMEOUT_MS), 0, "echo answered");
                is_str(buf, "hello vsock\n", "same bytes back");
                t0 = now_ms();
                is_int(echo_roundtrip(fd, 256 * 1024, 7, STEP_TIMEOUT_MS), 0, "256 KiB through the echo, intact (%llu ms)",
                       (unsigned long long) (now_ms() - t0));
        }
        r = vsock_connect(&t, GUEST_ECHO_PORT, STEP_TIMEOUT_MS, &fd2);
        is_int(r, 0, "a second concurrent connection");
        if (r >= 0 && fd >= 0) {
                char b2[8] = {};

                assert_se(loop_write(fd2, "second", 6, false) == 0);
                is_int(read_exact_bounded(fd2, b2, 6, STEP_TIMEOUT_MS), 0, "second connection echoes");
                is_str(b2, "second", "its own bytes");
                is_int(echo_roundtrip(fd, 1000, 9, STEP_TIMEOUT_MS), 0, "first connection still fine");
        }
        fd = safe_close(fd);
        fd2 = safe_close(fd2);

        t0 = now_ms();
        is_int(vsock_connect(&t, 5999, STEP_TIMEOUT_MS, &fd), -ECONNREFUSED, "guest port without a listener: -ECONNREFUSED");
        ok(now_ms() - t0 < 5000, "refused promptly (%llu ms)", (unsigned long long) (now_ms() - t0));

        /* The same through the state machine, as zvmd drives it. */
        {
                uint64_t max_call = 0;

                r = drive_async(&t, GUEST_ECHO_PORT, STEP_TIMEOUT_MS, &fd, &max_call);
                is_int(r, 0, "async connect (hybrid) to guest port %u, longest call %llu ms", GUEST_ECHO_PORT,
                       (unsigned long long) max_call);
                if (r >= 0)
                        is_int(echo_roundtrip(fd, 64 * 1024, 11, STEP_TIMEOUT_MS), 0, "async connection echoes 64 KiB");
                fd = safe_close(fd);
                is_int(drive_async(&t, 5999, STEP_TIMEOUT_MS, &fd, NULL), -ECONNREFUSED,
                       "async: guest port without a listener: -ECONNREFUSED");
        }

        /* The raw handshake as the device speaks it, for the record. */
        {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                _cleanup_close_ int raw = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                char line[64] = {};
                size_t n = 0;

                strcpy(sa.sun_path, uds);
                assert_se(raw >= 0 && connect(raw, (struct sockaddr *) &sa, sizeof(sa)) == 0);
                assert_se(loop_write(raw, "CONNECT 5000\n", 13, false) == 0);
                while (n < sizeof(line) - 1 && read_exact_bounded(raw, line + n, 1, STEP_TIMEOUT_MS) == 0)
                        if (line[n++] == '\n')
                                break;
                ok(startswith(line, "OK ") && line[n - 1] == '\n', "device replied '%s' to 'CONNECT 5000\\n'", line);
        }

        /* Guest → host: the guest connected to host port 6000 at boot and
         * is waiting for our answer. */
        {
                struct pollfd p = { .fd = host_lfd, .events = POLLIN };
                char msg[64] = {};
                size_t n = 0;

                ok(poll(&p, 1, STEP_TIMEOUT_MS) == 1, "guest-initiated connection arrived on <uds>_%u", HOST_PORT);
                gfd = accept4(host_lfd, NULL, NULL, SOCK_CLOEXEC);
                ok(gfd >= 0, "accepted");
                while (gfd >= 0 && n < sizeof(msg) - 1 && read_exact_bounded(gfd, msg + n, 1, STEP_TIMEOUT_MS) == 0)
                        if (msg[n++] == '\n')
                                break;
                is_str(msg, GUEST_MESSAGE "\n", "guest's message, no handshake bytes in front");
                if (gfd >= 0)
                        assert_se(loop_write(gfd, "pong\n", 5, false) == 0);
                gfd = safe_close(gfd);
                ok(wait_for_text(ino, qemu_pidfd, console, "vsock-echo: reply: pong", STEP_TIMEOUT_MS),
                   "guest got our reply");
        }

finish:
        if (tap_failed > 0) {
                diag_file_tail(console, 3000);
                diag_file_tail(log, 2000);
        }
        stop_child(qemu_pid);
        stop_child(vhost_pid);
}

int main(void) {
        struct sigaction sa = { .sa_handler = on_watchdog };

        (void) signal(SIGPIPE, SIG_IGN);
        assert_se(mkdtemp(tmpdir));
        atexit(cleanup);
        assert_se(sigaction(SIGALRM, &sa, NULL) == 0);
        alarm(WATCHDOG_S);

        test_hybrid_handshake();
        test_hybrid_errors();
        test_kernel_path();
        test_hybrid_async();
        test_end_to_end();
        return done_testing();
}
