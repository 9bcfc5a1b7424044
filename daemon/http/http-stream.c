/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Streamed replies (server-sent events): data queued by the caller, pulled
 * by MHD, bounded by what the caller queues. */

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
                http_request_unref(st->request);
        }
        free(st->buf);
        free(st);
}

void http_stream_fire_closed(HttpStream *st) {
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
        http_request_suspend(req);
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
                http_request_finish_reply(r, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL);
                return -ENOMEM;
        }
        st->n_ref = 1;                          /* the caller's */
        st->request = http_request_ref(r);

        if (r->closed || !r->connection) {
                /* The request's closed handler already told the caller. */
                st->dead = st->closed_fired = true;
                http_request_finish_reply(r, 0, NULL);
                *ret = st;
                return 0;
        }

        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, HTTP_STREAM_BLOCK_SIZE,
                                                 stream_read, st, stream_response_free);
        if (!resp) {
                stream_unref(st);
                http_request_finish_reply(r, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL);
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
                http_request_finish_reply(r, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL);
                return -ENOMEM;
        }

        r->stream = st;
        /* An event stream is idle by nature; its queue bound protects us. */
        (void) MHD_set_connection_option(r->connection, MHD_CONNECTION_OPTION_TIMEOUT, 0U);
        http_request_finish_reply(r, MHD_HTTP_OK, resp);

        *ret = st;
        return 0;
}

static void stream_wake(HttpStream *st) {
        HttpRequest *req = st->request;

        if (req->connection && req->suspended)
                http_request_resume(req);
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

