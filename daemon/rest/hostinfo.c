/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* /host: what the host offers, and how many VMs it runs. */
#include "loop.h"
#include "request.h"
#include "routes.h"

void route_host(void *ctx, HttpRequest *req, char **params) {
        Manager *m = ((Rest *) ctx)->manager;
        json_object *j = NULL;
        unsigned running = 0;

        if (host_to_json(&m->host, &m->paths, &j) < 0) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return;
        }
        for (size_t i = 0; i < m->n_vms; i++)
                running += vm_is_up(m->vms[i]);
        json_object_object_add(j, "vms", json_object_new_int((int) m->n_vms));
        json_object_object_add(j, "running", json_object_new_int((int) running));
        if (loop_stats_to_json(j) < 0 || manager_autoballoon_to_json(m, j) < 0 || manager_pool_to_json(m, j) < 0 || sync_worker_to_json(m->sync, j) < 0) {
                json_object_put(j);
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return;
        }
        http_request_reply_json(req, 200, j);
}
