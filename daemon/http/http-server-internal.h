/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the http-*.c files of the HTTP server share (see http-server.c for
 * how MHD is driven): the structures and the functions they call across
 * files. Nobody else includes it. */

#include <microhttpd.h>

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

        /* A reply the gate holds (http_server_set_reply_gate()): built,
         * not yet queued; the caller's reference stays until it goes. */
        bool held;
        unsigned held_status;
        struct MHD_Response *held_resp;
        uint64_t held_ticket;
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
        http_reply_gate_fn reply_gate;
        void *reply_gate_userdata;
};

/* http-request.c */
void http_server_schedule_run(HttpServer *s);
enum MHD_Result http_connection_queue_error(struct MHD_Connection *c, ApiError e, const char *message);
void http_kv_free_many(HttpKV *kv, size_t n);
void http_request_body_release(HttpRequest *req);
void http_request_unlink(HttpRequest *req);
HttpRequest *http_request_ref(HttpRequest *req);
void http_request_unref(HttpRequest *req);
HttpRequest *http_request_new(HttpServer *s, struct MHD_Connection *c, const char *uri, bool tcp);
void http_request_mark_closed(HttpRequest *req);
void http_request_resume(HttpRequest *req);
void http_request_suspend(HttpRequest *req);
void http_request_finish_reply(HttpRequest *req, unsigned status, struct MHD_Response *resp);

/* http-stream.c */
void http_stream_fire_closed(HttpStream *st);

/* http-server.c: MHD's callbacks */
void http_on_mhd_log(void *cls, const char *fmt, va_list ap);
void *http_on_uri(void *cls, const char *uri, struct MHD_Connection *c);
void http_on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe);
void http_on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code);
enum MHD_Result http_on_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size,
                                 void **con_cls);

/* http-listen.c */
int http_on_defer(sd_event_source *source, void *userdata);
HttpListener *http_listener_free(HttpListener *l);
