/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdint.h>

#include "agent-base64.h"

void base64_put(Buf *b, const unsigned char *data, size_t len) {
        static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t out_len = (len + 2) / 3 * 4;
        char *o;

        if (!buf_reserve(b, out_len + 2))
                return;
        b->data[b->len++] = '"';
        o = b->data + b->len;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t) data[i] << 16;
                size_t rest = len - i;

                if (rest > 1)
                        v |= (uint32_t) data[i + 1] << 8;
                if (rest > 2)
                        v |= data[i + 2];
                *o++ = alphabet[(v >> 18) & 63];
                *o++ = alphabet[(v >> 12) & 63];
                *o++ = rest > 1 ? alphabet[(v >> 6) & 63] : '=';
                *o++ = rest > 2 ? alphabet[v & 63] : '=';
        }
        b->len += out_len;
        b->data[b->len++] = '"';
}

static int base64_value(unsigned char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

size_t base64_decoded_len(size_t len) {
        return len / 4 * 3;
}

/* Strict: a multiple of 4, only the alphabet, '=' only as the last one or
 * two characters. out must hold base64_decoded_len(len) bytes. Returns the
 * decoded length or -EINVAL. */
ssize_t base64_decode(const char *s, size_t len, unsigned char *out) {
        size_t o = 0, pad = 0;

        if (len % 4 != 0)
                return -EINVAL;
        if (len >= 1 && s[len - 1] == '=')
                pad = len >= 2 && s[len - 2] == '=' ? 2 : 1;
        for (size_t i = 0; i < len; i += 4) {
                int v[4];
                bool last = i + 4 == len;

                for (int k = 0; k < 4; k++) {
                        if (last && k >= 4 - (int) pad) {
                                v[k] = 0;
                                continue;
                        }
                        v[k] = base64_value((unsigned char) s[i + (size_t) k]);
                        if (v[k] < 0)
                                return -EINVAL;
                }
                out[o++] = (unsigned char) (v[0] << 2 | v[1] >> 4);
                if (!last || pad < 2)
                        out[o++] = (unsigned char) ((v[1] & 15) << 4 | v[2] >> 2);
                if (!last || pad < 1)
                        out[o++] = (unsigned char) ((v[2] & 3) << 6 | v[3]);
        }
        return (ssize_t) o;
}

