/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libcurl multi on sd-event, as curl's multi-event.c example does it with
 * libevent: one io source per socket curl wants watched, one timer.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>

#include "http-client.h"
#include "log.h"
#include "time-util.h"

struct HttpClient {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
        unsigned running;
        struct HttpTransfer *transfers;
};

/* One running transfer, reached through CURLOPT_PRIVATE, listed in the
 * client (curl 7.88 cannot list a multi's handles). */
typedef struct HttpTransfer {
        struct HttpTransfer *next, **prevp;
        CURL *easy;
        http_client_done_fn done;
        void *userdata;
} HttpTransfer;

static void transfer_unlink(HttpTransfer *t) {
        *t->prevp = t->next;
        if (t->next)
                t->next->prevp = t->prevp;
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

                        transfer_unlink(t);
                        free(t);
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
        sd_event_unref(c->event);
        return mfree(c);
}

int http_client_add(HttpClient *c, CURL *easy, http_client_done_fn done, void *userdata) {
        HttpTransfer *t;

        if (!c || !easy || !done)
                return -EINVAL;
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        *t = (HttpTransfer) { .easy = easy, .done = done, .userdata = userdata };
        if (curl_easy_setopt(easy, CURLOPT_PRIVATE, t) != CURLE_OK ||
            curl_multi_add_handle(c->multi, easy) != CURLM_OK) {
                (void) curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
                free(t);
                return -EIO;
        }
        t->next = c->transfers;
        if (t->next)
                t->next->prevp = &t->next;
        t->prevp = &c->transfers;
        c->transfers = t;
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
        transfer_unlink(t);
        free(t);
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
