/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * guest-agent/agent-json: zvm-agent's own JSON reader, which parses every
 * line a connection sends, before authentication.
 *
 * Input: one JSON text (a request line without its newline).
 *
 * Properties (agent-json.h's contract):
 *   - refused: a "malformed JSON: ..." message, terminated;
 *   - accepted: within the bounds (depth, value count); json_get() finds the
 *     first member of each key;
 *   - round trip: the value written back with json_put_value() parses to an
 *     equal tree (a non-finite real is written as null), and writing that
 *     tree again gives the same bytes.
 */
#include <math.h>

#include "agent-buf.h"
#include "agent-json.h"
#include "fuzz.h"

/* Checks bounds and json_get(); returns the number of values. */
static size_t check_tree(const Json *v, unsigned depth) {
        size_t n = 1, members = 0;

        /* Containers nest at most JSON_MAX_DEPTH deep (that bounds the
         * parser's recursion); the 16th may still hold scalars. */
        FUZZ_CHECK(depth <= JSON_MAX_DEPTH ||
                   (depth == JSON_MAX_DEPTH + 1 && v->type != JSON_ARRAY && v->type != JSON_OBJECT));
        if (v->type == JSON_STRING)
                FUZZ_CHECK(v->s && v->s[v->len] == '\0');
        if (v->type != JSON_ARRAY && v->type != JSON_OBJECT)
                return n;
        for (const Json *c = v->first; c; c = c->next) {
                members++;
                if (v->type == JSON_OBJECT && !memchr(c->key, 0, c->key_len)) {
                        const Json *first = json_get(v, c->key);

                        FUZZ_CHECK(first);
                        FUZZ_CHECK(first->key_len == c->key_len && memcmp(first->key, c->key, c->key_len) == 0);
                        for (const Json *p = v->first; p != first; p = p->next)
                                FUZZ_CHECK(p->key_len != c->key_len || memcmp(p->key, c->key, c->key_len) != 0);
                }
                n += check_tree(c, depth + 1);
        }
        FUZZ_CHECK(members == v->n);
        return n;
}

static void check_equal(const Json *a, const Json *b) {
        if (a->type == JSON_REAL && !isfinite(a->d)) {
                FUZZ_CHECK(b->type == JSON_NULL);
                return;
        }
        FUZZ_CHECK(a->type == b->type);
        switch (a->type) {
        case JSON_NULL:
                break;
        case JSON_BOOL:
                FUZZ_CHECK(a->b == b->b);
                break;
        case JSON_INT:
                FUZZ_CHECK(a->i == b->i);
                break;
        case JSON_REAL:
                FUZZ_CHECK(a->d == b->d);
                break;
        case JSON_STRING:
                FUZZ_CHECK(a->len == b->len && memcmp(a->s, b->s, a->len) == 0);
                break;
        case JSON_ARRAY:
        case JSON_OBJECT: {
                const Json *x = a->first, *y = b->first;

                for (; x && y; x = x->next, y = y->next) {
                        if (a->type == JSON_OBJECT)
                                FUZZ_CHECK(x->key_len == y->key_len && memcmp(x->key, y->key, x->key_len) == 0);
                        check_equal(x, y);
                }
                FUZZ_CHECK(!x && !y);
                break;
        }
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Arena arena = {};
        Buf out = {}, out2 = {};
        char error[256] = "";
        const Json *v, *again;

        v = json_parse(&arena, (const char *) data, size, error, sizeof(error));
        if (!v) {
                FUZZ_CHECK(memchr(error, 0, sizeof(error)));
                goto finish;
        }
        FUZZ_CHECK(check_tree(v, 1) <= JSON_MAX_VALUES);

        json_put_value(&out, v);
        if (out.failed)
                goto finish;
        error[0] = '\0';
        again = json_parse(&arena, out.data, out.len, error, sizeof(error));
        if (!again)
                fprintf(stderr, "written form does not parse: %s\n%.*s\n", error, (int) MIN(out.len, (size_t) 400),
                        out.data);
        FUZZ_CHECK(again);
        check_equal(v, again);
        json_put_value(&out2, again);
        if (!out2.failed)
                FUZZ_CHECK(out2.len == out.len && memcmp(out2.data, out.data, out.len) == 0);
finish:
        buf_free(&out);
        buf_free(&out2);
        arena_free(&arena);
        return 0;
}
