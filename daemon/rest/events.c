/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* /events: server-sent events of VM state and agent changes, rendered
 * from the manager's event callback. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"
#include "routes.h"
#include "string-util.h"
#include "time-util.h"

static void on_stream_closed(HttpStream *s, void *userdata) {
        Rest *rest = userdata;

        for (size_t i = 0; i < rest->n_streams; i++)
                if (rest->streams[i] == s) {
                        rest->streams[i] = rest->streams[--rest->n_streams];
                        break;
                }
        http_stream_close(s);           /* the caller owns the stream until it closes it */
}

void rest_events_close_all(Rest *rest) {
        for (size_t i = 0; i < rest->n_streams; i++)
                http_stream_close(rest->streams[i]);
        rest->n_streams = 0;
}

static char *state_event(Vm *vm, int previous) {
        char *msg = NULL;
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_add(o, "vmid", json_object_new_int64(vm->vmid));
        json_object_object_add(o, "name", json_object_new_string(vm->config->name));
        json_object_object_add(o, "state", json_object_new_string(vm_state_to_string(vm->state)));
        json_object_object_add(o, "previous", json_object_new_string(strempty(vm_state_to_string(previous))));
        json_object_object_add(o, "time", json_object_new_double((double) now_usec(CLOCK_REALTIME) / 1e6));
        if (asprintf(&msg, "event: state\ndata: %s\n\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) < 0)
                msg = NULL;
        json_object_put(o);
        return msg;
}

static char *agent_event(Vm *vm) {
        char *msg = NULL;

        if (asprintf(&msg, "event: agent\ndata: {\"vmid\":%u,\"name\":\"%s\",\"agent\":\"%s\"}\n\n", vm->vmid,
                     vm->config->name, agent_state_to_string(vm->agent.state)) < 0)
                return NULL;
        return msg;
}

void rest_events_on_manager(Manager *m, Vm *vm, ManagerEvent event, int previous, void *userdata) {
        Rest *rest = userdata;
        _cleanup_free_ char *msg = NULL;

        if (rest->n_streams == 0)
                return;
        msg = event == MANAGER_EVENT_STATE ? state_event(vm, previous) : agent_event(vm);
        if (!msg)
                return;
        for (size_t i = 0; i < rest->n_streams; i++)
                (void) http_stream_send(rest->streams[i], msg, strlen(msg));
}

void route_events(void *ctx, HttpRequest *req, char **params) {
        Rest *rest = ctx;
        HttpStream *s;
        HttpStream **n;

        if (rest->n_streams >= REST_STREAMS_MAX) {
                http_request_reply_error(req, API_ERROR_UNAVAILABLE, NULL, "too many event subscribers");
                return;
        }
        n = reallocarray(rest->streams, rest->n_streams + 1, sizeof(HttpStream *));
        if (!n) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return;
        }
        rest->streams = n;
        if (http_request_reply_stream(req, "text/event-stream", &s) < 0)
                return;
        rest->streams[rest->n_streams++] = s;
        http_stream_set_closed_handler(s, on_stream_closed, rest);
        /* A comment line right away, so clients know the stream is live. */
        (void) http_stream_send(s, ": zvm events\n\n", 14);
}
