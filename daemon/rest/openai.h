/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The OpenAI-compatible API (openai.c: routes, routing by model, the
 * per-model queue) and its proxy to the llama-server of a VM
 * (openai-proxy.c: libcurl multi on the loop, over a vsock connection made
 * by core/inference.c, streamed back through libmicrohttpd).
 *
 * Bounds: a request body is capped by the HTTP server (HTTP_BODY_MAX,
 * 1 MiB); at most OPENAI_CALLS_MAX proxied requests at once; a model's queue
 * holds at most OPENAI_QUEUE_MAX requests (429 beyond), each for at most
 * OPENAI_QUEUE_WAIT_USEC (then 503); an answer that is not streamed is
 * buffered up to OPENAI_ANSWER_MAX (502 beyond); a stream pauses its
 * upstream transfer while more than OPENAI_STREAM_HIGH bytes wait for a slow
 * client; every transfer ends after OPENAI_TRANSFER_TIMEOUT_MS.
 */

#include <stdbool.h>
#include <stdint.h>

#include "http-server.h"
#include "inference.h"
#include "rest.h"

#define OPENAI_CALLS_MAX 64U
#define OPENAI_QUEUE_MAX 16U
#define OPENAI_QUEUE_WAIT_USEC (120 * 1000 * 1000ULL)
#define OPENAI_ANSWER_MAX (8U << 20)
#define OPENAI_STREAM_HIGH (256U << 10)
#define OPENAI_SSE_LINE_MAX (64U << 10)
#define OPENAI_TRANSFER_TIMEOUT_MS (15 * 60 * 1000L)
#define OPENAI_RETRY_AFTER_SEC 5U

typedef struct OpenAi OpenAi;
typedef struct ProxyCall ProxyCall;

int openai_new(Rest *rest, OpenAi **ret);
/* Free after the HTTP server: its closed handlers end the calls first. */
OpenAi *openai_free(OpenAi *o);
DEFINE_TRIVIAL_CLEANUP_FUNC(OpenAi *, openai_free);

/* core/inference.c's event callback (userdata: the Rest): a VM's serving
 * state or statistics changed: the queue is looked at, and /events says so. */
void openai_on_inference(Inference *inf, Vm *vm, void *userdata);

/* {"error":{"message","type","code"}} with status (and Retry-After when
 * retry_after > 0). */
void openai_reply_error(HttpRequest *req, unsigned status, const char *type, const char *code, unsigned retry_after,
                        const char *fmt, ...) _printf_(6, 7);

/* Sends req (method, path of the guest's server, the request's body) to v
 * and replies from its answer; consumes req. done (optional) runs when the
 * call is over, for the queue. */
void openai_proxy(OpenAi *o, InferenceVm *v, HttpRequest *req, const char *path, bool stream);
unsigned openai_calls(const OpenAi *o);
/* Adds the VM's "inference" object (null when it serves nothing) to j. */
void openai_vm_add_json(Rest *rest, Vm *vm, json_object *j);
/* Called by the proxy when a call ends: a slot is free. */
void openai_slot_free(OpenAi *o);
