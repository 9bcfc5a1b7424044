/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The console relay (daemon/console.c) on a real sd-event loop, with the
 * test in QEMU's place: it accepts on the serial.sock that zvmd made, as
 * QEMU does, and speaks for the guest. Real unix sockets, real files. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "console-log.h"
#include "console.h"
#include "fd-util.h"
#include "socket-util.h"
#include "string-util.h"
#include "tap.h"

#define CAP 4096U

static char tmpdir[] = "/tmp/test-console.XXXXXX";
static sd_event *event;
static VmConsole *console;

static char *tmp_path(const char *name) {
        char *p = strjoin(tmpdir, "/", name);

        assert_se(p);
        return p;
}

static uint64_t size_of(const char *name) {
        _cleanup_free_ char *p = tmp_path(name);
        struct stat st;

        return stat(p, &st) == 0 ? (uint64_t) st.st_size : 0;
}

static uint64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* Runs the loop for ms milliseconds. */
static void spin(unsigned ms) {
        uint64_t end = now_ms() + ms;

        while (now_ms() < end)
                assert_se(sd_event_run(event, 10 * 1000) >= 0);
}

/* Runs the loop until fd has n bytes to read into buf (or ms pass);
 * returns what was read. */
static size_t spin_read(int fd, char *buf, size_t n, unsigned ms) {
        uint64_t end = now_ms() + ms;
        size_t got = 0;

        while (got < n && now_ms() < end) {
                ssize_t r;

                assert_se(sd_event_run(event, 10 * 1000) >= 0);
                r = recv(fd, buf + got, n - got, MSG_DONTWAIT);
                if (r == 0)
                        break;
                if (r > 0)
                        got += (size_t) r;
        }
        return got;
}

static bool log_contains(const char *what) {
        _cleanup_free_ char *p = tmp_path("console.log"), *text = NULL;
        size_t n;

        return console_log_read_tail(p, 1 << 20, &text, &n) >= 0 && strstr(text, what);
}

static int attach(void) {
        _cleanup_free_ char *p = tmp_path("console.sock");
        int fd;

        assert_se(socket_connect_unix(p, true, &fd) >= 0);
        return fd;
}

/* Runs the loop until the peer of fd has closed it: true if it has. */
static bool spin_until_eof(int fd, unsigned ms) {
        uint64_t end = now_ms() + ms;
        char buf[65536];

        while (now_ms() < end) {
                ssize_t r;

                assert_se(sd_event_run(event, 10 * 1000) >= 0);
                while ((r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
                        ;
                if (r == 0 || (r < 0 && errno != EAGAIN))
                        return true;
        }
        return false;
}

int main(void) {
        _cleanup_close_ int listen_fd = -EBADF, qemu = -EBADF, client = -EBADF, stuck = -EBADF;
        char buf[4096];
        struct stat st;
        int fds[CONSOLE_CLIENTS_MAX];

        assert_se(mkdtemp(tmpdir));
        assert_se(sd_event_new(&event) >= 0);

        is_int(console_open(event, 7, tmpdir, CAP, &console), -ENOENT, "no serial.sock (a QEMU from before): -ENOENT");
        ok(!console && size_of("console.log") == 0, "and nothing was touched");

        /* Start: zvmd makes the socket QEMU inherits, then connects. */
        is_int(console_listen_serial(tmpdir, &listen_fd), 0, "serial.sock made");
        {
                _cleanup_free_ char *p = tmp_path("serial.sock");

                ok(stat(p, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600, "serial.sock is 0600");
        }
        is_int(console_open(event, 7, tmpdir, CAP, &console), 0, "relay opened");
        qemu = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        ok(qemu >= 0, "zvmd connected at once (the connection waits in the backlog, as QEMU's wait=on needs)");

        /* guest → log */
        assert_se(write(qemu, "boot line\n", 10) == 10);
        spin(100);
        ok(log_contains("boot line\n"), "guest output lands in console.log");

        /* client ↔ guest */
        client = attach();
        spin(50);
        assert_se(write(client, "typed\n", 6) == 6);
        ok(spin_read(qemu, buf, 6, 2000) == 6 && memcmp(buf, "typed\n", 6) == 0, "client input reaches the guest");
        assert_se(write(qemu, "echo\n", 5) == 5);
        ok(spin_read(client, buf, 5, 2000) == 5 && memcmp(buf, "echo\n", 5) == 0, "guest output reaches the client");

        /* The client limit: CONSOLE_CLIENTS_MAX in all, the next is told so. */
        for (unsigned i = 0; i < CONSOLE_CLIENTS_MAX - 1; i++)
                fds[i] = attach();
        spin(50);
        {
                _cleanup_close_ int extra = attach();
                size_t n = spin_read(extra, buf, sizeof(buf) - 1, 1000);

                buf[n] = 0;
                ok(strstr(buf, "maximum of clients") && spin_until_eof(extra, 1000),
                   "client %u is turned away with a message", CONSOLE_CLIENTS_MAX + 1);
        }
        close_many(fds, CONSOLE_CLIENTS_MAX - 1);
        spin(50);

        /* A flood: the log stays within 2 × CAP; a client that never reads
         * is dropped, the one that reads gets everything. */
        stuck = attach();
        spin(50);
        {
                static char chunk[16384];
                uint64_t sent = 0, got = 0, worst = 0;
                bool stuck_dropped = false;
                uint64_t end = now_ms() + 20000;

                memset(chunk, 'F', sizeof(chunk));
                (void) fd_nonblock(qemu, true);
                while (sent < 4 * CONSOLE_CLIENT_QUEUE_MAX && now_ms() < end) {
                        ssize_t w = write(qemu, chunk, sizeof(chunk));
                        ssize_t r;

                        if (w > 0)
                                sent += (uint64_t) w;
                        assert_se(sd_event_run(event, 1000) >= 0);
                        while ((r = recv(client, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
                                got += (uint64_t) r;
                        worst = MAX(worst, size_of("console.log") + size_of("console.log.1"));
                }
                while (got < sent && now_ms() < end) {
                        ssize_t r;

                        assert_se(sd_event_run(event, 1000) >= 0);
                        while ((r = recv(client, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
                                got += (uint64_t) r;
                }
                ok(sent >= 4 * CONSOLE_CLIENT_QUEUE_MAX, "the guest sent %" PRIu64 " bytes", sent);
                ok(worst <= 2 * CAP && size_of("console.log.1") == CAP,
                   "console.log + .1 never above 2 x %u (worst %" PRIu64 ")", CAP, worst);
                is_int(got, (long long) sent, "the reading client got every byte");
                stuck_dropped = spin_until_eof(stuck, 2000);
                ok(stuck_dropped, "the client that never read was dropped");
        }
        stuck = safe_close(stuck);

        /* QEMU drops its client (as after kill -9 of zvmd, seen from the
         * other side): zvmd connects again within its retry interval. */
        qemu = safe_close(qemu);
        spin(100);
        {
                struct pollfd p = { .fd = listen_fd, .events = POLLIN };
                uint64_t end = now_ms() + 3000;

                while (now_ms() < end && poll(&p, 1, 0) == 0)
                        assert_se(sd_event_run(event, 10 * 1000) >= 0);
                qemu = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
                ok(qemu >= 0, "zvmd reconnected to the serial socket");
        }
        assert_se(write(qemu, "after reconnect\n", 16) == 16);
        spin(100);
        ok(log_contains("after reconnect\n"), "and logs again");

        /* Close: clients see the end, the log and serial.sock stay. */
        console_close(&console);
        ok(!console, "closed");
        ok(spin_until_eof(client, 1000), "the client sees the console close");
        ok(size_of("console.log") > 0, "console.log stays for zvm logs");
        console_close(&console);  /* idempotent */

        {
                static const char *const names[] = { "console.log", "console.log.1", "console.sock", "serial.sock" };

                for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                        _cleanup_free_ char *p = tmp_path(names[i]);

                        (void) unlink(p);
                }
        }
        ok(rmdir(tmpdir) == 0, "temporary directory empty and removed");
        sd_event_unref(event);
        return done_testing();
}
