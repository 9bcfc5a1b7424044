/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* String, number-parsing and string-vector (strv) helpers. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

#define WHITESPACE " \t\n\r"

/* Concatenates the arguments: strjoin(a, b, c) or, equivalently,
 * strjoin(a, b, c, NULL) — the macro appends a typed NULL sentinel, and
 * concatenation stops at the first NULL. A NULL first argument gives "".
 * Returns a new string or NULL on OOM. */
char *strjoin_real(const char *x, ...) _sentinel_;
#define strjoin(x, ...) strjoin_real((x), ##__VA_ARGS__, (const char *) NULL)

/* Removes leading and trailing whitespace in place; returns a pointer into s
 * (to its first non-whitespace character), or NULL if s is NULL. */
char *strstrip(char *s);

/* The value of one hex digit (either case), or -EINVAL. */
int unhexchar(char c);

/* The one percent decoder (URL path segments, Proxmox-style sshkeys):
 * decodes the %XX escapes of [s, s+l) into out, which has room for l+1
 * bytes, and NUL-terminates it. '+' stays '+' (that convention belongs to
 * query strings). Returns the decoded length, which is less than
 * strlen(out) only if an escape produced a NUL; -EINVAL at a malformed
 * escape, with its byte offset in *ret_bad_offset (when non-NULL). */
ssize_t percent_decode(const char *s, size_t l, char *out, size_t *ret_bad_offset);

/* The one errno → message helper for API errors and logs: takes -errno (as
 * every function here returns) or errno, never returns NULL, and is
 * thread-safe (strerrordesc_np, unlike strerror, has no shared buffer). */
const char *errno_str(int r);

/* Sets *ret_error (if ret_error is non-NULL) to a formatted message, NULL
 * on OOM. Returns 0 so callers can write
 *     return set_error(ret_error, "...", ...), -EINVAL; */
int set_error(char **ret_error, const char *fmt, ...) _printf_(2, 3);

/* Strict decimal parsers: digits only (safe_atoi: one optional leading '-'),
 * no whitespace, no '+', no base prefixes, nothing after the number.
 * Empty or malformed → -EINVAL; out of range → -ERANGE. *ret is untouched
 * on failure. */
int safe_atou32(const char *s, uint32_t *ret);
int safe_atou64(const char *s, uint64_t *ret);
int safe_atoi(const char *s, int *ret);

/* Parses a byte size: an unsigned decimal integer with an optional suffix
 * B, K, M, G or T (upper or lower case; optionally followed by "iB" for
 * K/M/G/T), powers of 1024: "512" = 512, "512M" = 512 MiB, "2GiB". No
 * fractions, no whitespace. -EINVAL if malformed, -ERANGE on overflow. */
int parse_size(const char *s, uint64_t *ret);

/* VM and template names: [A-Za-z0-9][A-Za-z0-9._-]{0,62}, without "..".
 * Such names are safe as a single path component and in a URL path. */
bool string_is_safe_name(const char *s);
/* s if it is printable ASCII (fit for a one-line message or log), else a
 * placeholder saying it is not: for client-chosen names in error messages. */
const char *string_for_message(const char *s);

/* Template names (zvmd's rule, checked by zvm before it builds a URL): a
 * safe name in lower case, not ending in ".img". */
bool template_name_is_valid(const char *s);

/* Whether the first n bytes of s are valid UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF). */
/* Length of the valid UTF-8 sequence at s (n bytes available): 1-4, or 0
 * if invalid (overlong forms, surrogates, above U+10FFFF, truncated). */
size_t utf8_char_len(const char *s, size_t n);
bool utf8_is_valid_n(const char *s, size_t n);

/* Lower-case hex encoding; NULL on OOM. */
char *hexencode(const void *p, size_t l);
/* Overwrites the string (a key, a secret) before freeing it; NULL is fine.
 * Returns NULL. */
char *erase_and_free(char *p);

/* ---- strv: NULL-terminated arrays of malloc'd strings --------------------- */

char **strv_free(char **l);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);
#define _cleanup_strv_free_ _cleanup_(strv_freep)

size_t strv_length(char *const *l);
bool strv_contains(char *const *l, const char *s);
/* Same strings in the same order; NULL equals an empty list. */
bool strv_equal(char *const *a, char *const *b);

/* Appends value to *l (which may be NULL), taking ownership of value on
 * success only. */
int strv_push(char ***l, char *value);
/* Appends a copy of value. */
int strv_extend(char ***l, const char *value);

/* Splits s at any of the characters in separators. Empty fields are
 * dropped: strv_split("a,,b,", ",") → { "a", "b" }. *ret is always a valid
 * (possibly empty) strv on success. Returns the number of items. */
int strv_split(const char *s, const char *separators, char ***ret);

/* Joins l with separator between items; "" for an empty/NULL list. */
char *strv_join(char *const *l, const char *separator);

#define STRV_FOREACH(s, l) for (char *const *s = (l); s && *s; s++)
