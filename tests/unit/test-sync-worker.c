/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* daemon/core/sync-worker.c: fsyncs and removals run on the worker, in
 * order, and are reported on the loop by ticket; freeing waits for what
 * was handed over. */
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fd-util.h"
#include "fileio.h"
#include "macro.h"
#include "string-util.h"
#include "sync-worker.h"
#include "tap.h"

static char tmpdir[] = "/tmp/test-sync-worker.XXXXXX";
static uint64_t last_done, n_calls;
static bool in_order = true;

static void on_done(uint64_t done, void *userdata) {
        if (done < last_done)
                in_order = false;
        last_done = done;
        n_calls++;
}

static uint64_t mono_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

/* Runs the loop until done reaches ticket, at most 10 s. */
static bool run_until(sd_event *e, uint64_t ticket) {
        uint64_t deadline = mono_usec() + 10ULL * 1000000ULL;

        while (last_done < ticket && mono_usec() < deadline)
                assert_se(sd_event_run(e, 100 * 1000) >= 0);
        return last_done >= ticket;
}

static int dir_fd(void) {
        int fd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        assert_se(fd >= 0);
        return fd;
}

static void make_tree(const char *name) {
        _cleanup_close_ int d = dir_fd();
        char sub[128];

        assert_se(mkdirat(d, name, 0700) == 0);
        snprintf(sub, sizeof(sub), "%s/sub", name);
        assert_se(mkdirat(d, sub, 0700) == 0);
        snprintf(sub, sizeof(sub), "%s/sub/file", name);
        assert_se(close(openat(d, sub, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) == 0);
}

static bool exists(const char *name) {
        _cleanup_close_ int d = dir_fd();

        return faccessat(d, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

int main(void) {
        sd_event *e = NULL;
        SyncWorker *w = NULL;
        json_object *o;
        int64_t t, prev = 0;
        bool increasing = true;
        int fd;

        assert_se(mkdtemp(tmpdir));
        assert_se(sd_event_new(&e) >= 0);
        is_int(sync_worker_new(e, &w), 0, "worker started");
        sync_worker_set_done(w, on_done, NULL);
        is_int((int64_t) sync_worker_pending(w), 0, "nothing pending at first");

        fd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_se(fd >= 0 && close(openat(fd, "a", O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) == 0);
        safe_close(fd);
        fd = open(tmpdir, O_RDONLY | O_CLOEXEC);
        assert_se(fd >= 0);
        t = sync_worker_add(w, fd, dir_fd());
        is_int(t, 1, "the first handover gets ticket 1");
        ok(run_until(e, 1), "done() reports ticket 1 on the loop");
        is_int((int64_t) sync_worker_pending(w), 0, "nothing pending once it is done");

        for (int i = 0; i < 50; i++) {
                t = sync_worker_add(w, dir_fd(), -EBADF);
                if (t <= prev)
                        increasing = false;
                prev = t;
        }
        ok(increasing && t == 51, "50 more handovers get increasing tickets (last %" PRIi64 ")", t);
        ok(run_until(e, 51), "all 51 reported done");
        ok(in_order, "done() never went backwards");

        make_tree("gone");
        t = sync_worker_remove(w, dir_fd(), "gone");
        ok(t == 52 && run_until(e, 52), "a removal is a handover like the others");
        ok(!exists("gone"), "the tree is removed by the worker");

        o = json_object_new_object();
        is_int(sync_worker_to_json(w, o), 0, "to_json");
        ok(json_object_get_int64(json_object_object_get(o, "sync_handovers")) == 52 &&
           json_object_get_int64(json_object_object_get(o, "sync_failures")) == 0 &&
           json_object_object_get_ex(o, "sync_worst_ms", NULL), "to_json: %s", json_object_to_json_string(o));
        json_object_put(o);

        /* Handed over, never waited for on the loop: freeing waits. */
        for (int i = 0; i < 5; i++) {
                char name[16];

                snprintf(name, sizeof(name), "late%d", i);
                make_tree(name);
                assert_se(sync_worker_remove(w, dir_fd(), name) > 0);
        }
        w = sync_worker_free(w);
        ok(!exists("late0") && !exists("late4"), "freeing the worker finishes what was handed over");

        sd_event_unref(e);
        fd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ok(fd >= 0 && rm_rf_at(fd, tmpdir + strlen("/tmp/")) == 0, "cleaned up");
        safe_close(fd);
        return done_testing();
}
