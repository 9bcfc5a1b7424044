/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Per-VM serving state: llm-start after READY, `info` polled with back-off,
 * requests in flight and what they cost. See inference.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "inference.h"
#include "log.h"
#include "loop.h"
#include "string-util.h"
#include "time-util.h"
#include "vm.h"
#include "vsock.h"

struct Inference {
        sd_event *event;
        bool kernel_vsock;
        InferenceVm *vms;
        inference_event_fn cb;
        void *userdata;
};

struct InferenceVm {
        unsigned n_ref;
        Inference *inf;                 /* NULL once GONE */
        Vm *vm;                         /* NULL once GONE */
        InferenceVm *next;
        uint32_t vmid;
        char *model;
        unsigned slots;
        InferenceState state;
        AgentCall *call;
        sd_event_source *poll;
        uint64_t poll_delay;
        uint64_t since_usec;            /* CLOCK_MONOTONIC: serving since */
        uint64_t ready_usec;            /* since → first ready */
        int64_t agent_restarts;         /* llm.restarts, -1 unknown */
        int64_t pid;                    /* llm.pid in the guest, 0 unknown */
        AgentState agent_seen;          /* the VM's agent state when we last looked */
        char *error;                    /* why it failed or left the rotation last */
        unsigned in_flight;
        uint64_t requests, errors, prompt_tokens, generated_tokens;
        uint64_t latency_total_usec, latency_max_usec, latency_last_usec;
};

static const char *const inference_state_table[_INFERENCE_STATE_MAX] = {
        [INFERENCE_STARTING] = "starting", [INFERENCE_LOADING] = "loading", [INFERENCE_READY] = "ready",
        [INFERENCE_FAILED] = "failed",     [INFERENCE_STOPPED] = "stopped", [INFERENCE_GONE] = "gone",
};

const char *inference_state_to_string(InferenceState s) {
        return s >= 0 && s < _INFERENCE_STATE_MAX ? inference_state_table[s] : NULL;
}

const char *inference_vm_model_of(const Vm *vm) {
        const VmConfig *c = vm_running_config(vm);

        return c && !isempty(c->model) ? c->model : NULL;
}

static void ivm_emit(InferenceVm *v) {
        if (v->inf && v->inf->cb)
                v->inf->cb(v->inf, v->vm, v->inf->userdata);
}

static void ivm_set_state(InferenceVm *v, InferenceState s) {
        if (v->state == s)
                return;
        log_info("VM %u: inference %s → %s", v->vmid, inference_state_to_string(v->state),
                 inference_state_to_string(s));
        if (s == INFERENCE_READY && v->ready_usec == 0)
                v->ready_usec = now_usec(CLOCK_MONOTONIC) - v->since_usec;
        v->state = s;
        ivm_emit(v);
}

/* The reason kept, capped (a guest's log tail is at most 4 KiB already). */
#define INFERENCE_ERROR_MAX 4096U

static void ivm_set_error(InferenceVm *v, const char *why) {
        size_t n = why ? strnlen(why, INFERENCE_ERROR_MAX) : 0;
        char *e = why ? malloc(n + 1) : NULL;

        if (e) {
                memcpy(e, why, n);
                e[n] = 0;
        }

        free(v->error);
        v->error = e;
}

/* ---- references ---- */

InferenceVm *inference_vm_ref(InferenceVm *v) {
        if (v)
                v->n_ref++;
        return v;
}

InferenceVm *inference_vm_unref(InferenceVm *v) {
        if (!v || --v->n_ref > 0)
                return NULL;
        free(v->model);
        free(v->error);
        return mfree(v);
}

/* The VM or its agent went down (or zvmd exits): no calls, no timer, out
 * of the list; holders of a reference see GONE. */
static void ivm_detach(InferenceVm *v) {
        Inference *inf = v->inf;

        if (!inf)
                return;
        agent_call_cancel(v->call);
        v->call = NULL;
        v->poll = sd_event_source_disable_unref(v->poll);
        for (InferenceVm **p = &inf->vms; *p; p = &(*p)->next)
                if (*p == v) {
                        *p = v->next;
                        break;
                }
        v->state = INFERENCE_GONE;
        v->inf = NULL;
        v->vm = NULL;
        inference_vm_unref(v);          /* the list's */
}

/* ---- the registry ---- */

int inference_new(sd_event *e, bool kernel_vsock, inference_event_fn cb, void *userdata, Inference **ret) {
        Inference *inf = calloc(1, sizeof(*inf));

        if (!inf)
                return -ENOMEM;
        inf->event = sd_event_ref(e);
        inf->kernel_vsock = kernel_vsock;
        inf->cb = cb;
        inf->userdata = userdata;
        *ret = inf;
        return 0;
}

Inference *inference_free(Inference *inf) {
        if (!inf)
                return NULL;
        while (inf->vms)
                ivm_detach(inf->vms);
        sd_event_unref(inf->event);
        return mfree(inf);
}

InferenceVm *inference_find(Inference *inf, const Vm *vm) {
        for (InferenceVm *v = inf ? inf->vms : NULL; v; v = v->next)
                if (v->vm == vm)
                        return v;
        return NULL;
}

InferenceVm *inference_next(Inference *inf, InferenceVm *prev) {
        return prev ? prev->next : inf ? inf->vms : NULL;
}

/* ---- following the agent ---- */

static void ivm_poll_later(InferenceVm *v, uint64_t delay);

/* The agent's llm status → our state. */
static void ivm_take_llm(InferenceVm *v, json_object *llm) {
        json_object *st = NULL, *x = NULL;
        const char *s;

        if (!llm || !json_object_object_get_ex(llm, "state", &st) || !json_object_is_type(st, json_type_string)) {
                ivm_set_error(v, "the agent reports no llm status (an agent without the llm supervisor?)");
                ivm_set_state(v, INFERENCE_FAILED);
                return;
        }
        if (json_object_object_get_ex(llm, "restarts", &x) && json_object_is_type(x, json_type_int))
                v->agent_restarts = json_object_get_int64(x);
        v->pid = json_object_object_get_ex(llm, "pid", &x) && json_object_is_type(x, json_type_int)
                         ? json_object_get_int64(x)
                         : 0;
        s = json_object_get_string(st);
        if (streq(s, "ready"))
                ivm_set_state(v, INFERENCE_READY);
        else if (streq(s, "loading") || streq(s, "stopping"))
                ivm_set_state(v, INFERENCE_LOADING);
        else if (streq(s, "failed")) {
                const char *tail = NULL;

                if (json_object_object_get_ex(llm, "log_tail", &x) && json_object_is_type(x, json_type_string))
                        tail = json_object_get_string(x);
                ivm_set_error(v, tail ? tail : "llama-server failed in the guest");
                ivm_set_state(v, INFERENCE_FAILED);
        } else
                ivm_set_state(v, INFERENCE_STOPPED);
}

/* An agent call of ours ended. False when it ended because the VM went
 * down (its calls are cancelled with ESHUTDOWN; the state event that
 * follows detaches us): then there is nothing to do. */
static bool ivm_call_ended(InferenceVm *v, const char *code) {
        v->call = NULL;
        return !streq_ptr(code, "ESHUTDOWN");
}

static void on_info(VmAgent *a, json_object *response, const char *code, const char *message, void *userdata) {
        InferenceVm *v = userdata;
        json_object *llm = NULL;

        if (!ivm_call_ended(v, code))
                return;
        if (!response) {
                ivm_set_error(v, message);
                if (v->state == INFERENCE_READY)
                        ivm_set_state(v, INFERENCE_LOADING);
                v->poll_delay = MIN(v->poll_delay * 2, (uint64_t) INFERENCE_POLL_LOADING_MAX_USEC * 4);
                ivm_poll_later(v, v->poll_delay);
                return;
        }
        (void) json_object_object_get_ex(response, "llm", &llm);
        ivm_take_llm(v, llm);
        switch (v->state) {
        case INFERENCE_READY:
                v->poll_delay = INFERENCE_POLL_FIRST_USEC;
                ivm_poll_later(v, INFERENCE_POLL_READY_USEC);
                break;
        case INFERENCE_LOADING:
        case INFERENCE_STARTING:
                ivm_poll_later(v, v->poll_delay);
                v->poll_delay = MIN(v->poll_delay * 2, (uint64_t) INFERENCE_POLL_LOADING_MAX_USEC);
                break;
        default:
                break;          /* failed or stopped: nothing more until the next READY */
        }
}

static int ivm_call(InferenceVm *v, json_object *req, agent_result_fn cb) {
        int r;

        if (v->call)
                agent_call_cancel(v->call);
        v->call = NULL;
        r = agent_call(&v->vm->agent, req, INFERENCE_CALL_TIMEOUT_USEC, cb, v, &v->call);
        if (r < 0)
                v->call = NULL;
        return r;
}

static int on_poll(sd_event_source *s, uint64_t usec, void *userdata) {
        loop_note("inference poll");
        InferenceVm *v = userdata;
        json_object *req = json_object_new_object();
        int r;

        if (!req)
                return 0;
        json_object_object_add(req, "op", json_object_new_string("info"));
        r = ivm_call(v, req, on_info);
        if (r < 0) {
                log_debug_errno(r, "VM %u: cannot ask the agent for info: %m", v->vmid);
                ivm_poll_later(v, INFERENCE_POLL_LOADING_MAX_USEC);
        }
        return 0;
}

static void ivm_poll_later(InferenceVm *v, uint64_t delay) {
        uint64_t when = now_usec(CLOCK_MONOTONIC) + delay;
        int r;

        if (!v->inf)
                return;
        if (v->poll) {
                r = sd_event_source_set_time(v->poll, when);
                if (r >= 0)
                        r = sd_event_source_set_enabled(v->poll, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time(v->inf->event, &v->poll, CLOCK_MONOTONIC, when, 10000, on_poll, v);
        if (r < 0)
                log_warning_errno(r, "VM %u: cannot schedule the llm status poll: %m", v->vmid);
}

static void on_llm_start(VmAgent *a, json_object *response, const char *code, const char *message, void *userdata) {
        InferenceVm *v = userdata;
        json_object *llm = NULL;

        if (!ivm_call_ended(v, code))
                return;
        if (!response) {
                log_warning("VM %u: llm-start refused: %s %s", v->vmid, strnull(code), strnull(message));
                ivm_set_error(v, message);
                ivm_set_state(v, INFERENCE_FAILED);
                return;
        }
        (void) json_object_object_get_ex(response, "llm", &llm);
        ivm_take_llm(v, llm);
        v->poll_delay = INFERENCE_POLL_FIRST_USEC;
        if (v->state != INFERENCE_FAILED)
                ivm_poll_later(v, v->state == INFERENCE_READY ? INFERENCE_POLL_READY_USEC : v->poll_delay);
}

static void add_uint(json_object *o, const char *key, unsigned value) {
        if (value > 0)
                json_object_object_add(o, key, json_object_new_int64(value));
}

/* llm-start with the running config's inference parameters (0: the
 * agent's default). Idempotent in the agent: sent again after a zvmd
 * restart, it changes nothing. */
static int ivm_llm_start(InferenceVm *v) {
        const VmConfig *c = vm_running_config(v->vm);
        json_object *req = json_object_new_object();

        if (!req)
                return -ENOMEM;
        json_object_object_add(req, "op", json_object_new_string("llm-start"));
        json_object_object_add(req, "model", json_object_new_string(INFERENCE_MODEL_PATH));
        /* Answers name the model as the client asked for it, not by the
         * file's path in the guest. */
        json_object_object_add(req, "alias", json_object_new_string(c->model));
        add_uint(req, "threads", c->inference.threads);
        add_uint(req, "ctx", c->inference.ctx);
        add_uint(req, "parallel", c->inference.parallel);
        add_uint(req, "batch", c->inference.batch);
        return ivm_call(v, req, on_llm_start);
}

static int ivm_new(Inference *inf, Vm *vm, const char *model, InferenceVm **ret) {
        _cleanup_(inference_vm_unrefp) InferenceVm *v = NULL;

        v = calloc(1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        v->n_ref = 1;
        v->model = strdup(model);
        if (!v->model)
                return -ENOMEM;
        v->inf = inf;
        v->vm = vm;
        v->vmid = vm->vmid;
        v->slots = MAX(vm_running_config(vm)->inference.parallel, 1U);
        v->since_usec = now_usec(CLOCK_MONOTONIC);
        v->agent_restarts = -1;
        v->agent_seen = AGENT_READY;
        v->state = INFERENCE_STARTING;
        v->next = inf->vms;
        inf->vms = v;
        *ret = TAKE_PTR(v);
        return 0;
}

void inference_on_vm(Inference *inf, Vm *vm) {
        InferenceVm *v = inference_find(inf, vm);
        const char *model = inference_vm_model_of(vm);
        AgentState prev;
        int r;

        if (!inf)
                return;
        if (vm->state != VM_STATE_RUNNING || vm->agent.state == AGENT_NONE || !model) {
                if (v) {
                        ivm_detach(v);
                        if (inf->cb)
                                inf->cb(inf, vm, inf->userdata);
                }
                return;
        }
        prev = v ? v->agent_seen : AGENT_NONE;
        if (v)
                v->agent_seen = vm->agent.state;
        /* Serving starts when the agent is READY; again only for a new agent
         * (READY after waiting: the guest rebooted, zvmd re-adopted it), and
         * then whatever we thought of it (llm-start is idempotent). An agent
         * that merely answers its health check again changes nothing: who
         * stopped llama-server in the guest meant it. */
        if (vm->agent.state != AGENT_READY || (v && prev != AGENT_WAITING))
                return;
        if (!v) {
                r = ivm_new(inf, vm, model, &v);
                if (r < 0) {
                        log_warning_errno(r, "VM %u: cannot serve its model: %m", vm->vmid);
                        return;
                }
        } else {
                /* No poll may cancel the llm-start in flight. */
                (void) sd_event_source_set_enabled(v->poll, SD_EVENT_OFF);
                ivm_set_state(v, INFERENCE_STARTING);
        }
        r = ivm_llm_start(v);
        if (r < 0) {
                log_warning_errno(r, "VM %u: cannot send llm-start: %m", vm->vmid);
                ivm_set_error(v, "cannot reach the agent");
                ivm_set_state(v, INFERENCE_FAILED);
                return;
        }
        log_info("VM %u (%s): serving model %s, llm-start sent", vm->vmid, vm->config->name, model);
        ivm_emit(v);
}

/* ---- accessors and statistics ---- */

Vm *inference_vm_vm(const InferenceVm *v) {
        return v ? v->vm : NULL;
}

uint32_t inference_vm_vmid(const InferenceVm *v) {
        return v ? v->vmid : 0;
}

const char *inference_vm_model(const InferenceVm *v) {
        return v ? v->model : NULL;
}

InferenceState inference_vm_state(const InferenceVm *v) {
        return v ? v->state : INFERENCE_GONE;
}

unsigned inference_vm_in_flight(const InferenceVm *v) {
        return v ? v->in_flight : 0;
}

uint64_t inference_vm_requests(const InferenceVm *v) {
        return v ? v->requests : 0;
}

unsigned inference_vm_slots(const InferenceVm *v) {
        return v ? v->slots : 0;
}

void inference_vm_request_begin(InferenceVm *v) {
        v->in_flight++;
        v->requests++;
}

void inference_vm_request_end(InferenceVm *v, const InferenceResult *res) {
        if (v->in_flight > 0)
                v->in_flight--;
        if (res->failed)
                v->errors++;
        v->prompt_tokens += res->prompt_tokens;
        v->generated_tokens += res->generated_tokens;
        v->latency_last_usec = res->latency_usec;
        v->latency_total_usec += res->latency_usec;
        v->latency_max_usec = MAX(v->latency_max_usec, res->latency_usec);
        ivm_emit(v);
}

void inference_vm_mark_failed(InferenceVm *v, const char *why) {
        if (!v->inf || v->state != INFERENCE_READY)
                return;
        log_notice("VM %u: taken out of the rotation: %s", v->vmid, strnull(why));
        ivm_set_error(v, why);
        ivm_set_state(v, INFERENCE_LOADING);
        v->poll_delay = INFERENCE_POLL_FIRST_USEC;
        if (!v->call)
                ivm_poll_later(v, 0);
}

void inference_vm_add_totals(const InferenceVm *v, uint64_t totals[static INFERENCE_TOTALS]) {
        totals[0] += v->requests;
        totals[1] += v->errors;
        totals[2] += v->prompt_tokens;
        totals[3] += v->generated_tokens;
}

static double ms(uint64_t usec) {
        return (double) usec / 1000.0;
}

int inference_vm_to_json(const InferenceVm *v, json_object **ret) {
        json_object *o = json_object_new_object(), *lat = json_object_new_object();

        if (!o || !lat) {
                json_object_put(o);
                json_object_put(lat);
                return -ENOMEM;
        }
        json_object_object_add(o, "model", json_object_new_string(v->model));
        json_object_object_add(o, "state", json_object_new_string(inference_state_to_string(v->state)));
        json_object_object_add(o, "ready_ms", v->ready_usec ? json_object_new_double(ms(v->ready_usec)) : NULL);
        json_object_object_add(o, "restarts", v->agent_restarts >= 0 ? json_object_new_int64(v->agent_restarts) : NULL);
        json_object_object_add(o, "pid", v->pid > 0 ? json_object_new_int64(v->pid) : NULL);
        json_object_object_add(o, "slots", json_object_new_int64(v->slots));
        json_object_object_add(o, "in_flight", json_object_new_int64(v->in_flight));
        json_object_object_add(o, "requests", json_object_new_int64((int64_t) v->requests));
        json_object_object_add(o, "errors", json_object_new_int64((int64_t) v->errors));
        json_object_object_add(o, "prompt_tokens", json_object_new_int64((int64_t) v->prompt_tokens));
        json_object_object_add(o, "generated_tokens", json_object_new_int64((int64_t) v->generated_tokens));
        json_object_object_add(lat, "last", json_object_new_double(ms(v->latency_last_usec)));
        json_object_object_add(lat, "max", json_object_new_double(ms(v->latency_max_usec)));
        {
                uint64_t done = v->requests - v->in_flight;

                json_object_object_add(lat, "mean",
                                       json_object_new_double(done > 0 ? ms(v->latency_total_usec / done) : 0));
        }
        json_object_object_add(o, "latency_ms", lat);
        json_object_object_add(o, "error", v->error ? json_object_new_string(v->error) : NULL);
        *ret = o;
        return 0;
}

/* ---- connecting to the bridge ---- */

struct InferenceConnect {
        VsockConnect *connect;
        sd_event_source *io, *timer;
        char *uds;
        inference_connect_fn cb;
        void *userdata;
};

void inference_connect_cancel(InferenceConnect *c) {
        if (!c)
                return;
        vsock_connect_free(c->connect);
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->timer);
        free(c->uds);
        free(c);
}

static void connect_finish(InferenceConnect *c, int fd_or_errno) {
        inference_connect_fn cb = c->cb;
        void *userdata = c->userdata;

        inference_connect_cancel(c);
        cb(fd_or_errno, userdata);
}

static int on_connect_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        InferenceConnect *c = userdata;
        int r, conn = -EBADF;

        r = vsock_connect_step(c->connect, &conn);
        if (r == 0)
                r = sd_event_source_set_io_events(s, vsock_connect_events(c->connect));
        if (r < 0)
                connect_finish(c, r);
        else if (r > 0) {
                /* The fd the io source watches: stop watching before handing it on. */
                c->io = sd_event_source_disable_unref(c->io);
                connect_finish(c, conn);
        }
        return 0;
}

static int on_connect_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        connect_finish(userdata, -ETIMEDOUT);
        return 0;
}

int inference_connect(InferenceVm *v, inference_connect_fn cb, void *userdata, InferenceConnect **ret) {
        InferenceConnect *c;
        VsockTarget t = {};
        int r;

        if (!v->vm || !v->inf)
                return -ESHUTDOWN;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->cb = cb;
        c->userdata = userdata;
        if (v->inf->kernel_vsock)
                t.cid = vm_running_config(v->vm)->cid;
        else {
                t = agent_vsock_uds_target(v->vm->run_dir, &c->uds);
                if (!c->uds) {
                        free(c);
                        return -ENOMEM;
                }
        }
        r = vsock_connect_start(&t, AGENT_LLM_PORT, (int) (INFERENCE_CONNECT_TIMEOUT_USEC / 1000), &c->connect);
        if (r >= 0)
                r = sd_event_add_io(v->inf->event, &c->io, vsock_connect_fd(c->connect),
                                    vsock_connect_events(c->connect), on_connect_io, c);
        if (r >= 0)
                r = sd_event_add_time_relative(v->inf->event, &c->timer, CLOCK_MONOTONIC,
                                               INFERENCE_CONNECT_TIMEOUT_USEC, 10000, on_connect_timeout, c);
        if (r < 0) {
                inference_connect_cancel(c);
                return r;
        }
        *ret = c;
        return 0;
}
