/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The REST layer's object: the HTTP server, the token store, the route
 * table and its dispatch. Everything runs in the manager's sd-event loop.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "http-route.h"
#include "http-server.h"
#include "log.h"
#include "loop.h"
#include "model-store.h"
#include "openai.h"
#include "rest.h"
#include "routes.h"
#include "tcp.h"
#include "token-store.h"
#include "zvm-config.h"

static void route_api_index(void *ctx, HttpRequest *req, char **params);

static const Route routes[] = {
        { "GET", ZVM_API_PREFIX, route_api_index },
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
        { "GET", ZVM_API_PREFIX "/vms/{id}/pending", route_vm_pending },        /* firsthour */
        { "GET", ZVM_API_PREFIX "/vms/{id}/console/log", route_vm_console_log },
        { "POST", ZVM_API_PREFIX "/vms/{id}/exec", route_vm_exec },
        { "GET", ZVM_API_PREFIX "/vms/{id}/files", route_vm_file_get },
        { "PUT", ZVM_API_PREFIX "/vms/{id}/files", route_vm_file_put },
        { "GET", ZVM_API_PREFIX "/vms/{id}/agent-secret", route_vm_agent_secret },
        { "GET", ZVM_API_PREFIX "/host", route_host },
        { "GET", ZVM_API_PREFIX "/events", route_events },
        { "GET", ZVM_API_PREFIX "/whoami", route_whoami },              /* tls branch: rest/access.c */
        { "GET", ZVM_API_PREFIX "/tokens", route_tokens_list },
        { "POST", ZVM_API_PREFIX "/tokens", route_tokens_create },
        { "DELETE", ZVM_API_PREFIX "/tokens/{tokenid}", route_tokens_delete },
        { "GET", ZVM_API_PREFIX "/templates", route_templates_list },
        { "POST", ZVM_API_PREFIX "/templates", route_templates_build },
        { "GET", ZVM_API_PREFIX "/templates/{name}", route_template_get },
        { "DELETE", ZVM_API_PREFIX "/templates/{name}", route_template_delete },
        { "GET", ZVM_API_PREFIX "/templates/{name}/log", route_template_log },
        /* models */
        { "GET", ZVM_API_PREFIX "/models", route_models_list },
        { "POST", ZVM_API_PREFIX "/models", route_models_generate },
        { "GET", ZVM_API_PREFIX "/models/{name}", route_model_get },
        { "PUT", ZVM_API_PREFIX "/models/{name}", route_model_upload },
        { "DELETE", ZVM_API_PREFIX "/models/{name}", route_model_delete },
        /* serve: the OpenAI-compatible API (rest/openai.c) */
        { "GET", ZVM_API_PREFIX "/vms/{id}/v1/models", route_vm_openai_models },
        { "POST", ZVM_API_PREFIX "/vms/{id}/v1/chat/completions", route_vm_openai_chat },
        { "POST", ZVM_API_PREFIX "/vms/{id}/v1/completions", route_vm_openai_completions },
        { "GET", "/v1/models", route_openai_models },
        { "POST", "/v1/chat/completions", route_openai_chat },
        { "POST", "/v1/completions", route_openai_completions },
};

/* GET /api/v1(/): where to go from here, as Proxmox's GET /api2/json/
 * answers its subdirectories. The links are the table's GET collections
 * (one segment under the prefix), so a new one shows up by itself. */
static void route_api_index(void *ctx, HttpRequest *req, char **params) {
        json_object *j = json_object_new_object(), *links = json_object_new_object();
        int r = j && links ? 0 : -ENOMEM;

        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(routes); i++) {
                const char *name = startswith(routes[i].pattern, ZVM_API_PREFIX "/");

                if (streq(routes[i].method, "GET") && name && !strchr(name, '/'))
                        r = json_object_object_add(links, name, json_object_new_string(routes[i].pattern));
        }
        if (r >= 0)
                r = json_object_object_add(links, "openai_models", json_object_new_string("/v1/models"));
        if (r >= 0)
                r = json_object_object_add(j, "api_version", json_object_new_string("v1"));
        if (r >= 0)
                r = json_object_object_add(j, "version", json_object_new_string(ZVM_VERSION));
        if (r >= 0)
                r = json_object_object_add(j, "links", TAKE_PTR(links));
        json_object_put(links);
        if (r < 0) {
                json_object_put(j);
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return;
        }
        http_request_reply_json(req, 200, j);
}

void rest_dump_routes(void) {
        for (size_t i = 0; i < ELEMENTSOF(routes); i++)
                printf("%s %s\n", routes[i].method, routes[i].pattern);
}

static void rest_handle_request(HttpRequest *req, void *userdata) {
        Rest *rest = userdata;
        const Route *route = NULL;
        char *params[ROUTE_PARAMS_MAX] = {};
        const char *path = http_request_path(req);
        int r;

        /* The API's root answers with its trailing slash too, as Proxmox's
         * /api2/json/ does; elsewhere one is still a malformed path (one
         * spelling per resource). */
        if (path && streq(path, ZVM_API_PREFIX "/"))
                path = ZVM_API_PREFIX;
        r = route_match(routes, ELEMENTSOF(routes), http_request_method(req), path, &route, params);
        if (r == -EOPNOTSUPP)
                http_request_reply_error(req, API_ERROR_METHOD_NOT_ALLOWED, NULL, "%s is not allowed on %s",
                                         http_request_method(req), http_request_path(req));
        else if (r == -EINVAL)
                http_request_reply_error(req, API_ERROR_BAD_REQUEST, NULL, "malformed path");
        else if (r < 0)
                http_request_reply_error(req, API_ERROR_NOT_FOUND, NULL, "no route %s %s", http_request_method(req),
                                         http_request_path(req));
        else if (rest_access_check(req, route->method, route->pattern))      /* tls branch: roles */
                route->handler(rest, req, params);
        route_params_free(params);
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
        r = model_store_new(m->event, m->paths.models, m->paths.mkmodel, &rest->models);      /* models */
        if (r >= 0)
                model_store_set_sync(rest->models, m->sync);
        if (r < 0)
                return log_error_errno(r, "Failed to open the model store %s: %m", m->paths.models);
        /* serve: */
        r = inference_new(m->event, m->host.caps.vhost_vsock, openai_on_inference, rest, &rest->inference);
        if (r >= 0)
                r = openai_new(rest, &rest->openai);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the OpenAI-compatible API: %m");
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
        if (rest->manager && rest->manager->sync)
                sync_worker_set_done(rest->manager->sync, NULL, NULL);
        /* Fires the closed handlers of pending requests: their Operations
         * cancel what they wait on while the VMs still exist. */
        rest->http = http_server_free(rest->http);
        rest->openai = openai_free(rest->openai);               /* serve */
        rest->inference = inference_free(rest->inference);      /* serve */
        free(rest->streams);
        token_store_free(rest->tokens);
        model_store_free(rest->models);                                 /* models */
        return mfree(rest);
}

static uint64_t rest_reply_gate(void *userdata) {
        return sync_worker_pending(userdata);
}

static void rest_on_synced(uint64_t done_ticket, void *userdata) {
        Rest *rest = userdata;

        if (rest->http)
                http_server_release_replies(rest->http, done_ticket);
}

static gid_t zvm_gid(void) {
        struct group *g = getgrnam("zvm");

        return g ? g->gr_gid : (gid_t) -1;
}

int rest_listen(Rest *rest, const RestTcpOptions *tcp) {
        Manager *m = rest->manager;
        int r;

        r = http_server_new(m->event, rest_handle_request, rest, &rest->http);
        if (r < 0)
                return log_error_errno(r, "Failed to create the HTTP server: %m");
        http_server_set_note(rest->http, loop_note);
        /* A reply that confirms a change waits for its fsyncs. */
        if (m->sync) {
                http_server_set_reply_gate(rest->http, rest_reply_gate, m->sync);
                sync_worker_set_done(m->sync, rest_on_synced, rest);
        }
        http_server_set_body_sink(rest->http, rest_models_body_sink, rest);     /* models: uploads */
        r = http_server_listen_unix(rest->http, m->paths.api_socket, 0660, zvm_gid());
        if (r < 0)
                return log_error_errno(r, "Failed to listen on %s: %m", m->paths.api_socket);
        return rest_listen_tcp(rest->http, rest->tokens, m->paths.data, tcp);  /* tls branch: rest/tcp.c */
}
