/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "cli-vm.h"
#include "log.h"
#include "string-util.h"

/* zvm start|stop|kill NAME: POST /vms/{id}/<verb>. These differ only
 * in the route, which is the verb's name; the VM is printed with --json. */
int verb_action(Cli *cli, int argc, char *argv[]) {
        _cleanup_free_ char *suffix = NULL;
        int r;

        r = verb_parse_simple(cli, argc, argv, 1, 1);
        if (r != 0)
                return r;

        suffix = strjoin("/", cli->verb->name);
        if (!suffix)
                return log_oom();

        return cli_vm_call_print(cli, "POST", argv[optind], suffix, NULL, NULL);
}
