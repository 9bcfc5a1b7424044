/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdlib.h>

#include "cli-http.h"
#include "cli-output.h"
#include "cli-sshkeys.h"
#include "cli-vm.h"
#include "log.h"

/* zvm config show NAME: the config as "key: value" lines, like the .conf;
 * with --json the "config" object alone (zvm show has the whole VM). */
int verb_config_show(Cli *cli, int argc, char *argv[]) {
        _cleanup_(json_object_putp) json_object *vm = NULL;
        json_object *config = NULL;
        int r;

        r = verb_parse_simple(cli, argc, argv, 1, 1);
        if (r != 0)
                return r;

        cli->vm_name = argv[optind];
        r = cli_vm_get(cli, argv[optind], &vm);
        if (r < 0)
                return r;
        if (!cli->json)
                return cli_print(cli, vm, cli_output_vm_config);
        if (!json_object_object_get_ex(vm, "config", &config))
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "zvmd sent a VM without its config");
        return cli_print(cli, config, NULL);
}

/* The answer's pending_restart, cut down to the keys of body: a change
 * names what it changed, not everything pending (zvm pending does). */
static int pending_restart_of(json_object *vm, json_object *body) {
        json_object *pending = NULL, *kept = json_object_new_array();

        if (!kept)
                return log_oom();
        if (json_object_object_get_ex(vm, "pending_restart", &pending) &&
            json_object_is_type(pending, json_type_array))
                for (size_t i = 0; i < json_object_array_length(pending); i++) {
                        json_object *k = json_object_array_get_idx(pending, i);

                        if (json_object_object_get_ex(body, json_object_get_string(k), NULL) &&
                            json_object_array_add(kept, json_object_get(k)) < 0) {
                                json_object_put(kept);
                                return log_oom();
                        }
                }
        json_object_object_add(vm, "pending_restart", kept);
        return 0;
}

/* One PATCH of NAME with put(body, arg) for every argument after it, so
 * that zvmd checks all keys together and changes nothing if one is wrong.
 * keys (may be NULL): authorized_keys text to send as sshkeys. */
static int config_patch(Cli *cli, int argc, char *argv[], int (*put)(json_object *body, const char *arg),
                        const char *keys) {
        _cleanup_(json_object_putp) json_object *body = json_object_new_object(), *vm = NULL;
        _cleanup_free_ char *path = NULL;
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

        cli->vm_name = argv[optind];
        r = cli_vm_path(argv[optind], NULL, &path);
        if (r < 0)
                return r;
        r = cli_http_call(cli, "PATCH", path, body, &vm);
        if (r < 0)
                return r;
        if (!cli->json) {
                r = pending_restart_of(vm, body);
                if (r < 0)
                        return r;
        }
        return cli_print(cli, vm, cli_output_pending_restart);
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
