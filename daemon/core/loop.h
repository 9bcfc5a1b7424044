/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * zvmd's event loop, timed: loop_run() is sd_event_loop() that measures how
 * long every iteration keeps the loop from serving anything else, logs the
 * ones over LOOP_SLOW_USEC with what ran, and keeps the worst since start
 * for GET /host. An iteration is charged its wall time minus the time zvmd
 * waited for a CPU (a busy host's doing, not zvmd's). What ran is named by the dispatched code itself with
 * loop_note(); an iteration is charged to its longest-running note.
 *
 * One loop per process: the notes and the statistics are process-wide.
 */
#include <json-c/json.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "macro.h"

#define LOOP_SLOW_USEC (50ULL * 1000ULL)
#define LOOP_NOTE_MAX 96

typedef struct LoopStats {
        uint64_t iterations;
        uint64_t slow;                          /* iterations over LOOP_SLOW_USEC */
        uint64_t worst_usec;                    /* wall time minus waiting for a CPU */
        uint64_t worst_wall_usec;               /* the longest wall time of any iteration */
        char worst_what[LOOP_NOTE_MAX];         /* of worst_usec; "" before the first iteration */
} LoopStats;

/* Names what the dispatched code does from here on ("HTTP GET /api/v1/vms",
 * "QMP web"). Cheap: a clock read and a copy into a fixed buffer. Longer
 * text is cut. */
void loop_note(const char *fmt, ...) _printf_(1, 2);

/* Runs e until sd_event_exit(); returns the exit code or -errno, as
 * sd_event_loop() does. */
int loop_run(sd_event *e);

void loop_stats_get(LoopStats *ret);

/* Adds "loop_worst_ms", "loop_worst_wall_ms", "loop_worst_what",
 * "loop_slow_iterations" and "loop_iterations" to o. */
int loop_stats_to_json(json_object *o);

/* For tests: forget everything measured so far. */
void loop_stats_reset(void);
