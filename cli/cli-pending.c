/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* zvm pending's table (cli-output.h declares it): GET /vms/{id}/pending as
 * `qm pending` prints it, the running value beside the pending one. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-output.h"
#include "cli-text.h"
#include "string-util.h"

/* Longer values (sshkeys, cmdline) are cut: the table is for reading, and
 * --json has them whole. */
#define PENDING_CELL_MAX 48U

static int cell_add(CliTable *t, json_object *v, const char *absent) {
        _cleanup_free_ char *s = NULL, *clean = NULL;

        if (!v)
                return cli_table_add(t, absent);
        s = cli_json_to_value_string(v);
        if (!s)
                return -ENOMEM;
        if (strlen(s) > PENDING_CELL_MAX)
                strcpy(s + PENDING_CELL_MAX - 3, "...");
        clean = cli_sanitize_dup(s);
        if (!clean)
                return -ENOMEM;
        return cli_table_add(t, clean);
}

int cli_output_vm_pending(json_object *entries, char **ret) {
        static const char *const header[] = { "KEY", "VALUE", "PENDING" };
        _cleanup_table_ CliTable *t = NULL;
        int r;

        assert_return(ret, -EINVAL);
        if (!json_object_is_type(entries, json_type_array))
                return -EBADMSG;

        t = cli_table_new(ELEMENTSOF(header), header);
        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < json_object_array_length(entries); i++) {
                json_object *e = json_object_array_get_idx(entries, i), *key, *value = NULL, *pending = NULL, *del;
                bool deleted;

                if (!json_object_object_get_ex(e, "key", &key) || !json_object_is_type(key, json_type_string))
                        return -EBADMSG;
                (void) json_object_object_get_ex(e, "value", &value);
                (void) json_object_object_get_ex(e, "pending", &pending);
                deleted = json_object_object_get_ex(e, "delete", &del) && json_object_get_boolean(del);
                r = cell_add(t, key, NULL);
                if (r >= 0)
                        /* A pending key the run has not got (set since the start). */
                        r = cell_add(t, value, pending ? "(unset)" : "");
                if (r >= 0)
                        r = deleted ? cli_table_add(t, "(unset)") : cell_add(t, pending, "");
                if (r < 0)
                        return r;
        }
        return cli_table_format(t, ret);
}
