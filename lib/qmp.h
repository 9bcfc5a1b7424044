/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Asynchronous QMP (QEMU Machine Protocol) client, driven by the caller's
 * event loop, plus a synchronous convenience for tools and tests.
 *
 * The client owns one connected stream socket. It reads QEMU's greeting,
 * negotiates capabilities (qmp_capabilities) by itself and holds back
 * commands invoked before that is acknowledged, then sends them in order.
 * Each command carries an "id" the client generates; replies are matched by
 * it. Asynchronous events go to the event handler.
 *
 * Event loop integration (sd-event, poll, epoll...):
 *
 *         watch qmp_client_fd(c) for qmp_client_poll_events(c), refreshed
 *         before every wait (after qmp_client_invoke() there may be output);
 *         on readiness call qmp_client_process(c); when it returns
 *         -ECONNRESET (or another error) the connection is gone: stop
 *         watching and qmp_client_free(c).
 *
 * Callbacks run from qmp_client_process(), qmp_client_call_sync() and
 * qmp_client_free(). A callback may invoke further commands and may free
 * the client (the free then completes when the outermost of those calls
 * returns); it may not call qmp_client_process() or qmp_client_call_sync()
 * on the same client (-EBUSY).
 *
 * Bounds: one message may be at most QMP_MESSAGE_MAX bytes, at most
 * QMP_COMMANDS_MAX commands may wait for their answer, and at most
 * QMP_OUTPUT_MAX bytes of output may be queued; beyond that invoke fails
 * with -ENOBUFS, and an over-long message from QEMU drops the connection.
 *
 * All functions return >= 0 or -errno and never log above debug.
 */

#include <poll.h>
#include <stdbool.h>
#include <json-c/json.h>

#include "macro.h"

#define QMP_MESSAGE_MAX (16U * 1024U * 1024U)
#define QMP_OUTPUT_MAX (16U * 1024U * 1024U)
#define QMP_COMMANDS_MAX 4096U

/* error_class given to callbacks whose command can no longer be answered
 * (EOF, protocol error, client freed). QEMU never uses this class. */
#define QMP_ERROR_CLASS_DISCONNECTED "Disconnected"

typedef struct QmpClient QmpClient;

/* result: the "return" value on success (borrowed, valid during the call;
 * take a reference with json_object_get() to keep it), NULL on error.
 * Success is error_class == NULL.
 * error_class/error_desc: from QMP's "error" object, or ("Disconnected",
 * "...") if the connection dropped before the answer. The callback of every
 * invoked command is called exactly once, also when the client is freed. */
typedef void (*qmp_result_fn)(QmpClient *c, json_object *result, const char *error_class,
                              const char *error_desc, void *userdata);

/* event: e.g. "STOP", "SHUTDOWN"; data: the event's "data" member or NULL
 * (borrowed). */
typedef void (*qmp_event_fn)(QmpClient *c, const char *event, json_object *data, void *userdata);

/* Takes ownership of a connected stream socket (made non-blocking and
 * O_CLOEXEC). On failure the fd stays the caller's. */
int qmp_client_new(int fd, QmpClient **ret);

/* Closes the fd; callbacks of unanswered commands get "Disconnected".
 * Accepts NULL; returns NULL. */
QmpClient *qmp_client_free(QmpClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(QmpClient *, qmp_client_free);
#define _cleanup_qmp_client_free_ _cleanup_(qmp_client_freep)

int qmp_client_fd(QmpClient *c);

/* POLLIN, plus POLLOUT while output is queued. */
short qmp_client_poll_events(QmpClient *c);

/* Call when the fd is ready (or whenever convenient: it never blocks).
 * Writes queued output, reads what is available, parses it (incrementally:
 * partial and several messages per read are fine) and dispatches replies
 * and events. Returns 0, -ECONNRESET on EOF/hangup (pending callbacks get
 * "Disconnected"), -EBADMSG/-EMSGSIZE when QEMU sent something that is not
 * QMP (the connection is then dropped the same way), or another -errno.
 * If a callback freed the client, returns 0 and c is gone. */
int qmp_client_process(QmpClient *c);

/* Queues command (with args, NULL for none; a reference is taken) and
 * returns at once; cb (may be NULL) gets the answer later. Before the
 * greeting has been answered the command is held back. Returns 0,
 * -ENOTCONN if the connection is gone, -ENOBUFS over the bounds. */
int qmp_client_invoke(QmpClient *c, const char *command, json_object *args, qmp_result_fn cb,
                      void *userdata);

void qmp_client_set_event_handler(QmpClient *c, qmp_event_fn fn, void *userdata);

/* Greeting received and qmp_capabilities acknowledged, still connected. */
bool qmp_client_is_ready(QmpClient *c);
bool qmp_client_is_connected(QmpClient *c);

/* QEMU's greeting ({"QMP": {"version": ..., "capabilities": [...]}}'s inner
 * object, borrowed), or NULL before it arrived. */
json_object *qmp_client_get_greeting(QmpClient *c);

/* Invokes command and runs the client (poll() + qmp_client_process()) until
 * its answer arrives or timeout_ms (>= 0) passes, whether or not the
 * greeting has arrived yet. Other replies and events are dispatched as
 * usual meanwhile. Returns 0 and *ret_result (optional; a new reference,
 * may be NULL if QEMU returned null), -EREMOTEIO when QEMU answered with an
 * error, -ECONNRESET when the connection dropped, -ETIMEDOUT. On
 * -EREMOTEIO/-ECONNRESET *ret_error (optional) is "Class: desc". After
 * -ETIMEDOUT the command stays pending; its late answer is dropped. */
int qmp_client_call_sync(QmpClient *c, const char *command, json_object *args, int timeout_ms,
                         json_object **ret_result, char **ret_error);

/* socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC) connected to path (blocking).
 * -ENAMETOOLONG if path does not fit a unix socket address. */
int qmp_connect_unix(const char *path, int *ret_fd);
