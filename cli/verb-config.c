/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdlib.h>

#include "cli-output.h"
#include "cli-sshkeys.h"
#include "cli-vm.h"
#include "log.h"

/* zvm config show NAME: the config as "key: value" lines, like the .conf. */
int verb_config_show(Cli *cli, int argc, char *argv[]) {
        int r;

        r = verb_parse_simple(cli, argc, argv, 1, 1);
        if (r != 0)
                return r;

        return cli_vm_call_print(cli, "GET", argv[optind], NULL, NULL, cli_output_vm_config);
}

/* One PATCH of NAME with put(body, arg) for every argument after it, so
 * that zvmd checks all keys together and changes nothing if one is wrong.
 * keys (may be NULL): authorized_keys text to send as sshkeys. */
static int config_patch(Cli *cli, int argc, char *argv[], int (*put)(json_object *body, const char *arg),
                        const char *keys) {
        _cleanup_(json_object_putp) json_object *body = json_object_new_object();
        int r;

        if (!body)
                return log_oom();
        for (int i = optind + 1; i < argc; i++) {
                r = put(body, argv[i]);
                if (r < 0)
                        return r;
        }
        if (keys) {
                r = cli_body_put_sshkeys(body, keys);
                if (r < 0)
                        return r;
        }

        return cli_vm_call_print(cli, "PATCH", argv[optind], NULL, body, cli_output_pending_restart);
}

/* zvm config set NAME [--ssh-key FILE]... [KEY=VALUE]...: --ssh-key sets
 * sshkeys to the keys of the files (a running VM gets them at once). */
int verb_config_set(Cli *cli, int argc, char *argv[]) {
        enum { ARG_SSH_KEY = ARG_VERB_FIRST };
        static const struct option options[] = {
                VERB_COMMON_OPTIONS,
                { "ssh-key", required_argument, NULL, ARG_SSH_KEY },
                {}
        };
        _cleanup_free_ char *keys = NULL;
        bool key_given = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (c == ARG_SSH_KEY) {
                        key_given = true;
                        r = cli_sshkeys_add_file(optarg, true, &keys);
                } else
                        r = verb_common_option(cli, c);
                if (r != 0)
                        return r;
        }
        r = verb_check_args(cli, argc, argv, key_given ? 1 : 2, -1);
        if (r < 0)
                return r;
        if (key_given && !keys)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "--ssh-key: the files hold no key");
        return config_patch(cli, argc, argv, cli_body_put_assignment, keys);
}

/* zvm config unset NAME KEY...: null values. */
int verb_config_unset(Cli *cli, int argc, char *argv[]) {
        int r;

        r = verb_parse_simple(cli, argc, argv, 2, -1);
        if (r != 0)
                return r;
        return config_patch(cli, argc, argv, cli_body_put_null, NULL);
}
