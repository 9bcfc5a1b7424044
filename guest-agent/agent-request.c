/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "agent-base64.h"
#include "agent-request.h"

int request_fail(Request *rq, int err, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(rq->error, rq->error_size, fmt, ap);
        va_end(ap);
        return -err;
}

int request_get_string(Request *rq, const char *key, bool required, const char **ret) {
        const Json *v = json_get(rq->args, key);

        if (!v || v->type == JSON_NULL) {
                if (required)
                        return request_fail(rq, EINVAL, "'%s' is required", key);
                *ret = NULL;
                return 0;
        }
        if (v->type != JSON_STRING)
                return request_fail(rq, EINVAL, "'%s' must be a string", key);
        if (!json_is_cstring(v))
                return request_fail(rq, EINVAL, "'%s' must not contain NUL characters", key);
        *ret = v->s;
        return 0;
}

int request_get_int(Request *rq, const char *key, int64_t dflt, int64_t min, int64_t max, int64_t *ret) {
        const Json *v = json_get(rq->args, key);

        if (!v || v->type == JSON_NULL) {
                *ret = dflt;
                return 0;
        }
        if (v->type != JSON_INT)
                return request_fail(rq, EINVAL, "'%s' must be an integer", key);
        if (v->i < min || v->i > max)
                return request_fail(rq, EINVAL, "'%s' must be between %lld and %lld", key, (long long) min,
                                    (long long) max);
        *ret = v->i;
        return 0;
}

int request_get_path(Request *rq, const char *key, const char **ret) {
        const char *path;
        int r = request_get_string(rq, key, true, &path);

        if (r < 0)
                return r;
        if (path[0] != '/')
                return request_fail(rq, EINVAL, "'%s' must be an absolute path", key);
        if (strlen(path) >= PATH_MAX)
                return request_fail(rq, ENAMETOOLONG, "'%s' is too long", key);
        *ret = path;
        return 0;
}

/* A base64 argument, decoded into the request's arena. */
int request_get_base64(Request *rq, const char *key, size_t max, unsigned char **ret, size_t *ret_len) {
        const Json *v = json_get(rq->args, key);
        unsigned char *out;
        ssize_t n;

        if (!v || v->type == JSON_NULL) {
                *ret = NULL;
                *ret_len = 0;
                return 0;
        }
        if (v->type != JSON_STRING)
                return request_fail(rq, EINVAL, "'%s' must be a base64 string", key);
        if (base64_decoded_len(v->len) > max + 2)
                return request_fail(rq, EINVAL, "'%s' is larger than %zu bytes", key, max);
        out = arena_alloc(rq->arena, base64_decoded_len(v->len) + 1);
        if (!out)
                return request_fail(rq, ENOMEM, "out of memory");
        n = base64_decode(v->s, v->len, out);
        if (n < 0)
                return request_fail(rq, EINVAL, "'%s' is not valid base64 (RFC 4648, with padding)", key);
        if ((size_t) n > max)
                return request_fail(rq, EINVAL, "'%s' is larger than %zu bytes", key, max);
        *ret = out;
        *ret_len = (size_t) n;
        return 0;
}

/* An array of strings as a NULL-terminated vector in the arena. */
int request_get_strv(Request *rq, const char *key, bool required, size_t max, char ***ret, size_t *ret_n) {
        const Json *v = json_get(rq->args, key);
        char **vec;
        size_t i = 0;

        if (!v || v->type == JSON_NULL) {
                if (required)
                        return request_fail(rq, EINVAL, "'%s' is required", key);
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        if (v->type != JSON_ARRAY)
                return request_fail(rq, EINVAL, "'%s' must be an array of strings", key);
        if (v->n > max)
                return request_fail(rq, EINVAL, "'%s' has more than %zu entries", key, max);
        vec = arena_alloc(rq->arena, (v->n + 1) * sizeof(char *));
        if (!vec)
                return request_fail(rq, ENOMEM, "out of memory");
        for (const Json *e = v->first; e; e = e->next) {
                if (e->type != JSON_STRING)
                        return request_fail(rq, EINVAL, "'%s' must be an array of strings", key);
                if (!json_is_cstring(e))
                        return request_fail(rq, EINVAL, "'%s' entries must not contain NUL characters", key);
                vec[i++] = (char *) e->s;
        }
        vec[i] = NULL;
        *ret = vec;
        *ret_n = i;
        return 0;
}

