/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A request that must wait for something (a VM state, an agent answer)
 * becomes an Operation, as in systemd-machined's operation.c: the pending
 * HttpRequest plus the core handle it waits on. The core never holds the
 * request; it calls back, and the callback finishes the Operation.
 *
 * Whichever comes first ends it:
 *  - the core calls back: the callback sets the handle it was given to
 *    NULL (a fired handle is spent), calls operation_finish() and replies
 *    to the request it returns;
 *  - the client goes away: the Operation cancels the handles it still
 *    holds (vm_wait_cancel(), agent_call_cancel()) and frees itself, so
 *    nothing stays registered in the core.
 */

#include <stdbool.h>

#include "agent.h"
#include "http-server.h"
#include "vm.h"

typedef struct Manager Manager;
typedef struct Operation Operation;
typedef void (*operation_agent_reply_fn)(HttpRequest *req, json_object *response);

struct Operation {
        HttpRequest *req;
        Vm *vm;
        VmWait *wait;                   /* set while waiting on the VM */
        AgentCall *call;                /* set while waiting on its agent */
        operation_agent_reply_fn agent_reply;   /* how an agent answer becomes the reply */
        Manager *manager;               /* for what happens after the wait (a forced delete) */
};

/* NULL on OOM (then the caller still owns the request and replies). */
Operation *operation_new(HttpRequest *req, Vm *vm);
/* Cancels what the Operation still waits on, frees it, and returns its
 * request, which the caller now owes exactly one reply. */
HttpRequest *operation_finish(Operation *op);
/* The same from the callback of op->wait / op->call: that handle is spent
 * (the core freed it), so it is forgotten, not cancelled. */
HttpRequest *operation_wait_done(Operation *op);
HttpRequest *operation_call_done(Operation *op);
