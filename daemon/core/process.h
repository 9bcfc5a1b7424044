/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Spawns argv[0] (PATH lookup) via posix_spawn. keep_fds are inherited at
 * the same numbers (their CLOEXEC flag cleared in the child only); every
 * other fd of ours is O_CLOEXEC. stdout and stderr go to out_fd (or
 * /dev/null when < 0), stdin is /dev/null. new_session puts the child in its
 * own session so it outlives us and our terminal. */
int process_spawn(char *const *argv, const int *keep_fds, size_t n_keep_fds, int out_fd, bool new_session,
                  pid_t *ret_pid);
/* Runs argv to completion, capturing stdout+stderr (bounded to 64 KiB),
 * killing it after timeout_ms. Returns the exit status (>= 0), or
 * -ETIMEDOUT, or -errno. */
int process_run(char *const *argv, int timeout_ms, char **ret_output);

/* The process's start time in clock ticks since boot (/proc/PID/stat field
 * 22): with the pid it names a process uniquely, so a recycled pid is never
 * mistaken for a VM. */
int process_starttime(pid_t pid, uint64_t *ret);
/* The parent's pid (/proc/PID/stat). */
int process_ppid(pid_t pid, pid_t *ret);
/* Whether pid is a child of this process (a zombie too, until reaped). */
bool process_is_child(pid_t pid);

/* CPU time (user+system, ns) and resident set size (bytes) of a process. */
int process_usage(pid_t pid, uint64_t *ret_cpu_ns, uint64_t *ret_rss_bytes);

int pidfd_open_checked(pid_t pid, uint64_t expected_starttime, int *ret_fd);
