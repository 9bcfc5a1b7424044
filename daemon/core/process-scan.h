/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Finding the processes a killed zvmd spawned but had not recorded yet: a
 * start spawns the vsock helper and QEMU, then writes their pids to
 * state.json; a zvmd killed in between leaves them running, named nowhere
 * (issue 14, the crash_writes scenario). Both name the VM's run dir in
 * their argv (sockets, QMP), which no other process does.
 */

#include <sys/types.h>

/* SIGKILLs every process but zvmd one of whose argv elements contains
 * needle (each pinned by a pidfd before its argv is read, so a reused pid
 * is never hit), except the pids in keep (n_keep of them, 0s ignored).
 * Returns how many were killed, or -errno if /proc cannot be read. */
int process_kill_by_argv(const char *needle, const pid_t *keep, size_t n_keep);
