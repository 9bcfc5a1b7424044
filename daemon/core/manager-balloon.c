/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Automatic ballooning (pure/autoballoon.h): every AUTOBALLOON_INTERVAL the
 * host's memory use from /proc/meminfo decides whether the running VMs'
 * balloons shrink toward their floors, grow back, or hold. */
#include <errno.h>
#include <inttypes.h>

#include "autoballoon.h"
#include "fd-util.h"
#include "log.h"
#include "loop.h"
#include "manager.h"
#include "vm.h"

/* Proxmox's pvestatd looks every 10 s; a step is a quarter of a VM's range,
 * so a VM goes from memory to floor in 4 steps (8 s) and back. */
#define AUTOBALLOON_INTERVAL_USEC (2ULL * 1000000ULL)

static void autoballoon_step(Manager *m, AutoballoonMode mode) {
        for (size_t i = 0; i < m->n_vms; i++) {
                Vm *vm = m->vms[i];
                uint64_t floor_mib, memory_mib, next;

                if (vm->state != VM_STATE_RUNNING || vm->balloon_manual || vm_running_config(vm)->balloon_mib == 0)
                        continue;
                floor_mib = vm_balloon_floor(vm);
                memory_mib = vm_running_config(vm)->memory_mib;
                next = autoballoon_next_target(mode, floor_mib, memory_mib, vm->balloon_target_mib);
                if (next == vm->balloon_target_mib)
                        continue;
                log_debug("VM %u: automatic balloon %" PRIu64 " → %" PRIu64 " MiB (host %u%% used, %s)", vm->vmid,
                          vm->balloon_target_mib, next, m->autoballoon_used_pct, autoballoon_mode_to_string(mode));
                (void) vm_set_balloon(vm, next, NULL, NULL, NULL);
        }
}

static int on_autoballoon(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        char text[4096];
        ssize_t n;
        unsigned used;

        loop_note("autoballoon");
        n = read_file_to_buffer("/proc/meminfo", text, sizeof(text));
        if (n >= 0 && autoballoon_meminfo_used(text, &used) >= 0) {
                m->autoballoon_used_pct = used;
                m->autoballoon_mode = autoballoon_mode(&m->autoballoon, used);
                autoballoon_step(m, m->autoballoon_mode);
        }
        return sd_event_source_set_time_relative(s, AUTOBALLOON_INTERVAL_USEC);
}

int manager_autoballoon_setup(Manager *m, const AutoballoonSettings *settings) {
        int r;

        m->autoballoon = *settings;
        m->autoballoon_source = sd_event_source_disable_unref(m->autoballoon_source);
        if (settings->high_pct == 0)
                return 0;
        r = sd_event_add_time_relative(m->event, &m->autoballoon_source, CLOCK_MONOTONIC, AUTOBALLOON_INTERVAL_USEC, 0,
                                       on_autoballoon, m);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(m->autoballoon_source, SD_EVENT_ON);
}

int manager_autoballoon_to_json(Manager *m, json_object *o) {
        json_object *a = json_object_new_object();

        if (!a)
                return -ENOMEM;
        json_object_object_add(a, "enabled", json_object_new_boolean(m->autoballoon.high_pct > 0));
        if (m->autoballoon.high_pct > 0) {
                json_object_object_add(a, "high_pct", json_object_new_int((int) m->autoballoon.high_pct));
                json_object_object_add(a, "low_pct", json_object_new_int((int) m->autoballoon.low_pct));
                json_object_object_add(a, "used_pct", json_object_new_int((int) m->autoballoon_used_pct));
                json_object_object_add(a, "mode", json_object_new_string(autoballoon_mode_to_string(m->autoballoon_mode)));
        }
        return json_object_object_add(o, "autoballoon", a) < 0 ? -ENOMEM : 0;
}
