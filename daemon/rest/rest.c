/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The REST layer's object: the HTTP server, the token store, the route
 * table and its dispatch. Everything runs in the manager's sd-event loop.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>

#include "http-route.h"
#include "http-server.h"
#include "log.h"
#include "loop.h"
#include "rest.h"
#include "routes.h"
#include "token-store.h"
#include "zvm-config.h"

static const Route routes[] = {
        { "GET", ZVM_API_PREFIX "/vms", route_vms_list },
        { "POST", ZVM_API_PREFIX "/vms", route_vms_create },
        { "GET", ZVM_API_PREFIX "/vms/{id}", route_vm_get },
        { "PATCH", ZVM_API_PREFIX "/vms/{id}", route_vm_patch },
        { "DELETE", ZVM_API_PREFIX "/vms/{id}", route_vm_delete },
        { "POST", ZVM_API_PREFIX "/vms/{id}/start", route_vm_start },
        { "POST", ZVM_API_PREFIX "/vms/{id}/shutdown", route_vm_shutdown },
        { "POST", ZVM_API_PREFIX "/vms/{id}/stop", route_vm_stop },
        { "POST", ZVM_API_PREFIX "/vms/{id}/reboot", route_vm_reboot },
        { "POST", ZVM_API_PREFIX "/vms/{id}/kill", route_vm_kill },
        { "PUT", ZVM_API_PREFIX "/vms/{id}/memory", route_vm_memory },
        { "GET", ZVM_API_PREFIX "/vms/{id}/status", route_vm_status },
        { "GET", ZVM_API_PREFIX "/vms/{id}/console/log", route_vm_console_log },
        { "POST", ZVM_API_PREFIX "/vms/{id}/exec", route_vm_exec },
        { "GET", ZVM_API_PREFIX "/vms/{id}/files", route_vm_file_get },
        { "PUT", ZVM_API_PREFIX "/vms/{id}/files", route_vm_file_put },
        { "GET", ZVM_API_PREFIX "/host", route_host },
        { "GET", ZVM_API_PREFIX "/events", route_events },
        { "GET", ZVM_API_PREFIX "/tokens", route_tokens_list },
        { "POST", ZVM_API_PREFIX "/tokens", route_tokens_create },
        { "DELETE", ZVM_API_PREFIX "/tokens/{tokenid}", route_tokens_delete },
        { "GET", ZVM_API_PREFIX "/templates", route_templates_list },
        { "POST", ZVM_API_PREFIX "/templates", route_templates_build },
        { "GET", ZVM_API_PREFIX "/templates/{name}", route_template_get },
        { "DELETE", ZVM_API_PREFIX "/templates/{name}", route_template_delete },
        { "GET", ZVM_API_PREFIX "/templates/{name}/log", route_template_log },
};

void rest_dump_routes(void) {
        for (size_t i = 0; i < ELEMENTSOF(routes); i++)
                printf("%s %s\n", routes[i].method, routes[i].pattern);
}

static void rest_handle_request(HttpRequest *req, void *userdata) {
        Rest *rest = userdata;
        const Route *route = NULL;
        char *params[ROUTE_PARAMS_MAX] = {};
        int r;

        r = route_match(routes, ELEMENTSOF(routes), http_request_method(req), http_request_path(req), &route, params);
        if (r == -EOPNOTSUPP)
                http_request_reply_error(req, API_ERROR_METHOD_NOT_ALLOWED, NULL, "%s is not allowed on %s",
                                         http_request_method(req), http_request_path(req));
        else if (r == -EINVAL)
                http_request_reply_error(req, API_ERROR_BAD_REQUEST, NULL, "malformed path");
        else if (r < 0)
                http_request_reply_error(req, API_ERROR_NOT_FOUND, NULL, "no route %s %s", http_request_method(req),
                                         http_request_path(req));
        else
                route->handler(rest, req, params);
        route_params_free(params);
}

static bool tcp_auth(const char *bearer, void *userdata) {
        Rest *rest = userdata;

        return bearer && token_store_verify(rest->tokens, bearer);
}

int rest_new(Manager *m, Rest **ret) {
        _cleanup_(rest_freep) Rest *rest = NULL;
        int r;

        rest = calloc(1, sizeof(*rest));
        if (!rest)
                return log_oom();
        rest->manager = m;
        r = token_store_load(m->paths.tokens, &rest->tokens);
        if (r < 0)
                return log_error_errno(r, "Failed to load %s: %m", m->paths.tokens);
        manager_set_event_handler(m, rest_events_on_manager, rest);
        *ret = TAKE_PTR(rest);
        return 0;
}

Rest *rest_free(Rest *rest) {
        if (!rest)
                return NULL;
        if (rest->manager && rest->manager->event_userdata == rest)
                manager_set_event_handler(rest->manager, NULL, NULL);
        rest_events_close_all(rest);
        /* Fires the closed handlers of pending requests: their Operations
         * cancel what they wait on while the VMs still exist. */
        rest->http = http_server_free(rest->http);
        free(rest->streams);
        token_store_free(rest->tokens);
        return mfree(rest);
}

static gid_t zvm_gid(void) {
        struct group *g = getgrnam("zvm");

        return g ? g->gr_gid : (gid_t) -1;
}

int rest_listen(Rest *rest, const char *tcp_address) {
        Manager *m = rest->manager;
        int r;

        r = http_server_new(m->event, rest_handle_request, rest, &rest->http);
        if (r < 0)
                return log_error_errno(r, "Failed to create the HTTP server: %m");
        http_server_set_note(rest->http, loop_note);
        r = http_server_listen_unix(rest->http, m->paths.api_socket, 0660, zvm_gid());
        if (r < 0)
                return log_error_errno(r, "Failed to listen on %s: %m", m->paths.api_socket);
        if (tcp_address) {
                r = http_server_listen_tcp(rest->http, tcp_address, tcp_auth, rest);
                if (r < 0)
                        return log_error_errno(r, "Failed to listen on %s: %m", tcp_address);
        }
        return 0;
}
