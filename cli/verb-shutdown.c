/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>
#include <stdio.h>

#include "cli-vm.h"
#include "log.h"
#include "string-util.h"

#define SHUTDOWN_TIMEOUT_MAX 3600U

/* zvm shutdown NAME [--timeout S]: ACPI power button, then kill after S
 * seconds (zvmd's default: 60). zvmd answers when the VM is down. */
int verb_shutdown(Cli *cli, int argc, char *argv[]) {
        enum { ARG_TIMEOUT = ARG_VERB_FIRST };
        static const struct option options[] = {
                VERB_COMMON_OPTIONS,
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                {}
        };
        char suffix[64] = "/shutdown";
        uint32_t timeout;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_TIMEOUT:
                        if (safe_atou32(optarg, &timeout) < 0 || timeout > SHUTDOWN_TIMEOUT_MAX)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                                       "invalid --timeout '%s' (expected 0-%u seconds)",
                                                       optarg, SHUTDOWN_TIMEOUT_MAX);
                        (void) snprintf(suffix, sizeof(suffix), "/shutdown?timeout=%" PRIu32, timeout);
                        /* Leave zvmd the time to wait and then kill. */
                        cli->timeout_sec = MAX(cli->timeout_sec, timeout + 30U);
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
