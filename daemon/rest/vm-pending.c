/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * GET /vms/{id}/pending: the config side by side with what runs, as
 * Proxmox's `qm pending` shows it. One entry per key, in the order of the
 * config file: "value" is what the VM uses now (the running value of a key
 * that needs a restart, else the config's), "pending" the value it gets at
 * the next start, "delete" true for a key unset since the start. Only keys
 * in vm_pending_keys() carry "pending"/"delete": a key set back to the
 * value it runs with is no longer pending, and a stopped VM has none.
 */
#include <errno.h>

#include "request.h"
#include "routes.h"
#include "string-util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

static int pending_entry(json_object *a, const char *key, json_object *value, json_object *pending, bool delete) {
        json_object *e = json_object_new_object();

        if (!e)
                return -ENOMEM;
        json_object_object_add(e, "key", json_object_new_string(key));
        if (value)
                json_object_object_add(e, "value", json_object_get(value));
        if (pending)
                json_object_object_add(e, "pending", json_object_get(pending));
        if (delete)
                json_object_object_add(e, "delete", json_object_new_boolean(true));
        return json_object_array_add(a, e) < 0 ? -ENOMEM : 0;
}

static int vm_pending_to_json(Vm *vm, json_object **ret) {
        _cleanup_(json_object_putp) json_object *config = NULL, *running = NULL, *a = json_object_new_array();
        _cleanup_strv_free_ char **keys = NULL;
        int r;

        if (!a)
                return -ENOMEM;
        r = vm_pending_keys(vm, &keys);
        if (r >= 0)
                r = vm_config_to_json(vm->cf, &config);
        if (r >= 0 && vm->running_cf)
                r = vm_config_to_json(vm->running_cf, &running);
        if (r < 0)
                return r;

        json_object_object_foreach(config, key, value) {
                json_object *was = NULL;

                if (!strv_contains(keys, key))
                        r = pending_entry(a, key, value, NULL, false);
                else {
                        (void) json_object_object_get_ex(running, key, &was);
                        r = pending_entry(a, key, was, value, false);
                }
                if (r < 0)
                        return r;
        }
        if (running) {
                json_object_object_foreach(running, rkey, rvalue)
                        if (!json_object_object_get_ex(config, rkey, NULL) && strv_contains(keys, rkey)) {
                                r = pending_entry(a, rkey, rvalue, NULL, true);
                                if (r < 0)
                                        return r;
                        }
        }
        *ret = TAKE_PTR(a);
        return 0;
}

void route_vm_pending(void *ctx, HttpRequest *req, char **params) {
        Vm *vm = rest_lookup_vm(((Rest *) ctx)->manager, req, params[0]);
        json_object *j = NULL;
        int r;

        if (!vm)
                return;
        r = vm_pending_to_json(vm, &j);
        if (r < 0) {
                rest_reply_errno(req, r, NULL, NULL);
                return;
        }
        http_request_reply_json(req, 200, j);
}
