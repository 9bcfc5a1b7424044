/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "host.h"
#include "http-server.h"
#include "macro.h"
#include "paths.h"
#include "token-store.h"

typedef struct Vm Vm;
typedef struct TemplateBuild TemplateBuild;

/* The daemon: one event loop, the VM registry, the API servers. */
typedef struct Manager {
        sd_event *event;
        sd_bus *bus;                    /* system bus when systemd is PID 1, else NULL */
        Paths paths;
        Host host;
        HttpServer *http;
        TokenStore *tokens;
        int lock_fd;                    /* flock on <run>/zvmd.lock: one zvmd per root */
        Vm **vms;                       /* sorted by vmid */
        size_t n_vms;
        HttpStream **streams;           /* /events subscribers */
        size_t n_streams;
        sd_event_source *watchdog;
        sd_event_source *agent_listen;  /* kernel vsock: READY from every guest */
        unsigned agent_ready_conns;     /* open READY connections on agent_listen */
        uint64_t watchdog_usec;
        uint64_t console_log_max;       /* bytes per console.log part (daemon/console-log.h) */
        TemplateBuild **template_builds;        /* running, and finished since start (daemon/template.h) */
        size_t n_template_builds;
} Manager;

#define MANAGER_VMS_MAX 4096U
#define MANAGER_STREAMS_MAX 64U

int manager_new(const char *root, Manager **ret);
Manager *manager_free(Manager *m);
int manager_load(Manager *m);           /* configs + re-adoption of running VMs */
int manager_listen(Manager *m, const char *tcp_address);
void manager_start_onboot(Manager *m);

Vm *manager_find(Manager *m, const char *id);   /* vmid or name */
Vm *manager_find_vmid(Manager *m, uint32_t vmid);
Vm *manager_find_name(Manager *m, const char *name);
int manager_add_vm(Manager *m, Vm *vm);
void manager_remove_vm(Manager *m, Vm *vm);
int manager_free_vmid(Manager *m, uint32_t *ret);
/* CIDs held by any VM's config except `except`. */
int manager_taken_cids(Manager *m, const Vm *except, uint32_t **ret, size_t *ret_n);

void manager_emit_state(Manager *m, Vm *vm, int previous_state);
void manager_emit_agent(Manager *m, Vm *vm);

/* The route table, for the openapi consistency test (zvmd --dump-routes). */
void manager_dump_routes(void);
void manager_handle_request(HttpRequest *req, void *userdata);
/* The request's body as a JSON object, or NULL after replying 400. */
json_object *manager_parse_body_object(HttpRequest *req);

DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);
