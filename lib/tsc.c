/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Why zvm needs the host's TSC frequency: under TCG a guest's TSC ticks at
 * the host's TSC rate, and the guest kernel calibrates it against the
 * emulated PIT. When the host is busy, the emulated vCPU runs too few loop
 * iterations inside the PIT window, calibration fails, the kernel marks the
 * TSC unusable and boot hangs (seen on 4 of 6 boots with both host cores
 * loaded). Passing tsc_early_khz= skips that calibration.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tsc.h"

#if defined(__x86_64__)
#include <x86intrin.h>

static bool cpu_has_invariant_tsc(void) {
        char line[4096];
        bool constant = false, nonstop = false;
        FILE *f = fopen("/proc/cpuinfo", "re");

        if (!f)
                return false;
        while (fgets(line, sizeof(line), f)) {
                if (strncmp(line, "flags", 5) != 0)
                        continue;
                constant = strstr(line, " constant_tsc") != NULL;
                nonstop = strstr(line, " nonstop_tsc") != NULL;
                break;
        }
        fclose(f);
        return constant && nonstop;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

int tsc_khz_measure(uint64_t *ret_khz) {
        uint64_t samples[5];

        if (!cpu_has_invariant_tsc())
                return -EOPNOTSUPP;

        /* Five 10 ms windows against CLOCK_MONOTONIC_RAW; the median shrugs
         * off a window in which we were preempted between the two reads. */
        for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
                struct timespec t0, t1, nap = { .tv_nsec = 10 * 1000 * 1000 };
                uint64_t c0, c1, ns;

                clock_gettime(CLOCK_MONOTONIC_RAW, &t0);
                c0 = __rdtsc();
                (void) nanosleep(&nap, NULL);
                clock_gettime(CLOCK_MONOTONIC_RAW, &t1);
                c1 = __rdtsc();
                ns = (uint64_t) (t1.tv_sec - t0.tv_sec) * 1000000000ULL + (uint64_t) t1.tv_nsec -
                     (uint64_t) t0.tv_nsec;
                if (ns == 0 || c1 <= c0)
                        return -EIO;
                samples[i] = (c1 - c0) * 1000000ULL / ns;
        }
        qsort(samples, sizeof(samples) / sizeof(samples[0]), sizeof(samples[0]), cmp_u64);
        *ret_khz = samples[2];
        return 0;
}
#else
int tsc_khz_measure(uint64_t *ret_khz) {
        return -EOPNOTSUPP;
}
#endif
