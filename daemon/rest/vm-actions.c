/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* /vms/{id}/start, shutdown, stop, kill, reboot, memory, status, console/log. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access.h"
#include "console-log.h"
#include "fd-util.h"
#include "log.h"
#include "operation.h"
#include "openai.h"
#include "request.h"
#include "routes.h"
#include "string-util.h"

#define CONSOLE_LOG_REPLY_MAX (1024U * 1024U)
#define SHUTDOWN_TIMEOUT_DEFAULT 60U
#define SHUTDOWN_TIMEOUT_MAX 3600U

/* Starts and stops end when the VM gets there; the reply is the VM. */
static void on_start_done(Vm *vm, int state, void *userdata) {
        HttpRequest *req = operation_wait_done(userdata);

        if (state < 0)
                http_request_reply_error(req, API_ERROR_UNAVAILABLE, NULL, "VM %u went away", vm->vmid);
        else if (state == VM_STATE_RUNNING)
                rest_reply_vm(req, vm, 200);
        else
                http_request_reply_error(req, API_ERROR_QEMU_FAILED, NULL, "VM %u failed to start: %s", vm->vmid,
                                         vm->crash_reason ? vm->crash_reason : "QEMU exited");
}

static void on_down_done(Vm *vm, int state, void *userdata) {
        HttpRequest *req = operation_wait_done(userdata);

        if (state < 0)
                http_request_reply_error(req, API_ERROR_UNAVAILABLE, NULL, "VM %u went away", vm->vmid);
        else
                rest_reply_vm(req, vm, 200);
}

/* Parks req until the VM reaches `what`. false: nothing parked (too many
 * waiting, or OOM); the request is still the caller's. */
/* m: the manager, for what the Operation does after the wait (a reboot's
 * start). */
static bool park(Manager *m, Vm *vm, HttpRequest *req, unsigned what, vm_wait_fn cb) {
        Operation *op = operation_new(req, vm);

        if (!op)
                return false;
        op->manager = m;
        if (vm_wait(vm, what, cb, op, &op->wait) < 0) {
                (void) operation_finish(op);
                return false;
        }
        return true;
}

/* A start by a caller other than root: the policy, checked again on the
 * whole config (core/vm.h, vm_check_start_policy()). false after replying. */
static bool start_allowed(Vm *vm, HttpRequest *req) {
        _cleanup_free_ char *err = NULL, *key = NULL;
        int r = vm_check_start_policy(vm, rest_request_is_root(req), &err, &key);

        if (r >= 0)
                return true;
        http_request_reply_error(req, rest_error_from_errno(r, key), key, "cannot start VM %u: %s", vm->vmid,
                                 err ? err : errno_str(r));
        return false;
}

void route_vm_start(void *ctx, HttpRequest *req, char **params) {
        Vm *vm = rest_lookup_vm(((Rest *) ctx)->manager, req, params[0]);
        _cleanup_free_ char *err = NULL;
        int r;

        if (!vm)
                return;
        if (vm_is_up(vm)) {
                http_request_reply_error(req, API_ERROR_INVALID_STATE, NULL, "VM %u is already %s", vm->vmid,
                                         vm_state_to_string(vm->state));
                return;
        }
        if (!start_allowed(vm, req))
                return;
        r = manager_start_vm(((Rest *) ctx)->manager, vm, rest_request_is_root(req), &err);
        if (r < 0) {
                http_request_reply_error(req,
                                         r == -EADDRINUSE ? API_ERROR_CONFLICT
                                         : r == -EINVAL || r == -E2BIG || r == -ENOENT || r == -ENODEV ||
                                                         r == -EOPNOTSUPP
                                                 ? API_ERROR_INVALID_VALUE
                                                 : API_ERROR_QEMU_FAILED,
                                         NULL, "cannot start VM %u: %s", vm->vmid, err ? err : errno_str(r));
                return;
        }
        if (vm->state == VM_STATE_RUNNING ||
            !park(((Rest *) ctx)->manager, vm, req, VM_WAIT_RUNNING | VM_WAIT_DOWN, on_start_done))
                rest_reply_vm(req, vm, 200);
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

/* Parks req until the VM is down (cb replies), then asks fn to take it
 * there. */
static void park_and_take_down(Manager *m, Vm *vm, HttpRequest *req, vm_wait_fn cb, vm_down_fn fn,
                               unsigned timeout) {
        int r;

        if (!park(m, vm, req, VM_WAIT_DOWN, cb)) {
                http_request_reply_error(req, API_ERROR_CONFLICT, NULL, "too many requests waiting on VM %u", vm->vmid);
                return;
        }
        /* On failure the VM still goes down by the timeout the call armed. */
        r = fn(vm, timeout);
        if (r < 0)
                log_warning_errno(r, "VM %u: stop request failed: %m", vm->vmid);
}

static void route_vm_down(Manager *m, HttpRequest *req, const char *id, vm_down_fn fn, unsigned timeout) {
        Vm *vm = rest_lookup_vm(m, req, id);

        if (!vm)
                return;
        if (!vm_is_up(vm)) {
                http_request_reply_error(req, API_ERROR_INVALID_STATE, NULL, "VM %u is %s", vm->vmid,
                                         vm_state_to_string(vm->state));
                return;
        }
        park_and_take_down(m, vm, req, on_down_done, fn, timeout);
}

void route_vm_shutdown(void *ctx, HttpRequest *req, char **params) {
        const char *t = http_request_query(req, "timeout");
        unsigned timeout = SHUTDOWN_TIMEOUT_DEFAULT;

        if (t && (safe_atou32(t, &timeout) < 0 || timeout > SHUTDOWN_TIMEOUT_MAX)) {
                http_request_reply_error(req, API_ERROR_INVALID_VALUE, "timeout",
                                         "timeout: must be an integer between 0 and %u seconds", SHUTDOWN_TIMEOUT_MAX);
                return;
        }
        route_vm_down(((Rest *) ctx)->manager, req, params[0], do_shutdown, timeout);
}

void route_vm_stop(void *ctx, HttpRequest *req, char **params) {
        route_vm_down(((Rest *) ctx)->manager, req, params[0], do_stop, 0);
}

void route_vm_kill(void *ctx, HttpRequest *req, char **params) {
        route_vm_down(((Rest *) ctx)->manager, req, params[0], do_kill, 0);
}

/* A reboot is a shutdown and a start through zvmd, as `qm reboot`: the
 * new run takes the pending config, and its uptime and agent readiness
 * start over. (A reset inside QEMU would keep the old run.) The reply
 * comes when the VM runs again. */
static void on_reboot_gone(Vm *vm, int state, void *userdata) {
        http_request_reply_error(operation_wait_done(userdata), API_ERROR_UNAVAILABLE, NULL, "VM %u went away",
                                 vm->vmid);
}

static int on_reboot_start(sd_event_source *s, void *userdata) {
        Operation *op = userdata;
        Vm *vm = op->vm;
        _cleanup_free_ char *err = NULL;
        int r;

        op->defer = sd_event_source_disable_unref(op->defer);
        vm_wait_cancel(op->wait);       /* the guard: the VM is still there */
        op->wait = NULL;
        if (vm_is_up(vm)) {             /* someone started it in between */
                rest_reply_vm(operation_finish(op), vm, 200);
                return 0;
        }
        r = manager_start_vm(op->manager, vm, rest_request_is_root(op->req), &err);
        if (r < 0) {
                http_request_reply_error(operation_finish(op), API_ERROR_QEMU_FAILED, NULL,
                                         "VM %u stopped but did not start again: %s", vm->vmid, err ? err : errno_str(r));
                return 0;
        }
        if (vm->state == VM_STATE_RUNNING ||
            vm_wait(vm, VM_WAIT_RUNNING | VM_WAIT_DOWN, on_start_done, op, &op->wait) < 0)
                rest_reply_vm(operation_finish(op), vm, 200);
        return 0;
}

static void on_reboot_down(Vm *vm, int state, void *userdata) {
        Operation *op = userdata;

        op->wait = NULL;                /* spent */
        if (state < 0) {
                http_request_reply_error(operation_finish(op), API_ERROR_UNAVAILABLE, NULL, "VM %u went away", vm->vmid);
                return;
        }
        /* The start waits for the next loop iteration: the others told of
         * this down (a DELETE ?force) see the VM down, not starting; a wait
         * for nothing (mask 0) tells us if one of them deletes it. */
        if (vm_wait(vm, 0, on_reboot_gone, op, &op->wait) < 0 ||
            sd_event_add_defer(vm->ctx->event, &op->defer, on_reboot_start, op) < 0)
                http_request_reply_error(operation_finish(op), API_ERROR_INTERNAL, NULL,
                                         "VM %u stopped but cannot be started again now", vm->vmid);
}

void route_vm_reboot(void *ctx, HttpRequest *req, char **params) {
        const char *t = http_request_query(req, "timeout");
        unsigned timeout = SHUTDOWN_TIMEOUT_DEFAULT;
        Vm *vm = rest_lookup_vm(((Rest *) ctx)->manager, req, params[0]);

        if (!vm)
                return;
        if (t && (safe_atou32(t, &timeout) < 0 || timeout > SHUTDOWN_TIMEOUT_MAX)) {
                http_request_reply_error(req, API_ERROR_INVALID_VALUE, "timeout",
                                         "timeout: must be an integer between 0 and %u seconds", SHUTDOWN_TIMEOUT_MAX);
                return;
        }
        if (vm->state != VM_STATE_RUNNING) {
                http_request_reply_error(req, API_ERROR_INVALID_STATE, NULL, "VM %u cannot reboot: it is %s", vm->vmid,
                                         vm_state_to_string(vm->state));
                return;
        }
        /* Checked before the shutdown: a reboot the policy would not start
         * again must not leave the VM down. */
        if (!start_allowed(vm, req))
                return;
        park_and_take_down(((Rest *) ctx)->manager, vm, req, on_reboot_down, do_shutdown, timeout);
}

void route_vm_memory(void *ctx, HttpRequest *req, char **params) {
        Vm *vm = rest_lookup_vm(((Rest *) ctx)->manager, req, params[0]);
        _cleanup_free_ char *err = NULL;
        json_object *body, *v;
        int64_t target;
        bool was_manual;
        int r;

        if (!vm)
                return;
        body = rest_parse_body_object(req);
        if (!body)
                return;
        if (!json_object_object_get_ex(body, "target", &v) || !json_object_is_type(v, json_type_int) ||
            (target = json_object_get_int64(v)) <= 0) {
                json_object_put(body);
                http_request_reply_error(req, API_ERROR_INVALID_VALUE, "target", "target: must be a positive integer (MiB)");
                return;
        }
        json_object_put(body);
        was_manual = vm->balloon_manual;
        vm->balloon_manual = true;      /* before the save in vm_set_balloon() */
        r = vm_set_balloon(vm, (uint64_t) target, NULL, NULL, &err);
        if (r < 0) {
                vm->balloon_manual = was_manual;
                http_request_reply_error(req, r == -ERANGE || r == -EOPNOTSUPP ? API_ERROR_INVALID_VALUE
                                                                               : API_ERROR_INVALID_STATE,
                                         "target", "%s", err ? err : errno_str(r));
                return;
        }
        rest_reply_vm(req, vm, 200);
}

void route_vm_status(void *ctx, HttpRequest *req, char **params) {
        Vm *vm = rest_lookup_vm(((Rest *) ctx)->manager, req, params[0]);
        json_object *j = NULL;

        if (!vm)
                return;
        if (vm_status_to_json(vm, true, &j) < 0) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return;
        }
        openai_vm_add_json(ctx, vm, j);         /* serve */
        http_request_reply_json(req, 200, j);
}

/* The log as zvmd keeps it (core/console-log.h): a tail longer than the
 * current file reaches into the rotated part. One reply holds at most
 * CONSOLE_LOG_REPLY_MAX bytes. */
void route_vm_console_log(void *ctx, HttpRequest *req, char **params) {
        Vm *vm = rest_lookup_vm(((Rest *) ctx)->manager, req, params[0]);
        _cleanup_free_ char *path = NULL, *buf = NULL;
        const char *t = http_request_query(req, "tail");
        uint64_t tail = CONSOLE_LOG_REPLY_MAX;
        size_t n = 0;
        int r;

        if (!vm)
                return;
        if (t && (safe_atou64(t, &tail) < 0)) {
                http_request_reply_error(req, API_ERROR_INVALID_VALUE, "tail", "tail: must be a byte count");
                return;
        }
        path = strjoin(vm->run_dir, "/console.log");
        r = path ? console_log_read_tail(path, MIN(tail, (uint64_t) CONSOLE_LOG_REPLY_MAX), &buf, &n) : -ENOMEM;
        if (r < 0) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "cannot read the console log: %s", errno_str(r));
                return;
        }
        http_request_reply_text(req, 200, "text/plain; charset=utf-8", buf, n);
}
