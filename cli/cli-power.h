/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The host's power draw for zvm bench's energy figures: measured from the
 * RAPL energy counters (/sys/class/powercap/intel-rapl:N, the packages)
 * where they are readable, otherwise estimated from the CPU time the host
 * spent (/proc/stat, all CPUs, not idle) times a configured wattage per
 * busy CPU. Both are host-wide: on a shared host, others' work counts too.
 */

#include <stdbool.h>
#include <stdint.h>

#define POWER_ZONES_MAX 16

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
 * the same zones (*ret_measured = true), else CPU-seconds × cpu_watts / s. */
double power_watts(const PowerSample *a, const PowerSample *b, double cpu_watts, bool *ret_measured);
