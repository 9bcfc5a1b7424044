/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "cli-vm.h"

/* zvm console NAME: attach to the serial console; Ctrl-] detaches. */
int verb_console(Cli *cli, int argc, char *argv[]) {
        int r;

        r = verb_parse_simple(cli, argc, argv, 1, 1);
        if (r != 0)
                return r;

        return cli_console_attach(cli, argv[optind]);
}
