/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * zvm's client of the OpenAI-compatible API (zvm chat, bench, run): zvmd
 * serves it at the root of its listeners (/v1/chat/completions, routed by
 * "model") and per VM at /api/v1/vms/{id}/v1/...; any server speaking it on
 * a unix socket (--socket) or URL (--url), llama-server itself, works too.
 *
 * Requests run on a libcurl multi handle, any number at once, so bench's
 * concurrency and chat's streaming share one loop. Streamed answers are
 * parsed as they arrive (cli-sse.c, lines bounded); everything else an
 * answer may hold is bounded by OAI_ANSWER_MAX. Program code: the verbs log
 * what oai_request_error() says.
 */

#include <curl/curl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "cli-sse.h"
#include "zvm.h"

/* The largest non-streamed answer or error body, and the most text of a
 * streamed answer zvm keeps (beyond it, tokens are still shown and counted). */
#define OAI_ANSWER_MAX (4U * 1024U * 1024U)

/* Where requests for a name go. */
typedef struct OaiTarget {
        char *prefix;   /* "" (zvmd routes by model), or "/api/v1/vms/<id>" */
        char *model;    /* the "model" of requests */
        bool vm;
} OaiTarget;

void oai_target_done(OaiTarget *t);

/* name is a model that GET /v1/models lists, or else a VM (GET
 * /api/v1/vms/<name> answers); "model:NAME" and "vm:NAME" say which
 * without asking. -ENOENT (logged, naming the models there
 * are) if neither; transport errors as cli-http.c says them. */
int oai_target_resolve(const Cli *cli, const char *name, OaiTarget *ret);

/* The one positional argument MODEL|VM left after the options (usage
 * error otherwise), resolved as oai_target_resolve() does. */
int oai_target_from_args(Cli *cli, int argc, char *argv[], OaiTarget *ret);

/* For a VM's pass-through route that is not up yet (zvm run). */
int oai_target_for_vm(const char *vm, OaiTarget *ret);

typedef struct OaiRequest OaiRequest;

/* Called for each piece of generated text as it arrives. */
typedef void (*OaiTextFunction)(OaiRequest *req, const char *text, size_t size, void *userdata);

struct OaiRequest {
        CURL *curl;
        struct curl_slist *headers;
        char *url, *body;
        char errbuf[CURL_ERROR_SIZE];
        OaiTextFunction on_text;
        void *userdata;

        SseParser sse;
        bool streamed;          /* the answer is text/event-stream */
        bool started;           /* the first byte of the answer arrived */
        char *raw;              /* non-streamed answer or error body */
        size_t raw_size;
        bool too_large;
        int parse_error;        /* a malformed or oversized stream */

        /* results */
        CURLcode code;
        long status;
        uint64_t start_usec, first_token_usec, end_usec;   /* CLOCK_MONOTONIC */
        char *content;          /* the text generated (first OAI_ANSWER_MAX bytes) */
        size_t content_size;
        unsigned text_chunks;   /* chunks that carried text (maybe empty: one a token) */
        char *finish_reason;
        json_object *answer;    /* non-streamed: the answer; streamed: the chunk with usage */
        json_object *stream_error;      /* an {"error": ...} event in the stream */
        bool done;              /* streamed: "data: [DONE]" arrived */
        bool finished;          /* the transfer is over */
};

/* Prepares a POST of body to target's prefix + endpoint ("/v1/chat/completions"). */
int oai_request_new(const Cli *cli, const OaiTarget *target, const char *endpoint, json_object *body,
                    OaiTextFunction on_text, void *userdata, OaiRequest **ret);
/* A GET of path on the server's root ("/v1/models"). */
int oai_request_new_get(const Cli *cli, const char *path, OaiRequest **ret);
OaiRequest *oai_request_free(OaiRequest *req);
DEFINE_TRIVIAL_CLEANUP_FUNC(OaiRequest *, oai_request_free);

/* Runs reqs[0..n), at most concurrency at a time, in order, until all are
 * finished or *stop becomes true (stop may be NULL; those not finished then
 * are aborted: -ECANCELED from oai_request_error()). Returns -errno only
 * when libcurl itself fails; each request's outcome is its own. */
int oai_run(OaiRequest **reqs, size_t n, unsigned concurrency, const volatile sig_atomic_t *stop);

/* 0 if req got a complete answer, else -errno and *ret_message (optional,
 * new string): unreachable, HTTP status with the server's message, a stream
 * cut before "data: [DONE]", an error event in the stream. */
int oai_request_error(const Cli *cli, OaiRequest *req, char **ret_message);

/* Logs oai_request_error()'s message and returns its errno. */
int oai_request_check(const Cli *cli, OaiRequest *req);

/* The "usage"/"timings" number key of the answer (streamed: of the final
 * chunk), or -1 when missing. */
double oai_request_number(const OaiRequest *req, const char *object, const char *key);
