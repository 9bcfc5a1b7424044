/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "cli-vm.h"
#include "log.h"
#include "string-util.h"

/* zvm logs NAME [--tail BYTES]: the serial console log, as raw text. */
int verb_logs(Cli *cli, int argc, char *argv[]) {
        enum { ARG_TAIL = ARG_VERB_FIRST };
        static const struct option options[] = {
                VERB_COMMON_OPTIONS,
                { "tail", required_argument, NULL, ARG_TAIL },
                {}
        };
        bool have_tail = false;
        uint64_t tail = 0;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_TAIL:
                        if (parse_size(optarg, &tail) < 0)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                                       "invalid --tail '%s' (bytes: 4096, 64K, 1M)", optarg);
                        have_tail = true;
                        break;
                default:
                        r = verb_common_option(cli, c);
                        if (r != 0)
                                return r;
                }

        r = verb_check_args(cli, argc, argv, 1, 1);
        if (r < 0)
                return r;

        return cli_vm_logs(cli, argv[optind], tail, have_tail);
}
