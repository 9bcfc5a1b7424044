/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The REST route table matcher: a pure function from (method, path) to a
 * table entry plus the values of its "{name}" parameters. zvmd keeps its
 * routes in one table mirroring api/openapi.yaml; this module knows nothing
 * about HTTP beyond paths and method names.
 *
 * Paths are matched as the client sent them (http_request_path() keeps the
 * percent-encoding): the path is split at '/' first and each segment is
 * decoded afterwards, so "%2F" can never create or hide a segment boundary.
 */

#include <stdbool.h>
#include <stddef.h>

#define ROUTE_PARAMS_MAX 4U
/* Bounds on what a client can make us look at. */
#define ROUTE_PATH_MAX 4096U
#define ROUTE_SEGMENTS_MAX 32U

typedef struct HttpRequest HttpRequest;

typedef void (*route_handler_fn)(void *ctx, HttpRequest *req, char **params);

typedef struct Route {
        const char *method;     /* "GET", "POST", …: compared exactly (HTTP methods are case-sensitive) */
        const char *pattern;    /* "/api/v1/vms/{id}/start": literal segments and whole-segment "{name}" */
        route_handler_fn handler;
} Route;

/*
 * Finds the first route (in table order) whose pattern matches path and
 * whose method equals method.
 *
 * Returns:
 *   0            found: *ret_route set, ret_params[0..n) are the decoded
 *                parameter values in pattern order (each malloc'd, the caller
 *                frees them, e.g. with route_params_free()), the rest NULL;
 *   -ENOENT      no pattern matches the path (→ 404 NotFound);
 *   -EOPNOTSUPP  a pattern matches the path, but none with this method (→ 405);
 *   -EINVAL      malformed path: not starting with '/', longer than
 *                ROUTE_PATH_MAX, more than ROUTE_SEGMENTS_MAX segments, an
 *                empty segment ("//", trailing '/'), a bad %-escape, a segment
 *                that decodes to "." or "..", or to something containing '/',
 *                NUL or another control character (→ 400 BadRequest);
 *   -ENOMEM.
 * On failure ret_route and ret_params are untouched.
 *
 * ret_params may be NULL when the caller does not want the values.
 */
int route_match(const Route *routes, size_t n_routes, const char *method, const char *path,
                const Route **ret_route, char *ret_params[ROUTE_PARAMS_MAX]);

/* Frees the parameters route_match() returned and sets them to NULL. */
void route_params_free(char *params[ROUTE_PARAMS_MAX]);

/* Whether a pattern is well-formed: starts with '/', no empty segments, each
 * segment either literal (no '{', '}', '%') or exactly "{name}", at most
 * ROUTE_PARAMS_MAX parameters. For tests of route tables: route_match()
 * never matches a malformed pattern. */
bool route_pattern_is_valid(const char *pattern);
