/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The OpenAI-compatible routes: /v1/models, /v1/chat/completions and
 * /v1/completions, routed by the request's `model` to the ready VMs that
 * serve it (least requests in flight first, then fewest served), a bounded
 * queue per model while they are all busy, and the per-VM pass-through
 * /api/v1/vms/{id}/v1/…. Errors have OpenAI's shape.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "json-util.h"
#include "log.h"
#include "openai-internal.h"
#include "openai.h"
#include "request.h"
#include "routes.h"
#include "string-util.h"
#include "time-util.h"

struct OpenAiPending {
        OpenAi *o;
        OpenAiPending *next;
        HttpRequest *req;
        char *model;
        const char *path;               /* static */
        bool stream;
        sd_event_source *timer;
};

/* JSON of a request body, as deep and as large as a chat may be; the body
 * itself is capped by the HTTP server. */
#define OPENAI_BODY_DEPTH_MAX 64U
#define OPENAI_BODY_VALUES_MAX (1U << 20)

void openai_reply_error(HttpRequest *req, unsigned status, const char *type, const char *code, unsigned retry_after,
                        const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        json_object *o, *e;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        o = json_object_new_object();
        e = json_object_new_object();
        if (!o || !e || !msg) {
                json_object_put(o);
                json_object_put(e);
                (void) http_request_reply_text(req, 500, NULL, "out of memory", 13);
                return;
        }
        json_object_object_add(e, "message", json_object_new_string(msg));
        json_object_object_add(e, "type", json_object_new_string(type));
        json_object_object_add(e, "param", NULL);
        json_object_object_add(e, "code", json_object_new_string(code));
        json_object_object_add(o, "error", e);
        if (retry_after > 0) {
                char v[16];

                snprintf(v, sizeof(v), "%u", retry_after);
                (void) http_request_set_reply_header(req, "Retry-After", v);
        }
        (void) http_request_reply_json(req, status, o);
}

static bool vm_has_model(Vm *vm, const char *model) {
        const char *running = inference_vm_model_of(vm);

        return streq_ptr(vm->config->model, model) || streq_ptr(running, model);
}

/* 1 and *ret: a ready VM with a free slot; 0: ready VMs, all busy;
 * -EAGAIN: VMs have the model, none is ready; -ENOENT: no VM has it. */
static int openai_pick(OpenAi *o, const char *model, InferenceVm **ret) {
        Manager *m = o->rest->manager;
        InferenceVm *best = NULL;
        bool known = false, ready = false;

        for (InferenceVm *v = inference_next(o->rest->inference, NULL); v; v = inference_next(o->rest->inference, v)) {
                if (!streq(inference_vm_model(v), model))
                        continue;
                known = true;
                if (inference_vm_state(v) != INFERENCE_READY)
                        continue;
                ready = true;
                if (inference_vm_in_flight(v) >= inference_vm_slots(v))
                        continue;
                if (!best || inference_vm_in_flight(v) < inference_vm_in_flight(best) ||
                    (inference_vm_in_flight(v) == inference_vm_in_flight(best) &&
                     inference_vm_requests(v) < inference_vm_requests(best)))
                        best = v;
        }
        if (best) {
                *ret = best;
                return 1;
        }
        if (ready)
                return 0;
        for (size_t i = 0; !known && i < m->n_vms; i++)
                known = vm_has_model(m->vms[i], model);
        return known ? -EAGAIN : -ENOENT;
}

static void reply_unavailable(HttpRequest *req, const char *model) {
        openai_reply_error(req, 503, "server_error", "model_unavailable", OPENAI_RETRY_AFTER_SEC,
                           "no VM serving model '%s' is ready (start one, or wait for it to load)", model);
}

static void reply_unknown(HttpRequest *req, const char *model) {
        openai_reply_error(req, 404, "invalid_request_error", "model_not_found",
                           0, "The model '%s' does not exist: no VM has it (model: in a VM's config)", model);
}

/* ---- the queue ---- */

static unsigned queued_for(OpenAi *o, const char *model) {
        unsigned n = 0;

        for (OpenAiPending *p = o->queue; p; p = p->next)
                n += streq(p->model, model);
        return n;
}

static void pending_unlink_free(OpenAiPending *p) {
        OpenAi *o = p->o;

        for (OpenAiPending **q = &o->queue; *q; q = &(*q)->next)
                if (*q == p) {
                        *q = p->next;
                        break;
                }
        o->n_queued--;
        sd_event_source_disable_unref(p->timer);
        free(p->model);
        free(p);
}

static void on_pending_closed(HttpRequest *req, void *userdata) {
        OpenAiPending *p = userdata;

        (void) http_request_reply_text(req, 500, NULL, "", 0);  /* a no-op: the client is gone */
        pending_unlink_free(p);
}

static int on_pending_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        OpenAiPending *p = userdata;

        openai_reply_error(p->req, 503, "server_error", "queue_timeout", OPENAI_RETRY_AFTER_SEC,
                           "no VM serving model '%s' had room within %llu s", p->model,
                           (unsigned long long) (OPENAI_QUEUE_WAIT_USEC / 1000000));
        pending_unlink_free(p);
        return 0;
}

static void openai_enqueue(OpenAi *o, HttpRequest *req, const char *model, const char *path, bool stream) {
        OpenAiPending *p, **tail;

        if (queued_for(o, model) >= OPENAI_QUEUE_MAX) {
                openai_reply_error(req, 429, "rate_limit_exceeded", "queue_full", OPENAI_RETRY_AFTER_SEC,
                                   "every VM serving model '%s' is busy and %u requests wait already", model,
                                   OPENAI_QUEUE_MAX);
                return;
        }
        p = calloc(1, sizeof(*p));
        if (!p || !(p->model = strdup(model)) ||
            sd_event_add_time_relative(o->rest->manager->event, &p->timer, CLOCK_MONOTONIC, OPENAI_QUEUE_WAIT_USEC,
                                       100000, on_pending_timeout, p) < 0) {
                if (p)
                        free(p->model);
                free(p);
                openai_reply_error(req, 500, "server_error", "internal", 0, "out of memory");
                return;
        }
        p->o = o;
        p->req = req;
        p->path = path;
        p->stream = stream;
        for (tail = &o->queue; *tail; tail = &(*tail)->next)
                ;
        *tail = p;
        o->n_queued++;
        http_request_set_closed_handler(req, on_pending_closed, p);
}

/* Routes a request by model: a free VM now, the queue, or an error. */
static void openai_dispatch(OpenAi *o, HttpRequest *req, const char *model, const char *path, bool stream) {
        InferenceVm *v = NULL;
        int r;

        r = openai_pick(o, model, &v);
        if (r == -ENOENT)
                reply_unknown(req, model);
        else if (r == -EAGAIN)
                reply_unavailable(req, model);
        else if (r == 0 || o->n_calls >= OPENAI_CALLS_MAX)
                openai_enqueue(o, req, model, path, stream);
        else
                openai_proxy(o, v, req, path, stream);
}

/* A call ended or a VM changed: the oldest waiting requests that now have
 * a VM go. Re-entered from a call that fails at once: the outer loop goes on. */
void openai_slot_free(OpenAi *o) {
        bool again = true;

        if (o->kicking)
                return;
        o->kicking = true;
        while (again) {
                again = false;
                for (OpenAiPending *p = o->queue; p && o->n_calls < OPENAI_CALLS_MAX; p = p->next) {
                        InferenceVm *v = NULL;
                        HttpRequest *req = p->req;
                        const char *path = p->path;
                        bool stream = p->stream;
                        int r = openai_pick(o, p->model, &v);

                        if (r == 0 || r == -EAGAIN)
                                continue;       /* busy, or restarting: wait on (bounded) */
                        http_request_set_closed_handler(req, NULL, NULL);
                        if (r == -ENOENT)
                                reply_unknown(req, p->model);
                        pending_unlink_free(p);
                        if (r > 0)
                                openai_proxy(o, v, req, path, stream);
                        again = true;
                        break;
                }
        }
        o->kicking = false;
}

unsigned openai_calls(const OpenAi *o) {
        return o ? o->n_calls : 0;
}

/* ---- routes ---- */

/* The body as a JSON object with its model and stream flag, or NULL after
 * replying 400. */
static json_object *openai_parse(HttpRequest *req, bool need_model, const char **ret_model, bool *ret_stream) {
        json_object *o = NULL, *x;
        size_t size = 0;
        const char *body = http_request_body(req, &size);

        if (json_parse_bounded(body, size, OPENAI_BODY_DEPTH_MAX, OPENAI_BODY_VALUES_MAX, &o) < 0 ||
            !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                openai_reply_error(req, 400, "invalid_request_error", "invalid_json",
                                   0, "the request body is not a JSON object");
                return NULL;
        }
        *ret_model = json_object_object_get_ex(o, "model", &x) && json_object_is_type(x, json_type_string)
                             ? json_object_get_string(x)
                             : NULL;
        if (need_model && isempty(*ret_model)) {
                json_object_put(o);
                openai_reply_error(req, 400, "invalid_request_error", "model_required", 0,
                                   "'model' is required: one of GET /v1/models");
                return NULL;
        }
        *ret_stream = json_object_object_get_ex(o, "stream", &x) && json_object_get_boolean(x);
        return o;
}

static void openai_route(Rest *rest, HttpRequest *req, const char *path) {
        const char *model = NULL;
        bool stream = false;
        json_object *o = openai_parse(req, true, &model, &stream);

        if (!o)
                return;
        openai_dispatch(rest->openai, req, model, path, stream);
        json_object_put(o);
}

void route_openai_chat(void *ctx, HttpRequest *req, char **params) {
        openai_route(ctx, req, "/v1/chat/completions");
}

void route_openai_completions(void *ctx, HttpRequest *req, char **params) {
        openai_route(ctx, req, "/v1/completions");
}

static void models_add(json_object *data, Rest *rest, const char *model) {
        json_object *e, *z;
        unsigned vms = 0, ready = 0;
        uint64_t totals[INFERENCE_TOTALS] = {};
        Manager *m = rest->manager;

        for (size_t i = 0; i < json_object_array_length(data); i++)
                if (streq(json_object_get_string(json_object_object_get(json_object_array_get_idx(data, i), "id")),
                          model))
                        return;
        for (size_t i = 0; i < m->n_vms; i++)
                if (vm_has_model(m->vms[i], model)) {
                        InferenceVm *v = inference_find(rest->inference, m->vms[i]);

                        vms++;
                        ready += v && inference_vm_state(v) == INFERENCE_READY;
                }
        /* The model's totals: what its VMs served since they became ready. */
        for (InferenceVm *v = inference_next(rest->inference, NULL); v; v = inference_next(rest->inference, v))
                if (streq(inference_vm_model(v), model))
                        inference_vm_add_totals(v, totals);
        e = json_object_new_object();
        z = json_object_new_object();
        if (!e || !z) {
                json_object_put(e);
                json_object_put(z);
                return;
        }
        json_object_object_add(e, "id", json_object_new_string(model));
        json_object_object_add(e, "object", json_object_new_string("model"));
        json_object_object_add(e, "created", json_object_new_int64(0));
        json_object_object_add(e, "owned_by", json_object_new_string("zvm"));
        json_object_object_add(z, "vms", json_object_new_int64(vms));
        json_object_object_add(z, "ready", json_object_new_int64(ready));
        json_object_object_add(z, "queued", json_object_new_int64(queued_for(rest->openai, model)));
        json_object_object_add(z, "requests", json_object_new_int64((int64_t) totals[0]));
        json_object_object_add(z, "errors", json_object_new_int64((int64_t) totals[1]));
        json_object_object_add(z, "prompt_tokens", json_object_new_int64((int64_t) totals[2]));
        json_object_object_add(z, "generated_tokens", json_object_new_int64((int64_t) totals[3]));
        json_object_object_add(e, "zvm", z);
        json_object_array_add(data, e);
}

/* Every model some VM's config serves (running or not), with how many of
 * those VMs are ready under "zvm". */
void route_openai_models(void *ctx, HttpRequest *req, char **params) {
        Rest *rest = ctx;
        Manager *m = rest->manager;
        json_object *o = json_object_new_object(), *data = json_object_new_array();

        if (!o || !data) {
                json_object_put(o);
                json_object_put(data);
                openai_reply_error(req, 500, "server_error", "internal", 0, "out of memory");
                return;
        }
        for (size_t i = 0; i < m->n_vms; i++) {
                const char *running = inference_vm_model_of(m->vms[i]);

                if (!isempty(m->vms[i]->config->model))
                        models_add(data, rest, m->vms[i]->config->model);
                if (running)
                        models_add(data, rest, running);
        }
        json_object_object_add(o, "object", json_object_new_string("list"));
        json_object_object_add(o, "data", data);
        http_request_reply_json(req, 200, o);
}

/* /api/v1/vms/{id}/v1/…: that VM's server, whatever the model says. */
static void vm_passthrough(Rest *rest, HttpRequest *req, const char *id, const char *path) {
        Vm *vm = rest_lookup_vm(rest->manager, req, id);
        InferenceVm *v;
        const char *model = NULL;
        bool stream = false;

        if (!vm)
                return;
        v = inference_find(rest->inference, vm);
        if (!v || inference_vm_state(v) != INFERENCE_READY) {
                openai_reply_error(req, 503, "server_error", "vm_unavailable", OPENAI_RETRY_AFTER_SEC,
                                   "VM %s is not serving (%s)", vm->config->name,
                                   v ? inference_state_to_string(inference_vm_state(v))
                                     : inference_vm_model_of(vm) ? "not started" : "no model: in its config");
                return;
        }
        if (rest->openai->n_calls >= OPENAI_CALLS_MAX) {
                openai_reply_error(req, 429, "rate_limit_exceeded", "too_many_requests", OPENAI_RETRY_AFTER_SEC,
                                   "%u requests are being served already", OPENAI_CALLS_MAX);
                return;
        }
        if (streq(http_request_method(req), "POST")) {
                json_object *o = openai_parse(req, false, &model, &stream);

                if (!o)
                        return;
                json_object_put(o);
        }
        openai_proxy(rest->openai, v, req, path, stream);
}

void route_vm_openai_models(void *ctx, HttpRequest *req, char **params) {
        vm_passthrough(ctx, req, params[0], "/v1/models");
}

void route_vm_openai_chat(void *ctx, HttpRequest *req, char **params) {
        vm_passthrough(ctx, req, params[0], "/v1/chat/completions");
}

void route_vm_openai_completions(void *ctx, HttpRequest *req, char **params) {
        vm_passthrough(ctx, req, params[0], "/v1/completions");
}

/* ---- status and events ---- */

void openai_vm_add_json(Rest *rest, Vm *vm, json_object *j) {
        InferenceVm *v = inference_find(rest->inference, vm);
        json_object *inf = NULL;

        if (v && inference_vm_to_json(v, &inf) < 0)
                return;
        json_object_object_add(j, "inference", inf);
}

void openai_on_inference(Inference *inf, Vm *vm, void *userdata) {
        Rest *rest = userdata;
        _cleanup_free_ char *msg = NULL;
        json_object *o;

        if (rest->openai)
                openai_slot_free(rest->openai);
        if (!vm || rest->n_streams == 0)
                return;
        o = json_object_new_object();
        if (!o)
                return;
        json_object_object_add(o, "vmid", json_object_new_int64(vm->vmid));
        json_object_object_add(o, "name", json_object_new_string(vm->config->name));
        openai_vm_add_json(rest, vm, o);
        json_object_object_add(o, "time", json_object_new_double((double) now_usec(CLOCK_REALTIME) / 1e6));
        if (asprintf(&msg, "event: inference\ndata: %s\n\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) >=
            0)
                rest_events_broadcast(rest, msg);
        json_object_put(o);
}

int openai_new(Rest *rest, OpenAi **ret) {
        OpenAi *o = calloc(1, sizeof(*o));
        int r;

        if (!o)
                return -ENOMEM;
        o->rest = rest;
        r = http_client_new(rest->manager->event, &o->client);
        if (r < 0) {
                free(o);
                return r;
        }
        *ret = o;
        return 0;
}

OpenAi *openai_free(OpenAi *o) {
        if (!o)
                return NULL;
        o->kicking = true;              /* nothing starts any more */
        while (o->queue) {
                http_request_set_closed_handler(o->queue->req, NULL, NULL);
                (void) http_request_reply_text(o->queue->req, 503, NULL, "", 0);
                pending_unlink_free(o->queue);
        }
        openai_proxy_free_all(o);
        http_client_free(o->client);
        return mfree(o);
}
