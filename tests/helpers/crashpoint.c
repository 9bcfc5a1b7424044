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
 * (daemon/core/sync-worker.h): there the new file's fsync, from the
 * worker, takes the place of the directory's (both are told by inode from
 * other files' fsyncs the worker makes in between), and the step after it
 * ends the write; a kill from the worker thread ends the whole process
 * all the same.
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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TRACKED_MAX 16

static int tracked[TRACKED_MAX];
static size_t n_tracked;
static volatile bool sync_pending;     /* a matched rename awaits its fsync */
static dev_t pending_dev;
static ino_t pending_file_ino, pending_dir_ino;
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
        unsigned long n = __atomic_add_fetch(&steps, 1, __ATOMIC_SEQ_CST);
        char buf[32];
        int fd, len;

        if (at && strtoul(at, NULL, 10) == n)
                (void) syscall(SYS_kill, syscall(SYS_getpid), SIGKILL);
        if (log) {
                fd = (int) syscall(SYS_openat, AT_FDCWD, log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                if (fd >= 0) {
                        len = snprintf(buf, sizeof(buf), "%lu\n", n);
                        (void) syscall(SYS_write, fd, buf, (size_t) len);
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

/* After a rename: the fsync that makes it durable is a step, and so is
 * the return from it. Inline (no disk worker) that is the directory's
 * fsync; with zvmd's worker, the new file's (then the directory's, not
 * counted), from the worker thread. Matched by inode, so that the worker's
 * fsync of another file in between is not taken for it. */
static bool is_pending_sync(int fd) {
        struct stat st;

        if (!sync_pending || fstat(fd, &st) < 0)
                return false;
        return st.st_dev == pending_dev && (st.st_ino == pending_file_ino || st.st_ino == pending_dir_ino);
}

int fsync(int fd) {
        bool pending = !is_tracked(fd) && is_pending_sync(fd);
        int r, saved;

        if (is_tracked(fd) || pending)
                step();
        r = REAL(fsync)(fd);
        saved = errno;
        if (pending) {
                sync_pending = false;
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
        struct stat file_st, dir_st;
        int r;

        if (!matches(oldpath))
                return REAL(renameat)(olddirfd, oldpath, newdirfd, newpath);
        step();
        r = REAL(renameat)(olddirfd, oldpath, newdirfd, newpath);
        if (r >= 0 && fstatat(newdirfd, newpath, &file_st, AT_SYMLINK_NOFOLLOW) >= 0 && fstat(newdirfd, &dir_st) >= 0) {
                pending_dev = file_st.st_dev;
                pending_file_ino = file_st.st_ino;
                pending_dir_ino = dir_st.st_ino;
                sync_pending = true;
        }
        return r;
}
