/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vsock-echo: a guest-side test helper (static, musl).
 *
 *   vsock-echo [PORT]
 *         Listens on vsock PORT (default 5000), prints
 *         "vsock-echo: listening on PORT" and echoes every connection's bytes
 *         back until the peer closes it. One child process per connection.
 *
 *   vsock-echo --connect-host PORT MESSAGE
 *         Connects to the host (CID 2) on PORT, writes MESSAGE plus "\n",
 *         reads the reply (up to a newline, EOF, 4 KiB or 10 s), prints
 *         "vsock-echo: reply: REPLY" and exits (0 on success).
 *
 * As PID 1 (the test root image uses it as /sbin/init; arguments reach it
 * through the kernel command line after "--") it must never exit, so
 * --connect-host runs once in a child while the parent serves echo on
 * PORT (or 5000), with both options allowed together:
 *
 *   vsock-echo [PORT] [--connect-host HOSTPORT MESSAGE]
 *
 * A PID 1 that cannot serve prints why and powers the VM off, so a test
 * sees QEMU exit instead of waiting for its timeout.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fd-util.h"
#include "log.h"
#include "musl-vsock.h"
#include "string-util.h"
#define DEFAULT_PORT 5000U
#define REPLY_MAX 4096
#define REPLY_TIMEOUT_MS 10000

static bool parse_port(const char *s, unsigned *ret) {
        uint32_t v;

        if (!s || safe_atou32(s, &v) < 0 || v == 0)
                return false;
        *ret = v;
        return true;
}

static void echo_connection(int fd) {
        char buf[16384];

        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return;
                if (loop_write(fd, buf, (size_t) n, false) < 0)
                        return;
        }
}

static int serve(unsigned port) {
        struct sockaddr_vm sa = {
                .svm_family = AF_VSOCK,
                .svm_port = port,
                .svm_cid = VMADDR_CID_ANY,
        };
        int fd;

        fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                log_info("socket(AF_VSOCK) failed: %s", strerror(errno));
                return -1;
        }
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
                log_info("cannot listen on vsock port %u: %s", port, strerror(errno));
                close(fd);
                return -1;
        }
        log_info("listening on %u", port);

        for (;;) {
                int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
                pid_t pid;

                if (c < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        log_info("accept failed: %s", strerror(errno));
                        close(fd);
                        return -1;
                }
                /* A child per connection, so that one peer that never closes
                 * does not starve the others. SIGCHLD is ignored: the kernel
                 * reaps the children (also when we are PID 1). */
                pid = fork();
                if (pid == 0) {
                        close(fd);
                        echo_connection(c);
                        _exit(EXIT_SUCCESS);
                }
                if (pid < 0)
                        log_info("fork failed: %s", strerror(errno));
                close(c);
        }
}

static int connect_host(unsigned port, const char *message) {
        struct sockaddr_vm sa = {
                .svm_family = AF_VSOCK,
                .svm_port = port,
                .svm_cid = VMADDR_CID_HOST,
        };
        char reply[REPLY_MAX + 1];
        size_t n = 0;
        int fd;

        fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                log_info("socket(AF_VSOCK) failed: %s", strerror(errno));
                return -1;
        }
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                log_info("cannot connect to host port %u: %s", port, strerror(errno));
                close(fd);
                return -1;
        }
        if (loop_write(fd, message, strlen(message), false) < 0 || loop_write(fd, "\n", 1, false) < 0) {
                log_info("cannot send to host port %u: %s", port, strerror(errno));
                close(fd);
                return -1;
        }

        /* Bounded: a host that never answers must not keep us forever. */
        while (n < REPLY_MAX && !memchr(reply, '\n', n)) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                ssize_t k;
                int r = poll(&p, 1, REPLY_TIMEOUT_MS);

                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0) {
                        log_info("no reply from host port %u", port);
                        close(fd);
                        return -1;
                }
                k = read(fd, reply + n, REPLY_MAX - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        log_info("cannot read from host port %u: %s", port, strerror(errno));
                        close(fd);
                        return -1;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        close(fd);
        reply[n] = '\0';
        reply[strcspn(reply, "\n")] = '\0';
        log_info("reply: %s", reply);
        return 0;
}

static __attribute__((noreturn)) void pid1_give_up(void) {
        log_info("giving up, powering off");
        sync();
        (void) reboot(RB_POWER_OFF);
        for (;;)
                pause();
}

static void usage(void) {
        fprintf(stderr,
                "usage: vsock-echo [PORT]\n"
                "       vsock-echo --connect-host PORT MESSAGE\n"
                "as PID 1: vsock-echo [PORT] [--connect-host HOSTPORT MESSAGE]\n");
}

int main(int argc, char **argv) {
        unsigned port = DEFAULT_PORT, host_port = 0;
        const char *message = NULL;
        bool have_port = false, pid1 = getpid() == 1;

        /* As PID 1 its stderr is the console, where the test waits for
         * these lines; one writev() per line keeps them whole. */
        log_set_program_name("vsock-echo");

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--connect-host") == 0 && i + 2 < argc) {
                        if (!parse_port(argv[i + 1], &host_port)) {
                                usage();
                                return 2;
                        }
                        message = argv[i + 2];
                        i += 2;
                } else if (!have_port && parse_port(argv[i], &port))
                        have_port = true;
                else {
                        log_info("bad argument '%s'", argv[i]);
                        usage();
                        if (pid1)
                                pid1_give_up();
                        return 2;
                }
        }

        (void) signal(SIGPIPE, SIG_IGN);
        (void) signal(SIGCHLD, SIG_IGN);

        if (message && !pid1 && !have_port)
                return connect_host(host_port, message) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

        if (message) {
                pid_t pid = fork();

                if (pid == 0)
                        _exit(connect_host(host_port, message) < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
                if (pid < 0)
                        log_info("fork failed: %s", strerror(errno));
        }

        (void) serve(port);
        /* From here on: serving failed. PID 1 may not exit (that panics the
         * kernel), so it powers off instead. */
        if (pid1)
                pid1_give_up();
        return EXIT_FAILURE;
}
