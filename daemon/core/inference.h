/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Serving a model from a VM: once the agent of a VM whose config has
 * `model:` is READY, zvmd asks it to start llama-server (`llm-start`,
 * api/agent-protocol.md "llm") and follows `llm.state` by polling `info`
 * (loading → ready, or failed; the agent restarts a dead server itself and
 * counts it). Per VM it keeps what the OpenAI-compatible proxy needs to
 * route (ready or not, requests in flight) and what it measured (requests,
 * errors, tokens, latency), since the VM's agent became ready.
 *
 * Sits above vm and agent; knows no HTTP. It reports upward through the
 * callback given to inference_new(): a VM's serving state or statistics
 * changed (the proxy then looks at its queue, the API emits an event).
 */

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "macro.h"

typedef struct Vm Vm;
typedef struct Inference Inference;
typedef struct InferenceVm InferenceVm;
typedef struct InferenceConnect InferenceConnect;

typedef enum InferenceState {
        INFERENCE_STARTING,             /* llm-start sent, no answer yet */
        INFERENCE_LOADING,              /* llama-server loading, or waiting to restart */
        INFERENCE_READY,                /* /health 200 in the guest: requests go here */
        INFERENCE_FAILED,               /* llm-start refused, or the agent gave up restarting */
        INFERENCE_STOPPED,              /* stopped in the guest (llm-stop by someone else) */
        INFERENCE_GONE,                 /* the VM or its agent went down: only references remain */
        _INFERENCE_STATE_MAX,
} InferenceState;

const char *inference_state_to_string(InferenceState s);

/* Where llama-server's bridge listens in the guest (AGENT_LLM_PORT) and the
 * model file the agent is told to serve (the model disk's mount). */
#define INFERENCE_MODEL_PATH "/models/model.gguf"
/* Polling `info` while loading: 0.5 s, doubling up to 4 s; once ready every
 * 10 s, so that a restart in the guest takes the VM out of the rotation. */
#define INFERENCE_POLL_FIRST_USEC (500 * 1000ULL)
#define INFERENCE_POLL_LOADING_MAX_USEC (4 * 1000 * 1000ULL)
#define INFERENCE_POLL_READY_USEC (10 * 1000 * 1000ULL)
#define INFERENCE_CALL_TIMEOUT_USEC (30 * 1000 * 1000ULL)
#define INFERENCE_CONNECT_TIMEOUT_USEC (10 * 1000 * 1000ULL)

/* What one proxied request cost, for the statistics. */
typedef struct InferenceResult {
        bool failed;
        uint64_t prompt_tokens;
        uint64_t generated_tokens;
        uint64_t latency_usec;
} InferenceResult;

typedef void (*inference_event_fn)(Inference *inf, Vm *vm, void *userdata);

/* kernel_vsock: the host's vsock mode (AF_VSOCK by CID, else hybrid through
 * the VM's vsock.sock). */
int inference_new(sd_event *e, bool kernel_vsock, inference_event_fn cb, void *userdata, Inference **ret);
/* Cancels the agent calls still running; InferenceVm references held
 * elsewhere stay valid (GONE) until unreffed. */
Inference *inference_free(Inference *inf);
DEFINE_TRIVIAL_CLEANUP_FUNC(Inference *, inference_free);

/* Looks at the VM after any change of its state or its agent's: starts
 * serving once the agent is ready in a VM with a model, forgets the VM
 * when it or its agent goes down. */
void inference_on_vm(Inference *inf, Vm *vm);

/* The model the VM serves (its running config's `model:`), or NULL. */
const char *inference_vm_model_of(const Vm *vm);

/* The serving VM of vm, or NULL (not serving since its agent was ready). */
InferenceVm *inference_find(Inference *inf, const Vm *vm);
/* Iterates the serving VMs: first NULL → first, NULL at the end. */
InferenceVm *inference_next(Inference *inf, InferenceVm *prev);

InferenceVm *inference_vm_ref(InferenceVm *v);
InferenceVm *inference_vm_unref(InferenceVm *v);
DEFINE_TRIVIAL_CLEANUP_FUNC(InferenceVm *, inference_vm_unref);
Vm *inference_vm_vm(const InferenceVm *v);              /* NULL once GONE */
uint32_t inference_vm_vmid(const InferenceVm *v);
const char *inference_vm_model(const InferenceVm *v);
InferenceState inference_vm_state(const InferenceVm *v);
unsigned inference_vm_in_flight(const InferenceVm *v);
uint64_t inference_vm_requests(const InferenceVm *v);
/* How many requests it takes at once: the `parallel` it was started with. */
unsigned inference_vm_slots(const InferenceVm *v);

/* A request goes to / comes back from the VM. A failed one that the VM is
 * to blame for (the connection broke, the server vanished) takes it out of
 * the rotation until `info` says ready again, polled at once. */
void inference_vm_request_begin(InferenceVm *v);
void inference_vm_request_end(InferenceVm *v, const InferenceResult *res);
void inference_vm_mark_failed(InferenceVm *v, const char *why);

/* Adds requests, errors, prompt and generated tokens to totals[0..3]. */
#define INFERENCE_TOTALS 4
void inference_vm_add_totals(const InferenceVm *v, uint64_t totals[static INFERENCE_TOTALS]);

/* The `inference` object of the VM's status. */
int inference_vm_to_json(const InferenceVm *v, json_object **ret);

/* Connects to the VM's llama-server bridge without blocking: cb gets a
 * connected, non-blocking, O_CLOEXEC socket (which it then owns) or a
 * negative errno (-ETIMEDOUT after INFERENCE_CONNECT_TIMEOUT_USEC). Called
 * once unless cancelled with inference_connect_cancel(). */
typedef void (*inference_connect_fn)(int fd_or_errno, void *userdata);
int inference_connect(InferenceVm *v, inference_connect_fn cb, void *userdata, InferenceConnect **ret);
void inference_connect_cancel(InferenceConnect *c);
