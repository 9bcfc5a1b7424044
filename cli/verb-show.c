/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "cli-output.h"
#include "cli-vm.h"

/* zvm show NAME: the VM's summary and config (GET /vms/{id}). */
int verb_show(Cli *cli, int argc, char *argv[]) {
        int r;

        r = verb_parse_simple(cli, argc, argv, 1, 1);
        if (r != 0)
                return r;

        return cli_vm_call_print(cli, "GET", argv[optind], NULL, NULL, cli_output_vm_show);
}
