/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fd-util.h"
#include "macro.h"
#include "process.h"
#include "string-util.h"
#include "time-util.h"

extern char **environ;

static bool fd_is_kept(int fd, const int *keep_fds, size_t n_keep_fds) {
        for (size_t i = 0; i < n_keep_fds; i++)
                if (keep_fds[i] == fd)
                        return true;
        return false;
}

/* Every fd of ours is O_CLOEXEC, but a library (or a bug) may leave one
 * that is not: the child gets 0-2 and keep_fds, and nothing else. Above the
 * highest kept fd close_range() does it in the child; below it, the fds open
 * right now (zvmd is single-threaded, so none appears before the spawn) are
 * closed one by one. */
static int spawn_close_others(posix_spawn_file_actions_t *fa, const int *keep_fds, size_t n_keep_fds) {
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int max = 2;

        for (size_t i = 0; i < n_keep_fds; i++)
                max = MAX(max, keep_fds[i]);
        if (max > 2) {
                d = opendir("/proc/self/fd");
                if (!d)
                        return -errno;
                while ((de = readdir(d))) {
                        int fd;

                        if (safe_atoi(de->d_name, &fd) < 0 || fd <= 2 || fd >= max || fd == dirfd(d) ||
                            fd_is_kept(fd, keep_fds, n_keep_fds))
                                continue;
                        if (posix_spawn_file_actions_addclose(fa, fd) != 0)
                                return -ENOMEM;
                }
        }
        if (posix_spawn_file_actions_addclosefrom_np(fa, max + 1) != 0)
                return -ENOMEM;
        return 0;
}

static int spawn(char *const *argv, char *const *envp, const int *keep_fds, size_t n_keep_fds, int out_fd,
                 bool new_session, pid_t *ret_pid) {
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t none, dfl;
        pid_t pid;
        int r;

        posix_spawn_file_actions_init(&fa);
        posix_spawnattr_init(&attr);
        posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        if (out_fd >= 0) {
                posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
                posix_spawn_file_actions_adddup2(&fa, out_fd, STDERR_FILENO);
        } else {
                posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
                posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
        }
        /* dup2(fd, fd) in a file action clears FD_CLOEXEC in the child
         * (POSIX.1-2024, glibc >= 2.29). */
        for (size_t i = 0; i < n_keep_fds; i++)
                posix_spawn_file_actions_adddup2(&fa, keep_fds[i], keep_fds[i]);
        r = spawn_close_others(&fa, keep_fds, n_keep_fds);
        if (r < 0) {
                posix_spawn_file_actions_destroy(&fa);
                posix_spawnattr_destroy(&attr);
                return r;
        }

        sigemptyset(&none);
        sigfillset(&dfl);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setsigdefault(&attr, &dfl);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                                (new_session ? POSIX_SPAWN_SETSID : 0));
        r = posix_spawnp(&pid, argv[0], &fa, &attr, argv, envp);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (r != 0)
                return -r;
        *ret_pid = pid;
        return 0;
}

int process_spawn(char *const *argv, const int *keep_fds, size_t n_keep_fds, int out_fd, bool new_session,
                  pid_t *ret_pid) {
        return spawn(argv, environ, keep_fds, n_keep_fds, out_fd, new_session, ret_pid);
}

int process_run(char *const *argv, int timeout_ms, char **ret_output) {
        _cleanup_close_ int rfd = -EBADF, wfd = -EBADF, pidfd = -EBADF;
        _cleanup_free_ char *out = NULL;
        size_t size = 0, max = 64 * 1024;
        uint64_t deadline = (now_usec(CLOCK_MONOTONIC) / 1000) + (uint64_t) timeout_ms;
        int fds[2], status, r;
        pid_t pid;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        rfd = fds[0];
        wfd = fds[1];
        r = process_spawn(argv, NULL, 0, wfd, false, &pid);
        if (r < 0)
                return r;
        wfd = safe_close(wfd);
        pidfd = (int) syscall(SYS_pidfd_open, pid, 0);

        out = malloc(max + 1);
        if (!out) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                return -ENOMEM;
        }
        for (;;) {
                struct pollfd p = { .fd = rfd, .events = POLLIN };
                uint64_t now = (now_usec(CLOCK_MONOTONIC) / 1000);
                ssize_t n;

                if (now >= deadline) {
                        (void) kill(pid, SIGKILL);
                        (void) waitpid(pid, NULL, 0);
                        return -ETIMEDOUT;
                }
                if (poll(&p, 1, (int) (deadline - now)) < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        (void) kill(pid, SIGKILL);
                        (void) waitpid(pid, NULL, 0);
                        return r;
                }
                if (!p.revents)
                        continue;
                n = read(rfd, out + size, size < max ? max - size : 0);
                if (n > 0) {
                        size += (size_t) n;
                        if (size >= max) {
                                /* Drain the rest unseen so the child never
                                 * blocks on a full pipe. */
                                char sink[4096];

                                while (read(rfd, sink, sizeof(sink)) > 0)
                                        ;
                                break;
                        }
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                break;          /* EOF: the child closed its output */
        }
        out[size] = 0;
        /* The child has closed stdout; bound the wait for its exit too. */
        if (pidfd >= 0) {
                struct pollfd p = { .fd = pidfd, .events = POLLIN };
                uint64_t now = (now_usec(CLOCK_MONOTONIC) / 1000);

                if (poll(&p, 1, now < deadline ? (int) (deadline - now) : 0) == 0)
                        (void) kill(pid, SIGKILL);
        }
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        if (ret_output)
                *ret_output = TAKE_PTR(out);
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        return 128 + WTERMSIG(status);
}

static int read_stat_fields(pid_t pid, char **ret_after_comm) {
        _cleanup_free_ char *buf = NULL;
        char path[64], *p;
        int r;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        r = read_full_file(path, &buf, NULL, 4096);
        if (r < 0)
                return r == -ENOENT ? -ESRCH : r;
        /* comm may contain spaces and parentheses: skip to the last ')'. */
        p = strrchr(buf, ')');
        if (!p || p[1] != ' ')
                return -EBADMSG;
        *ret_after_comm = strdup(p + 2);
        return *ret_after_comm ? 0 : -ENOMEM;
}

/* Field n (1-based, as in proc(5)) from the text after "(comm) ". */
static int stat_field(const char *after_comm, unsigned n, uint64_t *ret) {
        const char *p = after_comm;

        /* after_comm starts at field 3 (state). */
        for (unsigned i = 3; i < n; i++) {
                p = strchr(p, ' ');
                if (!p)
                        return -EBADMSG;
                p++;
        }
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno || end == p)
                return -EBADMSG;
        *ret = v;
        return 0;
}

int process_starttime(pid_t pid, uint64_t *ret) {
        _cleanup_free_ char *f = NULL;
        int r;

        r = read_stat_fields(pid, &f);
        if (r < 0)
                return r;
        return stat_field(f, 22, ret);
}

int process_ppid(pid_t pid, pid_t *ret) {
        _cleanup_free_ char *f = NULL;
        uint64_t v;
        int r;

        r = read_stat_fields(pid, &f);
        if (r >= 0)
                r = stat_field(f, 4, &v);
        if (r < 0)
                return r;
        *ret = (pid_t) v;
        return 0;
}

bool process_is_child(pid_t pid) {
        pid_t ppid;

        return pid > 0 && process_ppid(pid, &ppid) >= 0 && ppid == getpid();
}

int process_usage(pid_t pid, uint64_t *ret_cpu_ns, uint64_t *ret_rss_bytes) {
        _cleanup_free_ char *f = NULL;
        uint64_t utime, stime, rss_pages;
        long tick = sysconf(_SC_CLK_TCK);
        int r;

        r = read_stat_fields(pid, &f);
        if (r < 0)
                return r;
        if (stat_field(f, 14, &utime) < 0 || stat_field(f, 15, &stime) < 0 || stat_field(f, 24, &rss_pages) < 0)
                return -EBADMSG;
        if (tick <= 0)
                tick = 100;
        *ret_cpu_ns = (utime + stime) * (1000000000ULL / (uint64_t) tick);
        *ret_rss_bytes = rss_pages * (uint64_t) sysconf(_SC_PAGESIZE);
        return 0;
}

int pidfd_open_checked(pid_t pid, uint64_t expected_starttime, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        uint64_t st;
        int r;

        fd = (int) syscall(SYS_pidfd_open, pid, 0);
        if (fd < 0)
                return -errno;
        /* Check the start time after opening the pidfd: if it matches now,
         * the pidfd refers to that very process, whatever happens later. */
        r = process_starttime(pid, &st);
        if (r < 0)
                return r;
        if (st != expected_starttime)
                return -ESRCH;
        *ret_fd = TAKE_FD(fd);
        return 0;
}
