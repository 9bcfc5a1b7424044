/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * fsync() (and the removal of a deleted VM's files) off the event loop. When the disk is busy (a template build, a
 * model import, another tenant's I/O) one fsync() can take 150 ms and more,
 * and a config write needs two (the file, then its directory): measured
 * under a writer loop, a PATCH kept the loop 170 ms and a create 240 ms.
 *
 * zvmd still writes and renames on the loop (readers see the old or the new
 * file at once, and a zvmd killed right after still leaves the new one, as
 * the page cache outlives it); the fsyncs that make the change survive a
 * host crash run on one worker thread, in the order they were handed over.
 * Each handover gets a ticket; done() is called on the loop with the
 * highest ticket whose fsync (and every earlier one) has finished. The REST
 * layer holds a reply that confirms a change until the tickets handed out
 * before it are done, so "acknowledged" still means "on disk".
 *
 * Bounded: at most SYNC_WORKER_QUEUE_MAX handovers wait; past that, the
 * caller fsyncs inline (slow, but nothing is lost or unbounded).
 */
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include <json-c/json.h>

#define SYNC_WORKER_QUEUE_MAX 1024U

typedef struct SyncWorker SyncWorker;
typedef void (*sync_done_fn)(uint64_t done_ticket, void *userdata);

int sync_worker_new(sd_event *e, SyncWorker **ret);
/* Waits for every handover to finish (so that what was acknowledged is on
 * disk when zvmd exits), then frees. NULL is fine. */
SyncWorker *sync_worker_free(SyncWorker *w);
void sync_worker_set_done(SyncWorker *w, sync_done_fn fn, void *userdata);     /* w NULL: nothing */

/* Takes fd and dir_fd (either may be -1): fsync(fd), then fsync(dir_fd),
 * then both are closed. Returns the ticket (> 0), or -EAGAIN when the queue
 * is full, -ENOMEM: the fds stay the caller's. */
int64_t sync_worker_add(SyncWorker *w, int fd, int dir_fd);
/* Takes dir_fd: rm_rf_at(dir_fd, name) (a VM's files, renamed aside
 * first so that the name is free again at once), then fsync(dir_fd).
 * Returns the ticket, or -EAGAIN / -ENOMEM: dir_fd stays the caller's. */
int64_t sync_worker_remove(SyncWorker *w, int dir_fd, const char *name);
/* The last ticket handed out if any is still unfinished, else 0. */
uint64_t sync_worker_pending(SyncWorker *w);

/* GET /host's "sync_*": handovers, failures, those not yet done, the slowest
 * handover; for w NULL (zvmd under ZVM_FSYNC_INLINE=1) "sync_inline". */
int sync_worker_to_json(SyncWorker *w, json_object *o);

/* For lib/fileio's hook (fileio_set_sync_hook()): userdata is the worker. */
int sync_worker_hook(int fd, int dir_fd, void *userdata);
