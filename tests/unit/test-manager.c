/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The core's registry (core/manager.c) and vm_wait() (core/vm.c), on real
 * objects: a Manager under a temporary root, VMs created from JSON and
 * written to <etc>/vms, reloaded by a second manager. No QEMU: states are
 * driven with vm_set_state(), as the QMP and pidfd handlers drive them.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "fileio.h"
#include "manager.h"
#include "string-util.h"
#include "tap.h"
#include "test-children.h"
#include "vm.h"

static char root[] = "/tmp/zvm-test-manager-XXXXXX";

static int create(Manager *m, uint32_t vmid, const char *json, Vm **ret, char **ret_key) {
        _cleanup_free_ char *err = NULL;
        json_object *body = json_tokener_parse(json);
        Vm *vm = NULL;
        int r;

        r = manager_create_vm(m, vmid, body, true, &vm, &err, ret_key);
        json_object_put(body);
        if (r < 0)
                diag("create %u %s: %s", vmid, json, strnull(err));
        if (ret)
                *ret = vm;
        return r;
}

static void test_registry(void) {
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_free_ char *key = NULL, *conf = NULL;
        Vm *a = NULL, *b = NULL;
        uint32_t v = 0, cid = 0;

        ok(manager_new(root, &m) >= 0, "manager_new under %s", root);
        ok(create(m, 100, "{\"name\":\"a\",\"memory\":128}", &a, NULL) >= 0 && a, "create VM 100 'a'");
        is_int(a ? a->config->cid : 0, 1100, "its CID is VMID+1000");
        conf = strjoin(m->paths.vms_dir, "/100.conf");
        ok(conf && access(conf, F_OK) == 0, "100.conf written");
        ok(manager_find(m, "a") == a && manager_find(m, "100") == a && manager_find_vmid(m, 100) == a,
           "found by name, by VMID string and by VMID");
        ok(!manager_find(m, "b") && !manager_find(m, "101"), "unknown name and VMID: not found");

        is_int(create(m, 100, "{\"name\":\"b\"}", NULL, &key), -EEXIST, "VMID 100 again: -EEXIST");
        is_str(key, "vmid", "... on key vmid");
        key = mfree(key);
        is_int(create(m, 101, "{\"name\":\"a\"}", NULL, &key), -EEXIST, "name 'a' again: -EEXIST");
        is_str(key, "name", "... on key name");
        key = mfree(key);
        is_int(create(m, 102, "{\"name\":\"c\",\"vsock\":\"cid=1100\"}", NULL, &key), -EADDRINUSE,
               "a's CID for another VM: -EADDRINUSE");
        is_str(key, "vsock", "... on key vsock");
        key = mfree(key);
        is_int(create(m, 103, "{\"memory\":128}", NULL, &key), -EINVAL, "no name: -EINVAL");
        is_str(key, "name", "... on key name");
        key = mfree(key);
        ok(m->n_vms == 1, "refused creates left nothing in the registry (%zu VMs)", m->n_vms);

        ok(manager_free_vmid(m, &v) >= 0 && v == 101, "the next free VMID is 101 (%u)", v);
        /* 201's preferred CID (1201) is held by VM 101: the picker moves on. */
        ok(create(m, 101, "{\"name\":\"b\",\"vsock\":\"cid=1201\"}", &b, NULL) >= 0, "create VM 101 with CID 1201");
        ok(manager_pick_cid(m, 201, &cid) >= 0 && cid != 1201 && cid != 1100 && cid >= 3,
           "CID for VMID 201 skips the taken 1201 (%u)", cid);
        ok(manager_pick_cid(m, 202, &cid) >= 0 && cid == 1202, "CID for VMID 202 is 1202 (%u)", cid);
        ok(m->n_vms == 2 && m->vms[0] == a && m->vms[1] == b, "registry sorted by VMID");

        ok(manager_delete_vm(m, a) >= 0, "delete VM 100");
        ok(!manager_find(m, "a") && access(conf, F_OK) < 0, "gone from the registry and from disk");
        m = manager_free(m);

        /* A new manager (the lock is free again) loads what is on disk. */
        ok(manager_new(root, &m) >= 0 && manager_load(m) >= 0, "a second manager loads the configs");
        ok(m && m->n_vms == 1 && manager_find(m, "b") && manager_find(m, "b")->config->cid == 1201,
           "it finds VM 101 'b' with CID 1201");
}

static unsigned fired_running, fired_down, fired_gone;
static int last_state = -100;

static void on_wait(Vm *vm, int state, void *userdata) {
        unsigned *counter = userdata;

        last_state = state;
        (*counter)++;
}

static void test_wait(void) {
        _cleanup_(manager_freep) Manager *m = NULL;
        VmWait *w = NULL, *cancelled = NULL;
        Vm *vm = NULL;
        int r = 0;

        ok(manager_new(root, &m) >= 0 && manager_load(m) >= 0, "manager for the wait tests");
        vm = m ? manager_find(m, "b") : NULL;
        if (!vm) {
                ok(false, "VM 'b' is there");
                return;
        }
        ok(vm_wait(vm, VM_WAIT_RUNNING | VM_WAIT_DOWN, on_wait, &fired_running, &w) >= 0 && w,
           "wait for running-or-down");
        ok(vm_wait(vm, VM_WAIT_DOWN, on_wait, &fired_down, NULL) >= 0, "wait for down");
        ok(vm_wait(vm, VM_WAIT_DOWN, on_wait, &fired_gone, &cancelled) >= 0, "a third wait, to be cancelled");
        vm_wait_cancel(cancelled);
        is_int(vm->n_waits, 2, "cancelling leaves two waits");

        vm_set_state(vm, VM_STATE_STARTING);
        ok(fired_running == 0 && fired_down == 0, "starting fires nothing");
        vm_set_state(vm, VM_STATE_RUNNING);
        ok(fired_running == 1 && last_state == VM_STATE_RUNNING && fired_down == 0,
           "running fires the running-or-down wait once, with state running");
        is_int(vm->n_waits, 1, "a fired wait is gone");
        vm_set_state(vm, VM_STATE_STOPPING);
        vm_set_state(vm, VM_STATE_STOPPED);
        ok(fired_down == 1 && last_state == VM_STATE_STOPPED && fired_running == 1,
           "stopped fires the down wait once");
        is_int(fired_gone, 0, "the cancelled wait never fired");
        is_int(vm->n_waits, 0, "no wait left");

        /* The limit, and what a VM that goes away tells its waits. */
        for (unsigned i = 0; i < VM_WAITERS_MAX && r >= 0; i++)
                r = vm_wait(vm, VM_WAIT_RUNNING, on_wait, &fired_gone, NULL);
        ok(r >= 0 && vm_wait(vm, VM_WAIT_RUNNING, on_wait, &fired_gone, NULL) == -EBUSY,
           "%u waits are accepted, one more is -EBUSY", VM_WAITERS_MAX);
        manager_remove_vm(m, vm);
        vm_free(vm);
        ok(fired_gone == VM_WAITERS_MAX && last_state == -ESHUTDOWN, "freeing the VM tells each wait -ESHUTDOWN (%u)",
           fired_gone);
}

int main(void) {
        if (!mkdtemp(root)) {
                printf("Bail out! mkdtemp: %m\n");
                return 1;
        }
        test_registry();
        test_wait();
        test_children_cleanup(root, "/tmp/zvm-test-manager-");
        return done_testing();
}
