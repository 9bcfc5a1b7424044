/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * daemon/pure/vm-config: vm_config_apply_json(), the body of POST /vms and
 * PATCH /vms/{id} after authentication, on a realistic config.
 *
 * Input: the request body (JSON, as the REST layer hands it over after
 * json-c parsed it).
 *
 * Properties (vm-config.h's contract):
 *   - refused: the file is byte-for-byte what it was, and there is a reason;
 *   - accepted: the file as a whole passes vm_config_from_file(), every key
 *     of the body is present (or absent for null), and the changed keys are
 *     keys of the body, each once.
 */
#include "fuzz.h"
#include "string-util.h"
#include "vm-config-base.h"
#include "vm-config.h"

static void check_accepted(ConfigFile *cf, json_object *body, char **changed) {
        _cleanup_vm_config_free_ VmConfig *c = NULL;
        _cleanup_free_ char *err = NULL;
        int r;

        r = vm_config_from_file(cf, 100, &c, &err);
        if (r == -ENOMEM)
                return;
        if (r < 0)
                fprintf(stderr, "accepted body gives a bad file: %s\n", strnull(err));
        FUZZ_CHECK(r >= 0);

        json_object_object_foreach(body, key, val)
                FUZZ_CHECK(!!config_file_get(cf, NULL, key) == !!val);

        FUZZ_CHECK(changed);
        STRV_FOREACH(k, changed) {
                FUZZ_CHECK(json_object_object_get_ex(body, *k, NULL));
                for (char *const *l = k + 1; *l; l++)
                        FUZZ_CHECK(!streq(*k, *l));
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_config_file_free_ ConfigFile *cf = NULL;
        _cleanup_free_ char *before = NULL, *after = NULL, *err = NULL, *bad = NULL;
        _cleanup_strv_free_ char **changed = NULL;
        json_tokener *tok;
        json_object *body;
        int r;

        tok = json_tokener_new();
        if (!tok)
                return 0;
        body = json_tokener_parse_ex(tok, (const char *) data, (int) MIN(size, (size_t) INT32_MAX));
        json_tokener_free(tok);
        if (!body)
                return 0;

        cf = fuzz_vm_config_base_new();
        before = cf ? fuzz_config_text(cf) : NULL;
        if (!before)
                goto finish;

        r = vm_config_apply_json(cf, body, &changed, &err, &bad);
        if (r < 0) {
                FUZZ_CHECK(IN_SET(r, -ENOKEY, -EINVAL, -ENOMEM));
                FUZZ_CHECK(!changed);
                FUZZ_CHECK(r == -ENOMEM || (err && !strchr(err, '\n')));
                after = fuzz_config_text(cf);
                FUZZ_CHECK(!after || streq(before, after));
                goto finish;
        }
        check_accepted(cf, body, changed);
finish:
        json_object_put(body);
        return 0;
}
