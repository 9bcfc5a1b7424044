/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The agent's JSON reader and writer (guest-agent/agent-json.c), built with
 * the host compiler from the agent's own source. The reader runs on
 * untrusted bytes before authentication: malformed, truncated, deeply
 * nested and huge-count input must be refused with a message, never crash
 * or allocate without bound (the ASan build runs this too).
 */
#include <math.h>
#include <stdint.h>

#include "agent-json.h"
#include "tap.h"

/* Parses text; returns the root or NULL, error filled either way. */
static const Json *parse(Arena *a, const char *text, size_t len, char *error, size_t size) {
        return json_parse(a, text, len, error, size);
}

static bool parses(const char *text) {
        Arena a = {};
        char error[256];
        bool r = parse(&a, text, strlen(text), error, sizeof(error)) != NULL;

        arena_free(&a);
        return r;
}

/* Whether text is refused with a message containing want. */
static bool refused_with(const char *text, size_t len, const char *want) {
        Arena a = {};
        char error[256] = "untouched";
        const Json *v = parse(&a, text, len, error, sizeof(error));
        bool r = !v && strstr(error, "malformed JSON: ") == error && strstr(error, want);

        if (!r)
                diag("  input '%.60s': %s, error '%s'", text, v ? "accepted" : "refused", error);
        arena_free(&a);
        return r;
}

static void test_values(void) {
        static const char doc[] =
                "{\"s\":\"x\\\"y\\\\z\\/\\b\\f\\n\\r\\t\",\"i\":-42,\"big\":9223372036854775807,"
                "\"min\":-9223372036854775808,\"over\":9223372036854775808,\"r\":1.5e2,\"t\":true,\"f\":false,"
                "\"n\":null,\"a\":[1,[2,[]],{}],\"o\":{\"k\":\"v\"},\"s\":\"second\"}";
        Arena a = {};
        char error[256];
        const Json *root = parse(&a, doc, strlen(doc), error, sizeof(error)), *v;

        ok(root && root->type == JSON_OBJECT && root->n == 12, "an object with every kind of value parses (%s)",
           root ? "ok" : error);
        if (!root) {
                arena_free(&a);
                return;
        }
        v = json_get(root, "s");
        ok(v && v->type == JSON_STRING && v->len == 11 && memcmp(v->s, "x\"y\\z/\b\f\n\r\t", 11) == 0,
           "escapes are decoded; a repeated key gives the first");
        v = json_get(root, "i");
        ok(v && v->type == JSON_INT && v->i == -42, "negative integer");
        v = json_get(root, "big");
        ok(v && v->type == JSON_INT && v->i == INT64_MAX, "INT64_MAX stays an integer");
        v = json_get(root, "min");
        ok(v && v->type == JSON_INT && v->i == INT64_MIN, "INT64_MIN stays an integer");
        v = json_get(root, "over");
        ok(v && v->type == JSON_REAL && v->d == 9223372036854775808.0, "past int64 becomes a real");
        v = json_get(root, "r");
        ok(v && v->type == JSON_REAL && v->d == 150.0, "exponent: a real");
        ok(json_get(root, "t")->b && json_get(root, "t")->type == JSON_BOOL && !json_get(root, "f")->b,
           "true, false");
        ok(json_get(root, "n")->type == JSON_NULL, "null");
        v = json_get(root, "a");
        ok(v && v->type == JSON_ARRAY && v->n == 3 && v->first->i == 1 && v->first->next->n == 2 &&
           v->last->type == JSON_OBJECT && v->last->n == 0, "nested arrays keep order and counts");
        ok(json_get(json_get(root, "o"), "k") && strcmp(json_get(json_get(root, "o"), "k")->s, "v") == 0,
           "member of a nested object");
        ok(!json_get(root, "missing") && !json_get(json_get(root, "a"), "x") && !json_get(NULL, "x"),
           "json_get: missing key, non-object, NULL");
        arena_free(&a);
}

static void test_strings(void) {
        Arena a = {};
        char error[256];
        const Json *v;

        v = parse(&a, "\"\\u0041\\u00e9\\u20ac\\ud83d\\ude00\"", 32, error, sizeof(error));
        ok(v && v->len == 10 && memcmp(v->s, "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10) == 0,
           "\\u escapes, a surrogate pair becomes one 4-byte character");
        v = parse(&a, "\"a\\u0000b\"", 10, error, sizeof(error));
        ok(v && v->len == 3 && !json_is_cstring(v), "\\u0000 is kept in data but is not a C string");
        v = parse(&a, "\"h\xc3\xa9\xf0\x9f\x98\x80\"", 9, error, sizeof(error));
        ok(v && v->len == 7 && json_is_cstring(v), "raw UTF-8 passes");
        arena_free(&a);

        ok(refused_with("\"\\udc00\"", 8, "lone low surrogate"), "lone low surrogate");
        ok(refused_with("\"\\ud800\"", 8, "high surrogate"), "high surrogate at the end");
        ok(refused_with("\"\\ud800\\u0041\"", 14, "high surrogate"), "high surrogate before a non-surrogate");
        ok(refused_with("\"\\u12g4\"", 8, "bad \\u escape"), "bad hex digit");
        ok(refused_with("\"\\u12\"", 6, "bad \\u escape"), "short \\u escape");
        ok(refused_with("\"\\x\"", 4, "bad escape"), "unknown escape");
        ok(refused_with("\"a\nb\"", 5, "control character"), "raw newline in a string");
        ok(refused_with("\"\xc0\x80\"", 4, "invalid UTF-8"), "overlong NUL");
        ok(refused_with("\"\xe0\x80\xaf\"", 5, "invalid UTF-8"), "overlong 3-byte");
        ok(refused_with("\"\xed\xa0\x80\"", 5, "invalid UTF-8"), "encoded surrogate");
        ok(refused_with("\"\xf4\x90\x80\x80\"", 6, "invalid UTF-8"), "above U+10FFFF");
        ok(refused_with("\"\xe2\x82\"", 4, "invalid UTF-8"), "truncated sequence");
        ok(refused_with("\"\xff\"", 3, "invalid UTF-8"), "0xff");
        ok(refused_with("\"abc", 4, "unterminated string"), "unterminated string");
        ok(refused_with("\"abc\\\"", 6, "unterminated string"), "escaped quote at the end");
}

static void test_malformed(void) {
        static const struct {
                const char *text, *why;
        } t[] = {
                { "", "unexpected end" },           { "   ", "unexpected end" },
                { "{", "expected a member name" },  { "[", "unexpected end" },
                { "[1,]", "unexpected character" }, { "[1 2]", "expected ',' or ']'" },
                { "{\"a\"}", "expected ':'" },      { "{\"a\":1,}", "expected a member name" },
                { "{\"a\":1 \"b\":2}", "expected ',' or '}'" }, { "{a:1}", "expected a member name" },
                { "tru", "unexpected word" },       { "nul", "unexpected word" },
                { "True", "unexpected character" }, { "01", "trailing data" },
                { "-", "bad number" },              { "1.", "bad number" },
                { "1e", "bad number" },             { ".5", "unexpected character" },
                { "+1", "unexpected character" },   { "{} x", "trailing data" },
                { "[]]", "trailing data" },         { "\x01", "unexpected character" },
        };

        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                ok(refused_with(t[i].text, strlen(t[i].text), t[i].why), "refused: '%s' (%s)", t[i].text, t[i].why);
        ok(refused_with("{\"a\":1}\0", 8, "trailing data"), "a NUL after the value is trailing data");
        ok(parses(" \t\r\n{ \"a\" : [ 1 , 2 ] } \n"), "whitespace everywhere it may be");
}

/* Every proper prefix of a request is refused: a line cut anywhere never
 * reads as something else. */
static void test_truncated(void) {
        static const char doc[] = "{\"id\":[1,-2.5e3,true,null],\"op\":\"exec\",\"argv\":[\"sh\",\"-c\",\"\\u00e9\\ud83d\\ude00\"],"
                                  "\"o\":{\"x\":{}}}";
        size_t n = strlen(doc), refused = 0;

        for (size_t len = 0; len < n; len++) {
                Arena a = {};
                char error[256];

                if (!parse(&a, doc, len, error, sizeof(error)))
                        refused++;
                else
                        diag("  prefix of %zu bytes accepted", len);
                arena_free(&a);
        }
        is_int(refused, n, "all %zu proper prefixes of a request are refused", n);
        ok(parses(doc), "the whole request parses");
}

static char *repeat(const char *head, const char *unit, size_t n, const char *tail) {
        size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
        char *s = malloc(hl + ul * n + tl + 1), *p = s;

        assert_se(s);
        memcpy(p, head, hl);
        p += hl;
        for (size_t i = 0; i < n; i++, p += ul)
                memcpy(p, unit, ul);
        memcpy(p, tail, tl + 1);
        return s;
}

static void test_depth(void) {
        _cleanup_free_ char *ok16 = NULL, *deep17 = NULL, *obj17 = NULL, *huge = NULL;
        char *s;

        s = repeat("", "[", 16, "");
        ok16 = repeat(s, "]", 16, "");
        free(s);
        ok(parses(ok16), "16 nested arrays parse");
        s = repeat("", "[", 17, "");
        deep17 = repeat(s, "]", 17, "");
        free(s);
        ok(refused_with(deep17, strlen(deep17), "nested deeper than 16"), "17 nested arrays are refused");
        s = repeat("", "{\"a\":", 17, "1");
        obj17 = repeat(s, "}", 17, "");
        free(s);
        ok(refused_with(obj17, strlen(obj17), "nested deeper than 16"), "17 nested objects are refused");
        /* A million opening brackets: refused at depth 17, no deep recursion. */
        huge = repeat("", "[", 1000000, "");
        ok(refused_with(huge, strlen(huge), "nested deeper than 16"), "a million '[' is refused early");
}

static void test_counts(void) {
        _cleanup_free_ char *max = NULL, *over = NULL, *members = NULL, *num64 = NULL, *num65 = NULL;
        Arena a = {};
        char error[256];
        const Json *v;

        /* The array itself is one value: 65535 elements make 65536. */
        max = repeat("[0", ",0", JSON_MAX_VALUES - 2, "]");
        v = parse(&a, max, strlen(max), error, sizeof(error));
        ok(v && v->n == JSON_MAX_VALUES - 1, "65536 values parse (%s)", v ? "ok" : error);
        arena_free(&a);
        over = repeat("[0", ",0", JSON_MAX_VALUES - 1, "]");
        ok(refused_with(over, strlen(over), "too many values"), "65537 values are refused");
        members = repeat("{\"a\":[", "{},", 70000, "0]}");
        ok(refused_with(members, strlen(members), "too many values"), "70000 empty objects are refused");

        num64 = repeat("", "1", 64, "");
        v = parse(&a, num64, 64, error, sizeof(error));
        ok(v && v->type == JSON_REAL, "a 64-digit number parses (as a real: past int64)");
        arena_free(&a);
        num65 = repeat("", "1", 65, "");
        ok(refused_with(num65, 65, "number too long"), "a 65-digit number is refused");
}

static char *put(void (*fn)(Buf *b, const void *arg), const void *arg) {
        Buf b = {};
        char *s;

        fn(&b, arg);
        buf_putc(&b, 0);
        assert_se(!b.failed);
        s = strdup(b.data);
        buf_free(&b);
        return s;
}

static void put_value_fn(Buf *b, const void *arg) {
        json_put_value(b, arg);
}

/* Parses text, writes it back, compares with want. */
static bool round_trip(const char *text, const char *want) {
        Arena a = {};
        char error[256];
        const Json *v = parse(&a, text, strlen(text), error, sizeof(error));
        _cleanup_free_ char *out = v ? put(put_value_fn, v) : NULL;
        bool r = out && strcmp(out, want) == 0;

        if (!r)
                diag("  '%s' -> '%s', want '%s'", text, out ?: error, want);
        arena_free(&a);
        return r;
}

static void test_writer(void) {
        Buf b = {};

        ok(round_trip("{ \"a\" : [1, -2, true, false, null, \"x\"], \"b\": {} }",
                      "{\"a\":[1,-2,true,false,null,\"x\"],\"b\":{}}"), "round trip: compact form");
        ok(round_trip("1.0", "1.0"), "a real stays a real (1.0)");
        ok(round_trip("-2.5e-1", "-0.25"), "a real with an exponent");
        ok(round_trip("1e22", "1e+22"), "a large real keeps its exponent form");
        ok(round_trip("\"\\u0001\\u001f\\\"\\\\\\n\\t/\\u00e9\"", "\"\\u0001\\u001f\\\"\\\\\\n\\t/\xc3\xa9\""),
           "strings: control characters escaped, UTF-8 kept");
        ok(round_trip("\"a\\u0000b\"", "\"a\\u0000b\""), "an embedded NUL round-trips");

        json_put_string(&b, "a\xff" "b\xc0\x80" "c\xed\xa0\x80", 9);
        buf_putc(&b, 0);
        is_str(b.data, "\"a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd" "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"",
               "invalid UTF-8 written as U+FFFD, byte by byte");
        buf_free(&b);

        json_put_double(&b, NAN, 2);
        buf_putc(&b, ',');
        json_put_double(&b, INFINITY, 2);
        buf_putc(&b, ',');
        json_put_double(&b, 1.239, 2);
        json_put_key(&b, "k");
        buf_putc(&b, 0);
        is_str(b.data, "null,null,1.24,\"k\":", "json_put_double: NaN/inf are null; json_put_key");
        buf_free(&b);
        json_put_value(&b, NULL);
        buf_putc(&b, 0);
        is_str(b.data, "null", "json_put_value(NULL) is null");
        buf_free(&b);
}

/* Every single-byte string and random valid UTF-8 survive write -> parse. */
static void test_string_round_trip(void) {
        unsigned good = 0, n = 0;

        for (unsigned c = 0; c < 0x80; c++, n++) {
                char in[3] = { 'x', (char) c, 'y' };
                Buf b = {};
                Arena a = {};
                char error[256];
                const Json *v;

                json_put_string(&b, in, 3);
                v = b.failed ? NULL : parse(&a, b.data, b.len, error, sizeof(error));
                if (v && v->type == JSON_STRING && v->len == 3 && memcmp(v->s, in, 3) == 0)
                        good++;
                buf_free(&b);
                arena_free(&a);
        }
        srand(4242);
        for (unsigned i = 0; i < 2000; i++, n++) {
                char in[256], error[256];
                size_t len = 0;
                Buf b = {};
                Arena a = {};
                const Json *v;

                while (len < sizeof(in) - 4) {
                        uint32_t cp = (uint32_t) rand() % 0x110000;

                        if (cp >= 0xD800 && cp <= 0xDFFF)
                                continue;
                        if (cp < 0x80)
                                in[len++] = (char) cp;
                        else if (cp < 0x800) {
                                in[len++] = (char) (0xC0 | cp >> 6);
                                in[len++] = (char) (0x80 | (cp & 0x3F));
                        } else if (cp < 0x10000) {
                                in[len++] = (char) (0xE0 | cp >> 12);
                                in[len++] = (char) (0x80 | ((cp >> 6) & 0x3F));
                                in[len++] = (char) (0x80 | (cp & 0x3F));
                        } else {
                                in[len++] = (char) (0xF0 | cp >> 18);
                                in[len++] = (char) (0x80 | ((cp >> 12) & 0x3F));
                                in[len++] = (char) (0x80 | ((cp >> 6) & 0x3F));
                                in[len++] = (char) (0x80 | (cp & 0x3F));
                        }
                        if (rand() % 16 == 0)
                                break;
                }
                json_put_string(&b, in, len);
                v = b.failed ? NULL : parse(&a, b.data, b.len, error, sizeof(error));
                if (v && v->type == JSON_STRING && v->len == len && memcmp(v->s, in, len) == 0)
                        good++;
                buf_free(&b);
                arena_free(&a);
        }
        is_int(good, n, "%u strings (every ASCII byte, random UTF-8) survive write and parse", n);
}

/* Random bytes and random mutations of a request: the parser must answer
 * (accept or refuse with a message) without crashing; ASan checks bounds. */
static void test_garbage(void) {
        static const char seed[] = "{\"id\":7,\"op\":\"exec\",\"argv\":[\"/bin/true\"],\"env\":[\"A=\\u00e9\"],\"x\":[[{}],-1.5e9]}";
        unsigned answered = 0, n = 20000;

        srand(7);
        for (unsigned i = 0; i < n; i++) {
                char buf[sizeof(seed)], error[256] = "";
                size_t len = sizeof(seed) - 1;
                Arena a = {};
                const Json *v;

                memcpy(buf, seed, len);
                if (i % 2 == 0)
                        for (size_t k = 0; k < len; k++)
                                buf[k] = (char) (rand() & 0xff);
                else
                        for (int m = rand() % 4; m >= 0; m--)
                                buf[rand() % len] = (char) (rand() & 0xff);
                len = (size_t) rand() % (len + 1);
                v = parse(&a, buf, len, error, sizeof(error));
                if (v || strncmp(error, "malformed JSON: ", 16) == 0)
                        answered++;
                arena_free(&a);
        }
        is_int(answered, n, "%u random and mutated inputs: each accepted or refused with a message", n);
}

static void test_buf_bound(void) {
        char block[100] = {};
        Buf b = {};

        buf_put(&b, block, sizeof(block));
        ok(b.len == 100 && !b.failed, "buf_put within bounds");
        ok(!buf_reserve(&b, OUT_MAX - 99) && b.failed, "one byte past OUT_MAX fails and marks the buffer");
        buf_puts(&b, "x");
        ok(b.failed && b.len == 100, "a failed buffer stays failed");
        buf_free(&b);
        ok(!b.data && !b.failed, "buf_free resets");
        ok(!buf_reserve(&b, SIZE_MAX) && b.failed, "SIZE_MAX does not wrap around");
        buf_free(&b);
}

int main(void) {
        test_values();
        test_strings();
        test_malformed();
        test_truncated();
        test_depth();
        test_counts();
        test_writer();
        test_string_round_trip();
        test_garbage();
        test_buf_bound();
        return done_testing();
}
