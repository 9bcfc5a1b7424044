/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One request being answered, and the typed access to its arguments that
 * every op uses: each getter checks type and bounds and, on failure, writes
 * the error answer's message and returns -errno. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent-buf.h"
#include "agent-conn.h"
#include "agent-json.h"

typedef struct Request {
        Conn *conn;
        const Json *args;       /* the request object */
        Arena *arena;
        char *error;            /* message for an error answer */
        size_t error_size;
} Request;

/* An op appends its members (json_put_key() first) to out, which already
 * holds {"id":…,"ok":true; or returns -errno with rq->error set. */
typedef int (*OpHandler)(Request *rq, Buf *out);

/* The getters leave ret untouched on failure. */

/* Sets the error message; returns -err. */
int request_fail(Request *rq, int err, const char *fmt, ...) _printf_(3, 4);

/* Absent or null: *ret = NULL (an error if required). */
int request_get_string(Request *rq, const char *key, bool required, const char **ret);
/* Absent or null: dflt. */
int request_get_int(Request *rq, const char *key, int64_t dflt, int64_t min, int64_t max, int64_t *ret);
/* Required, absolute, shorter than PATH_MAX. */
int request_get_path(Request *rq, const char *key, const char **ret);
/* Decoded into the arena, at most max bytes; absent: NULL, 0. */
int request_get_base64(Request *rq, const char *key, size_t max, unsigned char **ret, size_t *ret_len);
/* At most max strings, as a NULL-terminated vector in the arena. */
int request_get_strv(Request *rq, const char *key, bool required, size_t max, char ***ret, size_t *ret_n);
