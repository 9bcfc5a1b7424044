/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <time.h>

#include "cli-util.h"
#include "macro.h"
#include "string-util.h"

int cli_errno_from_http_status(long status) {
        static const struct {
                long status;
                int error;
        } table[] = {
                { 400, EINVAL },
                { 401, EACCES },
                { 403, EACCES },
                { 404, ENOENT },
                { 405, EOPNOTSUPP },
                { 409, EBUSY },
                { 413, EFBIG },
                { 503, EAGAIN },
        };

        if (status >= 200 && status < 300)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (table[i].status == status)
                        return -table[i].error;
        return status >= 400 && status < 500 ? -EINVAL : -EIO;
}

CliExit cli_exit_from_errno(int r) {
        static const struct {
                int error;
                CliExit exit;
        } table[] = {
                { EINVAL,       CLI_EXIT_USAGE },
                { ENOENT,       CLI_EXIT_NOT_FOUND },
                { EBUSY,        CLI_EXIT_CONFLICT },
                { EHOSTUNREACH, CLI_EXIT_UNREACHABLE },
                { ETIMEDOUT,    CLI_EXIT_UNREACHABLE },
        };

        if (r >= 0)
                return CLI_EXIT_SUCCESS;
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (table[i].error == ERRNO_VALUE(r))
                        return table[i].exit;
        return CLI_EXIT_FAILURE;
}

int cli_parse_mib(const char *s, uint64_t *ret) {
        uint64_t v;
        int r;

        assert_return(ret, -EINVAL);

        if (isempty(s))
                return -EINVAL;

        if (s[strspn(s, "0123456789")] == '\0') {
                /* A bare number: MiB, like the "memory" config key. */
                r = safe_atou64(s, &v);
                if (r < 0)
                        return r;
        } else {
                r = parse_size(s, &v);
                if (r < 0)
                        return r;
                if (v % (UINT64_C(1) << 20) != 0)
                        return -EINVAL;
                v >>= 20;
        }

        if (v > UINT32_MAX)
                return -ERANGE;
        *ret = v;
        return 0;
}

bool cli_config_key_is_valid(const char *key) {
        size_t n;

        if (isempty(key) || !strchr("abcdefghijklmnopqrstuvwxyz", key[0]))
                return false;
        n = strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789_");
        return n <= 63 && key[n] == '\0';
}

int cli_parse_assignment(const char *s, char **ret_key, const char **ret_value) {
        _cleanup_free_ char *key = NULL;
        const char *eq;

        assert_return(s && ret_key && ret_value, -EINVAL);

        eq = strchr(s, '=');
        if (!eq)
                return -EINVAL;
        key = strndup(s, eq - s);
        if (!key)
                return -ENOMEM;
        if (!cli_config_key_is_valid(key))
                return -EINVAL;

        *ret_key = TAKE_PTR(key);
        *ret_value = eq + 1;
        return 0;
}

int cli_body_add(json_object *body, const char *key, json_object *value) {
        if (!body || !key) {
                json_object_put(value);
                return -EINVAL;
        }
        if (json_object_object_get_ex(body, key, NULL)) {
                json_object_put(value);
                return -EEXIST;
        }
        /* json-c only takes the reference on success. */
        if (json_object_object_add(body, key, value) < 0) {
                json_object_put(value);
                return -ENOMEM;
        }
        return 0;
}

void cli_sleep_ms(unsigned ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L };

        (void) nanosleep(&ts, NULL);
}

/* Whether tag is one of the VM's tags: "tags" of its config, "a;b" as in
 * the .conf file (or an array, should zvmd send one). */
static bool vm_has_tag(json_object *vm, const char *tag) {
        json_object *config = NULL, *tags = NULL;

        if (!json_object_object_get_ex(vm, "config", &config) || !json_object_object_get_ex(config, "tags", &tags))
                return false;
        if (json_object_is_type(tags, json_type_array)) {
                for (size_t i = 0; i < json_object_array_length(tags); i++)
                        if (streq_ptr(json_object_get_string(json_object_array_get_idx(tags, i)), tag))
                                return true;
                return false;
        }
        for (const char *p = strempty(json_object_get_string(tags)); *p;) {
                size_t l = strcspn(p, ";");

                if (l == strlen(tag) && strneq(p, tag, l))
                        return true;
                p += l + (p[l] == ';');
        }
        return false;
}

int cli_vm_list_filter(json_object *vms, const char *state, const char *tag, json_object **ret) {
        json_object *out;

        if (!json_object_is_type(vms, json_type_array) || !ret)
                return -EINVAL;
        out = json_object_new_array();
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < json_object_array_length(vms); i++) {
                json_object *vm = json_object_array_get_idx(vms, i), *s = NULL;

                (void) json_object_object_get_ex(vm, "state", &s);
                if (state && !streq_ptr(json_object_get_string(s), state))
                        continue;
                if (tag && !vm_has_tag(vm, tag))
                        continue;
                if (json_object_array_add(out, json_object_get(vm)) < 0) {
                        json_object_put(vm);
                        json_object_put(out);
                        return -ENOMEM;
                }
        }
        *ret = out;
        return 0;
}
