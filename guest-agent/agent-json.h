/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * zvm-agent's JSON reader and writer. No library: the agent is a static
 * musl binary and json-c would double its size. The reader takes untrusted
 * bytes (it runs before authentication), so it is bounded: nesting depth,
 * number of values, number length; strings must be valid UTF-8.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent-buf.h"

#define JSON_MAX_DEPTH 16               /* containers nested; the top-level one is depth 1 */
#define JSON_MAX_VALUES 65536
#define JSON_MAX_NUMBER_LEN 64

typedef enum JsonType {
        JSON_NULL,
        JSON_BOOL,
        JSON_INT,
        JSON_REAL,
        JSON_STRING,
        JSON_ARRAY,
        JSON_OBJECT,
} JsonType;

typedef struct Json Json;
struct Json {
        JsonType type;
        bool b;
        int64_t i;
        double d;
        const char *s;          /* JSON_STRING: decoded UTF-8, NUL-terminated (may hold \u0000) */
        size_t len;
        const char *key;        /* member of an object: its name */
        size_t key_len;
        Json *first, *last;     /* array elements or object members, in order */
        Json *next;
        size_t n;
};

/* Parses one complete JSON text into arena. Returns NULL with a message
 * ("malformed JSON: ... at byte N") in error. */
Json *json_parse(Arena *arena, const char *text, size_t len, char *error, size_t error_size);

/* The member key of obj (NULL if obj is not an object or has none; the
 * first one if a key repeats). */
const Json *json_get(const Json *obj, const char *key);
/* A string without NUL characters, usable as a C string. */
bool json_is_cstring(const Json *v);

/* Writers. Bytes that are not valid UTF-8 become U+FFFD. */
void json_put_string(Buf *b, const char *s, size_t len);
void json_put_cstring(Buf *b, const char *s);
/* decimals after the point; NaN and infinities become null. */
void json_put_double(Buf *b, double d, int decimals);
/* Re-serializes a parsed value (NULL: null); a real stays a real. */
void json_put_value(Buf *b, const Json *v);
/* ,"key": — for members after the first. */
void json_put_key(Buf *b, const char *key);
