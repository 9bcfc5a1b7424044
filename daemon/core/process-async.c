/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fd-util.h"
#include "loop.h"
#include "process-async.h"
#include "process.h"
#include "string-util.h"

struct ProcessJob {
        pid_t pid;
        int pidfd;
        int out_fd;
        sd_event_source *child, *out, *timer;
        char *output;
        size_t size;
        bool timed_out;
        process_job_done_fn cb;
        void *userdata;
        ProcessJob *detached_next;      /* on the detached list */
};

/* Jobs nobody waits for any more (process_job_detach()). */
static ProcessJob *detached;

static void job_read(ProcessJob *j) {
        char sink[4096];

        for (;;) {
                size_t room = PROCESS_JOB_OUTPUT_MAX - j->size;
                ssize_t n = room > 0 ? read(j->out_fd, j->output + j->size, room)
                                     : read(j->out_fd, sink, sizeof(sink));       /* beyond the cap: drop */

                if (n > 0) {
                        if (room > 0)
                                j->size += (size_t) n;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n == 0 || errno != EAGAIN)
                        j->out = sd_event_source_disable_unref(j->out);
                return;
        }
}

static int on_job_output(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        job_read(userdata);
        return 0;
}

static int on_job_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        ProcessJob *j = userdata;
        int status;

        /* Whatever the child wrote before it exited is in the pipe now; a
         * grandchild that keeps the pipe open does not hold us up. */
        if (j->out)
                job_read(j);
        j->output[j->size] = 0;
        if (j->timed_out)
                status = -ETIMEDOUT;
        else if (si->si_code == CLD_EXITED)
                status = si->si_status;
        else
                status = 128 + si->si_status;
        j->timer = sd_event_source_disable_unref(j->timer);
        j->out = sd_event_source_disable_unref(j->out);
        j->pid = 0;             /* sd-event reaps it after this callback */
        j->cb(j, status, j->output, j->userdata);
        return 0;
}

static int on_job_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        ProcessJob *j = userdata;

        j->timed_out = true;
        if (j->pid > 0)
                (void) kill(-j->pid, SIGKILL);
        return 0;
}

ProcessJob *process_job_free(ProcessJob *j) {
        if (!j)
                return NULL;
        if (j->pid > 0) {
                /* Still running: kill the group and reap at once (SIGKILL
                 * cannot be caught, so this wait is short). */
                (void) kill(-j->pid, SIGKILL);
                j->child = sd_event_source_disable_unref(j->child);
                (void) waitpid(j->pid, NULL, 0);
        }
        sd_event_source_disable_unref(j->child);
        sd_event_source_disable_unref(j->out);
        sd_event_source_disable_unref(j->timer);
        safe_close(j->pidfd);
        safe_close(j->out_fd);
        free(j->output);
        return mfree(j);
}

int process_job_start(sd_event *e, char *const *argv, uint64_t timeout_usec, process_job_done_fn cb, void *userdata,
                      ProcessJob **ret) {
        _cleanup_(process_job_freep) ProcessJob *j = NULL;
        _cleanup_close_ int wfd = -EBADF;
        int fds[2], r;

        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->pidfd = j->out_fd = -EBADF;
        j->cb = cb;
        j->userdata = userdata;
        j->output = malloc(PROCESS_JOB_OUTPUT_MAX + 1);
        if (!j->output)
                return -ENOMEM;
        /* Non-blocking on our end only: the child's stdout stays blocking. */
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        j->out_fd = fds[0];
        wfd = fds[1];
        if (fcntl(j->out_fd, F_SETFL, O_NONBLOCK) < 0)
                return -errno;
        /* posix_spawn waits until the child has exec'd: named, so that a
         * slow exec shows up as such in the loop's timing. */
        loop_note("spawn of %s", argv[0]);
        r = process_spawn(argv, NULL, 0, wfd, true, &j->pid);
        loop_note("after the spawn of %s", argv[0]);
        if (r < 0)
                return r;
        wfd = safe_close(wfd);
        /* Our unreaped child: its pid cannot have been reused. */
        j->pidfd = (int) syscall(SYS_pidfd_open, j->pid, 0);
        if (j->pidfd < 0)
                return -errno;
        r = sd_event_add_child_pidfd(e, &j->child, j->pidfd, WEXITED, on_job_exit, j);
        if (r < 0)
                return r;
        r = sd_event_add_io(e, &j->out, j->out_fd, EPOLLIN, on_job_output, j);
        if (r < 0)
                return r;
        r = sd_event_add_time_relative(e, &j->timer, CLOCK_MONOTONIC, timeout_usec, 0, on_job_timeout, j);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(j);
        return 0;
}

static void on_detached_done(ProcessJob *j, int status, const char *output, void *userdata) {
        for (ProcessJob **p = &detached; *p; p = &(*p)->detached_next)
                if (*p == j) {
                        *p = j->detached_next;
                        break;
                }
        process_job_free(j);
}

void process_job_detach(ProcessJob *j) {
        if (!j)
                return;
        j->cb = on_detached_done;
        j->userdata = NULL;
        j->detached_next = detached;
        detached = j;
}

void process_job_detached_flush(uint64_t timeout_usec) {
        while (detached) {
                ProcessJob *j = detached;
                struct pollfd p = { .fd = j->pidfd, .events = POLLIN };

                detached = j->detached_next;
                if (j->pid > 0)
                        (void) poll(&p, 1, (int) (timeout_usec / 1000));
                process_job_free(j);
        }
}

/* ---- waiting for a file -------------------------------------------------------- */

struct FileWait {
        char *path;
        int inotify_fd, pidfd;
        sd_event_source *inotify, *pid, *timer, *defer;
        file_wait_done_fn cb;
        void *userdata;
};

FileWait *file_wait_free(FileWait *w) {
        if (!w)
                return NULL;
        sd_event_source_disable_unref(w->inotify);
        sd_event_source_disable_unref(w->pid);
        sd_event_source_disable_unref(w->timer);
        sd_event_source_disable_unref(w->defer);
        safe_close(w->inotify_fd);
        safe_close(w->pidfd);
        free(w->path);
        return mfree(w);
}

static void file_wait_finish(FileWait *w, int r) {
        w->inotify = sd_event_source_disable_unref(w->inotify);
        w->pid = sd_event_source_disable_unref(w->pid);
        w->timer = sd_event_source_disable_unref(w->timer);
        w->defer = sd_event_source_disable_unref(w->defer);
        w->cb(w, r, w->userdata);
}

static int on_file_event(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        FileWait *w = userdata;
        char buf[4096];

        while (read(w->inotify_fd, buf, sizeof(buf)) > 0)
                ;
        if (access(w->path, F_OK) == 0)
                file_wait_finish(w, 0);
        return 0;
}

static int on_file_pid(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        FileWait *w = userdata;

        /* It may have created the file just before it died. */
        file_wait_finish(w, access(w->path, F_OK) == 0 ? 0 : -ECHILD);
        return 0;
}

static int on_file_exists(sd_event_source *s, void *userdata) {
        file_wait_finish(userdata, 0);
        return 0;
}

static int on_file_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        file_wait_finish(userdata, -ETIMEDOUT);
        return 0;
}

int file_wait_start(sd_event *e, const char *dir, const char *name, int watch_pidfd, uint64_t timeout_usec,
                    file_wait_done_fn cb, void *userdata, FileWait **ret) {
        _cleanup_(file_wait_freep) FileWait *w = NULL;
        int r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->inotify_fd = w->pidfd = -EBADF;
        w->cb = cb;
        w->userdata = userdata;
        w->path = strjoin(dir, "/", name);
        if (!w->path)
                return -ENOMEM;
        w->inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (w->inotify_fd < 0)
                return -errno;
        if (inotify_add_watch(w->inotify_fd, dir, IN_CREATE | IN_MOVED_TO) < 0)
                return -errno;
        r = sd_event_add_io(e, &w->inotify, w->inotify_fd, EPOLLIN, on_file_event, w);
        if (r < 0)
                return r;
        if (watch_pidfd >= 0) {
                /* A copy: the caller may watch the same pidfd in this loop,
                 * and epoll takes each fd number once. */
                w->pidfd = fcntl(watch_pidfd, F_DUPFD_CLOEXEC, 3);
                if (w->pidfd < 0)
                        return -errno;
                r = sd_event_add_io(e, &w->pid, w->pidfd, EPOLLIN, on_file_pid, w);
                if (r < 0)
                        return r;
        }
        r = sd_event_add_time_relative(e, &w->timer, CLOCK_MONOTONIC, timeout_usec, 0, on_file_timeout, w);
        if (r < 0)
                return r;
        /* Created before the watch was in place: report from the loop, as
         * every other outcome is, never from inside this call. */
        if (access(w->path, F_OK) == 0) {
                r = sd_event_add_defer(e, &w->defer, on_file_exists, w);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(w);
        return 0;
}
