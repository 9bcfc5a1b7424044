/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "cli-output.h"
#include "cli-vm.h"

/* zvm list [--json] */
int verb_list(Cli *cli, int argc, char *argv[]) {
        int r;

        r = verb_parse_simple(cli, argc, argv, 0, 0);
        if (r != 0)
                return r;

        return cli_call_print(cli, "GET", "/vms", NULL, cli_output_vm_list);
}
