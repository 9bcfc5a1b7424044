/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * zvmd's HTTP server: libmicrohttpd (MHD) does all of HTTP, driven from an
 * sd-event loop with no threads of its own. The server answers some requests
 * by itself, before the handler ever sees them:
 *
 *   401 Unauthorized     TCP listener, missing or rejected "Authorization: Bearer …"
 *                        (or a token the auth hook says has expired)
 *   413 PayloadTooLarge  request body over HTTP_BODY_MAX
 *   503 Unavailable      all in-flight request bodies together over HTTP_BODY_TOTAL_MAX
 *   500 Internal         out of memory and similar
 *   4xx from MHD itself  malformed HTTP, headers over the per-connection memory
 *                        limit (these bodies are MHD's short HTML, not our JSON)
 *
 * Everything else reaches the handler once, with the complete body. Routing
 * (404/405) is the handler's job, see http-route.h.
 *
 * Ownership rules (single-threaded; all calls from the sd-event loop thread):
 *
 *   HttpRequest: the handler receives a request it now owes exactly one reply
 *   to: http_request_reply_json/_error/_text/_stream(). The reply consumes
 *   the request: the pointer (and every string the accessors returned) stays
 *   valid until the reply call, and must not be used after it. That holds
 *   even when the client has gone away: the closed handler then fires (at
 *   most once, from the event loop or http_server_free(), never from inside
 *   one of the calls below),
 *   and the caller still replies when it gets round to it (from the closed
 *   handler itself, or when its operation completes); that reply is a no-op
 *   that only frees the request. So a pointer the caller keeps is never
 *   dangling, and a forgotten reply leaks one request and keeps one
 *   connection suspended, nothing else.
 *
 *   HttpStream: http_request_reply_stream() consumes the request and gives
 *   the caller a stream, which it owns until it calls http_stream_close()
 *   exactly once. If the client goes away (or its queue overflows) the
 *   stream's closed handler fires once, from the event loop, and later sends
 *   return -EPIPE; the caller still calls http_stream_close() to release it
 *   (from the closed handler is fine). After http_stream_close() the closed
 *   handler never fires.
 *
 *   http_server_free(): fires the closed handlers of all requests still
 *   waiting for a reply and of all open streams, drops their connections, and
 *   leaves the objects themselves alive until their owners reply/close, as
 *   above. Do not free the server from inside one of its callbacks.
 *
 * Client disconnects: MHD does not watch a suspended connection, so while a
 * request waits for its reply (or a stream for data) the server watches the
 * socket for EPOLLRDHUP/EPOLLHUP itself. A client that half-closes its side
 * after sending the request counts as gone, as it does for nginx.
 *
 * SIGPIPE: MHD sends with MSG_NOSIGNAL on Linux (checked for 0.9.75), so
 * writing to a closed client raises no SIGPIPE. zvmd still ignores SIGPIPE
 * process-wide at startup (signal(SIGPIPE, SIG_IGN)), because other code
 * (QMP, vsock, child pipes) uses plain write(); library code does not change
 * signal dispositions, so that is the daemon's job.
 *
 * Never logs above debug.
 */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "api.h"
#include "macro.h"

/* Limits. Connections and idle timeout are per listener. */
#define HTTP_BODY_MAX (1024U * 1024U)                   /* per request → 413 */
#define HTTP_BODY_TOTAL_MAX (64U * 1024U * 1024U)       /* all buffered bodies → 503 */
#define HTTP_CONNECTIONS_MAX 256U
#define HTTP_IDLE_TIMEOUT_SEC 60U                       /* not for streams or requests awaiting their reply */
#define HTTP_CONNECTION_MEMORY 32768U                   /* MHD's per-connection pool: request line + headers */
#define HTTP_STREAM_QUEUE_MAX (1024U * 1024U)           /* unsent stream data; beyond it the client is dropped */
#define HTTP_LISTENERS_MAX 8U
/* TCP only (the unix socket is for local, trusted users): how many
 * connections one client address may hold, and how long a connection may
 * take from accept (TLS handshake included) to a request that passed the
 * token check. Together they keep idle or trickling clients from holding
 * the listener's HTTP_CONNECTIONS_MAX slots (slowloris). */
#define HTTP_TCP_PER_IP_MAX 16U
#define HTTP_TCP_AUTH_DEADLINE_SEC 10U
#define HTTP_TCP_IDLE_TIMEOUT_SEC 30U                   /* keep-alive idle on TCP */

typedef struct HttpServer HttpServer;
typedef struct HttpRequest HttpRequest;
typedef struct HttpStream HttpStream;

typedef void (*http_handler_fn)(HttpRequest *req, void *userdata);
/* Returns the request's grant (>= 0, an opaque number for the handler, see
 * http_request_grant()), or a negative errno: the request is answered 401
 * (-EKEYEXPIRED: with "token expired"). */
typedef int (*http_auth_fn)(const char *bearer_token, void *userdata);
typedef void (*http_closed_fn)(HttpRequest *req, void *userdata);
typedef void (*http_stream_closed_fn)(HttpStream *s, void *userdata);

/* The handler is called once per request with the complete body. */
int http_server_new(sd_event *e, http_handler_fn handler, void *userdata, HttpServer **ret);
HttpServer *http_server_free(HttpServer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpServer *, http_server_free);

/*
 * Streamed bodies (uploads larger than HTTP_BODY_MAX): called once per
 * request, after authentication and before any of its body, with the
 * request (method and path readable; headers are not) and its
 * Content-Length (UINT64_MAX if none). Returns
 *   0   buffer the body in memory as usual;
 *   1   write it to *ret_fd (the request owns and closes it, unless the
 *       handler takes it with http_request_take_body_fd()), at most *ret_max
 *       bytes: beyond that, or when a write fails, the client gets 413 / 507
 *       / 500 and the handler is never called;
 *   <0  refuse at once: -EFBIG 413, -ENOSPC 507, -EINVAL/-ENODATA 400,
 *       -EBUSY 409, -EAGAIN 503, else 500; *ret_why (optional, static) is
 *       the message.
 * NULL (the default): every body is buffered.
 */
typedef int (*http_body_sink_fn)(HttpRequest *req, uint64_t content_length, int *ret_fd, uint64_t *ret_max,
                                 const char **ret_why, void *userdata);
void http_server_set_body_sink(HttpServer *s, http_body_sink_fn fn, void *userdata);

/* Idle timeout for listeners added afterwards (default HTTP_IDLE_TIMEOUT_SEC;
 * 0 disables it). Mostly for tests. */
int http_server_set_idle_timeout(HttpServer *s, unsigned sec);

/* Called with what the server is about to run (a request's dispatch, MHD's
 * I/O), so whoever times the event loop can say what took the time; the
 * server itself knows no loop. NULL (the default) for none. */
typedef void (*http_note_fn)(const char *fmt, ...) _printf_(1, 2);
void http_server_set_note(HttpServer *s, http_note_fn note);

/*
 * Listens on a unix socket at an absolute path: creates, binds, chmods to
 * mode (and chowns to gid unless it is (gid_t) -1), then listens, so nobody
 * can connect while the permissions are still the umask's. A stale socket
 * file at path is unlinked first: that is safe only because the caller holds
 * the daemon-wide lock that makes it the only zvmd for this directory, so the
 * file cannot belong to a live server. http_server_free() removes the socket
 * file again.
 */
int http_server_listen_unix(HttpServer *s, const char *path, mode_t mode, gid_t gid);

/*
 * Listens on TCP, "127.0.0.1:8007", "[::1]:8007", "0.0.0.0:8007" ("[::]:…"
 * listens on IPv6 only). Port 0 picks a free port, see
 * http_server_tcp_port(). Every request must carry "Authorization: Bearer X"
 * with auth(X, auth_userdata) >= 0, else it is answered 401 Unauthorized
 * before the handler sees it. auth must not be NULL.
 *
 * With tls (cert_pem and key_pem both PEM text, copied) the listener speaks
 * only HTTPS (libmicrohttpd's GnuTLS): a client speaking plain HTTP fails
 * the handshake and is dropped without an answer. tls NULL: plain HTTP,
 * which the caller should allow only when asked to explicitly.
 * -EOPNOTSUPP if libmicrohttpd was built without TLS.
 */
typedef struct HttpTls {
        const char *cert_pem;
        const char *key_pem;
} HttpTls;
int http_server_listen_tcp(HttpServer *s, const char *address, const HttpTls *tls, http_auth_fn auth,
                           void *auth_userdata);

/* Port of the most recently added TCP listener, or -ENXIO. */
int http_server_tcp_port(HttpServer *s);

/* Accessors; the strings live as long as the request (see above). */
const char *http_request_method(HttpRequest *r);
/* The path as the client sent it, without the query string and with its
 * %-escapes intact (MHD would decode them, turning "a%2Fb" into two
 * segments); route_match() splits first and decodes each segment. */
const char *http_request_path(HttpRequest *r);
/* Decoded query argument; "" for a key given without '=' ("?force");
 * NULL if absent. */
const char *http_request_query(HttpRequest *r, const char *key);
/* Header value, name matched case-insensitively; NULL if absent. */
const char *http_request_header(HttpRequest *r, const char *name);
/* NUL-terminated (the NUL is not counted in *ret_size); "" if none. */
const char *http_request_body(HttpRequest *r, size_t *ret_size);
/* The file a streamed body went to (http_server_set_body_sink()), now the
 * caller's, with the body's size; -EBADF if the body was not streamed (or
 * the fd was taken already). The file offset is at the body's end. */
int http_request_take_body_fd(HttpRequest *r, uint64_t *ret_size);
bool http_request_is_tcp(HttpRequest *r);
/* TCP: what the auth hook returned for this request's token. -ENXIO on the
 * unix socket. */
int http_request_grant(HttpRequest *r);
/* Unix socket: the connecting process's uid (SO_PEERCRED, taken when the
 * connection was accepted, so it is the uid of whoever called connect()).
 * -ENXIO on TCP. */
int http_request_peer_uid(HttpRequest *r, uid_t *ret);
/* Whether the client went away (the closed handler has fired or is about to). */
bool http_request_is_closed(HttpRequest *r);
void http_request_set_closed_handler(HttpRequest *r, http_closed_fn fn, void *userdata);

/*
 * A reply gate: asked as a reply to anything but GET or HEAD (a reply that
 * may confirm a change) is about to go out, it returns 0 to send it now or
 * a ticket: the reply is held, the connection stays suspended, until
 * http_server_release_replies() is called with a done_ticket at or past
 * it. For the caller nothing changes: the reply call has consumed the
 * request. Streams are never held. zvmd's gate holds a reply until the
 * fsyncs handed to its worker before it have finished (core/sync-worker.h).
 */
typedef uint64_t (*http_reply_gate_fn)(void *userdata);
void http_server_set_reply_gate(HttpServer *s, http_reply_gate_fn fn, void *userdata);
void http_server_release_replies(HttpServer *s, uint64_t done_ticket);

/*
 * Replies; each consumes the request (see above). They return 0 also when
 * the client has gone away (the reply is then dropped); a negative errno
 * means the reply could not be built (e.g. -ENOMEM, a NULL body, or a status
 * outside 200..599), in which case the server answered 500 Internal instead or, if
 * even that failed, closed the connection. The request is consumed in every
 * case.
 */
/* One extra header (e.g. Retry-After) on whichever reply follows; a second
 * call replaces it. -EINVAL for CR, LF (or ':' in the name). */
int http_request_set_reply_header(HttpRequest *r, const char *name, const char *value);
int http_request_reply_json(HttpRequest *r, unsigned status, json_object *body /* reference taken */);
/* The same, but when the answer cannot be built (-ENOMEM) nothing is sent
 * yet: the caller can undo what the answer would have confirmed, then
 * reply an error. body is taken in every case. */
int http_request_try_reply_json(HttpRequest *r, unsigned status, json_object *body /* reference taken */);
/* {"error": api_error_to_string(e), "message": …, "key": key} with api_error_http_status(e). */
int http_request_reply_error(HttpRequest *r, ApiError e, const char *key, const char *fmt, ...) _printf_(4, 5);
int http_request_reply_errorv(HttpRequest *r, ApiError e, const char *key, const char *fmt, va_list ap) _printf_(4, 0);
int http_request_reply_text(HttpRequest *r, unsigned status, const char *content_type, const char *data, size_t size);

/*
 * Starts a 200 response of unknown length (chunked) that stays open: for
 * server-sent events use content_type "text/event-stream" (the default for
 * NULL) and send "event: …\ndata: …\n\n" blocks. The connection gets no
 * idle timeout and "Connection: close" (it is not reused afterwards).
 * Consumes the request; *ret is owned by the caller until
 * http_stream_close(). If the client is already gone, *ret is still a valid
 * stream on which sends fail with -EPIPE.
 */
int http_request_reply_stream(HttpRequest *r, const char *content_type, HttpStream **ret);

/* Queues data and wakes the connection. -EPIPE once the client is gone or
 * the stream was dropped; -ENOBUFS if the unsent data would exceed
 * HTTP_STREAM_QUEUE_MAX: the client is too slow and is dropped (its closed
 * handler fires later from the event loop). */
int http_stream_send(HttpStream *s, const char *data, size_t size);
bool http_stream_is_closed(HttpStream *s);
/* Bytes queued and not yet sent to the client: a producer that can wait
 * (a paused upstream transfer) keeps this well under HTTP_STREAM_QUEUE_MAX. */
size_t http_stream_queued(HttpStream *s);
void http_stream_set_closed_handler(HttpStream *s, http_stream_closed_fn fn, void *userdata);
/* Ends the response once the queued data is sent, and releases the caller's
 * ownership. NULL is fine. */
void http_stream_close(HttpStream *s);
