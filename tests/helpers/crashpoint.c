/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * crashpoint.so: an LD_PRELOAD shim for the crash-consistency trials of
 * issue 14 (tests/integration/zvmd_crash.py). It numbers every step of
 * lib/fileio's atomic write of the files whose temporary name matches
 * $ZVM_CRASH_MATCH (comma-separated substrings of ".#<name>.XXXXXX"):
 *
 *   open of the temporary, each write, fsync, close, rename over the
 *   file, fsync of the directory, and the return from it
 *
 * zvmd hands its fsyncs to its disk worker thread after the rename
 * (daemon/core/sync-worker.h): there the first fsync after the rename
 * (the file's, from the worker) counts as the directory's step, and the
 * step after it ends the write; a kill from the worker thread ends the
 * whole process all the same.
 *
 * and kills the process with SIGKILL right before step $ZVM_CRASH_AT (0:
 * never). After every step it writes the count so far to $ZVM_CRASH_LOG,
 * so a run without a crash tells how many steps an operation has.
 *
 * SIGKILL models a crash of zvmd (the page cache survives), not a power
 * loss. Only calls zvmd makes through the dynamic libc are seen: enough,
 * lib/fileio makes exactly these calls.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TRACKED_MAX 16

static int tracked[TRACKED_MAX];
static size_t n_tracked;
static bool dir_fsync_next;
static unsigned long steps;

static bool matches(const char *path) {
        const char *base = strrchr(path, '/'), *list = getenv("ZVM_CRASH_MATCH");
        char buf[256];

        base = base ? base + 1 : path;
        if (strncmp(base, ".#", 2) != 0 || !list)
                return false;
        snprintf(buf, sizeof(buf), "%s", list);
        for (char *save = NULL, *m = strtok_r(buf, ",", &save); m; m = strtok_r(NULL, ",", &save))
                if (strstr(base, m))
                        return true;
        return false;
}

static bool is_tracked(int fd) {
        for (size_t i = 0; i < n_tracked; i++)
                if (tracked[i] == fd)
                        return true;
        return false;
}

static void untrack(int fd) {
        for (size_t i = 0; i < n_tracked; i++)
                if (tracked[i] == fd) {
                        tracked[i] = tracked[--n_tracked];
                        return;
                }
}

/* Before a step: die if it is the chosen one. Raw syscalls only: no libc
 * call of ours may come back through this shim. */
static void step(void) {
        const char *at = getenv("ZVM_CRASH_AT"), *log = getenv("ZVM_CRASH_LOG");
        char buf[32];
        int fd, n;

        steps++;
        if (at && strtoul(at, NULL, 10) == steps)
                (void) syscall(SYS_kill, syscall(SYS_getpid), SIGKILL);
        if (log) {
                fd = (int) syscall(SYS_openat, AT_FDCWD, log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                if (fd >= 0) {
                        n = snprintf(buf, sizeof(buf), "%lu\n", steps);
                        (void) syscall(SYS_write, fd, buf, (size_t) n);
                        (void) syscall(SYS_close, fd);
                }
        }
}

#define REAL(name) ((__typeof__(&name)) dlsym(RTLD_NEXT, #name))

int openat(int dirfd, const char *path, int flags, ...) {
        mode_t mode = 0;
        bool m = (flags & O_CREAT) && matches(path);
        int fd;

        if (flags & (O_CREAT | O_TMPFILE)) {
                va_list ap;

                va_start(ap, flags);
                mode = va_arg(ap, mode_t);
                va_end(ap);
        }
        if (m)
                step();
        fd = REAL(openat)(dirfd, path, flags, mode);
        if (m && fd >= 0 && n_tracked < TRACKED_MAX)
                tracked[n_tracked++] = fd;
        return fd;
}

ssize_t write(int fd, const void *buf, size_t n) {
        if (is_tracked(fd))
                step();
        return REAL(write)(fd, buf, n);
}

int fsync(int fd) {
        int r, saved;

        if (is_tracked(fd))
                step();
        else if (dir_fsync_next)
                step();
        r = REAL(fsync)(fd);
        saved = errno;
        if (!is_tracked(fd) && dir_fsync_next) {
                dir_fsync_next = false;
                step();                 /* after the write is complete */
        }
        errno = saved;
        return r;
}

int close(int fd) {
        if (is_tracked(fd)) {
                step();
                untrack(fd);
        }
        return REAL(close)(fd);
}

int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath) {
        int r;

        if (!matches(oldpath))
                return REAL(renameat)(olddirfd, oldpath, newdirfd, newpath);
        step();
        r = REAL(renameat)(olddirfd, oldpath, newdirfd, newpath);
        dir_fsync_next = r >= 0;
        return r;
}
