/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Crash-safe file replacement and directory creation. */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Replaces the file `name` in directory `dirfd` (or AT_FDCWD) with `data`:
 * the data goes to a temporary ".#<name>.XXXXXX" in the same directory, is
 * fsync()ed, renamed over `name`, and the directory is fsync()ed. Readers
 * see either the complete old or the complete new file, also after a crash.
 *
 * `name` must be a single path component. The new file gets `mode` minus the
 * umask. On any failure before the rename, the temporary file is removed and
 * the old file is untouched. If only the final directory fsync() fails, the
 * new content is already in place and the error is returned anyway.
 */
int write_file_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode);

/* Same, but the file gets exactly `mode` (fchmod, the umask does not apply)
 * and, unless uid is (uid_t) -1, the owner uid:gid: for files written on a
 * user's behalf (the guest agent's file-write and authorized_keys). */
int write_file_atomic_at_full(int dirfd, const char *name, const void *data, size_t len, mode_t mode, uid_t uid,
                              gid_t gid);

/* Same, with the directory given as a path (NULL means the current one). */
int write_file_atomic(const char *dir, const char *name, const void *data, size_t len, mode_t mode);

/* The same replacement without the two fsync()s: readers still see the old
 * or the new file after the writer is killed (the page cache outlives it),
 * but not after the host crashes. For records that describe processes, which
 * do not outlive the host either (the run dir, a tmpfs in production):
 * journal commits forced by fsync() can stall the event loop for 100+ ms
 * when the disk is busy. */
int write_file_replace(const char *dir, const char *name, const void *data, size_t len, mode_t mode);

/* Where the fsync()s of write_file_atomic*() and fileio_sync_dir() go.
 * Without a hook (the default) they run inline, before the rename. With
 * one, the file is written and renamed as before, then the hook is given a
 * descriptor of the new file and one of its directory (either may be -1),
 * which it owns from then on, to fsync both and close them; a hook that
 * returns < 0 has refused them, and they are fsync()ed inline. zvmd's hook
 * hands them to a thread so that its event loop never waits on the disk
 * (daemon/core/sync-worker.h); a process sets it once, from one thread. */
typedef int (*fileio_sync_hook_fn)(int fd, int dir_fd, void *userdata);
void fileio_set_sync_hook(fileio_sync_hook_fn fn, void *userdata);

/* Makes the entries of directory dir_fd durable (fsync(), or via the hook
 * on a copy of dir_fd). */
int fileio_sync_dir(int dir_fd);

/* Removes the temporaries (".#<name>.XXXXXX" above) that writers killed
 * before their rename left in dir_fd: regular files whose name starts with
 * ".#", for which may_remove (if not NULL) returns true. Only for a
 * directory whose writers cannot be running (the caller holds their lock).
 * Returns how many were removed, or -errno. */
int unlink_temporaries_at(int dir_fd, bool (*may_remove)(int dir_fd, const char *name, void *userdata),
                          void *userdata);

/* Removes name in dir_fd and, if it is a directory, all it holds. Never
 * follows a symlink, never leaves dir_fd's filesystem (-EXDEV), at most 16
 * levels deep (-ELOOP); a name already gone is fine. Removes what it can
 * and returns the first error. */
int rm_rf_at(int dir_fd, const char *name);

/* Creates path and any missing parent directories with mode (minus umask).
 * Existing directories (also via symlinks) are fine; an existing
 * non-directory in the way is -ENOTDIR. */
int mkdir_p(const char *path, mode_t mode);

/* The path of an executable: name itself if it contains a '/', else the
 * first match in $PATH (default /usr/local/bin:/usr/bin:/bin), then in
 * /usr/sbin and /sbin (which a non-root PATH may lack). NULL if none, or on
 * OOM. */
char *find_executable(const char *name);
