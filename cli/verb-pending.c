/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "cli-output.h"
#include "cli-vm.h"

/* zvm pending NAME: GET /vms/{id}/pending, the config beside what runs. */
int verb_pending(Cli *cli, int argc, char *argv[]) {
        int r;

        r = verb_parse_simple(cli, argc, argv, 1, 1);
        if (r != 0)
                return r;

        return cli_vm_call_print(cli, "GET", argv[optind], "/pending", NULL, cli_output_vm_pending);
}
