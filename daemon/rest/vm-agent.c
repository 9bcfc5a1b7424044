/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* /vms/{id}/exec and /vms/{id}/files: requests forwarded to the guest
 * agent, each an Operation until the agent answers or the client leaves. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "base64.h"
#include "operation.h"
#include "request.h"
#include "routes.h"
#include "string-util.h"

#define EXEC_TIMEOUT_DEFAULT_S 30U
#define EXEC_TIMEOUT_MAX_S 86400U
#define FILE_MAX (1024U * 1024U)        /* what fits in one API request body */

static void on_agent_result(VmAgent *a, json_object *response, const char *code, const char *message,
                            void *userdata) {
        Operation *op = userdata;
        operation_agent_reply_fn reply = op->agent_reply;
        HttpRequest *req;

        req = operation_call_done(op);
        if (response)
                reply(req, response);
        else
                http_request_reply_error(req, rest_error_from_agent_code(code), NULL, "agent of VM %u: %s (%s)", a->vmid,
                                         strnull(message), strnull(code));
}

static void forward_to_agent(Vm *vm, HttpRequest *req, json_object *request, uint64_t timeout_usec,
                             operation_agent_reply_fn reply) {
        Operation *op;
        int r;

        if (vm->state != VM_STATE_RUNNING || vm->agent.state == AGENT_NONE) {
                json_object_put(request);
                http_request_reply_error(req, API_ERROR_INVALID_STATE, NULL, "VM %u has no running agent (%s, agent %s)",
                                         vm->vmid, vm_state_to_string(vm->state), agent_state_to_string(vm->agent.state));
                return;
        }
        op = operation_new(req, vm);
        if (!op) {
                json_object_put(request);
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return;
        }
        op->agent_reply = reply;
        r = agent_call(&vm->agent, request, timeout_usec, on_agent_result, op, &op->call);
        if (r < 0)
                http_request_reply_error(operation_finish(op), API_ERROR_UNAVAILABLE, NULL,
                                         "cannot reach the agent of VM %u: %s", vm->vmid, errno_str(r));
}

static void reply_agent_result(HttpRequest *req, json_object *response) {
        json_object *copy = NULL;

        if (json_object_deep_copy(response, &copy, NULL) < 0 || !copy) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return;
        }
        json_object_object_del(copy, "ok");
        json_object_object_del(copy, "id");
        http_request_reply_json(req, 200, copy);
}

static bool is_string_array(json_object *a, size_t min) {
        size_t n;

        if (!json_object_is_type(a, json_type_array))
                return false;
        n = json_object_array_length(a);
        if (n < min)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!json_object_is_type(json_object_array_get_idx(a, i), json_type_string))
                        return false;
        return true;
}

void route_vm_exec(void *ctx, HttpRequest *req, char **params) {
        static const char *const passthrough[] = { "argv", "env", "cwd", "stdin", "max_output" };
        Vm *vm = rest_lookup_vm(((Rest *) ctx)->manager, req, params[0]);
        json_object *body, *v, *r;
        int64_t timeout = EXEC_TIMEOUT_DEFAULT_S;

        if (!vm)
                return;
        body = rest_parse_body_object(req);
        if (!body)
                return;
        if (!json_object_object_get_ex(body, "argv", &v) || !is_string_array(v, 1)) {
                http_request_reply_error(req, API_ERROR_INVALID_VALUE, "argv", "argv: must be a non-empty array of strings");
                goto out;
        }
        if (json_object_object_get_ex(body, "env", &v) && !is_string_array(v, 0)) {
                http_request_reply_error(req, API_ERROR_INVALID_VALUE, "env", "env: must be an array of \"KEY=VALUE\" strings");
                goto out;
        }
        if (json_object_object_get_ex(body, "timeout", &v) &&
            (!json_object_is_type(v, json_type_int) || (timeout = json_object_get_int64(v)) <= 0 ||
             timeout > EXEC_TIMEOUT_MAX_S)) {
                http_request_reply_error(req, API_ERROR_INVALID_VALUE, "timeout",
                                         "timeout: must be an integer between 1 and %u seconds", EXEC_TIMEOUT_MAX_S);
                goto out;
        }
        r = json_object_new_object();
        json_object_object_add(r, "op", json_object_new_string("exec"));
        for (size_t i = 0; i < ELEMENTSOF(passthrough); i++)
                if (json_object_object_get_ex(body, passthrough[i], &v))
                        json_object_object_add(r, passthrough[i], json_object_get(v));
        json_object_object_add(r, "timeout_ms", json_object_new_int64(timeout * 1000));
        /* The agent kills at the timeout; give it room to say so. */
        forward_to_agent(vm, req, r, (uint64_t) (timeout + 15) * 1000000ULL, reply_agent_result);
out:
        json_object_put(body);
}

static void reply_file_data(HttpRequest *req, json_object *response) {
        _cleanup_free_ unsigned char *data = NULL;
        json_object *v;
        size_t size = 0;

        /* Never hand out a silently cut file. */
        if (json_object_object_get_ex(response, "truncated", &v) && json_object_get_boolean(v)) {
                json_object *sz = NULL;

                (void) json_object_object_get_ex(response, "size", &sz);
                http_request_reply_error(req, API_ERROR_PAYLOAD_TOO_LARGE, NULL,
                                         "the file is %" PRId64 " bytes; the files API carries at most %u "
                                         "(copy bigger files with scp over zvm ssh)",
                                         json_object_get_int64(sz), FILE_MAX);
                return;
        }
        if (!json_object_object_get_ex(response, "data", &v) ||
            base64_decode(json_object_get_string(v), &data, &size) < 0) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "the agent sent malformed file data");
                return;
        }
        http_request_reply_text(req, 200, "application/octet-stream", (const char *) data, size);
}

static bool file_path_ok(HttpRequest *req, const char **ret) {
        const char *path = http_request_query(req, "path");

        if (isempty(path) || path[0] != '/') {
                http_request_reply_error(req, API_ERROR_INVALID_VALUE, "path", "path: an absolute path in the guest is required");
                return false;
        }
        *ret = path;
        return true;
}

void route_vm_file_get(void *ctx, HttpRequest *req, char **params) {
        Vm *vm = rest_lookup_vm(((Rest *) ctx)->manager, req, params[0]);
        const char *path;
        json_object *r;

        if (!vm || !file_path_ok(req, &path))
                return;
        r = json_object_new_object();
        json_object_object_add(r, "op", json_object_new_string("file-read"));
        json_object_object_add(r, "path", json_object_new_string(path));
        json_object_object_add(r, "max_bytes", json_object_new_int64(FILE_MAX));
        forward_to_agent(vm, req, r, 60ULL * 1000000ULL, reply_file_data);
}

void route_vm_file_put(void *ctx, HttpRequest *req, char **params) {
        Vm *vm = rest_lookup_vm(((Rest *) ctx)->manager, req, params[0]);
        const char *path, *mode_s = http_request_query(req, "mode"), *body;
        _cleanup_free_ char *b64 = NULL;
        unsigned long mode = 0644;
        size_t size = 0;
        json_object *r;
        char *end;

        if (!vm || !file_path_ok(req, &path))
                return;
        if (mode_s) {
                errno = 0;
                mode = strtoul(mode_s, &end, 8);
                if (errno || *end || end == mode_s || mode > 07777) {
                        http_request_reply_error(req, API_ERROR_INVALID_VALUE, "mode", "mode: must be octal, e.g. 0644");
                        return;
                }
        }
        body = http_request_body(req, &size);
        b64 = base64_encode(body, size);
        if (!b64) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return;
        }
        r = json_object_new_object();
        json_object_object_add(r, "op", json_object_new_string("file-write"));
        json_object_object_add(r, "path", json_object_new_string(path));
        json_object_object_add(r, "data", json_object_new_string(b64));
        json_object_object_add(r, "mode", json_object_new_int((int) mode));
        forward_to_agent(vm, req, r, 60ULL * 1000000ULL, reply_agent_result);
}

/* GET /vms/{id}/agent-secret: what `zvm exec -t` needs to speak to the
 * agent itself, through the VM's vsock socket on this host (a terminal is
 * a byte stream both ways, which the request/answer calls above are not).
 * Only for callers on the unix socket (access.c: local), who can reach
 * that socket, manage tokens and exec as root in the guest anyway; never
 * over TCP. The secret lasts as long as this run of the VM. */
void route_vm_agent_secret(void *ctx, HttpRequest *req, char **params) {
        Vm *vm = rest_lookup_vm(((Rest *) ctx)->manager, req, params[0]);
        json_object *j;

        if (!vm)
                return;
        if (vm->state != VM_STATE_RUNNING || vm->agent.state == AGENT_NONE || !vm->agent.secret[0]) {
                http_request_reply_error(req, API_ERROR_INVALID_STATE, NULL, "VM %u has no running agent (%s, agent %s)",
                                         vm->vmid, vm_state_to_string(vm->state), agent_state_to_string(vm->agent.state));
                return;
        }
        j = json_object_new_object();
        if (!j || json_object_object_add(j, "secret", json_object_new_string(vm->agent.secret)) < 0 ||
            json_object_object_add(j, "port", json_object_new_int((int) AGENT_PORT)) < 0) {
                json_object_put(j);
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return;
        }
        http_request_reply_json(req, 200, j);
}
