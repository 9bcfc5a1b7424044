/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "operation.h"

static void on_client_closed(HttpRequest *req, void *userdata) {
        /* The reply is a no-op that frees the request (http-server.h). */
        http_request_reply_error(operation_finish(userdata), API_ERROR_UNAVAILABLE, NULL, "client went away");
}

Operation *operation_new(HttpRequest *req, Vm *vm) {
        Operation *op = calloc(1, sizeof(*op));

        if (!op)
                return NULL;
        op->req = req;
        op->vm = vm;
        http_request_set_closed_handler(req, on_client_closed, op);
        return op;
}

HttpRequest *operation_finish(Operation *op) {
        HttpRequest *req = op->req;

        vm_wait_cancel(op->wait);
        agent_call_cancel(op->call);
        sd_event_source_disable_unref(op->defer);
        http_request_set_closed_handler(req, NULL, NULL);
        free(op);
        return req;
}

HttpRequest *operation_wait_done(Operation *op) {
        op->wait = NULL;
        return operation_finish(op);
}

HttpRequest *operation_call_done(Operation *op) {
        op->call = NULL;
        return operation_finish(op);
}
