/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The timed event loop (loop.h). sd-event dispatches one event source per
 * iteration, so an iteration's time is the time one callback (plus the
 * loop's own prepare step) kept every other client waiting: that is what
 * the threat model bounds ("the event loop never blocks"), and what a slow
 * mkfs, a blocking connect or a synchronous D-Bus call shows up as.
 *
 * On a busy host a callback that needs 2 ms of CPU can take 50 ms of wall
 * time because zvmd waited for a CPU. That wait is not zvmd's doing, so an
 * iteration is charged its wall time minus the time its thread sat runnable
 * on a run queue (the kernel's schedstat "run_delay"): what remains is CPU
 * work plus blocking, the two things zvmd controls. The wall time is kept
 * as well.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json-util.h"
#include "log.h"
#include "loop.h"

/* Slow iterations are logged at most once per this interval (with a count
 * of the ones left out), so a guest that slows every iteration cannot turn
 * the log itself into the next slow thing. */
#define LOOP_LOG_INTERVAL_USEC (1000ULL * 1000ULL)
#define LOOP_UNLABELLED "unlabelled (agent, ssh, template or signal callback)"

static struct {
        /* The current iteration. */
        char note[LOOP_NOTE_MAX];
        uint64_t note_start;
        char longest[LOOP_NOTE_MAX];
        uint64_t longest_usec;
        /* Since start. */
        LoopStats stats;
        int schedstat_fd;                       /* /proc/thread-self/schedstat, -1: none */
        bool schedstat_tried;
        uint64_t last_log;
        uint64_t unlogged;
} loop;

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

/* Ends the current note's segment at now; the longest segment names the
 * iteration. */
static void note_close(uint64_t now) {
        uint64_t d = now - loop.note_start;

        if (d >= loop.longest_usec) {
                loop.longest_usec = d;
                memcpy(loop.longest, loop.note, sizeof(loop.longest));
        }
}

void loop_note(const char *fmt, ...) {
        uint64_t now = now_usec();
        va_list ap;

        note_close(now);
        va_start(ap, fmt);
        (void) vsnprintf(loop.note, sizeof(loop.note), fmt, ap);
        va_end(ap);
        loop.note_start = now;
}

static void iteration_begin(uint64_t now) {
        loop.note[0] = 0;
        loop.note_start = now;
        loop.longest[0] = 0;
        loop.longest_usec = 0;
}

/* How long this thread has waited on a run queue, in µs; 0 where the
 * kernel does not say (then wall time is all there is). */
static uint64_t run_delay_usec(void) {
        char buf[128], *p;
        ssize_t n;

        if (!loop.schedstat_tried) {
                loop.schedstat_fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
                loop.schedstat_tried = true;
        }
        if (loop.schedstat_fd < 0)
                return 0;
        n = pread(loop.schedstat_fd, buf, sizeof(buf) - 1, 0);
        if (n <= 0)
                return 0;
        buf[n] = 0;
        /* "CPU_NS RUN_DELAY_NS TIMESLICES" */
        p = strchr(buf, ' ');
        return p ? strtoull(p + 1, NULL, 10) / 1000ULL : 0;
}

static void iteration_end(uint64_t start, uint64_t now, uint64_t delay_start) {
        uint64_t wall = now - start, queued = 0, d;
        const char *what;

        note_close(now);
        /* Only a long iteration can have waited long for a CPU: skip the
         * read for the many short ones. */
        if (wall > LOOP_SLOW_USEC / 5) {
                uint64_t delay = run_delay_usec();

                if (delay >= delay_start)
                        queued = delay - delay_start;
        }
        d = wall > queued ? wall - queued : 0;
        what = loop.longest[0] ? loop.longest : LOOP_UNLABELLED;
        loop.stats.iterations++;
        if (wall > loop.stats.worst_wall_usec)
                loop.stats.worst_wall_usec = wall;
        if (d > loop.stats.worst_usec) {
                loop.stats.worst_usec = d;
                (void) snprintf(loop.stats.worst_what, sizeof(loop.stats.worst_what), "%s", what);
        }
        if (d <= LOOP_SLOW_USEC)
                return;
        loop.stats.slow++;
        if (loop.last_log > 0 && now - loop.last_log < LOOP_LOG_INTERVAL_USEC) {
                loop.unlogged++;
                return;
        }
        if (loop.unlogged > 0)
                log_warning("Event loop iteration took %" PRIu64 " ms (+%" PRIu64 " ms waiting for a CPU): %s (and %" PRIu64
                            " more slow iterations since the last such message)",
                            d / 1000, queued / 1000, what, loop.unlogged);
        else
                log_warning("Event loop iteration took %" PRIu64 " ms (+%" PRIu64 " ms waiting for a CPU): %s",
                            d / 1000, queued / 1000, what);
        loop.last_log = now_usec();
        loop.unlogged = 0;
}

int loop_run(sd_event *e) {
        int code, r;

        for (;;) {
                uint64_t start, waited, delay_start;

                r = sd_event_get_state(e);
                if (r < 0)
                        return r;
                if (r == SD_EVENT_FINISHED)
                        break;

                delay_start = run_delay_usec();
                start = now_usec();
                iteration_begin(start);
                r = sd_event_prepare(e);
                if (r == 0) {
                        /* Waiting is idle time, not the loop's cost: charge
                         * the iteration with prepare and dispatch only. */
                        uint64_t before = now_usec();

                        r = sd_event_wait(e, UINT64_MAX);
                        waited = now_usec() - before;
                        start += waited;
                        loop.note_start += waited;
                        delay_start = run_delay_usec();
                }
                if (r < 0)
                        return r;
                if (r > 0) {
                        r = sd_event_dispatch(e);
                        if (r < 0)
                                return r;
                        iteration_end(start, now_usec(), delay_start);
                }
        }
        r = sd_event_get_exit_code(e, &code);
        return r < 0 ? r : code;
}

void loop_stats_get(LoopStats *ret) {
        *ret = loop.stats;
}

void loop_stats_reset(void) {
        int fd = loop.schedstat_fd;
        bool tried = loop.schedstat_tried;

        memset(&loop, 0, sizeof(loop));
        loop.schedstat_fd = fd;
        loop.schedstat_tried = tried;
}

int loop_stats_to_json(json_object *o) {
        const LoopStats *s = &loop.stats;

        /* Tenths of a millisecond, printed as such (not as %.17g). */
        if (json_object_object_add(o, "loop_worst_ms", json_object_new_fixed((double) s->worst_usec / 1000.0, 1)) < 0 ||
            json_object_object_add(o, "loop_worst_wall_ms",
                                   json_object_new_fixed((double) s->worst_wall_usec / 1000.0, 1)) < 0 ||
            json_object_object_add(o, "loop_worst_what", json_object_new_string(s->worst_what)) < 0 ||
            json_object_object_add(o, "loop_slow_iterations", json_object_new_int64((int64_t) s->slow)) < 0 ||
            json_object_object_add(o, "loop_iterations", json_object_new_int64((int64_t) s->iterations)) < 0)
                return -ENOMEM;
        return 0;
}
