/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent-auth.h"
#include "agent-buf.h"
#include "agent-conn.h"
#include "agent-info.h"
#include "agent-json.h"
#include "agent-ready.h"
#include "fd-util.h"
#include "log.h"
#include "musl-vsock.h"
#include "time-util.h"

#define READY_TOTAL_MS 60000
#define READY_FIRST_DELAY_MS 100
#define READY_MAX_DELAY_MS 2000

static void ready_message(Buf *b) {
        buf_puts(b, "{\"op\":\"ready\",\"secret\":");
        json_put_cstring(b, secret_value());
        buf_puts(b, ",\"agent_version\":");
        json_put_cstring(b, ZVM_AGENT_VERSION);
        buf_puts(b, ",\"uptime\":");
        json_put_double(b, info_uptime(), 3);
        buf_puts(b, ",\"initrd_timing\":");
        info_put_initrd_timing(b);
        buf_puts(b, ",\"ssh_host_keys\":");
        info_put_ssh_host_keys(b);
        buf_puts(b, "}\n");
}

/* Runs in a child of the main process: tells the host we are up, with a
 * bounded back-off while it is not listening (yet). */
__attribute__((noreturn)) void ready_run(unsigned port) {
        uint64_t start = now_msec(CLOCK_MONOTONIC);
        unsigned delay = READY_FIRST_DELAY_MS, attempt = 0;
        int last_err = 0;

        for (;;) {
                struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_port = port, .svm_cid = VMADDR_CID_HOST };
                int fd, r;

                attempt++;
                fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        r = -errno;
                else if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                        r = -errno;
                else {
                        Buf b = {};

                        ready_message(&b);
                        r = b.failed ? -ENOMEM : 0;
                        if (r >= 0 && fd_nonblock(fd, true) >= 0)
                                r = loop_write_full(fd, b.data, b.len, VSOCK_WRITE_MAX, 5000);
                        buf_free(&b);
                        if (r >= 0) {
                                (void) shutdown(fd, SHUT_WR);
                                close(fd);
                                log_info("told the host we are ready (port %u, attempt %u, %.2f s after kernel start)",
                                    port, attempt, info_uptime());
                                _exit(EXIT_SUCCESS);
                        }
                }
                if (fd >= 0)
                        close(fd);
                if (-r != last_err)
                        log_info("ready: cannot reach host port %u: %s; retrying", port, strerror(-r));
                last_err = -r;
                if (now_msec(CLOCK_MONOTONIC) + delay > start + READY_TOTAL_MS) {
                        log_info("ready: giving up after %u attempts in %d s; restart the agent to try again", attempt,
                            READY_TOTAL_MS / 1000);
                        _exit(EXIT_FAILURE);
                }
                sleep_msec(delay);                /* the back-off itself, not a wait for an event */
                delay = MIN(delay * 2, (unsigned) READY_MAX_DELAY_MS);
        }
}

