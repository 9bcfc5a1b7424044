/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What every route needs: the body as JSON, query flags, the VM named in
 * the path, a VM as the API shows it, and errno / agent codes mapped to
 * API errors. Each helper that returns "nothing" has replied already. */

#include <json-c/json.h>
#include <stdbool.h>

#include "api.h"
#include "http-server.h"
#include "manager.h"
#include "vm.h"

/* The request's body as a JSON object, or NULL after replying 400. */
json_object *rest_parse_body_object(HttpRequest *req);
/* ?key, ?key=1, ?key=true, ?key=yes. */
bool rest_query_bool(HttpRequest *req, const char *key);
/* The VM by VMID or name, or NULL after replying 404. */
Vm *rest_lookup_vm(Manager *m, HttpRequest *req, const char *id);
void rest_reply_vm(HttpRequest *req, Vm *vm, unsigned status);
/* j (taken), or 500 "out of memory" for NULL. */
void rest_reply_json(HttpRequest *req, unsigned status, json_object *j);

/* -errno of a core call that reported (error, key) → the API's error. */
ApiError rest_error_from_errno(int r, const char *key);
/* -errno of starting a background job (a template build, a model add):
 * -EEXIST NameTaken, -EBUSY (one of that name runs) Conflict, -EAGAIN (too
 * many run) Unavailable, else Internal. */
ApiError rest_error_from_job_errno(int r);
/* Replies with rest_error_from_errno() and the message (strerror if none). */
void rest_reply_errno(HttpRequest *req, int r, const char *key, const char *message);
/* A guest agent's error code ("ENOENT", "ETIMEDOUT", ...) → the API's error. */
ApiError rest_error_from_agent_code(const char *code);
