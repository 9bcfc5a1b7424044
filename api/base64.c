/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"

char *base64_encode(const void *data, size_t size) {
        char *out;

        if (size > (size_t) INT32_MAX / 4 * 3)
                return NULL;
        out = malloc(4 * ((size + 2) / 3) + 1);
        if (!out)
                return NULL;
        EVP_EncodeBlock((unsigned char *) out, data ? data : (const void *) "", (int) size);
        return out;
}

/* EVP_DecodeBlock() is lenient: it skips leading and trailing blanks and
 * line ends, and decodes '=' in the middle as zero bits, so "QQ==\r\r\r\r"
 * gave three bytes and "+0+0==55" passed. Only strict, padded RFC 4648
 * text is handed to it. */
static bool base64_is_strict(const char *in, size_t len) {
        static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t body = len;

        if (len % 4 != 0)
                return false;
        if (len > 0 && in[len - 1] == '=')
                body -= len > 1 && in[len - 2] == '=' ? 2 : 1;
        return strspn(in, alphabet) == body;
}

int base64_decode(const char *in, unsigned char **ret, size_t *ret_size) {
        size_t len = strlen(in), pad = 0;
        unsigned char *out;
        int n;

        if (len > (size_t) INT32_MAX || !base64_is_strict(in, len))
                return -EINVAL;
        out = malloc(len / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;
        n = EVP_DecodeBlock(out, (const unsigned char *) in, (int) len);
        if (n < 0) {
                free(out);
                return -EINVAL;
        }
        /* EVP_DecodeBlock counts the padding as zero bytes. */
        while (pad < 2 && len > pad && in[len - 1 - pad] == '=')
                pad++;
        out[n - pad] = 0;
        *ret = out;
        *ret_size = (size_t) n - pad;
        return 0;
}
