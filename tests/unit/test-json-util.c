/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bounded JSON from a hostile peer (lib/json-util.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "json-util.h"
#include "macro.h"
#include "tap.h"

static int prescan(const char *s, unsigned depth, size_t values) {
        return json_prescan(s, strlen(s), depth, values);
}

static int parse(const char *s, unsigned depth, size_t values, json_object **ret) {
        return json_parse_bounded(s, strlen(s), depth, values, ret);
}

static void test_prescan(void) {
        static const struct {
                const char *json;
                unsigned depth;
                size_t values;
                int want;
                const char *what;
        } cases[] = {
                { "{\"ok\":true}", 1, 1, 0, "an object: depth 1, 1 value" },
                { "{\"a\":1,\"b\":2}", 1, 2, 0, "two members: 2" },
                { "{\"a\":1,\"b\":2}", 1, 1, -E2BIG, "two members over 1" },
                { "[0,0,0,0]", 1, 4, 0, "4 elements: 4" },
                { "[0,0,0,0]", 1, 3, -E2BIG, "4 elements over 3" },
                { "[[[]]]", 3, 10, 0, "depth 3 at 3" },
                { "[[[]]]", 2, 10, -E2BIG, "depth 3 over 2" },
                { "{\"s\":\"[[[[,,,,{{{{\"}", 1, 1, 0, "brackets and commas inside a string do not count" },
                { "{\"s\":\"a\\\"[[[,,,\"}", 1, 1, 0, "nor after an escaped quote" },
                { "{\"s\":\"a\\\\\",\"t\":[1,2]}", 2, 4, 0, "an escaped backslash ends before the quote" },
                { "{\"s\":\"a\\\\\",\"t\":[1,2]}", 2, 3, -E2BIG, "so what follows counts" },
                { "{\"s\":\"open}", 5, 5, -EBADMSG, "an unterminated string" },
                { "[1,2", 5, 5, -EBADMSG, "an unclosed array" },
                { "1]", 5, 5, -EBADMSG, "a close without an open" },
                { "", 5, 5, 0, "nothing (json-c refuses it)" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                is_int(prescan(cases[i].json, cases[i].depth, cases[i].values), cases[i].want, "prescan: %s",
                       cases[i].what);
        is_int(json_prescan("[0\0,1]", 6, 5, 5), -EBADMSG, "prescan: a NUL byte outside a string");
}

static void test_parse(void) {
        json_object *o = NULL, *v;

        is_int(parse("{\"ok\":true,\"n\":[1,2,3]}", 4, 16, &o), 0, "parse: a normal answer");
        ok(o && json_object_object_get_ex(o, "n", &v) && json_object_array_length(v) == 3, "parse: the values are there");
        json_object_put(o);
        o = NULL;
        is_int(parse("  {\"ok\":true}  \r\n", 4, 16, &o), 0, "parse: surrounding whitespace is fine");
        json_object_put(o);
        o = NULL;
        is_int(parse("42", 4, 16, &o), 0, "parse: a bare number ends at the end of input");
        ok(o && json_object_get_int(o) == 42, "parse: it is 42");
        json_object_put(o);
        o = NULL;
        is_int(parse("{\"ok\":true} {\"ok\":false}", 4, 16, &o), -EBADMSG, "parse: trailing bytes refused");
        is_int(parse("{\"ok\":true,}", 4, 16, &o), -EBADMSG, "parse: strict (trailing comma refused)");
        is_int(parse("{\"ok\":tru", 4, 16, &o), -EBADMSG, "parse: truncated");
        is_int(parse("[[[[[[[[[[1]]]]]]]]]]", 8, 100, &o), -E2BIG, "parse: too deep");
        ok(!o, "parse: nothing returned on failure");
        is_int(json_parse_bounded("{}x", 2, 4, 16, &o), -EINVAL, "parse: the input must end in NUL at len");
}

/* The attack: a few MiB of "[0,0,0,...]" would make json-c allocate a heap
 * object per element (gigabytes for the 32 MiB zvmd used to accept). With
 * a bound it is refused by the pre-scan, before json-c runs. */
static void test_flood(void) {
        size_t n = 8 * 1024 * 1024;
        char *s = malloc(n + 1);
        json_object *o = NULL;

        assert_se(s);
        s[0] = '[';
        for (size_t i = 1; i < n - 1; i += 2) {
                s[i] = '0';
                s[i + 1] = ',';
        }
        s[n - 2] = '0';
        s[n - 1] = ']';
        s[n] = '\0';
        is_int(parse(s, 8, 1024, &o), -E2BIG, "4 Mi elements over a bound of 1024: refused");
        ok(!o, "nothing allocated for it");
        free(s);
}

static void test_object_helpers(void) {
        json_object *o = NULL;

        is_int(json_parse_bounded_object("[1]", 3, 4, 16, &o), -EBADMSG, "an array is no object: -EBADMSG");
        ok(!o, "nothing returned");
        is_int(json_parse_bounded_object("[[[[[1]]]]]", 11, 4, 16, &o), -E2BIG, "the bounds still hold");
        const char *text = "{\"a\":\"x\",\"b\":1,\"c\":null}";

        is_int(json_parse_bounded_object(text, strlen(text), 4, 16, &o), 0, "an object");
        ok(streq_ptr(json_get_string_member(o, "a"), "x"), "a string member");
        ok(!json_get_string_member(o, "b") && !json_get_string_member(o, "c") && !json_get_string_member(o, "d"),
           "a number, a null, an absent member: NULL, not json-c's rendering");
        json_object_put(o);
}

int main(void) {
        test_prescan();
        test_object_helpers();
        test_parse();
        test_flood();
        return done_testing();
}
