/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fd-util.h"
#include "macro.h"
#include "process-scan.h"

/* QEMU's argv is a few KiB; anything longer is not one of ours. */
#define CMDLINE_MAX (256U * 1024U)

static bool argv_contains(pid_t pid, const char *needle) {
        _cleanup_free_ char *text = NULL;
        char path[64];
        size_t len = 0;

        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int) pid);
        if (read_full_file(path, &text, &len, CMDLINE_MAX) < 0)
                return false;
        for (size_t i = 0; i < len; i += strlen(text + i) + 1)
                if (strstr(text + i, needle))
                        return true;
        return false;
}

static bool kept(pid_t pid, const pid_t *keep, size_t n_keep) {
        for (size_t i = 0; i < n_keep; i++)
                if (keep[i] > 0 && keep[i] == pid)
                        return true;
        return false;
}

int process_kill_by_argv(const char *needle, const pid_t *keep, size_t n_keep) {
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
                if (pidfd < 0 || !argv_contains((pid_t) pid, needle))
                        continue;
                if (syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) >= 0)
                        n++;
        }
        closedir(d);
        return n;
}
