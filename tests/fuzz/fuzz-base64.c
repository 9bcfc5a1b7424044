/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * api/base64: what the guest agent and API clients send as file contents
 * and exec output.
 *
 * Input: any bytes, used twice: as data to encode, and (if it has no NUL) as
 * text to decode.
 *
 * Properties:
 *   - decode(encode(x)) == x, and the encoding is 4*ceil(n/3) characters of
 *     the base64 alphabet;
 *   - if decode(s) succeeds, s was a whole number of 4-character groups
 *     carrying exactly the bytes returned: encoding them gives a string of
 *     the same length that decodes to the same bytes (no padding or ignored
 *     character turned into data).
 */
#include <errno.h>

#include "base64.h"
#include "fuzz.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";

static void check_encode(const uint8_t *data, size_t size) {
        _cleanup_free_ unsigned char *back = NULL;
        _cleanup_free_ char *enc = NULL;
        size_t back_size = 0;
        int r;

        enc = base64_encode(data, size);
        if (!enc)
                return;
        FUZZ_CHECK(strlen(enc) == 4 * ((size + 2) / 3));
        FUZZ_CHECK(strspn(enc, alphabet) == strlen(enc));
        r = base64_decode(enc, &back, &back_size);
        if (r == -ENOMEM)
                return;
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(back_size == size && memcmp(back, data, size) == 0);
        FUZZ_CHECK(back[back_size] == 0);
}

static void check_decode(const uint8_t *data, size_t size) {
        _cleanup_free_ unsigned char *dec = NULL, *again = NULL;
        _cleanup_free_ char *text = NULL, *enc = NULL;
        size_t dec_size = 0, again_size = 0;
        int r;

        text = fuzz_strndup(data, size);
        if (!text)
                return;
        r = base64_decode(text, &dec, &dec_size);
        if (r < 0) {
                FUZZ_CHECK(IN_SET(r, -EINVAL, -ENOMEM));
                return;
        }
        FUZZ_CHECK(dec[dec_size] == 0);
        enc = base64_encode(dec, dec_size);
        if (!enc)
                return;
        FUZZ_CHECK(strlen(enc) == size);
        r = base64_decode(enc, &again, &again_size);
        if (r == -ENOMEM)
                return;
        FUZZ_CHECK(r == 0 && again_size == dec_size && memcmp(again, dec, dec_size) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        check_encode(data, size);
        check_decode(data, size);
        return 0;
}
