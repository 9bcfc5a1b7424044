/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <limits.h>

#include "time-util.h"

uint64_t now_usec(clockid_t clock) {
        struct timespec ts = {};

        /* Fails only for a clock id the kernel does not know: a bug. */
        (void) clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000ULL;
}

uint64_t now_msec(clockid_t clock) {
        return now_usec(clock) / USEC_PER_MSEC;
}

int msec_until(uint64_t deadline_msec) {
        uint64_t n = now_msec(CLOCK_MONOTONIC);

        if (n >= deadline_msec)
                return 0;
        return deadline_msec - n > INT_MAX ? INT_MAX : (int) (deadline_msec - n);
}

void sleep_msec(unsigned ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}
