/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "cli-vm.h"
#include "log.h"

/* zvm set-memory NAME SIZE: PUT /vms/{id}/memory {"target": MiB}. */
int verb_set_memory(Cli *cli, int argc, char *argv[]) {
        _cleanup_(json_object_putp) json_object *body = json_object_new_object();
        int r;

        if (!body)
                return log_oom();
        r = verb_parse_simple(cli, argc, argv, 2, 2);
        if (r != 0)
                return r;

        r = cli_body_put_mib(body, "target", "SIZE", argv[optind + 1]);
        if (r < 0)
                return r;

        return cli_vm_call_print(cli, "PUT", argv[optind], "/memory", body, NULL);
}
