/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Base64 (RFC 4648, standard alphabet, with padding) for the agent's binary
 * fields. Not api/base64.c: that one needs libcrypto, the agent is static
 * musl with nothing but libc. */

#include <stddef.h>
#include <sys/types.h>

#include "agent-buf.h"

/* Appends data as a quoted JSON string of base64. */
void base64_put(Buf *b, const unsigned char *data, size_t len);

/* An upper bound of the decoded size of len characters. */
size_t base64_decoded_len(size_t len);

/* Strict: a multiple of 4, only the alphabet, '=' only as the last one or
 * two characters (non-zero trailing bits are ignored). out must hold
 * base64_decoded_len(len) bytes. Returns the decoded length or -EINVAL. */
ssize_t base64_decode(const char *s, size_t len, unsigned char *out);
