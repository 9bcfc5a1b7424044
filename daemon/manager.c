/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The daemon's state: the VM registry, the event subscribers, and the REST
 * routes that act on them. Everything runs in one sd-event loop, so requests
 * are serialised; a daemon-wide flock keeps a second zvmd off the same root.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "base64.h"
#include "cid-alloc.h"
#include "fd-util.h"
#include "fileio.h"
#include "http-route.h"
#include "log.h"
#include "loop.h"
#include "macro.h"
#include "manager.h"
#include "ssh.h"
#include "template.h"
#include "string-util.h"
#include "vm.h"
#include "zvm-config.h"

#define CONSOLE_LOG_MAX (1024 * 1024)
#define SHUTDOWN_TIMEOUT_DEFAULT 60U
#define SHUTDOWN_TIMEOUT_MAX 3600U

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
        uint32_t *cids = calloc(m->n_vms + 1, sizeof(uint32_t));
        size_t n = 0;

        if (!cids)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_vms; i++)
                if (m->vms[i] != except && m->vms[i]->config->cid > 0)
                        cids[n++] = m->vms[i]->config->cid;
        *ret = cids;
        *ret_n = n;
        return 0;
}

/* ---- events ------------------------------------------------------------------ */

static void on_stream_closed(HttpStream *s, void *userdata) {
        Manager *m = userdata;

        for (size_t i = 0; i < m->n_streams; i++)
                if (m->streams[i] == s) {
                        m->streams[i] = m->streams[--m->n_streams];
                        break;
                }
        http_stream_close(s);           /* the caller owns the stream until it closes it */
}

void manager_emit_state(Manager *m, Vm *vm, int previous) {
        _cleanup_free_ char *msg = NULL;
        json_object *o;
        struct timespec ts;

        if (m->n_streams == 0)
                return;
        clock_gettime(CLOCK_REALTIME, &ts);
        o = json_object_new_object();
        if (!o)
                return;
        json_object_object_add(o, "vmid", json_object_new_int64(vm->vmid));
        json_object_object_add(o, "name", json_object_new_string(vm->config->name));
        json_object_object_add(o, "state", json_object_new_string(vm_state_to_string(vm->state)));
        json_object_object_add(o, "previous", json_object_new_string(strempty(vm_state_to_string(previous))));
        json_object_object_add(o, "time", json_object_new_double((double) ts.tv_sec + (double) ts.tv_nsec / 1e9));
        if (asprintf(&msg, "event: state\ndata: %s\n\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) < 0)
                msg = NULL;
        json_object_put(o);
        if (!msg)
                return;
        for (size_t i = 0; i < m->n_streams; i++)
                (void) http_stream_send(m->streams[i], msg, strlen(msg));
}

void manager_emit_agent(Manager *m, Vm *vm) {
        _cleanup_free_ char *msg = NULL;

        if (m->n_streams == 0)
                return;
        if (asprintf(&msg, "event: agent\ndata: {\"vmid\":%u,\"name\":\"%s\",\"agent\":\"%s\"}\n\n", vm->vmid,
                     vm->config->name, agent_state_to_string(vm->agent_state)) < 0)
                return;
        for (size_t i = 0; i < m->n_streams; i++)
                (void) http_stream_send(m->streams[i], msg, strlen(msg));
}

/* ---- request helpers ------------------------------------------------------------ */

json_object *manager_parse_body_object(HttpRequest *req) {
        enum json_tokener_error jerr = json_tokener_success;
        json_object *o;
        size_t size;
        const char *body = http_request_body(req, &size);

        if (!body || size == 0) {
                http_request_reply_error(req, API_ERROR_INVALID_JSON, NULL, "request body must be a JSON object");
                return NULL;
        }
        if (strlen(body) != size) {
                http_request_reply_error(req, API_ERROR_INVALID_JSON, NULL, "request body contains a NUL byte");
                return NULL;
        }
        o = json_tokener_parse_verbose(body, &jerr);
        if (!o) {
                http_request_reply_error(req, API_ERROR_INVALID_JSON, NULL, "malformed JSON: %s",
                                         json_tokener_error_desc(jerr));
                return NULL;
        }
        if (!json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                http_request_reply_error(req, API_ERROR_INVALID_JSON, NULL, "request body must be a JSON object");
                return NULL;
        }
        return o;
}

static void reply_vm(HttpRequest *req, Vm *vm, unsigned status) {
        json_object *j = NULL;

        if (vm_to_json(vm, true, &j) < 0) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return;
        }
        http_request_reply_json(req, status, j);
}

static Vm *lookup_or_404(Manager *m, HttpRequest *req, const char *id) {
        Vm *vm = manager_find(m, id);

        if (!vm)
                http_request_reply_error(req, API_ERROR_NOT_FOUND, NULL, "no VM with VMID or name '%s'", id);
        return vm;
}

/* Maps a vm_config_* failure to an API error. */
static void reply_config_error(HttpRequest *req, int r, const char *bad_key, const char *msg) {
        ApiError e = bad_key && !vm_config_key_known(bad_key) ? API_ERROR_UNKNOWN_KEY : API_ERROR_INVALID_VALUE;

        if (r == -ENOMEM)
                e = API_ERROR_INTERNAL;
        http_request_reply_error(req, e, bad_key, "%s", msg ? msg : strerror(-r));
}

/* Checks the cross-VM rules a single config cannot: unique names and
 * CIDs. */
static bool check_unique(Manager *m, HttpRequest *req, const Vm *self, const VmConfig *c) {
        for (size_t i = 0; i < m->n_vms; i++) {
                Vm *o = m->vms[i];

                if (o == self)
                        continue;
                if (streq(o->config->name, c->name)) {
                        http_request_reply_error(req, API_ERROR_NAME_TAKEN, "name", "name '%s' is already used by VM %u",
                                                 c->name, o->vmid);
                        return false;
                }
                if (c->cid > 0 && o->config->cid == c->cid) {
                        http_request_reply_error(req, API_ERROR_CONFLICT, "vsock", "vsock CID %u is already used by VM %u",
                                                 c->cid, o->vmid);
                        return false;
                }
        }
        return true;
}

/* ---- routes: VMs ------------------------------------------------------------------- */

static void route_vms_list(void *ctx, HttpRequest *req, char **params) {
        Manager *m = ctx;
        json_object *a = json_object_new_array();

        for (size_t i = 0; a && i < m->n_vms; i++) {
                json_object *j = NULL;

                if (vm_to_json(m->vms[i], true, &j) >= 0)
                        json_object_array_add(a, j);
        }
        if (!a) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return;
        }
        http_request_reply_json(req, 200, a);
}

static void route_vms_create(void *ctx, HttpRequest *req, char **params) {
        Manager *m = ctx;
        _cleanup_(config_file_freep) ConfigFile *cf = NULL;
        _cleanup_free_ char *err = NULL, *bad_key = NULL, *path = NULL;
        _cleanup_strv_free_ char **changed = NULL;
        _cleanup_free_ uint32_t *cids = NULL;
        json_object *body, *v;
        VmConfig *c = NULL;
        uint32_t vmid = 0;
        size_t n_cids = 0;
        char name[32];
        Vm *vm = NULL;
        int r;

        body = manager_parse_body_object(req);
        if (!body)
                return;
        if (json_object_object_get_ex(body, "vmid", &v)) {
                int64_t n = json_object_get_int64(v);
                const char *s = json_object_get_string(v);

                if (!(json_object_is_type(v, json_type_int) ||
                      (json_object_is_type(v, json_type_string) && safe_atou32(s, &vmid) >= 0)) ||
                    (json_object_is_type(v, json_type_int) && (n < ZVM_VMID_MIN || n > ZVM_VMID_MAX)) ||
                    (json_object_is_type(v, json_type_string) && (vmid < ZVM_VMID_MIN || vmid > ZVM_VMID_MAX))) {
                        http_request_reply_error(req, API_ERROR_INVALID_VALUE, "vmid",
                                                 "vmid: must be an integer between %u and %u", ZVM_VMID_MIN, ZVM_VMID_MAX);
                        goto out;
                }
                if (json_object_is_type(v, json_type_int))
                        vmid = (uint32_t) n;
                json_object_object_del(body, "vmid");
                if (manager_find_vmid(m, vmid)) {
                        http_request_reply_error(req, API_ERROR_VMID_TAKEN, "vmid", "VMID %u already exists", vmid);
                        goto out;
                }
        } else if (manager_free_vmid(m, &vmid) < 0) {
                http_request_reply_error(req, API_ERROR_CONFLICT, "vmid", "no free VMID");
                goto out;
        }
        if (m->n_vms >= MANAGER_VMS_MAX) {
                http_request_reply_error(req, API_ERROR_CONFLICT, NULL, "this host has %u VMs, the limit", MANAGER_VMS_MAX);
                goto out;
        }
        if (!json_object_object_get_ex(body, "name", NULL)) {
                http_request_reply_error(req, API_ERROR_INVALID_VALUE, "name", "name: required");
                goto out;
        }
        r = config_file_new(&cf);
        if (r >= 0)
                r = vm_config_apply_json(cf, body, &changed, &err, &bad_key);
        if (r < 0) {
                reply_config_error(req, r, bad_key, err);
                goto out;
        }
        /* Allocate a CID unless one was asked for (then checked below). */
        if (!config_file_get(cf, NULL, "vsock")) {
                uint32_t cid;
                char value[32];

                CidVhostProbe probe = CID_VHOST_PROBE_INIT;

                /* With kernel vsock, also skip CIDs other users of the host
                 * hold; the reservation itself happens at each start. */
                r = manager_taken_cids(m, NULL, &cids, &n_cids);
                if (r >= 0)
                        r = cid_alloc_pick(vmid, cids, n_cids, m->host.caps.vhost_vsock ? cid_probe_vhost : NULL,
                                           &probe, &cid);
                safe_close(probe.fd);
                if (r < 0) {
                        http_request_reply_error(req, API_ERROR_CONFLICT, "vsock", "cannot allocate a vsock CID: %s",
                                                 strerror(-r));
                        goto out;
                }
                snprintf(value, sizeof(value), "cid=%u", cid);
                r = vm_config_set(cf, "vsock", value, &err);
                if (r < 0) {
                        reply_config_error(req, r, "vsock", err);
                        goto out;
                }
        }
        r = vm_config_from_file(cf, vmid, &c, &err);
        if (r < 0) {
                reply_config_error(req, r, NULL, err);
                goto out;
        }
        if (!check_unique(m, req, NULL, c))
                goto out;

        snprintf(name, sizeof(name), "/%u.conf", vmid);
        path = strjoin(m->paths.vms_dir, name);
        if (!path || access(path, F_OK) == 0) {
                http_request_reply_error(req, API_ERROR_VMID_TAKEN, "vmid", "%s already exists", strnull(path));
                goto out;
        }
        snprintf(name, sizeof(name), "%u.conf", vmid);
        r = config_file_save(cf, m->paths.vms_dir, name, 0640);
        if (r < 0) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "cannot write %s: %s", path, strerror(-r));
                goto out;
        }
        r = vm_load(m, vmid, &vm, &err);
        if (r >= 0)
                r = manager_add_vm(m, vm);
        if (r < 0) {
                (void) unlink(path);
                vm_free(vm);
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "cannot load the new VM: %s",
                                         err ? err : strerror(-r));
                goto out;
        }
        log_info("VM %u (%s) created", vmid, vm->config->name);
        manager_emit_state(m, vm, -1);
        reply_vm(req, vm, 201);
out:
        vm_config_free(c);
        json_object_put(body);
}

static void route_vm_get(void *ctx, HttpRequest *req, char **params) {
        Vm *vm = lookup_or_404(ctx, req, params[0]);

        if (vm)
                reply_vm(req, vm, 200);
}

static void route_vm_patch(void *ctx, HttpRequest *req, char **params) {
        Manager *m = ctx;
        Vm *vm = lookup_or_404(m, req, params[0]);
        _cleanup_free_ char *err = NULL, *bad_key = NULL, *old_text = NULL;
        _cleanup_strv_free_ char **changed = NULL;
        VmConfig *c = NULL;
        bool renamed, keys_changed;
        json_object *body;
        int r;

        if (!vm)
                return;
        body = manager_parse_body_object(req);
        if (!body)
                return;
        if (json_object_object_get_ex(body, "vmid", NULL)) {
                http_request_reply_error(req, API_ERROR_INVALID_VALUE, "vmid", "vmid: cannot be changed");
                goto out;
        }
        r = config_file_format(vm->cf, &old_text, NULL);
        if (r < 0) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                goto out;
        }
        /* Validate on a copy: nothing changes unless everything passes. */
        _cleanup_(config_file_freep) ConfigFile *copy = NULL;
        r = config_file_parse(old_text, strlen(old_text), &copy, NULL);
        if (r >= 0)
                r = vm_config_apply_json(copy, body, &changed, &err, &bad_key);
        if (r < 0) {
                reply_config_error(req, r, bad_key, err);
                goto out;
        }
        r = vm_config_from_file(copy, vm->vmid, &c, &err);
        if (r < 0) {
                reply_config_error(req, r, NULL, err);
                goto out;
        }
        if (!check_unique(m, req, vm, c))
                goto out;

        ConfigFile *old_cf = vm->cf;
        vm->cf = copy;
        r = vm_save_config(vm);
        if (r < 0) {
                vm->cf = old_cf;
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "cannot write the config: %s", strerror(-r));
                goto out;
        }
        copy = NULL;
        config_file_free(old_cf);
        renamed = !streq(vm->config->name, c->name);
        keys_changed = !strv_equal(vm->config->sshkeys, c->sshkeys);
        vm_config_free(vm->config);
        vm->config = TAKE_PTR(c);
        if (renamed)
                (void) ssh_known_hosts_write(m);
        if (keys_changed && vm->state == VM_STATE_RUNNING && vm->agent_state == AGENT_READY)
                ssh_push_authorized_keys(vm);
        if (vm->state != VM_STATE_STOPPED && vm->state != VM_STATE_CRASHED)
                STRV_FOREACH(k, changed)
                        if (vm_config_key_needs_restart(*k) && !strv_contains(vm->pending_restart, *k))
                                (void) strv_extend(&vm->pending_restart, *k);
        reply_vm(req, vm, 200);
out:
        vm_config_free(c);
        json_object_put(body);
}

static bool vm_up(const Vm *vm) {
        return vm->state != VM_STATE_STOPPED && vm->state != VM_STATE_CRASHED;
}

static bool query_bool(HttpRequest *req, const char *key) {
        const char *v = http_request_query(req, key);

        return v && (streq(v, "1") || streq(v, "true") || streq(v, "yes") || isempty(v));
}

static void route_vm_delete(void *ctx, HttpRequest *req, char **params) {
        Manager *m = ctx;
        Vm *vm = lookup_or_404(m, req, params[0]);
        json_object *j = NULL;
        int r;

        if (!vm)
                return;
        if (vm_up(vm)) {
                if (!query_bool(req, "force")) {
                        http_request_reply_error(req, API_ERROR_INVALID_STATE, NULL,
                                                 "VM %u is %s: stop it first, or delete with force", vm->vmid,
                                                 vm_state_to_string(vm->state));
                        return;
                }
                r = vm_add_waiter(vm, req, VM_WAIT_DOWN, true);
                if (r >= 0)
                        r = vm_kill(vm);
                if (r < 0)
                        http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "cannot kill VM %u: %s", vm->vmid,
                                                 strerror(-r));
                return;
        }
        (void) vm_to_json(vm, false, &j);
        r = vm_remove_files(vm);
        if (r < 0) {
                json_object_put(j);
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "cannot delete VM %u: %s", vm->vmid, strerror(-r));
                return;
        }
        log_info("VM %u (%s) deleted", vm->vmid, vm->config->name);
        manager_remove_vm(m, vm);
        vm_free(vm);
        (void) ssh_known_hosts_write(m);
        if (j)
                http_request_reply_json(req, 200, j);
        else
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
}

static void route_vm_start(void *ctx, HttpRequest *req, char **params) {
        Vm *vm = lookup_or_404(ctx, req, params[0]);
        _cleanup_free_ char *err = NULL;
        int r;

        if (!vm)
                return;
        if (vm_up(vm)) {
                http_request_reply_error(req, API_ERROR_INVALID_STATE, NULL, "VM %u is already %s", vm->vmid,
                                         vm_state_to_string(vm->state));
                return;
        }
        r = vm_start(vm, &err);
        if (r < 0) {
                http_request_reply_error(req, r == -EINVAL || r == -E2BIG || r == -ENOENT || r == -ENODEV || r == -EOPNOTSUPP
                                                 ? API_ERROR_INVALID_VALUE
                                                                                          : API_ERROR_QEMU_FAILED,
                                         NULL, "cannot start VM %u: %s", vm->vmid, err ? err : strerror(-r));
                return;
        }
        if (vm->state == VM_STATE_RUNNING)
                reply_vm(req, vm, 200);
        else if (vm_add_waiter(vm, req, VM_WAIT_RUNNING, false) < 0)
                reply_vm(req, vm, 200);
}

typedef int (*vm_down_fn)(Vm *vm, unsigned timeout);

static int do_shutdown(Vm *vm, unsigned timeout) {
        return vm_shutdown(vm, timeout);
}
static int do_stop(Vm *vm, unsigned timeout) {
        return vm_stop(vm);
}
static int do_kill(Vm *vm, unsigned timeout) {
        return vm_kill(vm);
}

static void route_vm_down(Manager *m, HttpRequest *req, const char *id, vm_down_fn fn, unsigned timeout) {
        Vm *vm = lookup_or_404(m, req, id);
        int r;

        if (!vm)
                return;
        if (!vm_up(vm)) {
                http_request_reply_error(req, API_ERROR_INVALID_STATE, NULL, "VM %u is %s", vm->vmid,
                                         vm_state_to_string(vm->state));
                return;
        }
        r = vm_add_waiter(vm, req, VM_WAIT_DOWN, false);
        if (r < 0) {
                http_request_reply_error(req, API_ERROR_CONFLICT, NULL, "too many requests waiting on VM %u", vm->vmid);
                return;
        }
        r = fn(vm, timeout);
        if (r < 0)
                log_warning_errno(r, "VM %u: stop request failed: %m", vm->vmid);
}

static void route_vm_shutdown(void *ctx, HttpRequest *req, char **params) {
        const char *t = http_request_query(req, "timeout");
        unsigned timeout = SHUTDOWN_TIMEOUT_DEFAULT;

        if (t && (safe_atou32(t, &timeout) < 0 || timeout > SHUTDOWN_TIMEOUT_MAX)) {
                http_request_reply_error(req, API_ERROR_INVALID_VALUE, "timeout",
                                         "timeout: must be an integer between 0 and %u seconds", SHUTDOWN_TIMEOUT_MAX);
                return;
        }
        route_vm_down(ctx, req, params[0], do_shutdown, timeout);
}

static void route_vm_stop(void *ctx, HttpRequest *req, char **params) {
        route_vm_down(ctx, req, params[0], do_stop, 0);
}

static void route_vm_kill(void *ctx, HttpRequest *req, char **params) {
        route_vm_down(ctx, req, params[0], do_kill, 0);
}

static void route_vm_reboot(void *ctx, HttpRequest *req, char **params) {
        Vm *vm = lookup_or_404(ctx, req, params[0]);
        int r;

        if (!vm)
                return;
        r = vm_reboot(vm, NULL, NULL);
        if (r < 0) {
                http_request_reply_error(req, API_ERROR_INVALID_STATE, NULL, "VM %u cannot reboot: it is %s", vm->vmid,
                                         vm_state_to_string(vm->state));
                return;
        }
        reply_vm(req, vm, 200);
}

static void route_vm_memory(void *ctx, HttpRequest *req, char **params) {
        Vm *vm = lookup_or_404(ctx, req, params[0]);
        _cleanup_free_ char *err = NULL;
        json_object *body, *v;
        int64_t target;
        int r;

        if (!vm)
                return;
        body = manager_parse_body_object(req);
        if (!body)
                return;
        if (!json_object_object_get_ex(body, "target", &v) || !json_object_is_type(v, json_type_int) ||
            (target = json_object_get_int64(v)) <= 0) {
                json_object_put(body);
                http_request_reply_error(req, API_ERROR_INVALID_VALUE, "target", "target: must be a positive integer (MiB)");
                return;
        }
        json_object_put(body);
        r = vm_set_balloon(vm, (uint64_t) target, NULL, NULL, &err);
        if (r < 0) {
                http_request_reply_error(req, r == -ERANGE || r == -EOPNOTSUPP ? API_ERROR_INVALID_VALUE
                                                                               : API_ERROR_INVALID_STATE,
                                         "target", "%s", err ? err : strerror(-r));
                return;
        }
        reply_vm(req, vm, 200);
}

static void route_vm_status(void *ctx, HttpRequest *req, char **params) {
        Vm *vm = lookup_or_404(ctx, req, params[0]);
        json_object *j = NULL;

        if (!vm)
                return;
        if (vm_status_to_json(vm, &j) < 0) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return;
        }
        http_request_reply_json(req, 200, j);
}

static void route_vm_console_log(void *ctx, HttpRequest *req, char **params) {
        Vm *vm = lookup_or_404(ctx, req, params[0]);
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        const char *t = http_request_query(req, "tail");
        uint64_t tail = CONSOLE_LOG_MAX;
        struct stat st;
        ssize_t n;

        if (!vm)
                return;
        if (t && (safe_atou64(t, &tail) < 0)) {
                http_request_reply_error(req, API_ERROR_INVALID_VALUE, "tail", "tail: must be a byte count");
                return;
        }
        if (tail > CONSOLE_LOG_MAX)
                tail = CONSOLE_LOG_MAX;
        path = strjoin(vm->run_dir, "/console.log");
        fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
        if (fd < 0 || fstat(fd, &st) < 0) {
                http_request_reply_text(req, 200, "text/plain; charset=utf-8", "", 0);
                return;
        }
        off_t start = st.st_size > (off_t) tail ? st.st_size - (off_t) tail : 0;
        buf = malloc((size_t) (st.st_size - start) + 1);
        if (!buf) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return;
        }
        n = pread(fd, buf, (size_t) (st.st_size - start), start);
        http_request_reply_text(req, 200, "text/plain; charset=utf-8", buf, n > 0 ? (size_t) n : 0);
}

/* ---- routes: the guest agent ------------------------------------------------------------ */

#define EXEC_TIMEOUT_DEFAULT_S 30U
#define EXEC_TIMEOUT_MAX_S 86400U
#define FILE_MAX (1024U * 1024U)        /* what fits in one API request body */

typedef void (*agent_reply_fn)(HttpRequest *req, json_object *response);

/* An HTTP request waiting for the agent. Whichever comes first — the
 * agent's answer or the client leaving — ends it. */
typedef struct AgentForward {
        HttpRequest *req;
        AgentCall *call;
        agent_reply_fn reply;
} AgentForward;

static ApiError agent_error_to_api(const char *code) {
        if (streq_ptr(code, "EINVAL") || streq_ptr(code, "E2BIG") || streq_ptr(code, "EISDIR") ||
            streq_ptr(code, "ENOTDIR"))
                return API_ERROR_INVALID_VALUE;
        if (streq_ptr(code, "ENOENT"))
                return API_ERROR_NOT_FOUND;
        if (streq_ptr(code, "ETIMEDOUT") || streq_ptr(code, "ECONNREFUSED") || streq_ptr(code, "ECONNRESET") ||
            streq_ptr(code, "ESHUTDOWN"))
                return API_ERROR_UNAVAILABLE;
        return API_ERROR_INTERNAL;
}

static void on_forward_closed(HttpRequest *req, void *userdata) {
        AgentForward *f = userdata;

        agent_call_cancel(f->call);
        http_request_reply_error(req, API_ERROR_UNAVAILABLE, NULL, "client went away");
        free(f);
}

static void on_forward_result(Vm *vm, json_object *response, const char *code, const char *message, void *userdata) {
        AgentForward *f = userdata;

        http_request_set_closed_handler(f->req, NULL, NULL);
        if (response)
                f->reply(f->req, response);
        else
                http_request_reply_error(f->req, agent_error_to_api(code), NULL, "agent of VM %u: %s (%s)", vm->vmid,
                                         strnull(message), strnull(code));
        free(f);
}

static void forward_to_agent(Vm *vm, HttpRequest *req, json_object *request, uint64_t timeout_usec,
                             agent_reply_fn reply) {
        AgentForward *f;
        int r;

        if (vm->state != VM_STATE_RUNNING || vm->agent_state == AGENT_NONE) {
                json_object_put(request);
                http_request_reply_error(req, API_ERROR_INVALID_STATE, NULL, "VM %u has no running agent (%s, agent %s)",
                                         vm->vmid, vm_state_to_string(vm->state), agent_state_to_string(vm->agent_state));
                return;
        }
        f = calloc(1, sizeof(*f));
        if (!f) {
                json_object_put(request);
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return;
        }
        f->req = req;
        f->reply = reply;
        r = agent_call(vm, request, timeout_usec, on_forward_result, f, &f->call);
        if (r < 0) {
                free(f);
                http_request_reply_error(req, API_ERROR_UNAVAILABLE, NULL, "cannot reach the agent of VM %u: %s",
                                         vm->vmid, strerror(-r));
                return;
        }
        http_request_set_closed_handler(req, on_forward_closed, f);
}

static void reply_agent_result(HttpRequest *req, json_object *response) {
        json_object *copy = NULL;

        if (json_object_deep_copy(response, &copy, NULL) < 0 || !copy) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return;
        }
        json_object_object_del(copy, "ok");
        json_object_object_del(copy, "id");
        http_request_reply_json(req, 200, copy);
}

static bool is_string_array(json_object *a, size_t min) {
        size_t n;

        if (!json_object_is_type(a, json_type_array))
                return false;
        n = json_object_array_length(a);
        if (n < min)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!json_object_is_type(json_object_array_get_idx(a, i), json_type_string))
                        return false;
        return true;
}

static void route_vm_exec(void *ctx, HttpRequest *req, char **params) {
        Vm *vm = lookup_or_404(ctx, req, params[0]);
        json_object *body, *v, *r;
        int64_t timeout = EXEC_TIMEOUT_DEFAULT_S;

        if (!vm)
                return;
        body = manager_parse_body_object(req);
        if (!body)
                return;
        if (!json_object_object_get_ex(body, "argv", &v) || !is_string_array(v, 1)) {
                http_request_reply_error(req, API_ERROR_INVALID_VALUE, "argv", "argv: must be a non-empty array of strings");
                goto out;
        }
        if (json_object_object_get_ex(body, "env", &v) && !is_string_array(v, 0)) {
                http_request_reply_error(req, API_ERROR_INVALID_VALUE, "env", "env: must be an array of \"KEY=VALUE\" strings");
                goto out;
        }
        if (json_object_object_get_ex(body, "timeout", &v) &&
            (!json_object_is_type(v, json_type_int) || (timeout = json_object_get_int64(v)) <= 0 ||
             timeout > EXEC_TIMEOUT_MAX_S)) {
                http_request_reply_error(req, API_ERROR_INVALID_VALUE, "timeout",
                                         "timeout: must be an integer between 1 and %u seconds", EXEC_TIMEOUT_MAX_S);
                goto out;
        }
        r = json_object_new_object();
        json_object_object_add(r, "op", json_object_new_string("exec"));
        static const char *const passthrough[] = { "argv", "env", "cwd", "stdin", "max_output" };
        for (size_t i = 0; i < ELEMENTSOF(passthrough); i++)
                if (json_object_object_get_ex(body, passthrough[i], &v))
                        json_object_object_add(r, passthrough[i], json_object_get(v));
        json_object_object_add(r, "timeout_ms", json_object_new_int64(timeout * 1000));
        /* The agent kills at the timeout; give it room to say so. */
        forward_to_agent(vm, req, r, (uint64_t) (timeout + 15) * 1000000ULL, reply_agent_result);
out:
        json_object_put(body);
}

static void reply_file_data(HttpRequest *req, json_object *response) {
        _cleanup_free_ unsigned char *data = NULL;
        json_object *v;
        size_t size = 0;

        /* Never hand out a silently cut file. */
        if (json_object_object_get_ex(response, "truncated", &v) && json_object_get_boolean(v)) {
                json_object *sz = NULL;

                (void) json_object_object_get_ex(response, "size", &sz);
                http_request_reply_error(req, API_ERROR_PAYLOAD_TOO_LARGE, NULL,
                                         "the file is %" PRId64 " bytes; the files API carries at most %u "
                                         "(copy bigger files with scp over zvm ssh)",
                                         json_object_get_int64(sz), FILE_MAX);
                return;
        }
        if (!json_object_object_get_ex(response, "data", &v) ||
            base64_decode(json_object_get_string(v), &data, &size) < 0) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "the agent sent malformed file data");
                return;
        }
        http_request_reply_text(req, 200, "application/octet-stream", (const char *) data, size);
}

static bool file_path_ok(HttpRequest *req, const char **ret) {
        const char *path = http_request_query(req, "path");

        if (isempty(path) || path[0] != '/') {
                http_request_reply_error(req, API_ERROR_INVALID_VALUE, "path", "path: an absolute path in the guest is required");
                return false;
        }
        *ret = path;
        return true;
}

static void route_vm_file_get(void *ctx, HttpRequest *req, char **params) {
        Vm *vm = lookup_or_404(ctx, req, params[0]);
        const char *path;
        json_object *r;

        if (!vm || !file_path_ok(req, &path))
                return;
        r = json_object_new_object();
        json_object_object_add(r, "op", json_object_new_string("file-read"));
        json_object_object_add(r, "path", json_object_new_string(path));
        json_object_object_add(r, "max_bytes", json_object_new_int64(FILE_MAX));
        forward_to_agent(vm, req, r, 60ULL * 1000000ULL, reply_file_data);
}

static void route_vm_file_put(void *ctx, HttpRequest *req, char **params) {
        Vm *vm = lookup_or_404(ctx, req, params[0]);
        const char *path, *mode_s = http_request_query(req, "mode"), *body;
        _cleanup_free_ char *b64 = NULL;
        unsigned long mode = 0644;
        size_t size = 0;
        json_object *r;
        char *end;

        if (!vm || !file_path_ok(req, &path))
                return;
        if (mode_s) {
                errno = 0;
                mode = strtoul(mode_s, &end, 8);
                if (errno || *end || end == mode_s || mode > 07777) {
                        http_request_reply_error(req, API_ERROR_INVALID_VALUE, "mode", "mode: must be octal, e.g. 0644");
                        return;
                }
        }
        body = http_request_body(req, &size);
        b64 = base64_encode(body, size);
        if (!b64) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return;
        }
        r = json_object_new_object();
        json_object_object_add(r, "op", json_object_new_string("file-write"));
        json_object_object_add(r, "path", json_object_new_string(path));
        json_object_object_add(r, "data", json_object_new_string(b64));
        json_object_object_add(r, "mode", json_object_new_int((int) mode));
        forward_to_agent(vm, req, r, 60ULL * 1000000ULL, reply_agent_result);
}

/* ---- routes: host, events, tokens ---------------------------------------------------- */

static void route_host(void *ctx, HttpRequest *req, char **params) {
        Manager *m = ctx;
        json_object *j = NULL;
        unsigned running = 0;

        if (host_to_json(&m->host, &m->paths, &j) < 0) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return;
        }
        for (size_t i = 0; i < m->n_vms; i++)
                running += vm_up(m->vms[i]);
        json_object_object_add(j, "vms", json_object_new_int((int) m->n_vms));
        json_object_object_add(j, "running", json_object_new_int((int) running));
        if (loop_stats_to_json(j) < 0) {
                json_object_put(j);
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return;
        }
        http_request_reply_json(req, 200, j);
}

static void route_events(void *ctx, HttpRequest *req, char **params) {
        Manager *m = ctx;
        HttpStream *s;
        HttpStream **n;

        if (m->n_streams >= MANAGER_STREAMS_MAX) {
                http_request_reply_error(req, API_ERROR_UNAVAILABLE, NULL, "too many event subscribers");
                return;
        }
        n = reallocarray(m->streams, m->n_streams + 1, sizeof(HttpStream *));
        if (!n) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return;
        }
        m->streams = n;
        if (http_request_reply_stream(req, "text/event-stream", &s) < 0)
                return;
        m->streams[m->n_streams++] = s;
        http_stream_set_closed_handler(s, on_stream_closed, m);
        /* A comment line right away, so clients know the stream is live. */
        (void) http_stream_send(s, ": zvm events\n\n", 14);
}

static bool tokens_local_only(HttpRequest *req) {
        if (!http_request_is_tcp(req))
                return true;
        http_request_reply_error(req, API_ERROR_UNAUTHORIZED, NULL, "tokens can only be managed on the local socket");
        return false;
}

static void route_tokens_list(void *ctx, HttpRequest *req, char **params) {
        Manager *m = ctx;
        json_object *j = NULL;

        if (!tokens_local_only(req))
                return;
        if (token_store_to_json(m->tokens, &j) < 0) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return;
        }
        http_request_reply_json(req, 200, j);
}

static void route_tokens_create(void *ctx, HttpRequest *req, char **params) {
        Manager *m = ctx;
        _cleanup_free_ char *id = NULL, *token = NULL;
        const char *comment = "";
        json_object *body = NULL, *v, *o;
        size_t size;
        int r;

        if (!tokens_local_only(req))
                return;
        if (http_request_body(req, &size) && size > 0) {
                body = manager_parse_body_object(req);
                if (!body)
                        return;
                if (json_object_object_get_ex(body, "comment", &v)) {
                        if (!json_object_is_type(v, json_type_string)) {
                                json_object_put(body);
                                http_request_reply_error(req, API_ERROR_INVALID_VALUE, "comment", "comment: must be a string");
                                return;
                        }
                        comment = json_object_get_string(v);
                }
        }
        r = token_store_create(m->tokens, comment, &id, &token);
        json_object_put(body);
        if (r < 0) {
                http_request_reply_error(req, r == -EINVAL ? API_ERROR_INVALID_VALUE : API_ERROR_INTERNAL, "comment",
                                         "cannot create a token: %s", strerror(-r));
                return;
        }
        o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(id));
        json_object_object_add(o, "secret", json_object_new_string(token));
        http_request_reply_json(req, 201, o);
}

static void route_tokens_delete(void *ctx, HttpRequest *req, char **params) {
        Manager *m = ctx;
        json_object *o;
        int r;

        if (!tokens_local_only(req))
                return;
        r = token_store_delete(m->tokens, params[0]);
        if (r == -ENOENT) {
                http_request_reply_error(req, API_ERROR_NOT_FOUND, NULL, "no token '%s'", params[0]);
                return;
        }
        if (r < 0) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "cannot delete token: %s", strerror(-r));
                return;
        }
        o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(params[0]));
        http_request_reply_json(req, 200, o);
}

static const Route routes[] = {
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
        { "GET", ZVM_API_PREFIX "/vms/{id}/console/log", route_vm_console_log },
        { "POST", ZVM_API_PREFIX "/vms/{id}/exec", route_vm_exec },
        { "GET", ZVM_API_PREFIX "/vms/{id}/files", route_vm_file_get },
        { "PUT", ZVM_API_PREFIX "/vms/{id}/files", route_vm_file_put },
        { "GET", ZVM_API_PREFIX "/host", route_host },
        { "GET", ZVM_API_PREFIX "/events", route_events },
        { "GET", ZVM_API_PREFIX "/tokens", route_tokens_list },
        { "POST", ZVM_API_PREFIX "/tokens", route_tokens_create },
        { "DELETE", ZVM_API_PREFIX "/tokens/{tokenid}", route_tokens_delete },
        { "GET", ZVM_API_PREFIX "/templates", route_templates_list },
        { "POST", ZVM_API_PREFIX "/templates", route_templates_build },
        { "GET", ZVM_API_PREFIX "/templates/{name}", route_template_get },
        { "DELETE", ZVM_API_PREFIX "/templates/{name}", route_template_delete },
        { "GET", ZVM_API_PREFIX "/templates/{name}/log", route_template_log },
};

void manager_dump_routes(void) {
        for (size_t i = 0; i < ELEMENTSOF(routes); i++)
                printf("%s %s\n", routes[i].method, routes[i].pattern);
}

void manager_handle_request(HttpRequest *req, void *userdata) {
        Manager *m = userdata;
        const Route *route = NULL;
        char *params[ROUTE_PARAMS_MAX] = {};
        int r;

        r = route_match(routes, ELEMENTSOF(routes), http_request_method(req), http_request_path(req), &route, params);
        if (r == -EOPNOTSUPP)
                http_request_reply_error(req, API_ERROR_METHOD_NOT_ALLOWED, NULL, "%s is not allowed on %s",
                                         http_request_method(req), http_request_path(req));
        else if (r == -EINVAL)
                http_request_reply_error(req, API_ERROR_BAD_REQUEST, NULL, "malformed path");
        else if (r < 0)
                http_request_reply_error(req, API_ERROR_NOT_FOUND, NULL, "no route %s %s", http_request_method(req),
                                         http_request_path(req));
        else
                route->handler(m, req, params);
        for (size_t i = 0; i < ROUTE_PARAMS_MAX; i++)
                free(params[i]);
}

/* ---- lifecycle of the manager ------------------------------------------------------------ */

static bool tcp_auth(const char *bearer, void *userdata) {
        Manager *m = userdata;

        return bearer && token_store_verify(m->tokens, bearer);
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
        r = sd_event_default(&m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to create the event loop: %m");
        if (sd_booted() > 0 && isempty(m->paths.root)) {
                r = sd_bus_open_system(&m->bus);
                if (r < 0)
                        log_warning_errno(r, "Cannot connect to the system bus, QEMU will not get its own scope: %m");
        }
        r = token_store_load(m->paths.tokens, &m->tokens);
        if (r < 0)
                return log_error_errno(r, "Failed to load %s: %m", m->paths.tokens);
        r = host_probe(&m->host, &m->paths);
        if (r < 0)
                return r;
        log_info("zvmd %s: QEMU %s, accelerator %s (%s), %s vsock", ZVM_VERSION, m->host.qemu_version,
                 m->host.caps.kvm_usable ? "kvm" : "tcg", m->host.accel_reason,
                 m->host.caps.vhost_vsock ? "kernel" : "hybrid");
        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n_streams; i++)
                http_stream_close(m->streams[i]);
        m->n_streams = 0;
        m->http = http_server_free(m->http);
        for (size_t i = 0; i < m->n_vms; i++)
                vm_free(m->vms[i]);
        free(m->vms);
        free(m->streams);
        token_store_free(m->tokens);
        sd_event_source_disable_unref(m->watchdog);
        sd_event_source_disable_unref(m->agent_listen);
        template_builds_free(m);
        sd_bus_flush_close_unref(m->bus);
        sd_event_unref(m->event);
        host_done(&m->host);
        paths_done(&m->paths);
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
                r = vm_load(m, vmid, &vm, &err);
                if (r < 0) {
                        /* Leave a broken file as it is for the admin to fix;
                         * the VM is simply not managed until then. */
                        log_error("Ignoring VM %u: %s", vmid, err ? err : strerror(-r));
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
        }
        closedir(d);
        (void) ssh_known_hosts_write(m);
        template_sweep(m);
        return 0;
}

void manager_start_onboot(Manager *m) {
        for (size_t i = 0; i < m->n_vms; i++) {
                Vm *vm = m->vms[i];
                _cleanup_free_ char *err = NULL;

                if (!vm->config->onboot || vm_up(vm))
                        continue;
                if (vm_start(vm, &err) < 0)
                        log_error("onboot: cannot start VM %u (%s): %s", vm->vmid, vm->config->name, strnull(err));
        }
}

static gid_t zvm_gid(void) {
        struct group *g = getgrnam("zvm");

        return g ? g->gr_gid : (gid_t) -1;
}

int manager_listen(Manager *m, const char *tcp_address) {
        int r;

        r = http_server_new(m->event, manager_handle_request, m, &m->http);
        if (r < 0)
                return log_error_errno(r, "Failed to create the HTTP server: %m");
        r = http_server_listen_unix(m->http, m->paths.api_socket, 0660, zvm_gid());
        if (r < 0)
                return log_error_errno(r, "Failed to listen on %s: %m", m->paths.api_socket);
        (void) agent_manager_listen(m);
        if (tcp_address) {
                r = http_server_listen_tcp(m->http, tcp_address, tcp_auth, m);
                if (r < 0)
                        return log_error_errno(r, "Failed to listen on %s: %m", tcp_address);
        }
        return 0;
}
