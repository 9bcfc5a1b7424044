/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

/* Who a guest-facing process (QEMU, the vsock helper) runs as, and with
 * which limits. uid 0 keeps root (no drop): only for unit tests of the
 * spawn itself; zvmd always gives a VM's own uid. */
typedef struct ProcessSandbox {
        uid_t uid;
        gid_t gid;
        gid_t extra_gid;        /* the one supplementary group (kvm's, for /dev/kvm), or (gid_t) -1 */
        rlim_t nofile;          /* RLIMIT_NOFILE, soft = hard; 0: unchanged */
        rlim_t nproc;           /* RLIMIT_NPROC (tasks of the uid: threads count); 0: unchanged */
        const char *cwd;        /* entered while still root (the uid need not search it): marks the
                                 * process as the VM's for core/process-scan; NULL: unchanged */
        bool mount_ns;          /* its own mount namespace, where every mount is read-only (and nosuid) */
        const char *writable;   /* in it, the one dir left writable (the VM's vsock dir), or NULL */
        const char *const *hide; /* in it, dirs to cover with an empty read-only tmpfs (NULL-terminated,
                                  * or NULL): skipped when missing, not a dir, or when the cwd, the
                                  * writable dir or the executable lies beneath */
        bool hide_siblings;     /* in it, an empty read-only tmpfs over the cwd's parent too, with
                                 * the cwd bound back (other VMs' run dirs): skipped if the writable
                                 * dir is not beneath the cwd or the executable is beneath that
                                 * parent */
} ProcessSandbox;

/* Spawns argv[0] (PATH lookup, in the parent) for a process that faces a
 * guest: fork, then in the child only async-signal-safe system calls:
 * stdin /dev/null, stdout+stderr to out_fd (or /dev/null when < 0), keep_fds
 * inherited at the same numbers and every other fd closed at exec, its own
 * session, default signals, the mount namespace, the limits, the working
 * directory, then the drop: no supplementary
 * group (but extra_gid), gid and uid sb's, an empty bounding set, no
 * ambient or inheritable capability, NO_NEW_PRIVS; then execve with only
 * PATH and LC_ALL in the environment. Returns 0 with the pid right after
 * the fork (argv[0] not found and the parent's own failures are -errno):
 * nothing waits for the child's setup, whose mount namespace alone takes
 * 20-75 ms, on the event loop. A step that fails in the child writes
 * "zvmd: cannot run EXE: STEP: REASON" to out_fd and exits 127, which the
 * caller's exit watch reports. */
/* sb NULL: no drop, no limits, no namespace (passt, which drops to nobody
 * itself); the rest holds. */
int process_spawn_guest_facing(char *const *argv, const int *keep_fds, size_t n_keep_fds, int out_fd,
                               const ProcessSandbox *sb, pid_t *ret_pid);
