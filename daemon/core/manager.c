/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The daemon's core state: the VM registry and the rules that span VMs
 * (unique names and CIDs, VMID and CID allocation). Everything runs in one
 * sd-event loop; a daemon-wide flock keeps a second zvmd off the same root.
 * The REST layer (daemon/rest/) calls in here; nothing here knows HTTP.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "cid-alloc.h"
#include "config-check.h"
#include "console-log.h"
#include "fd-util.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "process-async.h"
#include "ssh.h"
#include "string-util.h"
#include "sync-worker.h"
#include "template.h"
#include "vm.h"
#include "zvm-config.h"

/* ---- registry -------------------------------------------------------------- */

static int vm_cmp(const void *a, const void *b) {
        const Vm *x = *(Vm *const *) a, *y = *(Vm *const *) b;

        return x->vmid < y->vmid ? -1 : x->vmid > y->vmid;
}

int manager_add_vm(Manager *m, Vm *vm) {
        Vm **n;

        if (m->n_vms >= MANAGER_VMS_MAX)
                return -ENOSPC;
        n = reallocarray(m->vms, m->n_vms + 1, sizeof(Vm *));
        if (!n)
                return -ENOMEM;
        m->vms = n;
        m->vms[m->n_vms++] = vm;
        qsort(m->vms, m->n_vms, sizeof(Vm *), vm_cmp);
        return 0;
}

void manager_remove_vm(Manager *m, Vm *vm) {
        for (size_t i = 0; i < m->n_vms; i++)
                if (m->vms[i] == vm) {
                        memmove(m->vms + i, m->vms + i + 1, (m->n_vms - i - 1) * sizeof(Vm *));
                        m->n_vms--;
                        return;
                }
}

Vm *manager_find_vmid(Manager *m, uint32_t vmid) {
        for (size_t i = 0; i < m->n_vms; i++)
                if (m->vms[i]->vmid == vmid)
                        return m->vms[i];
        return NULL;
}

Vm *manager_find_name(Manager *m, const char *name) {
        for (size_t i = 0; i < m->n_vms; i++)
                if (streq(m->vms[i]->config->name, name))
                        return m->vms[i];
        return NULL;
}

Vm *manager_find(Manager *m, const char *id) {
        uint32_t vmid;

        if (safe_atou32(id, &vmid) >= 0)
                return manager_find_vmid(m, vmid);
        return manager_find_name(m, id);
}

int manager_free_vmid(Manager *m, uint32_t *ret) {
        for (uint32_t v = ZVM_VMID_MIN; v <= ZVM_VMID_MAX; v++)
                if (!manager_find_vmid(m, v)) {
                        *ret = v;
                        return 0;
                }
        return -ENOSPC;
}

int manager_taken_cids(Manager *m, const Vm *except, uint32_t **ret, size_t *ret_n) {
        uint32_t *cids = calloc(2 * m->n_vms + m->n_pool_guests + 1, sizeof(uint32_t));
        size_t n = 0;

        if (!cids)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_pool_guests; i++)
                if (m->pool_guests[i] != except && vm_running_config(m->pool_guests[i])->cid > 0)
                        cids[n++] = vm_running_config(m->pool_guests[i])->cid;
        for (size_t i = 0; i < m->n_vms; i++)
                if (m->vms[i] != except) {
                        /* a running VM holds its running CID until it stops */
                        uint32_t pending = m->vms[i]->config->cid, running = vm_running_config(m->vms[i])->cid;

                        if (pending > 0)
                                cids[n++] = pending;
                        if (running > 0 && running != pending)
                                cids[n++] = running;
                }
        *ret = cids;
        *ret_n = n;
        return 0;
}

int manager_pick_cid(Manager *m, uint32_t vmid, uint32_t *ret) {
        CidVhostProbe probe = CID_VHOST_PROBE_INIT;
        _cleanup_free_ uint32_t *cids = NULL;
        size_t n_cids = 0;
        int r;

        /* With kernel vsock, also skip CIDs other users of the host hold;
         * the reservation itself happens at each start. */
        r = manager_taken_cids(m, NULL, &cids, &n_cids);
        if (r >= 0)
                r = cid_alloc_pick(vmid, cids, n_cids, m->host.caps.vhost_vsock ? cid_probe_vhost : NULL, &probe, ret);
        safe_close(probe.fd);
        return r;
}

int manager_check_unique(Manager *m, const Vm *self, const VmConfig *c, Vm **ret_other) {
        for (size_t i = 0; i < m->n_pool_guests; i++)
                if (m->pool_guests[i] != self && c->cid > 0 && vm_running_config(m->pool_guests[i])->cid == c->cid) {
                        if (ret_other)
                                *ret_other = m->pool_guests[i];
                        return -EADDRINUSE;
                }
        for (size_t i = 0; i < m->n_vms; i++) {
                Vm *o = m->vms[i];

                if (o == self)
                        continue;
                if (streq(o->config->name, c->name)) {
                        if (ret_other)
                                *ret_other = o;
                        return -EEXIST;
                }
                if (c->cid > 0 && (o->config->cid == c->cid || vm_running_config(o)->cid == c->cid)) {
                        if (ret_other)
                                *ret_other = o;
                        return -EADDRINUSE;
                }
        }
        return 0;
}

/* The uniqueness failure as the API reports it. */
int manager_unique_error(Manager *m, const Vm *self, const VmConfig *c, char **ret_error, char **ret_key) {
        Vm *o = NULL;
        int r = manager_check_unique(m, self, c, &o);

        if (r == -EEXIST) {
                set_error(ret_error, "name '%s' is already used by VM %u", c->name, o->vmid);
                set_error(ret_key, "name");
        } else if (r == -EADDRINUSE) {
                set_error(ret_error, "vsock CID %u is already used by VM %u", c->cid, o->vmid);
                set_error(ret_key, "vsock");
        }
        return r;
}

int manager_create_vm(Manager *m, uint32_t vmid, json_object *body, bool root, Vm **ret, char **ret_error,
                      char **ret_key) {
        _cleanup_(config_file_freep) ConfigFile *cf = NULL;
        _cleanup_strv_free_ char **changed = NULL;
        _cleanup_free_ char *path = NULL;
        VmConfig *c = NULL;
        char name[32];
        Vm *vm = NULL;
        int r;

        if (manager_find_vmid(m, vmid))
                return set_error(ret_error, "VMID %u already exists", vmid), set_error(ret_key, "vmid"), -EEXIST;
        if (pool_vmid(vmid))
                return set_error(ret_error, "VMID %u is reserved for the warm pool's guests (%u to %u)", vmid,
                                 POOL_VMID_BASE, POOL_VMID_END - 1), set_error(ret_key, "vmid"), -EINVAL;
        if (m->n_vms >= MANAGER_VMS_MAX)
                return set_error(ret_error, "this host has %u VMs, the limit", MANAGER_VMS_MAX), -ENOSPC;
        if (!json_object_object_get_ex(body, "name", NULL))
                return set_error(ret_error, "name: required"), set_error(ret_key, "name"), -EINVAL;
        r = config_file_new(&cf);
        if (r >= 0)
                r = vm_config_apply_json(cf, body, &changed, ret_error, ret_key);
        if (r < 0)
                return r;
        /* Allocate a CID unless one was asked for (then checked below). */
        if (!config_file_get(cf, NULL, "vsock")) {
                uint32_t cid;
                char value[32];

                r = manager_pick_cid(m, vmid, &cid);
                if (r < 0)
                        return set_error(ret_error, "cannot allocate a vsock CID: %s", errno_str(r)),
                               set_error(ret_key, "vsock"), -ENOSPC;
                snprintf(value, sizeof(value), "cid=%u", cid);
                r = vm_config_set(cf, "vsock", value, ret_error);
                if (r < 0)
                        return set_error(ret_key, "vsock"), r;
        }
        r = vm_config_from_file(cf, vmid, &c, ret_error);
        if (r < 0)
                return r;
        r = manager_unique_error(m, NULL, c, ret_error, ret_key);
        /* The policy on every key (a default memory may be over the quota
         * too), the host (firsthour) on the keys the body sets. */
        if (r >= 0)
                r = policy_check_config(m->policy, c, NULL, root, ret_error, ret_key);
        if (r >= 0)
                r = config_check_host(&m->paths, m->policy, c, body, root, ret_error, ret_key);
        vm_config_free(c);
        if (r < 0)
                return r;

        snprintf(name, sizeof(name), "/%u.conf", vmid);
        path = strjoin(m->paths.vms_dir, name);
        if (!path || access(path, F_OK) == 0)
                return set_error(ret_error, "%s already exists", strnull(path)), set_error(ret_key, "vmid"), -EEXIST;
        r = config_file_save(cf, m->paths.vms_dir, name + 1, 0640);
        if (r < 0)
                return set_error(ret_error, "cannot write %s: %s", path, errno_str(r)), -EIO;
        r = vm_load(&m->vm_ctx, vmid, &vm, ret_error);
        if (r >= 0)
                r = manager_add_vm(m, vm);
        if (r < 0) {
                _cleanup_free_ char *why = ret_error ? TAKE_PTR(*ret_error) : NULL;

                (void) unlink(path);
                vm_free(vm);
                return set_error(ret_error, "cannot load the new VM: %s", why ? why : errno_str(r)), -EIO;
        }
        log_info("VM %u (%s) created", vmid, vm->config->name);
        manager_emit_state(m, vm, -1);
        *ret = vm;
        return 0;
}

int manager_delete_vm(Manager *m, Vm *vm) {
        int r;

        r = vm_remove_files(vm);
        if (r < 0)
                return r;
        log_info("VM %u (%s) deleted", vm->vmid, vm->config->name);
        manager_remove_vm(m, vm);
        vm_free(vm);
        (void) manager_known_hosts_write(m);
        return 0;
}

/* ---- events ------------------------------------------------------------------ */

void manager_emit_state(Manager *m, Vm *vm, int previous) {
        if (m->on_event)
                m->on_event(m, vm, MANAGER_EVENT_STATE, previous, m->event_userdata);
}

void manager_emit_agent(Manager *m, Vm *vm) {
        if (m->on_event)
                m->on_event(m, vm, MANAGER_EVENT_AGENT, -1, m->event_userdata);
}

/* ---- what the modules below report, and ask about the other VMs ---------------- */

int manager_known_hosts_write(Manager *m) {
        _cleanup_free_ SshKnownHost *hosts = calloc(m->n_vms + 1, sizeof(SshKnownHost));

        if (!hosts)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_vms; i++)
                hosts[i] = (SshKnownHost) { .name = m->vms[i]->config->name, .data_dir = m->vms[i]->data_dir };
        return ssh_known_hosts_write(m->paths.data, hosts, m->n_vms);
}

static void on_vm_state(Vm *vm, int previous, void *userdata) {
        manager_emit_state(userdata, vm, previous);
}

static void on_vm_renamed(Vm *vm, void *userdata) {
        (void) manager_known_hosts_write(userdata);
}

static int on_vm_unique_error(Vm *vm, const VmConfig *c, char **ret_error, char **ret_key, void *userdata) {
        return manager_unique_error(userdata, vm, c, ret_error, ret_key);
}

static int on_vm_taken_cids(Vm *vm, uint32_t **ret, size_t *ret_n, void *userdata) {
        return manager_taken_cids(userdata, vm, ret, ret_n);
}

static void on_agent_changed(VmAgent *a, AgentState previous, void *userdata) {
        Vm *vm = container_of(a, Vm, agent);

        if (vm->pool)
                manager_pool_agent_changed(userdata, vm);
        else
                manager_emit_agent(userdata, vm);
}

/* The guest said READY: its ssh host keys into known_hosts, the VM's
 * authorized keys into the guest. */
static void on_agent_ready(VmAgent *a, void *userdata) {
        Vm *vm = container_of(a, Vm, agent);

        if (ssh_record_host_keys(a, vm->data_dir) > 0)
                (void) manager_known_hosts_write(userdata);
        ssh_push_authorized_keys(a, vm->config->sshkeys);
}

/* The names of the VMs whose rootfs is this template. A running VM still
 * uses the template it started with, whatever its pending rootfs says. */
static int on_template_users(const char *name, char ***ret, void *userdata) {
        _cleanup_strv_free_ char **l = NULL;
        Manager *m = userdata;

        for (size_t i = 0; i < m->n_vms; i++)
                if ((streq_ptr(m->vms[i]->config->rootfs_template, name) ||
                     streq_ptr(vm_running_config(m->vms[i])->rootfs_template, name)) &&
                    strv_extend(&l, m->vms[i]->config->name) < 0)
                        return -ENOMEM;
        *ret = TAKE_PTR(l);
        return 0;
}

static void manager_wire(Manager *m) {
        m->agent_host = (AgentHost) {
                .event = m->event,
                .on_changed = on_agent_changed,
                .on_ready = on_agent_ready,
                .userdata = m,
        };
        m->vm_ctx = (VmContext) {
                .event = m->event,
                .bus = m->bus,
                .paths = &m->paths,
                .policy = m->policy,
                .host = &m->host,
                .agent = &m->agent_host,
                .console_log_max = CONSOLE_LOG_MAX_DEFAULT,
                .sync = m->sync,
                .state_changed = on_vm_state,
                .renamed = on_vm_renamed,
                .unique_error = on_vm_unique_error,
                .taken_cids = on_vm_taken_cids,
                .userdata = m,
        };
        m->templates = (Templates) {
                .event = m->event,
                .paths = &m->paths,
                .users = on_template_users,
                .userdata = m,
        };
}

/* ---- lifecycle of the manager ------------------------------------------------------------ */

/* The storage and network policy from <etc>/zvm.conf (absent: the
 * defaults), with zvm's own storage "local" (<data>/images) first. A file
 * that does not parse stops zvmd: running without the policy an
 * administrator wrote would hand group zvm more than was meant. */
static int manager_load_policy(Manager *m) {
        _cleanup_free_ char *text = NULL, *err = NULL, *storages = NULL, *bridges = NULL;
        size_t size = 0;
        int r;

        r = read_full_file(m->paths.zvm_conf, &text, &size, 1024 * 1024);
        if (r < 0 && r != -ENOENT)
                return log_error_errno(r, "Failed to read %s: %m", m->paths.zvm_conf);
        r = policy_parse(text, size, m->paths.images, &m->policy, &err);
        if (r < 0)
                return log_error_errno(r, "Invalid %s: %s", m->paths.zvm_conf, err ? err : errno_str(r));
        storages = policy_storage_list(m->policy);
        bridges = strv_join(m->policy->bridges, " ");
        log_info("Policy for callers other than root: storage %s; %zu raw path(s); bridges: %s; %s VLANs; "
                 "quotas (0: none): memory %" PRIu64 " MiB, cores %u, disk %" PRIu64 " MiB",
                 strnull(storages), strv_length(m->policy->raw_paths), isempty(bridges) ? "none" : bridges,
                 m->policy->any_vlan ? "declared" : "no", m->policy->max_memory_mib, m->policy->max_cores,
                 m->policy->max_disk_size >> 20);
        return 0;
}

int manager_new(const char *root, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return log_oom();
        m->lock_fd = -EBADF;
        r = paths_init(&m->paths, root);
        if (r < 0)
                return log_error_errno(r, "Failed to set up paths: %m");
        r = manager_load_policy(m);
        if (r < 0)
                return r;
        r = paths_mkdirs(&m->paths);
        if (r < 0)
                return log_error_errno(r, "Failed to create zvm's directories under '%s': %m",
                                       isempty(m->paths.root) ? "/" : m->paths.root);
        m->lock_fd = open(m->paths.lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (m->lock_fd < 0)
                return log_error_errno(-errno, "Failed to open %s: %m", m->paths.lock);
        if (flock(m->lock_fd, LOCK_EX | LOCK_NB) < 0)
                return log_error_errno(-errno, "Another zvmd is running for %s (%s is locked): %m", m->paths.run,
                                       m->paths.lock);
        /* Issue 14: a zvmd killed mid-write leaves ".#" temporaries. */
        r = paths_sweep_temporaries(&m->paths);
        if (r > 0)
                log_info("Removed %d temporary file(s) left by an interrupted write", r);
        r = sd_event_default(&m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to create the event loop: %m");
        /* ZVM_FSYNC_INLINE=1: the old way, fsyncs on the loop (bench/disk
         * compares the two). */
        if (!streq_ptr(getenv("ZVM_FSYNC_INLINE"), "1")) {
                r = sync_worker_new(m->event, &m->sync);
                if (r < 0)
                        return log_error_errno(r, "Failed to start the fsync worker: %m");
                fileio_set_sync_hook(sync_worker_hook, m->sync);
        }
        if (sd_booted() > 0 && isempty(m->paths.root)) {
                r = sd_bus_open_system(&m->bus);
                if (r >= 0)
                        /* Calls are asynchronous: their replies come through the loop. */
                        r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
                if (r < 0) {
                        log_warning_errno(r, "Cannot connect to the system bus, QEMU will not get its own scope: %m");
                        m->bus = sd_bus_flush_close_unref(m->bus);
                }
        }
        manager_wire(m);
        *ret = TAKE_PTR(m);
        return 0;
}

int manager_probe_host(Manager *m) {
        int r;

        r = host_probe(&m->host, &m->paths);
        if (r < 0)
                return r;
        m->agent_host.kernel_vsock = m->host.caps.vhost_vsock;
        log_info("zvmd %s: QEMU %s, accelerator %s (%s), %s vsock", ZVM_VERSION, m->host.qemu_version,
                 m->host.caps.kvm_usable ? "kvm" : "tcg", m->host.accel_reason,
                 m->host.caps.vhost_vsock ? "kernel" : "hybrid");
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        manager_pool_free(m);
        for (size_t i = 0; i < m->n_vms; i++)
                vm_free(m->vms[i]);
        free(m->vms);
        /* Tap removals still running finish before the loop goes. */
        process_job_detached_flush(10ULL * 1000000ULL);
        sd_event_source_disable_unref(m->watchdog);
        sd_event_source_disable_unref(m->autoballoon_source);
        agent_host_done(&m->agent_host);
        template_builds_free(&m->templates);
        sd_bus_flush_close_unref(m->bus);
        /* What was acknowledged reaches the disk before zvmd exits. */
        if (m->sync)
                fileio_set_sync_hook(NULL, NULL);
        sync_worker_free(m->sync);
        sd_event_unref(m->event);
        host_done(&m->host);
        paths_done(&m->paths);
        policy_free(m->policy);
        safe_close(m->lock_fd);
        return mfree(m);
}

int manager_load(Manager *m) {
        DIR *d = opendir(m->paths.vms_dir);
        struct dirent *de;

        if (!d)
                return log_error_errno(-errno, "Failed to open %s: %m", m->paths.vms_dir);
        while ((de = readdir(d))) {
                _cleanup_free_ char *err = NULL;
                char *dot = strrchr(de->d_name, '.');
                uint32_t vmid;
                Vm *vm = NULL;
                int r;

                if (!dot || !streq(dot, ".conf"))
                        continue;
                *dot = 0;
                if (safe_atou32(de->d_name, &vmid) < 0 || vmid < ZVM_VMID_MIN || vmid > ZVM_VMID_MAX)
                        continue;
                if (pool_vmid(vmid)) {
                        /* Its run and data dirs would be a pool guest's. */
                        log_error("Ignoring VM %u: VMIDs %u to %u are the warm pool's", vmid, POOL_VMID_BASE,
                                  POOL_VMID_END - 1);
                        continue;
                }
                r = vm_load(&m->vm_ctx, vmid, &vm, &err);
                if (r < 0) {
                        /* Leave a broken file as it is for the admin to fix;
                         * the VM is simply not managed until then. */
                        log_error("Ignoring VM %u: %s", vmid, err ? err : errno_str(r));
                        continue;
                }
                r = manager_add_vm(m, vm);
                if (r < 0) {
                        vm_free(vm);
                        log_error_errno(r, "Ignoring VM %u: %m", vmid);
                        continue;
                }
                r = vm_adopt(vm);
                if (r < 0)
                        log_warning_errno(r, "VM %u: re-adoption failed: %m", vmid);
                if (vm->naming == VM_NAMING_PENDING)
                        manager_pool_personalise(m, vm);        /* zvmd was killed during the claim */
        }
        closedir(d);
        (void) manager_known_hosts_write(m);
        template_sweep(&m->templates);
        return 0;
}

void manager_start_onboot(Manager *m) {
        for (size_t i = 0; i < m->n_vms; i++) {
                Vm *vm = m->vms[i];
                _cleanup_free_ char *err = NULL;

                if (!vm->config->onboot || vm_is_up(vm))
                        continue;
                if (manager_start_vm(m, vm, /* root= */ true, &err) < 0)
                        log_error("onboot: cannot start VM %u (%s): %s", vm->vmid, vm->config->name, strnull(err));
        }
}

void manager_set_event_handler(Manager *m, manager_event_fn fn, void *userdata) {
        m->on_event = fn;
        m->event_userdata = userdata;
}
