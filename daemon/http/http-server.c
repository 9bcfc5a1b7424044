/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * How MHD is driven (libmicrohttpd 0.9.75):
 *
 * Each listener is one MHD daemon started with MHD_USE_EPOLL (no internal
 * thread) | MHD_ALLOW_SUSPEND_RESUME (implies MHD_USE_ITC) and our own
 * listening socket (MHD_OPTION_LISTEN_SOCKET; MHD 0.9.75 recognises AF_UNIX
 * sockets via SO_DOMAIN and skips its TCP-only socket options for them).
 * MHD's epoll fd is an sd-event io source; a per-listener timer follows
 * MHD_get_timeout() (idle timeouts, and 0 when MHD has buffered work left);
 * a defer source runs MHD_run() after we resumed a connection from outside
 * MHD_run() (e.g. a reply from a VM state change). MHD only adds the listening
 * socket to its epoll set inside MHD_run(), so a new listener also schedules
 * a first run, and so does every closed connection (at the connection limit
 * MHD re-adds the listening socket only inside its next MHD_run(), and
 * clients waiting in the backlog would not trigger that run).
 *
 * Request flow: the URI log callback, which MHD calls with the raw request
 * target before it decodes anything, allocates the HttpRequest (so we keep
 * the %-encoded path) and makes MHD report the request's end through
 * NOTIFY_COMPLETED in every case. The access handler authenticates, collects
 * the body, then calls the handler. If the handler did not reply, the
 * connection is suspended; the reply queues the response on the suspended
 * connection (allowed by MHD at any time) and resumes it.
 *
 * References: an HttpRequest is held by its connection (from the URI
 * callback until NOTIFY_COMPLETED), by the caller (from the handler call
 * until the reply) and by its stream. An HttpStream is held by the caller
 * (until http_stream_close()) and by its MHD response (until MHD frees it).
 */

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

#include <microhttpd.h>

#include "fd-util.h"
#include "http-server.h"
#include "log.h"
#include "string-util.h"
#include "time-util.h"

/* Once a body is over the limit we read and drop the rest (MHD cannot answer
 * in the middle of an upload), but not forever. */
#define HTTP_BODY_DISCARD_MAX (16U * 1024U * 1024U)
#define HTTP_STREAM_BLOCK_SIZE 4096U

typedef struct HttpListener {
        HttpServer *server;
        struct MHD_Daemon *daemon;
        sd_event_source *io_source;
        sd_event_source *time_source;
        bool tcp;
        http_auth_fn auth;
        void *auth_userdata;
        char *unix_path;                        /* removed again on free */
        char *tls_cert, *tls_key;               /* PEM, NULL for plain HTTP */
        int port;
} HttpListener;

/* Per connection, from MHD's NOTIFY_CONNECTION STARTED to CLOSED (its
 * socket context). */
typedef struct HttpConnection {
        HttpListener *listener;
        int fd;                                 /* MHD's; only shutdown(), never closed by us */
        uid_t peer_uid;                         /* unix socket: SO_PEERCRED */
        bool have_peer;
        sd_event_source *deadline;              /* TCP: until a request passes the token check */
} HttpConnection;

typedef struct HttpKV {
        char *key;
        char *value;                            /* NULL for "?key" without '=' */
} HttpKV;

typedef enum RequestState {
        REQUEST_NEW,                            /* URI seen, access handler not yet called */
        REQUEST_RECEIVING,                      /* authenticated, reading the body */
        REQUEST_DISPATCHED,                     /* handler called, the caller owes the reply */
        REQUEST_ANSWERED,                       /* reply queued or dropped */
} RequestState;

struct HttpRequest {
        unsigned n_ref;
        HttpServer *server;                     /* NULL once http_server_free() detached it */
        HttpRequest *prev, *next;               /* server->requests */
        struct MHD_Connection *connection;      /* NULL once MHD is done with it */
        bool tcp;
        RequestState state;
        int grant;                              /* TCP: the auth hook's answer */
        uid_t peer_uid;                         /* unix socket */
        bool have_peer;

        char *method;
        char *path;
        HttpKV *headers, *args;
        size_t n_headers, n_args;

        char *body;
        size_t body_size, body_allocated;
        size_t body_discarded;
        ApiError reject;                        /* _API_ERROR_INVALID, or why the body is dropped */
        const char *reject_message;             /* static, NULL: reject_message(reject) */
        int body_fd;                            /* streamed body (http_server_set_body_sink()), or -1 */
        uint64_t body_fd_size, body_fd_max;
        char *reply_header_name, *reply_header_value;   /* one extra header on the reply */

        bool suspended;                         /* we suspended the MHD connection */
        bool close_connection;                  /* no reply possible: make MHD drop the connection */
        bool closed;                            /* client gone: closed handler fired */
        sd_event_source *hup_source;            /* watches the socket while suspended */
        http_closed_fn closed_cb;
        void *closed_userdata;

        HttpStream *stream;                     /* weak; the stream holds a reference on us */
};

struct HttpStream {
        unsigned n_ref;
        HttpRequest *request;                   /* strong */
        char *buf;
        size_t offset, size, allocated;         /* unsent data is buf[offset..size) */
        bool dead;                              /* client gone or dropped: no more data */
        bool caller_closed;
        bool closed_fired;
        http_stream_closed_fn closed_cb;
        void *closed_userdata;
};

struct HttpServer {
        sd_event *event;
        http_handler_fn handler;
        void *userdata;
        HttpListener *listeners[HTTP_LISTENERS_MAX];
        size_t n_listeners;
        sd_event_source *defer_source;
        HttpRequest *requests;                  /* every live request */
        size_t body_total;                      /* bytes allocated for bodies */
        unsigned idle_timeout;
        http_note_fn note;                      /* says what runs, for the loop's timing */
        http_body_sink_fn body_sink;
        void *body_sink_userdata;
};

static const char internal_error_json[] =
        "{\"error\":\"Internal\",\"message\":\"Internal error while building the response.\"}\n";

/* ---- small helpers -------------------------------------------------------- */

static void server_schedule_run(HttpServer *s) {
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

static enum MHD_Result connection_queue_error(struct MHD_Connection *c, ApiError e, const char *message) {
        return connection_queue(c, api_error_http_status(e), response_new_error(e, NULL, message)) ? MHD_YES : MHD_NO;
}

/* ---- requests ------------------------------------------------------------- */

static void kv_free_many(HttpKV *kv, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(kv[i].key);
                free(kv[i].value);
        }
        free(kv);
}

static void request_body_release(HttpRequest *req) {
        if (req->server) {
                assert_se(req->server->body_total >= req->body_allocated);
                req->server->body_total -= req->body_allocated;
        }
        req->body = mfree(req->body);
        req->body_allocated = req->body_size = 0;
}

static void request_unlink(HttpRequest *req) {
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

static HttpRequest *request_ref(HttpRequest *req) {
        req->n_ref++;
        return req;
}

static void request_unref(HttpRequest *req) {
        if (!req)
                return;
        assert_se(req->n_ref > 0);
        if (--req->n_ref > 0)
                return;

        assert_se(!req->connection);
        request_body_release(req);
        req->body_fd = safe_close(req->body_fd);
        request_unlink(req);
        req->hup_source = sd_event_source_disable_unref(req->hup_source);
        kv_free_many(req->headers, req->n_headers);
        kv_free_many(req->args, req->n_args);
        free(req->reply_header_name);
        free(req->reply_header_value);
        free(req->method);
        free(req->path);
        free(req);
}

static HttpRequest *request_new(HttpServer *s, struct MHD_Connection *c, const char *uri, bool tcp) {
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

static void request_mark_closed(HttpRequest *req) {
        http_closed_fn cb;

        if (req->closed)
                return;
        req->closed = true;
        req->hup_source = sd_event_source_disable_unref(req->hup_source);

        cb = req->closed_cb;
        if (cb && req->state == REQUEST_DISPATCHED) {
                request_ref(req);
                cb(req, req->closed_userdata);
                request_unref(req);
        }
}

static void request_resume(HttpRequest *req) {
        if (!req->suspended)
                return;
        req->hup_source = sd_event_source_disable_unref(req->hup_source);
        req->suspended = false;
        assert_se(req->connection);
        MHD_resume_connection(req->connection);
        server_schedule_run(req->server);
}

static void stream_fire_closed(HttpStream *st);

static int on_hup(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        HttpRequest *req = userdata;

        log_debug("HTTP client of %s went away while its connection was suspended.", req->path);

        request_ref(req);
        req->hup_source = sd_event_source_disable_unref(req->hup_source);
        if (req->stream) {
                HttpStream *st = req->stream;

                st->dead = true;
                request_resume(req);            /* the reader ends the response with an error */
                stream_fire_closed(st);
        } else {
                request_resume(req);            /* the access handler refuses: MHD closes */
                request_mark_closed(req);
        }
        request_unref(req);
        return 0;
}

/* While suspended, MHD does not watch the socket: we do, for the client
 * closing it. EPOLLRDHUP (and the implied EPOLLHUP/EPOLLERR) only: data a
 * client pipelines meanwhile stays for MHD. */
static void request_suspend(HttpRequest *req) {
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

/* Common end of every reply: resp (consumed, NULL if it could not be built)
 * replaces the caller's ownership of req. */
static void request_finish_reply(HttpRequest *req, unsigned status, struct MHD_Response *resp) {
        assert_se(req->state == REQUEST_DISPATCHED);
        req->state = REQUEST_ANSWERED;

        if (req->closed || !req->connection) {
                if (resp)
                        MHD_destroy_response(resp);
        } else {
                if (resp && req->reply_header_name)
                        (void) MHD_add_response_header(resp, req->reply_header_name, req->reply_header_value);
                if (!connection_queue(req->connection, status, resp))
                        /* Not even a 500: the access handler returns MHD_NO on its next call. */
                        req->close_connection = true;
                request_resume(req);
        }

        request_unref(req);                     /* the caller's reference */
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

        request_finish_reply(r, ret < 0 ? MHD_HTTP_INTERNAL_SERVER_ERROR : status, resp);
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
        request_finish_reply(r, status, resp);
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

        request_finish_reply(r, api_error_http_status(e), resp);
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

        request_finish_reply(r, ret < 0 ? MHD_HTTP_INTERNAL_SERVER_ERROR : status, resp);
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

/* ---- streams -------------------------------------------------------------- */

static void stream_unref(HttpStream *st) {
        if (!st)
                return;
        assert_se(st->n_ref > 0);
        if (--st->n_ref > 0)
                return;

        if (st->request) {
                if (st->request->stream == st)
                        st->request->stream = NULL;
                request_unref(st->request);
        }
        free(st->buf);
        free(st);
}

static void stream_fire_closed(HttpStream *st) {
        http_stream_closed_fn cb;

        st->dead = true;
        if (st->closed_fired || st->caller_closed)
                return;
        st->closed_fired = true;

        cb = st->closed_cb;
        if (cb) {
                st->n_ref++;
                cb(st, st->closed_userdata);
                stream_unref(st);
        }
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
        HttpStream *st = cls;
        HttpRequest *req = st->request;
        size_t n;

        if (st->dead || !req->connection)
                return MHD_CONTENT_READER_END_WITH_ERROR;

        if (st->size > st->offset) {
                n = MIN(max, st->size - st->offset);
                memcpy(buf, st->buf + st->offset, n);
                st->offset += n;
                if (st->offset == st->size)
                        st->offset = st->size = 0;
                return (ssize_t) n;
        }

        if (st->caller_closed)
                return MHD_CONTENT_READER_END_OF_STREAM;

        /* Nothing to send: rather than returning 0 and being polled, park the
         * connection (MHD allows suspending from a content reader) until
         * http_stream_send() or http_stream_close() resumes it. */
        request_suspend(req);
        return 0;
}

static void stream_response_free(void *cls) {
        stream_unref(cls);
}

int http_request_reply_stream(HttpRequest *r, const char *content_type, HttpStream **ret) {
        struct MHD_Response *resp;
        HttpStream *st;

        if (!r)
                return -EINVAL;
        if (r->state != REQUEST_DISPATCHED)
                return -EALREADY;
        if (!ret) {
                (void) http_request_reply_error(r, API_ERROR_INTERNAL, NULL, "No stream.");
                return -EINVAL;
        }

        st = calloc(1, sizeof(*st));
        if (!st) {
                request_finish_reply(r, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL);
                return -ENOMEM;
        }
        st->n_ref = 1;                          /* the caller's */
        st->request = request_ref(r);

        if (r->closed || !r->connection) {
                /* The request's closed handler already told the caller. */
                st->dead = st->closed_fired = true;
                request_finish_reply(r, 0, NULL);
                *ret = st;
                return 0;
        }

        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, HTTP_STREAM_BLOCK_SIZE,
                                                 stream_read, st, stream_response_free);
        if (!resp) {
                stream_unref(st);
                request_finish_reply(r, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL);
                return -ENOMEM;
        }
        st->n_ref++;                            /* the response's, dropped by stream_response_free() */

        if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                    content_type ?: "text/event-stream") != MHD_YES ||
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache") != MHD_YES ||
            /* The connection has no idle timeout any more: do not reuse it. */
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES) {
                MHD_destroy_response(resp);     /* drops the response's reference */
                stream_unref(st);
                request_finish_reply(r, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL);
                return -ENOMEM;
        }

        r->stream = st;
        /* An event stream is idle by nature; its queue bound protects us. */
        (void) MHD_set_connection_option(r->connection, MHD_CONNECTION_OPTION_TIMEOUT, 0U);
        request_finish_reply(r, MHD_HTTP_OK, resp);

        *ret = st;
        return 0;
}

static void stream_wake(HttpStream *st) {
        HttpRequest *req = st->request;

        if (req->connection && req->suspended)
                request_resume(req);
}

int http_stream_send(HttpStream *st, const char *data, size_t size) {
        size_t pending;

        if (!st || (!data && size > 0))
                return -EINVAL;
        if (st->dead || st->caller_closed || !st->request->connection)
                return -EPIPE;
        if (size == 0)
                return 0;

        pending = st->size - st->offset;
        if (size > HTTP_STREAM_QUEUE_MAX - pending) {
                log_debug("HTTP stream client does not keep up (%zu bytes queued), dropping it.", pending);
                st->dead = true;                /* the reader fails the response: MHD closes */
                stream_wake(st);
                return -ENOBUFS;
        }

        if (st->size + size > st->allocated && st->offset > 0) {
                memmove(st->buf, st->buf + st->offset, pending);
                st->offset = 0;
                st->size = pending;
        }
        if (st->size + size > st->allocated) {
                size_t a = MIN(MAX(st->size + size, st->allocated * 2), (size_t) HTTP_STREAM_QUEUE_MAX);
                char *b = realloc(st->buf, a);

                if (!b)
                        return -ENOMEM;
                st->buf = b;
                st->allocated = a;
        }
        memcpy(st->buf + st->size, data, size);
        st->size += size;

        stream_wake(st);
        return 0;
}

bool http_stream_is_closed(HttpStream *st) {
        return !st || st->dead || !st->request->connection;
}

size_t http_stream_queued(HttpStream *st) {
        return st ? st->size - st->offset : 0;
}

void http_stream_set_closed_handler(HttpStream *st, http_stream_closed_fn fn, void *userdata) {
        if (!st)
                return;
        st->closed_cb = fn;
        st->closed_userdata = userdata;
}

void http_stream_close(HttpStream *st) {
        if (!st)
                return;
        if (st->caller_closed)                  /* double close: a bug, but not a crash */
                return;
        st->caller_closed = true;
        st->closed_cb = NULL;
        stream_wake(st);                        /* the reader ends the response once drained */
        stream_unref(st);
}

/* ---- MHD callbacks -------------------------------------------------------- */

_printf_(2, 0)
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
        _cleanup_free_ char *m = NULL;

        if (log_get_max_level() < LOG_DEBUG)
                return;
        if (vasprintf(&m, fmt, ap) < 0)
                return;
        log_debug("libmicrohttpd: %s", strstrip(m));
}

static HttpConnection *connection_context(struct MHD_Connection *c) {
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

        return info ? info->socket_context : NULL;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c) {
        HttpListener *l = cls;
        HttpConnection *conn = connection_context(c);
        HttpRequest *req;

        /* NULL (OOM) makes the access handler drop the connection. */
        req = request_new(l->server, c, uri, l->tcp);
        if (req && conn && conn->have_peer) {
                req->peer_uid = conn->peer_uid;
                req->have_peer = true;
        }
        return req;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
        HttpRequest *req = *con_cls;

        *con_cls = NULL;
        if (!req)
                return;

        /* Not necessarily a failure: after "Expect: 100-continue" MHD 0.9.75
         * finishes the request only on the next event, and if that is the
         * client closing, reports WITH_ERROR although the reply was sent. */
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
                log_debug("HTTP request %s %s: connection ended with MHD termination code %i.",
                          strnull(req->method), req->path, (int) toe);

        req->hup_source = sd_event_source_disable_unref(req->hup_source);
        req->suspended = false;
        req->connection = NULL;

        if (req->stream) {
                if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK || !req->stream->caller_closed)
                        stream_fire_closed(req->stream);
        } else if (req->state == REQUEST_DISPATCHED)
                request_mark_closed(req);

        request_unref(req);                     /* the connection's reference */
}

static HttpConnection *connection_free(HttpConnection *conn) {
        if (!conn)
                return NULL;
        sd_event_source_disable_unref(conn->deadline);
        return mfree(conn);
}

/* A TCP client that has not sent a request with a good token by now is
 * dropped, however slowly it trickles bytes: shutdown() (never close(), the
 * fd is MHD's) makes MHD see the end of the stream and close it. */
static int on_connection_deadline(sd_event_source *source, uint64_t usec, void *userdata) {
        HttpConnection *conn = userdata;

        log_debug("HTTP: TCP client sent no authenticated request within %us, dropping it.",
                  HTTP_TCP_AUTH_DEADLINE_SEC);
        (void) shutdown(conn->fd, SHUT_RDWR);
        conn->deadline = sd_event_source_disable_unref(conn->deadline);
        server_schedule_run(conn->listener->server);
        return 0;
}

static void connection_started(HttpListener *l, struct MHD_Connection *c, void **socket_context) {
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        HttpConnection *conn;
        int r;

        conn = calloc(1, sizeof(*conn));
        if (!conn || !info) {
                /* Without its context a unix connection has no peer (every
                 * role check refuses it) and a TCP one no deadline, only
                 * MHD's idle timeout: degraded, not unsafe. */
                free(conn);
                return;
        }
        conn->listener = l;
        conn->fd = info->connect_fd;
        if (!l->tcp) {
                struct ucred cred;
                socklen_t len = sizeof(cred);

                if (getsockopt(conn->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) >= 0 && len == sizeof(cred)) {
                        conn->peer_uid = cred.uid;
                        conn->have_peer = true;
                }
        } else {
                r = sd_event_add_time_relative(l->server->event, &conn->deadline, CLOCK_MONOTONIC,
                                               HTTP_TCP_AUTH_DEADLINE_SEC * USEC_PER_SEC, USEC_PER_SEC / 10,
                                               on_connection_deadline, conn);
                if (r < 0)
                        log_debug_errno(r, "HTTP: cannot arm a connection deadline: %m");
                else
                        (void) sd_event_source_set_description(conn->deadline, "http-auth-deadline");
        }
        *socket_context = conn;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
        HttpListener *l = cls;

        if (code == MHD_CONNECTION_NOTIFY_STARTED) {
                connection_started(l, c, socket_context);
                return;
        }

        /* At the connection limit MHD takes the listening socket out of its
         * epoll set, and puts it back only at the start of its next
         * MHD_run(); a backlog of waiting clients does not wake us for that
         * run, so ask for it whenever a connection goes away. */
        if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
                *socket_context = connection_free(*socket_context);
                server_schedule_run(l->server);
        }
}

/* The auth hook's grant (>= 0) for the request's bearer token, or -EACCES
 * (or what the hook said). 0 on the unix socket. */
static int listener_authorize(HttpListener *l, struct MHD_Connection *c) {
        _cleanup_free_ char *token = NULL;
        const char *h, *p;
        size_t n;

        if (!l->tcp)
                return 0;

        h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        if (!h || strncasecmp(h, "Bearer", 6) != 0 || !strchr(" \t", h[6]) || h[6] == '\0')
                return -EACCES;
        p = h + 6 + strspn(h + 6, " \t");
        n = strcspn(p, " \t");
        if (n == 0 || p[n + strspn(p + n, " \t")] != '\0')
                return -EACCES;

        token = strndup(p, n);
        if (!token)
                return -ENOMEM;
        return l->auth(token, l->auth_userdata);
}

/* Grows the body buffer to hold n more bytes plus a NUL, charging it to the
 * server's budget. Returns the ApiError to answer with, or -1 if fine. */
static int request_body_reserve(HttpRequest *req, size_t n) {
        HttpServer *s = req->server;
        size_t need, a;
        char *b;

        if (n > HTTP_BODY_MAX - req->body_size)
                return API_ERROR_PAYLOAD_TOO_LARGE;
        need = req->body_size + n + 1;
        if (need <= req->body_allocated)
                return -1;

        a = MIN(MAX(need, req->body_allocated * 2), (size_t) HTTP_BODY_MAX + 1);
        if (a - req->body_allocated > HTTP_BODY_TOTAL_MAX - s->body_total)
                return API_ERROR_UNAVAILABLE;

        b = realloc(req->body, a);
        if (!b)
                return API_ERROR_INTERNAL;
        s->body_total += a - req->body_allocated;
        req->body = b;
        req->body_allocated = a;
        return -1;
}

static const char *reject_message(ApiError e) {
        switch (e) {
        case API_ERROR_PAYLOAD_TOO_LARGE:
                return "Request body larger than 1 MiB.";
        case API_ERROR_UNAVAILABLE:
                return "Server busy (too much request data in flight), try again.";
        default:
                return "Out of memory.";
        }
}

static ApiError body_sink_error(int r) {
        switch (r) {
        case -EFBIG:
                return API_ERROR_PAYLOAD_TOO_LARGE;
        case -ENOSPC:
                return API_ERROR_INSUFFICIENT_STORAGE;
        case -EINVAL:
        case -ENODATA:
                return API_ERROR_BAD_REQUEST;
        case -EBUSY:
                return API_ERROR_CONFLICT;
        case -EAGAIN:
                return API_ERROR_UNAVAILABLE;
        default:
                return API_ERROR_INTERNAL;
        }
}

static enum MHD_Result request_begin(HttpListener *l, HttpRequest *req, struct MHD_Connection *c, const char *method) {
        HttpConnection *conn;
        const char *cl;
        uint64_t length;
        int e, r;

        req->method = strdup(strempty(method));
        if (!req->method) {
                req->state = REQUEST_ANSWERED;
                return connection_queue_error(c, API_ERROR_INTERNAL, "Out of memory.");
        }
        req->state = REQUEST_RECEIVING;

        r = listener_authorize(l, c);
        if (r < 0) {
                req->state = REQUEST_ANSWERED;
                return connection_queue_error(c, API_ERROR_UNAUTHORIZED,
                                              r == -EKEYEXPIRED ? "The token has expired." :
                                              "This listener requires \"Authorization: Bearer <token>\" with a valid token.");
        }
        req->grant = r;
        conn = connection_context(c);
        if (conn)
                conn->deadline = sd_event_source_disable_unref(conn->deadline);

        /* With a Content-Length we can answer before the body is sent (and
         * before MHD sends "100 Continue"); MHD then closes the connection. */
        cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (!cl || safe_atou64(cl, &length) < 0)
                length = UINT64_MAX;
        if (l->server->body_sink) {
                const char *why = NULL;

                r = l->server->body_sink(req, length, &req->body_fd, &req->body_fd_max, &why,
                                         l->server->body_sink_userdata);
                if (r < 0) {
                        req->state = REQUEST_ANSWERED;
                        return connection_queue_error(c, body_sink_error(r), why ?: "Cannot take this body.");
                }
                if (r > 0)
                        return MHD_YES;         /* streamed: the sink checked the length */
        }
        if (length != UINT64_MAX && length > 0) {
                e = length > HTTP_BODY_MAX ? API_ERROR_PAYLOAD_TOO_LARGE : request_body_reserve(req, (size_t) length);
                if (e >= 0) {
                        req->state = REQUEST_ANSWERED;
                        request_body_release(req);
                        return connection_queue_error(c, e, reject_message(e));
                }
        }
        return MHD_YES;
}

/* A streamed body goes straight to its file. Writes to a local regular file
 * cost page-cache time, not a wait on a peer. */
static void request_body_write(HttpRequest *req, const char *data, size_t n) {
        ssize_t k;

        if (n > req->body_fd_max - req->body_fd_size) {
                req->reject = API_ERROR_PAYLOAD_TOO_LARGE;
                req->reject_message = "Request body larger than the upload limit.";
        }
        while (req->reject < 0 && n > 0) {
                k = write(req->body_fd, data, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        req->reject = k < 0 && (errno == ENOSPC || errno == EDQUOT) ? API_ERROR_INSUFFICIENT_STORAGE
                                                                                    : API_ERROR_INTERNAL;
                        req->reject_message = req->reject == API_ERROR_INSUFFICIENT_STORAGE
                                                      ? "No space left for the upload."
                                                      : "Cannot write the upload.";
                        break;
                }
                data += k;
                n -= (size_t) k;
                req->body_fd_size += (uint64_t) k;
        }
        if (req->reject >= 0)
                req->body_fd = safe_close(req->body_fd);
}

static enum MHD_Result request_body_append(HttpRequest *req, const char *data, size_t n) {
        int e;

        if (req->body_fd >= 0) {
                request_body_write(req, data, n);
                if (req->reject < 0)
                        return MHD_YES;
        }

        if (req->reject < 0) {
                e = request_body_reserve(req, n);
                if (e < 0) {
                        memcpy(req->body + req->body_size, data, n);
                        req->body_size += n;
                        return MHD_YES;
                }
                req->reject = e;
                request_body_release(req);
        }

        /* Without a (truthful) Content-Length we learn about the size too
         * late to answer now: drop the rest, answer at the end. */
        req->body_discarded += n;
        return req->body_discarded > HTTP_BODY_DISCARD_MAX ? MHD_NO : MHD_YES;
}

typedef struct KvCollect {
        HttpKV *kv;
        size_t n, max;
        bool oom;
} KvCollect;

static enum MHD_Result kv_collect(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
        KvCollect *ctx = cls;
        HttpKV *kv;

        if (ctx->n >= ctx->max)
                return MHD_NO;
        kv = &ctx->kv[ctx->n];
        kv->key = strdup(strempty(key));
        kv->value = value ? strdup(value) : NULL;
        if (!kv->key || (value && !kv->value)) {
                free(kv->key);
                free(kv->value);
                ctx->oom = true;
                return MHD_NO;
        }
        ctx->n++;
        return MHD_YES;
}

/* Copies MHD's values of one kind: they live in the connection's memory
 * pool, which is gone once the client is, while ours live as long as the
 * request. Bounded by MHD's per-connection memory limit. */
static int kv_copy(struct MHD_Connection *c, enum MHD_ValueKind kind, HttpKV **ret, size_t *ret_n) {
        KvCollect ctx = {};
        int n;

        n = MHD_get_connection_values(c, kind, NULL, NULL);
        if (n <= 0) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        ctx.max = (size_t) n;
        ctx.kv = calloc(ctx.max, sizeof(HttpKV));
        if (!ctx.kv)
                return -ENOMEM;
        (void) MHD_get_connection_values(c, kind, kv_collect, &ctx);
        if (ctx.oom) {
                kv_free_many(ctx.kv, ctx.n);
                return -ENOMEM;
        }
        *ret = ctx.kv;
        *ret_n = ctx.n;
        return 0;
}

static enum MHD_Result request_dispatch(HttpListener *l, HttpRequest *req, struct MHD_Connection *c) {
        HttpServer *s = l->server;

        if (req->reject >= 0) {
                req->state = REQUEST_ANSWERED;
                return connection_queue_error(c, req->reject, req->reject_message ?: reject_message(req->reject));
        }

        if (kv_copy(c, MHD_HEADER_KIND, &req->headers, &req->n_headers) < 0 ||
            kv_copy(c, MHD_GET_ARGUMENT_KIND, &req->args, &req->n_args) < 0) {
                req->state = REQUEST_ANSWERED;
                return connection_queue_error(c, API_ERROR_INTERNAL, "Out of memory.");
        }
        if (req->body)
                req->body[req->body_size] = '\0';

        req->state = REQUEST_DISPATCHED;
        request_ref(req);                       /* the caller's, dropped by the reply */
        request_ref(req);                       /* ours, for the duration of the call */
        if (s->note)
                s->note("HTTP %s %s", strnull(req->method), strnull(req->path));
        s->handler(req, s->userdata);
        if (s->note)
                s->note("HTTP I/O");

        if (req->state == REQUEST_DISPATCHED && !req->closed)
                request_suspend(req);           /* the reply will come later */

        enum MHD_Result result = req->close_connection ? MHD_NO : MHD_YES;
        request_unref(req);
        return result;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size,
                                 void **con_cls) {
        HttpListener *l = cls;
        HttpRequest *req = *con_cls;

        if (!req)
                return MHD_NO;

        switch (req->state) {

        case REQUEST_NEW:
                return request_begin(l, req, c, method);

        case REQUEST_RECEIVING:
                if (*upload_data_size > 0) {
                        enum MHD_Result q = request_body_append(req, upload_data, *upload_data_size);
                        *upload_data_size = 0;
                        return q;
                }
                return request_dispatch(l, req, c);

        default:
                /* Called again after a resume without a queued response: the
                 * client went away, the server shuts down, or no reply could
                 * be built. Dropping the connection is all that is left. */
                return MHD_NO;
        }
}

/* ---- listeners ------------------------------------------------------------ */

static void listener_arm_timer(HttpListener *l) {
        MHD_UNSIGNED_LONG_LONG ms = 0;
        uint64_t now, usec;
        int r;

        if (MHD_get_timeout(l->daemon, &ms) != MHD_YES) {
                (void) sd_event_source_set_enabled(l->time_source, SD_EVENT_OFF);
                return;
        }

        r = sd_event_now(l->server->event, CLOCK_MONOTONIC, &now);
        if (r < 0) {
                log_debug_errno(r, "Failed to read the event loop clock: %m");
                return;
        }
        usec = ms > (UINT64_MAX - now) / 1000U ? UINT64_MAX - 1 : now + ms * 1000U;

        r = sd_event_source_set_time(l->time_source, usec);
        if (r >= 0)
                r = sd_event_source_set_enabled(l->time_source, SD_EVENT_ONESHOT);
        if (r < 0)
                log_debug_errno(r, "Failed to arm the HTTP timer: %m");
}

static void listener_run(HttpListener *l) {
        if (l->server->note)
                l->server->note("HTTP I/O");
        if (MHD_run(l->daemon) != MHD_YES)
                log_debug("MHD_run() failed.");
        listener_arm_timer(l);
}

static int on_listener_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        listener_run(userdata);
        return 0;
}

static int on_listener_time(sd_event_source *source, uint64_t usec, void *userdata) {
        listener_run(userdata);
        return 0;
}

static int on_defer(sd_event_source *source, void *userdata) {
        HttpServer *s = userdata;

        for (size_t i = 0; i < s->n_listeners; i++)
                listener_run(s->listeners[i]);
        return 0;
}

static HttpListener *listener_free(HttpListener *l) {
        if (!l)
                return NULL;
        l->io_source = sd_event_source_disable_unref(l->io_source);
        l->time_source = sd_event_source_disable_unref(l->time_source);
        if (l->daemon)
                MHD_stop_daemon(l->daemon);     /* also closes the listening socket */
        if (l->unix_path)
                (void) unlink(l->unix_path);
        free(l->unix_path);
        free(l->tls_cert);
        erase_and_free(l->tls_key);
        return mfree(l);
}

/* Takes fd (a bound, listening, non-blocking socket) in every case. */
static int listener_start(HttpServer *s, int fd, bool tcp, bool ipv6, int port, const HttpTls *tls,
                          http_auth_fn auth, void *auth_userdata, const char *unix_path) {
        _cleanup_close_ int lfd = fd;
        const union MHD_DaemonInfo *info;
        HttpListener *l;
        size_t n = 0;
        int r;

        if (s->n_listeners >= HTTP_LISTENERS_MAX)
                return -ENOSPC;
        if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
                return -EOPNOTSUPP;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->server = s;
        l->tcp = tcp;
        l->auth = auth;
        l->auth_userdata = auth_userdata;
        l->port = port;
        if (tls) {
                l->tls_cert = strdup(tls->cert_pem);
                l->tls_key = strdup(tls->key_pem);
                if (!l->tls_cert || !l->tls_key) {
                        listener_free(l);
                        return -ENOMEM;
                }
        }

        struct MHD_OptionItem opts[16] = {};
#define OPT(o, v, p) opts[n++] = (struct MHD_OptionItem) { (o), (intptr_t) (v), (p) }
        OPT(MHD_OPTION_LISTEN_SOCKET, lfd, NULL);
        OPT(MHD_OPTION_CONNECTION_LIMIT, HTTP_CONNECTIONS_MAX, NULL);
        /* On TCP the idle timeout is also what ends a keep-alive connection
         * nobody uses: shorter there. */
        OPT(MHD_OPTION_CONNECTION_TIMEOUT, tcp ? MIN(s->idle_timeout, HTTP_TCP_IDLE_TIMEOUT_SEC) : s->idle_timeout, NULL);
        OPT(MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTP_CONNECTION_MEMORY, NULL);
        OPT(MHD_OPTION_URI_LOG_CALLBACK, on_uri, l);
        OPT(MHD_OPTION_NOTIFY_COMPLETED, on_completed, l);
        OPT(MHD_OPTION_NOTIFY_CONNECTION, on_connection, l);
        OPT(MHD_OPTION_STRICT_FOR_CLIENT, 1, NULL);
        if (tcp)
                OPT(MHD_OPTION_PER_IP_CONNECTION_LIMIT, HTTP_TCP_PER_IP_MAX, NULL);
        if (tls) {
                OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, l->tls_cert);
                OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, l->tls_key);
        }
        OPT(MHD_OPTION_END, 0, NULL);
#undef OPT
        assert(n <= ELEMENTSOF(opts));

        /* MHD owns the socket once it started; on failure it leaves it to us
         * (the one failure path in which 0.9.75 closes it, failing to make
         * it non-blocking, cannot happen: it already is). */
        l->daemon = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                                     (ipv6 ? MHD_USE_IPv6 : 0) | (tls ? MHD_USE_TLS : 0),
                                     (uint16_t) port, NULL, NULL, on_access, l,
                                     /* first, or MHD reports option errors on stderr */
                                     MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, l,
                                     MHD_OPTION_ARRAY, opts,
                                     MHD_OPTION_END);
        if (!l->daemon) {
                listener_free(l);
                return tls ? -EBADMSG : -EIO;   /* with TLS, most likely a bad certificate or key */
        }
        TAKE_FD(lfd);

        /* From here on listener_free() cleans up (and unlinks unix_path). */
        if (unix_path) {
                l->unix_path = strdup(unix_path);
                if (!l->unix_path) {
                        (void) unlink(unix_path);
                        listener_free(l);
                        return -ENOMEM;
                }
        }

        info = MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info) {
                listener_free(l);
                return -EIO;
        }
        r = sd_event_add_io(s->event, &l->io_source, info->epoll_fd, EPOLLIN, on_listener_io, l);
        if (r < 0) {
                listener_free(l);
                return r;
        }
        (void) sd_event_source_set_description(l->io_source, "http-mhd-epoll");

        /* Due at once: MHD adds the listening socket to its epoll set in its
         * first MHD_run(). */
        r = sd_event_add_time(s->event, &l->time_source, CLOCK_MONOTONIC, 0, 1000, on_listener_time, l);
        if (r < 0) {
                listener_free(l);
                return r;
        }
        (void) sd_event_source_set_description(l->time_source, "http-mhd-timeout");

        s->listeners[s->n_listeners++] = l;
        return 0;
}

int http_server_listen_unix(HttpServer *s, const char *path, mode_t mode, gid_t gid) {
        union {
                struct sockaddr sa;
                struct sockaddr_un un;
        } sa = { .un.sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        int r;

        assert_return(s, -EINVAL);
        assert_return(!isempty(path) && path[0] == '/', -EINVAL);

        if (strlen(path) >= sizeof(sa.un.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.un.sun_path, path);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;

        /* A socket file left by a previous zvmd that died. Unlinking it is
         * safe only because the caller holds the daemon-wide lock which makes
         * this process the only zvmd for this directory: no live server can
         * be listening on it. */
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;

        if (bind(fd, &sa.sa, sizeof(sa.un)) < 0)
                return -errno;

        /* Permissions before listen(): until then nobody can connect, so
         * there is no window with the umask's permissions. */
        if (chmod(path, mode) < 0 ||
            (gid != (gid_t) -1 && chown(path, (uid_t) -1, gid) < 0) ||
            listen(fd, SOMAXCONN) < 0) {
                r = -errno;
                (void) unlink(path);
                return r;
        }

        r = listener_start(s, TAKE_FD(fd), false, false, 0, NULL, NULL, NULL, path);
        if (r < 0)
                (void) unlink(path);            /* listener_start() did if it got that far; harmless */
        return r;
}

typedef union SocketAddress {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
} SocketAddress;

/* "1.2.3.4:port" or "[v6]:port"; no host names (no resolver in the daemon). */
static int parse_address(const char *address, int *ret_family, SocketAddress *ret_sa, socklen_t *ret_len) {
        _cleanup_free_ char *host = NULL;
        const char *port_str;
        uint32_t port;
        int r;

        if (address[0] == '[') {
                const char *e = strchr(address, ']');

                if (!e || e[1] != ':')
                        return -EINVAL;
                host = strndup(address + 1, (size_t) (e - address - 1));
                port_str = e + 2;
        } else {
                const char *e = strrchr(address, ':');

                if (!e)
                        return -EINVAL;
                host = strndup(address, (size_t) (e - address));
                port_str = e + 1;
        }
        if (!host)
                return -ENOMEM;

        r = safe_atou32(port_str, &port);
        if (r < 0 || port > 65535)
                return -EINVAL;

        memset(ret_sa, 0, sizeof(*ret_sa));
        if (address[0] == '[') {
                ret_sa->in6.sin6_family = AF_INET6;
                ret_sa->in6.sin6_port = htons((uint16_t) port);
                if (inet_pton(AF_INET6, host, &ret_sa->in6.sin6_addr) != 1)
                        return -EINVAL;
                *ret_family = AF_INET6;
                *ret_len = sizeof(ret_sa->in6);
        } else {
                ret_sa->in.sin_family = AF_INET;
                ret_sa->in.sin_port = htons((uint16_t) port);
                if (inet_pton(AF_INET, host, &ret_sa->in.sin_addr) != 1)
                        return -EINVAL;
                *ret_family = AF_INET;
                *ret_len = sizeof(ret_sa->in);
        }
        return 0;
}

int http_server_listen_tcp(HttpServer *s, const char *address, const HttpTls *tls, http_auth_fn auth,
                           void *auth_userdata) {
        SocketAddress sa, bound = {};
        socklen_t len, blen = sizeof(bound);
        _cleanup_close_ int fd = -EBADF;
        int family, port, one = 1, r;

        assert_return(s, -EINVAL);
        assert_return(address, -EINVAL);
        assert_return(auth, -EINVAL);
        assert_return(!tls || (tls->cert_pem && tls->key_pem), -EINVAL);

        r = parse_address(address, &family, &sa, &len);
        if (r < 0)
                return r;

        fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                return -errno;
        if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
                return -errno;
        if (bind(fd, &sa.sa, len) < 0)
                return -errno;
        if (listen(fd, SOMAXCONN) < 0)
                return -errno;
        if (getsockname(fd, &bound.sa, &blen) < 0)
                return -errno;
        port = ntohs(family == AF_INET6 ? bound.in6.sin6_port : bound.in.sin_port);

        return listener_start(s, TAKE_FD(fd), true, family == AF_INET6, port, tls, auth, auth_userdata, NULL);
}

int http_server_tcp_port(HttpServer *s) {
        assert_return(s, -EINVAL);

        for (size_t i = s->n_listeners; i > 0; i--)
                if (s->listeners[i - 1]->tcp)
                        return s->listeners[i - 1]->port;
        return -ENXIO;
}

/* ---- server --------------------------------------------------------------- */

int http_server_new(sd_event *e, http_handler_fn handler, void *userdata, HttpServer **ret) {
        HttpServer *s;
        int r;

        assert_return(e, -EINVAL);
        assert_return(handler, -EINVAL);
        assert_return(ret, -EINVAL);

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(e);
        s->handler = handler;
        s->userdata = userdata;
        s->idle_timeout = HTTP_IDLE_TIMEOUT_SEC;

        r = sd_event_add_defer(e, &s->defer_source, on_defer, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->defer_source, SD_EVENT_OFF);
        if (r < 0) {
                http_server_free(s);
                return r;
        }
        (void) sd_event_source_set_description(s->defer_source, "http-mhd-run");

        *ret = s;
        return 0;
}

void http_server_set_note(HttpServer *s, http_note_fn note) {
        s->note = note;
}

int http_server_set_idle_timeout(HttpServer *s, unsigned sec) {
        assert_return(s, -EINVAL);
        s->idle_timeout = sec;
        return 0;
}

/* Tells the owners of pending requests and open streams that their clients
 * are gone and resumes every suspended connection (MHD_stop_daemon() aborts
 * the process if a connection is still suspended). */
static void server_close_clients(HttpServer *s) {
        HttpRequest *req = s->requests, *next;

        if (req)
                request_ref(req);
        while (req) {
                if (req->connection) {
                        if (req->stream) {
                                req->stream->dead = true;
                                stream_fire_closed(req->stream);
                        } else
                                request_mark_closed(req);
                        request_resume(req);
                }

                next = req->next;
                if (next)
                        request_ref(next);
                request_unref(req);
                req = next;
        }
}

HttpServer *http_server_free(HttpServer *s) {
        if (!s)
                return NULL;

        server_close_clients(s);

        /* Stopping the daemons ends all connections (NOTIFY_COMPLETED drops
         * their references). */
        for (size_t i = 0; i < s->n_listeners; i++)
                s->listeners[i] = listener_free(s->listeners[i]);

        /* What is left is owned by callers that have not replied or closed
         * yet: detach it, so that their later calls do not touch us. */
        while (s->requests) {
                HttpRequest *req = s->requests;

                /* The body stays: the accessors are valid until the reply. */
                request_unlink(req);
                req->server = NULL;
        }

        s->defer_source = sd_event_source_disable_unref(s->defer_source);
        sd_event_unref(s->event);
        return mfree(s);
}
