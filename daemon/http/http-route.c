/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "http-route.h"
#include "macro.h"
#include "string-util.h"

typedef struct PathSegments {
        char *buf;                              /* all decoded segments, NUL-separated */
        const char *seg[ROUTE_SEGMENTS_MAX];
        size_t n;
} PathSegments;

/* Decodes one raw segment [s, s+l) into out (which has room for l+1 bytes)
 * and checks it. '+' stays '+': that convention belongs to query strings,
 * not to paths. */
static int segment_decode(const char *s, size_t l, char *out) {
        ssize_t n;

        if (l == 0)
                return -EINVAL;
        n = percent_decode(s, l, out, NULL);
        if (n < 0)
                return (int) n;
        /* '/' from "%2F", and NUL/control characters from "%00"-style
         * escapes have no business in a VM name or token id. */
        for (ssize_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) out[i];

                if (c == '/' || c < 0x20 || c == 0x7f)
                        return -EINVAL;
        }

        if (streq(out, ".") || streq(out, ".."))
                return -EINVAL;
        return 0;
}

static void path_segments_done(PathSegments *p) {
        p->buf = mfree(p->buf);
        p->n = 0;
}

static int path_split(const char *path, PathSegments *ret) {
        PathSegments p = {};
        size_t len;
        char *out;
        int r;

        if (!path || path[0] != '/')
                return -EINVAL;
        len = strlen(path);
        if (len > ROUTE_PATH_MAX)
                return -EINVAL;

        p.buf = malloc(len + 1);
        if (!p.buf)
                return -ENOMEM;
        out = p.buf;

        /* "/" has no segments: a fine path that no pattern matches. */
        if (path[1] == '\0') {
                *ret = p;
                return 0;
        }

        for (const char *s = path + 1;;) {
                size_t l = strcspn(s, "/");

                if (p.n >= ROUTE_SEGMENTS_MAX) {
                        r = -EINVAL;
                        goto fail;
                }
                r = segment_decode(s, l, out);
                if (r < 0)
                        goto fail;
                p.seg[p.n++] = out;
                out += strlen(out) + 1;

                if (s[l] == '\0')
                        break;
                s += l + 1;
        }

        *ret = p;
        return 0;

fail:
        path_segments_done(&p);
        return r;
}

/* Length of the parameter name if [s, s+l) is "{name}", else 0. */
static size_t pattern_param(const char *s, size_t l) {
        if (l < 3 || s[0] != '{' || s[l - 1] != '}')
                return 0;
        if (memchr(s + 1, '{', l - 2) || memchr(s + 1, '}', l - 2))
                return 0;
        return l - 2;
}

bool route_pattern_is_valid(const char *pattern) {
        size_t n_params = 0, n_segments = 0;

        if (!pattern || pattern[0] != '/')
                return false;

        for (const char *s = pattern + 1;;) {
                size_t l = strcspn(s, "/");

                if (l == 0 || ++n_segments > ROUTE_SEGMENTS_MAX)
                        return false;
                if (pattern_param(s, l) > 0) {
                        if (++n_params > ROUTE_PARAMS_MAX)
                                return false;
                } else if (memchr(s, '{', l) || memchr(s, '}', l) || memchr(s, '%', l))
                        return false;

                if (s[l] == '\0')
                        return true;
                s += l + 1;
        }
}

/* Matches the decoded segments against one pattern; on success fills
 * params[] with pointers into p (not copies) and returns their number. */
static int pattern_match(const char *pattern, const PathSegments *p, const char *params[ROUTE_PARAMS_MAX]) {
        size_t i = 0, n_params = 0;

        if (!route_pattern_is_valid(pattern))
                return -EINVAL;

        for (const char *s = pattern + 1;; i++) {
                size_t l = strcspn(s, "/");

                if (i >= p->n)
                        return -ENOENT;

                if (pattern_param(s, l) > 0)
                        params[n_params++] = p->seg[i];
                else if (strlen(p->seg[i]) != l || !strneq(p->seg[i], s, l))
                        return -ENOENT;

                if (s[l] == '\0')
                        break;
                s += l + 1;
        }

        if (i + 1 != p->n)
                return -ENOENT;
        return (int) n_params;
}

int route_match(const Route *routes, size_t n_routes, const char *method, const char *path,
                const Route **ret_route, char *ret_params[ROUTE_PARAMS_MAX]) {
        PathSegments p = {};
        const Route *found = NULL;
        const char *params[ROUTE_PARAMS_MAX] = {};
        bool path_matched = false;
        int n_params = 0, r;

        assert_return(routes || n_routes == 0, -EINVAL);
        assert_return(method, -EINVAL);

        r = path_split(path, &p);
        if (r < 0)
                return r;

        for (size_t i = 0; i < n_routes; i++) {
                const char *cand[ROUTE_PARAMS_MAX] = {};
                int k;

                k = pattern_match(routes[i].pattern, &p, cand);
                if (k < 0)
                        continue;
                path_matched = true;
                if (!streq_ptr(routes[i].method, method))
                        continue;

                found = &routes[i];
                n_params = k;
                memcpy(params, cand, sizeof(params));
                break;
        }

        if (!found) {
                path_segments_done(&p);
                return path_matched ? -EOPNOTSUPP : -ENOENT;
        }

        if (ret_params) {
                char *copy[ROUTE_PARAMS_MAX] = {};

                for (int i = 0; i < n_params; i++) {
                        copy[i] = strdup(params[i]);
                        if (!copy[i]) {
                                route_params_free(copy);
                                path_segments_done(&p);
                                return -ENOMEM;
                        }
                }
                memcpy(ret_params, copy, sizeof(copy));
        }

        path_segments_done(&p);
        if (ret_route)
                *ret_route = found;
        return 0;
}

void route_params_free(char *params[ROUTE_PARAMS_MAX]) {
        if (!params)
                return;
        for (size_t i = 0; i < ROUTE_PARAMS_MAX; i++)
                params[i] = mfree(params[i]);
}
