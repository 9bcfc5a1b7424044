/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * rest/ over real HTTP on its unix socket, against a real Manager under a
 * temporary root: the Operations that park a request on a VM. No QEMU: the
 * VM's states are driven with vm_set_state(), as the QMP and pidfd handlers
 * drive them. The event loop runs in this thread between the client's
 * non-blocking sends and reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fd-util.h"
#include "manager.h"
#include "rest.h"
#include "string-util.h"
#include "tap.h"
#include "test-children.h"
#include "time-util.h"
#include "vm.h"

static char root[] = "/tmp/zvm-test-rest-XXXXXX";

static int client_send(Manager *m, const char *method, const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_free_ char *req = NULL;
        int fd;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        strncpy(sa.sun_path, m->paths.api_socket, sizeof(sa.sun_path) - 1);
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
            asprintf(&req, "%s /api/v1%s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", method, path) < 0 ||
            write(fd, req, strlen(req)) != (ssize_t) strlen(req)) {
                safe_close(fd);
                return -EIO;
        }
        return fd;
}

/* Runs the loop for up to timeout_ms or until fd has an answer; returns the
 * HTTP status, 0 if none came. */
static int loop_until_answer(Manager *m, int fd, unsigned timeout_ms) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + timeout_ms * 1000ULL;
        char buf[4096];

        while (now_usec(CLOCK_MONOTONIC) < deadline) {
                ssize_t n;

                (void) sd_event_run(m->event, 20 * 1000);
                if (fd < 0)
                        continue;
                n = read(fd, buf, sizeof(buf) - 1);
                if (n > 12) {
                        buf[n] = 0;
                        return atoi(buf + 9);   /* "HTTP/1.1 NNN" */
                }
        }
        return 0;
}

static Vm *new_running_vm(Manager *m, const char *name, uint32_t vmid) {
        _cleanup_free_ char *err = NULL, *key = NULL, *json = NULL;
        json_object *body;
        Vm *vm = NULL;

        if (asprintf(&json, "{\"name\":\"%s\",\"memory\":128}", name) < 0)
                return NULL;
        body = json_tokener_parse(json);
        if (manager_create_vm(m, vmid, body, true, &vm, &err, &key) < 0)
                diag("create %s: %s", name, strnull(err));
        json_object_put(body);
        /* Up as far as the registry knows, with no QEMU behind it: so
         * vm_kill() fails (no pidfd), as it does for a VM whose QEMU is
         * already gone. */
        if (vm)
                vm_set_state(vm, VM_STATE_RUNNING);
        return vm;
}

static void test_force_delete_failed_kill(Manager *m) {
        _cleanup_close_ int fd = -EBADF;
        Vm *vm = new_running_vm(m, "victim", 100);

        ok(vm && vm->pidfd < 0, "a running VM without a QEMU pidfd");
        if (!vm)
                return;
        fd = client_send(m, "DELETE", "/vms/victim?force=1");
        is_int(loop_until_answer(m, fd, 5000), 500, "DELETE ?force: vm_kill fails → 500");
        is_int(vm->n_waits, 0, "nothing stays registered on the VM");
        /* Before Operations, the failed DELETE's waiter stayed registered
         * with delete_after set: this transition then answered the freed
         * request and deleted the VM. */
        vm_set_state(vm, VM_STATE_STOPPED);
        (void) loop_until_answer(m, -EBADF, 200);
        ok(manager_find(m, "victim") == vm, "the VM is still there once it stops");
}

static void test_client_gone(Manager *m) {
        _cleanup_close_ int fd = -EBADF;
        Vm *vm = new_running_vm(m, "parked", 101);
        int status;

        if (!vm) {
                ok(false, "VM 'parked' created");
                return;
        }
        fd = client_send(m, "POST", "/vms/parked/stop");
        status = loop_until_answer(m, fd, 300);
        ok(status == 0 && vm->n_waits == 1, "stop parks the request on the VM (status %d, %zu waits)", status,
           vm->n_waits);
        fd = safe_close(fd);
        (void) loop_until_answer(m, -EBADF, 500);
        is_int(vm->n_waits, 0, "the client went away: its wait is cancelled");

        fd = client_send(m, "POST", "/vms/parked/stop");
        (void) loop_until_answer(m, fd, 300);
        vm_set_state(vm, VM_STATE_STOPPED);
        is_int(loop_until_answer(m, fd, 5000), 200, "a parked stop is answered 200 once the VM is stopped");
        is_int(vm->n_waits, 0, "and its wait is gone");
}

int main(void) {
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(rest_freep) Rest *rest = NULL;

        if (!mkdtemp(root)) {
                printf("Bail out! mkdtemp: %m\n");
                return 1;
        }
        if (manager_new(root, &m) < 0 || rest_new(m, &rest) < 0 || rest_listen(rest, NULL) < 0) {
                printf("Bail out! cannot set up a manager and its REST layer under %s\n", root);
                test_children_cleanup(root, "/tmp/zvm-test-rest-");
                return 1;
        }
        test_force_delete_failed_kill(m);
        test_client_gone(m);
        rest = rest_free(rest);
        m = manager_free(m);
        test_children_cleanup(root, "/tmp/zvm-test-rest-");
        return done_testing();
}
