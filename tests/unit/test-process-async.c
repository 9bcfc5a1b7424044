/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* daemon/process-async.c on a real sd-event loop with real children: the
 * loop keeps running while they work, output is captured and capped,
 * deadlines kill, and file waits end on creation, on the creator's death
 * or at their deadline. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fd-util.h"
#include "process-async.h"
#include "process.h"
#include "string-util.h"
#include "tap.h"

typedef struct Result {
        bool done;
        int status;
        char *output;
        unsigned ticks_seen;            /* loop iterations while the job ran */
} Result;

static uint64_t mono_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static void on_job(ProcessJob *j, int status, const char *output, void *userdata) {
        Result *res = userdata;

        res->done = true;
        res->status = status;
        res->output = strdup(output);
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        Result *res = userdata;

        res->ticks_seen++;
        (void) sd_event_source_set_time_relative(s, 10 * 1000);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

/* Runs the loop until res->done, at most 10 s. */
static void run_until_done(sd_event *e, Result *res) {
        sd_event_source *tick = NULL;
        uint64_t end = mono_ms() + 10000;

        (void) sd_event_add_time_relative(e, &tick, CLOCK_MONOTONIC, 10 * 1000, 1, on_tick, res);
        while (!res->done && mono_ms() < end)
                (void) sd_event_run(e, 100 * 1000);
        sd_event_source_disable_unref(tick);
}

static void test_job(sd_event *e) {
        char *const sh[] = { (char *) "/bin/sh", (char *) "-c", (char *) "sleep 0.3; echo out; echo err >&2; exit 7",
                             NULL };
        char *const big[] = { (char *) "/bin/sh", (char *) "-c", (char *) "head -c 200000 /dev/zero | tr '\\0' x",
                              NULL };
        char *const hang[] = { (char *) "/bin/sleep", (char *) "30", NULL };
        char *const missing[] = { (char *) "/nonexistent/zvm-no-such-tool", NULL };
        _cleanup_(process_job_freep) ProcessJob *j = NULL;
        Result res = {};
        uint64_t t0;

        ok(process_job_start(e, sh, 5 * 1000000ULL, on_job, &res, &j) >= 0, "job started");
        run_until_done(e, &res);
        ok(res.done, "job finished");
        is_int(res.status, 7, "its exit status");
        is_str(res.output, "out\nerr\n", "its stdout and stderr");
        ok(res.ticks_seen >= 10, "the loop ran on while the job worked (%u ticks of 10 ms)", res.ticks_seen);
        free(res.output);
        j = process_job_free(j);

        res = (Result) {};
        ok(process_job_start(e, big, 5 * 1000000ULL, on_job, &res, &j) >= 0, "chatty job started");
        run_until_done(e, &res);
        is_int(res.status, 0, "chatty job exits 0 (its output was drained, not blocked)");
        is_int(strlen(res.output), PROCESS_JOB_OUTPUT_MAX, "output capped at %u bytes", PROCESS_JOB_OUTPUT_MAX);
        free(res.output);
        j = process_job_free(j);

        res = (Result) {};
        t0 = mono_ms();
        ok(process_job_start(e, hang, 300 * 1000ULL, on_job, &res, &j) >= 0, "hanging job started");
        run_until_done(e, &res);
        is_int(res.status, -ETIMEDOUT, "killed at its deadline");
        ok(mono_ms() - t0 < 3000, "within bounds (%llu ms)", (unsigned long long) (mono_ms() - t0));
        free(res.output);
        j = process_job_free(j);

        res = (Result) {};
        ok(process_job_start(e, missing, 5 * 1000000ULL, on_job, &res, &j) < 0 || (run_until_done(e, &res), res.status == 127),
           "a missing program is an error, not a hang");
        free(res.output);
        j = process_job_free(j);

        /* Freed while running: killed, callback never called. */
        res = (Result) {};
        ok(process_job_start(e, hang, 30 * 1000000ULL, on_job, &res, &j) >= 0, "job to cancel started");
        (void) sd_event_run(e, 0);
        j = process_job_free(j);
        (void) sd_event_run(e, 50 * 1000);
        ok(!res.done, "a freed job never calls back");
}

typedef struct WaitResult {
        bool done;
        int r;
} WaitResult;

static void on_wait(FileWait *w, int r, void *userdata) {
        WaitResult *res = userdata;

        res->done = true;
        res->r = r;
}

static void run_wait(sd_event *e, WaitResult *res) {
        uint64_t end = mono_ms() + 10000;

        while (!res->done && mono_ms() < end)
                (void) sd_event_run(e, 100 * 1000);
}

static void test_file_wait(sd_event *e) {
        char dir[] = "/tmp/zvm-test-wait.XXXXXX";
        _cleanup_free_ char *path = NULL, *cmd = NULL;
        _cleanup_(file_wait_freep) FileWait *w = NULL;
        WaitResult res = {};
        pid_t pid;
        int pidfd;

        ok(mkdtemp(dir) != NULL, "temp dir");
        path = strjoin(dir, "/sock");

        /* Appears later, made by a child. */
        cmd = strjoin("sleep 0.2; touch ", path, "; sleep 5");
        char *const maker[] = { (char *) "/bin/sh", (char *) "-c", cmd, NULL };
        ok(process_spawn(maker, NULL, 0, -1, true, &pid) >= 0, "creator spawned");
        pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        ok(file_wait_start(e, dir, "sock", pidfd, 5 * 1000000ULL, on_wait, &res, &w) >= 0, "wait started");
        run_wait(e, &res);
        is_int(res.r, 0, "the file appeared");
        (void) kill(-pid, SIGKILL);
        (void) waitpid(pid, NULL, 0);
        safe_close(pidfd);
        w = file_wait_free(w);

        /* Already there. */
        res = (WaitResult) {};
        ok(file_wait_start(e, dir, "sock", -1, 5 * 1000000ULL, on_wait, &res, &w) >= 0, "wait on an existing file");
        ok(!res.done, "no callback from inside the start call");
        run_wait(e, &res);
        is_int(res.r, 0, "reported from the loop");
        w = file_wait_free(w);
        (void) unlink(path);

        /* The creator dies first. */
        res = (WaitResult) {};
        char *const dier[] = { (char *) "/bin/sh", (char *) "-c", (char *) "sleep 0.1; exit 1", NULL };
        ok(process_spawn(dier, NULL, 0, -1, true, &pid) >= 0, "dying creator spawned");
        pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        ok(file_wait_start(e, dir, "sock", pidfd, 5 * 1000000ULL, on_wait, &res, &w) >= 0, "wait started");
        run_wait(e, &res);
        is_int(res.r, -ECHILD, "its death ends the wait");
        (void) waitpid(pid, NULL, 0);
        safe_close(pidfd);
        w = file_wait_free(w);

        /* Nobody makes it. */
        res = (WaitResult) {};
        ok(file_wait_start(e, dir, "never", -1, 200 * 1000ULL, on_wait, &res, &w) >= 0, "wait for nothing");
        run_wait(e, &res);
        is_int(res.r, -ETIMEDOUT, "ends at the deadline");
        w = file_wait_free(w);
        (void) rmdir(dir);
}

int main(void) {
        sd_event *e = NULL;
        sigset_t mask;

        /* As in zvmd: SIGCHLD blocked for child pidfd sources. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        if (sd_event_new(&e) < 0)
                return 1;
        test_job(e);
        test_file_wait(e);
        sd_event_unref(e);
        return done_testing();
}
