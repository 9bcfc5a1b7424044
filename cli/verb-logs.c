/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "cli-vm.h"
#include "log.h"
#include "string-util.h"

/* zvm logs NAME [--tail N] [--tail-bytes SIZE] [-f]: the serial console log. */
int verb_logs(Cli *cli, int argc, char *argv[]) {
        enum { ARG_TAIL = ARG_VERB_FIRST, ARG_TAIL_BYTES };
        static const struct option options[] = {
                VERB_COMMON_OPTIONS,
                { "tail",       required_argument, NULL, ARG_TAIL },
                { "tail-bytes", required_argument, NULL, ARG_TAIL_BYTES },
                { "follow",     no_argument,       NULL, 'f' },
                {}
        };
        CliLogs o = {};
        int c, r;

        while ((c = getopt_long(argc, argv, "hf", options, NULL)) >= 0)
                switch (c) {
                case ARG_TAIL:
                        if (safe_atou64(optarg, &o.tail_lines) < 0)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                                       "invalid --tail '%s' (a number of lines; --tail-bytes takes sizes)",
                                                       optarg);
                        o.have_tail_lines = true;
                        break;
                case ARG_TAIL_BYTES:
                        if (parse_size(optarg, &o.tail_bytes) < 0 || o.tail_bytes == 0)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                                       "invalid --tail-bytes '%s' (bytes: 4096, 64K, 1M)", optarg);
                        break;
                case 'f':
                        o.follow = true;
                        break;
                default:
                        r = verb_common_option(cli, c);
                        if (r != 0)
                                return r;
                }

        r = verb_check_args(cli, argc, argv, 1, 1);
        if (r < 0)
                return r;
        if (o.have_tail_lines && o.tail_bytes > 0)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "--tail and --tail-bytes exclude each other");

        return cli_vm_logs(cli, argv[optind], &o);
}
