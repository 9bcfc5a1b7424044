/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The warm pool (issue 13): zvmd keeps `size` guests of one shape booted to
 * READY, unclaimed. A start of a VM of that shape that has no writable
 * layer yet claims one instead of booting (vm_pool_claim()): the guest's
 * run dir becomes the VM's in one rename, the VM re-adopts the running
 * QEMU as after a zvmd restart, and the agent gives the guest the VM's
 * hostname and ssh keys. The guest already has its own secret, CID, ssh
 * host keys and writable layer: it booted on its own, no snapshot shared
 * anything. Then the pool boots a replacement, one guest at a time, while
 * the host is below automatic ballooning's high mark.
 *
 * Pool guests are VM objects of slot VMIDs (pure/pool-spec.h) outside the
 * registry: no API request names them, no event reports them. They outlive
 * zvmd like VMs do; the next zvmd re-adopts them from their run dirs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fd-util.h"
#include "fileio.h"
#include "log.h"
#include "loop.h"
#include "manager.h"
#include "pool-spec.h"
#include "ssh.h"
#include "string-util.h"
#include "time-util.h"
#include "vm.h"

#define POOL_TICK_USEC (1ULL * 1000000ULL)
#define POOL_BACKOFF_MAX_USEC (60ULL * 1000000ULL)
/* A guest that booted but whose agent never said READY is of no use. */
#define POOL_READY_TIMEOUT_USEC (120ULL * 1000000ULL)
#define POOL_HOSTNAME_TIMEOUT_USEC (10ULL * 1000000ULL)
/* A replacement boots this long after the last claim: a boot takes a core
 * for about a second under TCG, and starts come in bursts. */
#define POOL_REFILL_QUIET_USEC (1ULL * 1000000ULL)

static bool guest_down(const Vm *g) {
        return g->state == VM_STATE_STOPPED || g->state == VM_STATE_CRASHED;
}

static bool guest_ready(const Vm *g) {
        return g->state == VM_STATE_RUNNING && g->agent.state == AGENT_READY && !g->stop_requested;
}

static void pool_arm(Manager *m, uint64_t usec) {
        if (!m->pool_timer)
                return;
        (void) sd_event_source_set_time_relative(m->pool_timer, usec);
        (void) sd_event_source_set_enabled(m->pool_timer, SD_EVENT_ONESHOT);
}

static void pool_drop(Manager *m, size_t i) {
        Vm *g = m->pool_guests[i];

        memmove(m->pool_guests + i, m->pool_guests + i + 1, (m->n_pool_guests - i - 1) * sizeof(Vm *));
        m->n_pool_guests--;
        vm_free(g);
}

/* A guest's state changed: a boot failed or ended, or it runs. */
static void on_guest_state(Vm *g, int previous, void *userdata) {
        Manager *m = userdata;

        if (g->state == VM_STATE_CRASHED)
                m->pool_failures++;
        pool_arm(m, 0);
}

static int pool_add(Manager *m, Vm *g) {
        Vm **l = reallocarray(m->pool_guests, m->n_pool_guests + 1, sizeof(Vm *));

        if (!l)
                return -ENOMEM;
        m->pool_guests = l;
        m->pool_guests[m->n_pool_guests++] = g;
        return 0;
}

/* A slot is free when no guest has it and no VM runs on a guest of it:
 * its uid is that QEMU's until the VM stops, and a uid is never two VMs'. */
static bool slot_used(Manager *m, uint32_t id) {
        _cleanup_free_ char *run = paths_vm_run_dir(&m->paths, id);

        for (size_t i = 0; i < m->n_pool_guests; i++)
                if (m->pool_guests[i]->vmid == id)
                        return true;
        for (size_t i = 0; i < m->n_vms; i++)
                if (m->vms[i]->pool_slot == id)
                        return true;
        return !run || access(run, F_OK) >= 0;
}

/* Boots one more guest. */
static int pool_boot(Manager *m) {
        _cleanup_free_ char *text = NULL, *err = NULL, *data = NULL, *name = NULL;
        uint32_t id = POOL_VMID_BASE, cid;
        Vm *g = NULL;
        int r;

        while (id < POOL_VMID_END && slot_used(m, id))
                id++;
        if (id >= POOL_VMID_END)
                return -ENOSPC;
        /* A new guest inherits nothing: not a layer that a claim could not
         * move out (its VM has stopped since, or the slot would be used). */
        data = paths_vm_data_dir(&m->paths, id);
        if (!data || asprintf(&name, "%" PRIu32, id) < 0)
                return -ENOMEM;
        if (access(data, F_OK) >= 0) {
                _cleanup_close_ int dfd = open(m->paths.data_vms, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

                log_warning("Warm pool: removing what a run left in %s before guest %u boots", data, id);
                if (dfd >= 0)
                        (void) rm_rf_at(dfd, name);
        }
        r = manager_pick_cid(m, id, &cid);
        if (r >= 0)
                r = pool_spec_config(&m->pool_spec, id, cid, &text);
        if (r >= 0)
                r = vm_new_pool(&m->pool_ctx, id, text, &g, &err);
        if (r >= 0 && (r = pool_add(m, g)) < 0)
                vm_free(g);
        if (r < 0)
                return log_warning_errno(r, "Warm pool: cannot make guest %u: %s", id, err ? err : errno_str(r));
        loop_note("warm pool: booting guest %u", id);
        r = vm_start(g, /* root= */ true, &err);
        if (r < 0) {
                log_warning("Warm pool: guest %u did not start: %s", id, strnull(err));
                m->pool_failures++;
                (void) vm_remove_files(g);
                pool_drop(m, m->n_pool_guests - 1);
                return r;
        }
        log_info("Warm pool: booting guest %u (CID %u)", id, cid);
        return 0;
}

static bool host_has_room(Manager *m) {
        /* Automatic ballooning's high mark: above it the pool does not grow. */
        return m->autoballoon.high_pct == 0 || m->autoballoon_used_pct < m->autoballoon.high_pct;
}

static int on_pool_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        uint64_t now = now_usec(CLOCK_MONOTONIC), next = POOL_TICK_USEC;
        size_t alive = 0;
        bool booting = false;

        loop_note("warm pool");
        /* The guests that are down go (with their run and data dirs); a
         * guest never ready, or one too many (a smaller size), is stopped. */
        for (size_t i = m->n_pool_guests; i-- > 0;) {
                Vm *g = m->pool_guests[i];

                if (guest_down(g)) {
                        (void) vm_remove_files(g);
                        pool_drop(m, i);
                        continue;
                }
                if (g->state == VM_STATE_STOPPING)
                        continue;
                if (alive >= m->pool_spec.size ||
                    (g->agent.state != AGENT_READY && g->started_mono > 0 && now - g->started_mono > POOL_READY_TIMEOUT_USEC)) {
                        log_info("Warm pool: stopping guest %u (%s)", g->vmid,
                                 alive >= m->pool_spec.size ? "more than the pool's size" : "its agent never said READY");
                        (void) vm_stop(g);
                        continue;
                }
                alive++;
                if (!guest_ready(g))
                        booting = true;
        }
        if (m->pool_failures > 0)
                next = MIN(POOL_BACKOFF_MAX_USEC, POOL_TICK_USEC << MIN(m->pool_failures, 6U));
        /* One boot at a time: a refill never takes both cores from the
         * starts and the guests that run. */
        if (now < m->pool_quiet_mono)
                next = MIN(next, m->pool_quiet_mono - now);
        else if (alive < m->pool_spec.size && !booting && host_has_room(m) &&
                 (m->pool_failures == 0 || now >= m->pool_retry_mono)) {
                if (pool_boot(m) < 0)
                        m->pool_retry_mono = now + next;
        }
        if (m->pool_spec.size > 0 || m->n_pool_guests > 0)
                pool_arm(m, next);
        return 0;
}

/* A guest that outlived the previous zvmd: re-adopted from its run dir. */
static void pool_readopt(Manager *m, uint32_t id) {
        _cleanup_free_ char *run = paths_vm_run_dir(&m->paths, id), *conf = NULL, *text = NULL, *err = NULL;
        Vm *g = NULL;
        int r;

        conf = run ? strjoin(run, "/running.conf") : NULL;
        if (!conf)
                return;
        r = read_full_file(conf, &text, NULL, CONFIG_FILE_SIZE_MAX);
        if (r >= 0)
                r = vm_new_pool(&m->pool_ctx, id, text, &g, &err);
        if (r >= 0 && (r = pool_add(m, g)) < 0)
                vm_free(g);
        if (r < 0) {
                log_warning("Warm pool: cannot take back guest %u (%s): %s", id, run, err ? err : errno_str(r));
                return;
        }
        r = vm_adopt(g);
        if (r < 0)
                log_warning_errno(r, "Warm pool: guest %u: re-adoption failed: %m", id);
        /* READY's deadline counts from now: a re-adopted guest whose agent
         * never answers is stopped like a new one, and does not hold the
         * pool's one boot at a time for ever. */
        g->started_mono = now_usec(CLOCK_MONOTONIC);
        if (vm_is_up(g) && !vm_config_same_run(g->cf, m->pool_cf, "vsock")) {
                log_info("Warm pool: guest %u is of another shape than the pool's; stopping it", id);
                (void) vm_stop(g);
        }
}

/* Run and data dirs of slots: guests to re-adopt, leftovers to remove. */
static void pool_scan(Manager *m, const char *dir, bool run) {
        DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d))) {
                uint32_t id;

                if (safe_atou32(de->d_name, &id) < 0 || !pool_vmid(id))
                        continue;
                if (run) {
                        pool_readopt(m, id);
                        continue;
                }
                /* A data dir of a slot nothing runs on: its guest is gone
                 * (what a claim moves out has been moved: VMs are
                 * re-adopted first; a VM whose claim could not move its
                 * layer still runs on it, and holds the slot). */
                if (!slot_used(m, id)) {
                        log_info("Warm pool: removing what guest %u left in %s", id, dir);
                        (void) rm_rf_at(dirfd(d), de->d_name);
                }
        }
        closedir(d);
}

/* A guest's name is no VM's; its CID was picked free (manager_pick_cid()). */
static int pool_unique_error(Vm *vm, const VmConfig *c, char **ret_error, char **ret_key, void *userdata) {
        return 0;
}

int manager_pool_setup(Manager *m, const PoolSpec *spec) {
        _cleanup_free_ char *text = NULL;
        ConfigError err = {};
        int r;

        m->pool_spec = *spec;
        m->pool_ctx = m->vm_ctx;
        m->pool_ctx.state_changed = on_guest_state;
        m->pool_ctx.renamed = NULL;
        m->pool_ctx.unique_error = pool_unique_error;
        /* The shape: what a VM's config is compared with (vm_config_same_run()). */
        r = pool_spec_config(spec, POOL_VMID_BASE, VM_CID_MIN, &text);
        if (r >= 0)
                r = config_file_parse(text, strlen(text), &m->pool_cf, &err);
        if (r < 0)
                return r;
        r = sd_event_add_time_relative(m->event, &m->pool_timer, CLOCK_MONOTONIC, 0, 0, on_pool_tick, m);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(m->pool_timer, "warm-pool");
        /* VMs were re-adopted first (manager_load()): their claims are done. */
        pool_scan(m, m->paths.run_vms, true);
        pool_scan(m, m->paths.data_vms, false);
        if (spec->size > 0)
                log_info("Warm pool: %u guest(s) of template %s, %" PRIu64 " MiB, %u core(s); %zu re-adopted",
                         spec->size, spec->template_name, spec->memory_mib, spec->cores, m->n_pool_guests);
        return 0;
}

void manager_pool_free(Manager *m) {
        /* The guests run on, for the next zvmd. */
        for (size_t i = 0; i < m->n_pool_guests; i++)
                vm_free(m->pool_guests[i]);
        m->pool_guests = mfree(m->pool_guests);
        m->n_pool_guests = 0;
        m->pool_timer = sd_event_source_disable_unref(m->pool_timer);
        m->pool_cf = config_file_free(m->pool_cf);
}

static void on_hostname_set(VmAgent *a, json_object *response, const char *code, const char *message,
                            void *userdata) {
        Vm *vm = container_of(a, Vm, agent);

        /* Cancelled: the VM went down (its clean-up ends the claim's
         * naming and says why the start failed) or zvmd lets go of it
         * (the next zvmd names it: state.json still says naming). */
        if (!response && code && streq(code, "ESHUTDOWN"))
                return;
        if (response) {
                agent_answered(a);      /* exec and friends need not wait for the ping */
                log_info("VM %u (%s): the pool guest took its name, %.1f ms after the start", vm->vmid,
                         vm->config->name, (double) (now_usec(CLOCK_MONOTONIC) - vm->started_mono) / 1000.0);
        }
        else
                log_warning("VM %u (%s): the pool guest keeps its name, the agent could not set the hostname: %s (%s)",
                            vm->vmid, vm->config->name, strnull(message), strnull(code));
        vm_pool_named(vm);      /* done, or given up: a restart of zvmd does not try again */
        if (vm->state == VM_STATE_STARTING)
                vm_set_state(vm, VM_STATE_RUNNING);
}

/* The guest becomes the VM's: its name and authorized keys; running once
 * the name is set (bounded by the call's timeout). Again after a zvmd
 * killed during a claim: both are idempotent. */
void manager_pool_personalise(Manager *m, Vm *vm) {
        json_object *req = json_object_new_object();
        int r;

        if (vm->state != VM_STATE_RUNNING) {
                vm->naming = VM_NAMING_NONE;
                return (void) json_object_put(req);
        }
        (void) manager_known_hosts_write(m);    /* its host keys moved to the VM's data dir */
        ssh_push_authorized_keys(&vm->agent, vm->config->sshkeys);
        vm->state = VM_STATE_STOPPED;           /* re-adoption said running, silently */
        vm->naming = VM_NAMING_IN_FLIGHT;       /* QMP's first answer must not say running */
        vm_set_state(vm, VM_STATE_STARTING);
        json_object_object_add(req, "op", json_object_new_string("set-hostname"));
        json_object_object_add(req, "hostname", json_object_new_string(vm->config->name));
        r = agent_call(&vm->agent, req, POOL_HOSTNAME_TIMEOUT_USEC, on_hostname_set, NULL, NULL);
        if (r < 0)
                on_hostname_set(&vm->agent, NULL, "EIO", errno_str(r), NULL);
}

/* Whether vm is of the pool's shape and starts for the first time: a
 * cold start of such a VM means the pool had no guest ready (too small
 * for the burst, or still refilling). */
static bool pool_could_serve(Manager *m, Vm *vm) {
        return m->pool_cf && m->pool_spec.size > 0 && vm_config_same_run(m->pool_cf, vm->cf, "vsock") &&
               vm_pool_first_start(vm) > 0;
}

/* 1: vm runs (is starting) on a pool guest; 0: it starts cold; < 0: it
 * claimed a guest that zvmd could not take over (the start fails). */
static int pool_try_claim(Manager *m, Vm *vm, char **ret_error) {
        _cleanup_free_ char *err = NULL;
        int r;

        if (m->pool_spec.size == 0 && m->n_pool_guests == 0)
                return 0;
        for (size_t i = 0; i < m->n_pool_guests; i++) {
                Vm *g = m->pool_guests[i];

                if (!guest_ready(g) || !vm_config_same_run(g->running_cf, vm->cf, "vsock"))
                        continue;
                loop_note("VM %s: claiming pool guest %u", vm->config->name, g->vmid);
                vm->started_mono = now_usec(CLOCK_MONOTONIC);
                r = vm_pool_claim(vm, g, &err);
                if (r < 0) {
                        log_info("VM %u (%s): starts cold: %s", vm->vmid, vm->config->name, strnull(err));
                        m->pool_misses++;
                        return 0;
                }
                pool_drop(m, i);        /* lets go of its processes: vm takes them */
                r = vm_adopt(vm);
                if (r < 0) {
                        /* Out of memory in the loop: the guest runs on in the
                         * VM's run dir, the next zvmd re-adopts it. */
                        if (ret_error)
                                *ret_error = strdup("cannot take over the claimed pool guest; it runs on, "
                                                    "restart zvmd to re-adopt it");
                        return log_warning_errno(r, "VM %u (%s): cannot take over pool guest: %m", vm->vmid,
                                                 vm->config->name);
                }
                if (!vm_is_up(vm)) {
                        log_warning("VM %u (%s): the pool guest it claimed is gone; starting cold", vm->vmid,
                                    vm->config->name);
                        return 0;
                }
                m->pool_claims++;
                manager_pool_personalise(m, vm);
                m->pool_quiet_mono = now_usec(CLOCK_MONOTONIC) + POOL_REFILL_QUIET_USEC;
                pool_arm(m, POOL_REFILL_QUIET_USEC);    /* a replacement, after the burst */
                return 1;
        }
        m->pool_misses++;
        m->pool_empty += pool_could_serve(m, vm);
        return 0;
}

int manager_start_vm(Manager *m, Vm *vm, bool root, char **ret_error) {
        int r;

        r = !vm->pool && !vm_is_up(vm) ? pool_try_claim(m, vm, ret_error) : 0;
        if (r != 0)
                return MIN(r, 0);
        return vm_start(vm, root, ret_error);
}

int manager_pool_to_json(Manager *m, json_object *o) {
        json_object *p = json_object_new_object();
        unsigned ready = 0;

        if (!p)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_pool_guests; i++)
                ready += guest_ready(m->pool_guests[i]);
        json_object_object_add(p, "size", json_object_new_int64(m->pool_spec.size));
        json_object_object_add(p, "template", json_object_new_string(m->pool_spec.template_name));
        json_object_object_add(p, "memory", json_object_new_int64((int64_t) m->pool_spec.memory_mib));
        json_object_object_add(p, "cores", json_object_new_int64(m->pool_spec.cores));
        json_object_object_add(p, "guests", json_object_new_int64((int64_t) m->n_pool_guests));
        json_object_object_add(p, "ready", json_object_new_int64(ready));
        json_object_object_add(p, "claims", json_object_new_uint64(m->pool_claims));
        json_object_object_add(p, "misses", json_object_new_uint64(m->pool_misses));
        json_object_object_add(p, "empty", json_object_new_uint64(m->pool_empty));
        json_object_object_add(o, "pool", p);
        return 0;
}

void manager_pool_template_removed(Manager *m, const char *name) {
        for (size_t i = 0; i < m->n_pool_guests; i++) {
                Vm *g = m->pool_guests[i];

                if (vm_is_up(g) && g->state != VM_STATE_STOPPING &&
                    streq_ptr(vm_running_config(g)->rootfs_template, name)) {
                        log_info("Warm pool: stopping guest %u, its template %s was removed", g->vmid, name);
                        (void) vm_stop(g);
                }
        }
}

void manager_pool_agent_changed(Manager *m, Vm *guest) {
        if (guest->agent.state == AGENT_READY)
                m->pool_failures = 0;   /* the shape boots: no more back-off */
        pool_arm(m, 0);
}
