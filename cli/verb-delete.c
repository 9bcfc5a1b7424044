/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "cli-vm.h"

/* zvm delete NAME [--force]: DELETE /vms/{id}; --force stops a running VM
 * first (hard stop). */
int verb_delete(Cli *cli, int argc, char *argv[]) {
        enum { ARG_FORCE = ARG_VERB_FIRST };
        static const struct option options[] = {
                VERB_COMMON_OPTIONS,
                { "force", no_argument, NULL, ARG_FORCE },
                {}
        };
        bool force = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_FORCE:
                        force = true;
                        break;
                default:
                        r = verb_common_option(cli, c);
                        if (r != 0)
                                return r;
                }

        r = verb_check_args(cli, argc, argv, 1, 1);
        if (r < 0)
                return r;

        return cli_vm_call_print(cli, "DELETE", argv[optind], force ? "?force=true" : NULL, NULL, NULL);
}
