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

#include "fd-util.h"
#include "http-server.h"
#include "http-server-internal.h"
#include "log.h"
#include "string-util.h"
#include "time-util.h"


/* ---- MHD callbacks -------------------------------------------------------- */

_printf_(2, 0)
void http_on_mhd_log(void *cls, const char *fmt, va_list ap) {
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

void *http_on_uri(void *cls, const char *uri, struct MHD_Connection *c) {
        HttpListener *l = cls;
        HttpConnection *conn = connection_context(c);
        HttpRequest *req;

        /* NULL (OOM) makes the access handler drop the connection. */
        req = http_request_new(l->server, c, uri, l->tcp);
        if (req && conn && conn->have_peer) {
                req->peer_uid = conn->peer_uid;
                req->have_peer = true;
        }
        return req;
}

void http_on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
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
                        http_stream_fire_closed(req->stream);
        } else if (req->state == REQUEST_DISPATCHED)
                http_request_mark_closed(req);

        http_request_unref(req);                     /* the connection's reference */
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
        http_server_schedule_run(conn->listener->server);
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

void http_on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
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
                http_server_schedule_run(l->server);
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
                return http_connection_queue_error(c, API_ERROR_INTERNAL, "Out of memory.");
        }
        req->state = REQUEST_RECEIVING;

        r = listener_authorize(l, c);
        if (r < 0) {
                req->state = REQUEST_ANSWERED;
                return http_connection_queue_error(c, API_ERROR_UNAUTHORIZED,
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
                        return http_connection_queue_error(c, body_sink_error(r), why ?: "Cannot take this body.");
                }
                if (r > 0)
                        return MHD_YES;         /* streamed: the sink checked the length */
        }
        if (length != UINT64_MAX && length > 0) {
                e = length > HTTP_BODY_MAX ? API_ERROR_PAYLOAD_TOO_LARGE : request_body_reserve(req, (size_t) length);
                if (e >= 0) {
                        req->state = REQUEST_ANSWERED;
                        http_request_body_release(req);
                        return http_connection_queue_error(c, e, reject_message(e));
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
                http_request_body_release(req);
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
                http_kv_free_many(ctx.kv, ctx.n);
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
                return http_connection_queue_error(c, req->reject, req->reject_message ?: reject_message(req->reject));
        }

        if (kv_copy(c, MHD_HEADER_KIND, &req->headers, &req->n_headers) < 0 ||
            kv_copy(c, MHD_GET_ARGUMENT_KIND, &req->args, &req->n_args) < 0) {
                req->state = REQUEST_ANSWERED;
                return http_connection_queue_error(c, API_ERROR_INTERNAL, "Out of memory.");
        }
        if (req->body)
                req->body[req->body_size] = '\0';

        req->state = REQUEST_DISPATCHED;
        http_request_ref(req);                       /* the caller's, dropped by the reply */
        http_request_ref(req);                       /* ours, for the duration of the call */
        if (s->note)
                s->note("HTTP %s %s", strnull(req->method), strnull(req->path));
        s->handler(req, s->userdata);
        if (s->note)
                s->note("HTTP I/O");

        if ((req->state == REQUEST_DISPATCHED || req->held) && !req->closed)
                http_request_suspend(req);           /* the reply will come later */

        enum MHD_Result result = req->close_connection ? MHD_NO : MHD_YES;
        http_request_unref(req);
        return result;
}

enum MHD_Result http_on_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
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

        r = sd_event_add_defer(e, &s->defer_source, http_on_defer, s);
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
                http_request_ref(req);
        while (req) {
                if (req->connection) {
                        if (req->stream) {
                                req->stream->dead = true;
                                http_stream_fire_closed(req->stream);
                        } else
                                http_request_mark_closed(req);
                        http_request_resume(req);
                }

                next = req->next;
                if (next)
                        http_request_ref(next);
                http_request_unref(req);
                req = next;
        }
}

HttpServer *http_server_free(HttpServer *s) {
        if (!s)
                return NULL;

        server_close_clients(s);
        /* Held replies have no client left to go to (above). */
        http_server_release_replies(s, UINT64_MAX);

        /* Stopping the daemons ends all connections (NOTIFY_COMPLETED drops
         * their references). */
        for (size_t i = 0; i < s->n_listeners; i++)
                s->listeners[i] = http_listener_free(s->listeners[i]);

        /* What is left is owned by callers that have not replied or closed
         * yet: detach it, so that their later calls do not touch us. */
        while (s->requests) {
                HttpRequest *req = s->requests;

                /* The body stays: the accessors are valid until the reply. */
                http_request_unlink(req);
                req->server = NULL;
        }

        s->defer_source = sd_event_source_disable_unref(s->defer_source);
        sd_event_unref(s->event);
        return mfree(s);
}

