/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The host's power draw for zvm bench's energy figures: measured from the
 * RAPL energy counters (/sys/class/powercap/intel-rapl:N, the packages)
 * where they are readable, otherwise estimated from the CPU time the host
 * spent (/proc/stat, all CPUs, not idle) times a configured wattage per
 * busy CPU. Both are host-wide: on a shared host, others' work counts too.
 *
 * /proc/stat counts in ticks (USER_HZ, 10 ms): a window in which the host
 * was busy for fewer than POWER_MIN_TICKS of them gives no estimate, since
 * one tick more or less would change it by more than a tenth (a 10 ms
 * bench level counts 0, 1 or 2 ticks: "0 W" would be a wrong figure).
 */

#include <stdbool.h>
#include <stdint.h>

#define POWER_ZONES_MAX 16
#define POWER_MIN_TICKS 10

typedef enum PowerSource {
        POWER_MEASURED,                         /* RAPL */
        POWER_ESTIMATED,                        /* busy CPU-seconds x watts */
        POWER_TOO_SHORT,                        /* fewer than POWER_MIN_TICKS busy ticks, no RAPL */
} PowerSource;

typedef struct PowerSample {
        uint64_t usec;                          /* CLOCK_MONOTONIC */
        uint64_t busy_ticks;                    /* /proc/stat, USER_HZ */
        unsigned n_zones;                       /* readable RAPL packages */
        uint64_t energy_uj[POWER_ZONES_MAX];
        uint64_t range_uj[POWER_ZONES_MAX];     /* where the counter wraps */
} PowerSample;

/* Takes a sample. -errno only if /proc/stat cannot be read. */
int power_sample(PowerSample *ret);

/* Mean watts between a and b (taken in that order): RAPL when both have
 * the same zones, else CPU-seconds × cpu_watts / s; NaN when too short to
 * estimate (or b is not after a). *ret_source says which. */
double power_watts(const PowerSample *a, const PowerSample *b, double cpu_watts, PowerSource *ret_source);

/* The host's busy CPU-seconds between a and b. */
double power_cpu_seconds(const PowerSample *a, const PowerSample *b);

/* "measured", "estimated", "too-short". */
const char *power_source_to_string(PowerSource s);
