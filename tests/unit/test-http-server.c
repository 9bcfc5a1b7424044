/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * Real HTTP against the server: the server runs in this thread's sd-event
 * loop, clients (libcurl, or raw sockets where we need to misbehave) run in
 * threads and report completion through an eventfd the loop watches. Every
 * wait is an event-loop run with a deadline; nothing sleeps.
 *
 * SIGPIPE is deliberately left at its default: if the server ever wrote to a
 * closed socket without MSG_NOSIGNAL, this test would die.
 */

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include <curl/curl.h>

#include "fd-util.h"
#include "http-server.h"
#include "log.h"
#include "string-util.h"
#include "tap.h"

#define LOOP_TIMEOUT_USEC (10U * 1000U * 1000U)
#define UINT_TO_PTR(u) ((void *) (uintptr_t) (u))
#define PTR_TO_UINT(p) ((unsigned) (uintptr_t) (p))

static char tmpdir[] = "/tmp/test-http-server.XXXXXX";
static char *sock_path, *sock2_path;
static sd_event *event;
static HttpServer *server;
static int tcp_port, tcp6_port = -1;
static const char *no_ipv6;             /* why this host has no IPv6 loopback, or NULL */

/* Completion signals from client threads. */
static int done_efd = -EBADF;
static uint64_t n_done;

/* What the handlers saw. */
static unsigned n_handled;
static HttpRequest *slow_req, *hang_req, *slow2_req, *async_stream_req;
static unsigned hang_closed;
static int hang_reply_r = 1;
static int hang_efd = -EBADF;            /* tells a raw client that its request reached the handler */
static HttpStream *ev_stream, *ev2_stream, *flood_stream;
static unsigned ev_closed, ev2_closed, flood_closed, finite_closed;
static unsigned flood_sent;
static int flood_r;
static int badstatus_r = 1, nullbody_r = 1;

static uint64_t now_usec(void) {
        struct timespec ts;
        assert_se(clock_gettime(CLOCK_MONOTONIC, &ts) == 0);
        return (uint64_t) ts.tv_sec * 1000000U + (uint64_t) ts.tv_nsec / 1000U;
}

/* Runs the loop until *counter reaches target or the deadline passes. */
static bool loop_until(const unsigned *counter, unsigned target, uint64_t timeout) {
        uint64_t deadline = now_usec() + timeout;

        while (*counter < target) {
                uint64_t n = now_usec();
                if (n >= deadline)
                        return false;
                assert_se(sd_event_run(event, deadline - n) >= 0);
        }
        return true;
}

/* Dispatches whatever is pending right now, without waiting. */
static void loop_drain(void) {
        for (unsigned i = 0; i < 1000 && sd_event_run(event, 0) > 0; i++)
                ;
}

static unsigned clients_done;

static int on_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        uint64_t v = 0;

        assert_se(read(fd, &v, sizeof(v)) == sizeof(v));
        n_done += v;
        clients_done = (unsigned) n_done;
        return 0;
}

static void signal_done(void) {
        uint64_t one = 1;
        assert_se(write(done_efd, &one, sizeof(one)) == sizeof(one));
}

/* ---- clients -------------------------------------------------------------- */

typedef struct Client {
        /* request */
        const char *method;
        const char *path;
        bool tcp;
        bool tcp6;
        const char *auth;               /* full Authorization header value, or NULL */
        const char *content_type;
        const char *body;
        size_t body_size;
        bool chunked;
        unsigned abort_after_events;    /* SSE: abort after this many "\n\n" */
        /* result */
        CURLcode code;
        long status;
        char ctype[128];
        char *response;
        size_t response_size;
        uint64_t t_done;
        pthread_t thread;
} Client;

static size_t on_write(char *p, size_t size, size_t n, void *userdata) {
        Client *c = userdata;
        size_t l = size * n;
        char *b = realloc(c->response, c->response_size + l + 1);

        assert_se(b);
        memcpy(b + c->response_size, p, l);
        c->response = b;
        c->response_size += l;
        b[c->response_size] = '\0';

        if (c->abort_after_events > 0) {
                unsigned k = 0;
                for (const char *q = b; (q = strstr(q, "\n\n")); q += 2)
                        k++;
                if (k >= c->abort_after_events)
                        return 0;       /* abort: curl closes the connection */
        }
        return l;
}

static size_t on_read(char *buf, size_t size, size_t n, void *userdata) {
        Client *c = userdata;
        size_t l = MIN(size * n, c->body_size);

        memcpy(buf, c->body, l);
        c->body += l;
        c->body_size -= l;
        return l;
}

static void *client_thread(void *userdata) {
        Client *c = userdata;
        struct curl_slist *headers = NULL;
        _cleanup_free_ char *url = NULL, *auth = NULL, *ct = NULL;
        const char *ctype = NULL;
        CURL *curl;

        curl = curl_easy_init();
        assert_se(curl);

        if (c->tcp6)
                assert_se(asprintf(&url, "http://[::1]:%i%s", tcp6_port, c->path) >= 0);
        else if (c->tcp)
                assert_se(asprintf(&url, "http://127.0.0.1:%i%s", tcp_port, c->path) >= 0);
        else {
                url = strjoin("http://localhost", c->path);
                assert_se(curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, sock_path) == CURLE_OK);
        }
        assert_se(url);
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, c);

        if (c->auth) {
                auth = strjoin("Authorization: ", c->auth);
                headers = curl_slist_append(headers, auth);
        }
        if (c->content_type) {
                ct = strjoin("Content-Type: ", c->content_type);
                headers = curl_slist_append(headers, ct);
        }
        if (c->body) {
                /* Deterministic: ask before sending a body, whatever curl's default. */
                headers = curl_slist_append(headers, "Expect: 100-continue");
                if (c->chunked) {
                        headers = curl_slist_append(headers, "Transfer-Encoding: chunked");
                        curl_easy_setopt(curl, CURLOPT_POST, 1L);
                        curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
                        curl_easy_setopt(curl, CURLOPT_READDATA, c);
                } else {
                        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, c->body);
                        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) c->body_size);
                }
        }
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, c->method);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);

        c->code = curl_easy_perform(curl);
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &c->status);
        if (curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ctype) == CURLE_OK && ctype)
                snprintf(c->ctype, sizeof(c->ctype), "%s", ctype);
        c->t_done = now_usec();

        curl_slist_free_all(headers);
        curl_easy_cleanup(curl);
        signal_done();
        return NULL;
}

static void client_start(Client *c) {
        assert_se(pthread_create(&c->thread, NULL, client_thread, c) == 0);
}

static void client_join(Client *c) {
        assert_se(pthread_join(c->thread, NULL) == 0);
}

static void client_done(Client *c) {
        c->response = mfree(c->response);
}

/* Starts all, waits for all (bounded), joins all. */
static bool clients_run(Client *c, size_t n) {
        unsigned target = clients_done + (unsigned) n;
        bool ok;

        for (size_t i = 0; i < n; i++)
                client_start(&c[i]);
        ok = loop_until(&clients_done, target, LOOP_TIMEOUT_USEC);
        for (size_t i = 0; i < n; i++)
                client_join(&c[i]);
        return ok;
}

static json_object *response_json(const Client *c) {
        return c->response ? json_tokener_parse(c->response) : NULL;
}

static const char *jstr(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static int raw_connect(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_se(fd >= 0);
        assert_se(strlen(path) < sizeof(sa.sun_path));
        strcpy(sa.sun_path, path);
        assert_se(connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0);
        return fd;
}

typedef struct RawClient {
        const char *path;               /* socket */
        const char *request;
        enum {
                RAW_CLOSE_AFTER_HANDLER,    /* wait for hang_efd, then close */
                RAW_READ_ONE_BYTE_THEN_CLOSE,
                RAW_READ_TO_EOF,
        } mode;
        size_t n_read;
        uint64_t t_start, t_done;
        pthread_t thread;
} RawClient;

static void *raw_thread(void *userdata) {
        RawClient *c = userdata;
        int fd = raw_connect(c->path);
        char buf[65536];
        ssize_t n;

        c->t_start = now_usec();
        if (c->request)
                assert_se(loop_write(fd, c->request, strlen(c->request), false) >= 0);

        switch (c->mode) {
        case RAW_CLOSE_AFTER_HANDLER: {
                uint64_t v;
                assert_se(read(hang_efd, &v, sizeof(v)) == sizeof(v));
                break;
        }
        case RAW_READ_ONE_BYTE_THEN_CLOSE:
                n = read(fd, buf, 1);
                c->n_read = n > 0 ? (size_t) n : 0;
                break;
        case RAW_READ_TO_EOF:
                while ((n = read(fd, buf, sizeof(buf))) > 0)
                        c->n_read += (size_t) n;
                break;
        }

        c->t_done = now_usec();
        safe_close(fd);
        signal_done();
        return NULL;
}

static bool raw_run(RawClient *c, size_t n) {
        unsigned target = clients_done + (unsigned) n;
        bool ok;

        for (size_t i = 0; i < n; i++)
                assert_se(pthread_create(&c[i].thread, NULL, raw_thread, &c[i]) == 0);
        ok = loop_until(&clients_done, target, LOOP_TIMEOUT_USEC);
        for (size_t i = 0; i < n; i++)
                assert_se(pthread_join(c[i].thread, NULL) == 0);
        return ok;
}

/* ---- server side ---------------------------------------------------------- */

static const char *event_text[] = {
        "event: state\ndata: {\"n\":1}\n\n",
        "event: state\ndata: {\"n\":2}\n\n",
        "event: state\ndata: {\"n\":3}\n\n",
};

static void h_echo(HttpRequest *r) {
        json_object *o = json_object_new_object();
        size_t size;
        const char *body = http_request_body(r, &size);

        json_object_object_add(o, "method", json_object_new_string(http_request_method(r)));
        json_object_object_add(o, "path", json_object_new_string(http_request_path(r)));
        if (http_request_query(r, "x"))
                json_object_object_add(o, "x", json_object_new_string(http_request_query(r, "x")));
        if (http_request_query(r, "force"))
                json_object_object_add(o, "force", json_object_new_string(http_request_query(r, "force")));
        if (http_request_header(r, "content-type"))
                json_object_object_add(o, "ctype", json_object_new_string(http_request_header(r, "CONTENT-TYPE")));
        json_object_object_add(o, "body", json_object_new_string_len(body, (int) size));
        json_object_object_add(o, "body_size", json_object_new_int64((int64_t) size));
        json_object_object_add(o, "tcp", json_object_new_boolean(http_request_is_tcp(r)));
        json_object_object_add(o, "grant", json_object_new_int(http_request_grant(r)));
        {
                uid_t uid;
                if (http_request_peer_uid(r, &uid) >= 0)
                        json_object_object_add(o, "peer_uid", json_object_new_int64((int64_t) uid));
        }
        assert_se(http_request_reply_json(r, 200, o) == 0);
}

static int on_slow_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        HttpRequest **r = userdata;

        assert_se(http_request_reply_json(*r, 200, json_object_new_string("slow")) == 0);
        *r = NULL;
        return 0;
}

static void on_hang_closed(HttpRequest *r, void *userdata) {
        assert_se(r == hang_req);
        ok(http_request_is_closed(r), "closed handler: request reports closed");
        is_str(http_request_path(r), "/hang", "closed handler: accessors still valid");
        hang_closed++;
}

static void on_stream_closed(HttpStream *s, void *userdata) {
        unsigned *counter = userdata;
        ok(http_stream_is_closed(s), "stream closed handler: stream reports closed");
        is_int(http_stream_send(s, "x", 1), -EPIPE, "stream closed handler: send → -EPIPE");
        (*counter)++;
}

static int on_event_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        unsigned i = PTR_TO_UINT(userdata);

        if (!ev_stream)
                return 0;
        (void) http_stream_send(ev_stream, event_text[i], strlen(event_text[i]));
        /* One after the other: timers due together fire in no defined order. */
        if (i + 1 < ELEMENTSOF(event_text))
                assert_se(sd_event_add_time_relative(event, NULL, CLOCK_MONOTONIC, 30 * 1000, 1,
                                                     on_event_timer, UINT_TO_PTR(i + 1)) >= 0);
        return 0;
}

static int on_event2_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        if (ev2_stream) {
                assert_se(http_stream_send(ev2_stream, event_text[0], strlen(event_text[0])) == 0);
                http_stream_close(ev2_stream);
                ev2_stream = NULL;
        }
        return 0;
}

static int on_async_stream_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        HttpStream *st = NULL;

        /* A stream started on a request that has been suspended for a while. */
        assert_se(http_request_reply_stream(async_stream_req, "text/event-stream", &st) == 0);
        async_stream_req = NULL;
        assert_se(http_stream_send(st, event_text[0], strlen(event_text[0])) == 0);
        http_stream_close(st);
        return 0;
}

/* Streamed bodies: PUT /upload* goes to a temporary file, at most 3 MiB;
 * PUT /upload-full is refused as if the disk were full. */
#define UPLOAD_MAX (3U * 1024U * 1024U)
static int sink_calls;

static int body_sink(HttpRequest *req, uint64_t length, int *ret_fd, uint64_t *ret_max, const char **ret_why,
                     void *userdata) {
        const char *p = http_request_path(req);
        int fd;

        if (!streq(http_request_method(req), "PUT") || !startswith(p, "/upload"))
                return 0;
        sink_calls++;
        if (streq(p, "/upload-full")) {
                *ret_why = "No room.";
                return -ENOSPC;
        }
        if (length != UINT64_MAX && length > UPLOAD_MAX)
                return -EFBIG;
        fd = open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        assert_se(fd >= 0);
        *ret_fd = fd;
        *ret_max = UPLOAD_MAX;
        return 1;
}

/* {"size": N, "ok": the file holds the pattern} */
static void h_upload(HttpRequest *r) {
        uint64_t size = 0;
        int fd = http_request_take_body_fd(r, &size);
        bool good = fd >= 0;
        char buf[65536];
        uint64_t off = 0;
        ssize_t n;

        while (good && (n = pread(fd, buf, sizeof(buf), (off_t) off)) > 0) {
                for (ssize_t i = 0; i < n; i++)
                        good = good && buf[i] == (char) ('a' + (off + (uint64_t) i) % 26);
                off += (uint64_t) n;
        }
        good = good && off == size && http_request_take_body_fd(r, NULL) == -EBADF;
        safe_close(fd);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "size", json_object_new_int64((int64_t) size));
        json_object_object_add(o, "ok", json_object_new_boolean(good));
        assert_se(http_request_reply_json(r, 200, o) == 0);
}

static void handler(HttpRequest *r, void *userdata) {
        const char *p = http_request_path(r);

        n_handled++;

        if (startswith(p, "/upload"))
                h_upload(r);
        else if (startswith(p, "/echo"))
                h_echo(r);
        else if (streq(p, "/fast"))
                assert_se(http_request_reply_json(r, 200, json_object_new_string("fast")) == 0);
        else if (streq(p, "/slow")) {
                /* Answered 100 ms later, from a timer. */
                slow_req = r;
                assert_se(sd_event_add_time_relative(event, NULL, CLOCK_MONOTONIC, 100 * 1000, 0,
                                                     on_slow_timer, &slow_req) >= 0);
        } else if (streq(p, "/slow2")) {
                /* Longer than the 1 s idle timeout of listener 2. */
                slow2_req = r;
                assert_se(sd_event_add_time_relative(event, NULL, CLOCK_MONOTONIC, 1500 * 1000, 0,
                                                     on_slow_timer, &slow2_req) >= 0);
        } else if (streq(p, "/hang")) {
                uint64_t one = 1;
                hang_req = r;
                http_request_set_closed_handler(r, on_hang_closed, NULL);
                assert_se(write(hang_efd, &one, sizeof(one)) == sizeof(one));
        } else if (streq(p, "/events")) {
                assert_se(http_request_reply_stream(r, "text/event-stream", &ev_stream) == 0);
                http_stream_set_closed_handler(ev_stream, on_stream_closed, &ev_closed);
                assert_se(sd_event_add_time_relative(event, NULL, CLOCK_MONOTONIC, 30 * 1000, 1,
                                                     on_event_timer, UINT_TO_PTR(0)) >= 0);
        } else if (streq(p, "/events2")) {
                /* First event after 1.5 s: past listener 2's idle timeout. */
                assert_se(http_request_reply_stream(r, "text/event-stream", &ev2_stream) == 0);
                http_stream_set_closed_handler(ev2_stream, on_stream_closed, &ev2_closed);
                assert_se(sd_event_add_time_relative(event, NULL, CLOCK_MONOTONIC, 1500 * 1000, 0,
                                                     on_event2_timer, NULL) >= 0);
        } else if (streq(p, "/events-async")) {
                async_stream_req = r;
                assert_se(sd_event_add_time_relative(event, NULL, CLOCK_MONOTONIC, 50 * 1000, 0,
                                                     on_async_stream_timer, NULL) >= 0);
        } else if (streq(p, "/events-finite")) {
                HttpStream *s = NULL;
                assert_se(http_request_reply_stream(r, NULL, &s) == 0);
                http_stream_set_closed_handler(s, on_stream_closed, &finite_closed);
                for (unsigned i = 0; i < 3; i++)
                        assert_se(http_stream_send(s, event_text[i], strlen(event_text[i])) == 0);
                http_stream_close(s);
        } else if (streq(p, "/events-flood")) {
                static char chunk[64 * 1024];
                memset(chunk, 'f', sizeof(chunk));
                assert_se(http_request_reply_stream(r, NULL, &flood_stream) == 0);
                http_stream_set_closed_handler(flood_stream, on_stream_closed, &flood_closed);
                for (;;) {
                        flood_r = http_stream_send(flood_stream, chunk, sizeof(chunk));
                        if (flood_r < 0)
                                break;
                        flood_sent++;
                }
        } else if (streq(p, "/big")) {
                size_t size = 4 * 1024 * 1024;
                _cleanup_free_ char *big = malloc(size);
                assert_se(big);
                memset(big, 'b', size);
                assert_se(http_request_reply_text(r, 200, "text/plain", big, size) == 0);
        } else if (streq(p, "/badstatus"))
                badstatus_r = http_request_reply_text(r, 99, NULL, "x", 1);
        else if (streq(p, "/nullbody"))
                nullbody_r = http_request_reply_json(r, 200, NULL);
        else if (streq(p, "/error"))
                assert_se(http_request_reply_error(r, API_ERROR_INVALID_VALUE, "memory", "Bad value %i.", 7) == 0);
        else
                assert_se(http_request_reply_error(r, API_ERROR_NOT_FOUND, NULL, "No route for %s.", p) == 0);
}

/* Grant 7 for the right token, "expired" for one the test calls expired. */
static int auth(const char *token, void *userdata) {
        if (streq(token, "expired"))
                return -EKEYEXPIRED;
        return streq(token, userdata) ? 7 : -EACCES;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_socket_mode(void) {
        struct stat st;

        ok(stat(sock_path, &st) == 0 && S_ISSOCK(st.st_mode), "unix socket exists");
        is_int(st.st_mode & 07777, 0660, "unix socket has the requested mode 0660");
        ok(stat(sock2_path, &st) == 0 && S_ISSOCK(st.st_mode), "stale file replaced by the second socket");
        is_int(st.st_mode & 07777, 0600, "second socket has mode 0600");
        ok(tcp_port > 0, "TCP listener on port %i", tcp_port);
}

static void test_methods(void) {
        static const char body[] = "{\"name\":\"web\",\"memory\":512}";
        Client c[] = {
                { .method = "GET", .path = "/echo/a%2Fb?x=a%20b&force" },
                { .method = "POST", .path = "/echo/vms", .body = body, .body_size = strlen(body),
                  .content_type = "application/json" },
                { .method = "PATCH", .path = "/echo/vms/100", .body = body, .body_size = strlen(body),
                  .chunked = true },
                { .method = "DELETE", .path = "/echo/vms/100?force=1" },
                { .method = "GET", .path = "/nothere" },
                { .method = "GET", .path = "/error" },
        };
        unsigned before = n_handled;
        json_object *o;

        ok(clients_run(c, ELEMENTSOF(c)), "methods: all clients done");
        is_int(n_handled - before, ELEMENTSOF(c), "methods: handler called once per request");

        for (size_t i = 0; i < 4; i++) {
                is_int(c[i].code, CURLE_OK, "%s: curl ok", c[i].method);
                is_int(c[i].status, 200, "%s: 200", c[i].method);
                is_str(c[i].ctype, "application/json", "%s: Content-Type application/json", c[i].method);
        }

        o = response_json(&c[0]);
        is_str(jstr(o, "method"), "GET", "GET: method");
        is_str(jstr(o, "path"), "/echo/a%2Fb", "GET: path without query, %%-escapes intact");
        is_str(jstr(o, "x"), "a b", "GET: query argument decoded");
        is_str(jstr(o, "force"), "", "GET: key without value is \"\"");
        is_str(jstr(o, "body"), "", "GET: empty body");
        is_str(jstr(o, "tcp"), "false", "GET: not TCP");
        json_object_put(o);

        o = response_json(&c[1]);
        is_str(jstr(o, "method"), "POST", "POST: method");
        is_str(jstr(o, "path"), "/echo/vms", "POST: path");
        is_str(jstr(o, "body"), body, "POST: body");
        is_str(jstr(o, "ctype"), "application/json", "POST: header lookup is case-insensitive");
        json_object_put(o);

        o = response_json(&c[2]);
        is_str(jstr(o, "method"), "PATCH", "PATCH: method");
        is_str(jstr(o, "body"), body, "PATCH: chunked body");
        json_object_put(o);

        o = response_json(&c[3]);
        is_str(jstr(o, "method"), "DELETE", "DELETE: method");
        is_str(jstr(o, "path"), "/echo/vms/100", "DELETE: path");
        is_str(jstr(o, "force"), "1", "DELETE: query");
        json_object_put(o);

        is_int(c[4].status, 404, "error reply: status from ApiError");
        o = response_json(&c[4]);
        is_str(jstr(o, "error"), "NotFound", "error reply: error name");
        is_str(jstr(o, "message"), "No route for /nothere.", "error reply: message");
        ok(!json_object_object_get_ex(o, "key", NULL), "error reply: no key");
        json_object_put(o);

        is_int(c[5].status, 400, "error with key: 400");
        o = response_json(&c[5]);
        is_str(jstr(o, "error"), "InvalidValue", "error with key: name");
        is_str(jstr(o, "key"), "memory", "error with key: key");
        is_str(jstr(o, "message"), "Bad value 7.", "error with key: formatted message");
        json_object_put(o);

        for (size_t i = 0; i < ELEMENTSOF(c); i++)
                client_done(&c[i]);
}

static void test_too_large(void) {
        size_t size = 2 * 1024 * 1024;
        _cleanup_free_ char *big = malloc(size);
        unsigned before = n_handled;
        json_object *o;

        assert_se(big);
        memset(big, 'x', size);

        Client c[] = {
                { .method = "POST", .path = "/echo", .body = big, .body_size = size },
                { .method = "POST", .path = "/echo", .body = big, .body_size = size, .chunked = true },
                { .method = "POST", .path = "/echo", .body = big, .body_size = HTTP_BODY_MAX },
        };

        ok(clients_run(c, ELEMENTSOF(c)), "2 MiB bodies: clients done");
        is_int(c[0].status, 413, "2 MiB body with Content-Length → 413");
        o = response_json(&c[0]);
        is_str(jstr(o, "error"), "PayloadTooLarge", "  error PayloadTooLarge");
        json_object_put(o);
        is_int(c[1].status, 413, "2 MiB chunked body → 413");
        o = response_json(&c[1]);
        is_str(jstr(o, "error"), "PayloadTooLarge", "  error PayloadTooLarge");
        json_object_put(o);
        is_int(n_handled - before, 1, "handler not called for the 413s, called for exactly 1 MiB");
        is_int(c[2].status, 200, "body of exactly 1 MiB → 200");
        o = response_json(&c[2]);
        is_int(json_object_get_int64(json_object_object_get(o, "body_size")), HTTP_BODY_MAX, "  handler got all of it");
        json_object_put(o);

        for (size_t i = 0; i < ELEMENTSOF(c); i++)
                client_done(&c[i]);
}

static void test_streamed_body(void) {
        size_t size = UPLOAD_MAX;
        _cleanup_free_ char *big = malloc(size + 1);
        unsigned before = n_handled;
        json_object *o;

        assert_se(big);
        for (size_t i = 0; i < size + 1; i++)
                big[i] = (char) ('a' + i % 26);
        http_server_set_body_sink(server, body_sink, NULL);

        Client c[] = {
                { .method = "PUT", .path = "/upload", .body = big, .body_size = size },
                { .method = "PUT", .path = "/upload", .body = big, .body_size = size, .chunked = true },
                { .method = "PUT", .path = "/upload", .body = big, .body_size = size + 1 },
                { .method = "PUT", .path = "/upload", .body = big, .body_size = size + 1, .chunked = true },
                { .method = "PUT", .path = "/upload-full", .body = big, .body_size = 10 },
                { .method = "POST", .path = "/echo", .body = big, .body_size = 10 },
        };

        ok(clients_run(c, ELEMENTSOF(c)), "streamed bodies: clients done");
        is_int(sink_calls, 5, "the sink is asked for each PUT /upload*, not for POST /echo");
        for (size_t i = 0; i < 2; i++) {
                o = response_json(&c[i]);
                ok(c[i].status == 200 && json_object_get_int64(json_object_object_get(o, "size")) == (int64_t) size &&
                   json_object_get_boolean(json_object_object_get(o, "ok")),
                   "a 3 MiB body (over HTTP_BODY_MAX) %s reaches the handler as a file, intact",
                   i ? "chunked" : "with Content-Length");
                json_object_put(o);
        }
        is_int(c[2].status, 413, "one byte over the sink's bound with a Content-Length → 413 before the body");
        is_int(c[3].status, 413, "one byte over the sink's bound, chunked → 413");
        o = response_json(&c[3]);
        is_str(jstr(o, "message"), "Request body larger than the upload limit.", "  says why");
        json_object_put(o);
        is_int(c[4].status, 507, "the sink's -ENOSPC → 507");
        o = response_json(&c[4]);
        ok(streq_ptr(jstr(o, "error"), "InsufficientStorage") && streq_ptr(jstr(o, "message"), "No room."),
           "  InsufficientStorage with the sink's message");
        json_object_put(o);
        is_int(c[5].status, 200, "other bodies are buffered as before");
        is_int(n_handled - before, 3, "the handler saw only the two uploads and the echo");
        http_server_set_body_sink(server, NULL, NULL);
        for (size_t i = 0; i < ELEMENTSOF(c); i++)
                client_done(&c[i]);
}

static void test_async(void) {
        Client c[] = {
                { .method = "GET", .path = "/slow" },
                { .method = "GET", .path = "/fast" },
        };
        uint64_t t0 = now_usec();

        /* Start the slow one first, so that the fast one has to overtake. */
        client_start(&c[0]);
        ok(loop_until(&n_handled, n_handled + 1, LOOP_TIMEOUT_USEC), "async: slow request reached the handler");
        client_start(&c[1]);
        ok(loop_until(&clients_done, clients_done + 2, LOOP_TIMEOUT_USEC), "async: both done");
        client_join(&c[0]);
        client_join(&c[1]);

        is_int(c[0].status, 200, "async: slow request answered from the timer");
        is_str(c[0].response, "\"slow\"\n", "async: slow body");
        is_int(c[1].status, 200, "async: fast request answered");
        ok(c[1].t_done < c[0].t_done, "async: fast answered while slow was pending");
        ok(c[0].t_done - t0 >= 100 * 1000, "async: slow took >= 100 ms");
        ok(!slow_req, "async: timer replied");

        for (size_t i = 0; i < ELEMENTSOF(c); i++)
                client_done(&c[i]);
}

/* The reply gate (zvmd holds replies that confirm a change until their
 * fsyncs are done): a POST's reply waits for its ticket, a GET's does not,
 * and a held reply whose client went away is dropped cleanly. */
static uint64_t gate_ticket;

static uint64_t test_gate(void *userdata) {
        return gate_ticket;
}

static void test_reply_gate(void) {
        Client c[] = {
                { .method = "POST", .path = "/echo", .content_type = "application/json", .body = "{}", .body_size = 2 },
                { .method = "GET", .path = "/echo" },
        };
        static const char gone_request[] = "DELETE /echo HTTP/1.1\r\nHost: x\r\n\r\n";
        int fd;
        unsigned done0 = clients_done, handled0 = n_handled;

        http_server_set_reply_gate(server, test_gate, NULL);
        gate_ticket = 5;
        client_start(&c[0]);
        client_start(&c[1]);
        /* The POST's body ("Expect: 100-continue") may reach the handler
         * after the GET is answered: wait for both, bounded. */
        ok(loop_until(&n_handled, handled0 + 2, LOOP_TIMEOUT_USEC), "gate: both requests reached the handler");
        ok(loop_until(&clients_done, done0 + 1, LOOP_TIMEOUT_USEC), "gate: one client is done");
        (void) loop_until(&clients_done, done0 + 2, 300 * 1000);
        ok(clients_done == done0 + 1 && c[1].t_done > 0 && c[0].t_done == 0,
           "gate: the GET is answered, the POST's reply is held");
        http_server_release_replies(server, 4);
        (void) loop_until(&clients_done, done0 + 2, 200 * 1000);
        ok(c[0].t_done == 0, "gate: an earlier ticket does not release it");
        http_server_release_replies(server, 5);
        ok(loop_until(&clients_done, done0 + 2, LOOP_TIMEOUT_USEC), "gate: its ticket releases it");
        client_join(&c[0]);
        client_join(&c[1]);
        is_int(c[0].status, 200, "gate: the held reply arrives whole (status)");
        ok(c[0].response && strstr(c[0].response, "\"POST\""), "gate: the held reply arrives whole (body: %s)",
           strnull(c[0].response));

        /* A client that hangs up while its reply is held. */
        handled0 = n_handled;
        fd = raw_connect(sock_path);
        assert_se(loop_write(fd, gone_request, strlen(gone_request), false) >= 0);
        ok(loop_until(&n_handled, handled0 + 1, LOOP_TIMEOUT_USEC), "gate: a DELETE handled, its reply held");
        safe_close(fd);
        (void) loop_until(&n_handled, n_handled + 1, 100 * 1000);     /* runs the loop: the hang-up is seen */
        http_server_release_replies(server, 5);
        loop_drain();
        client_done(&c[1]);
        c[1] = (Client) { .method = "GET", .path = "/echo" };
        ok(clients_run(&c[1], 1) && c[1].status == 200,
           "gate: after a held reply's client went away and it was released, the server still answers "
           "(ASan/LSan check the release itself)");

        gate_ticket = 0;
        http_server_set_reply_gate(server, NULL, NULL);
        for (size_t i = 0; i < ELEMENTSOF(c); i++)
                client_done(&c[i]);
}

static void test_disconnect(void) {
        RawClient c = {
                .path = sock_path,
                .request = "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n",
                .mode = RAW_CLOSE_AFTER_HANDLER,
        };

        hang_req = NULL;
        ok(raw_run(&c, 1), "disconnect: client connected, was handled, and closed");
        ok(hang_req, "disconnect: handler got the request");
        ok(loop_until(&hang_closed, 1, LOOP_TIMEOUT_USEC), "disconnect: closed handler fired");

        /* Let MHD tear the connection down before we reply: the reply must
         * not touch it. */
        Client e = { .method = "GET", .path = "/fast" };
        ok(clients_run(&e, 1) && e.status == 200, "disconnect: server still answers");
        client_done(&e);

        hang_reply_r = http_request_reply_json(hang_req, 200, json_object_new_string("too late"));
        is_int(hang_reply_r, 0, "disconnect: later reply is a no-op");
        hang_req = NULL;
        is_int(hang_closed, 1, "disconnect: closed handler fired once");
}

static void test_tcp_auth(void) {
        Client c[] = {
                { .method = "GET", .path = "/echo", .tcp = true },
                { .method = "GET", .path = "/echo", .tcp = true, .auth = "Bearer wrong" },
                { .method = "GET", .path = "/echo", .tcp = true, .auth = "Basic sekrit" },
                { .method = "GET", .path = "/echo", .tcp = true, .auth = "Bearer" },
                { .method = "POST", .path = "/echo", .tcp = true, .auth = "Bearer wrong", .body = "{}", .body_size = 2 },
                { .method = "GET", .path = "/echo", .tcp = true, .auth = "Bearer sekrit" },
                { .method = "GET", .path = "/echo", .tcp = true, .auth = "bearer   sekrit" },
                { .method = "GET", .path = "/echo", .tcp = true, .auth = "Bearer expired" },
                { .method = "GET", .path = "/echo" },
        };
        unsigned before = n_handled;
        json_object *o;

        ok(clients_run(c, ELEMENTSOF(c)), "TCP: clients done");
        for (size_t i = 0; i < 5; i++) {
                is_int(c[i].status, 401, "TCP: %s → 401", strnull(c[i].auth));
                o = response_json(&c[i]);
                is_str(jstr(o, "error"), "Unauthorized", "  error Unauthorized");
                json_object_put(o);
        }
        is_int(c[5].status, 200, "TCP: good token → 200");
        o = response_json(&c[5]);
        is_str(jstr(o, "tcp"), "true", "  request is TCP");
        is_str(jstr(o, "grant"), "7", "  the handler sees the auth hook's grant");
        ok(!json_object_object_get_ex(o, "peer_uid", NULL), "  and no peer uid on TCP");
        json_object_put(o);
        is_int(c[6].status, 200, "TCP: scheme is case-insensitive");
        is_int(c[7].status, 401, "TCP: expired token → 401");
        o = response_json(&c[7]);
        ok(jstr(o, "message") && strstr(jstr(o, "message"), "expired"), "  message says it expired: %s", strnull(jstr(o, "message")));
        json_object_put(o);
        is_int(c[8].status, 200, "unix: 200");
        o = response_json(&c[8]);
        {
                _cleanup_free_ char *u = NULL;
                assert_se(asprintf(&u, "%u", (unsigned) getuid()) > 0);
                is_str(jstr(o, "peer_uid"), u, "  peer uid is ours (SO_PEERCRED): %s", u);
        }
        is_int(atoi(strempty(jstr(o, "grant"))), -ENXIO, "  no grant on the unix socket");
        json_object_put(o);
        is_int(n_handled - before, 3, "TCP: handler only called for authorized requests (and the unix one)");

        for (size_t i = 0; i < ELEMENTSOF(c); i++)
                client_done(&c[i]);
}

static void test_sse(void) {
        Client c = { .method = "GET", .path = "/events", .abort_after_events = 3 };
        Client f = { .method = "GET", .path = "/events-finite" };
        _cleanup_free_ char *expected = strjoin(event_text[0], event_text[1], event_text[2]);

        ok(clients_run(&c, 1), "SSE: client done");
        is_int(c.status, 200, "SSE: 200");
        is_str(c.ctype, "text/event-stream", "SSE: Content-Type text/event-stream");
        is_str(c.response, expected, "SSE: three events, sent later, in order");
        is_int(c.code, CURLE_WRITE_ERROR, "SSE: client aborted");
        ok(loop_until(&ev_closed, 1, LOOP_TIMEOUT_USEC), "SSE: stream closed handler fired after the client left");
        is_int(http_stream_send(ev_stream, "x", 1), -EPIPE, "SSE: send after close → -EPIPE");
        http_stream_close(ev_stream);
        ev_stream = NULL;
        client_done(&c);

        ok(clients_run(&f, 1), "SSE finite: client done");
        is_int(f.code, CURLE_OK, "SSE finite: complete response");
        is_str(f.response, expected, "SSE finite: all events before the end");
        is_str(f.ctype, "text/event-stream", "SSE finite: default Content-Type");
        is_int(finite_closed, 0, "SSE finite: closed handler not fired after http_stream_close()");
        client_done(&f);
}

static void test_sse_async(void) {
        Client c = { .method = "GET", .path = "/events-async" };

        ok(clients_run(&c, 1), "SSE async: client done");
        is_int(c.code, CURLE_OK, "SSE async: complete response");
        is_int(c.status, 200, "SSE async: 200");
        is_str(c.response, event_text[0], "SSE async: the event");
        client_done(&c);
}

static void test_flood(void) {
        RawClient c = {
                .path = sock_path,
                .request = "GET /events-flood HTTP/1.1\r\nHost: x\r\n\r\n",
                .mode = RAW_READ_TO_EOF,
        };

        ok(raw_run(&c, 1), "flood: client saw the connection end");
        is_int(flood_r, -ENOBUFS, "flood: send beyond the queue bound → -ENOBUFS");
        is_int(flood_sent, HTTP_STREAM_QUEUE_MAX / (64 * 1024), "flood: exactly the bound was queued");
        ok(loop_until(&flood_closed, 1, LOOP_TIMEOUT_USEC), "flood: closed handler fired");
        http_stream_close(flood_stream);
        flood_stream = NULL;
}

static void test_errors(void) {
        Client c[] = {
                { .method = "GET", .path = "/badstatus" },
                { .method = "GET", .path = "/nullbody" },
        };
        json_object *o;

        ok(clients_run(c, ELEMENTSOF(c)), "errors: clients done");
        is_int(badstatus_r, -EINVAL, "invalid status: reply returns -EINVAL");
        is_int(c[0].status, 500, "invalid status: client gets 500");
        o = response_json(&c[0]);
        is_str(jstr(o, "error"), "Internal", "  error Internal");
        json_object_put(o);
        is_int(nullbody_r, -EINVAL, "NULL JSON: reply returns -EINVAL");
        is_int(c[1].status, 500, "NULL JSON: client gets 500");

        for (size_t i = 0; i < ELEMENTSOF(c); i++)
                client_done(&c[i]);
}

static void test_sigpipe(void) {
        RawClient c = {
                .path = sock_path,
                .request = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n",
                .mode = RAW_READ_ONE_BYTE_THEN_CLOSE,
        };
        Client e = { .method = "GET", .path = "/fast" };

        ok(raw_run(&c, 1), "SIGPIPE: client read a byte of a 4 MiB reply and closed");
        is_int(c.n_read, 1, "SIGPIPE: got the byte");
        /* The server keeps writing into the closed socket; still alive? */
        ok(clients_run(&e, 1) && e.status == 200, "SIGPIPE: server survived writing to a closed socket");
        client_done(&e);
}

static bool read_until(int fd, const char *end) {
        char buf[4096];
        size_t n = 0;

        for (;;) {
                ssize_t k = read(fd, buf + n, sizeof(buf) - 1 - n);
                if (k <= 0)
                        return false;
                n += (size_t) k;
                buf[n] = '\0';
                if (strstr(buf, end))
                        return true;
                if (n >= sizeof(buf) - 1)
                        return false;
        }
}

typedef struct LimitClient {
        bool all_served, extra_served_early, extra_served_later;
        pthread_t thread;
} LimitClient;

/* Fills the listener up to HTTP_CONNECTIONS_MAX keep-alive connections (each
 * proven accepted by a reply); one more is not served until one goes away. */
static void *limit_thread(void *userdata) {
        static const char req[] = "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n";
        LimitClient *c = userdata;
        int fds[HTTP_CONNECTIONS_MAX + 1];
        struct pollfd p;

        c->all_served = true;
        for (unsigned i = 0; i < HTTP_CONNECTIONS_MAX; i++) {
                fds[i] = raw_connect(sock_path);
                assert_se(loop_write(fds[i], req, strlen(req), false) >= 0);
                if (!read_until(fds[i], "\"fast\"\n"))
                        c->all_served = false;
        }

        fds[HTTP_CONNECTIONS_MAX] = raw_connect(sock_path);   /* waits in the listen backlog */
        assert_se(loop_write(fds[HTTP_CONNECTIONS_MAX], req, strlen(req), false) >= 0);
        p = (struct pollfd) { .fd = fds[HTTP_CONNECTIONS_MAX], .events = POLLIN };
        c->extra_served_early = poll(&p, 1, 300) > 0;

        safe_close(fds[0]);
        c->extra_served_later = poll(&p, 1, 5000) > 0 && read_until(fds[HTTP_CONNECTIONS_MAX], "\"fast\"\n");

        for (unsigned i = 1; i <= HTTP_CONNECTIONS_MAX; i++)
                safe_close(fds[i]);
        signal_done();
        return NULL;
}

static void test_connection_limit(void) {
        LimitClient c = {};
        unsigned target = clients_done + 1;

        assert_se(pthread_create(&c.thread, NULL, limit_thread, &c) == 0);
        ok(loop_until(&clients_done, target, LOOP_TIMEOUT_USEC), "limit: client done");
        assert_se(pthread_join(c.thread, NULL) == 0);
        ok(c.all_served, "limit: %u connections served", HTTP_CONNECTIONS_MAX);
        ok(!c.extra_served_early, "limit: connection %u waits", HTTP_CONNECTIONS_MAX + 1);
        ok(c.extra_served_later, "limit: and is served once another one closed");
}

#define BUDGET_CONNECTIONS 70U

typedef struct BudgetClient {
        unsigned n_503, n_other;
        pthread_t thread;
} BudgetClient;

/* Every connection announces a 1 MiB body and sends none: the server
 * reserves the buffers up front, 63 fit into HTTP_BODY_TOTAL_MAX, the rest
 * are answered 503 at once. */
static void *budget_thread(void *userdata) {
        static const char req[] = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n";
        BudgetClient *c = userdata;
        struct pollfd p[BUDGET_CONNECTIONS];
        unsigned expected = BUDGET_CONNECTIONS - HTTP_BODY_TOTAL_MAX / (HTTP_BODY_MAX + 1);
        uint64_t deadline = now_usec() + 5 * 1000 * 1000;

        for (unsigned i = 0; i < BUDGET_CONNECTIONS; i++) {
                p[i] = (struct pollfd) { .fd = raw_connect(sock_path), .events = POLLIN };
                assert_se(loop_write(p[i].fd, req, strlen(req), false) >= 0);
        }

        while (c->n_503 + c->n_other < expected) {
                uint64_t n = now_usec();
                int k;

                if (n >= deadline)
                        break;
                k = poll(p, BUDGET_CONNECTIONS, (int) ((deadline - n) / 1000));
                assert_se(k >= 0);
                for (unsigned i = 0; i < BUDGET_CONNECTIONS; i++) {
                        char buf[4096];
                        ssize_t l;

                        if (!(p[i].revents & POLLIN))
                                continue;
                        l = read(p[i].fd, buf, sizeof(buf) - 1);
                        if (l > 0 && (buf[l] = '\0', startswith(buf, "HTTP/1.1 503 ")) && strstr(buf, "\"Unavailable\""))
                                c->n_503++;
                        else
                                c->n_other++;
                        p[i].events = 0;
                }
        }

        for (unsigned i = 0; i < BUDGET_CONNECTIONS; i++)
                safe_close(p[i].fd);
        signal_done();
        return NULL;
}

static void test_body_budget(void) {
        BudgetClient c = {};
        unsigned target = clients_done + 1;
        _cleanup_free_ char *body = malloc(HTTP_BODY_MAX);
        Client after = { .method = "POST", .path = "/echo", .body = body, .body_size = HTTP_BODY_MAX };

        assert_se(body);
        memset(body, 'y', HTTP_BODY_MAX);

        assert_se(pthread_create(&c.thread, NULL, budget_thread, &c) == 0);
        ok(loop_until(&clients_done, target, LOOP_TIMEOUT_USEC), "budget: client done");
        assert_se(pthread_join(c.thread, NULL) == 0);
        is_int(c.n_503, BUDGET_CONNECTIONS - HTTP_BODY_TOTAL_MAX / (HTTP_BODY_MAX + 1),
               "budget: connections beyond the body budget get 503 Unavailable");
        is_int(c.n_other, 0, "budget: the others wait for their bodies");

        /* The closed connections gave their reservations back: a full
         * 1 MiB body fits again (with 63 MiB still reserved it would not). */
        loop_drain();
        ok(clients_run(&after, 1), "budget: next client done");
        is_int(after.status, 200, "budget: released after the clients left");
        client_done(&after);
}

/* Whether a socket can be bound to [::1] here, asked of the kernel
 * directly and not of the server under test: NULL if it can, else why
 * not (no IPv6 in the kernel, or none on lo). */
static const char *host_lacks_ipv6_loopback(void) {
        struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
        _cleanup_close_ int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return strerror(errno);
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return strerror(errno);
        return NULL;
}

static void test_ipv6(void) {
        Client c[] = {
                { .method = "GET", .path = "/echo", .tcp6 = true },
                { .method = "GET", .path = "/echo", .tcp6 = true, .auth = "Bearer sekrit" },
        };

        if (no_ipv6) {
                skip(3, "no IPv6 loopback on this host: %s", no_ipv6);
                return;
        }
        ok(clients_run(c, ELEMENTSOF(c)), "IPv6: clients done");
        is_int(c[0].status, 401, "IPv6: no token → 401");
        is_int(c[1].status, 200, "IPv6: good token → 200");
        for (size_t i = 0; i < ELEMENTSOF(c); i++)
                client_done(&c[i]);
}

/* Listener 2 has a 1 s idle timeout: an idle client is dropped, a request
 * waiting for its reply and an event stream are not. */
static void test_idle_timeout(void) {
        RawClient idle = { .path = sock2_path, .mode = RAW_READ_TO_EOF };
        RawClient slow = {
                .path = sock2_path,
                .request = "GET /slow2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                .mode = RAW_READ_TO_EOF,
        };
        RawClient events = {
                .path = sock2_path,
                .request = "GET /events2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                .mode = RAW_READ_TO_EOF,
        };
        RawClient all[3];

        all[0] = idle, all[1] = slow, all[2] = events;
        ok(raw_run(all, 3), "idle: all three clients done");
        ok(all[0].t_done - all[0].t_start >= 900 * 1000, "idle: idle client dropped after ~1 s (%.2f s)",
           (double) (all[0].t_done - all[0].t_start) / 1e6);
        ok(all[0].t_done - all[0].t_start < 5 * 1000 * 1000, "idle: and not much later");
        ok(all[1].n_read > 0 && all[1].t_done - all[1].t_start >= 1400 * 1000,
           "idle: reply after 1.5 s still arrived (%zu bytes)", all[1].n_read);
        ok(all[2].n_read > 0 && all[2].t_done - all[2].t_start >= 1400 * 1000,
           "idle: event stream outlived the idle timeout and ended cleanly (%zu bytes)", all[2].n_read);
        is_int(ev2_closed, 0, "idle: stream closed handler not fired");
}

static void test_free_with_pending(void) {
        /* A request waiting for its reply whose client stays connected, and
         * an open event stream: freeing the server must tell both owners,
         * and their later reply/close must be harmless. */
        RawClient hang = {
                .path = sock_path,
                .request = "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n",
                .mode = RAW_READ_TO_EOF,
        };
        Client sse = { .method = "GET", .path = "/events" };
        unsigned before_ev = ev_closed, target = n_handled + 2;
        HttpRequest *req;
        struct stat st;
        uint64_t v;

        hang_closed = 0;
        hang_req = NULL;
        assert_se(pthread_create(&hang.thread, NULL, raw_thread, &hang) == 0);
        client_start(&sse);
        ok(loop_until(&n_handled, target, LOOP_TIMEOUT_USEC), "free: both requests reached the handler");
        ok(hang_req && ev_stream, "free: request pending, stream open");
        assert_se(read(hang_efd, &v, sizeof(v)) == sizeof(v));     /* the handler's signal, unused here */
        req = hang_req;

        server = http_server_free(server);
        is_int(hang_closed, 1, "free: closed handler of the pending request fired");
        is_int(ev_closed, before_ev + 1, "free: closed handler of the stream fired");
        is_int(http_request_reply_json(req, 200, json_object_new_string("late")), 0,
               "free: reply after the server is gone is a no-op");
        hang_req = NULL;
        is_int(http_stream_send(ev_stream, "x", 1), -EPIPE, "free: stream send after free → -EPIPE");
        http_stream_close(ev_stream);
        ev_stream = NULL;
        ok(stat(sock_path, &st) < 0 && errno == ENOENT, "free: socket file removed");

        ok(loop_until(&clients_done, clients_done + 2, LOOP_TIMEOUT_USEC), "free: both clients saw the end");
        assert_se(pthread_join(hang.thread, NULL) == 0);
        client_join(&sse);
        ok(sse.code != CURLE_OK, "free: SSE client saw the stream cut (%s)", curl_easy_strerror(sse.code));
        client_done(&sse);
}

int main(void) {
        sd_event_source *done_source = NULL;
        int fd;

        (void) log_setup_from_env();    /* ZVM_LOG_LEVEL=debug shows what MHD and the server say */
        assert_se(mkdtemp(tmpdir));
        sock_path = strjoin(tmpdir, "/api.sock");
        sock2_path = strjoin(tmpdir, "/api2.sock");
        assert_se(sock_path && sock2_path);
        assert_se(curl_global_init(CURL_GLOBAL_DEFAULT) == 0);

        assert_se(sd_event_new(&event) >= 0);
        done_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        hang_efd = eventfd(0, EFD_CLOEXEC);
        assert_se(done_efd >= 0 && hang_efd >= 0);
        assert_se(sd_event_add_io(event, &done_source, done_efd, EPOLLIN, on_done, NULL) >= 0);

        assert_se(http_server_new(event, handler, NULL, &server) >= 0);
        is_int(http_server_tcp_port(server), -ENXIO, "no TCP listener yet");
        is_int(http_server_listen_unix(server, sock_path, 0660, (gid_t) -1), 0, "listen on a unix socket");

        /* A stale regular file where the second socket goes. */
        fd = open(sock2_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_se(fd >= 0);
        safe_close(fd);
        assert_se(http_server_set_idle_timeout(server, 1) == 0);
        is_int(http_server_listen_unix(server, sock2_path, 0600, getgid()), 0, "listen on a second unix socket (1 s idle timeout)");
        assert_se(http_server_set_idle_timeout(server, HTTP_IDLE_TIMEOUT_SEC) == 0);

        is_int(http_server_listen_tcp(server, "127.0.0.1:0", NULL, auth, (void *) "sekrit"), 0, "listen on 127.0.0.1:0");
        tcp_port = http_server_tcp_port(server);
        no_ipv6 = host_lacks_ipv6_loopback();
        if (no_ipv6)
                skip(1, "no IPv6 loopback on this host: %s", no_ipv6);
        else {
                is_int(http_server_listen_tcp(server, "[::1]:0", NULL, auth, (void *) "sekrit"), 0, "listen on [::1]:0");
                tcp6_port = http_server_tcp_port(server);
        }
        is_int(http_server_listen_tcp(server, "localhost:1", NULL, auth, NULL), -EINVAL, "host names are refused");
        is_int(http_server_listen_tcp(server, "127.0.0.1", NULL, auth, NULL), -EINVAL, "port required");
        is_int(http_server_listen_tcp(server, "[::1:0", NULL, auth, NULL), -EINVAL, "bad IPv6 syntax");
        is_int(http_server_listen_tcp(server, "127.0.0.1:0", NULL, NULL, NULL), -EINVAL, "TCP without auth refused");

        test_socket_mode();
        test_methods();
        test_too_large();
        test_streamed_body();
        test_async();
        test_reply_gate();
        test_disconnect();
        test_tcp_auth();
        test_sse();
        test_sse_async();
        test_flood();
        test_errors();
        test_sigpipe();
        test_ipv6();
        test_body_budget();
        test_connection_limit();
        test_idle_timeout();
        test_free_with_pending();

        sd_event_source_disable_unref(done_source);
        sd_event_unref(event);
        safe_close(done_efd);
        safe_close(hang_efd);
        curl_global_cleanup();
        (void) unlink(sock2_path);
        (void) rmdir(tmpdir);
        free(sock_path);
        free(sock2_path);
        return done_testing();
}
