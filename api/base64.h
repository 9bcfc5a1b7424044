/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* Base64 (RFC 4648, padded) as the agent protocol and the API carry binary
 * data, via OpenSSL's EVP block coder. */

/* Returns a NUL-terminated string, or NULL on OOM. */
char *base64_encode(const void *data, size_t size);
/* Decodes in; -EINVAL if it is not strict padded base64 (RFC 4648 alphabet,
 * "=" only as the last one or two characters, no blanks or line ends).
 * *ret is NUL-terminated (not counted in *ret_size). */
int base64_decode(const char *in, unsigned char **ret, size_t *ret_size);
