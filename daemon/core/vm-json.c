/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A VM as the API shows it: its config, state and live status. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "cid-alloc.h"
#include "fd-util.h"
#include "fileio.h"
#include "json-util.h"
#include "log.h"
#include "macro.h"
#include "memory-usage.h"
#include "process.h"
#include "qemu-argv.h"
#include "string-util.h"
#include "time-util.h"
#include "vm.h"
#include "vm-internal.h"

static json_object *mib_fixed(uint64_t kib) {
        return json_object_new_fixed((double) kib / 1024.0, 1);
}

/* Where the VM's host memory goes (QEMU by kind of mapping, plus the
 * helpers: vsock, passt): what bench/density sums up, for one VM. */
static void host_memory_add(Vm *vm, json_object *o) {
        MemoryUsage q, h = {}, p = {};
        json_object *m;

        if (memory_usage_read(vm->pid, &q) < 0)
                return;
        if (vm->helper.pid > 0)
                (void) memory_usage_read(vm->helper.pid, &h);
        if (vm->passt.pid > 0 && memory_usage_read(vm->passt.pid, &p) >= 0)
                h.pss_kib += p.pss_kib;
        m = json_object_new_object();
        if (!m)
                return;
        json_object_object_add(m, "pss_mib", mib_fixed(q.pss_kib + h.pss_kib));
        json_object_object_add(m, "guest_ram_mib", mib_fixed(q.guest_ram_kib));
        json_object_object_add(m, "tcg_cache_mib", mib_fixed(q.tcg_cache_kib));
        json_object_object_add(m, "qemu_private_mib", mib_fixed(q.private_kib));
        json_object_object_add(m, "files_mib", mib_fixed(q.files_kib));
        json_object_object_add(m, "helper_mib", mib_fixed(h.pss_kib));
        json_object_object_add(o, "host_memory", m);
}

#define USAGE_MAX_AGE_USEC (1000ULL * 1000ULL)

/* QEMU's CPU time and the RSS of QEMU and its helpers; fresh: read now,
 * else a reading up to a second old (GET /vms of 200 VMs would read 400
 * /proc files each time). */
static void usage_read(Vm *vm, bool fresh, uint64_t *ret_cpu_ns, uint64_t *ret_rss) {
        uint64_t now = now_usec(CLOCK_MONOTONIC), cpu_ns = 0, rss = 0, hcpu, hrss;

        if (!fresh && vm->usage_mono > 0 && vm->usage_mono >= vm->started_mono &&
            now - vm->usage_mono < USAGE_MAX_AGE_USEC) {
                *ret_cpu_ns = vm->usage_cpu_ns;
                *ret_rss = vm->usage_rss;
                return;
        }
        (void) process_usage(vm->pid, &cpu_ns, &rss);
        if (vm->helper.pid > 0 && process_usage(vm->helper.pid, &hcpu, &hrss) >= 0)
                rss += hrss;
        if (vm->passt.pid > 0 && process_usage(vm->passt.pid, &hcpu, &hrss) >= 0)
                rss += hrss;
        vm->usage_mono = now;
        *ret_cpu_ns = vm->usage_cpu_ns = cpu_ns;
        *ret_rss = vm->usage_rss = rss;
}

int vm_status_to_json(Vm *vm, bool host_memory, json_object **ret) {
        json_object *o = json_object_new_object();
        uint64_t cpu_ns = 0, rss = 0;

        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "vmid", json_object_new_int64(vm->vmid));
        json_object_object_add(o, "name", json_object_new_string(vm->config->name));
        json_object_object_add(o, "state", json_object_new_string(vm_state_to_string(vm->state)));
        /* What runs, not what is pending. */
        json_object_object_add(o, "cid", json_object_new_int64(vm_running_config(vm)->cid));
        json_object_object_add(o, "memory_mib", json_object_new_int64((int64_t) vm_running_config(vm)->memory_mib));
        if (vm->running_cf) {
                json_object *running = NULL;

                if (vm_config_to_json(vm->running_cf, &running) >= 0)
                        json_object_object_add(o, "running", running);
        }
        if (vm->pid > 0 && vm_is_up(vm)) {
                json_object_object_add(o, "pid", json_object_new_int64(vm->pid));
                if (vm->helper.pid > 0)
                        json_object_object_add(o, "helper_pid", json_object_new_int64(vm->helper.pid));
                if (vm->passt.pid > 0)
                        json_object_object_add(o, "passt_pid", json_object_new_int64(vm->passt.pid));
                /* How this run began: booted, or a warm-pool guest claimed. */
                json_object_object_add(o, "start_path", json_object_new_string(vm->from_pool ? "pool" : "cold"));
                json_object_object_add(o, "uptime",
                                       json_object_new_fixed((double) (now_usec(CLOCK_REALTIME) - vm->started_usec) / 1e6, 3));
                usage_read(vm, host_memory, &cpu_ns, &rss);
                json_object_object_add(o, "cpu_seconds", json_object_new_fixed((double) cpu_ns / 1e9, 3));
                json_object_object_add(o, "rss_bytes", json_object_new_int64((int64_t) rss));
                if (host_memory)
                        host_memory_add(vm, o);
                json_object_object_add(o, "accel", json_object_new_string(vm_accel_to_string(vm->accel)));
                (void) agent_to_json(&vm->agent, o);
                if (vm_running_config(vm)->balloon_mib > 0) {
                        json_object_object_add(o, "balloon_target_mib",
                                               json_object_new_int64((int64_t) vm->balloon_target_mib));
                        json_object_object_add(o, "balloon_actual_mib",
                                               json_object_new_int64((int64_t) vm->balloon_actual_mib));
                        json_object_object_add(o, "balloon_auto", json_object_new_boolean(!vm->balloon_manual));
                }
        }
        if (vm->state == VM_STATE_CRASHED) {
                json_object *e = json_object_new_object(), *lines = json_object_new_array();

                if (vm->exit_code >= 0)
                        json_object_object_add(e, "code", json_object_new_int(vm->exit_code));
                if (vm->exit_signal > 0)
                        json_object_object_add(e, "signal", json_object_new_string(sigabbrev_np(vm->exit_signal)
                                                                                       ? sigabbrev_np(vm->exit_signal)
                                                                                       : "?"));
                if (vm->crash_reason)
                        json_object_object_add(e, "reason", json_object_new_string(vm->crash_reason));
                STRV_FOREACH(l, vm->exit_stderr)
                        json_object_array_add(lines, json_object_new_string(*l));
                json_object_object_add(e, "stderr", lines);
                json_object_object_add(o, "exit", e);
        }
        *ret = o;
        return 0;
}
int vm_to_json(Vm *vm, bool with_status, json_object **ret) {
        json_object *o = json_object_new_object(), *config = NULL, *pending = json_object_new_array();
        _cleanup_strv_free_ char **keys = NULL;
        int r;

        if (!o || !pending) {
                json_object_put(o);
                json_object_put(pending);
                return -ENOMEM;
        }
        r = vm_pending_keys(vm, &keys);
        if (r >= 0)
                r = vm_config_to_json(vm->cf, &config);
        if (r < 0) {
                json_object_put(o);
                json_object_put(pending);
                return r;
        }
        json_object_object_add(o, "vmid", json_object_new_int64(vm->vmid));
        json_object_object_add(o, "name", json_object_new_string(vm->config->name));
        json_object_object_add(o, "state", json_object_new_string(vm_state_to_string(vm->state)));
        json_object_object_add(o, "cid", json_object_new_int64(vm_running_config(vm)->cid));
        json_object_object_add(o, "config", config);
        STRV_FOREACH(k, keys)
                json_object_array_add(pending, json_object_new_string(*k));
        json_object_object_add(o, "pending_restart", pending);
        if (with_status) {
                json_object *s = NULL;

                if (vm_status_to_json(vm, false, &s) >= 0)
                        json_object_object_add(o, "status", s);
        }
        *ret = o;
        return 0;
}
