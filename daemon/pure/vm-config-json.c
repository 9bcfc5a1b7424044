/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The API's view of a config: a JSON body applied to the file (create,
 * PATCH), and the file as the "config" object. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "string-util.h"
#include "vm-config.h"
#include "vm-config-internal.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);
#define _cleanup_json_object_put_ _cleanup_(json_object_putp)

/* A JSON body value as the string stored in the file: strings as they are,
 * integers in decimal, booleans as 1/0. */
static int json_value_to_string(json_object *v, char **ret, char **reason) {
        char *s = NULL;

        switch (json_object_get_type(v)) {

        case json_type_string: {
                const char *p = json_object_get_string(v);

                /* "\u0000" reaches us as an embedded NUL: the C string
                 * would silently be cut there. */
                if (strlen(p) != (size_t) json_object_get_string_len(v))
                        return vmc_reason_set(reason, "must not contain NUL characters");
                s = strdup(p);
                break;
        }

        case json_type_int: {
                int64_t i = json_object_get_int64(v);

                if (i < 0) {
                        if (asprintf(&s, "%" PRId64, i) < 0)
                                s = NULL;
                } else if (asprintf(&s, "%" PRIu64, json_object_get_uint64(v)) < 0)
                        s = NULL;
                break;
        }

        case json_type_boolean:
                s = strdup(json_object_get_boolean(v) ? "1" : "0");
                break;

        case json_type_double:
                return vmc_reason_set(reason, "must be an integer, a string or a boolean (got a number with a fraction or exponent)");
        case json_type_array:
                return vmc_reason_set(reason, "must be an integer, a string or a boolean (got an array)");
        default:
                return vmc_reason_set(reason, "must be an integer, a string or a boolean (got an object)");
        }

        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int bad_key_set(char **ret_bad_key, const char *key) {
        char *s;

        if (!ret_bad_key || !key)
                return 0;
        s = strdup(key);
        if (!s)
                return -ENOMEM;
        free(*ret_bad_key);
        *ret_bad_key = s;
        return 0;
}

/* Sets (value != NULL) or removes key in cf, without validation. */
static int vm_config_put_raw(ConfigFile *cf, const char *key, const char *value) {
        if (value)
                return config_file_set(cf, NULL, key, value);
        return config_file_unset(cf, NULL, key);
}

/* One key of a JSON body: validated, then set in (or, for null, removed
 * from) cf. */
static int vm_config_apply_one(ConfigFile *cf, const char *key, json_object *val, char **ret_error) {
        _cleanup_free_ char *value = NULL, *reason = NULL;
        int r;

        if (!vm_config_key_known(key))
                return vmc_unknown_key(key, ret_error);
        if (!val)
                return vm_config_unset(cf, key, ret_error);

        r = json_value_to_string(val, &value, &reason);
        if (r == -EINVAL)
                return vmc_error_for_key(r, key, reason, ret_error);
        if (r < 0)
                return r;
        r = vm_config_check(key, value, ret_error);
        if (r < 0)
                return r;
        return vm_config_store(cf, key, value, ret_error);
}

/*
 * Everything is tried on a copy of cf first (format + parse: ConfigFile has
 * no other way to copy), including the whole-file check. Only then are the
 * changed keys replayed on cf in the same order, which gives the same text:
 * config_file_set() and config_file_unset() are deterministic, and what
 * could fail for a bound already failed on the copy. What remains is
 * -ENOMEM half-way through the replay, which is rolled back on a best-effort
 * basis (restored lines may be respelled or moved to the end).
 */
int vm_config_apply_json(ConfigFile *cf, json_object *obj, char ***ret_changed_keys, char **ret_error,
                         char **ret_bad_key) {
        _cleanup_config_file_free_ ConfigFile *copy = NULL;
        _cleanup_vm_config_free_ VmConfig *check = NULL;
        _cleanup_strv_free_ char **changed = NULL;
        _cleanup_free_ char *text = NULL, *bad = NULL;
        _cleanup_free_ char **old = NULL;
        size_t size, n_changed;
        int r;

        assert_return(cf, -EINVAL);

        if (!obj || !json_object_is_type(obj, json_type_object))
                return vmc_error_set(-EINVAL, ret_error, "the config must be a JSON object");

        r = config_file_format(cf, &text, &size);
        if (r < 0)
                return r;
        r = config_file_parse(text, size, &copy, NULL);
        if (r < 0)
                return r == -ENOMEM ? r : -EIO;         /* cf formatted into something it cannot parse */

        json_object_object_foreach(obj, key, val) {
                r = vm_config_apply_one(copy, key, val, ret_error);
                if (r < 0) {
                        if (bad_key_set(ret_bad_key, key) < 0)
                                return -ENOMEM;
                        return r;
                }

                /* JSON object keys are unique, so each key is recorded once. */
                if (!streq_ptr(config_file_get(cf, NULL, key), config_file_get(copy, NULL, key))) {
                        r = strv_extend(&changed, key);
                        if (r < 0)
                                return r;
                }
        }

        r = vm_config_parse(copy, 0, &check, ret_error, &bad);
        if (r < 0) {
                if (bad_key_set(ret_bad_key, bad) < 0)
                        return -ENOMEM;
                return r;
        }

        /* Replay on cf, remembering the old values for a rollback. */
        n_changed = strv_length(changed);
        old = calloc(n_changed + 1, sizeof(char *));
        if (!old)
                return -ENOMEM;
        for (size_t i = 0; i < n_changed; i++) {
                const char *v = config_file_get(cf, NULL, changed[i]);

                if (v && !(old[i] = strdup(v)))
                        goto fail_oom;
        }
        for (size_t i = 0; i < n_changed; i++) {
                r = vm_config_put_raw(cf, changed[i], config_file_get(copy, NULL, changed[i]));
                if (r < 0) {
                        for (size_t j = i; j > 0; j--)
                                (void) vm_config_put_raw(cf, changed[j - 1], old[j - 1]);
                        for (size_t j = 0; j < n_changed; j++)
                                free(old[j]);
                        return r;
                }
        }
        for (size_t j = 0; j < n_changed; j++)
                free(old[j]);

        if (ret_changed_keys) {
                if (!changed) {
                        changed = calloc(1, sizeof(char *));
                        if (!changed)
                                return -ENOMEM;
                }
                *ret_changed_keys = TAKE_PTR(changed);
        }
        return 0;

fail_oom:
        for (size_t j = 0; j < n_changed; j++)
                free(old[j]);
        return -ENOMEM;
}

int vm_config_to_json(const ConfigFile *cf, json_object **ret) {
        _cleanup_json_object_put_ json_object *o = NULL;
        const char *key, *value;

        assert_return(cf, -EINVAL);
        assert_return(ret, -EINVAL);

        o = json_object_new_object();
        if (!o)
                return -ENOMEM;

        CONFIG_FILE_FOREACH(cf, NULL, key, value) {
                const VmKey *k = vm_key_find(key, NULL);
                json_object *j;
                uint64_t v;

                if (k && k->json_int && safe_atou64(value, &v) >= 0 && v <= INT64_MAX)
                        j = json_object_new_int64((int64_t) v);
                else
                        j = json_object_new_string(value);
                if (!j)
                        return -ENOMEM;
                if (json_object_object_add(o, key, j) < 0) {
                        json_object_put(j);
                        return -ENOMEM;
                }
        }

        *ret = TAKE_PTR(o);
        return 0;
}
