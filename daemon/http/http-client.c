/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libcurl multi on sd-event, as curl's multi-event.c example does it with
 * libevent: one io source per socket curl wants watched, one timer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "fd-util.h"
#include "http-client.h"
#include "log.h"
#include "time-util.h"

struct HttpClient {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
        unsigned running;
        struct HttpTransfer *transfers;
        int busy_listen, busy_queued;   /* curl < 8.0 only: see transfer_open_socket() */
        struct sockaddr_un busy_addr;
        socklen_t busy_len;
};

/* One running transfer, reached through CURLOPT_PRIVATE, listed in the
 * client (curl 7.88 cannot list a multi's handles). */
typedef struct HttpTransfer {
        struct HttpTransfer *next, **prevp;
        HttpClient *client;
        CURL *easy;
        int fd;                         /* connected, until curl takes it */
        http_client_done_fn done;
        void *userdata;
} HttpTransfer;

static void transfer_free(HttpTransfer *t) {
        *t->prevp = t->next;
        if (t->next)
                t->next->prevp = t->prevp;
        if (t->fd >= 0)
                close(t->fd);
        free(t);
}

/* A unix listener whose backlog is full: a non-blocking connect() to it
 * fails with EAGAIN, and Linux checks that before it checks whether the
 * connecting socket is connected already (EISCONN). */
static int client_busy_listener(HttpClient *c) {
        uint64_t r;
        int fd, q;

        if (c->busy_listen >= 0)
                return 0;
        if (getrandom(&r, sizeof(r), 0) != sizeof(r))
                return -EIO;
        c->busy_addr.sun_family = AF_UNIX;
        /* Abstract: nothing on disk; a stranger connecting changes nothing. */
        snprintf(c->busy_addr.sun_path + 1, sizeof(c->busy_addr.sun_path) - 1, "zvmd-curl-busy-%d-%016llx",
                 (int) getpid(), (unsigned long long) r);
        c->busy_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + 1 + strlen(c->busy_addr.sun_path + 1));
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &c->busy_addr, c->busy_len) < 0 || listen(fd, 0) < 0) {
                close(fd);
                return -errno;
        }
        q = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (q < 0 || connect(q, (struct sockaddr *) &c->busy_addr, c->busy_len) < 0) {
                if (q >= 0)
                        close(q);
                close(fd);
                return -errno;
        }
        c->busy_listen = fd;
        c->busy_queued = q;
        return 0;
}

/* CURLOPT_OPENSOCKETFUNCTION: the caller's connected socket. curl 8.0 and
 * later skip connect() when CURLOPT_SOCKOPTFUNCTION says it is connected;
 * 7.88 calls it anyway (curl issue 10626) and gives up on EISCONN. For it,
 * the address connect() gets is rewritten: a unix socket (hybrid vsock,
 * whose handshake is done) gets the full listener above, so connect() says
 * EAGAIN, curl waits for writability and finds SO_ERROR 0: connected; any
 * other socket (kernel vsock) is replaced by a fresh one that curl connects
 * to the same peer itself. */
static curl_socket_t transfer_open_socket(void *userdata, curlsocktype purpose, struct curl_sockaddr *address) {
        HttpTransfer *t = userdata;
        struct sockaddr_storage peer = {};
        socklen_t len = sizeof(peer);
        int fd;

        if (t->fd < 0 || purpose != CURLSOCKTYPE_IPCXN)
                return CURL_SOCKET_BAD;
        if (curl_version_info(CURLVERSION_NOW)->version_num >= 0x080000)
                return TAKE_FD(t->fd);
        if (getpeername(t->fd, (struct sockaddr *) &peer, &len) < 0)
                return CURL_SOCKET_BAD;
        if (peer.ss_family == AF_UNIX) {
                if (client_busy_listener(t->client) < 0)
                        return CURL_SOCKET_BAD;
                address->family = AF_UNIX;
                address->addrlen = t->client->busy_len;
                memcpy(&address->addr, &t->client->busy_addr, t->client->busy_len);
                return TAKE_FD(t->fd);
        }
        if (peer.ss_family != AF_VSOCK || len > sizeof(struct sockaddr_vm))
                return CURL_SOCKET_BAD;
        fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return CURL_SOCKET_BAD;
        address->family = AF_VSOCK;
        address->addrlen = len;
        memcpy(&address->addr, &peer, len);
        t->fd = safe_close(t->fd);
        return fd;
}

static int transfer_sockopt(void *userdata, curl_socket_t fd, curlsocktype purpose) {
        return curl_version_info(CURLVERSION_NOW)->version_num >= 0x080000 ? CURL_SOCKOPT_ALREADY_CONNECTED
                                                                          : CURL_SOCKOPT_OK;
}

static void client_check_done(HttpClient *c) {
        CURLMsg *msg;
        int left;

        while ((msg = curl_multi_info_read(c->multi, &left))) {
                HttpTransfer *t = NULL;
                CURL *easy = msg->easy_handle;
                CURLcode result = msg->data.result;

                if (msg->msg != CURLMSG_DONE)
                        continue;
                (void) curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &t);
                (void) curl_multi_remove_handle(c->multi, easy);
                c->running--;
                if (t) {
                        http_client_done_fn done = t->done;
                        void *userdata = t->userdata;

                        transfer_free(t);
                        done(easy, result, userdata);
                }
        }
}

static void client_action(HttpClient *c, curl_socket_t fd, int flags) {
        int still;

        (void) curl_multi_socket_action(c->multi, fd, flags, &still);
        client_check_done(c);
}

static int on_socket_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        HttpClient *c = userdata;
        int flags = 0;

        if (revents & EPOLLIN)
                flags |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                flags |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                flags |= CURL_CSELECT_ERR;
        client_action(c, fd, flags);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        client_action(userdata, CURL_SOCKET_TIMEOUT, 0);
        return 0;
}

/* CURLMOPT_SOCKETFUNCTION: what curl wants watched on fd, with our io
 * source for it (if any) as socketp. */
static int curl_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
        HttpClient *c = userp;
        sd_event_source *src = socketp;
        uint32_t events = 0;
        int r;

        if (what == CURL_POLL_REMOVE) {
                sd_event_source_disable_unref(src);
                (void) curl_multi_assign(c->multi, fd, NULL);
                return 0;
        }
        if (what & CURL_POLL_IN)
                events |= EPOLLIN;
        if (what & CURL_POLL_OUT)
                events |= EPOLLOUT;
        if (src) {
                r = sd_event_source_set_io_events(src, events);
                return r < 0 ? -1 : 0;
        }
        r = sd_event_add_io(c->event, &src, fd, events, on_socket_io, c);
        if (r < 0)
                return -1;
        (void) sd_event_source_set_description(src, "http-client-socket");
        (void) curl_multi_assign(c->multi, fd, src);
        return 0;
}

static int client_arm_timer(HttpClient *c, uint64_t delay_usec) {
        uint64_t when = now_usec(CLOCK_MONOTONIC) + delay_usec;
        int r;

        if (!c->timer) {
                r = sd_event_add_time(c->event, &c->timer, CLOCK_MONOTONIC, when, 1000, on_timer, c);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_description(c->timer, "http-client-timer");
                return 0;
        }
        r = sd_event_source_set_time(c->timer, when);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
}

/* CURLMOPT_TIMERFUNCTION: -1 disarms; 0 means "as soon as possible", which
 * must not run curl from inside this callback, so it goes to the loop too. */
static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp) {
        HttpClient *c = userp;

        if (timeout_ms < 0) {
                if (c->timer)
                        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
                return 0;
        }
        return client_arm_timer(c, (uint64_t) timeout_ms * 1000) < 0 ? -1 : 0;
}

int http_client_new(sd_event *e, HttpClient **ret) {
        _cleanup_(http_client_freep) HttpClient *c = NULL;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(e);
        c->busy_listen = c->busy_queued = -EBADF;
        c->multi = curl_multi_init();
        if (!c->multi)
                return -ENOMEM;
        if (curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK)
                return -EIO;
        *ret = TAKE_PTR(c);
        return 0;
}

HttpClient *http_client_free(HttpClient *c) {
        if (!c)
                return NULL;
        while (c->transfers)
                http_client_remove(c, c->transfers->easy);
        if (c->multi)
                curl_multi_cleanup(c->multi);
        sd_event_source_disable_unref(c->timer);
        safe_close(c->busy_listen);
        safe_close(c->busy_queued);
        sd_event_unref(c->event);
        return mfree(c);
}

int http_client_add(HttpClient *c, CURL *easy, int fd, http_client_done_fn done, void *userdata) {
        HttpTransfer *t;

        if (!c || !easy || !done) {
                if (fd >= 0)
                        close(fd);
                return -EINVAL;
        }
        t = calloc(1, sizeof(*t));
        if (!t) {
                if (fd >= 0)
                        close(fd);
                return -ENOMEM;
        }
        *t = (HttpTransfer) { .client = c, .easy = easy, .fd = fd, .done = done, .userdata = userdata };
        t->next = c->transfers;
        if (t->next)
                t->next->prevp = &t->next;
        t->prevp = &c->transfers;
        c->transfers = t;
        if ((fd >= 0 &&
             (curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, transfer_open_socket) != CURLE_OK ||
              curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, t) != CURLE_OK ||
              curl_easy_setopt(easy, CURLOPT_SOCKOPTFUNCTION, transfer_sockopt) != CURLE_OK)) ||
            curl_easy_setopt(easy, CURLOPT_PRIVATE, t) != CURLE_OK ||
            curl_multi_add_handle(c->multi, easy) != CURLM_OK) {
                (void) curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
                transfer_free(t);
                return -EIO;
        }
        c->running++;
        return 0;
}

void http_client_remove(HttpClient *c, CURL *easy) {
        HttpTransfer *t = NULL;

        if (!c || !easy)
                return;
        (void) curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &t);
        if (!t)
                return;
        (void) curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        transfer_free(t);
        if (curl_multi_remove_handle(c->multi, easy) == CURLM_OK)
                c->running--;
}

unsigned http_client_running(const HttpClient *c) {
        return c ? c->running : 0;
}

void http_client_wake(HttpClient *c) {
        if (c)
                (void) client_arm_timer(c, 0);
}
