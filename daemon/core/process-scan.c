/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <limits.h>
#include <unistd.h>

#include "fd-util.h"
#include "macro.h"
#include "process-scan.h"
#include "string-util.h"

static bool kept(pid_t pid, const pid_t *keep, size_t n_keep) {
        for (size_t i = 0; i < n_keep; i++)
                if (keep[i] > 0 && keep[i] == pid)
                        return true;
        return false;
}

/* Its working directory is dir (zvmd starts a VM's processes in its run
 * dir, which nothing else uses). */
static bool cwd_is(pid_t pid, const char *dir) {
        char path[64], target[PATH_MAX];
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/cwd", (int) pid);
        n = readlink(path, target, sizeof(target) - 1);
        if (n < 0)
                return false;
        target[n] = 0;
        return streq(target, dir);
}

int process_kill_by_cwd(const char *dir, const pid_t *keep, size_t n_keep) {
        struct dirent *de;
        DIR *d;
        int n = 0;

        d = opendir("/proc");
        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                _cleanup_close_ int pidfd = -EBADF;
                char *end;
                long pid = strtol(de->d_name, &end, 10);

                if (*end || pid <= 0 || pid == getpid() || kept((pid_t) pid, keep, n_keep))
                        continue;
                /* Pinned first: if it exits now, the signal goes nowhere. */
                pidfd = (int) syscall(SYS_pidfd_open, (pid_t) pid, 0);
                if (pidfd < 0 || !cwd_is((pid_t) pid, dir))
                        continue;
                if (syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) >= 0)
                        n++;
        }
        closedir(d);
        return n;
}
