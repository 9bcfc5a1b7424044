/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The route handlers, one file per resource; rest.c holds the table. ctx
 * is the Rest object. Each handler owes the request exactly one reply
 * (http-server.h), now or through an Operation. */

#include "http-route.h"
#include "manager.h"
#include "rest-object.h"

/* vms.c */
void route_vms_list(void *ctx, HttpRequest *req, char **params);
void route_vms_create(void *ctx, HttpRequest *req, char **params);
void route_vm_get(void *ctx, HttpRequest *req, char **params);
void route_vm_patch(void *ctx, HttpRequest *req, char **params);
void route_vm_delete(void *ctx, HttpRequest *req, char **params);
/* vm-actions.c */
void route_vm_start(void *ctx, HttpRequest *req, char **params);
void route_vm_shutdown(void *ctx, HttpRequest *req, char **params);
void route_vm_stop(void *ctx, HttpRequest *req, char **params);
void route_vm_kill(void *ctx, HttpRequest *req, char **params);
void route_vm_reboot(void *ctx, HttpRequest *req, char **params);
void route_vm_memory(void *ctx, HttpRequest *req, char **params);
void route_vm_status(void *ctx, HttpRequest *req, char **params);
void route_vm_console_log(void *ctx, HttpRequest *req, char **params);
/* vm-pending.c (firsthour) */
void route_vm_pending(void *ctx, HttpRequest *req, char **params);
/* vm-agent.c */
void route_vm_exec(void *ctx, HttpRequest *req, char **params);
void route_vm_file_get(void *ctx, HttpRequest *req, char **params);
void route_vm_file_put(void *ctx, HttpRequest *req, char **params);
void route_vm_agent_secret(void *ctx, HttpRequest *req, char **params);
/* hostinfo.c */
void route_host(void *ctx, HttpRequest *req, char **params);
/* events.c */
void route_events(void *ctx, HttpRequest *req, char **params);
void rest_events_on_manager(Manager *m, Vm *vm, ManagerEvent event, int previous, void *userdata);
void rest_events_close_all(Rest *rest);
void rest_events_broadcast(Rest *rest, const char *msg);        /* serve */
/* openai.c (serve) */
void route_openai_models(void *ctx, HttpRequest *req, char **params);
void route_openai_chat(void *ctx, HttpRequest *req, char **params);
void route_openai_completions(void *ctx, HttpRequest *req, char **params);
void route_vm_openai_models(void *ctx, HttpRequest *req, char **params);
void route_vm_openai_chat(void *ctx, HttpRequest *req, char **params);
void route_vm_openai_completions(void *ctx, HttpRequest *req, char **params);
/* tokens.c */
void route_tokens_list(void *ctx, HttpRequest *req, char **params);
void route_tokens_create(void *ctx, HttpRequest *req, char **params);
void route_tokens_delete(void *ctx, HttpRequest *req, char **params);
/* templates.c */
void route_templates_list(void *ctx, HttpRequest *req, char **params);
void route_templates_build(void *ctx, HttpRequest *req, char **params);
void route_template_get(void *ctx, HttpRequest *req, char **params);
void route_template_log(void *ctx, HttpRequest *req, char **params);
void route_template_delete(void *ctx, HttpRequest *req, char **params);
/* models.c */
void route_models_list(void *ctx, HttpRequest *req, char **params);
void route_models_generate(void *ctx, HttpRequest *req, char **params);
void route_model_get(void *ctx, HttpRequest *req, char **params);
void route_model_upload(void *ctx, HttpRequest *req, char **params);
void route_model_delete(void *ctx, HttpRequest *req, char **params);
/* false after replying 400 when body sets "model" to a name the store lacks. */
bool rest_models_check_body(Rest *rest, HttpRequest *req, json_object *body);
int rest_models_body_sink(HttpRequest *req, uint64_t length, int *ret_fd, uint64_t *ret_max, const char **ret_why,
                          void *userdata);
