/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <time.h>

#include "cli-output.h"
#include "log.h"
#include "string-util.h"
#include "cli-vm.h"

/* "90d", "12h", "30m", "45s" or plain seconds, > 0. */
static int parse_duration(const char *s, uint64_t *ret) {
        static const struct { char suffix; uint64_t mult; } units[] = {
                { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
        };
        _cleanup_free_ char *num = NULL;
        uint64_t v, mult = 1;
        size_t l = strlen(s);

        if (l == 0)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (s[l - 1] == units[i].suffix) {
                        mult = units[i].mult;
                        l--;
                }
        num = strndup(s, l);
        if (!num || safe_atou64(num, &v) < 0 || v == 0 || v > UINT64_MAX / mult / 2)
                return -EINVAL;
        *ret = v * mult;
        return 0;
}

/* zvm token create [--comment C] [--role R] [--expires-in D]: prints the
 * secret, which zvmd stores only hashed and never shows again. */
int verb_token_create(Cli *cli, int argc, char *argv[]) {
        enum { ARG_COMMENT = ARG_VERB_FIRST, ARG_ROLE, ARG_EXPIRES_IN };
        static const struct option options[] = {
                VERB_COMMON_OPTIONS,
                { "comment", required_argument, NULL, ARG_COMMENT },
                { "role", required_argument, NULL, ARG_ROLE },
                { "expires-in", required_argument, NULL, ARG_EXPIRES_IN },
                {}
        };
        const char *comment = NULL, *role = NULL;
        uint64_t expires = 0, d;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_COMMENT:
                        comment = optarg;
                        break;
                case ARG_ROLE:
                        role = optarg;
                        break;
                case ARG_EXPIRES_IN:
                        if (parse_duration(optarg, &d) < 0)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                                       "--expires-in needs a duration like 90d, 12h, 30m or 3600, not '%s'", optarg);
                        expires = (uint64_t) time(NULL) + d;
                        break;
                default:
                        r = verb_common_option(cli, c);
                        if (r != 0)
                                return r;
                }

        r = verb_check_args(cli, argc, argv, 0, 0);
        if (r < 0)
                return r;

        return cli_token_create(cli, comment, role, expires);
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
