/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What openai.c and openai-proxy.c share; nobody else includes it. */

#include "http-client.h"
#include "manager.h"
#include "rest-object.h"

/* Not openai.h (its users include it): a leaf, no cycle with openai.c. */
typedef struct ProxyCall ProxyCall;

typedef struct OpenAiPending OpenAiPending;

struct OpenAi {
        Rest *rest;
        HttpClient *client;
        ProxyCall *calls;               /* running, at most OPENAI_CALLS_MAX */
        unsigned n_calls;
        OpenAiPending *queue;           /* waiting for a VM, oldest first */
        unsigned n_queued;
        bool kicking;                   /* openai_slot_free() is dispatching the queue */
};

/* Ends every call (zvmd exits): their clients are told nothing more. */
void openai_proxy_free_all(OpenAi *o);
