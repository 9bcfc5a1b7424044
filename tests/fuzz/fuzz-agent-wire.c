/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * api/agent-wire: what zvmd makes of a guest agent's lines (guest → host,
 * hostile): agent_answer_parse() for every answer, agent_ready_parse() for
 * READY, agent_answer_max() for the cap a request line sets.
 *
 * Input: one line as the guest sends it (also read as a request for the
 * cap).
 *
 * Properties (agent-wire.h's contract):
 *   - an answer is -EBADMSG exactly when the line is no bounded JSON
 *     object with "ok"; 1 when "ok" is true; 0 otherwise, with a code and
 *     a message that are the guest's strings when it sent strings, and the
 *     defaults when not (never NULL);
 *   - READY is taken exactly when "op" is the string "ready" and "secret"
 *     the string of the VM's secret; the info handed on holds neither;
 *     a VM without a secret (NULL or empty) takes no READY;
 *   - the cap is at least the small cap and at most the small cap plus
 *     two base64 streams of the agent's largest output.
 */
#include <errno.h>

#include "agent-wire.h"
#include "fuzz.h"

#define SECRET "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"

static const char *get_string(json_object *o, const char *key) {
        json_object *v;

        return o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : NULL;
}

static void check_answer(const char *line, size_t len, json_object *parsed) {
        json_object *o = NULL, *ok = NULL, *err = NULL;
        const char *code = NULL, *message = NULL;
        int r;

        r = agent_answer_parse(line, len, &o, &code, &message);
        FUZZ_CHECK(IN_SET(r, 1, 0, -EBADMSG));
        if (!parsed || !json_object_object_get_ex(parsed, "ok", &ok)) {
                FUZZ_CHECK(r == -EBADMSG && !o && !code && !message);
                return;
        }
        /* The same tree; compared as text, since json-c takes NaN (as the
         * guest may send it) and NaN != NaN. */
        FUZZ_CHECK(o && (json_object_equal(o, parsed) ||
                         streq(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
                               json_object_to_json_string_ext(parsed, JSON_C_TO_STRING_PLAIN))));
        FUZZ_CHECK(r == (json_object_get_boolean(ok) ? 1 : 0));
        if (r == 1)
                FUZZ_CHECK(!code && !message);
        else {
                (void) json_object_object_get_ex(o, "error", &err);
                FUZZ_CHECK(code && message);
                FUZZ_CHECK(streq(code, get_string(err, "code") ?: "EPROTO"));
                FUZZ_CHECK(streq(message, get_string(err, "message") ?: "malformed answer from the agent"));
        }
        json_object_put(o);
}

static void check_ready(const char *line, size_t len, json_object *parsed) {
        json_object *info = NULL;
        bool want;
        int r;

        want = parsed && streq_ptr(get_string(parsed, "op"), "ready") && streq_ptr(get_string(parsed, "secret"), SECRET);
        r = agent_ready_parse(line, len, SECRET, &info);
        FUZZ_CHECK(IN_SET(r, 0, -EBADMSG));
        FUZZ_CHECK((r == 0) == want);
        FUZZ_CHECK((r == 0) == !!info);
        if (info) {
                FUZZ_CHECK(json_object_is_type(info, json_type_object));
                FUZZ_CHECK(!json_object_object_get_ex(info, "op", NULL));
                FUZZ_CHECK(!json_object_object_get_ex(info, "secret", NULL));
                FUZZ_CHECK(json_object_object_length(info) + 2 == json_object_object_length(parsed));
                json_object_put(info);
        }
        info = NULL;
        FUZZ_CHECK(agent_ready_parse(line, len, NULL, &info) == -EBADMSG && !info);
        FUZZ_CHECK(agent_ready_parse(line, len, "", &info) == -EBADMSG && !info);
}

static void check_cap(json_object *parsed) {
        size_t n;

        if (!parsed)
                return;
        n = agent_answer_max(parsed);
        FUZZ_CHECK(n >= AGENT_ANSWER_SMALL_MAX);
        FUZZ_CHECK(n <= AGENT_ANSWER_SMALL_MAX + 2 * ((AGENT_EXEC_OUTPUT_MAX + 2) / 3 * 4));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *line = fuzz_strndup(data, size);
        json_object *parsed;

        /* zvmd hands a line without its newline, NUL-terminated. */
        if (!line)
                return 0;
        parsed = agent_line_parse(line, size);
        FUZZ_CHECK(!parsed || json_object_is_type(parsed, json_type_object));
        check_answer(line, size, parsed);
        check_ready(line, size, parsed);
        check_cap(parsed);
        json_object_put(parsed);
        return 0;
}
