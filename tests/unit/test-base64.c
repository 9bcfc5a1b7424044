/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>

#include "base64.h"
#include "macro.h"
#include "tap.h"

static void test_round_trip(void) {
        static const char *const plain[] = { "", "A", "AB", "ABC", "ABCD", "hello, world\n" };

        for (size_t i = 0; i < ELEMENTSOF(plain); i++) {
                _cleanup_free_ char *enc = base64_encode(plain[i], strlen(plain[i]));
                _cleanup_free_ unsigned char *dec = NULL;
                size_t n = 0;

                assert_se(enc);
                is_int(base64_decode(enc, &dec, &n), 0, "\"%s\" -> \"%s\" decodes", plain[i], enc);
                ok(dec && n == strlen(plain[i]) && memcmp(dec, plain[i], n) == 0, "  to the same bytes");
        }
}

static void test_strict(void) {
        /* Found by tests/fuzz/fuzz-base64: EVP_DecodeBlock() trims blanks
         * and line ends around the text and takes '=' in the middle as
         * zero bits, so these decoded to bytes the sender never meant. */
        static const struct {
                const char *in;
                const char *what;
        } bad[] = {
                { "QQ==\r\r\r\r", "trailing CRs (decoded to \"A\\0\\0\" before)" },
                { "QQ==\n\n\n\n", "trailing newlines" },
                { "    QUJD", "leading blanks" },
                { "QUJD    ", "trailing blanks" },
                { "+0+055+0==55", "padding in the middle" },
                { "QQ=A", "'=' followed by data" },
                { "====", "padding only" },
                { "A===", "three padding characters" },
                { "QUJ", "length not a multiple of 4" },
                { "QU!D", "a character outside the alphabet" },
                { "QU-_", "the URL-safe alphabet" },
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                unsigned char *dec = NULL;
                size_t n = 0;

                is_int(base64_decode(bad[i].in, &dec, &n), -EINVAL, "refused: %s", bad[i].what);
                free(dec);
        }
}

int main(void) {
        test_round_trip();
        test_strict();
        return done_testing();
}
