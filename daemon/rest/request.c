/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "request.h"
#include "string-util.h"
#include "vm-config.h"

json_object *rest_parse_body_object(HttpRequest *req) {
        enum json_tokener_error jerr = json_tokener_success;
        json_tokener *tok;
        json_object *o;
        size_t size;
        const char *body = http_request_body(req, &size);

        if (!body || size == 0) {
                http_request_reply_error(req, API_ERROR_INVALID_JSON, NULL, "request body must be a JSON object");
                return NULL;
        }
        if (strlen(body) != size) {
                http_request_reply_error(req, API_ERROR_INVALID_JSON, NULL, "request body contains a NUL byte");
                return NULL;
        }
        tok = json_tokener_new();
        if (!tok) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return NULL;
        }
        o = json_tokener_parse_ex(tok, body, (int) size);
        jerr = json_tokener_get_error(tok);
        if (!o || jerr != json_tokener_success) {
                /* Where, not json-c's own words ("null expected" for "notjson"). */
                size_t at = json_tokener_get_parse_end(tok);

                json_tokener_free(tok);
                json_object_put(o);
                http_request_reply_error(req, API_ERROR_INVALID_JSON, NULL,
                                         jerr == json_tokener_continue
                                                 ? "request body is not valid JSON: it ends too early"
                                                 : "request body is not valid JSON (error at byte %zu): send a JSON object",
                                         at + 1);
                return NULL;
        }
        json_tokener_free(tok);
        if (!json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                http_request_reply_error(req, API_ERROR_INVALID_JSON, NULL, "request body must be a JSON object");
                return NULL;
        }
        return o;
}

bool rest_query_bool(HttpRequest *req, const char *key) {
        const char *v = http_request_query(req, key);

        return v && (streq(v, "1") || streq(v, "true") || streq(v, "yes") || isempty(v));
}

Vm *rest_lookup_vm(Manager *m, HttpRequest *req, const char *id) {
        Vm *vm = manager_find(m, id);

        if (!vm)
                http_request_reply_error(req, API_ERROR_NOT_FOUND, NULL, "no VM with VMID or name '%s'", id);
        return vm;
}

void rest_reply_vm(HttpRequest *req, Vm *vm, unsigned status) {
        json_object *j = NULL;

        if (vm_to_json(vm, true, &j) < 0) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return;
        }
        http_request_reply_json(req, status, j);
}

void rest_reply_json(HttpRequest *req, unsigned status, json_object *j) {
        if (j)
                http_request_reply_json(req, status, j);
        else
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
}

/* The core's conventions (manager_create_vm(), vm_update_config()): -EEXIST
 * and -EADDRINUSE are taken names, VMIDs, CIDs; -ENOSPC a limit; -EPERM a
 * key that cannot change; -EACCES the policy's refusal; -EIO and -ENOMEM our fault; anything else a refused key or value. */
ApiError rest_error_from_errno(int r, const char *key) {
        switch (r) {
        case -EEXIST:
                return streq_ptr(key, "vmid") ? API_ERROR_VMID_TAKEN : API_ERROR_NAME_TAKEN;
        case -EADDRINUSE:
        case -ENOSPC:
                return API_ERROR_CONFLICT;
        case -EIO:
        case -ENOMEM:
                return API_ERROR_INTERNAL;
        case -EACCES:           /* the storage and network policy (core/config-check.h) */
                return API_ERROR_FORBIDDEN;
        case -EPERM:            /* a known key that cannot be changed (vmid) */
                return API_ERROR_INVALID_VALUE;
        default:
                return key && !vm_config_key_known(key) ? API_ERROR_UNKNOWN_KEY : API_ERROR_INVALID_VALUE;
        }
}

ApiError rest_error_from_job_errno(int r) {
        switch (r) {
        case -EEXIST:
                return API_ERROR_NAME_TAKEN;
        case -EBUSY:
                return API_ERROR_CONFLICT;
        case -EAGAIN:
                return API_ERROR_UNAVAILABLE;
        default:
                return API_ERROR_INTERNAL;
        }
}

void rest_reply_errno(HttpRequest *req, int r, const char *key, const char *message) {
        http_request_reply_error(req, rest_error_from_errno(r, key), key, "%s",
                                 message ? message : r == -ENOMEM ? "out of memory" : errno_str(r));
}

ApiError rest_error_from_agent_code(const char *code) {
        if (streq_ptr(code, "EINVAL") || streq_ptr(code, "E2BIG") || streq_ptr(code, "EISDIR") ||
            streq_ptr(code, "ENOTDIR"))
                return API_ERROR_INVALID_VALUE;
        if (streq_ptr(code, "ENOENT"))
                return API_ERROR_NOT_FOUND;
        if (streq_ptr(code, "ETIMEDOUT") || streq_ptr(code, "ECONNREFUSED") || streq_ptr(code, "ECONNRESET") ||
            streq_ptr(code, "ESHUTDOWN"))
                return API_ERROR_UNAVAILABLE;
        return API_ERROR_INTERNAL;
}
