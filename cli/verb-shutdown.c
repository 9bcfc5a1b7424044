/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>

#include "cli-vm.h"
#include "log.h"
#include "string-util.h"

#define SHUTDOWN_TIMEOUT_MAX 3600U

/* zvm shutdown|reboot NAME [--timeout S]: ACPI power button, then kill
 * after S seconds (zvmd's default: 60); the route is the verb's name and
 * takes the same ?timeout=. zvmd answers when the VM is down (shutdown) or
 * runs again (reboot). */
int verb_shutdown(Cli *cli, int argc, char *argv[]) {
        enum { ARG_TIMEOUT = ARG_VERB_FIRST };
        static const struct option options[] = {
                VERB_COMMON_OPTIONS,
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                {}
        };
        bool reboot = streq(cli->verb->name, "reboot");
        char suffix[64];
        uint32_t timeout;
        int c, r;

        (void) snprintf(suffix, sizeof(suffix), "/%s", cli->verb->name);
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_TIMEOUT:
                        if (safe_atou32(optarg, &timeout) < 0 || timeout > SHUTDOWN_TIMEOUT_MAX)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                                       "invalid --timeout '%s' (expected 0-%u seconds)",
                                                       optarg, SHUTDOWN_TIMEOUT_MAX);
                        (void) snprintf(suffix, sizeof(suffix), "/%s?timeout=%" PRIu32, cli->verb->name,
                                        timeout);
                        /* Leave zvmd the time to wait and then kill, and
                         * for a reboot, to boot again (the default 120 s
                         * is the default 60 s plus as much). */
                        cli->timeout_sec = MAX(cli->timeout_sec, timeout + (reboot ? 60U : 30U));
                        break;
                default:
                        r = verb_common_option(cli, c);
                        if (r != 0)
                                return r;
                }

        r = verb_check_args(cli, argc, argv, 1, 1);
        if (r < 0)
                return r;

        return cli_vm_call_print(cli, "POST", argv[optind], suffix, NULL, NULL);
}
