/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fsync worker (sync-worker.h): one thread, a fixed ring of handovers,
 * an eventfd that wakes the loop as fsyncs finish. The thread touches
 * nothing but the ring, the counters and the fds it was given; all logging
 * and every callback happen on the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "fd-util.h"
#include "fileio.h"
#include "json-util.h"
#include "log.h"
#include "loop.h"
#include "macro.h"
#include "sync-worker.h"

typedef struct SyncItem {
        int fd, dir_fd;
        char *remove;                           /* a name in dir_fd to rm_rf_at() first */
        uint64_t ticket;
} SyncItem;

struct SyncWorker {
        sd_event_source *wake_source;
        int wake_fd;                            /* eventfd: the thread finished something */
        sync_done_fn done_fn;
        void *done_userdata;
        pthread_t thread;
        bool thread_running;

        pthread_mutex_t lock;                   /* everything below */
        pthread_cond_t cond;
        SyncItem ring[SYNC_WORKER_QUEUE_MAX];
        size_t head, n;
        bool stopping;
        uint64_t issued, done;                  /* tickets */
        uint64_t failed, worst_usec;
        int last_error;
        char last_error_path[256];
        uint64_t failed_logged;                 /* loop side: failures already logged */
};

static uint64_t mono_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

/* rm_rf_at(), fsync(fd), then fsync(dir_fd); the first error, with the
 * file's name. */
static int sync_item(const SyncItem *it, char *path, size_t path_size) {
        int fds[2] = { it->fd, it->dir_fd };

        if (it->remove) {
                int r = rm_rf_at(it->dir_fd, it->remove);

                if (r < 0) {
                        snprintf(path, path_size, "the removal of %s", it->remove);
                        return r;
                }
        }

        for (size_t i = 0; i < ELEMENTSOF(fds); i++) {
                char proc[64];
                ssize_t l;

                if (fds[i] < 0 || fsync(fds[i]) >= 0)
                        continue;
                int r = -errno;
                snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fds[i]);
                l = readlink(proc, path, path_size - 1);
                path[l > 0 ? (size_t) l : 0] = '\0';
                return r;
        }
        return 0;
}

static void *worker_main(void *userdata) {
        SyncWorker *w = userdata;

        pthread_mutex_lock(&w->lock);
        for (;;) {
                SyncItem it;
                char path[256] = "";
                uint64_t start, took;
                int r;

                while (w->n == 0 && !w->stopping)
                        pthread_cond_wait(&w->cond, &w->lock);
                if (w->n == 0)          /* stopping, and the ring is drained */
                        break;
                it = w->ring[w->head];
                w->head = (w->head + 1) % SYNC_WORKER_QUEUE_MAX;
                w->n--;
                pthread_mutex_unlock(&w->lock);

                start = mono_usec();
                r = sync_item(&it, path, sizeof(path));
                took = mono_usec() - start;
                safe_close(it.fd);
                safe_close(it.dir_fd);
                free(it.remove);

                pthread_mutex_lock(&w->lock);
                w->done = it.ticket;
                w->worst_usec = MAX(w->worst_usec, took);
                if (r < 0) {
                        w->failed++;
                        w->last_error = r;
                        memcpy(w->last_error_path, path, sizeof(path));
                }
                (void) eventfd_write(w->wake_fd, 1);
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

static int on_wake(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        SyncWorker *w = userdata;
        eventfd_t v;
        uint64_t done, failed;
        int error;
        char path[256];

        (void) eventfd_read(fd, &v);
        loop_note("fsync worker: done");
        pthread_mutex_lock(&w->lock);
        done = w->done;
        failed = w->failed;
        error = w->last_error;
        memcpy(path, w->last_error_path, sizeof(path));
        pthread_mutex_unlock(&w->lock);

        /* A failed fsync may have lost the change (the kernel drops the
         * dirty pages): loud, as a disk error deserves. */
        if (failed > w->failed_logged) {
                log_error_errno(error, "Cannot make %s durable (%" PRIu64 " fsync failure(s) so far): %m",
                                path[0] ? path : "a file", failed);
                w->failed_logged = failed;
        }
        if (w->done_fn)
                w->done_fn(done, w->done_userdata);
        return 0;
}

int sync_worker_new(sd_event *e, SyncWorker **ret) {
        SyncWorker *w;
        int r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->wake_fd < 0) {
                free(w);
                return -errno;
        }
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->cond, NULL);
        r = sd_event_add_io(e, &w->wake_source, w->wake_fd, EPOLLIN, on_wake, w);
        if (r >= 0)
                (void) sd_event_source_set_description(w->wake_source, "fsync-worker");
        if (r >= 0) {
                r = -pthread_create(&w->thread, NULL, worker_main, w);
                w->thread_running = r >= 0;
        }
        if (r < 0) {
                sync_worker_free(w);
                return r;
        }
        *ret = w;
        return 0;
}

SyncWorker *sync_worker_free(SyncWorker *w) {
        if (!w)
                return NULL;
        if (w->thread_running) {
                pthread_mutex_lock(&w->lock);
                w->stopping = true;
                pthread_cond_signal(&w->cond);
                pthread_mutex_unlock(&w->lock);
                (void) pthread_join(w->thread, NULL);
        }
        w->wake_source = sd_event_source_disable_unref(w->wake_source);
        safe_close(w->wake_fd);
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        return mfree(w);
}

void sync_worker_set_done(SyncWorker *w, sync_done_fn fn, void *userdata) {
        if (!w)
                return;
        w->done_fn = fn;
        w->done_userdata = userdata;
}

static int64_t sync_worker_queue(SyncWorker *w, int fd, int dir_fd, char *remove) {
        uint64_t ticket;

        pthread_mutex_lock(&w->lock);
        if (w->n >= SYNC_WORKER_QUEUE_MAX || w->stopping) {
                pthread_mutex_unlock(&w->lock);
                return -EAGAIN;
        }
        ticket = ++w->issued;
        w->ring[(w->head + w->n) % SYNC_WORKER_QUEUE_MAX] = (SyncItem) { fd, dir_fd, remove, ticket };
        w->n++;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
        return (int64_t) ticket;
}

int64_t sync_worker_add(SyncWorker *w, int fd, int dir_fd) {
        return sync_worker_queue(w, fd, dir_fd, NULL);
}

int64_t sync_worker_remove(SyncWorker *w, int dir_fd, const char *name) {
        char *copy = strdup(name);
        int64_t t;

        if (!copy)
                return -ENOMEM;
        t = sync_worker_queue(w, -EBADF, dir_fd, copy);
        if (t < 0)
                free(copy);
        return t;
}

uint64_t sync_worker_pending(SyncWorker *w) {
        uint64_t r;

        pthread_mutex_lock(&w->lock);
        r = w->done < w->issued ? w->issued : 0;
        pthread_mutex_unlock(&w->lock);
        return r;
}

int sync_worker_hook(int fd, int dir_fd, void *userdata) {
        int64_t t = sync_worker_add(userdata, fd, dir_fd);

        return t < 0 ? (int) t : 0;
}

int sync_worker_to_json(SyncWorker *w, json_object *o) {
        uint64_t issued, failed, worst, n;

        if (!w)         /* ZVM_FSYNC_INLINE=1 */
                return json_object_object_add(o, "sync_inline", json_object_new_boolean(true)) < 0 ? -ENOMEM : 0;
        pthread_mutex_lock(&w->lock);
        issued = w->issued;
        failed = w->failed;
        worst = w->worst_usec;
        n = w->issued - w->done;        /* waiting or running: not yet done */
        pthread_mutex_unlock(&w->lock);
        if (json_object_object_add(o, "sync_handovers", json_object_new_uint64(issued)) < 0 ||
            json_object_object_add(o, "sync_failures", json_object_new_uint64(failed)) < 0 ||
            json_object_object_add(o, "sync_queued", json_object_new_uint64(n)) < 0 ||
            json_object_object_add(o, "sync_worst_ms",
                                   json_object_new_fixed((double) worst / 1000.0, 1)) < 0)
                return -ENOMEM;
        return 0;
}
