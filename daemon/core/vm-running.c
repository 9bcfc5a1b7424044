/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The running config: the whole config text a VM was started with, kept
 * apart from vm->cf/vm->config (the pending config a PATCH changes) from
 * the start until the VM is down. What belongs to the running instance
 * (its CID, taps, agent flag, balloon bounds) is read from here, so a
 * PATCH while it runs cannot redirect agent calls to another guest or make
 * the stop forget a tap. <run>/vms/<vmid>/running.conf keeps it for a
 * zvmd that re-adopts the VM.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fd-util.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "string-util.h"
#include "vm.h"
#include "vm-internal.h"

#define RUNNING_CONF "running.conf"

static void vm_running_free(Vm *vm) {
        vm->running = vm_config_free(vm->running);
        vm->running_cf = config_file_free(vm->running_cf);
}

static int vm_running_set(Vm *vm, const char *text, size_t len, char **ret_error) {
        _cleanup_(config_file_freep) ConfigFile *cf = NULL;
        VmConfig *c = NULL;
        ConfigError err = {};
        int r;

        r = config_file_parse(text, len, &cf, &err);
        if (r < 0)
                return set_error(ret_error, "cannot parse the running config: %s",
                                 err.message[0] ? err.message : errno_str(r)), r;
        r = vm_config_from_file(cf, vm->vmid, &c, ret_error);
        if (r < 0)
                return r;
        vm_running_free(vm);
        vm->running_cf = TAKE_PTR(cf);
        vm->running = c;
        return 0;
}

/* The config's text, with the vsock CID cid (0: the config's). */
static int running_text(Vm *vm, uint32_t cid, char **ret_text, size_t *ret_len, char **ret_error) {
        _cleanup_(config_file_freep) ConfigFile *copy = NULL;
        ConfigError err = {};
        char value[32];
        int r;

        r = config_file_format(vm->cf, ret_text, ret_len);
        if (r < 0 || cid == 0 || cid == vm->config->cid)
                return r;
        r = config_file_parse(*ret_text, *ret_len, &copy, &err);
        snprintf(value, sizeof(value), "cid=%u", cid);
        if (r >= 0)
                r = vm_config_set(copy, "vsock", value, ret_error);
        *ret_text = mfree(*ret_text);
        return r < 0 ? r : config_file_format(copy, ret_text, ret_len);
}

int vm_running_take(Vm *vm, char **ret_error) {
        return vm_running_take_cid(vm, 0, ret_error);
}

int vm_running_take_cid(Vm *vm, uint32_t cid, char **ret_error) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r;

        r = running_text(vm, cid, &text, &len, ret_error);
        if (r < 0)
                return set_error(ret_error, "cannot format the config: %s", errno_str(r)), r;
        /* On disk before QEMU exists: a zvmd killed right after the spawn
         * still re-adopts the VM with what it runs. */
        r = write_file_replace(vm->run_dir, RUNNING_CONF, text, len, 0600);
        if (r < 0)
                return set_error(ret_error, "cannot write %s/" RUNNING_CONF ": %s", vm->run_dir, errno_str(r)), r;
        return vm_running_set(vm, text, len, ret_error);
}

int vm_running_load(Vm *vm) {
        _cleanup_free_ char *path = vm_run_path(vm, RUNNING_CONF), *text = NULL, *err = NULL;
        size_t len = 0;
        int r;

        if (!path)
                return -ENOMEM;
        r = read_full_file(path, &text, &len, CONFIG_FILE_SIZE_MAX);
        if (r >= 0)
                r = vm_running_set(vm, text, len, &err);
        if (r < 0) {
                /* A VM started by a zvmd without running.conf: the
                 * current config is the best guess of what it runs. */
                log_warning("VM %u: %s; taking the current config as the running one", vm->vmid,
                            err ? err : errno_str(r));
                r = config_file_format(vm->cf, &text, &len);
                if (r >= 0)
                        r = vm_running_set(vm, text, len, NULL);
        }
        return r;
}

void vm_running_drop(Vm *vm) {
        _cleanup_free_ char *path = vm_run_path(vm, RUNNING_CONF);

        vm_running_free(vm);
        if (path)
                (void) unlink(path);
}

const VmConfig *vm_running_config(const Vm *vm) {
        return vm->running ? vm->running : vm->config;
}

/* An absent key has its default: "agent: 1" is what runs without one. */
static bool key_pending(const Vm *vm, const char *key) {
        return vm_config_key_differs(vm->cf, vm->running_cf, key);
}

/* Pending keys are computed, not recorded: a key set back to the value
 * the VM runs with is no longer pending. File order of the pending config,
 * then keys only the running config has (unset since the start). */
int vm_pending_keys(const Vm *vm, char ***ret) {
        _cleanup_strv_free_ char **keys = NULL;
        const char *key, *value;

        if (vm->running_cf) {
                CONFIG_FILE_FOREACH(vm->cf, NULL, key, value)
                        if (key_pending(vm, key) && strv_extend(&keys, key) < 0)
                                return -ENOMEM;
                CONFIG_FILE_FOREACH(vm->running_cf, NULL, key, value)
                        if (!config_file_get(vm->cf, NULL, key) && key_pending(vm, key) &&
                            strv_extend(&keys, key) < 0)
                                return -ENOMEM;
        }
        *ret = TAKE_PTR(keys);
        return 0;
}
