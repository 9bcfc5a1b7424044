/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Asynchronous QMP client; see qmp.h for the contract.
 *
 * Wire format (QEMU 7.2): every message QEMU sends is one JSON object
 * followed by "\r\n": the greeting {"QMP": {...}}, replies {"return": X,
 * "id": ID} or {"error": {"class", "desc"}, "id": ID}, and events
 * {"event": NAME, "data": {...}, "timestamp": {...}}. Non-OOB commands are
 * executed and answered in order; an event may arrive before the reply of
 * the command that caused it (STOP precedes stop's reply).
 *
 * Commands live in one FIFO list in invocation order. Until qmp_capabilities
 * is acknowledged they stay unsent; afterwards each is serialized into the
 * output buffer as soon as it is invoked.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "fd-util.h"
#include "log.h"
#include "qmp.h"
#include "time-util.h"
#include "string-util.h"
#include "time-util.h"

#define QMP_READ_CHUNK (64U * 1024U)

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

typedef struct QmpCommand QmpCommand;
struct QmpCommand {
        QmpCommand *next;
        int64_t id;
        char *line;             /* serialized request + "\n"; NULL once moved to the output buffer */
        size_t line_len;
        bool internal;          /* our own qmp_capabilities */
        qmp_result_fn cb;
        void *userdata;
};

struct QmpClient {
        int fd;
        bool connected;
        bool ready;
        bool free_requested;
        bool processing;        /* inside qmp_client_process(): rbuf and tok are in use */
        unsigned busy;          /* nesting depth of calls that may run callbacks */

        json_tokener *tok;
        size_t msg_bytes;       /* fed to tok since the last complete message */
        json_object *greeting;

        int64_t next_id;
        QmpCommand *head, *tail;
        size_t n_commands;
        size_t unsent_bytes;    /* lines of commands held back until ready */

        char *wbuf;
        size_t wbuf_size, wbuf_start, wbuf_end;

        qmp_event_fn event_fn;
        void *event_userdata;

        char rbuf[QMP_READ_CHUNK];
};

static QmpCommand *command_free(QmpCommand *cmd) {
        if (!cmd)
                return NULL;
        free(cmd->line);
        return mfree(cmd);
}

static size_t wbuf_pending(const QmpClient *c) {
        return c->wbuf_end - c->wbuf_start;
}

static int wbuf_append(QmpClient *c, const char *s, size_t n) {
        if (c->wbuf_start == c->wbuf_end)
                c->wbuf_start = c->wbuf_end = 0;

        if (n > c->wbuf_size - c->wbuf_end) {
                size_t pending = wbuf_pending(c);

                /* Reuse the space already written out before growing. */
                if (c->wbuf_start > 0) {
                        memmove(c->wbuf, c->wbuf + c->wbuf_start, pending);
                        c->wbuf_start = 0;
                        c->wbuf_end = pending;
                }
                if (n > c->wbuf_size - c->wbuf_end) {
                        size_t want = MAX(MAX(c->wbuf_size * 2, (size_t) 4096), pending + n);
                        char *b = realloc(c->wbuf, want);
                        if (!b)
                                return -ENOMEM;
                        c->wbuf = b;
                        c->wbuf_size = want;
                }
        }

        memcpy(c->wbuf + c->wbuf_end, s, n);
        c->wbuf_end += n;
        return 0;
}

static int command_new(QmpClient *c, const char *command, json_object *args, QmpCommand **ret) {
        _cleanup_(json_object_putp) json_object *msg = NULL;
        _cleanup_free_ char *line = NULL;
        QmpCommand *cmd;
        json_object *v;
        const char *s;

        msg = json_object_new_object();
        if (!msg)
                return -ENOMEM;
        v = json_object_new_string(command);
        if (!v)
                return -ENOMEM;
        if (json_object_object_add(msg, "execute", v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        if (args && json_object_object_add(msg, "arguments", json_object_get(args)) < 0) {
                json_object_put(args);
                return -ENOMEM;
        }
        v = json_object_new_int64(c->next_id);
        if (!v)
                return -ENOMEM;
        if (json_object_object_add(msg, "id", v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }

        s = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
                return -ENOMEM;
        line = strjoin(s, "\n");
        if (!line)
                return -ENOMEM;

        cmd = calloc(1, sizeof(QmpCommand));
        if (!cmd)
                return -ENOMEM;
        cmd->id = c->next_id++;
        cmd->line_len = strlen(line);
        cmd->line = TAKE_PTR(line);

        *ret = cmd;
        return 0;
}

static void command_append(QmpClient *c, QmpCommand *cmd) {
        cmd->next = NULL;
        if (c->tail)
                c->tail->next = cmd;
        else
                c->head = cmd;
        c->tail = cmd;
        c->n_commands++;
}

static void command_unlink(QmpClient *c, QmpCommand *cmd, QmpCommand *prev) {
        if (prev)
                prev->next = cmd->next;
        else
                c->head = cmd->next;
        if (c->tail == cmd)
                c->tail = prev;
        cmd->next = NULL;
        c->n_commands--;
        if (cmd->line)
                c->unsent_bytes -= cmd->line_len;
}

/* Moves a command's request into the output buffer. */
static int command_send(QmpClient *c, QmpCommand *cmd) {
        int r;

        if (!cmd->line)
                return 0;
        r = wbuf_append(c, cmd->line, cmd->line_len);
        if (r < 0)
                return r;
        c->unsent_bytes -= cmd->line_len;
        cmd->line = mfree(cmd->line);
        log_debug("QMP: sending command %" PRIi64 ".", cmd->id);
        return 0;
}

/* Detaches cmd (already unlinked) and tells its owner. */
static void command_complete(QmpClient *c, QmpCommand *cmd, json_object *result, const char *error_class,
                             const char *error_desc) {
        if (cmd->cb)
                cmd->cb(c, result, error_class, error_desc, cmd->userdata);
        command_free(cmd);
}

static const char *disconnect_reason(int error, char *buf, size_t size) {
        switch (error) {
        case -ECONNRESET:
                return "Connection closed by QEMU";
        case -EBADMSG:
                return "Protocol error: QEMU sent something that is not a QMP message";
        case -EMSGSIZE:
                return "Protocol error: QMP message too long";
        case -EPROTO:
                return "QMP capabilities negotiation failed";
        case -ECANCELED:
                return "QMP client freed";
        default:
                (void) snprintf(buf, size, "Connection failed: %s", errno_str(error));
                return buf;
        }
}

/* Drops the connection state: every unanswered command is completed with
 * "Disconnected". The fd stays open (and owned) until qmp_client_free(), so
 * that the caller's event loop can still unregister it. */
static void client_disconnect(QmpClient *c, int error) {
        char buf[128];
        const char *why;
        QmpCommand *cmd;

        if (!c->connected)
                return;
        why = disconnect_reason(error, buf, sizeof(buf));
        log_debug("QMP: disconnected: %s", why);
        c->connected = false;
        c->ready = false;
        c->wbuf_start = c->wbuf_end = 0;

        while ((cmd = c->head)) {
                command_unlink(c, cmd, NULL);
                command_complete(c, cmd, NULL, QMP_ERROR_CLASS_DISCONNECTED, why);
        }
}

static void client_destroy(QmpClient *c) {
        assert_se(!c->head);
        (void) safe_close(c->fd);
        if (c->tok)
                json_tokener_free(c->tok);
        json_object_put(c->greeting);
        free(c->wbuf);
        free(c);
}

/* Ends a section begun with c->busy++; completes a free requested from a
 * callback inside it. Returns true if c is gone. */
static bool client_unbusy(QmpClient *c) {
        assert_se(c->busy > 0);
        if (--c->busy == 0 && c->free_requested) {
                client_destroy(c);
                return true;
        }
        return false;
}

int qmp_client_new(int fd, QmpClient **ret) {
        QmpClient *c;
        int r;

        assert_return(fd >= 0, -EBADF);
        assert_return(ret, -EINVAL);

        r = fd_nonblock(fd, true);
        if (r < 0)
                return r;
        r = fd_cloexec(fd, true);
        if (r < 0)
                return r;

        c = calloc(1, sizeof(QmpClient));
        if (!c)
                return -ENOMEM;
        c->tok = json_tokener_new();
        if (!c->tok) {
                free(c);
                return -ENOMEM;
        }
        c->fd = fd;
        c->connected = true;
        c->next_id = 1;

        *ret = c;
        return 0;
}

QmpClient *qmp_client_free(QmpClient *c) {
        if (!c || c->free_requested)
                return NULL;

        c->free_requested = true;
        c->busy++;
        client_disconnect(c, -ECANCELED);
        (void) client_unbusy(c);
        return NULL;
}

int qmp_client_fd(QmpClient *c) {
        assert_return(c, -EINVAL);
        return c->fd;
}

short qmp_client_poll_events(QmpClient *c) {
        assert_return(c, 0);
        if (!c->connected)
                return 0;
        return POLLIN | (wbuf_pending(c) > 0 ? POLLOUT : 0);
}

void qmp_client_set_event_handler(QmpClient *c, qmp_event_fn fn, void *userdata) {
        assert_return_void(c);
        c->event_fn = fn;
        c->event_userdata = userdata;
}

bool qmp_client_is_ready(QmpClient *c) {
        return c && c->connected && c->ready;
}

bool qmp_client_is_connected(QmpClient *c) {
        return c && c->connected;
}

json_object *qmp_client_get_greeting(QmpClient *c) {
        assert_return(c, NULL);
        return c->greeting;
}

static int client_send_capabilities(QmpClient *c) {
        QmpCommand *cmd;
        int r;

        r = command_new(c, "qmp_capabilities", NULL, &cmd);
        if (r < 0)
                return r;
        cmd->internal = true;

        /* First on the wire: everything else waits for its answer. */
        r = wbuf_append(c, cmd->line, cmd->line_len);
        if (r < 0) {
                command_free(cmd);
                return r;
        }
        cmd->line = mfree(cmd->line);
        cmd->next = c->head;
        c->head = cmd;
        if (!c->tail)
                c->tail = cmd;
        c->n_commands++;
        return 0;
}

static int client_became_ready(QmpClient *c) {
        c->ready = true;
        log_debug("QMP: capabilities acknowledged, sending %zu held-back command(s).", c->n_commands);
        for (QmpCommand *cmd = c->head; cmd; cmd = cmd->next) {
                int r = command_send(c, cmd);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int client_dispatch_reply(QmpClient *c, json_object *msg) {
        json_object *id = NULL, *ret = NULL, *err = NULL, *cls, *desc;
        QmpCommand *cmd, *prev = NULL;
        bool have_id;

        have_id = json_object_object_get_ex(msg, "id", &id);
        (void) json_object_object_get_ex(msg, "return", &ret);
        (void) json_object_object_get_ex(msg, "error", &err);

        for (cmd = c->head; cmd; prev = cmd, cmd = cmd->next) {
                if (cmd->line)
                        continue; /* not sent: cannot be answered */
                /* QEMU answers a request it could not parse without an id;
                 * it answers in order, so that is the oldest one sent. */
                if (!have_id)
                        break;
                if (json_object_is_type(id, json_type_int) && json_object_get_int64(id) == cmd->id)
                        break;
        }
        if (!cmd) {
                log_debug("QMP: reply to unknown command %s, ignoring.",
                          have_id ? json_object_to_json_string(id) : "(no id)");
                return 0;
        }
        command_unlink(c, cmd, prev);

        if (err) {
                const char *class_s = NULL, *desc_s = NULL;

                if (json_object_object_get_ex(err, "class", &cls))
                        class_s = json_object_get_string(cls);
                if (json_object_object_get_ex(err, "desc", &desc))
                        desc_s = json_object_get_string(desc);
                log_debug("QMP: command %" PRIi64 " failed: %s: %s", cmd->id, strnull(class_s),
                          strnull(desc_s));

                if (cmd->internal) {
                        command_free(cmd);
                        return -EPROTO;
                }
                command_complete(c, cmd, NULL, class_s ?: "GenericError", desc_s ?: "");
                return 0;
        }

        if (cmd->internal) {
                command_free(cmd);
                return client_became_ready(c);
        }
        command_complete(c, cmd, ret, NULL, NULL);
        return 0;
}

static int client_dispatch(QmpClient *c, json_object *msg) {
        json_object *v;

        if (!json_object_is_type(msg, json_type_object))
                return -EBADMSG;

        if (!c->greeting) {
                if (!json_object_object_get_ex(msg, "QMP", &v) || !json_object_is_type(v, json_type_object))
                        return -EBADMSG;
                c->greeting = json_object_get(v);
                log_debug("QMP: greeting received, negotiating capabilities.");
                return client_send_capabilities(c);
        }

        if (json_object_object_get_ex(msg, "event", &v)) {
                json_object *data = NULL;

                if (!json_object_is_type(v, json_type_string))
                        return -EBADMSG;
                (void) json_object_object_get_ex(msg, "data", &data);
                log_debug("QMP: event %s", json_object_get_string(v));
                if (c->event_fn)
                        c->event_fn(c, json_object_get_string(v), data, c->event_userdata);
                return 0;
        }

        if (json_object_object_get_ex(msg, "return", NULL) || json_object_object_get_ex(msg, "error", NULL))
                return client_dispatch_reply(c, msg);

        log_debug("QMP: ignoring message of unknown kind: %s", json_object_to_json_string(msg));
        return 0;
}

/* Feeds received bytes to the incremental tokenizer; every completed
 * message is dispatched before the next one is parsed, so a callback that
 * frees the client stops the rest from being looked at. */
static int client_feed(QmpClient *c, const char *p, size_t n) {
        while (n > 0 && c->connected && !c->free_requested) {
                _cleanup_(json_object_putp) json_object *msg = NULL;
                enum json_tokener_error e;
                size_t used;
                int r;

                msg = json_tokener_parse_ex(c->tok, p, (int) n);
                e = json_tokener_get_error(c->tok);
                if (e == json_tokener_continue) {
                        c->msg_bytes += n;
                        return c->msg_bytes > QMP_MESSAGE_MAX ? -EMSGSIZE : 0;
                }
                if (e != json_tokener_success) {
                        log_debug("QMP: cannot parse message: %s", json_tokener_error_desc(e));
                        return -EBADMSG;
                }

                used = json_tokener_get_parse_end(c->tok);
                if (used == 0 || used > n)
                        return -EBADMSG;
                c->msg_bytes += used;
                if (c->msg_bytes > QMP_MESSAGE_MAX)
                        return -EMSGSIZE;
                c->msg_bytes = 0;
                p += used;
                n -= used;

                if (!msg) /* a bare "null" */
                        return -EBADMSG;
                r = client_dispatch(c, msg);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Reads until the socket is drained. -ECONNRESET at EOF, after everything
 * before it was dispatched. */
static int client_read(QmpClient *c) {
        while (c->connected && !c->free_requested) {
                ssize_t n;
                int r;

                n = read(c->fd, c->rbuf, sizeof(c->rbuf));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        return errno == EPIPE ? -ECONNRESET : -errno;
                }
                if (n == 0)
                        return -ECONNRESET;

                r = client_feed(c, c->rbuf, (size_t) n);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int client_flush(QmpClient *c) {
        while (c->connected && wbuf_pending(c) > 0) {
                ssize_t n;

                n = send(c->fd, c->wbuf + c->wbuf_start, wbuf_pending(c), MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && errno == ENOTSOCK) /* a pipe pair, say */
                        n = write(c->fd, c->wbuf + c->wbuf_start, wbuf_pending(c));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        return errno == EPIPE ? -ECONNRESET : -errno;
                }
                c->wbuf_start += (size_t) n;
        }
        return 0;
}

int qmp_client_process(QmpClient *c) {
        int r;

        assert_return(c, -EINVAL);
        /* From a callback: the outer call is still parsing the read buffer. */
        assert_return(!c->processing, -EBUSY);
        if (!c->connected)
                return -ECONNRESET;

        c->busy++;
        c->processing = true;
        r = client_read(c);
        if (r >= 0 && c->connected) {
                r = client_flush(c);
                /* QEMU closed its end; what it sent before that (quit's
                 * reply, SHUTDOWN) is still ours to dispatch. */
                if (r == -ECONNRESET) {
                        int k = client_read(c);
                        if (k < 0 && k != -ECONNRESET)
                                r = k;
                }
        }
        c->processing = false;
        if (r < 0)
                client_disconnect(c, r);
        else if (!c->connected && !c->free_requested)
                r = -ECONNRESET;
        (void) client_unbusy(c);
        return r;
}

int qmp_client_invoke(QmpClient *c, const char *command, json_object *args, qmp_result_fn cb, void *userdata) {
        QmpCommand *cmd;
        int r;

        assert_return(c, -EINVAL);
        assert_return(!isempty(command), -EINVAL);
        assert_return(!args || json_object_is_type(args, json_type_object), -EINVAL);

        if (!c->connected || c->free_requested)
                return -ENOTCONN;
        if (c->n_commands >= QMP_COMMANDS_MAX)
                return -ENOBUFS;

        r = command_new(c, command, args, &cmd);
        if (r < 0)
                return r;
        if (cmd->line_len > QMP_OUTPUT_MAX - MIN(QMP_OUTPUT_MAX, wbuf_pending(c) + c->unsent_bytes)) {
                command_free(cmd);
                return -ENOBUFS;
        }
        cmd->cb = cb;
        cmd->userdata = userdata;

        if (c->ready) {
                r = wbuf_append(c, cmd->line, cmd->line_len);
                if (r < 0) {
                        command_free(cmd);
                        return r;
                }
                cmd->line = mfree(cmd->line);
                log_debug("QMP: sending command %" PRIi64 " (%s).", cmd->id, command);
        } else {
                c->unsent_bytes += cmd->line_len;
                log_debug("QMP: holding back command %" PRIi64 " (%s) until capabilities are negotiated.",
                          cmd->id, command);
        }
        command_append(c, cmd);
        return 0;
}

typedef struct SyncCall {
        bool done;
        bool abandoned;         /* call_sync timed out; the callback frees us */
        int r;
        json_object *result;
        char *error;
} SyncCall;

static void sync_call_free(SyncCall *s) {
        json_object_put(s->result);
        free(s->error);
        free(s);
}

static void sync_call_done(QmpClient *c, json_object *result, const char *error_class, const char *error_desc,
                           void *userdata) {
        SyncCall *s = userdata;

        if (s->abandoned) {
                sync_call_free(s);
                return;
        }
        s->done = true;
        if (!error_class) {
                s->r = 0;
                s->result = json_object_get(result);
                return;
        }
        s->r = streq(error_class, QMP_ERROR_CLASS_DISCONNECTED) ? -ECONNRESET : -EREMOTEIO;
        if (asprintf(&s->error, "%s: %s", error_class, strempty(error_desc)) < 0)
                s->error = NULL;
}

int qmp_client_call_sync(QmpClient *c, const char *command, json_object *args, int timeout_ms,
                         json_object **ret_result, char **ret_error) {
        uint64_t deadline;
        SyncCall *s;
        int r;

        assert_return(c, -EINVAL);
        assert_return(timeout_ms >= 0, -EINVAL);
        assert_return(!c->processing, -EBUSY);

        s = calloc(1, sizeof(SyncCall));
        if (!s)
                return -ENOMEM;
        r = qmp_client_invoke(c, command, args, sync_call_done, s);
        if (r < 0) {
                free(s);
                return r;
        }

        deadline = now_usec(CLOCK_MONOTONIC) + (uint64_t) timeout_ms * USEC_PER_MSEC;
        c->busy++;
        while (!s->done) {
                struct pollfd p = { .fd = c->fd };
                uint64_t n, ms;
                int k;

                /* Disconnecting completes every command, so a client that is
                 * gone has always set s->done; this is a safety net. */
                if (!c->connected) {
                        r = -ECONNRESET;
                        break;
                }

                n = now_usec(CLOCK_MONOTONIC);
                ms = n >= deadline ? 0 : (deadline - n + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
                p.events = qmp_client_poll_events(c);
                k = poll(&p, 1, (int) MIN(ms, (uint64_t) INT_MAX));
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                if (k > 0) {
                        k = qmp_client_process(c);
                        if (k < 0 && !s->done) {
                                r = k;
                                break;
                        }
                }
                /* Checked after processing too: a peer that keeps sending
                 * other messages must not stretch the bound. */
                if (!s->done && now_usec(CLOCK_MONOTONIC) >= deadline) {
                        r = -ETIMEDOUT;
                        break;
                }
        }

        if (s->done) {
                r = s->r;
                if (r >= 0 && ret_result)
                        *ret_result = TAKE_PTR(s->result);
                if (r < 0 && ret_error)
                        *ret_error = TAKE_PTR(s->error);
                sync_call_free(s);
        } else
                /* Still pending: its callback runs later (at the latest when
                 * the client is freed) and frees s. */
                s->abandoned = true;

        (void) client_unbusy(c);
        return r;
}

int qmp_connect_unix(const char *path, int *ret_fd) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        size_t l;

        assert_return(!isempty(path), -EINVAL);
        assert_return(ret_fd, -EINVAL);

        l = strlen(path);
        if (l >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, l + 1);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (const struct sockaddr *) &sa, (socklen_t) (offsetof(struct sockaddr_un, sun_path) + l + 1)) < 0)
                return -errno;

        *ret_fd = TAKE_FD(fd);
        return 0;
}
