/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <poll.h>

#include "api.h"
#include "cli-http.h"
#include "cli-openai.h"
#include "cli-util.h"
#include "cli-vm.h"
#include "log.h"
#include "string-util.h"
#include "time-util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CURLM *, curl_multi_cleanup);

static char *format(const char *fmt, ...) _printf_(1, 2);
static char *format(const char *fmt, ...) {
        va_list ap;
        char *s;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&s, fmt, ap);
        va_end(ap);
        return n < 0 ? NULL : s;
}

void oai_target_done(OaiTarget *t) {
        t->prefix = mfree(t->prefix);
        t->model = mfree(t->model);
}

int oai_target_for_vm(const char *vm, OaiTarget *ret) {
        _cleanup_free_ char *path = NULL, *prefix = NULL, *model = NULL;
        int r;

        r = cli_vm_path(vm, NULL, &path);
        if (r < 0)
                return r;
        prefix = strjoin(ZVM_API_PREFIX, path);
        model = strdup(vm);
        if (!prefix || !model)
                return log_oom();
        *ret = (OaiTarget) { .prefix = TAKE_PTR(prefix), .model = TAKE_PTR(model), .vm = true };
        return 0;
}

/* Appends to the bounded raw answer. */
static bool raw_append(OaiRequest *req, const char *p, size_t n) {
        char *b;

        if (n > OAI_ANSWER_MAX - req->raw_size) {
                req->too_large = true;
                return false;
        }
        b = realloc(req->raw, req->raw_size + n + 1);
        if (!b)
                return false;
        memcpy(b + req->raw_size, p, n);
        req->raw_size += n;
        b[req->raw_size] = '\0';
        req->raw = b;
        return true;
}

/* A chunk with text: a token arrived, even when its text is empty (a
 * byte token that ends no UTF-8 character yet is held back by the server). */
static void oai_text(OaiRequest *req, const char *text, size_t n) {
        if (req->text_chunks++ == 0)
                req->first_token_usec = now_usec(CLOCK_MONOTONIC);
        if (n == 0)
                return;
        if (n <= OAI_ANSWER_MAX - req->content_size) {
                char *c = realloc(req->content, req->content_size + n + 1);

                if (c) {
                        memcpy(c + req->content_size, text, n);
                        req->content_size += n;
                        c[req->content_size] = '\0';
                        req->content = c;
                }
        }
        if (req->on_text)
                req->on_text(req, text, n, req->userdata);
}

/* The text of choices[0]: delta.content of a chat chunk, text of a
 * completion chunk, message.content of a whole chat answer. */
static void oai_choice(OaiRequest *req, json_object *o) {
        json_object *choices, *c, *v, *m;

        if (!json_object_object_get_ex(o, "choices", &choices) || !json_object_is_type(choices, json_type_array) ||
            json_object_array_length(choices) == 0)
                return;
        c = json_object_array_get_idx(choices, 0);
        if (json_object_object_get_ex(c, "finish_reason", &v) && json_object_is_type(v, json_type_string)) {
                free(req->finish_reason);
                req->finish_reason = strdup(json_object_get_string(v));
        }
        if ((json_object_object_get_ex(c, "delta", &m) || json_object_object_get_ex(c, "message", &m)) &&
            json_object_object_get_ex(m, "content", &v) && json_object_is_type(v, json_type_string))
                oai_text(req, json_object_get_string(v), (size_t) json_object_get_string_len(v));
        else if (json_object_object_get_ex(c, "text", &v) && json_object_is_type(v, json_type_string))
                oai_text(req, json_object_get_string(v), (size_t) json_object_get_string_len(v));
}

static int oai_event(const char *data, size_t size, void *userdata) {
        OaiRequest *req = userdata;
        _cleanup_(json_object_putp) json_object *o = NULL;
        json_object *v;

        if (streq(data, "[DONE]")) {
                req->done = true;
                return 0;
        }
        o = json_tokener_parse(data);
        if (!o || !json_object_is_type(o, json_type_object))
                return log_debug_errno(SYNTHETIC_ERRNO(EBADMSG), "not a JSON object in the stream (%zu bytes)", size);
        if (json_object_object_get_ex(o, "error", &v)) {
                json_object_put(req->stream_error);
                req->stream_error = json_object_get(v);
                return 0;
        }
        oai_choice(req, o);
        if (json_object_object_get_ex(o, "usage", &v) && json_object_is_type(v, json_type_object)) {
                json_object_put(req->answer);
                req->answer = TAKE_PTR(o);
        }
        return 0;
}

/* libcurl's write callback: the first bytes decide whether this is a
 * stream (200 and text/event-stream); an error status or a whole answer
 * is collected, bounded. Returning less than given fails the transfer. */
static size_t oai_write(char *ptr, size_t size, size_t nmemb, void *userdata) {
        OaiRequest *req = userdata;
        size_t n = size * nmemb;
        int r;

        if (!req->started) {
                const char *ct = NULL;

                req->started = true;
                (void) curl_easy_getinfo(req->curl, CURLINFO_RESPONSE_CODE, &req->status);
                (void) curl_easy_getinfo(req->curl, CURLINFO_CONTENT_TYPE, &ct);
                req->streamed = req->status == 200 && ct && startswith(ct, "text/event-stream");
        }
        if (!req->streamed)
                return raw_append(req, ptr, n) ? n : 0;
        r = sse_parser_feed(&req->sse, ptr, n);
        if (r < 0) {
                req->parse_error = r;
                return 0;
        }
        return n;
}

static int oai_request_alloc(const Cli *cli, const char *url_path, const char *body, OaiRequest **ret) {
        _cleanup_(oai_request_freep) OaiRequest *req = NULL;
        int r;

        req = calloc(1, sizeof(OaiRequest));
        if (!req)
                return log_oom();
        sse_parser_init(&req->sse, oai_event, req);
        req->url = cli_http_url_root(cli, url_path);
        req->curl = curl_easy_init();
        if (!req->url || !req->curl)
                return log_oom();

        r = cli_http_setup(cli, req->curl, req->url, body ? "application/json" : NULL,
                           "application/json, text/event-stream", false, req->errbuf, &req->headers);
        if (r < 0)
                return r;
        if (curl_easy_setopt(req->curl, CURLOPT_TIMEOUT_MS, (long) cli->timeout_sec * 1000L) != CURLE_OK ||
            curl_easy_setopt(req->curl, CURLOPT_WRITEFUNCTION, oai_write) != CURLE_OK ||
            curl_easy_setopt(req->curl, CURLOPT_WRITEDATA, req) != CURLE_OK ||
            curl_easy_setopt(req->curl, CURLOPT_PRIVATE, req) != CURLE_OK)
                return log_error_errno(SYNTHETIC_ERRNO(EIO), "failed to set up libcurl");
        if (body) {
                req->body = strdup(body);
                if (!req->body)
                        return log_oom();
                if (curl_easy_setopt(req->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) strlen(body)) != CURLE_OK ||
                    curl_easy_setopt(req->curl, CURLOPT_POSTFIELDS, req->body) != CURLE_OK)
                        return log_error_errno(SYNTHETIC_ERRNO(EIO), "failed to set up libcurl");
        }
        log_debug("%s %s", body ? "POST" : "GET", req->url);
        *ret = TAKE_PTR(req);
        return 0;
}

int oai_request_new(const Cli *cli, const OaiTarget *target, const char *endpoint, json_object *body,
                    OaiTextFunction on_text, void *userdata, OaiRequest **ret) {
        _cleanup_free_ char *path = strjoin(target->prefix, endpoint);
        int r;

        if (!path)
                return log_oom();
        r = oai_request_alloc(cli, path,
                              json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                              ret);
        if (r < 0)
                return r;
        (*ret)->on_text = on_text;
        (*ret)->userdata = userdata;
        return 0;
}

int oai_request_new_get(const Cli *cli, const char *path, OaiRequest **ret) {
        return oai_request_alloc(cli, path, NULL, ret);
}

OaiRequest *oai_request_free(OaiRequest *req) {
        if (!req)
                return NULL;
        if (req->curl)
                curl_easy_cleanup(req->curl);
        curl_slist_free_all(req->headers);
        sse_parser_done(&req->sse);
        free(req->url);
        free(req->body);
        free(req->raw);
        free(req->content);
        free(req->finish_reason);
        json_object_put(req->answer);
        json_object_put(req->stream_error);
        return mfree(req);
}

/* A whole (non-streamed) answer: parse it once the transfer is over. */
static void oai_request_finish(OaiRequest *req, CURLcode code) {
        req->code = code;
        req->finished = true;
        req->end_usec = now_usec(CLOCK_MONOTONIC);
        (void) curl_easy_getinfo(req->curl, CURLINFO_RESPONSE_CODE, &req->status);
        if (code == CURLE_OK && !req->streamed && req->status == 200 && req->raw) {
                json_object *o = json_tokener_parse(req->raw);

                if (json_object_is_type(o, json_type_object)) {
                        req->answer = o;
                        oai_choice(req, o);
                } else
                        json_object_put(o);
        }
}

int oai_run(OaiRequest **reqs, size_t n, unsigned concurrency, const volatile sig_atomic_t *stop) {
        _cleanup_(curl_multi_cleanupp) CURLM *multi = curl_multi_init();
        size_t next = 0, running = 0;

        if (!multi)
                return log_oom();
        concurrency = MAX(concurrency, 1U);

        while (next < n || running > 0) {
                CURLMsg *msg;
                int still, left;

                if (stop && *stop)
                        break;
                while (next < n && running < concurrency) {
                        reqs[next]->start_usec = now_usec(CLOCK_MONOTONIC);
                        if (curl_multi_add_handle(multi, reqs[next]->curl) != CURLM_OK)
                                return log_error_errno(SYNTHETIC_ERRNO(EIO), "failed to start a request");
                        next++;
                        running++;
                }
                if (curl_multi_perform(multi, &still) != CURLM_OK)
                        return log_error_errno(SYNTHETIC_ERRNO(EIO), "libcurl failed");
                while ((msg = curl_multi_info_read(multi, &left))) {
                        OaiRequest *req = NULL;

                        if (msg->msg != CURLMSG_DONE)
                                continue;
                        (void) curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &req);
                        oai_request_finish(req, msg->data.result);
                        (void) curl_multi_remove_handle(multi, req->curl);
                        running--;
                }
                if (running > 0 || next < n)
                        /* Bounded: a signal sets *stop, and we look again within 200 ms. */
                        (void) curl_multi_poll(multi, NULL, 0, 200, NULL);
        }

        /* Stopped: what is left is aborted (the cleanup of the multi handle
         * closes its connections). */
        for (size_t i = 0; i < n; i++)
                if (!reqs[i]->finished) {
                        (void) curl_multi_remove_handle(multi, reqs[i]->curl);
                        reqs[i]->code = CURLE_ABORTED_BY_CALLBACK;
                        reqs[i]->finished = true;
                        reqs[i]->end_usec = now_usec(CLOCK_MONOTONIC);
                }
        return 0;
}

/* The message of an error body: OpenAI's {"error": {"message": ...}},
 * zvmd's {"error": "Name", "message": ...}, or the first line of text. */
static char *oai_error_text(const char *raw, json_object *error) {
        _cleanup_(json_object_putp) json_object *o = raw ? json_tokener_parse(raw) : NULL;
        json_object *e = error, *m;

        if (!e && json_object_is_type(o, json_type_object) &&
            !(json_object_object_get_ex(o, "error", &e) && json_object_is_type(e, json_type_object)))
                e = o;
        if (json_object_object_get_ex(e, "message", &m) && json_object_is_type(m, json_type_string))
                return strdup(json_object_get_string(m));
        return strndup(strempty(raw), MIN(strcspn(strempty(raw), "\r\n"), (size_t) 200));
}

int oai_request_error(const Cli *cli, OaiRequest *req, char **ret_message) {
        _cleanup_free_ char *m = NULL, *text = NULL;
        int r;

        if (req->code == CURLE_ABORTED_BY_CALLBACK && !req->parse_error && !req->too_large) {
                r = -ECANCELED;
                m = strdup("interrupted");
        } else if (req->code == CURLE_OPERATION_TIMEDOUT) {
                r = -ETIMEDOUT;
                m = format("no complete answer from %s within %u s", cli->url ?: cli->socket_path,
                                  cli->timeout_sec);
        } else if (req->code != CURLE_OK && !req->started) {
                long os_errno = 0;

                /* On a unix socket, libcurl's own text names "localhost port 80". */
                (void) curl_easy_getinfo(req->curl, CURLINFO_OS_ERRNO, &os_errno);
                r = -EHOSTUNREACH;
                m = format("cannot reach %s: %s", cli->url ?: cli->socket_path,
                           os_errno > 0 ? strerror((int) os_errno) :
                           !isempty(req->errbuf) ? req->errbuf : curl_easy_strerror(req->code));
        } else if (req->status != 200) {
                r = cli_errno_from_http_status(req->status);
                text = oai_error_text(req->raw, NULL);
                m = format("HTTP %ld%s%s", req->status, isempty(text) ? "" : ": ", strempty(text));
        } else if (req->parse_error || req->too_large) {
                r = -EBADMSG;
                m = strdup(req->too_large ? "the answer is too large" : "the stream is malformed (a line too long or not JSON)");
        } else if (req->stream_error) {
                r = -EIO;
                text = oai_error_text(NULL, req->stream_error);
                m = format("the server failed mid-answer: %s", strempty(text));
        } else if (req->code != CURLE_OK) {
                r = -EPIPE;
                m = format("the answer was cut off: %s",
                                  !isempty(req->errbuf) ? req->errbuf : curl_easy_strerror(req->code));
        } else if (req->streamed && !req->done) {
                r = -EPIPE;
                m = strdup("the stream ended before \"data: [DONE]\": the answer is incomplete");
        } else if (!req->answer) {
                r = -EBADMSG;
                m = strdup(req->streamed ? "the stream carried no usage (stream_options.include_usage)" :
                           "the answer is not a JSON object");
        } else
                return 0;

        if (ret_message)
                *ret_message = TAKE_PTR(m);
        return r;
}

int oai_request_check(const Cli *cli, OaiRequest *req) {
        _cleanup_free_ char *m = NULL;
        int r;

        r = oai_request_error(cli, req, &m);
        if (r >= 0)
                return 0;
        /* Unreachable: cli-http.c's message says why (permissions, zvmd not running). */
        if (r == -EHOSTUNREACH || r == -ETIMEDOUT)
                return cli_http_log_transport_error(cli, req->curl, req->code, req->errbuf, false);
        if (!m)
                return log_oom();
        return log_error_errno(r, "%s", m);
}

double oai_request_number(const OaiRequest *req, const char *object, const char *key) {
        json_object *o, *v;

        if (!json_object_object_get_ex(req->answer, object, &o) || !json_object_object_get_ex(o, key, &v) ||
            !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
                return -1;
        return json_object_get_double(v);
}

/* GET path on the server's root: the answer if it was 200 and JSON, else
 * NULL in *ret; -errno only if the server could not be reached. */
static int oai_get(const Cli *cli, const char *path, json_object **ret) {
        _cleanup_(oai_request_freep) OaiRequest *req = NULL;
        int r;

        r = oai_request_new_get(cli, path, &req);
        if (r < 0)
                return r;
        r = oai_run(&req, 1, 1, NULL);
        if (r < 0)
                return r;
        if (req->code != CURLE_OK)
                return oai_request_check(cli, req);
        *ret = req->status == 200 ? TAKE_PTR(req->answer) : NULL;
        return 0;
}

int oai_target_resolve(const Cli *cli, const char *name, OaiTarget *ret) {
        _cleanup_(json_object_putp) json_object *models = NULL, *vm = NULL;
        _cleanup_free_ char *path = NULL, *vm_path = NULL, *list = NULL, *model = NULL;
        _cleanup_strv_free_ char **names = NULL;
        json_object *data;
        size_t n = 0;
        const char *explicit;
        int r;

        /* "model:NAME" and "vm:NAME" say which it is: no lookup, no ambiguity. */
        explicit = startswith(name, "model:");
        if (explicit) {
                model = strdup(explicit);
                path = strdup("");
                if (!model || !path)
                        return log_oom();
                *ret = (OaiTarget) { .prefix = TAKE_PTR(path), .model = TAKE_PTR(model) };
                return 0;
        }
        explicit = startswith(name, "vm:");
        if (explicit)
                return oai_target_for_vm(explicit, ret);

        r = oai_get(cli, "/v1/models", &models);
        if (r < 0)
                return r;
        if (json_object_object_get_ex(models, "data", &data) && json_object_is_type(data, json_type_array))
                n = json_object_array_length(data);
        for (size_t i = 0; i < n; i++) {
                json_object *id;

                if (!json_object_object_get_ex(json_object_array_get_idx(data, i), "id", &id) ||
                    !json_object_is_type(id, json_type_string))
                        continue;
                if (streq(json_object_get_string(id), name)) {
                        model = strdup(name);
                        path = strdup("");
                        if (!model || !path)
                                return log_oom();
                        *ret = (OaiTarget) { .prefix = TAKE_PTR(path), .model = TAKE_PTR(model) };
                        return 0;
                }
                if (strv_extend(&names, json_object_get_string(id)) < 0)
                        return log_oom();
        }

        if (string_is_safe_name(name)) {
                r = cli_vm_path(name, NULL, &vm_path);
                if (r < 0)
                        return r;
                path = strjoin(ZVM_API_PREFIX, vm_path);
                if (!path)
                        return log_oom();
                r = oai_get(cli, path, &vm);
                if (r < 0)
                        return r;
                if (vm)
                        return oai_target_for_vm(name, ret);
        }
        list = names ? strv_join(names, ", ") : strdup("none");
        if (!list)
                return log_oom();
        return log_error_errno(SYNTHETIC_ERRNO(ENOENT), "no model and no VM named '%s' (models: %s)", name, list);
}

int oai_target_from_args(Cli *cli, int argc, char *argv[], OaiTarget *ret) {
        int r;

        r = verb_check_args(cli, argc, argv, 1, 1);
        if (r < 0)
                return r;
        return oai_target_resolve(cli, argv[optind], ret);
}
