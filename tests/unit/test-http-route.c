/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>

#include "http-route.h"
#include "macro.h"
#include "tap.h"

static void h_dummy(void *ctx, HttpRequest *req, char **params) {
}

/* The routes of api/openapi.yaml, as zvmd's table has them. */
static const Route routes[] = {
        { "GET",    "/api/v1/vms",                     h_dummy },
        { "POST",   "/api/v1/vms",                     h_dummy },
        { "GET",    "/api/v1/vms/{id}",                h_dummy },
        { "PATCH",  "/api/v1/vms/{id}",                h_dummy },
        { "DELETE", "/api/v1/vms/{id}",                h_dummy },
        { "POST",   "/api/v1/vms/{id}/start",          h_dummy },
        { "POST",   "/api/v1/vms/{id}/shutdown",       h_dummy },
        { "POST",   "/api/v1/vms/{id}/stop",           h_dummy },
        { "POST",   "/api/v1/vms/{id}/reboot",         h_dummy },
        { "POST",   "/api/v1/vms/{id}/kill",           h_dummy },
        { "PUT",    "/api/v1/vms/{id}/memory",         h_dummy },
        { "GET",    "/api/v1/vms/{id}/status",         h_dummy },
        { "GET",    "/api/v1/vms/{id}/console/log",    h_dummy },
        { "GET",    "/api/v1/host",                    h_dummy },
        { "GET",    "/api/v1/events",                  h_dummy },
        { "GET",    "/api/v1/tokens",                  h_dummy },
        { "POST",   "/api/v1/tokens",                  h_dummy },
        { "DELETE", "/api/v1/tokens/{tokenid}",        h_dummy },
        /* Not in the API: exercises two parameters and literal-before-parameter order. */
        { "GET",    "/test/{a}/x/{b}",                 h_dummy },
        { "GET",    "/test/lit",                       h_dummy },
        { "GET",    "/test/{a}",                       h_dummy },
};

static const struct {
        const char *method, *path;
        int r;
        const char *pattern;            /* expected match (r == 0) */
        const char *p0, *p1;            /* expected parameters */
} cases[] = {
        { "GET",    "/api/v1/vms",                        0, "/api/v1/vms" },
        { "POST",   "/api/v1/vms",                        0, "/api/v1/vms" },
        { "GET",    "/api/v1/vms/100",                    0, "/api/v1/vms/{id}", "100" },
        { "PATCH",  "/api/v1/vms/web",                    0, "/api/v1/vms/{id}", "web" },
        { "DELETE", "/api/v1/vms/web",                    0, "/api/v1/vms/{id}", "web" },
        { "POST",   "/api/v1/vms/web/start",              0, "/api/v1/vms/{id}/start", "web" },
        { "POST",   "/api/v1/vms/101/shutdown",           0, "/api/v1/vms/{id}/shutdown", "101" },
        { "POST",   "/api/v1/vms/a.b-c_d/stop",           0, "/api/v1/vms/{id}/stop", "a.b-c_d" },
        { "POST",   "/api/v1/vms/x/reboot",               0, "/api/v1/vms/{id}/reboot", "x" },
        { "POST",   "/api/v1/vms/x/kill",                 0, "/api/v1/vms/{id}/kill", "x" },
        { "PUT",    "/api/v1/vms/x/memory",               0, "/api/v1/vms/{id}/memory", "x" },
        { "GET",    "/api/v1/vms/x/status",               0, "/api/v1/vms/{id}/status", "x" },
        { "GET",    "/api/v1/vms/x/console/log",          0, "/api/v1/vms/{id}/console/log", "x" },
        { "GET",    "/api/v1/host",                       0, "/api/v1/host" },
        { "GET",    "/api/v1/events",                     0, "/api/v1/events" },
        { "GET",    "/api/v1/tokens",                     0, "/api/v1/tokens" },
        { "POST",   "/api/v1/tokens",                     0, "/api/v1/tokens" },
        { "DELETE", "/api/v1/tokens/0a1b2c3d",            0, "/api/v1/tokens/{tokenid}", "0a1b2c3d" },
        { "GET",    "/test/one/x/two",                    0, "/test/{a}/x/{b}", "one", "two" },
        { "GET",    "/test/lit",                          0, "/test/lit" },
        { "GET",    "/test/other",                        0, "/test/{a}", "other" },

        /* Parameters are decoded, per segment. */
        { "GET",    "/api/v1/vms/my%20vm",                0, "/api/v1/vms/{id}", "my vm" },
        { "GET",    "/api/v1/vms/%77eb",                  0, "/api/v1/vms/{id}", "web" },
        { "GET",    "/api/v1/vms/a+b",                    0, "/api/v1/vms/{id}", "a+b" },
        { "GET",    "/api/v1/vms/%C3%A9t%C3%A9",          0, "/api/v1/vms/{id}", "\xc3\xa9t\xc3\xa9" },
        { "GET",    "/api/v1/vms/...",                    0, "/api/v1/vms/{id}", "..." },
        { "GET",    "/test/a/%78/b",                      0, "/test/{a}/x/{b}", "a", "b" },    /* literal compared decoded */
        { "GET",    "/api/%76%31/host",                   0, "/api/v1/host" },

        /* 405: the path exists, the method does not. */
        { "PUT",    "/api/v1/vms",                        -EOPNOTSUPP },
        { "GET",    "/api/v1/vms/web/start",              -EOPNOTSUPP },
        { "POST",   "/api/v1/vms/web",                    -EOPNOTSUPP },
        { "DELETE", "/api/v1/tokens",                     -EOPNOTSUPP },
        { "GET",    "/api/v1/tokens/0a1b2c3d",            -EOPNOTSUPP },
        { "get",    "/api/v1/vms",                        -EOPNOTSUPP },
        { "HEAD",   "/api/v1/host",                       -EOPNOTSUPP },

        /* 404 */
        { "GET",    "/",                                  -ENOENT },
        { "GET",    "/api",                               -ENOENT },
        { "GET",    "/api/v1",                            -ENOENT },
        { "GET",    "/api/v2/vms",                        -ENOENT },
        { "GET",    "/api/v1/vms/web/start/now",          -ENOENT },
        { "POST",   "/api/v1/vms/web/pause",              -ENOENT },
        { "GET",    "/api/v1/VMS",                        -ENOENT },
        { "GET",    "/api/v1/vms/x/console",              -ENOENT },

        /* Malformed */
        { "GET",    "",                                   -EINVAL },
        { "GET",    "api/v1/vms",                         -EINVAL },
        { "GET",    "//api/v1/vms",                       -EINVAL },
        { "GET",    "/api//v1/vms",                       -EINVAL },
        { "GET",    "/api/v1/vms/",                       -EINVAL },
        { "GET",    "/api/v1/vms/../host",                -EINVAL },
        { "GET",    "/api/v1/vms/./x",                    -EINVAL },
        { "GET",    "/api/v1/vms/..",                     -EINVAL },
        { "GET",    "/api/v1/vms/%2e%2E",                 -EINVAL },
        { "GET",    "/api/v1/vms/%2E",                    -EINVAL },
        { "GET",    "/api/v1/vms/a%2Fb",                  -EINVAL },
        { "GET",    "/api/v1/vms/a%2fb/start",            -EINVAL },
        { "GET",    "/api/v1/vms/%2F",                    -EINVAL },
        { "GET",    "/api/v1/vms/a%00b",                  -EINVAL },
        { "GET",    "/api/v1/vms/a%0Ab",                  -EINVAL },
        { "GET",    "/api/v1/vms/a%",                     -EINVAL },
        { "GET",    "/api/v1/vms/a%4",                    -EINVAL },
        { "GET",    "/api/v1/vms/a%zz",                   -EINVAL },
        { "DELETE", "/api/v1/tokens/%2e%2e",              -EINVAL },
};

static void test_table(void) {
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const Route *route = (const Route *) 0x1;
                char *params[ROUTE_PARAMS_MAX] = { (char *) 0x1, (char *) 0x1, (char *) 0x1, (char *) 0x1 };
                int r;

                r = route_match(routes, ELEMENTSOF(routes), cases[i].method, cases[i].path, &route, params);
                is_int(r, cases[i].r, "%s %s → %d", cases[i].method, cases[i].path, cases[i].r);
                if (r < 0) {
                        ok(route == (const Route *) 0x1 && params[0] == (char *) 0x1,
                           "  outputs untouched on failure");
                        continue;
                }
                is_str(route->pattern, cases[i].pattern, "  pattern");
                is_str(route->method, cases[i].method, "  method");
                is_str(params[0], cases[i].p0, "  param 0");
                is_str(params[1], cases[i].p1, "  param 1");
                ok(!params[2] && !params[3], "  unused params NULL");
                route_params_free(params);
                ok(!params[0] && !params[1], "  route_params_free() resets");
        }
}

static void test_limits(void) {
        char path[ROUTE_PATH_MAX + 2];
        const Route *route;
        char *params[ROUTE_PARAMS_MAX] = {};
        size_t n;

        /* /api/v1/vms/<long id> exactly at the limit matches, one more byte does not. */
        n = (size_t) snprintf(path, sizeof(path), "/api/v1/vms/");
        memset(path + n, 'a', ROUTE_PATH_MAX - n);
        path[ROUTE_PATH_MAX] = '\0';
        is_int(route_match(routes, ELEMENTSOF(routes), "GET", path, &route, params), 0, "path of ROUTE_PATH_MAX bytes");
        is_int(strlen(params[0]), ROUTE_PATH_MAX - n, "long parameter intact");
        route_params_free(params);
        path[ROUTE_PATH_MAX] = 'a';
        path[ROUTE_PATH_MAX + 1] = '\0';
        is_int(route_match(routes, ELEMENTSOF(routes), "GET", path, &route, params), -EINVAL, "path over ROUTE_PATH_MAX");

        /* Segments */
        path[0] = '\0';
        for (unsigned i = 0; i < ROUTE_SEGMENTS_MAX; i++)
                strcat(path, "/a");
        is_int(route_match(routes, ELEMENTSOF(routes), "GET", path, NULL, NULL), -ENOENT, "ROUTE_SEGMENTS_MAX segments: fine (no match)");
        strcat(path, "/a");
        is_int(route_match(routes, ELEMENTSOF(routes), "GET", path, NULL, NULL), -EINVAL, "one more segment: malformed");

        /* NULL outputs are allowed. */
        is_int(route_match(routes, ELEMENTSOF(routes), "GET", "/api/v1/vms/x", NULL, NULL), 0, "NULL outputs");
        is_int(route_match(routes, 0, "GET", "/api/v1/vms", NULL, NULL), -ENOENT, "empty table");
        is_int(route_match(routes, ELEMENTSOF(routes), "GET", NULL, NULL, NULL), -EINVAL, "NULL path");
}

static void test_patterns(void) {
        static const struct {
                const char *pattern;
                bool valid;
        } p[] = {
                { "/api/v1/vms", true },
                { "/api/v1/vms/{id}/start", true },
                { "/{a}/{b}/{c}/{d}", true },
                { "/{a}/{b}/{c}/{d}/{e}", false },   /* > ROUTE_PARAMS_MAX */
                { "", false },
                { "api", false },
                { "/api/", false },
                { "/api//x", false },
                { "/{}", false },
                { "/{a", false },
                { "/a}", false },
                { "/x{a}", false },
                { "/{a}{b}", false },
                { "/a%20b", false },
        };

        for (size_t i = 0; i < ELEMENTSOF(routes); i++)
                ok(route_pattern_is_valid(routes[i].pattern), "table pattern %s valid", routes[i].pattern);
        for (size_t i = 0; i < ELEMENTSOF(p); i++)
                is_int(route_pattern_is_valid(p[i].pattern), p[i].valid, "pattern '%s' %s", p[i].pattern,
                       p[i].valid ? "valid" : "invalid");

        /* A malformed pattern in a table never matches. */
        static const Route bad[] = { { "GET", "/x{a}", h_dummy }, { "GET", "/{a}/{b}/{c}/{d}/{e}", h_dummy } };
        is_int(route_match(bad, ELEMENTSOF(bad), "GET", "/xy", NULL, NULL), -ENOENT, "malformed pattern ignored");
        is_int(route_match(bad, ELEMENTSOF(bad), "GET", "/1/2/3/4/5", NULL, NULL), -ENOENT, "too many params ignored");
}

int main(void) {
        test_table();
        test_limits();
        test_patterns();
        return done_testing();
}
