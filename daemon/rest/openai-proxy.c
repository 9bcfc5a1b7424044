/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One proxied request: a vsock connection to the VM's llama-server bridge
 * (core/inference.c, never blocking), handed to libcurl already connected
 * (CURLOPT_OPENSOCKETFUNCTION + CURL_SOCKOPT_ALREADY_CONNECTED), the
 * transfer run by the multi interface on the loop (http/http-client.c), and
 * the answer given back to the client: buffered (capped) when it is not
 * streamed, passed through chunk by chunk when it is, with the upstream
 * transfer paused while the client is slow. A stream that breaks before
 * llama-server's `data: [DONE]` ends with an SSE error event, never silently.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http-client.h"
#include "json-util.h"
#include "log.h"
#include "openai-internal.h"
#include "openai.h"
#include "string-util.h"
#include "time-util.h"

struct ProxyCall {
        OpenAi *o;
        ProxyCall *next, **prevp;
        InferenceVm *v;                 /* a reference */
        HttpRequest *req;               /* until the reply */
        HttpStream *st;                 /* a streamed reply, until closed */
        InferenceConnect *connect;
        int fd;                         /* connected, not yet taken by curl */
        CURL *easy;
        struct curl_slist *headers;
        char *path;
        bool want_stream, is_post;
        char *answer;
        size_t answer_size;
        bool answer_over;
        char *line;                     /* the SSE line being read, for the token counts */
        size_t line_size;
        bool line_over;
        bool saw_done;
        bool client_gone;               /* the client stopped taking data: not the VM's fault */
        bool paused;
        sd_event_source *resume;
        uint64_t start_usec;
        uint64_t prompt_tokens, generated_tokens;
        char error[CURL_ERROR_SIZE];
};

static void call_free(ProxyCall *c) {
        OpenAi *o = c->o;

        if (c->easy) {
                http_client_remove(o->client, c->easy);
                curl_easy_cleanup(c->easy);
        }
        curl_slist_free_all(c->headers);
        inference_connect_cancel(c->connect);
        if (c->fd >= 0)
                close(c->fd);
        sd_event_source_disable_unref(c->resume);
        if (c->req)
                (void) http_request_reply_text(c->req, 500, NULL, "", 0);     /* a no-op once the client is gone */
        if (c->st)
                http_stream_close(c->st);
        *c->prevp = c->next;
        if (c->next)
                c->next->prevp = c->prevp;
        inference_vm_unref(c->v);
        free(c->path);
        free(c->answer);
        free(c->line);
        free(c);
        o->n_calls--;
        openai_slot_free(o);
}

/* The counts in an answer: `usage` (OpenAI) or `timings` (llama-server),
 * whichever the object has; the last seen wins. */
static void call_take_counts(ProxyCall *c, json_object *o) {
        json_object *u, *x;

        if (json_object_object_get_ex(o, "usage", &u) && json_object_is_type(u, json_type_object)) {
                if (json_object_object_get_ex(u, "prompt_tokens", &x) && json_object_is_type(x, json_type_int))
                        c->prompt_tokens = (uint64_t) MAX(json_object_get_int64(x), 0);
                if (json_object_object_get_ex(u, "completion_tokens", &x) && json_object_is_type(x, json_type_int))
                        c->generated_tokens = (uint64_t) MAX(json_object_get_int64(x), 0);
        }
        if (json_object_object_get_ex(o, "timings", &u) && json_object_is_type(u, json_type_object)) {
                if (json_object_object_get_ex(u, "prompt_n", &x) && json_object_is_type(x, json_type_int))
                        c->prompt_tokens = (uint64_t) MAX(json_object_get_int64(x), 0);
                if (json_object_object_get_ex(u, "predicted_n", &x) && json_object_is_type(x, json_type_int))
                        c->generated_tokens = (uint64_t) MAX(json_object_get_int64(x), 0);
        }
}

static void call_scan_json(ProxyCall *c, const char *s, size_t len) {
        json_object *o = NULL;

        if (json_parse_bounded(s, len, 16, 100000, &o) < 0)
                return;
        if (json_object_is_type(o, json_type_object))
                call_take_counts(c, o);
        json_object_put(o);
}

static void call_sse_line(ProxyCall *c, char *line, size_t len) {
        if (len > 0 && line[len - 1] == '\r')
                line[--len] = 0;
        if (!startswith(line, "data:"))
                return;
        line += 5;
        len -= 5;
        while (len > 0 && *line == ' ')
                line++, len--;
        if (streq(line, "[DONE]"))
                c->saw_done = true;
        else if (len > 0 && *line == '{')
                call_scan_json(c, line, len);
}

/* Follows the SSE lines passing through, bounded: a line longer than
 * OPENAI_SSE_LINE_MAX is passed on but not looked at. */
static void call_sse_scan(ProxyCall *c, const char *p, size_t n) {
        while (n > 0) {
                const char *nl = memchr(p, '\n', n);
                size_t take = nl ? (size_t) (nl - p) : n;

                if (!c->line_over && c->line_size + take < OPENAI_SSE_LINE_MAX) {
                        memcpy(c->line + c->line_size, p, take);
                        c->line_size += take;
                } else
                        c->line_over = true;
                if (!nl)
                        return;
                if (!c->line_over) {
                        c->line[c->line_size] = 0;
                        call_sse_line(c, c->line, c->line_size);
                }
                c->line_size = 0;
                c->line_over = false;
                p = nl + 1;
                n -= take + 1;
        }
}

static void on_stream_closed(HttpStream *s, void *userdata) {
        ProxyCall *c = userdata;

        /* The client left: no statistics for the VM, it did nothing wrong. */
        inference_vm_request_end(c->v, &(InferenceResult) { .latency_usec = now_usec(CLOCK_MONOTONIC) - c->start_usec });
        call_free(c);
}

static void on_request_closed(HttpRequest *req, void *userdata) {
        on_stream_closed(NULL, userdata);
}

static int on_resume(sd_event_source *s, uint64_t usec, void *userdata) {
        ProxyCall *c = userdata;

        if (http_stream_queued(c->st) > OPENAI_STREAM_HIGH / 2)
                return sd_event_source_set_time_relative(s, 20 * 1000) < 0 ? 0 :
                       sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        c->paused = false;
        (void) curl_easy_pause(c->easy, CURLPAUSE_CONT);
        http_client_wake(c->o->client);
        return 0;
}

/* Waits for the client to take what is queued: the transfer pauses (curl
 * keeps the chunk and hands it over again) and a timer looks every 20 ms. */
static size_t call_pause(ProxyCall *c) {
        int r;

        if (!c->resume)
                r = sd_event_add_time_relative(c->o->rest->manager->event, &c->resume, CLOCK_MONOTONIC, 20 * 1000,
                                               5000, on_resume, c);
        else {
                r = sd_event_source_set_time_relative(c->resume, 20 * 1000);
                if (r >= 0)
                        r = sd_event_source_set_enabled(c->resume, SD_EVENT_ONESHOT);
        }
        if (r < 0) {
                c->client_gone = true;  /* aborts the transfer, as if the client had left */
                return 0;
        }
        c->paused = true;
        return CURL_WRITEFUNC_PAUSE;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *userdata) {
        ProxyCall *c = userdata;
        size_t n = size * nmemb;
        long status = 0;

        if (c->want_stream && c->req) {
                (void) curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
                if (status == 200) {
                        HttpRequest *req = TAKE_PTR(c->req);

                        if (http_request_reply_stream(req, "text/event-stream", &c->st) < 0) {
                                c->client_gone = true;  /* it was answered 500 */
                                return 0;
                        }
                        http_stream_set_closed_handler(c->st, on_stream_closed, c);
                }
        }
        if (c->st) {
                if (http_stream_queued(c->st) > OPENAI_STREAM_HIGH)
                        return call_pause(c);
                call_sse_scan(c, p, n);
                if (http_stream_send(c->st, p, n) < 0) {
                        c->client_gone = true;
                        return 0;
                }
                return n;
        }
        if (n > OPENAI_ANSWER_MAX - c->answer_size) {
                c->answer_over = true;
                return 0;
        }
        {
                char *a = realloc(c->answer, c->answer_size + n + 1);

                if (!a)
                        return 0;
                c->answer = a;
        }
        memcpy(c->answer + c->answer_size, p, n);
        c->answer_size += n;
        c->answer[c->answer_size] = 0;
        return n;
}

static void call_stream_error(ProxyCall *c, const char *message) {
        json_object *e = json_object_new_object(), *o = json_object_new_object();
        _cleanup_free_ char *msg = NULL;

        if (!e || !o) {
                json_object_put(e);
                json_object_put(o);
                return;
        }
        json_object_object_add(e, "message", json_object_new_string(message));
        json_object_object_add(e, "type", json_object_new_string("server_error"));
        json_object_object_add(e, "code", json_object_new_string("upstream_failed"));
        json_object_object_add(o, "error", e);
        if (asprintf(&msg, "event: error\ndata: %s\n\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) >= 0)
                (void) http_stream_send(c->st, msg, strlen(msg));
        json_object_put(o);
}

static void on_done(CURL *easy, CURLcode result, void *userdata) {
        ProxyCall *c = userdata;
        InferenceResult res = { .latency_usec = now_usec(CLOCK_MONOTONIC) - c->start_usec };
        long status = 0;
        char why[400];

        (void) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        if (c->client_gone)
                ;                       /* nobody to tell, nothing the VM did */
        else if (c->st) {
                if (result != CURLE_OK || !c->saw_done) {
                        snprintf(why, sizeof(why), "the stream from VM %u broke before its end: %s",
                                 inference_vm_vmid(c->v),
                                 result != CURLE_OK ? (*c->error ? c->error : curl_easy_strerror(result))
                                                    : "no data: [DONE]");
                        call_stream_error(c, why);
                        inference_vm_mark_failed(c->v, why);
                        res.failed = true;
                }
        } else if (c->answer_over) {
                openai_reply_error(TAKE_PTR(c->req), 502, "server_error", "answer_too_large", 0,
                                   "the answer is larger than %u bytes", OPENAI_ANSWER_MAX);
                res.failed = true;
        } else if (result != CURLE_OK) {
                snprintf(why, sizeof(why), "llama-server in VM %u failed during the request: %s", inference_vm_vmid(c->v),
                         *c->error ? c->error : curl_easy_strerror(result));
                openai_reply_error(TAKE_PTR(c->req), 502, "server_error", "upstream_failed", 0, "%s", why);
                inference_vm_mark_failed(c->v, why);
                res.failed = true;
        } else {
                if (status == 200 && c->answer)
                        call_scan_json(c, c->answer, c->answer_size);
                res.failed = status >= 500;
                (void) http_request_reply_text(TAKE_PTR(c->req), status >= 200 && status <= 599 ? (unsigned) status : 502,
                                               "application/json", c->answer ?: "", c->answer_size);
        }
        res.prompt_tokens = c->prompt_tokens;
        res.generated_tokens = c->generated_tokens;
        inference_vm_request_end(c->v, &res);
        /* Done: curl has let go of the handle. */
        curl_easy_cleanup(TAKE_PTR(c->easy));
        call_free(c);
}

static int call_setup(ProxyCall *c) {
        CURL *e;
        const char *body;
        size_t size = 0;
        _cleanup_free_ char *url = strjoin("http://127.0.0.1", c->path);

        if (!url)
                return -ENOMEM;
        c->easy = e = curl_easy_init();
        if (!e)
                return -ENOMEM;
        c->headers = curl_slist_append(NULL, "Content-Type: application/json");
        if (!c->headers || !curl_slist_append(c->headers, "Expect:"))
                return -ENOMEM;
        body = http_request_body(c->req, &size);
        /* Each transfer has its own connection to its own VM: never reuse one
         * (every URL names the same 127.0.0.1), never a proxy from the
         * environment, only HTTP. */
        if (curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http") != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_PROXY, "") != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, OPENAI_TRANSFER_TIMEOUT_MS) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_WRITEDATA, c) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->error) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers) != CURLE_OK)
                return -EIO;
        if (c->is_post &&
            (curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) size) != CURLE_OK ||
             curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body) != CURLE_OK))
                return -EIO;
        return http_client_add(c->o->client, e, TAKE_FD(c->fd), on_done, c);
}

static void on_connected(int fd, void *userdata) {
        ProxyCall *c = userdata;
        int r;

        c->connect = NULL;
        if (fd < 0) {
                char why[200];

                snprintf(why, sizeof(why), "cannot connect to llama-server in VM %u: %s", inference_vm_vmid(c->v),
                         errno_str(fd));
                inference_vm_mark_failed(c->v, why);
                openai_reply_error(TAKE_PTR(c->req), 503, "server_error", "vm_unavailable", OPENAI_RETRY_AFTER_SEC, "%s",
                                   why);
                inference_vm_request_end(c->v, &(InferenceResult) { .failed = true });
                call_free(c);
                return;
        }
        c->fd = fd;
        r = call_setup(c);
        if (r < 0) {
                openai_reply_error(TAKE_PTR(c->req), 500, "server_error", "internal", 0, "cannot start the transfer: %s",
                                   errno_str(r));
                inference_vm_request_end(c->v, &(InferenceResult) {});
                call_free(c);
        }
}

void openai_proxy(OpenAi *o, InferenceVm *v, HttpRequest *req, const char *path, bool stream) {
        ProxyCall *c;
        int r;

        c = calloc(1, sizeof(*c));
        if (c) {
                c->path = strdup(path);
                c->line = malloc(OPENAI_SSE_LINE_MAX);
        }
        if (!c || !c->path || !c->line) {
                if (c) {
                        free(c->path);
                        free(c->line);
                        free(c);
                }
                openai_reply_error(req, 500, "server_error", "internal", 0, "out of memory");
                return;
        }
        c->o = o;
        c->fd = -EBADF;
        c->v = inference_vm_ref(v);
        c->req = req;
        c->want_stream = stream;
        c->is_post = streq(http_request_method(req), "POST");
        c->start_usec = now_usec(CLOCK_MONOTONIC);
        c->next = o->calls;
        if (c->next)
                c->next->prevp = &c->next;
        c->prevp = &o->calls;
        o->calls = c;
        o->n_calls++;
        inference_vm_request_begin(v);
        http_request_set_closed_handler(req, on_request_closed, c);
        r = inference_connect(v, on_connected, c, &c->connect);
        if (r < 0)
                on_connected(r, c);
}

void openai_proxy_free_all(OpenAi *o) {
        while (o->calls) {
                ProxyCall *c = o->calls;

                inference_vm_request_end(c->v, &(InferenceResult) {});
                call_free(c);
        }
}
