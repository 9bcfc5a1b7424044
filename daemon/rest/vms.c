/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* /vms and /vms/{id}: list, create, get, change, delete. */
#include <errno.h>

#include "access.h"
#include "api.h"
#include "log.h"
#include "operation.h"
#include "openai.h"
#include "request.h"
#include "routes.h"
#include "string-util.h"

void route_vms_list(void *ctx, HttpRequest *req, char **params) {
        Manager *m = ((Rest *) ctx)->manager;
        json_object *a = json_object_new_array();

        for (size_t i = 0; a && i < m->n_vms; i++) {
                json_object *j = NULL;

                if (vm_to_json(m->vms[i], true, &j) >= 0)
                        json_object_array_add(a, j);
        }
        if (!a) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return;
        }
        http_request_reply_json(req, 200, a);
}

/* The optional "vmid" of a create: an integer or a decimal string in
 * range; 0 with nothing given. false after replying 400. */
static bool parse_vmid(HttpRequest *req, json_object *body, uint32_t *ret) {
        json_object *v;
        uint32_t vmid = 0;

        if (!json_object_object_get_ex(body, "vmid", &v)) {
                *ret = 0;
                return true;
        }
        if (json_object_is_type(v, json_type_int)) {
                int64_t n = json_object_get_int64(v);

                if (n >= ZVM_VMID_MIN && n <= ZVM_VMID_MAX)
                        vmid = (uint32_t) n;
        } else if (json_object_is_type(v, json_type_string) && safe_atou32(json_object_get_string(v), &vmid) >= 0 &&
                   (vmid < ZVM_VMID_MIN || vmid > ZVM_VMID_MAX))
                vmid = 0;
        if (vmid == 0) {
                http_request_reply_error(req, API_ERROR_INVALID_VALUE, "vmid",
                                         "vmid: must be an integer between %u and %u", ZVM_VMID_MIN, ZVM_VMID_MAX);
                return false;
        }
        json_object_object_del(body, "vmid");
        *ret = vmid;
        return true;
}

void route_vms_create(void *ctx, HttpRequest *req, char **params) {
        Manager *m = ((Rest *) ctx)->manager;
        _cleanup_free_ char *err = NULL, *key = NULL;
        json_object *body, *j = NULL;
        uint32_t vmid;
        Vm *vm = NULL;
        int r;

        body = rest_parse_body_object(req);
        if (!body)
                return;
        if (!parse_vmid(req, body, &vmid))
                goto out;
        if (!rest_models_check_body(ctx, req, body))    /* models: "model" names a stored model */
                goto out;
        if (vmid == 0 && manager_free_vmid(m, &vmid) < 0) {
                http_request_reply_error(req, API_ERROR_CONFLICT, "vmid", "no free VMID");
                goto out;
        }
        r = manager_create_vm(m, vmid, body, rest_request_is_root(req), &vm, &err, &key);
        if (r < 0) {
                rest_reply_errno(req, r, key, err);
                goto out;
        }
        if (vm_to_json(vm, true, &j) < 0 || http_request_try_reply_json(req, 201, TAKE_PTR(j)) == -ENOMEM) {
                /* No memory for the answer: undo the create, so that the
                 * 500 is true and a client's retry does not find the name
                 * taken (zvmd-memory_limit). */
                (void) manager_delete_vm(m, vm);
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
        }
out:
        json_object_put(body);
}

void route_vm_get(void *ctx, HttpRequest *req, char **params) {
        Vm *vm = rest_lookup_vm(((Rest *) ctx)->manager, req, params[0]);
        json_object *j = NULL;

        if (!vm)
                return;
        if (vm_to_json(vm, true, &j) < 0) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return;
        }
        openai_vm_add_json(ctx, vm, json_object_object_get(j, "status"));      /* serve */
        http_request_reply_json(req, 200, j);
}

void route_vm_patch(void *ctx, HttpRequest *req, char **params) {
        Vm *vm = rest_lookup_vm(((Rest *) ctx)->manager, req, params[0]);
        _cleanup_free_ char *err = NULL, *key = NULL;
        json_object *body, *j = NULL;
        int r;

        if (!vm)
                return;
        body = rest_parse_body_object(req);
        if (!body)
                return;
        if (!rest_models_check_body(ctx, req, body)) {  /* models: "model" names a stored model */
                json_object_put(body);
                return;
        }
        r = vm_update_config(vm, body, rest_request_is_root(req), &err, &key);
        json_object_put(body);
        if (r < 0) {
                rest_reply_errno(req, r, key, err);
                return;
        }
        /* The config is saved: a 500 for lack of memory must not say it
         * was refused. */
        if (vm_to_json(vm, true, &j) < 0 || http_request_try_reply_json(req, 200, TAKE_PTR(j)) == -ENOMEM)
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL,
                                         "the change is applied, but zvmd has no memory left to show the VM");
}

/* DELETE ?force of a running VM: it was killed, and is deleted once down. */
static void on_force_delete_down(Vm *vm, int state, void *userdata) {
        Manager *m = ((Operation *) userdata)->manager;    /* read before the op is spent */
        HttpRequest *req = operation_wait_done(userdata);
        json_object *j = NULL;
        int r;

        if (state < 0) {
                http_request_reply_error(req, API_ERROR_UNAVAILABLE, NULL, "VM %u went away", vm->vmid);
                return;
        }
        (void) vm_to_json(vm, true, &j);
        r = manager_delete_vm(m, vm);
        if (r < 0)
                log_warning_errno(r, "VM %u: cannot remove its files after a forced delete: %m", vm->vmid);
        rest_reply_json(req, 200, j);
}

static void vm_delete_force(Manager *m, Vm *vm, HttpRequest *req) {
        Operation *op = operation_new(req, vm);
        int r;

        if (!op) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return;
        }
        op->manager = m;
        r = vm_wait(vm, VM_WAIT_DOWN, on_force_delete_down, op, &op->wait);
        if (r >= 0)
                r = vm_kill(vm);
        /* operation_finish() cancels the wait: a failed kill leaves
         * nothing registered that could later answer a freed request. */
        if (r < 0)
                http_request_reply_error(operation_finish(op), API_ERROR_INTERNAL, NULL, "cannot kill VM %u: %s",
                                         vm->vmid, errno_str(r));
}

void route_vm_delete(void *ctx, HttpRequest *req, char **params) {
        Manager *m = ((Rest *) ctx)->manager;
        Vm *vm = rest_lookup_vm(m, req, params[0]);
        json_object *j = NULL;
        int r;

        if (!vm)
                return;
        if (vm_is_up(vm)) {
                if (!rest_query_bool(req, "force"))
                        http_request_reply_error(req, API_ERROR_INVALID_STATE, NULL,
                                                 "VM %u is %s: stop it first, or delete with force", vm->vmid,
                                                 vm_state_to_string(vm->state));
                else
                        vm_delete_force(m, vm, req);
                return;
        }
        (void) vm_to_json(vm, false, &j);
        r = manager_delete_vm(m, vm);
        if (r < 0) {
                json_object_put(j);
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "cannot delete VM %u: %s", vm->vmid,
                                         errno_str(r));
                return;
        }
        rest_reply_json(req, 200, j);
}
