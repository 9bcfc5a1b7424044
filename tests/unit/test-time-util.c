/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <time.h>

#include "tap.h"
#include "time-util.h"

int main(void) {
        uint64_t a = now_usec(CLOCK_MONOTONIC), b;
        struct timespec ts = { .tv_nsec = 20 * 1000 * 1000 };
        uint64_t wall = now_usec(CLOCK_REALTIME), t = (uint64_t) time(NULL);

        nanosleep(&ts, NULL);
        b = now_usec(CLOCK_MONOTONIC);
        ok(a > 0 && b >= a + 20000 && b < a + 10 * 1000000ULL, "CLOCK_MONOTONIC advances by the 20 ms slept (%llu µs)",
           (unsigned long long) (b - a));
        ok(wall / 1000000ULL + 2 >= t && wall / 1000000ULL <= t + 2, "CLOCK_REALTIME in µs matches time()");
        return done_testing();
}
