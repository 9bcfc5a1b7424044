/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Roles. On the unix socket the file mode (0660, group zvm) already decided
 * who may connect; there the peer's uid tells root from a group member. On
 * TCP the bearer token's role decides, per route, by this table:
 *
 *   read-only  reads the state: every GET except a guest file's content
 *              (which is the guest's data, as exec is).
 *   operator   + runs VMs that exist: start, shutdown, stop, reboot, kill,
 *              memory target, exec, guest files (read and write).
 *   admin      + changes what exists: create, change and delete VMs, build
 *              and delete templates.
 *   local      (unix socket, group zvm) + token management.
 *   root       (unix socket, uid 0) everything. Every other role, admin
 *              tokens too, is held to the storage and network policy
 *              (pure/policy.h): rest_request_is_root() tells them apart.
 *
 * A route missing from the table needs admin (GET: read-only), so a new
 * route is closed to weaker tokens until someone decides otherwise.
 */
#include <string.h>

#include "access.h"
#include "log.h"
#include "macro.h"
#include "token-store.h"
#include "zvm-config.h"

static const char *const role_names[_REST_ROLE_MAX] = {
        [REST_ROLE_READ_ONLY] = "read-only",
        [REST_ROLE_OPERATOR] = "operator",
        [REST_ROLE_ADMIN] = "admin",
        [REST_ROLE_LOCAL] = "local",
        [REST_ROLE_ROOT] = "root",
};

typedef struct RouteAccess {
        const char *method;
        const char *pattern;            /* without ZVM_API_PREFIX */
        RestRole min;
} RouteAccess;

static const RouteAccess route_access[] = {
        { "GET",    "/vms/{id}/files",    REST_ROLE_OPERATOR },
        { "PUT",    "/vms/{id}/files",    REST_ROLE_OPERATOR },
        { "POST",   "/vms/{id}/start",    REST_ROLE_OPERATOR },
        { "POST",   "/vms/{id}/shutdown", REST_ROLE_OPERATOR },
        { "POST",   "/vms/{id}/stop",     REST_ROLE_OPERATOR },
        { "POST",   "/vms/{id}/reboot",   REST_ROLE_OPERATOR },
        { "POST",   "/vms/{id}/kill",     REST_ROLE_OPERATOR },
        { "PUT",    "/vms/{id}/memory",   REST_ROLE_OPERATOR },
        { "POST",   "/vms/{id}/exec",     REST_ROLE_OPERATOR },
        /* Inference is using VMs, as exec is: operator, not read-only (it
         * costs the host CPU), not admin (it changes nothing). */
        { "POST",   "/vms/{id}/v1/chat/completions", REST_ROLE_OPERATOR },
        { "POST",   "/vms/{id}/v1/completions",      REST_ROLE_OPERATOR },
        { "POST",   "/v1/chat/completions",          REST_ROLE_OPERATOR },
        { "POST",   "/v1/completions",               REST_ROLE_OPERATOR },
        { "GET",    "/tokens",            REST_ROLE_LOCAL },
        { "POST",   "/tokens",            REST_ROLE_LOCAL },
        { "DELETE", "/tokens/{tokenid}",  REST_ROLE_LOCAL },
};

const char *rest_role_to_string(RestRole r) {
        return r < _REST_ROLE_MAX ? role_names[r] : "?";
}

RestRole rest_request_role(HttpRequest *req) {
        uid_t uid;
        int g;

        if (http_request_is_tcp(req)) {
                g = http_request_grant(req);
                switch (g) {
                case TOKEN_ROLE_ADMIN:
                        return REST_ROLE_ADMIN;
                case TOKEN_ROLE_OPERATOR:
                        return REST_ROLE_OPERATOR;
                default:
                        return REST_ROLE_READ_ONLY;
                }
        }
        /* No peer credentials (only if their lookup failed): still someone
         * the socket's mode let in, but not known to be root. */
        if (http_request_peer_uid(req, &uid) < 0 || uid != 0)
                return REST_ROLE_LOCAL;
        return REST_ROLE_ROOT;
}

bool rest_request_is_root(HttpRequest *req) {
        return rest_request_role(req) == REST_ROLE_ROOT;
}

static RestRole route_min_role(const char *method, const char *pattern) {
        const char *p = startswith(pattern, ZVM_API_PREFIX) ?: pattern;

        for (size_t i = 0; i < ELEMENTSOF(route_access); i++)
                if (streq(route_access[i].method, method) && streq(route_access[i].pattern, p))
                        return route_access[i].min;
        return streq(method, "GET") ? REST_ROLE_READ_ONLY : REST_ROLE_ADMIN;
}

void route_whoami(void *ctx, HttpRequest *req, char **params) {
        json_object *o = json_object_new_object();
        uid_t uid;

        if (!o) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return;
        }
        json_object_object_add(o, "role", json_object_new_string(rest_role_to_string(rest_request_role(req))));
        json_object_object_add(o, "transport", json_object_new_string(http_request_is_tcp(req) ? "tcp" : "unix"));
        if (http_request_peer_uid(req, &uid) >= 0)
                json_object_object_add(o, "uid", json_object_new_int64((int64_t) uid));
        http_request_reply_json(req, 200, o);
}

bool rest_access_check(HttpRequest *req, const char *method, const char *pattern) {
        RestRole have = rest_request_role(req), need = route_min_role(method, pattern);

        if (have >= need)
                return true;
        http_request_reply_error(req, API_ERROR_FORBIDDEN, NULL, "%s %s needs the %s role%s; this %s is %s",
                                 method, http_request_path(req), rest_role_to_string(need),
                                 need >= REST_ROLE_LOCAL ? " (the local socket)" : "",
                                 http_request_is_tcp(req) ? "token" : "caller", rest_role_to_string(have));
        return false;
}
