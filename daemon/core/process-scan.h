/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Finding the processes a killed zvmd spawned but had not recorded yet: a
 * start spawns the vsock helper and QEMU, then writes their pids to
 * state.json; a zvmd killed in between leaves them running, named nowhere
 * (issue 14, the crash_writes scenario). Both run with the VM's run dir as
 * their working directory (core/process-sandbox.c), which no other process
 * does; their argv names no path of it any more (they get fds), and their
 * uid is shared by the same VMID of another zvmd root (tests).
 */

#include <sys/types.h>

/* SIGKILLs every process but zvmd whose working directory is dir (a
 * canonical path), each pinned by a pidfd before its cwd is read, so a
 * reused pid is never hit, except the pids in keep (n_keep of them, 0s
 * ignored). Returns how many were killed, or -errno if /proc cannot be
 * read. */
int process_kill_by_cwd(const char *dir, const pid_t *keep, size_t n_keep);
