/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "string-util.h"

char *strjoin_real(const char *x, ...) {
        size_t l = 0;
        va_list ap;
        char *r, *p;

        va_start(ap, x);
        for (const char *s = x; s; s = va_arg(ap, const char *)) {
                size_t n = strlen(s);

                if (n > SIZE_MAX - 1 - l) {
                        va_end(ap);
                        return NULL;
                }
                l += n;
        }
        va_end(ap);

        r = malloc(l + 1);
        if (!r)
                return NULL;

        p = r;
        va_start(ap, x);
        for (const char *s = x; s; s = va_arg(ap, const char *))
                p = stpcpy(p, s);
        va_end(ap);

        *p = '\0';
        return r;
}

char *strstrip(char *s) {
        char *e;

        if (!s)
                return NULL;

        s += strspn(s, WHITESPACE);
        e = s + strlen(s);
        while (e > s && strchr(WHITESPACE, e[-1]))
                e--;
        *e = '\0';
        return s;
}

/* Shared by the safe_ato*() family: s must be a non-empty run of decimal
 * digits (checked completely before range, so that "99999999999999999999x"
 * is reported as malformed, not as too big). */
static int parse_decimal(const char *s, uint64_t max, uint64_t *ret) {
        uint64_t v = 0;

        if (isempty(s))
                return -EINVAL;
        if (s[strspn(s, "0123456789")] != '\0')
                return -EINVAL;

        for (; *s; s++) {
                unsigned d = (unsigned) (*s - '0');

                if (v > (max - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }

        *ret = v;
        return 0;
}

int safe_atou64(const char *s, uint64_t *ret) {
        uint64_t v;
        int r;

        assert_return(ret, -EINVAL);

        r = parse_decimal(s, UINT64_MAX, &v);
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}

int safe_atou32(const char *s, uint32_t *ret) {
        uint64_t v;
        int r;

        assert_return(ret, -EINVAL);

        r = parse_decimal(s, UINT32_MAX, &v);
        if (r < 0)
                return r;
        *ret = (uint32_t) v;
        return 0;
}

int safe_atoi(const char *s, int *ret) {
        bool negative = false;
        uint64_t v;
        int r;

        assert_return(ret, -EINVAL);

        if (s && s[0] == '-') {
                negative = true;
                s++;
        }

        r = parse_decimal(s, negative ? (uint64_t) INT_MAX + 1 : (uint64_t) INT_MAX, &v);
        if (r < 0)
                return r;

        *ret = negative ? (int) (-(int64_t) v) : (int) v;
        return 0;
}

int parse_size(const char *s, uint64_t *ret) {
        static const struct {
                char suffix;
                unsigned shift;
        } table[] = {
                { 'B', 0 },
                { 'K', 10 },
                { 'M', 20 },
                { 'G', 30 },
                { 'T', 40 },
        };
        _cleanup_free_ char *digits = NULL;
        unsigned shift = 0;
        size_t n;
        uint64_t v;
        int r;

        assert_return(ret, -EINVAL);

        if (isempty(s))
                return -EINVAL;

        n = strspn(s, "0123456789");
        if (n == 0)
                return -EINVAL;

        if (s[n] != '\0') {
                const char *suffix = s + n;
                size_t i;

                for (i = 0; i < ELEMENTSOF(table); i++)
                        if (suffix[0] == table[i].suffix || suffix[0] == table[i].suffix + ('a' - 'A'))
                                break;
                if (i >= ELEMENTSOF(table))
                        return -EINVAL;

                /* "K", "KiB" (and lower-case), but not "Bi", "KB" or "Ki". */
                if (suffix[1] != '\0' && (table[i].shift == 0 || !streq(suffix + 1, "iB")))
                        return -EINVAL;

                shift = table[i].shift;
        }

        digits = strndup(s, n);
        if (!digits)
                return -ENOMEM;

        r = safe_atou64(digits, &v);
        if (r < 0)
                return r;

        if (shift > 0 && v > (UINT64_MAX >> shift))
                return -ERANGE;

        *ret = v << shift;
        return 0;
}

bool string_is_safe_name(const char *s) {
        static const char alnum[] =
                "abcdefghijklmnopqrstuvwxyz"
                "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                "0123456789";
        size_t l;

        if (isempty(s))
                return false;

        l = strlen(s);
        if (l > 63)
                return false;

        /* The first character must be alphanumeric: no ".", "-" (would look
         * like an option) and no hidden files. */
        if (!strchr(alnum, s[0]))
                return false;

        for (size_t i = 1; i < l; i++)
                if (!strchr(alnum, s[i]) && !strchr("._-", s[i]))
                        return false;

        return !strstr(s, "..");
}

size_t utf8_char_len(const char *str, size_t n) {
        const unsigned char *s = (const unsigned char *) str;
        unsigned char c;

        if (!str || n == 0)
                return 0;
        c = s[0];
        if (c < 0x80)
                return 1;
        if (c < 0xC2)                   /* a continuation byte, or an overlong 2-byte form */
                return 0;
        if (c < 0xE0)
                return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
        if (c < 0xF0) {
                if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
                        return 0;
                /* Overlong 3-byte forms; UTF-16 surrogates. */
                if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0))
                        return 0;
                return 3;
        }
        if (c < 0xF5) {
                if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
                        return 0;
                /* Overlong 4-byte forms; above U+10FFFF. */
                if ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90))
                        return 0;
                return 4;
        }
        return 0;
}

bool utf8_is_valid_n(const char *str, size_t n) {
        size_t i = 0;

        assert_return(str || n == 0, false);

        while (i < n) {
                size_t len = utf8_char_len(str + i, n - i);

                if (len == 0)
                        return false;
                i += len;
        }

        return true;
}

char *hexencode(const void *p, size_t l) {
        static const char hex[] = "0123456789abcdef";
        const uint8_t *b = p;
        char *r;

        if (l > (SIZE_MAX - 1) / 2)
                return NULL;
        if (!p && l > 0)
                return NULL;

        r = malloc(l * 2 + 1);
        if (!r)
                return NULL;

        for (size_t i = 0; i < l; i++) {
                r[i * 2] = hex[b[i] >> 4];
                r[i * 2 + 1] = hex[b[i] & 15];
        }
        r[l * 2] = '\0';
        return r;
}

char **strv_free(char **l) {
        if (!l)
                return NULL;

        for (char **s = l; *s; s++)
                free(*s);
        free(l);
        return NULL;
}

size_t strv_length(char *const *l) {
        size_t n = 0;

        if (!l)
                return 0;
        while (l[n])
                n++;
        return n;
}

bool strv_equal(char *const *a, char *const *b) {
        size_t n = strv_length(a);

        if (n != strv_length(b))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!streq(a[i], b[i]))
                        return false;
        return true;
}

bool strv_contains(char *const *l, const char *s) {
        assert_return(s, false);

        STRV_FOREACH(i, l)
                if (streq(*i, s))
                        return true;
        return false;
}

int strv_push(char ***l, char *value) {
        size_t n;
        char **c;

        assert_return(l, -EINVAL);
        assert_return(value, -EINVAL);

        n = strv_length(*l);
        if (n > SIZE_MAX / sizeof(char *) - 2)
                return -ENOMEM;

        c = reallocarray(*l, n + 2, sizeof(char *));
        if (!c)
                return -ENOMEM;

        c[n] = value;
        c[n + 1] = NULL;
        *l = c;
        return 0;
}

int strv_extend(char ***l, const char *value) {
        char *v;
        int r;

        assert_return(value, -EINVAL);

        v = strdup(value);
        if (!v)
                return -ENOMEM;

        r = strv_push(l, v);
        if (r < 0)
                free(v);
        return r;
}

int strv_split(const char *s, const char *separators, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0;

        assert_return(separators, -EINVAL);
        assert_return(ret, -EINVAL);

        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;

        for (const char *p = strempty(s);;) {
                size_t k;
                char *item;
                int r;

                p += strspn(p, separators);
                if (*p == '\0')
                        break;

                k = strcspn(p, separators);
                item = strndup(p, k);
                if (!item)
                        return -ENOMEM;

                r = strv_push(&l, item);
                if (r < 0) {
                        free(item);
                        return r;
                }

                n++;
                if (n > INT_MAX)
                        return -E2BIG;
                p += k;
        }

        *ret = TAKE_PTR(l);
        return (int) n;
}

char *strv_join(char *const *l, const char *separator) {
        size_t sl, n = 0;
        char *r, *p;

        separator = strempty(separator);
        sl = strlen(separator);

        STRV_FOREACH(s, l)
                n += strlen(*s) + (s != l ? sl : 0);

        r = malloc(n + 1);
        if (!r)
                return NULL;

        p = r;
        STRV_FOREACH(s, l) {
                if (s != l)
                        p = stpcpy(p, separator);
                p = stpcpy(p, *s);
        }
        *p = '\0';
        return r;
}

int unhexchar(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -EINVAL;
}

ssize_t percent_decode(const char *s, size_t l, char *out, size_t *ret_bad_offset) {
        size_t n = 0;

        for (size_t i = 0; i < l; i++) {
                if (s[i] == '%') {
                        int hi = l - i >= 3 ? unhexchar(s[i + 1]) : -EINVAL;
                        int lo = hi >= 0 ? unhexchar(s[i + 2]) : -EINVAL;

                        if (lo < 0) {
                                if (ret_bad_offset)
                                        *ret_bad_offset = i;
                                return -EINVAL;
                        }
                        out[n++] = (char) (hi << 4 | lo);
                        i += 2;
                } else
                        out[n++] = s[i];
        }
        out[n] = '\0';
        return (ssize_t) n;
}

/* strerrordesc_np() is glibc's thread-safe, locale-free message table;
 * musl's strerror() is both already (the guest programs build this too). */
const char *errno_str(int r) {
#ifdef __GLIBC__
        const char *s = strerrordesc_np(r < 0 ? -r : r);
#else
        const char *s = strerror(r < 0 ? -r : r);
#endif

        return s ? s : "Unknown error";
}

const char *string_for_message(const char *s) {
        for (const char *p = s; p && *p; p++)
                if ((unsigned char) *p < 0x20 || (unsigned char) *p >= 0x7f)
                        return "(a name with control or non-ASCII characters)";
        return strempty(s);
}

int set_error(char **ret_error, const char *fmt, ...) {
        va_list ap;

        if (!ret_error)
                return 0;
        va_start(ap, fmt);
        if (vasprintf(ret_error, fmt, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
        return 0;
}

bool template_name_is_valid(const char *s) {
        size_t n;

        if (!string_is_safe_name(s) || s[strcspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ")] != '\0')
                return false;
        n = strlen(s);
        return !(n >= 4 && streq(s + n - 4, ".img"));
}

char *erase_and_free(char *p) {
        if (p)
                explicit_bzero(p, strlen(p));
        free(p);
        return NULL;
}
