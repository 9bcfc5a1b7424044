/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Who is asking, and may they: the role of a request and the per-route
 * minimum role. The table and what each role may do are in access.c and
 * docs/api.md ("Roles").
 */

#include <stdbool.h>
#include <sys/types.h>

#include "http-server.h"

/* Ordered: each role may do what the ones before it may. */
typedef enum RestRole {
        REST_ROLE_READ_ONLY,    /* TCP token "read-only" */
        REST_ROLE_OPERATOR,     /* TCP token "operator" */
        REST_ROLE_ADMIN,        /* TCP token "admin" */
        REST_ROLE_LOCAL,        /* unix socket, a member of group zvm (not root) */
        REST_ROLE_ROOT,         /* unix socket, peer uid 0 */
        _REST_ROLE_MAX,
} RestRole;

const char *rest_role_to_string(RestRole r);

/* The request's role: TCP from the token's role (the listener's grant),
 * unix socket from the peer's uid. */
RestRole rest_request_role(HttpRequest *req);

/* Whether the unix-socket peer is uid 0: what raw host paths and the like
 * (issue 10, item 2) will require. False on TCP, whatever the token. */
bool rest_request_is_root(HttpRequest *req);

/* Whether req's role may call the route (method, pattern as in the route
 * table); if not, answers 403 Forbidden (naming the role needed) and
 * returns false: the request is consumed. */
bool rest_access_check(HttpRequest *req, const char *method, const char *pattern);

/* GET /whoami: {"role": …, "transport": "unix"|"tcp", "uid": N (unix only)}.
 * A route handler (routes.h signature), declared here to keep the roles in
 * one place. */
void route_whoami(void *ctx, HttpRequest *req, char **params);
