/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lib/json-util: json_prescan() and json_parse_bounded(), which every line
 * from a guest agent (answers, READY) goes through before json-c allocates
 * anything.
 *
 * Input: one line as the guest sends it.
 *
 * Properties (json-util.h's contract), with the agent's bounds:
 *   - whatever json-c (unbounded but for its own depth limit) builds from
 *     an input the pre-scan passed nests no deeper than the bound and has
 *     at most 2 * max_values + 1 values: the scan really bounds json-c;
 *   - json_parse_bounded() returns exactly one value within the bounds, or
 *     -E2BIG/-EBADMSG/-ENOMEM.
 */
#include <errno.h>

#include "fuzz.h"
#include "json-util.h"

#define DEPTH_MAX 8U
#define VALUES_MAX 1024U

/* Depth (a scalar is 0, a container 1 + its deepest child) and values. */
static unsigned measure(json_object *o, size_t *values) {
        unsigned depth = 0;

        (*values)++;
        if (json_object_is_type(o, json_type_array)) {
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        depth = MAX(depth, measure(json_object_array_get_idx(o, i), values));
                return depth + 1;
        }
        if (json_object_is_type(o, json_type_object)) {
                json_object_object_foreach(o, k, v) {
                        (void) k;
                        depth = MAX(depth, measure(v, values));
                }
                return depth + 1;
        }
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *s = NULL;
        json_object *o = NULL;
        size_t values = 0;
        int r;

        s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = '\0';

        r = json_prescan(s, size, DEPTH_MAX, VALUES_MAX);
        FUZZ_CHECK(r == 0 || r == -E2BIG || r == -EBADMSG);
        if (r == 0) {
                json_tokener *tok = json_tokener_new_ex(64);

                if (tok) {
                        o = json_tokener_parse_ex(tok, s, (int) MIN(size, (size_t) INT32_MAX));
                        json_tokener_free(tok);
                }
                if (o) {
                        FUZZ_CHECK(measure(o, &values) <= DEPTH_MAX);
                        FUZZ_CHECK(values <= 2 * VALUES_MAX + 1);
                        json_object_put(o);
                        o = NULL;
                }
        }

        r = json_parse_bounded(s, size, DEPTH_MAX, VALUES_MAX, &o);
        if (r < 0) {
                FUZZ_CHECK(r == -E2BIG || r == -EBADMSG || r == -ENOMEM);
                FUZZ_CHECK(!o);
                return 0;
        }
        values = 0;
        FUZZ_CHECK(measure(o, &values) <= DEPTH_MAX);
        FUZZ_CHECK(values <= 2 * VALUES_MAX + 1);
        json_object_put(o);
        return 0;
}
