/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * http-client against real servers in the same sd-event loop: zvmd's own
 * HttpServer on a unix socket, and a raw unix listener that cuts an answer
 * short. Every transfer gets a socket connected beforehand (as the OpenAI
 * proxy hands over a vsock connection), so this also checks the curl 7.88
 * workaround for CURL_SOCKOPT_ALREADY_CONNECTED. Every wait is a loop run
 * with a deadline.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fd-util.h"
#include "http-client.h"
#include "http-server.h"
#include "tap.h"

static char tmpdir[] = "/tmp/test-http-client.XXXXXX";
static char sock_path[100], raw_path[100];
static sd_event *event;

typedef struct Result {
        bool done;
        CURLcode result;
        char body[4096];
        size_t size;
} Result;

static size_t on_write(char *p, size_t size, size_t n, void *userdata) {
        Result *r = userdata;
        size_t len = size * n;

        if (len > sizeof(r->body) - 1 - r->size)
                return 0;
        memcpy(r->body + r->size, p, len);
        r->size += len;
        r->body[r->size] = 0;
        return len;
}

static void on_done(CURL *easy, CURLcode result, void *userdata) {
        Result *r = userdata;

        r->done = true;
        r->result = result;
}

static void handler(HttpRequest *req, void *userdata) {
        const char *path = http_request_path(req);

        (void) http_request_reply_text(req, 200, "text/plain", path, strlen(path));
}

static int connect_unix(const char *path) {
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        strncpy(a.sun_path, path, sizeof(a.sun_path) - 1);
        if (fd < 0 || connect(fd, (struct sockaddr *) &a, sizeof(a)) < 0 || fd_nonblock(fd, true) < 0) {
                safe_close(fd);
                return -errno;
        }
        return fd;
}

static CURL *easy_new(const char *path, Result *r) {
        char url[128];
        CURL *e = curl_easy_init();

        snprintf(url, sizeof(url), "http://127.0.0.1%s", path);
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_PROXY, "");
        curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
        return e;
}

/* Runs the loop until all of rs are done (or 10 s). */
static bool run_until_done(Result **rs, size_t n) {
        for (unsigned i = 0; i < 1000; i++) {
                bool all = true;

                for (size_t j = 0; j < n; j++)
                        all = all && rs[j]->done;
                if (all)
                        return true;
                (void) sd_event_run(event, 10 * 1000);
        }
        return false;
}

/* A listener that answers a promise of 100 bytes with 3, then hangs up,
 * once the request has arrived. */
static int on_raw_request(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        static const char cut[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc";
        char buf[1024];

        (void) !read(fd, buf, sizeof(buf));
        (void) !write(fd, cut, sizeof(cut) - 1);
        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);     /* floating: the loop frees it */
        close(fd);
        return 0;
}

static int on_raw_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

        if (c >= 0 && sd_event_add_io(event, NULL, c, EPOLLIN, on_raw_request, NULL) < 0)
                close(c);
        return 0;
}

int main(void) {
        _cleanup_(http_server_freep) HttpServer *server = NULL;
        _cleanup_(http_client_freep) HttpClient *client = NULL;
        Result a = {}, b = {}, gone = {}, cut = {};
        sd_event_source *raw_src = NULL;
        struct sockaddr_un raw = { .sun_family = AF_UNIX };
        CURL *ea, *eb, *eg, *ec;
        int raw_fd;

        curl_global_init(CURL_GLOBAL_DEFAULT);
        if (!mkdtemp(tmpdir))
                return 1;
        snprintf(sock_path, sizeof(sock_path), "%s/api.sock", tmpdir);
        snprintf(raw_path, sizeof(raw_path), "%s/raw.sock", tmpdir);
        sd_event_default(&event);
        ok(http_server_new(event, handler, NULL, &server) >= 0 &&
           http_server_listen_unix(server, sock_path, 0600, (gid_t) -1) >= 0, "server listens");
        ok(http_client_new(event, &client) >= 0, "client");
        diag("libcurl %s", curl_version_info(CURLVERSION_NOW)->version);

        /* Two transfers at once, each on its own pre-connected socket to the
         * same "127.0.0.1": each gets its own answer. */
        ea = easy_new("/first", &a);
        eb = easy_new("/second", &b);
        ok(http_client_add(client, ea, connect_unix(sock_path), on_done, &a) >= 0 &&
           http_client_add(client, eb, connect_unix(sock_path), on_done, &b) >= 0, "two transfers added");
        is_int(http_client_running(client), 2, "two running");
        ok(run_until_done((Result *[]) { &a, &b }, 2), "both done");
        ok(a.result == CURLE_OK && streq(a.body, "/first"), "first: its own answer over its connected socket (%s, %s)",
           curl_easy_strerror(a.result), a.body);
        ok(b.result == CURLE_OK && streq(b.body, "/second"), "second: its own answer (%s, %s)",
           curl_easy_strerror(b.result), b.body);
        is_int(http_client_running(client), 0, "none running");
        curl_easy_cleanup(ea);
        curl_easy_cleanup(eb);

        /* Removed before it ends: done never runs. */
        eg = easy_new("/gone", &gone);
        ok(http_client_add(client, eg, connect_unix(sock_path), on_done, &gone) >= 0, "added");
        (void) sd_event_run(event, 0);
        http_client_remove(client, eg);
        for (unsigned i = 0; i < 20; i++)
                (void) sd_event_run(event, 10 * 1000);
        ok(!gone.done && http_client_running(client) == 0, "removed: done never called");
        curl_easy_cleanup(eg);

        /* An answer cut short is an error, never a success. */
        strncpy(raw.sun_path, raw_path, sizeof(raw.sun_path) - 1);
        raw_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        ok(raw_fd >= 0 && bind(raw_fd, (struct sockaddr *) &raw, sizeof(raw)) >= 0 && listen(raw_fd, 4) >= 0 &&
           sd_event_add_io(event, &raw_src, raw_fd, EPOLLIN, on_raw_accept, NULL) >= 0, "raw listener");
        ec = easy_new("/cut", &cut);
        ok(http_client_add(client, ec, connect_unix(raw_path), on_done, &cut) >= 0, "added");
        ok(run_until_done((Result *[]) { &cut }, 1), "done");
        ok(cut.result != CURLE_OK, "an answer cut short fails the transfer: %s", curl_easy_strerror(cut.result));
        curl_easy_cleanup(ec);

        /* A refused fd (none) fails at once, cleanly. */
        ok(http_client_add(client, NULL, -EBADF, on_done, NULL) == -EINVAL, "no easy handle: -EINVAL");

        sd_event_source_disable_unref(raw_src);
        safe_close(raw_fd);
        client = http_client_free(client);
        server = http_server_free(server);
        unlink(raw_path);
        rmdir(tmpdir);
        sd_event_unref(event);
        curl_global_cleanup();
        return done_testing();
}
