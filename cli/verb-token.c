/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "cli-output.h"
#include "cli-vm.h"

/* zvm token create [--comment C]: prints the secret, which zvmd stores
 * only hashed and never shows again. */
int verb_token_create(Cli *cli, int argc, char *argv[]) {
        enum { ARG_COMMENT = ARG_VERB_FIRST };
        static const struct option options[] = {
                VERB_COMMON_OPTIONS,
                { "comment", required_argument, NULL, ARG_COMMENT },
                {}
        };
        const char *comment = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_COMMENT:
                        comment = optarg;
                        break;
                default:
                        r = verb_common_option(cli, c);
                        if (r != 0)
                                return r;
                }

        r = verb_check_args(cli, argc, argv, 0, 0);
        if (r < 0)
                return r;

        return cli_token_create(cli, comment);
}

/* zvm token list: IDs, creation times and comments, never secrets. */
int verb_token_list(Cli *cli, int argc, char *argv[]) {
        int r;

        r = verb_parse_simple(cli, argc, argv, 0, 0);
        if (r != 0)
                return r;

        return cli_call_print(cli, "GET", "/tokens", NULL, cli_output_token_list);
}

/* zvm token delete ID */
int verb_token_delete(Cli *cli, int argc, char *argv[]) {
        int r;

        r = verb_parse_simple(cli, argc, argv, 1, 1);
        if (r != 0)
                return r;

        return cli_token_delete(cli, argv[optind]);
}
