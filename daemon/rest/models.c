/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * /models: list, show, upload (PUT, the GGUF file as the body, streamed to
 * the store), generate (POST), delete (core/model-store.h does the work).
 * Adds follow the template builds' pattern: 202 with state "adding", then
 * GET /models/{name} until "ready" or "failed" (with the reason). Which VMs
 * use a model is known here, from the registry, not in the store.
 */
#include <errno.h>
#include <stdlib.h>

#include "fd-util.h"
#include "model-store.h"
#include "request.h"
#include "routes.h"
#include "string-util.h"
#include "zvm-config.h"

/* The names of the VMs whose config (pending or running) uses model. */
static int model_users(Manager *m, const char *model, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;

        for (size_t i = 0; i < m->n_vms; i++) {
                Vm *vm = m->vms[i];

                if ((vm->config && streq_ptr(vm->config->model, model)) ||
                    (vm->running && streq_ptr(vm->running->model, model)))
                        if (strv_extend(&l, vm->config ? vm->config->name : "?") < 0)
                                return -ENOMEM;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

/* Adds "vms": [names] to a model's JSON. */
static int add_users(Manager *m, json_object *o) {
        _cleanup_strv_free_ char **users = NULL;
        json_object *a;
        int r;

        r = model_users(m, json_object_get_string(json_object_object_get(o, "name")), &users);
        if (r < 0)
                return r;
        a = json_object_new_array();
        if (!a || json_object_object_add(o, "vms", a) < 0) {
                json_object_put(a);
                return -ENOMEM;
        }
        STRV_FOREACH(u, users)
                if (json_object_array_add(a, json_object_new_string(*u)) < 0)
                        return -ENOMEM;
        return 0;
}

void route_models_list(void *ctx, HttpRequest *req, char **params) {
        Rest *rest = ctx;
        json_object *a = NULL;
        int r;

        r = model_store_list_json(rest->models, &a);
        for (size_t i = 0; r >= 0 && i < json_object_array_length(a); i++)
                r = add_users(rest->manager, json_object_array_get_idx(a, i));
        if (r < 0) {
                json_object_put(a);
                return rest_reply_errno(req, r, NULL, NULL);
        }
        rest_reply_json(req, 200, a);
}

void route_model_get(void *ctx, HttpRequest *req, char **params) {
        Rest *rest = ctx;
        json_object *j = NULL;
        int r;

        r = model_store_get_json(rest->models, params[0], &j);
        if (r == -ENOENT)
                return (void) http_request_reply_error(req, API_ERROR_NOT_FOUND, NULL, "no model \"%.64s\"",
                                                       params[0]);
        if (r >= 0)
                r = add_users(rest->manager, j);
        if (r < 0) {
                json_object_put(j);
                return rest_reply_errno(req, r, NULL, NULL);
        }
        rest_reply_json(req, 200, j);
}

static void reply_add(HttpRequest *req, int r, json_object *j, const char *err) {
        if (r < 0)
                return (void) http_request_reply_error(req, rest_error_from_job_errno(r), r == -EEXIST || r == -EBUSY ? "name" : NULL,
                                                       "%s", err ? err : errno_str(r));
        rest_reply_json(req, 202, j);
}

static bool reply_bad_name(HttpRequest *req, const char *name) {
        if (model_name_is_valid(name))
                return false;
        http_request_reply_error(req, API_ERROR_INVALID_VALUE, "name",
                                 "name: must match [A-Za-z0-9][A-Za-z0-9._-]{0,62} without \"..\"");
        return true;
}

/* PUT /models/{name}: the body went to an unnamed file in the store while
 * it arrived (rest_models_body_sink()). */
void route_model_upload(void *ctx, HttpRequest *req, char **params) {
        Rest *rest = ctx;
        _cleanup_free_ char *err = NULL;
        json_object *j = NULL;
        uint64_t size = 0;
        int fd, r;

        fd = http_request_take_body_fd(req, &size);
        if (reply_bad_name(req, params[0])) {
                safe_close(fd);
                return;
        }
        if (fd < 0 || size == 0) {
                safe_close(fd);
                return (void) http_request_reply_error(req, API_ERROR_BAD_REQUEST, NULL,
                                                       "the body must be the GGUF file (with a Content-Length)");
        }
        r = model_store_add_fd(rest->models, params[0], fd, &j, &err);
        reply_add(req, r, j, err);
}

/* POST /models {name, shape, quant?}: a generated random-weight model. */
void route_models_generate(void *ctx, HttpRequest *req, char **params) {
        Rest *rest = ctx;
        json_object *body = rest_parse_body_object(req), *j = NULL;
        _cleanup_free_ char *err = NULL;
        ModelGenerateRequest rq;
        const char *key = NULL;
        int r;

        if (!body)
                return;
        r = model_generate_request_parse(body, &rq, &key, &err);
        if (r < 0) {
                bool known = streq(key, "name") || streq(key, "shape") || streq(key, "quant");

                http_request_reply_error(req, known ? API_ERROR_INVALID_VALUE : API_ERROR_UNKNOWN_KEY, key, "%s",
                                         strempty(err));
        } else {
                r = model_store_generate(rest->models, rq.name, rq.shape, rq.quant, &j, &err);
                reply_add(req, r, j, err);
        }
        json_object_put(body);
}

void route_model_delete(void *ctx, HttpRequest *req, char **params) {
        Rest *rest = ctx;
        _cleanup_strv_free_ char **users = NULL;
        _cleanup_free_ char *err = NULL, *list = NULL;
        json_object *j = NULL;
        int r;

        r = model_users(rest->manager, params[0], &users);
        if (r < 0)
                return rest_reply_errno(req, r, NULL, NULL);
        if (users) {
                list = strv_join(users, ", ");
                return (void) http_request_reply_error(req, API_ERROR_CONFLICT, NULL,
                                                       "model \"%s\" is used by %s: %s (change or remove their "
                                                       "\"model\" first)",
                                                       params[0], strv_length(users) > 1 ? "VMs" : "VM", strempty(list));
        }
        r = model_store_remove(rest->models, params[0], &j, &err);
        if (r < 0)
                return (void) http_request_reply_error(req, r == -ENOENT ? API_ERROR_NOT_FOUND : API_ERROR_INTERNAL,
                                                       NULL, "%s", err ? err : errno_str(r));
        rest_reply_json(req, 200, j ?: json_object_new_object());
}

bool rest_models_check_body(Rest *rest, HttpRequest *req, json_object *body) {
        json_object *v;
        const char *name;

        /* Not a name at all: the config schema says why (vm-config.c). */
        if (!json_object_object_get_ex(body, "model", &v) || !json_object_is_type(v, json_type_string) ||
            !model_name_is_valid(name = json_object_get_string(v)) || model_store_has(rest->models, name))
                return true;
        http_request_reply_error(req, API_ERROR_INVALID_VALUE, "model",
                                 "model: \"%s\" is not in the model store (see zvm model list; add it with zvm "
                                 "model add or zvm model generate)", name);
        return false;
}

/* Streams PUT /models/{name} bodies into the store; every other body is
 * buffered as usual. The name is checked by the route. */
int rest_models_body_sink(HttpRequest *req, uint64_t length, int *ret_fd, uint64_t *ret_max, const char **ret_why,
                          void *userdata) {
        Rest *rest = userdata;
        const char *name = startswith(http_request_path(req), ZVM_API_PREFIX "/models/");
        int r;

        /* Not a model name: buffered as usual, and the route refuses it. */
        if (!streq_ptr(http_request_method(req), "PUT") || !model_name_is_valid(name))
                return 0;
        /* Refused before the client sends gigabytes for nothing. */
        if (!model_store_can_add(rest->models, name)) {
                *ret_why = "A model of this name exists or is being added.";
                return -EBUSY;
        }
        r = model_store_upload_open(rest->models, length, ret_fd, ret_why);
        if (r < 0)
                return r;
        *ret_max = length;
        return 1;
}
