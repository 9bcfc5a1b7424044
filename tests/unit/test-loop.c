/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* daemon/loop.c: the timed event loop charges each iteration to its longest
 * note, does not count idle waiting, and reports the worst in JSON. */
#include <string.h>
#include <time.h>

#include "loop.h"
#include "macro.h"
#include "tap.h"

static void sleep_ms(long ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0)
                ;
}

static int on_slow(sd_event_source *s, uint64_t usec, void *userdata) {
        loop_note("quick %d", 1);
        loop_note("slow %d", 7);
        sleep_ms(80);
        loop_note("after the slow part");
        return 0;
}

/* Fires long after the slow timer: if waiting counted, this iteration would
 * be the worst. */
static int on_exit_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        loop_note("exit timer");
        return sd_event_exit(sd_event_source_get_event(s), 42);
}

static int on_unlabelled(sd_event_source *s, void *userdata) {
        sleep_ms(60);
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static void test_worst_and_idle(void) {
        sd_event *e = NULL;
        LoopStats st;
        json_object *o;
        json_object *v;

        loop_stats_reset();
        ok(sd_event_new(&e) >= 0, "sd_event_new");
        ok(sd_event_add_time_relative(e, NULL, CLOCK_MONOTONIC, 1000, 0, on_slow, NULL) >= 0 &&
           sd_event_add_time_relative(e, NULL, CLOCK_MONOTONIC, 400 * 1000, 0, on_exit_timer, NULL) >= 0,
           "two timers");
        is_int(loop_run(e), 42, "loop_run returns the exit code");
        loop_stats_get(&st);
        ok(st.iterations >= 2, "iterations counted (%llu)", (unsigned long long) st.iterations);
        is_int(st.slow, 1, "one slow iteration (waiting 320 ms for the exit timer is not one)");
        ok(st.worst_usec >= 80000 && st.worst_usec < 2000000, "worst ≈ the 80 ms callback (%llu µs)",
           (unsigned long long) st.worst_usec);
        is_str(st.worst_what, "slow 7", "charged to the longest note of that iteration");

        o = json_object_new_object();
        ok(loop_stats_to_json(o) >= 0, "loop_stats_to_json");
        ok(json_object_object_get_ex(o, "loop_worst_ms", &v) && json_object_get_double(v) >= 80.0 &&
           json_object_get_double(v) < 2000.0, "loop_worst_ms %s", json_object_to_json_string(o));
        ok(json_object_object_get_ex(o, "loop_worst_wall_ms", &v) && json_object_get_double(v) >= 80.0,
           "loop_worst_wall_ms: sleeping is blocking, not waiting for a CPU");
        ok(json_object_object_get_ex(o, "loop_worst_what", &v) && streq(json_object_get_string(v), "slow 7"),
           "loop_worst_what");
        ok(json_object_object_get_ex(o, "loop_slow_iterations", &v) && json_object_get_int64(v) == 1,
           "loop_slow_iterations");
        json_object_put(o);
        sd_event_unref(e);
}

static void test_unlabelled(void) {
        sd_event *e = NULL;
        LoopStats st;

        loop_stats_reset();
        ok(sd_event_new(&e) >= 0 && sd_event_add_defer(e, NULL, on_unlabelled, NULL) >= 0, "a defer source");
        is_int(loop_run(e), 0, "loop_run");
        loop_stats_get(&st);
        ok(st.worst_usec >= 60000 && strncmp(st.worst_what, "unlabelled", 10) == 0,
           "a callback without a note is reported as unlabelled (%s, %llu µs)", st.worst_what,
           (unsigned long long) st.worst_usec);
        sd_event_unref(e);
}

int main(void) {
        test_worst_and_idle();
        test_unlabelled();
        return done_testing();
}
