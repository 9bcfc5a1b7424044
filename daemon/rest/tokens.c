/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* /tokens: bearer tokens for the TCP listener, managed on the unix socket only. */
#include <errno.h>
#include <time.h>

#include "request.h"
#include "routes.h"
#include "string-util.h"
#include "token-store.h"

static bool tokens_local_only(HttpRequest *req) {
        if (!http_request_is_tcp(req))
                return true;
        http_request_reply_error(req, API_ERROR_FORBIDDEN, NULL, "tokens can only be managed on the local socket");
        return false;
}

void route_tokens_list(void *ctx, HttpRequest *req, char **params) {
        Rest *rest = ctx;
        json_object *j = NULL;

        if (!tokens_local_only(req))
                return;
        if (token_store_to_json(rest->tokens, &j) < 0) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return;
        }
        http_request_reply_json(req, 200, j);
}

/* The optional "role" (default read-only: least privilege unless asked)
 * and "expires" (UNIX time in the future, or null/absent: never) of a
 * creation request. Replies and returns false on a bad value. */
static bool tokens_parse_scope(HttpRequest *req, json_object *body, TokenRole *ret_role, uint64_t *ret_expires) {
        json_object *v;
        int64_t e;
        int r;

        *ret_role = TOKEN_ROLE_READ_ONLY;
        *ret_expires = 0;
        if (!body)
                return true;
        if (json_object_object_get_ex(body, "role", &v)) {
                r = json_object_is_type(v, json_type_string) ? token_role_from_string(json_object_get_string(v)) : -EINVAL;
                if (r < 0) {
                        http_request_reply_error(req, API_ERROR_INVALID_VALUE, "role",
                                                 "role: must be \"read-only\", \"operator\" or \"admin\"");
                        return false;
                }
                *ret_role = r;
        }
        if (json_object_object_get_ex(body, "expires", &v) && v) {
                e = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
                if (e <= (int64_t) time(NULL)) {
                        http_request_reply_error(req, API_ERROR_INVALID_VALUE, "expires",
                                                 "expires: must be a UNIX time in the future, or null");
                        return false;
                }
                *ret_expires = (uint64_t) e;
        }
        return true;
}

void route_tokens_create(void *ctx, HttpRequest *req, char **params) {
        Rest *rest = ctx;
        _cleanup_free_ char *id = NULL, *token = NULL;
        const char *comment = "";
        json_object *body = NULL, *v, *o;
        TokenRole role;
        uint64_t expires;
        size_t size;
        int r;

        if (!tokens_local_only(req))
                return;
        if (http_request_body(req, &size) && size > 0) {
                body = rest_parse_body_object(req);
                if (!body)
                        return;
                if (json_object_object_get_ex(body, "comment", &v)) {
                        if (!json_object_is_type(v, json_type_string)) {
                                json_object_put(body);
                                http_request_reply_error(req, API_ERROR_INVALID_VALUE, "comment", "comment: must be a string");
                                return;
                        }
                        comment = json_object_get_string(v);
                }
        }
        if (!tokens_parse_scope(req, body, &role, &expires)) {
                json_object_put(body);
                return;
        }
        r = token_store_create_full(rest->tokens, comment, role, expires, &id, &token);
        json_object_put(body);
        if (r < 0) {
                http_request_reply_error(req, r == -EINVAL ? API_ERROR_INVALID_VALUE : API_ERROR_INTERNAL, "comment",
                                         "cannot create a token: %s", errno_str(r));
                return;
        }
        o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(id));
        json_object_object_add(o, "secret", json_object_new_string(token));
        json_object_object_add(o, "role", json_object_new_string(token_role_to_string(role)));
        json_object_object_add(o, "expires", expires ? json_object_new_int64((int64_t) expires) : NULL);
        http_request_reply_json(req, 201, o);
}

void route_tokens_delete(void *ctx, HttpRequest *req, char **params) {
        Rest *rest = ctx;
        json_object *o;
        int r;

        if (!tokens_local_only(req))
                return;
        r = token_store_delete(rest->tokens, params[0]);
        if (r == -ENOENT) {
                http_request_reply_error(req, API_ERROR_NOT_FOUND, NULL, "no token '%s'", params[0]);
                return;
        }
        if (r < 0) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "cannot delete token: %s", errno_str(r));
                return;
        }
        o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(params[0]));
        http_request_reply_json(req, 200, o);
}
