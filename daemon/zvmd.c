/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * zvmd: the zvm host daemon. Serves the REST API on <run>/api.sock (and an
 * optional token-authenticated TCP listener), owns the VM registry, starts
 * and supervises QEMU. VMs outlive zvmd: a restarted zvmd re-adopts them.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <curl/curl.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "agent.h"
#include "console-log.h"
#include "log.h"
#include "loop.h"
#include "macro.h"
#include "manager.h"
#include "rest.h"
#include "tcp.h"
#include "string-util.h"
#include "zvm-config.h"

static void help(void) {
        printf("Usage: zvmd [OPTIONS]\n\n"
               "The zvm host daemon.\n\n"
               "  --root DIR          keep config, runtime and data under DIR (default /)\n"
               "                      (also ZVM_ROOT)\n"
               "  --listen ADDR:PORT  also serve the API on TCP (HTTPS); requests need a bearer token\n"
               "  --tls-cert FILE, --tls-key FILE\n"
               "                      PEM certificate and key for --listen (default: a self-signed\n"
               "                      pair made on first use in /var/lib/zvm/tls/)\n"
               "  --plain-http        serve --listen without TLS (tokens travel in clear)\n"
               "  --console-log-max SIZE\n"
               "                      cap of a VM's console.log (rotated once, so a VM's console\n"
               "                      costs at most twice this on /run; default 4M, also\n"
               "                      ZVM_CONSOLE_LOG_MAX)\n"
               "  --autoballoon HIGH,LOW\n"
               "                      while the host's memory use is >= HIGH %%, shrink the VMs'\n"
               "                      balloons toward their floors; below LOW %%, grow them back\n"
               "                      (default 80,70; off: only zvm set-memory moves them;\n"
               "                      also ZVM_AUTOBALLOON)\n"
               "  --pool SPEC         keep booted, unclaimed guests ready for starts: size=N\n"
               "                      [,template=NAME][,memory=MIB][,cores=N] (default off;\n"
               "                      also ZVM_POOL); see the user guide, \"Warm pool\"\n"
               "  --log-level LEVEL   emerg..debug (also ZVM_LOG_LEVEL)\n"
               "  --dump-routes       print the REST route table and exit\n"
               "  --version           print the version and exit\n"
               "  -h, --help          this help\n\n"
               "The storage and network policy for callers other than root (storage, raw\n"
               "paths, bridges, VLANs, quotas) is read from <root>/etc/zvm/zvm.conf at start;\n"
               "see zvm.conf(5).\n");
}

/* Each VM costs zvmd a few fds (QMP, pidfds, vsock helper, console, agent
 * calls): the default soft limit of 1024 would end in EMFILE at ~250 VMs, so
 * take all the hard limit allows (as systemd does for its own services). */
static void rlimit_nofile_raise(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
                return;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                log_warning_errno(-errno, "Failed to raise RLIMIT_NOFILE to %llu, ignoring: %m",
                                  (unsigned long long) rl.rlim_max);
}

/* A GET /vms of 200 VMs builds and frees ~2 MB of json-c objects. With
 * glibc's defaults the heap was given back after each request and grown
 * again (brk, then a page fault per 4 KiB touched): over half of the
 * request's time on this nested host. So: keep up to 8 MiB free in the heap,
 * grow it 1 MiB at a time, and make blocks of up to 4 MiB (a large answer)
 * from the heap rather than a fresh mmap each. bench/api-heap measures both;
 * ZVM_MALLOC_DEFAULTS=1 keeps glibc's. */
static void heap_tune(void) {
        if (streq_ptr(getenv("ZVM_MALLOC_DEFAULTS"), "1"))
                return;
        if (mallopt(M_TRIM_THRESHOLD, 8 << 20) != 1 || mallopt(M_TOP_PAD, 1 << 20) != 1 ||
            mallopt(M_MMAP_THRESHOLD, 4 << 20) != 1)
                log_debug("Heap not tuned (mallopt refused: a sanitizer's allocator?)");
}

/* "4M", "65536": within [CONSOLE_LOG_MAX_MIN, CONSOLE_LOG_MAX_MAX]. */
static int parse_console_log_max(const char *s, uint64_t *ret) {
        uint64_t v;

        if (parse_size(s, &v) < 0 || v < CONSOLE_LOG_MAX_MIN || v > CONSOLE_LOG_MAX_MAX) {
                log_error("Invalid console log size '%s': a size from %llu KiB to %llu MiB (e.g. 4M)", s,
                          CONSOLE_LOG_MAX_MIN / 1024, CONSOLE_LOG_MAX_MAX / 1024 / 1024);
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

static int on_watchdog(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        loop_note("watchdog");
        (void) sd_notify(false, "WATCHDOG=1");
        return sd_event_source_set_time_relative(s, m->watchdog_usec / 2);
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "root", required_argument, NULL, 'r' },
                { "listen", required_argument, NULL, 'l' },
                { "tls-cert", required_argument, NULL, 'c' },
                { "tls-key", required_argument, NULL, 'k' },
                { "plain-http", no_argument, NULL, 'P' },
                { "console-log-max", required_argument, NULL, 'C' },
                { "autoballoon", required_argument, NULL, 'B' },
                { "pool", required_argument, NULL, 'O' },
                { "log-level", required_argument, NULL, 'L' },
                { "dump-routes", no_argument, NULL, 'D' },
                { "version", no_argument, NULL, 'V' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        _cleanup_(manager_freep) Manager *m = NULL;
        /* Declared after m, so freed before it: pending requests cancel
         * their waits while the VMs still exist. */
        _cleanup_(rest_freep) Rest *rest = NULL;
        RestTcpOptions tcp = {};
        const char *root = getenv("ZVM_ROOT"), *console_max = getenv("ZVM_CONSOLE_LOG_MAX");
        uint64_t console_log_max = CONSOLE_LOG_MAX_DEFAULT;
        AutoballoonSettings autoballoon = { AUTOBALLOON_DEFAULT_HIGH, AUTOBALLOON_DEFAULT_LOW };
        const char *autoballoon_arg = getenv("ZVM_AUTOBALLOON"), *pool_arg = getenv("ZVM_POOL");
        _cleanup_free_ char *pool_error = NULL;
        PoolSpec pool = {};
        sigset_t mask;
        int c, r;

        if (log_setup_from_env() < 0)
                log_warning("Ignoring invalid ZVM_LOG_LEVEL");
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'r':
                        root = optarg;
                        break;
                case 'l':
                        tcp.address = optarg;
                        break;
                case 'c':
                        tcp.tls_cert = optarg;
                        break;
                case 'k':
                        tcp.tls_key = optarg;
                        break;
                case 'P':
                        tcp.plain_http = true;
                        break;
                case 'C':
                        console_max = optarg;
                        break;
                case 'B':
                        autoballoon_arg = optarg;
                        break;
                case 'O':
                        pool_arg = optarg;
                        break;
                case 'L':
                        r = log_parse_level(optarg);
                        if (r < 0) {
                                log_error("Invalid --log-level '%s'", optarg);
                                return 2;
                        }
                        log_set_max_level(r);
                        break;
                case 'D':
                        rest_dump_routes();
                        return 0;
                case 'V':
                        printf("zvmd %s\n", ZVM_VERSION);
                        return 0;
                case 'h':
                        help();
                        return 0;
                default:
                        return 2;
                }
        if (optind < argc) {
                log_error("Unexpected argument '%s'", argv[optind]);
                return 2;
        }
        if (console_max && parse_console_log_max(console_max, &console_log_max) < 0)
                return 2;
        if (autoballoon_arg && autoballoon_settings_parse(autoballoon_arg, &autoballoon) < 0) {
                log_error("Invalid --autoballoon '%s': HIGH,LOW (percent of host memory in use, "
                          "1 <= LOW < HIGH <= 99) or off", autoballoon_arg);
                return 2;
        }
        if (pool_spec_parse(pool_arg ?: "off", &pool, &pool_error) < 0) {
                log_error("Invalid --pool '%s': %s", pool_arg, strnull(pool_error));
                return 2;
        }
        if (root && (isempty(root) || root[0] != '/')) {
                log_error("--root must be an absolute path");
                return 2;
        }

        /* sd-event handles these; a client closing a socket must not kill
         * us (SIGPIPE), and child pidfd sources need SIGCHLD blocked. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        /* serve: libcurl (the OpenAI proxy) once, before anything uses it. */
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return log_error_errno(SYNTHETIC_ERRNO(ENOMEM), "Failed to initialize libcurl."), 1;

        rlimit_nofile_raise();
        heap_tune();
        r = manager_new(root, &m);
        if (r >= 0)
                r = manager_probe_host(m);
        if (r >= 0)
                r = rest_new(m, &rest);
        if (r < 0)
                return 1;
        m->vm_ctx.console_log_max = console_log_max;
        r = sd_event_add_signal(m->event, NULL, SIGTERM, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGINT, NULL, NULL);
        if (r < 0) {
                log_error_errno(r, "Failed to set up signal handling: %m");
                return 1;
        }
        r = manager_load(m);
        if (r < 0)
                return 1;
        r = rest_listen(rest, &tcp);
        if (r < 0)
                return 1;
        (void) agent_host_listen(&m->agent_host);
        r = manager_autoballoon_setup(m, &autoballoon);
        if (r < 0)
                log_warning_errno(r, "Failed to set up automatic ballooning, ignoring: %m");
        r = manager_pool_setup(m, &pool);
        if (r < 0)
                log_warning_errno(r, "Failed to set up the warm pool, ignoring: %m");

        if (sd_watchdog_enabled(false, &m->watchdog_usec) > 0) {
                r = sd_event_add_time_relative(m->event, &m->watchdog, CLOCK_MONOTONIC, m->watchdog_usec / 2, 0,
                                               on_watchdog, m);
                if (r >= 0)
                        (void) sd_event_source_set_enabled(m->watchdog, SD_EVENT_ON);
        }
        (void) sd_notifyf(false, "READY=1\nSTATUS=Serving %s, %zu VMs", m->paths.api_socket, m->n_vms);
        log_info("Listening on %s%s%s", m->paths.api_socket, tcp.address ? " and " : "", strempty(tcp.address));
        /* After READY=1: systemd (and its watchdog) must not wait for VMs
         * to start; their starts then run from the loop like any other. */
        manager_start_onboot(m);

        /* sd_event_loop(), timed: slow iterations are logged, the worst is
         * in GET /host. */
        r = loop_run(m->event);
        (void) sd_notify(false, "STOPPING=1");
        if (r < 0) {
                log_error_errno(r, "Event loop failed: %m");
                return 1;
        }
        /* VMs keep running: the next zvmd re-adopts them. */
        log_info("Exiting; running VMs stay up");
        return 0;
}
