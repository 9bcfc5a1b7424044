/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Slow work off the event loop: a child run to completion (mkfs.ext4, ip,
 * bridge) and a wait for a file to appear (a helper's socket), each driven
 * by sd-event with a deadline, each reporting once through a callback. */

#include <stdint.h>
#include <systemd/sd-event.h>

#include "macro.h"

typedef struct ProcessJob ProcessJob;

/* status: the exit status (>= 0), 128+signal, or -ETIMEDOUT (the child was
 * killed at the deadline) or another -errno; output: what it printed on
 * stdout+stderr, at most PROCESS_JOB_OUTPUT_MAX bytes, NUL-terminated
 * (borrowed for the call). Called exactly once unless the job is freed
 * first; the job may be freed from inside the callback. */
typedef void (*process_job_done_fn)(ProcessJob *j, int status, const char *output, void *userdata);

#define PROCESS_JOB_OUTPUT_MAX (64U * 1024U)

/* Spawns argv (PATH lookup) with stdin /dev/null, no fds of ours, and its
 * own process group; SIGKILLs the group at the deadline. */
int process_job_start(sd_event *e, char *const *argv, uint64_t timeout_usec, process_job_done_fn cb, void *userdata,
                      ProcessJob **ret);
/* Kills and reaps (bounded: SIGKILL cannot be ignored) a job still running;
 * its callback is not called. NULL is fine. */
ProcessJob *process_job_free(ProcessJob *j);
DEFINE_TRIVIAL_CLEANUP_FUNC(ProcessJob *, process_job_free);

/* Its owner goes away (a VM freed at exit): the job runs on unreported and
 * frees itself when it ends. NULL is fine. */
void process_job_detach(ProcessJob *j);
/* At exit, before the loop goes: lets each detached job still running
 * finish (up to timeout_usec each, blocking), then kills and reaps the rest,
 * so that an exit leaves no half-done work and no child behind. */
void process_job_detached_flush(uint64_t timeout_usec);

typedef struct FileWait FileWait;

/* r: 0 when the file exists, -ETIMEDOUT, -ECHILD when the watched process
 * (pidfd) exited first, or -errno. Called exactly once unless freed first. */
typedef void (*file_wait_done_fn)(FileWait *w, int r, void *userdata);

/* Waits on inotify until dir/name exists; watch_pidfd (>= 0) is the process
 * that should create it: its exit ends the wait. */
int file_wait_start(sd_event *e, const char *dir, const char *name, int watch_pidfd, uint64_t timeout_usec,
                    file_wait_done_fn cb, void *userdata, FileWait **ret);
FileWait *file_wait_free(FileWait *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(FileWait *, file_wait_free);
