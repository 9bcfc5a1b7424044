/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "cli-http.h"
#include "cli-vm.h"
#include "fd-util.h"
#include "log.h"
#include "string-util.h"
#include "vsock.h"

#define PROXY_CONNECT_TIMEOUT_MS 5000
/* Hybrid vsock drops guest packets over ~32 KiB; host → guest chunks stay
 * well below that too. */
#define PROXY_CHUNK (16U * 1024U)

/* After stdin ends, keep relaying the guest's answers until it has been
 * quiet this long, then close. No half-close: vhost-device-vsock turns a
 * unix-socket SHUT_WR into a full vsock shutdown, so the guest could lose
 * the last request before answering it. */
#define PROXY_DRAIN_MS 3000

/* Copies stdin → sock and sock → stdout until the guest closes, or stdin
 * ended and the guest has been quiet for PROXY_DRAIN_MS. */
static int relay(int sock) {
        bool in_open = true;
        char buf[PROXY_CHUNK];

        for (;;) {
                struct pollfd p[2] = { { .fd = sock, .events = POLLIN }, { .fd = STDIN_FILENO, .events = POLLIN } };
                ssize_t n;
                int k;

                k = poll(p, in_open ? 2 : 1, in_open ? -1 : PROXY_DRAIN_MS);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return 0;               /* stdin done, guest quiet */
                if (p[0].revents) {
                        n = read(sock, buf, sizeof(buf));
                        if (n < 0 && errno != EINTR && errno != EAGAIN)
                                return -errno;
                        if (n == 0)
                                return 0;       /* the guest closed */
                        if (n > 0 && loop_write(STDOUT_FILENO, buf, (size_t) n, false) < 0)
                                return -EPIPE;
                }
                if (in_open && p[1].revents) {
                        n = read(STDIN_FILENO, buf, sizeof(buf));
                        if (n < 0 && errno != EINTR && errno != EAGAIN)
                                return -errno;
                        if (n == 0)
                                in_open = false;
                        else if (n > 0 && loop_write(sock, buf, (size_t) n, false) < 0)
                                return -EPIPE;
                }
        }
}

/* zvm vsock-proxy NAME PORT: connects stdin/stdout to a guest's vsock port,
 * on kernel or hybrid vsock alike. NAME may carry a ".zvm" suffix, so
 * "ProxyCommand zvm vsock-proxy %h 22" works for ssh root@web.zvm. */
int verb_vsock_proxy(Cli *cli, int argc, char *argv[]) {
        _cleanup_(json_object_putp) json_object *host = NULL;
        _cleanup_free_ char *name = NULL, *uds = NULL;
        _cleanup_close_ int fd = -EBADF;
        json_object *mode = NULL;
        VsockTarget t = {};
        uint32_t port, cid = 0;
        char *dot;
        int r;

        r = verb_parse_simple(cli, argc, argv, 2, 2);
        if (r != 0)
                return r;
        name = strdup(argv[optind]);
        if (!name)
                return log_oom();
        dot = strrchr(name, '.');
        if (dot && streq(dot, ".zvm"))
                *dot = 0;
        if (safe_atou32(argv[optind + 1], &port) < 0 || port == 0)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "invalid port '%s'", argv[optind + 1]);

        r = cli_http_call(cli, "GET", "/host", NULL, &host);
        if (r < 0)
                return r;
        r = cli_vm_runtime_path(cli, name, "vsock.sock", &uds, &cid);
        if (r < 0)
                return r;
        if (json_object_object_get_ex(host, "vsock_mode", &mode) && streq_ptr(json_object_get_string(mode), "kernel"))
                t.cid = cid;
        else
                t.uds_path = uds;
        r = vsock_connect(&t, port, PROXY_CONNECT_TIMEOUT_MS, &fd);
        if (r < 0)
                return log_error_errno(r, "cannot connect to port %u of VM %s: %m", port, name);
        r = relay(fd);
        if (r < 0)
                return log_error_errno(r, "vsock-proxy: %m");
        return 0;
}
