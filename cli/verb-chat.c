/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "cli-chat.h"
#include "log.h"

/* zvm chat MODEL|VM [-p TEXT] [--system TEXT] [--max-tokens N] [--timeout S] */
int verb_chat(Cli *cli, int argc, char *argv[]) {
        static const struct option options[] = {
                VERB_COMMON_OPTIONS,
                CHAT_OPTIONS,
                {}
        };
        _cleanup_(oai_target_done) OaiTarget target = {};
        ChatOptions o = {};
        int c, r;

        cli->timeout_sec = CLI_INFER_TIMEOUT_SEC;
        while ((c = getopt_long(argc, argv, "hp:", options, NULL)) >= 0) {
                r = cli_chat_option(cli, c, &o);
                if (r < 0)
                        return r;
                if (r == 0) {
                        r = verb_common_option(cli, c);
                        if (r != 0)
                                return r;
                }
        }
        r = oai_target_from_args(cli, argc, argv, &target);
        if (r < 0)
                return r;
        return cli_stop_result(cli, cli_chat(cli, &target, &o, cli_stop_on_signals()));
}
