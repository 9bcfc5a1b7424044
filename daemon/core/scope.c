/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdint.h>

#include "macro.h"
#include "scope.h"


int scope_message_new(sd_bus *bus, const char *unit, const char *slice, const char *description, const pid_t *pids,
                      size_t n_pids, const ScopeLimits *limits, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        uint32_t real[SCOPE_PIDS_MAX];
        size_t n_real = 0;
        int r;

        for (size_t i = 0; i < n_pids; i++)
                if (pids[i] > 0) {
                        if (n_real >= ELEMENTSOF(real))
                                return -E2BIG;
                        real[n_real++] = (uint32_t) pids[i];
                }
        if (n_real == 0)
                return -EINVAL;

        r = sd_bus_message_new_method_call(bus, &m, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                           "org.freedesktop.systemd1.Manager", "StartTransientUnit");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "ss", unit, "fail");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(sv)");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'r', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "PIDs");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "au");
        if (r >= 0)
                r = sd_bus_message_append_array(m, 'u', real, n_real * sizeof(uint32_t));
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "(sv)(sv)(sv)", "Slice", "s", slice, "Description", "s", description,
                                          "CollectMode", "s", "inactive-or-failed");
        if (r >= 0 && limits && limits->memory_max > 0)
                r = sd_bus_message_append(m, "(sv)", "MemoryMax", "t", limits->memory_max);
        if (r >= 0 && limits && limits->tasks_max > 0)
                r = sd_bus_message_append(m, "(sv)", "TasksMax", "t", limits->tasks_max);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "a(sa(sv))", 0);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

int scope_start_async(sd_bus *bus, const char *unit, const char *slice, const char *description, const pid_t *pids,
                      size_t n_pids, const ScopeLimits *limits, sd_bus_message_handler_t cb, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = scope_message_new(bus, unit, slice, description, pids, n_pids, limits, &m);
        if (r < 0)
                return r;
        /* NULL slot: floating, freed with the reply (or the bus). */
        return sd_bus_call_async(bus, NULL, m, cb, userdata, 0);
}
