/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* daemon/process.c: spawned children get 0-2 and the fds they are given,
 * nothing else, even fds we forgot to mark O_CLOEXEC. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fd-util.h"
#include "process.h"
#include "tap.h"

/* Runs `sh -c script` with keep_fds, returns what it printed. */
static char *spawn_capture(const char *script, const int *keep, size_t n_keep) {
        char *const argv[] = { (char *) "/bin/sh", (char *) "-c", (char *) script, NULL };
        static char buf[4096];
        int p[2], status;
        ssize_t n;
        size_t size = 0;
        pid_t pid;

        if (pipe2(p, O_CLOEXEC) < 0)
                return NULL;
        if (process_spawn(argv, keep, n_keep, p[1], false, &pid) < 0) {
                close(p[0]);
                close(p[1]);
                return NULL;
        }
        close(p[1]);
        while (size < sizeof(buf) - 1 && (n = read(p[0], buf + size, sizeof(buf) - 1 - size)) > 0)
                size += (size_t) n;
        buf[size] = 0;
        close(p[0]);
        (void) waitpid(pid, &status, 0);
        return buf;
}

static void test_fds(void) {
        /* A leaked fd below the kept one, and one above it. */
        int leak_low = open("/dev/null", O_RDONLY);             /* no O_CLOEXEC, on purpose */
        int keep = fcntl(leak_low, F_DUPFD_CLOEXEC, 20);
        int leak_high = fcntl(leak_low, F_DUPFD, 40);
        char script[512];
        char *out;

        ok(leak_low >= 3 && keep >= 20 && leak_high >= 40, "test fds set up (%d, %d, %d)", leak_low, keep, leak_high);
        snprintf(script, sizeof(script),
                 "for f in %d %d %d; do if [ -e /proc/$$/fd/$f ]; then echo open; else echo closed; fi; done",
                 leak_low, keep, leak_high);
        out = spawn_capture(script, &keep, 1);
        is_str(out, "closed\nopen\nclosed\n", "child has the kept fd and neither leaked one");

        out = spawn_capture(script, NULL, 0);
        is_str(out, "closed\nclosed\nclosed\n", "with no kept fds, the child has none of ours");
        safe_close(leak_low);
        safe_close(keep);
        safe_close(leak_high);
}

static void test_run(void) {
        char *const echo[] = { (char *) "/bin/sh", (char *) "-c", (char *) "echo hi; exit 3", NULL };
        char *const sleeper[] = { (char *) "/bin/sleep", (char *) "10", NULL };
        _cleanup_free_ char *out = NULL;
        uint64_t st = 0;

        is_int(process_run(echo, 5000, &out), 3, "process_run returns the exit status");
        is_str(out, "hi\n", "and the output");
        is_int(process_run(sleeper, 200, NULL), -ETIMEDOUT, "process_run kills a child past its time limit");
        ok(process_starttime(getpid(), &st) >= 0 && st > 0, "process_starttime of ourselves");
        is_int(process_starttime(0x7ffffff0, &st), -ESRCH, "process_starttime of no process");
}

int main(void) {
        signal(SIGPIPE, SIG_IGN);
        test_fds();
        test_run();
        return done_testing();
}
