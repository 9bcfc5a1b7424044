/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A VM's side of the warm pool (core/manager-pool.c runs the pool): a pool
 * guest is a VM object like any other, of a slot VMID, whose config lives
 * only in its run dir's running.conf. A claim hands its run dir to the VM
 * with one rename; re-adoption of the VM from there finishes the claim.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config-file.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "ssh.h"
#include "string-util.h"
#include "vm.h"
#include "vm-internal.h"

int vm_new_pool(VmContext *ctx, uint32_t vmid, const char *text, Vm **ret, char **ret_error) {
        ConfigFile *cf = NULL;
        ConfigError err = {};
        Vm *vm = NULL;
        int r;

        r = config_file_parse(text, strlen(text), &cf, &err);
        if (r < 0)
                return set_error(ret_error, "the pool guest's config: %s", err.message[0] ? err.message : errno_str(r)), r;
        r = vm_new(ctx, vmid, cf, &vm, ret_error);
        if (r < 0)
                return r;
        vm->pool = true;
        vm->pool_slot = vmid;
        *ret = vm;
        return 0;
}

int vm_pool_first_start(const Vm *vm) {
        _cleanup_free_ char *upper = strjoin(vm->data_dir, "/upper.img");

        if (!upper)
                return -ENOMEM;
        if (access(upper, F_OK) >= 0)
                return 0;
        return errno == ENOENT ? 1 : -errno;
}

int vm_pool_claim(Vm *vm, Vm *guest, char **ret_error) {
        int r;

        if (vm->pool || !guest->pool || vm_is_up(vm) || vm->start)
                return set_error(ret_error, "VM %u cannot claim a pool guest now", vm->vmid), -EBUSY;
        if (guest->state != VM_STATE_RUNNING || guest->agent.state != AGENT_READY || guest->stop_requested)
                return set_error(ret_error, "pool guest %u is not ready", guest->vmid), -EBUSY;
        /* A pool guest's writable layer is new: it only serves a VM that
         * has none yet (its first start), never one with its own data. */
        r = vm_pool_first_start(vm);
        if (r == 0)
                return set_error(ret_error, "VM %u has a writable layer", vm->vmid), -EBUSY;
        if (r < 0)
                return set_error(ret_error, "%s/upper.img: %s", vm->data_dir, errno_str(r)), r;
        /* What an earlier failed start left (logs) goes; anything else in
         * the run dir is not zvm's, and the VM starts cold. */
        r = vm_remove_dir_aside(vm, vm->run_dir, vm_run_names);
        if (r < 0 && rmdir(vm->run_dir) < 0 && errno != ENOENT)
                return set_error(ret_error, "%s is in the way", vm->run_dir), -EBUSY;
        /* The commit. state.json inside names the guest's slot, so a zvmd
         * killed from here on finishes the claim when it re-adopts the VM
         * (and no longer finds the guest in its slot). /run is tmpfs:
         * there is no power cut to survive. */
        if (rename(guest->run_dir, vm->run_dir) < 0)
                return set_error(ret_error, "cannot move %s to %s: %s", guest->run_dir, vm->run_dir, errno_str(-errno)),
                       -errno;
        log_info("VM %u (%s): claimed pool guest %u (QEMU pid %d)", vm->vmid, vm->config->name, guest->vmid,
                 (int) guest->pid);
        return 0;
}

/* The guest's CID becomes the VM's, unless another VM holds it meanwhile
 * (then the running CID shows as pending until a restart). */
static void take_cid(Vm *vm, uint32_t cid) {
        _cleanup_free_ uint32_t *taken = NULL;
        _cleanup_free_ char *err = NULL;
        size_t n = 0;
        int r;

        if (cid == 0 || vm->config->cid == cid)
                return;
        r = vm->ctx->taken_cids(vm, &taken, &n, vm->ctx->userdata);
        for (size_t i = 0; r >= 0 && i < n; i++)
                if (taken[i] == cid)
                        r = -EADDRINUSE;
        if (r >= 0)
                r = vm_config_save_cid(vm, cid, &err);
        if (r < 0)
                log_warning("VM %u: keeps CID %u in its config, runs with the pool guest's %u: %s", vm->vmid,
                            vm->config->cid, cid, err ? err : errno_str(r));
}

int vm_pool_finish(Vm *vm, uint32_t slot) {
        static const char *const moved[] = { "upper.img", SSH_HOST_KEYS_FILE };
        _cleanup_free_ char *slot_data = paths_vm_data_dir(vm->ctx->paths, slot), *err = NULL;
        uint32_t cid;
        int r;

        if (!slot_data)
                return -ENOMEM;
        r = mkdir_p(vm->data_dir, 0750);
        if (r < 0)
                return log_warning_errno(r, "VM %u: cannot make %s: %m", vm->vmid, vm->data_dir);
        /* Renames within one file system: the running QEMU keeps its fd. */
        for (size_t i = 0; i < ELEMENTSOF(moved); i++) {
                _cleanup_free_ char *from = strjoin(slot_data, "/", moved[i]), *to = strjoin(vm->data_dir, "/", moved[i]);

                if (!from || !to)
                        return -ENOMEM;
                if (rename(from, to) < 0 && errno != ENOENT)
                        return log_warning_errno(-errno, "VM %u: cannot move %s to %s: %m", vm->vmid, from, to);
        }
        (void) rmdir(slot_data);
        r = vm_running_load(vm);        /* the guest's config: its CID */
        cid = r >= 0 && vm->running ? vm->running->cid : 0;
        take_cid(vm, cid);
        /* From now on the VM runs its own config, with the guest's CID. */
        r = vm_running_take_cid(vm, cid, &err);
        if (r < 0)
                return log_warning_errno(r, "VM %u: %s", vm->vmid, strnull(err));
        vm->from_pool = true;
        vm->naming = VM_NAMING_PENDING;
        log_info("VM %u (%s): the claim of pool guest %u is complete", vm->vmid, vm->config->name, slot);
        return 0;
}

void vm_pool_named(Vm *vm) {
        vm->naming = VM_NAMING_NONE;
        (void) vm_state_file_save(vm);
}
