/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "cli-output.h"
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
 * that zvmd checks all keys together and changes nothing if one is wrong. */
static int config_patch(Cli *cli, int argc, char *argv[], int (*put)(json_object *body, const char *arg)) {
        _cleanup_(json_object_putp) json_object *body = json_object_new_object();
        int r;

        if (!body)
                return log_oom();
        r = verb_parse_simple(cli, argc, argv, 2, -1);
        if (r != 0)
                return r;

        for (int i = optind + 1; i < argc; i++) {
                r = put(body, argv[i]);
                if (r < 0)
                        return r;
        }

        return cli_vm_call_print(cli, "PATCH", argv[optind], NULL, body, cli_output_pending_restart);
}

/* zvm config set NAME KEY=VALUE... */
int verb_config_set(Cli *cli, int argc, char *argv[]) {
        return config_patch(cli, argc, argv, cli_body_put_assignment);
}

/* zvm config unset NAME KEY...: null values. */
int verb_config_unset(Cli *cli, int argc, char *argv[]) {
        return config_patch(cli, argc, argv, cli_body_put_null);
}
