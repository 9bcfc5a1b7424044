/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdlib.h>

#include "cli-bench.h"
#include "cli-chat.h"
#include "log.h"

/* zvm bench MODEL|VM [--isl N] [--osl N] [--concurrency 1,2,4] [--requests N]
 *                    [--cpu-watts W] [--timeout S] */
int verb_bench(Cli *cli, int argc, char *argv[]) {
        enum { ARG_ISL = ARG_VERB_FIRST, ARG_OSL, ARG_CONCURRENCY, ARG_REQUESTS, ARG_CPU_WATTS, ARG_TIMEOUT };
        static const struct option options[] = {
                VERB_COMMON_OPTIONS,
                { "isl",         required_argument, NULL, ARG_ISL },
                { "osl",         required_argument, NULL, ARG_OSL },
                { "concurrency", required_argument, NULL, ARG_CONCURRENCY },
                { "requests",    required_argument, NULL, ARG_REQUESTS },
                { "cpu-watts",   required_argument, NULL, ARG_CPU_WATTS },
                { "timeout",     required_argument, NULL, ARG_TIMEOUT },
                {}
        };
        _cleanup_(oai_target_done) OaiTarget target = {};
        BenchOptions o = {
                .isl = 128, .osl = 32, .requests = 8, .cpu_watts = 15,
                .concurrency = { 1, 2, 4 }, .n_levels = 3,
        };
        char *end;
        int c, r = 0;

        cli->timeout_sec = CLI_INFER_TIMEOUT_SEC;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_ISL:
                        r = verb_parse_uint(optarg, "--isl", 1, 1U << 20, &o.isl);
                        break;
                case ARG_OSL:
                        r = verb_parse_uint(optarg, "--osl", 1, 1U << 20, &o.osl);
                        break;
                case ARG_REQUESTS:
                        r = verb_parse_uint(optarg, "--requests", 1, 100000, &o.requests);
                        break;
                case ARG_TIMEOUT:
                        r = verb_parse_uint(optarg, "--timeout", 1, 86400, &cli->timeout_sec);
                        break;
                case ARG_CONCURRENCY:
                        r = stats_parse_uint_list(optarg, o.concurrency, BENCH_LEVELS_MAX, 1024);
                        if (r < 0)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                                       "invalid --concurrency '%s' (expected up to %u numbers "
                                                       "1-1024, like 1,2,4)", optarg, BENCH_LEVELS_MAX);
                        o.n_levels = (size_t) r;
                        break;
                case ARG_CPU_WATTS:
                        o.cpu_watts = strtod(optarg, &end);
                        r = *end || end == optarg || !(o.cpu_watts >= 0 && o.cpu_watts <= 10000) ?
                                log_error_errno(SYNTHETIC_ERRNO(EINVAL), "invalid --cpu-watts '%s'", optarg) : 0;
                        break;
                default:
                        r = verb_common_option(cli, c);
                        if (r != 0)
                                return r;
                }
                if (r < 0)
                        return r;
        }
        /* Every request of a level is prepared before it starts: bound the
         * prompts held at once (~5 bytes a token in JSON). */
        if ((uint64_t) o.isl * o.requests > BENCH_PROMPT_TOKENS_MAX)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "--isl x --requests is at most %u tokens",
                                       BENCH_PROMPT_TOKENS_MAX);
        r = oai_target_from_args(cli, argc, argv, &target);
        if (r < 0)
                return r;
        return cli_stop_result(cli, cli_bench(cli, &target, &o, cli_stop_on_signals()));
}
