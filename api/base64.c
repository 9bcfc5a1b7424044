/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <openssl/evp.h>
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

int base64_decode(const char *in, unsigned char **ret, size_t *ret_size) {
        size_t len = strlen(in), pad = 0;
        unsigned char *out;
        int n;

        if (len % 4 != 0 || len > (size_t) INT32_MAX)
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
