/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * daemon/http/http-route: route_match(), which sees every request line
 * before authentication, on zvmd's route table (daemon/rest/rest.c; kept in
 * sync by hand: only the patterns matter here).
 *
 * Input: "METHOD PATH" (no space: the whole input is the path, method GET).
 *
 * Properties (http-route.h's contract):
 *   - the result is one of the documented codes;
 *   - a match has the request's method, one parameter per "{name}", each
 *     non-empty and free of '/', control characters, "." and "..";
 *   - round trip: the matched pattern with its parameters percent-encoded
 *     back into it matches the same route with the same parameters.
 */
#include <errno.h>

#include "api.h"
#include "fuzz.h"
#include "http-route.h"
#include "string-util.h"

static const Route routes[] = {
        { "GET", ZVM_API_PREFIX "/vms" },
        { "POST", ZVM_API_PREFIX "/vms" },
        { "GET", ZVM_API_PREFIX "/vms/{id}" },
        { "PATCH", ZVM_API_PREFIX "/vms/{id}" },
        { "DELETE", ZVM_API_PREFIX "/vms/{id}" },
        { "POST", ZVM_API_PREFIX "/vms/{id}/start" },
        { "POST", ZVM_API_PREFIX "/vms/{id}/shutdown" },
        { "POST", ZVM_API_PREFIX "/vms/{id}/stop" },
        { "POST", ZVM_API_PREFIX "/vms/{id}/reboot" },
        { "POST", ZVM_API_PREFIX "/vms/{id}/kill" },
        { "PUT", ZVM_API_PREFIX "/vms/{id}/memory" },
        { "GET", ZVM_API_PREFIX "/vms/{id}/status" },
        { "GET", ZVM_API_PREFIX "/vms/{id}/console/log" },
        { "POST", ZVM_API_PREFIX "/vms/{id}/exec" },
        { "GET", ZVM_API_PREFIX "/vms/{id}/files" },
        { "PUT", ZVM_API_PREFIX "/vms/{id}/files" },
        { "GET", ZVM_API_PREFIX "/host" },
        { "GET", ZVM_API_PREFIX "/events" },
        { "GET", ZVM_API_PREFIX "/tokens" },
        { "POST", ZVM_API_PREFIX "/tokens" },
        { "DELETE", ZVM_API_PREFIX "/tokens/{tokenid}" },
        { "GET", ZVM_API_PREFIX "/templates" },
        { "POST", ZVM_API_PREFIX "/templates" },
        { "GET", ZVM_API_PREFIX "/templates/{name}" },
        { "DELETE", ZVM_API_PREFIX "/templates/{name}" },
        { "GET", ZVM_API_PREFIX "/templates/{name}/log" },
        /* Not in zvmd's table: several parameters in one pattern. */
        { "GET", "/x/{a}/{b}/y/{c}/{d}" },
};

static size_t count_params(const char *pattern) {
        size_t n = 0;

        for (const char *p = pattern; (p = strchr(p, '{')); p++)
                n++;
        return n;
}

/* Every byte outside RFC 3986's unreserved set as %XX. */
static char *segment_encode(const char *s) {
        char *out = malloc(strlen(s) * 3 + 1), *q = out;

        if (!out)
                return NULL;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                    strchr("-._~", *p))
                        *q++ = (char) *p;
                else
                        q += sprintf(q, "%%%02X", *p);
        *q = '\0';
        return out;
}

/* The pattern with its "{name}" segments replaced by params, encoded. */
static char *path_build(const char *pattern, char *params[ROUTE_PARAMS_MAX]) {
        _cleanup_free_ char *out = strdup("");
        size_t i = 0;

        for (const char *s = pattern + 1; out;) {
                size_t l = strcspn(s, "/");
                _cleanup_free_ char *seg = s[0] == '{' ? segment_encode(params[i++]) : strndup(s, l);
                char *n;

                if (!seg)
                        return NULL;
                n = strjoin(out, "/", seg);
                free(out);
                out = n;
                if (s[l] == '\0')
                        break;
                s += l + 1;
        }
        return TAKE_PTR(out);
}

static void check_match(const char *method, const Route *route, char *params[ROUTE_PARAMS_MAX]) {
        char *again[ROUTE_PARAMS_MAX] = {};
        _cleanup_free_ char *path = NULL;
        const Route *route2 = NULL;
        size_t n = count_params(route->pattern);
        int r;

        FUZZ_CHECK(streq(route->method, method));
        for (size_t i = 0; i < ROUTE_PARAMS_MAX; i++) {
                if (i >= n) {
                        FUZZ_CHECK(!params[i]);
                        continue;
                }
                FUZZ_CHECK(params[i] && params[i][0]);
                FUZZ_CHECK(!streq(params[i], ".") && !streq(params[i], ".."));
                for (const char *p = params[i]; *p; p++)
                        FUZZ_CHECK(*p != '/' && (unsigned char) *p >= 0x20 && *p != 0x7f);
        }

        path = path_build(route->pattern, params);
        if (!path)
                return;
        r = route_match(routes, ELEMENTSOF(routes), method, path, &route2, again);
        if (r == -ENOMEM)
                return;
        /* The encoded form can be longer than ROUTE_PATH_MAX. */
        if (r == -EINVAL && strlen(path) > ROUTE_PATH_MAX)
                return;
        FUZZ_CHECK(r == 0 && route2 == route);
        for (size_t i = 0; i < n; i++)
                FUZZ_CHECK(streq(params[i], again[i]));
        route_params_free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *text = NULL;
        char *params[ROUTE_PARAMS_MAX] = {};
        const char *method = "GET", *path;
        const Route *route = NULL;
        char *space;
        int r;

        text = fuzz_strndup(data, size);
        if (!text)
                return 0;
        path = text;
        space = strchr(text, ' ');
        if (space) {
                *space = '\0';
                method = text;
                path = space + 1;
        }

        r = route_match(routes, ELEMENTSOF(routes), method, path, &route, params);
        if (r < 0) {
                FUZZ_CHECK(IN_SET(r, -ENOENT, -EOPNOTSUPP, -EINVAL, -ENOMEM));
                FUZZ_CHECK(!route);
                for (size_t i = 0; i < ROUTE_PARAMS_MAX; i++)
                        FUZZ_CHECK(!params[i]);
                return 0;
        }
        FUZZ_CHECK(route);
        check_match(method, route, params);
        route_params_free(params);
        return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        for (size_t i = 0; i < ELEMENTSOF(routes); i++)
                FUZZ_CHECK(route_pattern_is_valid(routes[i].pattern));
        return 0;
}
