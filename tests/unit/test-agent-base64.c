/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The agent's base64 (guest-agent/agent-base64.c), built with the host
 * compiler from the agent's own source: RFC 4648 vectors, the strict
 * decoder's refusals, and round trips of every length.
 */
#include <stdint.h>

#include "agent-base64.h"
#include "tap.h"

/* base64_put() writes a quoted JSON string; returns it without the quotes. */
static char *encode(const void *data, size_t len) {
        Buf b = {};
        char *s;

        base64_put(&b, data, len);
        assert_se(!b.failed && b.len >= 2 && b.data[0] == '"' && b.data[b.len - 1] == '"');
        s = strndup(b.data + 1, b.len - 2);
        buf_free(&b);
        return s;
}

/* Decodes s; returns the length or -errno, the bytes in out (malloc'ed). */
static ssize_t decode(const char *s, unsigned char **out) {
        size_t len = strlen(s);
        ssize_t n;

        *out = malloc(base64_decoded_len(len) + 1);
        assert_se(*out);
        n = base64_decode(s, len, *out);
        assert_se(n < 0 || (size_t) n <= base64_decoded_len(len));
        return n;
}

static void test_vectors(void) {
        static const struct {
                const char *plain, *encoded;
        } t[] = {
                { "", "" },         { "f", "Zg==" },        { "fo", "Zm8=" },         { "foo", "Zm9v" },
                { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
        };

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                _cleanup_free_ char *e = encode(t[i].plain, strlen(t[i].plain));
                _cleanup_free_ unsigned char *d = NULL;
                ssize_t n;

                is_str(e, t[i].encoded, "encode \"%s\" (RFC 4648)", t[i].plain);
                n = decode(t[i].encoded, &d);
                ok(n == (ssize_t) strlen(t[i].plain) && memcmp(d, t[i].plain, (size_t) n) == 0,
                   "decode \"%s\"", t[i].encoded);
        }
        {
                static const unsigned char all[] = { 0x00, 0xff, 0xfb, 0xef, 0x3e, 0x3f };
                _cleanup_free_ char *e = encode(all, sizeof(all));

                is_str(e, "AP/77z4/", "the '+' and '/' characters");
        }
}

static void test_refused(void) {
        static const char *const bad[] = {
                "Z", "Zg", "Zg=", "Zm9vY",              /* not a multiple of 4 */
                "Zm9*", "Zm 9", "Zm9v\n", "Zm9-", "Zm9_", /* outside the alphabet (no URL-safe, no whitespace) */
                "Zg==Zg==", "Z=g=", "=Zg=", "====", "Z===", /* '=' not only at the end, or too many */
                "Zm9v====",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ unsigned char *d = NULL;

                is_int(decode(bad[i], &d), -EINVAL, "refused: '%s'", bad[i]);
        }
}

static void test_lenient_bits(void) {
        _cleanup_free_ unsigned char *d = NULL;
        ssize_t n = decode("Zh==", &d);

        /* Documented in guest-agent/README.md: non-zero trailing bits are
         * ignored rather than refused. */
        ok(n == 1 && d[0] == 'f', "non-zero trailing bits are ignored (\"Zh==\" -> \"f\")");
}

static void test_round_trip(void) {
        unsigned good = 0, n = 0;

        srand(1234);
        for (size_t len = 0; len <= 1000; len++, n++) {
                unsigned char *in = malloc(len + 1), *d = NULL;
                char *e;
                ssize_t k;

                assert_se(in);
                for (size_t i = 0; i < len; i++)
                        in[i] = (unsigned char) rand();
                e = encode(in, len);
                k = decode(e, &d);
                if (strlen(e) == (len + 2) / 3 * 4 && k == (ssize_t) len && memcmp(d, in, len) == 0)
                        good++;
                else
                        diag("  length %zu: encoded %zu chars, decoded %zd", len, strlen(e), k);
                free(in);
                free(d);
                free(e);
        }
        is_int(good, n, "round trip of random data, every length 0..1000");
}

/* The decoder against random strings of alphabet characters and '=': it
 * never writes past base64_decoded_len() (ASan), and accepts exactly what
 * a canonical encoding looks like. */
static void test_random(void) {
        static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
        unsigned agree = 0, n = 20000;

        srand(99);
        for (unsigned i = 0; i < n; i++) {
                char s[17];
                size_t len = (size_t) rand() % 17, eq;
                unsigned char *d = NULL;
                ssize_t k;
                bool canonical;

                for (size_t j = 0; j < len; j++)
                        s[j] = chars[rand() % (sizeof(chars) - 1)];
                s[len] = 0;
                eq = strspn(s + strcspn(s, "="), "=");
                canonical = len % 4 == 0 && (strchr(s, '=') == NULL ||
                                             (eq <= 2 && strcspn(s, "=") + eq == len));
                k = decode(s, &d);
                if ((k >= 0) == canonical && (k < 0 || (size_t) k == len / 4 * 3 - eq))
                        agree++;
                else
                        diag("  '%s': %zd", s, k);
                free(d);
        }
        is_int(agree, n, "%u random strings: accepted exactly when canonical, with the right length", n);
}

int main(void) {
        test_vectors();
        test_refused();
        test_lenient_bits();
        test_round_trip();
        test_random();
        return done_testing();
}
