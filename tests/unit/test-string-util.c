/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <limits.h>

#include "macro.h"
#include "string-util.h"
#include "tap.h"

static void test_strjoin(void) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL, *e = NULL;

        a = strjoin("a", "bc", "", "def");
        is_str(a, "abcdef", "strjoin concatenates");
        b = strjoin(NULL);
        is_str(b, "", "strjoin(NULL) is empty");
        c = strjoin("x");
        is_str(c, "x", "strjoin single");
        d = strjoin("a", "b", NULL);
        is_str(d, "ab", "strjoin with an explicit NULL sentinel");
        e = strjoin("a", NULL, "ignored");
        is_str(e, "a", "strjoin stops at the first NULL");
}

static void test_strstrip(void) {
        char a[] = "  \t hello world \n\r ", b[] = " \t\n", c[] = "x";

        is_str(strstrip(a), "hello world", "strstrip both ends");
        is_str(strstrip(b), "", "strstrip all whitespace");
        is_str(strstrip(c), "x", "strstrip nothing to do");
        ok(strstrip(NULL) == NULL, "strstrip(NULL)");
}

static void test_safe_ato(void) {
        static const struct {
                const char *s;
                int r;
                uint64_t v;
        } u64[] = {
                { "0", 0, 0 },
                { "007", 0, 7 },
                { "18446744073709551615", 0, UINT64_MAX },
                { "18446744073709551616", -ERANGE, 0 },
                { "99999999999999999999999", -ERANGE, 0 },
                { "99999999999999999999999x", -EINVAL, 0 },
                { "", -EINVAL, 0 },
                { " 1", -EINVAL, 0 },
                { "1 ", -EINVAL, 0 },
                { "+1", -EINVAL, 0 },
                { "-1", -EINVAL, 0 },
                { "0x10", -EINVAL, 0 },
                { "12a", -EINVAL, 0 },
        };
        static const struct {
                const char *s;
                int r;
                uint32_t v;
        } u32[] = {
                { "4294967295", 0, UINT32_MAX },
                { "4294967296", -ERANGE, 0 },
                { "42", 0, 42 },
                { "4.2", -EINVAL, 0 },
        };
        static const struct {
                const char *s;
                int r;
                int v;
        } i[] = {
                { "-2147483648", 0, INT_MIN },
                { "2147483647", 0, INT_MAX },
                { "2147483648", -ERANGE, 0 },
                { "-2147483649", -ERANGE, 0 },
                { "-0", 0, 0 },
                { "-", -EINVAL, 0 },
                { "--1", -EINVAL, 0 },
                { "-12", 0, -12 },
                { "", -EINVAL, 0 },
        };

        for (size_t k = 0; k < ELEMENTSOF(u64); k++) {
                uint64_t v = 12345;
                int r = safe_atou64(u64[k].s, &v);

                is_int(r, u64[k].r, "safe_atou64(\"%s\") returns %d", u64[k].s, u64[k].r);
                is_int((long long) (r >= 0 ? v : 12345), (long long) (r >= 0 ? u64[k].v : 12345),
                       "safe_atou64(\"%s\") value (untouched on error)", u64[k].s);
        }
        for (size_t k = 0; k < ELEMENTSOF(u32); k++) {
                uint32_t v = 7;
                int r = safe_atou32(u32[k].s, &v);

                is_int(r, u32[k].r, "safe_atou32(\"%s\") returns %d", u32[k].s, u32[k].r);
                if (r >= 0)
                        is_int(v, u32[k].v, "safe_atou32(\"%s\") value", u32[k].s);
                else
                        is_int(v, 7, "safe_atou32(\"%s\") leaves value untouched", u32[k].s);
        }
        for (size_t k = 0; k < ELEMENTSOF(i); k++) {
                int v = 7;
                int r = safe_atoi(i[k].s, &v);

                is_int(r, i[k].r, "safe_atoi(\"%s\") returns %d", i[k].s, i[k].r);
                if (r >= 0)
                        is_int(v, i[k].v, "safe_atoi(\"%s\") value", i[k].s);
        }
        ok(safe_atou64(NULL, &(uint64_t) {0}) == -EINVAL, "safe_atou64(NULL) is -EINVAL");
}

static void test_parse_size(void) {
        static const struct {
                const char *s;
                int r;
                uint64_t v;
        } t[] = {
                { "512", 0, 512 },
                { "0", 0, 0 },
                { "512B", 0, 512 },
                { "1K", 0, 1024 },
                { "1k", 0, 1024 },
                { "512M", 0, 512ULL << 20 },
                { "2G", 0, 2ULL << 30 },
                { "2GiB", 0, 2ULL << 30 },
                { "3T", 0, 3ULL << 40 },
                { "16777215T", 0, 16777215ULL << 40 },
                { "16777216T", -ERANGE, 0 },
                { "18446744073709551615", 0, UINT64_MAX },
                { "18446744073709551616", -ERANGE, 0 },
                { "1.5G", -EINVAL, 0 },
                { "", -EINVAL, 0 },
                { "G", -EINVAL, 0 },
                { "1X", -EINVAL, 0 },
                { "1 G", -EINVAL, 0 },
                { "1KB", -EINVAL, 0 },
                { "1Ki", -EINVAL, 0 },
                { "1BiB", -EINVAL, 0 },
                { "-1", -EINVAL, 0 },
                { "1G ", -EINVAL, 0 },
        };

        for (size_t k = 0; k < ELEMENTSOF(t); k++) {
                uint64_t v = 99;
                int r = parse_size(t[k].s, &v);

                is_int(r, t[k].r, "parse_size(\"%s\") returns %d", t[k].s, t[k].r);
                ok(r < 0 ? v == 99 : v == t[k].v, "parse_size(\"%s\") value %llu", t[k].s,
                   (unsigned long long) v);
        }
}

static void test_safe_name(void) {
        static const char *const good[] = {
                "a", "web", "web-1", "vm_2.test", "A9", "0",
                "a23456789012345678901234567890123456789012345678901234567890123", /* 63 */
        };
        static const char *const bad[] = {
                "", ".", "..", ".hidden", "-opt", "_x", "a/b", "a..b", "a b", "a\n",
                "ä", "a:b", "a\\b",
                "a234567890123456789012345678901234567890123456789012345678901234", /* 64 */
        };

        for (size_t k = 0; k < ELEMENTSOF(good); k++)
                ok(string_is_safe_name(good[k]), "\"%s\" is a safe name", good[k]);
        for (size_t k = 0; k < ELEMENTSOF(bad); k++)
                ok(!string_is_safe_name(bad[k]), "\"%s\" is not a safe name", bad[k]);
        ok(!string_is_safe_name(NULL), "NULL is not a safe name");
}

static void test_utf8(void) {
        ok(utf8_is_valid_n("abc", 3), "ascii is utf8");
        ok(utf8_is_valid_n("\xc3\xa4\xe2\x82\xac\xf0\x9f\x98\x80", 9), "ä € 😀 are utf8");
        ok(!utf8_is_valid_n("\xc3", 1), "truncated sequence rejected");
        ok(!utf8_is_valid_n("\xc0\xaf", 2), "overlong rejected");
        ok(!utf8_is_valid_n("\xed\xa0\x80", 3), "surrogate rejected");
        ok(!utf8_is_valid_n("\xf4\x90\x80\x80", 4), "above U+10FFFF rejected");
        ok(!utf8_is_valid_n("\xff", 1), "0xff rejected");
        ok(utf8_is_valid_n("", 0), "empty is utf8");
        ok(!utf8_is_valid_n("\xe0\x80\xaf", 3), "overlong 3-byte rejected");
        ok(!utf8_is_valid_n("\xf0\x80\x80\xaf", 4), "overlong 4-byte rejected");
        ok(utf8_is_valid_n("\xf4\x8f\xbf\xbf\xef\xbf\xbf\xed\x9f\xbf", 10), "U+10FFFF, U+FFFF, U+D7FF are utf8");
        is_int(utf8_char_len("\xf0\x9f\x98\x80x", 5), 4, "utf8_char_len of a 4-byte character");
        is_int(utf8_char_len("\xc3\xa4", 1), 0, "utf8_char_len: truncated is 0");
        is_int(utf8_char_len("\x80", 1), 0, "utf8_char_len: a continuation byte is 0");
        is_int(utf8_char_len("", 0), 0, "utf8_char_len: nothing is 0");
}

static void test_hexencode(void) {
        _cleanup_free_ char *a = NULL, *b = NULL;

        a = hexencode("\x00\x01\xab\xff", 4);
        is_str(a, "0001abff", "hexencode");
        b = hexencode("", 0);
        is_str(b, "", "hexencode empty");
}

static void test_strv(void) {
        _cleanup_strv_free_ char **l = NULL, **s = NULL, **e = NULL;
        _cleanup_free_ char *j = NULL;
        char *v;
        int r;

        is_int(strv_length(NULL), 0, "strv_length(NULL)");
        ok(!strv_contains(NULL, "a"), "NULL strv contains nothing");

        is_int(strv_extend(&l, "one"), 0, "strv_extend");
        v = strdup("two");
        is_int(strv_push(&l, v), 0, "strv_push");
        is_int(strv_length(l), 2, "strv has two items");
        ok(strv_contains(l, "two") && !strv_contains(l, "three"), "strv_contains");
        ok(l[2] == NULL, "strv is NULL-terminated");

        r = strv_split("  a,b,,c , ", ", ", &s);
        is_int(r, 3, "strv_split counts items");
        is_int(strv_length(s), 3, "strv_split drops empty fields");
        ok(s && streq(s[0], "a") && streq(s[1], "b") && streq(s[2], "c"), "strv_split items");

        r = strv_split("", ",", &e);
        is_int(r, 0, "strv_split of empty string");
        ok(e && e[0] == NULL, "strv_split returns an empty strv, not NULL");

        j = strv_join(s, "+");
        is_str(j, "a+b+c", "strv_join");

        ok(strv_free(NULL) == NULL, "strv_free(NULL)");
}

static void test_macros(void) {
        _cleanup_free_ char *p = strdup("x");
        char *q;
        int a[7];

        is_int(ELEMENTSOF(a), 7, "ELEMENTSOF");
        is_int(MAX(MAX(1, 5), 3), 5, "nested MAX");
        is_int(MIN(MIN(4, 2), 3), 2, "nested MIN");
        ok(startswith("memory: 5", "memory") && streq(startswith("memory: 5", "memory"), ": 5"),
           "startswith returns the rest");
        ok(!startswith("mem", "memory"), "startswith rejects a longer prefix");
        ok(isempty(NULL) && isempty("") && !isempty("a"), "isempty");
        ok(streq_ptr(NULL, NULL) && !streq_ptr("a", NULL) && streq_ptr("a", "a"), "streq_ptr");
        q = TAKE_PTR(p);
        ok(q && !p, "TAKE_PTR moves ownership");
        free(q);
        is_int(ERRNO_VALUE(SYNTHETIC_ERRNO(EINVAL)), EINVAL, "ERRNO_VALUE strips SYNTHETIC_ERRNO");
        ok(IS_SYNTHETIC_ERRNO(SYNTHETIC_ERRNO(ENOENT)) && !IS_SYNTHETIC_ERRNO(ENOENT), "IS_SYNTHETIC_ERRNO");
        is_int(ERRNO_VALUE(-EIO), EIO, "ERRNO_VALUE of a negative errno");
}

static void test_template_name(void) {
        static const char *const good[] = { "tiny", "std", "debian-12", "a.b_c", "x9" };
        static const char *const bad[] = { "", "Std", "a/b", "../x", "a..b", "-x", ".x", "web.img", "x y" };

        for (size_t k = 0; k < ELEMENTSOF(good); k++)
                ok(template_name_is_valid(good[k]), "\"%s\" is a template name", good[k]);
        for (size_t k = 0; k < ELEMENTSOF(bad); k++)
                ok(!template_name_is_valid(bad[k]), "\"%s\" is not a template name", bad[k]);
        ok(!template_name_is_valid(NULL), "NULL is not a template name");
}

static void test_percent_decode(void) {
        static const struct {
                const char *in;
                ssize_t len;            /* decoded length, or -EINVAL */
                const char *out;
                size_t bad;             /* offset of the malformed escape */
        } cases[] = {
                { "plain", 5, "plain", 0 },
                { "a%2Fb", 3, "a/b", 0 },
                { "%41%62c", 3, "Abc", 0 },
                { "a+b", 3, "a+b", 0 },         /* '+' is not a space in paths */
                { "x%00y", 3, "x", 0 },         /* a NUL: length tells */
                { "%", -EINVAL, NULL, 0 },
                { "ab%4", -EINVAL, NULL, 2 },
                { "ab%g1", -EINVAL, NULL, 2 },
                { "", 0, "", 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char out[16];
                size_t bad = 99;
                ssize_t n = percent_decode(cases[i].in, strlen(cases[i].in), out, &bad);

                is_int(n, cases[i].len, "percent_decode(\"%s\") length", cases[i].in);
                if (cases[i].out)
                        is_str(out, cases[i].out, "percent_decode(\"%s\") text", cases[i].in);
                else
                        is_int(bad, cases[i].bad, "percent_decode(\"%s\") reports the bad escape's offset", cases[i].in);
        }
}

static void test_errno_str(void) {
        _cleanup_free_ char *e = NULL;

        is_str(errno_str(-ENOENT), "No such file or directory", "errno_str(-ENOENT)");
        is_str(errno_str(ENOENT), "No such file or directory", "errno_str(ENOENT)");
        ok(errno_str(-99999) && *errno_str(-99999), "errno_str of an unknown errno is a message, not NULL");
        is_int(set_error(&e, "x %d", 1), 0, "set_error returns 0");
        is_str(e, "x 1", "set_error formats");
        is_int(set_error(NULL, "y"), 0, "set_error(NULL, ...) is a no-op");
}

/* Client-chosen names in error messages (found by fuzz-template-request
 * and fuzz-model-request: an unknown key "i\nclude" put a newline in the
 * message). */
static void test_string_for_message(void) {
        is_str(string_for_message("mirror"), "mirror", "a printable name is kept");
        is_str(string_for_message(""), "", "empty stays empty");
        is_str(string_for_message(NULL), "", "NULL is empty");
        ok(!strchr(string_for_message("i\nclude"), '\n'), "a newline is not passed on");
        ok(!strchr(string_for_message("caf\xc3\xa9"), '\xc3'), "non-ASCII is not passed on");
        ok(!strchr(string_for_message("a\x7f"), 0x7f), "DEL is not passed on");
}

int main(void) {
        test_string_for_message();
        test_percent_decode();
        test_errno_str();
        test_strjoin();
        test_strstrip();
        test_template_name();
        test_safe_ato();
        test_parse_size();
        test_safe_name();
        test_utf8();
        test_hexencode();
        test_strv();
        test_macros();
        return done_testing();
}
