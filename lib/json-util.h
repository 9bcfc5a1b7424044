/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * JSON from a peer that may be hostile (a guest): bounded before json-c
 * allocates anything. json-c builds one heap object per value, so a few MiB
 * of "[0,0,0,...]" become gigabytes; a cheap pre-scan counts the values and
 * the nesting first and refuses what is over the caller's bounds.
 *
 * Returns >= 0 or -errno, never logs above debug.
 */

#include <json-c/json.h>
#include <stddef.h>

/* Checks s[0..len) without allocating: -E2BIG when it nests deeper than
 * max_depth (a top-level object or array is depth 1) or holds more than
 * max_values containers and separators (every value but the first in a
 * container follows a ',', so this bounds the values json-c would create);
 * -EBADMSG for an unterminated string, unbalanced brackets or a NUL byte
 * outside a string. Whatever else is wrong is json-c's to find. */
int json_prescan(const char *s, size_t len, unsigned max_depth, size_t max_values);

/* json_prescan(), then json-c in strict mode with the same depth bound. s
 * must be NUL-terminated at s[len]. The whole input must be one JSON value
 * (surrounding whitespace allowed): trailing bytes are -EBADMSG, as is
 * anything json-c refuses. *ret gets a new reference. */
int json_parse_bounded(const char *s, size_t len, unsigned max_depth, size_t max_values, json_object **ret);

/* A double that serializes with a fixed number of decimals ("4.398" for
 * seconds), not json-c's %.17g ("4.3975119999999999"). NULL on OOM. */
json_object *json_object_new_fixed(double v, unsigned decimals);

/* json_parse_bounded() of a record that must be one JSON object: the same,
 * but -EBADMSG for any other value. */
int json_parse_bounded_object(const char *s, size_t len, unsigned max_depth, size_t max_values, json_object **ret);

/* The string member key of o, NULL when absent or not a string (never
 * json-c's rendering of another type: a peer picks the types it sends). */
const char *json_get_string_member(json_object *o, const char *key);
