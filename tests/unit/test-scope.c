/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* daemon/scope.c against a private dbus-daemon (no systemd on it): the
 * StartTransientUnit message carries only real pids, and the call goes out
 * without the event loop waiting for systemd. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fd-util.h"
#include "process.h"
#include "scope.h"
#include "string-util.h"
#include "tap.h"

static pid_t dbus_pid;

/* Starts `dbus-daemon --session` on a socket of ours; returns its address. */
static char *start_dbus(const char *dir) {
        _cleanup_free_ char *addr = strjoin("unix:path=", dir, "/bus");
        _cleanup_free_ char *arg = strjoin("--address=", addr);
        char *const argv[] = { (char *) "dbus-daemon", (char *) "--session", (char *) "--nofork", arg, NULL };
        _cleanup_free_ char *sock = strjoin(dir, "/bus");

        if (!addr || !arg || !sock || process_spawn(argv, NULL, 0, -1, true, &dbus_pid) < 0)
                return NULL;
        for (int i = 0; i < 100 && access(sock, F_OK) < 0; i++)
                usleep(50 * 1000);
        return access(sock, F_OK) == 0 ? TAKE_PTR(addr) : NULL;
}

static void test_message(sd_bus *bus) {
        sd_bus_message *m = NULL;
        const pid_t both[] = { 4242, 4343 }, helper_zero[] = { 4242, 0 }, none[] = { 0, -1 };
        const char *unit, *mode, *name;
        const void *arr;
        size_t size;
        int r;

        is_int(scope_message_new(bus, "zvm-100.scope", "zvm.slice", "zvm VM 100", none, 2, NULL, &m), -EINVAL,
               "no real pid: refused, nothing sent");
        ok(m == NULL, "and no message made");

        ok(scope_message_new(bus, "zvm-100.scope", "zvm.slice", "zvm VM 100", helper_zero, 2, NULL, &m) >= 0,
           "QEMU pid with no helper (kernel vsock)");
        r = sd_bus_message_seal(m, 1, 0);
        if (r >= 0)
                r = sd_bus_message_rewind(m, true);
        if (r >= 0)
                r = sd_bus_message_read(m, "ss", &unit, &mode);
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'a', "(sv)");
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'r', "sv");
        if (r >= 0)
                r = sd_bus_message_read(m, "s", &name);
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'v', "au");
        if (r >= 0)
                r = sd_bus_message_read_array(m, 'u', &arr, &size);
        ok(r >= 0, "message reads back");
        is_str(unit, "zvm-100.scope", "unit name");
        is_str(name, "PIDs", "first property is PIDs");
        is_int(size, sizeof(uint32_t), "exactly one pid: 0 (which systemd reads as the caller) left out");
        is_int(size >= 4 ? ((const uint32_t *) arr)[0] : 0, 4242, "it is QEMU's");
        m = sd_bus_message_unref(m);

        ok(scope_message_new(bus, "zvm-101.scope", "zvm.slice", "zvm VM 101", both, 2,
                             &(ScopeLimits) { .memory_max = 512ULL << 20, .tasks_max = 512 }, &m) >= 0,
           "QEMU and helper, with limits");
        r = sd_bus_message_seal(m, 2, 0);
        if (r >= 0)
                r = sd_bus_message_rewind(m, true);
        if (r >= 0)
                r = sd_bus_message_skip(m, "ss");
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'a', "(sv)");
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'r', "sv");
        if (r >= 0)
                r = sd_bus_message_skip(m, "s");
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'v', "au");
        if (r >= 0)
                r = sd_bus_message_read_array(m, 'u', &arr, &size);
        is_int(r >= 0 ? (long long) size : -1, 2 * sizeof(uint32_t), "both pids");
        /* Past PIDs, Slice, Description, CollectMode: the limits. */
        {
                uint64_t mem = 0, tasks = 0;
                const char *k1 = NULL, *k2 = NULL;

                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                for (int i = 0; r >= 0 && i < 3; i++)
                        r = sd_bus_message_skip(m, "(sv)");
                if (r >= 0)
                        r = sd_bus_message_read(m, "(sv)", &k1, "t", &mem);
                if (r >= 0)
                        r = sd_bus_message_read(m, "(sv)", &k2, "t", &tasks);
                ok(r >= 0 && streq_ptr(k1, "MemoryMax") && mem == 512ULL << 20, "MemoryMax=512M (%s)", strnull(k1));
                ok(r >= 0 && streq_ptr(k2, "TasksMax") && tasks == 512, "TasksMax=512 (%s)", strnull(k2));
        }
        m = sd_bus_message_unref(m);
}

typedef struct Reply {
        bool done;
        char *error;
} Reply;

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Reply *r = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        r->done = true;
        r->error = e ? strdup(e->name) : NULL;
        return 0;
}

static void test_async(sd_bus *bus, sd_event *e) {
        const pid_t pids[] = { getpid() };
        Reply reply = {};
        struct timespec t0, t1;
        unsigned iterations = 0;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        ok(scope_start_async(bus, "zvm-102.scope", "zvm.slice", "zvm VM 102", pids, 1, NULL, on_reply, &reply) >= 0,
           "call sent");
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ok(!reply.done, "the send returns before any answer");
        ok((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 100, "and at once");
        for (; !reply.done && iterations < 200; iterations++)
                (void) sd_event_run(e, 50 * 1000);
        ok(reply.done, "the answer arrives through the loop (%u iterations)", iterations);
        ok(reply.error != NULL, "an error here, where no systemd owns the name: %s", strnull(reply.error));
        free(reply.error);
}

int main(void) {
        char dir[] = "/tmp/zvm-test-scope.XXXXXX";
        _cleanup_free_ char *addr = NULL;
        sd_bus *bus = NULL;
        sd_event *e = NULL;
        int r;

        signal(SIGPIPE, SIG_IGN);
        if (!mkdtemp(dir))
                return 1;
        addr = start_dbus(dir);
        if (!addr) {
                printf("1..0 # SKIP dbus-daemon did not start\n");
                return getenv("ZVM_MUST_BOOT") ? 1 : 0;
        }
        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, addr);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, true);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r >= 0)
                r = sd_event_new(&e);
        if (r >= 0)
                r = sd_bus_attach_event(bus, e, 0);
        ok(r >= 0, "connected to the private bus");
        if (r >= 0) {
                test_message(bus);
                test_async(bus, e);
        }
        sd_bus_flush_close_unref(bus);
        sd_event_unref(e);
        (void) kill(-dbus_pid, SIGTERM);
        (void) waitpid(dbus_pid, NULL, 0);
        {
                _cleanup_free_ char *sock = strjoin(dir, "/bus");
                (void) unlink(sock);
        }
        (void) rmdir(dir);
        return done_testing();
}
