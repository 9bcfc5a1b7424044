/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdlib.h>

#include "api.h"
#include "cli-output.h"
#include "cli-sshkeys.h"
#include "cli-vm.h"
#include "fd-util.h"
#include "log.h"
#include "string-util.h"

/* zvm create NAME [--vmid N] [--memory SIZE] [--balloon SIZE] [--cores N]
 *                 [--template T] [--ssh-key FILE]... [--no-ssh-keys]
 *                 [--set KEY=VALUE]... */
int verb_create(Cli *cli, int argc, char *argv[]) {
        enum { ARG_VMID = ARG_VERB_FIRST, ARG_MEMORY, ARG_BALLOON, ARG_CORES, ARG_TEMPLATE, ARG_SET, ARG_SSH_KEY,
               ARG_NO_SSH_KEYS };
        static const struct option options[] = {
                VERB_COMMON_OPTIONS,
                { "vmid",     required_argument, NULL, ARG_VMID },
                { "memory",   required_argument, NULL, ARG_MEMORY },
                { "balloon",  required_argument, NULL, ARG_BALLOON },
                { "cores",    required_argument, NULL, ARG_CORES },
                { "template", required_argument, NULL, ARG_TEMPLATE },
                { "set",      required_argument, NULL, ARG_SET },
                { "ssh-key",  required_argument, NULL, ARG_SSH_KEY },
                { "no-ssh-keys", no_argument,    NULL, ARG_NO_SSH_KEYS },
                {}
        };
        _cleanup_(json_object_putp) json_object *body = json_object_new_object();
        _cleanup_free_ char *keys = NULL;
        bool key_given = false, no_keys = false;
        int c, r;

        if (!body)
                return log_oom();

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_VMID:
                        r = cli_body_put_uint(body, "vmid", "--vmid", optarg, ZVM_VMID_MIN, ZVM_VMID_MAX);
                        break;
                case ARG_MEMORY:
                        r = cli_body_put_mib(body, "memory", "--memory", optarg);
                        break;
                case ARG_BALLOON:
                        r = cli_body_put_mib(body, "balloon", "--balloon", optarg);
                        break;
                case ARG_CORES:
                        r = cli_body_put_uint(body, "cores", "--cores", optarg, 1, UINT32_MAX);
                        break;
                case ARG_TEMPLATE:
                        r = cli_body_put(body, "rootfs", json_object_new_string(optarg));
                        break;
                case ARG_SET:
                        r = cli_body_put_assignment(body, optarg);
                        break;
                case ARG_SSH_KEY:
                        key_given = true;
                        r = cli_sshkeys_add_file(optarg, true, &keys);
                        break;
                case ARG_NO_SSH_KEYS:
                        no_keys = true;
                        r = 0;
                        break;
                default:
                        r = verb_common_option(cli, c);
                }
                if (r != 0)
                        return r;
        }

        r = verb_check_args(cli, argc, argv, 1, 1);
        if (r < 0)
                return r;
        r = cli_body_put(body, "name", json_object_new_string(argv[optind]));
        if (r < 0)
                return r;
        if (key_given && no_keys)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "--ssh-key and --no-ssh-keys exclude each other");
        if (!key_given && !no_keys && !json_object_object_get_ex(body, "sshkeys", NULL)) {
                r = cli_sshkeys_add_default(&keys);
                if (r < 0)
                        return r;
        }
        if (keys) {
                r = cli_body_put_sshkeys(body, keys);
                if (r < 0)
                        return r;
        }

        return cli_call_print(cli, "POST", "/vms", body, cli_output_vmid);
}
