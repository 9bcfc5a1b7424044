/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "cli-chat.h"
#include "log.h"

/* zvm chat MODEL|VM [-p TEXT] [--system TEXT] [--max-tokens N] [--timeout S] */
int verb_chat(Cli *cli, int argc, char *argv[]) {
        enum { ARG_SYSTEM = ARG_VERB_FIRST, ARG_MAX_TOKENS, ARG_TIMEOUT };
        static const struct option options[] = {
                VERB_COMMON_OPTIONS,
                { "prompt",     required_argument, NULL, 'p' },
                { "system",     required_argument, NULL, ARG_SYSTEM },
                { "max-tokens", required_argument, NULL, ARG_MAX_TOKENS },
                { "timeout",    required_argument, NULL, ARG_TIMEOUT },
                {}
        };
        _cleanup_(oai_target_done) OaiTarget target = {};
        ChatOptions o = {};
        int c, r;

        cli->timeout_sec = CLI_INFER_TIMEOUT_SEC;
        while ((c = getopt_long(argc, argv, "hp:", options, NULL)) >= 0)
                switch (c) {
                case 'p':
                        o.prompt = optarg;
                        break;
                case ARG_SYSTEM:
                        o.system = optarg;
                        break;
                case ARG_MAX_TOKENS:
                        r = verb_parse_uint(optarg, "--max-tokens", 1, 1U << 20, &o.max_tokens);
                        if (r < 0)
                                return r;
                        break;
                case ARG_TIMEOUT:
                        r = verb_parse_uint(optarg, "--timeout", 1, 86400, &cli->timeout_sec);
                        if (r < 0)
                                return r;
                        break;
                default:
                        r = verb_common_option(cli, c);
                        if (r != 0)
                                return r;
                }
        r = verb_check_args(cli, argc, argv, 1, 1);
        if (r < 0)
                return r;

        r = oai_target_resolve(cli, argv[optind], &target);
        if (r < 0)
                return r;
        r = cli_chat(cli, &target, &o, cli_stop_on_signals());
        if (r == -ECANCELED) {
                cli->exit_status = 130;
                return 0;
        }
        return r;
}
