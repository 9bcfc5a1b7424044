/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdint.h>
#include <string.h>

#include "agent-wire.h"
#include "json-util.h"
#include "macro.h"

static size_t base64_size(size_t n) {
        return (n + 2) / 3 * 4;
}

/* An integer argument of the request, clamped to [0, max]; def if absent or
 * not an integer (the agent refuses that with a small EINVAL). */
static size_t request_size_arg(json_object *request, const char *key, size_t def, size_t max) {
        json_object *v;
        int64_t n;

        if (!json_object_object_get_ex(request, key, &v) || !json_object_is_type(v, json_type_int))
                return def;
        n = json_object_get_int64(v);
        if (n < 0)
                return 0;
        return (uint64_t) n > max ? max : (size_t) n;
}

size_t agent_answer_max(json_object *request) {
        json_object *v;
        const char *op = NULL;

        if (json_object_object_get_ex(request, "op", &v))
                op = json_object_get_string(v);
        if (streq_ptr(op, "exec"))
                return AGENT_ANSWER_SMALL_MAX +
                       2 * base64_size(request_size_arg(request, "max_output", AGENT_EXEC_OUTPUT_DEFAULT,
                                                        AGENT_EXEC_OUTPUT_MAX));
        if (streq_ptr(op, "file-read"))
                return AGENT_ANSWER_SMALL_MAX +
                       base64_size(request_size_arg(request, "max_bytes", AGENT_FILE_READ_MAX, AGENT_FILE_READ_MAX));
        return AGENT_ANSWER_SMALL_MAX;
}

bool agent_secret_equal(const char *expected, const char *given) {
        size_t n;

        if (isempty(expected) || isempty(given))
                return false;
        n = strlen(expected);
        if (strlen(given) != n)
                return false;
        return CRYPTO_memcmp(expected, given, n) == 0;
}

json_object *agent_line_parse(const char *line, size_t len) {
        json_object *o = NULL;

        if (json_parse_bounded_object(line, len, AGENT_JSON_DEPTH_MAX, AGENT_JSON_VALUES_MAX, &o) < 0)
                return NULL;
        return o;
}

int agent_answer_parse(const char *line, size_t len, json_object **ret, const char **ret_code,
                       const char **ret_message) {
        json_object *o, *ok, *err;
        const char *code = NULL, *message = NULL;

        o = agent_line_parse(line, len);
        if (!o || !json_object_object_get_ex(o, "ok", &ok)) {
                json_object_put(o);
                return -EBADMSG;
        }
        if (json_object_get_boolean(ok)) {
                *ret = o;
                return 1;
        }
        if (json_object_object_get_ex(o, "error", &err)) {
                code = json_get_string_member(err, "code");
                message = json_get_string_member(err, "message");
        }
        *ret = o;
        *ret_code = code ?: "EPROTO";
        *ret_message = message ?: "malformed answer from the agent";
        return 0;
}

int agent_ready_parse(const char *line, size_t len, const char *secret, json_object **ret_info) {
        json_object *o;

        o = agent_line_parse(line, len);
        if (!o || !streq_ptr(json_get_string_member(o, "op"), "ready") ||
            !agent_secret_equal(secret, json_get_string_member(o, "secret"))) {
                json_object_put(o);
                return -EBADMSG;
        }
        json_object_object_del(o, "secret");
        json_object_object_del(o, "op");
        *ret_info = o;
        return 0;
}
