/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* zvmd's side of the guest agent (api/agent-protocol.md): the per-VM secret,
 * the READY listener, asynchronous calls, the health check.
 *
 * This module knows no Vm and no Manager: each VM embeds a VmAgent, and the
 * daemon gives one AgentHost (its event loop, the vsock mode, and the hooks
 * through which the agent reports upward). A caller that needs its VM back
 * from a VmAgent uses container_of(). */

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

typedef struct AgentCall AgentCall;
typedef struct AgentReadyConn AgentReadyConn;
typedef struct AgentHost AgentHost;
typedef struct VmAgent VmAgent;

/* AGENT_PORT, AGENT_READY_PORT: the contract with the guest. */
/* Hybrid vsock: <run dir>/vsock.sock is a symlink into the VM's vsock dir
 * (core/vm-sandbox.c) for the CLI; zvmd itself connects to the socket in
 * that dir, agent_vsock_uds_target() (the socket itself in the run dir for a
 * VM that a zvmd older than that dir started). */
#define AGENT_VSOCK_UDS "vsock.sock"
#include "agent-contract.h"
#include "vsock.h"

/* The hybrid vsock target of a VM's run dir: its helper's socket, pinned
 * against symlinks where the VM's uid owns the dir. *uds: the path (to
 * free), NULL on OOM. */
VsockTarget agent_vsock_uds_target(const char *run_dir, char **uds);

typedef enum AgentState {
        AGENT_NONE,                     /* agent: 0, or the VM is not running */
        AGENT_WAITING,                  /* VM started, READY not (yet) received */
        AGENT_READY,
        AGENT_UNRESPONSIVE,             /* the health check's ping failed */
        _AGENT_STATE_MAX,
} AgentState;

const char *agent_state_to_string(AgentState s);

/* response: the agent's whole answer (borrowed) when it said ok; else NULL
 * and error_code (an agent code such as "ENOENT", or "ETIMEDOUT",
 * "ECONNREFUSED" for transport failures) with a message. */
typedef void (*agent_result_fn)(VmAgent *a, json_object *response, const char *error_code,
                                const char *error_message, void *userdata);
/* a->state changed; previous is what it was. */
typedef void (*agent_changed_fn)(VmAgent *a, AgentState previous, void *userdata);
/* The guest's READY was taken: a->info holds it (without the secret). */
typedef void (*agent_ready_fn)(VmAgent *a, void *userdata);

struct AgentHost {
        sd_event *event;
        bool kernel_vsock;              /* one AF_VSOCK listener for all; else hybrid, one per VM */
        agent_changed_fn on_changed;
        agent_ready_fn on_ready;
        void *userdata;
        /* agent.c's own */
        VmAgent *agents;                /* every agent from prepare/readopt until detach */
        sd_event_source *listen;        /* kernel vsock: READY from every guest */
        unsigned ready_conns;           /* open READY connections on listen */
};

struct VmAgent {
        AgentHost *host;
        uint32_t vmid;                  /* for logs */
        const char *run_dir;            /* the VM's, borrowed: secret, hybrid sockets */
        uint32_t cid;                   /* the running CID (kernel vsock) */
        uint64_t started_mono;          /* CLOCK_MONOTONIC µs of QEMU's spawn (set by the VM), 0 if unknown */
        AgentState state;
        char secret[65];                /* hex, for this run of the VM */
        sd_event_source *listen;        /* hybrid: <uds>_1025 */
        sd_event_source *health;
        json_object *info;              /* the READY message, without the secret */
        uint64_t ready_usec;            /* start → READY */
        AgentCall *calls;
        AgentReadyConn *ready_conns;    /* open READY connections, at most 2 */
        VmAgent *next;                  /* in host->agents */
        bool linked;
};

/* A VmAgent at rest (AGENT_NONE). run_dir must outlive it. */
void agent_init(VmAgent *a, AgentHost *host, uint32_t vmid, const char *run_dir);

/* Sends one request (reference taken) over a fresh authenticated connection
 * and calls cb once with the answer, unless cancelled first. The answer line
 * is capped by the request's op (api/agent-wire.h). */
int agent_call(VmAgent *a, json_object *request, uint64_t timeout_usec, agent_result_fn cb, void *userdata,
               AgentCall **ret);
void agent_call_cancel(AgentCall *c);
/* Cancels every call of the VM (it went down or away). */
void agent_calls_cancel_all(VmAgent *a);

/* Before QEMU starts: new secret file, READY listener (hybrid vsock).
 * enabled: the running config's agent flag; cid: its vsock CID. */
int agent_prepare(VmAgent *a, bool enabled, uint32_t cid, char **ret_secret_path);
/* After a zvmd restart: reload the secret and re-listen; a ping decides. */
int agent_readopt(VmAgent *a, bool enabled, uint32_t cid);
/* A call of a re-adopted agent was answered: it is READY without waiting
 * for the re-adoption's ping (a claimed warm-pool guest). */
void agent_answered(VmAgent *a);
/* zvmd lets go of a VM that keeps running (zvmd exits): calls, listener and
 * state go, the secret file stays. */
void agent_detach(VmAgent *a);
/* The VM stopped: agent_detach(), and its secret and listener socket go. */
void agent_stop(VmAgent *a);
int agent_to_json(const VmAgent *a, json_object *status);

/* Kernel vsock: one AF_VSOCK listener on port 1025 for every VM, matched by
 * the peer's CID. A no-op on hybrid vsock (each VM listens on its own). */
int agent_host_listen(AgentHost *h);
void agent_host_done(AgentHost *h);
