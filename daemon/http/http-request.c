/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The HTTP server's requests: their life (references, suspend and resume,
 * the client hanging up) and the replies a handler gives. */

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fd-util.h"
#include "http-server.h"
#include "http-server-internal.h"
#include "log.h"
#include "string-util.h"
#include "time-util.h"

static const char internal_error_json[] =
        "{\"error\":\"Internal\",\"message\":\"Internal error while building the response.\"}\n";

/* ---- small helpers -------------------------------------------------------- */

void http_server_schedule_run(HttpServer *s) {
        int r;

        if (!s || !s->defer_source)
                return;
        r = sd_event_source_set_enabled(s->defer_source, SD_EVENT_ONESHOT);
        if (r < 0)
                log_debug_errno(r, "Failed to schedule HTTP processing: %m");
}

static struct MHD_Response *response_new_buffer(const char *data, size_t size, const char *content_type) {
        struct MHD_Response *resp;

        /* MHD_RESPMEM_MUST_COPY: MHD owns a copy, whatever happens to the response. */
        resp = MHD_create_response_from_buffer(size, (void *) data, MHD_RESPMEM_MUST_COPY);
        if (!resp)
                return NULL;
        if (content_type &&
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES) {
                MHD_destroy_response(resp);
                return NULL;
        }
        return resp;
}

static struct MHD_Response *response_new_json(json_object *o) {
        const char *s;
        _cleanup_free_ char *t = NULL;

        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
                return NULL;
        t = strjoin(s, "\n");
        if (!t)
                return NULL;
        return response_new_buffer(t, strlen(t), "application/json");
}

static json_object *error_json(ApiError e, const char *key, const char *message) {
        json_object *o = json_object_new_object();
        const char *name = api_error_to_string(e) ?: "Internal";

        if (!o)
                return NULL;
        if (json_object_object_add(o, "error", json_object_new_string(name)) < 0 ||
            json_object_object_add(o, "message", json_object_new_string(strempty(message))) < 0 ||
            (key && json_object_object_add(o, "key", json_object_new_string(key)) < 0)) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

static struct MHD_Response *response_new_error(ApiError e, const char *key, const char *message) {
        json_object *o = error_json(e, key, message);
        struct MHD_Response *resp;

        if (!o)
                return NULL;
        resp = response_new_json(o);
        json_object_put(o);
        if (resp && e == API_ERROR_UNAUTHORIZED &&
            MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"zvm\"") != MHD_YES) {
                MHD_destroy_response(resp);
                return NULL;
        }
        return resp;
}

/* Queues resp (consumed) with status, falling back to a 500; returns false
 * if not even that could be queued, and the connection has to be dropped. */
static bool connection_queue(struct MHD_Connection *c, unsigned status, struct MHD_Response *resp) {
        enum MHD_Result q = MHD_NO;

        if (resp) {
                q = MHD_queue_response(c, status, resp);
                MHD_destroy_response(resp);
        }
        if (q == MHD_YES)
                return true;

        resp = MHD_create_response_from_buffer(strlen(internal_error_json), (void *) internal_error_json,
                                               MHD_RESPMEM_PERSISTENT);
        if (!resp)
                return false;
        if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") == MHD_YES)
                q = MHD_queue_response(c, MHD_HTTP_INTERNAL_SERVER_ERROR, resp);
        MHD_destroy_response(resp);
        return q == MHD_YES;
}

enum MHD_Result http_connection_queue_error(struct MHD_Connection *c, ApiError e, const char *message) {
        return connection_queue(c, api_error_http_status(e), response_new_error(e, NULL, message)) ? MHD_YES : MHD_NO;
}

/* ---- requests ------------------------------------------------------------- */

void http_kv_free_many(HttpKV *kv, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(kv[i].key);
                free(kv[i].value);
        }
        free(kv);
}

void http_request_body_release(HttpRequest *req) {
        if (req->server) {
                assert_se(req->server->body_total >= req->body_allocated);
                req->server->body_total -= req->body_allocated;
        }
        req->body = mfree(req->body);
        req->body_allocated = req->body_size = 0;
}

void http_request_unlink(HttpRequest *req) {
        if (!req->server)
                return;
        if (req->prev)
                req->prev->next = req->next;
        else
                req->server->requests = req->next;
        if (req->next)
                req->next->prev = req->prev;
        req->prev = req->next = NULL;
}

HttpRequest *http_request_ref(HttpRequest *req) {
        req->n_ref++;
        return req;
}

void http_request_unref(HttpRequest *req) {
        if (!req)
                return;
        assert_se(req->n_ref > 0);
        if (--req->n_ref > 0)
                return;

        assert_se(!req->connection);
        http_request_body_release(req);
        req->body_fd = safe_close(req->body_fd);
        http_request_unlink(req);
        req->hup_source = sd_event_source_disable_unref(req->hup_source);
        http_kv_free_many(req->headers, req->n_headers);
        http_kv_free_many(req->args, req->n_args);
        free(req->reply_header_name);
        free(req->reply_header_value);
        free(req->method);
        free(req->path);
        free(req);
}

HttpRequest *http_request_new(HttpServer *s, struct MHD_Connection *c, const char *uri, bool tcp) {
        HttpRequest *req;

        req = calloc(1, sizeof(*req));
        if (!req)
                return NULL;
        req->path = strndup(strempty(uri), strcspn(strempty(uri), "?"));
        if (!req->path)
                return mfree(req);

        req->n_ref = 1;                         /* the connection's */
        req->server = s;
        req->connection = c;
        req->tcp = tcp;
        req->grant = -ENXIO;
        req->reject = _API_ERROR_INVALID;
        req->body_fd = -1;

        req->next = s->requests;
        if (s->requests)
                s->requests->prev = req;
        s->requests = req;
        return req;
}

void http_request_mark_closed(HttpRequest *req) {
        http_closed_fn cb;

        if (req->closed)
                return;
        req->closed = true;
        req->hup_source = sd_event_source_disable_unref(req->hup_source);

        cb = req->closed_cb;
        if (cb && req->state == REQUEST_DISPATCHED) {
                http_request_ref(req);
                cb(req, req->closed_userdata);
                http_request_unref(req);
        }
}

void http_request_resume(HttpRequest *req) {
        if (!req->suspended)
                return;
        req->hup_source = sd_event_source_disable_unref(req->hup_source);
        req->suspended = false;
        assert_se(req->connection);
        MHD_resume_connection(req->connection);
        http_server_schedule_run(req->server);
}

static int on_hup(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        HttpRequest *req = userdata;

        log_debug("HTTP client of %s went away while its connection was suspended.", req->path);

        http_request_ref(req);
        req->hup_source = sd_event_source_disable_unref(req->hup_source);
        if (req->stream) {
                HttpStream *st = req->stream;

                st->dead = true;
                http_request_resume(req);            /* the reader ends the response with an error */
                http_stream_fire_closed(st);
        } else {
                http_request_resume(req);            /* the access handler refuses: MHD closes */
                http_request_mark_closed(req);
        }
        http_request_unref(req);
        return 0;
}

/* While suspended, MHD does not watch the socket: we do, for the client
 * closing it. EPOLLRDHUP (and the implied EPOLLHUP/EPOLLERR) only: data a
 * client pipelines meanwhile stays for MHD. */
void http_request_suspend(HttpRequest *req) {
        const union MHD_ConnectionInfo *info;
        int r;

        assert_se(req->connection && !req->suspended);
        MHD_suspend_connection(req->connection);
        req->suspended = true;

        info = MHD_get_connection_info(req->connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!info || !req->server) {
                log_debug("Cannot watch a suspended HTTP connection for disconnects.");
                return;
        }
        r = sd_event_add_io(req->server->event, &req->hup_source, info->connect_fd, EPOLLRDHUP, on_hup, req);
        if (r < 0)
                log_debug_errno(r, "Failed to watch a suspended HTTP connection for disconnects, ignoring: %m");
        else
                (void) sd_event_source_set_description(req->hup_source, "http-client-hup");
}

static void reply_deliver(HttpRequest *req, unsigned status, struct MHD_Response *resp) {
        if (req->closed || !req->connection) {
                if (resp)
                        MHD_destroy_response(resp);
                return;
        }
        if (!connection_queue(req->connection, status, resp))
                /* Not even a 500: the access handler returns MHD_NO on its next call. */
                req->close_connection = true;
        http_request_resume(req);
}

/* Whether the gate holds this reply; if so it keeps resp and the caller's
 * reference. */
static bool reply_hold(HttpRequest *req, unsigned status, struct MHD_Response *resp) {
        HttpServer *s = req->server;
        uint64_t ticket;

        if (!s || !s->reply_gate || req->stream || !req->method ||
            streq(req->method, "GET") || streq(req->method, "HEAD"))
                return false;
        ticket = s->reply_gate(s->reply_gate_userdata);
        if (ticket == 0)
                return false;
        req->held = true;
        req->held_status = status;
        req->held_resp = resp;
        req->held_ticket = ticket;
        return true;
}

/* Common end of every reply: resp (consumed, NULL if it could not be built)
 * replaces the caller's ownership of req. */
void http_request_finish_reply(HttpRequest *req, unsigned status, struct MHD_Response *resp) {
        assert_se(req->state == REQUEST_DISPATCHED);
        req->state = REQUEST_ANSWERED;

        if (resp && req->reply_header_name && !req->closed && req->connection)
                (void) MHD_add_response_header(resp, req->reply_header_name, req->reply_header_value);
        if (!req->closed && req->connection && reply_hold(req, status, resp))
                return;
        reply_deliver(req, status, resp);
        http_request_unref(req);                     /* the caller's reference */
}

void http_server_set_reply_gate(HttpServer *s, http_reply_gate_fn fn, void *userdata) {
        s->reply_gate = fn;
        s->reply_gate_userdata = userdata;
}

void http_server_release_replies(HttpServer *s, uint64_t done_ticket) {
        HttpRequest *req, *next;

        /* Delivering never runs MHD (resume only schedules a run), so the
         * list changes only by the unref of the request at hand. */
        for (req = s->requests; req; req = next) {
                next = req->next;
                if (!req->held || req->held_ticket > done_ticket)
                        continue;
                req->held = false;
                reply_deliver(req, req->held_status, TAKE_PTR(req->held_resp));
                http_request_unref(req);             /* the caller's reference */
        }
}

static bool status_is_valid(unsigned status) {
        return status >= 200 && status <= 599;
}

int http_request_reply_json(HttpRequest *r, unsigned status, json_object *body) {
        struct MHD_Response *resp = NULL;
        int ret = 0;

        if (!r) {
                json_object_put(body);
                return -EINVAL;
        }
        if (r->state != REQUEST_DISPATCHED) {   /* double reply: a bug, but not a crash */
                json_object_put(body);
                return -EALREADY;
        }

        if (!status_is_valid(status))
                ret = -EINVAL;
        else if (!r->closed && r->connection) {
                resp = body ? response_new_json(body) : NULL;
                if (!resp)
                        ret = body ? -ENOMEM : -EINVAL;
        }
        json_object_put(body);

        http_request_finish_reply(r, ret < 0 ? MHD_HTTP_INTERNAL_SERVER_ERROR : status, resp);
        return ret;
}

int http_request_try_reply_json(HttpRequest *r, unsigned status, json_object *body) {
        struct MHD_Response *resp;

        if (!r || !body || r->state != REQUEST_DISPATCHED || !status_is_valid(status) || r->closed || !r->connection)
                return http_request_reply_json(r, status, body);
        resp = response_new_json(body);
        json_object_put(body);
        if (!resp)
                return -ENOMEM;
        http_request_finish_reply(r, status, resp);
        return 0;
}

int http_request_reply_errorv(HttpRequest *r, ApiError e, const char *key, const char *fmt, va_list ap) {
        _cleanup_free_ char *message = NULL;
        struct MHD_Response *resp = NULL;
        int ret = 0;

        if (!r)
                return -EINVAL;
        if (r->state != REQUEST_DISPATCHED)
                return -EALREADY;

        if (!r->closed && r->connection) {
                if (!api_error_to_string(e))
                        e = API_ERROR_INTERNAL;
                if (fmt && vasprintf(&message, fmt, ap) < 0) {
                        message = NULL;
                        ret = -ENOMEM;
                } else {
                        resp = response_new_error(e, key, message);
                        if (!resp)
                                ret = -ENOMEM;
                }
        }

        http_request_finish_reply(r, api_error_http_status(e), resp);
        return ret;
}

int http_request_reply_error(HttpRequest *r, ApiError e, const char *key, const char *fmt, ...) {
        va_list ap;
        int ret;

        va_start(ap, fmt);
        ret = http_request_reply_errorv(r, e, key, fmt, ap);
        va_end(ap);
        return ret;
}

int http_request_reply_text(HttpRequest *r, unsigned status, const char *content_type, const char *data, size_t size) {
        struct MHD_Response *resp = NULL;
        int ret = 0;

        if (!r)
                return -EINVAL;
        if (r->state != REQUEST_DISPATCHED)
                return -EALREADY;

        if (!status_is_valid(status) || (!data && size > 0))
                ret = -EINVAL;
        else if (!r->closed && r->connection) {
                resp = response_new_buffer(data ?: "", size, content_type ?: "text/plain; charset=utf-8");
                if (!resp)
                        ret = -ENOMEM;
        }

        http_request_finish_reply(r, ret < 0 ? MHD_HTTP_INTERNAL_SERVER_ERROR : status, resp);
        return ret;
}

int http_request_set_reply_header(HttpRequest *r, const char *name, const char *value) {
        char *n, *v;

        if (!r || !name || !value || strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
                return -EINVAL;
        n = strdup(name);
        v = strdup(value);
        if (!n || !v) {
                free(n);
                free(v);
                return -ENOMEM;
        }
        free(r->reply_header_name);
        free(r->reply_header_value);
        r->reply_header_name = n;
        r->reply_header_value = v;
        return 0;
}

const char *http_request_method(HttpRequest *r) {
        return r ? strempty(r->method) : NULL;
}

const char *http_request_path(HttpRequest *r) {
        return r ? r->path : NULL;
}

const char *http_request_query(HttpRequest *r, const char *key) {
        if (!r || !key)
                return NULL;
        for (size_t i = 0; i < r->n_args; i++)
                if (streq(r->args[i].key, key))
                        return strempty(r->args[i].value);
        return NULL;
}

const char *http_request_header(HttpRequest *r, const char *name) {
        if (!r || !name)
                return NULL;
        for (size_t i = 0; i < r->n_headers; i++)
                if (strcasecmp(r->headers[i].key, name) == 0)
                        return strempty(r->headers[i].value);
        return NULL;
}

const char *http_request_body(HttpRequest *r, size_t *ret_size) {
        if (ret_size)
                *ret_size = r && r->body ? r->body_size : 0;
        if (!r)
                return NULL;
        return r->body ?: "";
}

int http_request_take_body_fd(HttpRequest *r, uint64_t *ret_size) {
        if (!r || r->body_fd < 0)
                return -EBADF;
        if (ret_size)
                *ret_size = r->body_fd_size;
        return TAKE_FD(r->body_fd);
}

void http_server_set_body_sink(HttpServer *s, http_body_sink_fn fn, void *userdata) {
        if (!s)
                return;
        s->body_sink = fn;
        s->body_sink_userdata = userdata;
}

bool http_request_is_tcp(HttpRequest *r) {
        return r && r->tcp;
}

int http_request_grant(HttpRequest *r) {
        assert_return(r, -EINVAL);
        return r->tcp ? r->grant : -ENXIO;
}

int http_request_peer_uid(HttpRequest *r, uid_t *ret) {
        assert_return(r, -EINVAL);
        assert_return(ret, -EINVAL);
        if (r->tcp || !r->have_peer)
                return -ENXIO;
        *ret = r->peer_uid;
        return 0;
}

bool http_request_is_closed(HttpRequest *r) {
        return !r || r->closed || !r->connection;
}

void http_request_set_closed_handler(HttpRequest *r, http_closed_fn fn, void *userdata) {
        if (!r)
                return;
        r->closed_cb = fn;
        r->closed_userdata = userdata;
}

