/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * daemon/core/template: template_build_request_parse(), the checks of a
 * POST /templates body (what rest/templates.c answers 400 with, before any
 * build starts).
 *
 * Input: the request body, parsed as rest_parse_body_object() does (json-c,
 * no NUL byte, an object).
 *
 * Properties (template.h):
 *   - 0, -EINVAL or -ENOMEM; a refusal names a key and gives a one-line
 *     reason; an unknown key is one of the body's own;
 *   - accepted: a valid name and profile, suite absent or valid, at most
 *     TEMPLATE_INCLUDE_MAX valid package names, nothing for tiny but the
 *     name, and no member but the four;
 *   - round trip: the request written back as a body (include as an array)
 *     parses to the same request.
 */
#include <errno.h>
#include <json-c/json.h>

#include "fuzz.h"
#include "string-util.h"
#include "template.h"

static bool known_key(const char *k) {
        return streq(k, "name") || streq(k, "profile") || streq(k, "suite") || streq(k, "include");
}

static void check_accepted(json_object *body, const TemplateBuildRequest *rq) {
        size_t n = 0;

        FUZZ_CHECK(rq->name && template_name_is_valid(rq->name) && strlen(rq->name) <= TEMPLATE_NAME_MAX);
        FUZZ_CHECK(rq->profile && template_profile_is_valid(rq->profile));
        FUZZ_CHECK(!rq->suite || template_suite_is_valid(rq->suite));
        STRV_FOREACH(p, rq->include) {
                FUZZ_CHECK(template_package_is_valid(*p));
                n++;
        }
        FUZZ_CHECK(n <= TEMPLATE_INCLUDE_MAX);
        if (streq(rq->profile, "tiny"))
                FUZZ_CHECK(!rq->suite && !json_object_object_get_ex(body, "include", NULL));
        json_object_object_foreach(body, key, val) {
                (void) val;
                FUZZ_CHECK(known_key(key));
        }
}

/* The request as a body again: the same request comes back. */
static void check_round_trip(const TemplateBuildRequest *rq) {
        _cleanup_(template_build_request_done) TemplateBuildRequest back = {};
        _cleanup_free_ char *err = NULL;
        json_object *o = json_object_new_object(), *inc = NULL;
        int r;

        if (!o)
                return;
        json_object_object_add(o, "name", json_object_new_string(rq->name));
        json_object_object_add(o, "profile", json_object_new_string(rq->profile));
        if (rq->suite)
                json_object_object_add(o, "suite", json_object_new_string(rq->suite));
        if (rq->include) {
                inc = json_object_new_array();
                STRV_FOREACH(p, rq->include)
                        json_object_array_add(inc, json_object_new_string(*p));
                json_object_object_add(o, "include", inc);
        }
        r = template_build_request_parse(o, &back, NULL, &err);
        FUZZ_CHECK(r == -ENOMEM || r == 0);
        if (r == 0)
                FUZZ_CHECK(streq(back.name, rq->name) && streq(back.profile, rq->profile) &&
                           streq_ptr(back.suite, rq->suite) &&
                           strv_equal(back.include, rq->include));     /* NULL and empty are equal */
        json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(template_build_request_done) TemplateBuildRequest rq = {};
        _cleanup_free_ char *text = fuzz_strndup(data, size), *err = NULL;
        const char *key = NULL;
        json_tokener *tok;
        json_object *body;
        int r;

        if (!text || size == 0 || size > 64 * 1024)
                return 0;
        tok = json_tokener_new();
        if (!tok)
                return 0;
        body = json_tokener_parse_ex(tok, text, (int) size);
        if (json_tokener_get_error(tok) != json_tokener_success || !json_object_is_type(body, json_type_object)) {
                json_object_put(body);
                json_tokener_free(tok);
                return 0;
        }
        json_tokener_free(tok);

        r = template_build_request_parse(body, &rq, &key, &err);
        FUZZ_CHECK(IN_SET(r, 0, -EINVAL, -ENOMEM));
        if (r == -EINVAL) {
                FUZZ_CHECK(key && err && err[0] && !strchr(err, '\n'));
                FUZZ_CHECK(!rq.name && !rq.include);
                if (!known_key(key))
                        FUZZ_CHECK(json_object_object_get_ex(body, key, NULL));
        }
        if (r == 0) {
                check_accepted(body, &rq);
                check_round_trip(&rq);
        }
        json_object_put(body);
        return 0;
}
