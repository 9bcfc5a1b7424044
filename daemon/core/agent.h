/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* zvmd's side of the guest agent (api/agent-protocol.md): the per-VM secret,
 * the READY listener, asynchronous calls, the health check. */

#include <json-c/json.h>
#include <stdint.h>
#include <systemd/sd-event.h>

typedef struct Vm Vm;
typedef struct Manager Manager;
typedef struct AgentCall AgentCall;
typedef struct AgentReadyConn AgentReadyConn;

/* AGENT_PORT, AGENT_READY_PORT: the contract with the guest. */
#include "agent-contract.h"

typedef enum AgentState {
        AGENT_NONE,                     /* agent: 0, or the VM is not running */
        AGENT_WAITING,                  /* VM started, READY not (yet) received */
        AGENT_READY,
        AGENT_UNRESPONSIVE,             /* the health check's ping failed */
        _AGENT_STATE_MAX,
} AgentState;

const char *agent_state_to_string(AgentState s);

/* response: the agent's whole answer (borrowed) when it said ok; else NULL
 * and error_code ("ETIMEDOUT", "ECONNREFUSED", the agent's code, ...) plus
 * a message. Called exactly once, unless the call is cancelled. */
typedef void (*agent_result_fn)(Vm *vm, json_object *response, const char *error_code, const char *error_message,
                                void *userdata);

/* Sends one request (reference taken) over a fresh authenticated connection
 * to the agent of a running VM. timeout_usec bounds the whole call. */
int agent_call(Vm *vm, json_object *request, uint64_t timeout_usec, agent_result_fn cb, void *userdata,
               AgentCall **ret);
void agent_call_cancel(AgentCall *c);
/* Cancels every call of the VM (it went down or away). */
void agent_calls_cancel_all(Vm *vm);

/* Before QEMU starts: new secret file, READY listener (hybrid vsock). */
int agent_prepare(Vm *vm, char **ret_secret_path);
/* After a zvmd restart: reload the secret and re-listen; a ping decides. */
int agent_readopt(Vm *vm);
/* zvmd lets go of a VM that keeps running (zvmd exits): calls, listener and
 * memory go, the secret file stays for the next zvmd's agent_readopt(). */
void agent_detach(Vm *vm);
/* The VM stopped: agent_detach(), and its secret and listener socket go. */
void agent_stop(Vm *vm);
int agent_to_json(Vm *vm, json_object *status);

/* Kernel vsock: one AF_VSOCK listener on port 1025 for every VM, matched by
 * the peer's CID. */
int agent_manager_listen(Manager *m);
