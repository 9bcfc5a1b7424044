/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <limits.h>

#include "time-util.h"
#include "tap.h"

int main(void) {
        uint64_t a = now_msec(CLOCK_MONOTONIC), b, u = now_usec(CLOCK_MONOTONIC);

        ok(u / 1000 >= a && u / 1000 - a < 1000, "now_usec and now_msec agree");
        sleep_msec(50);
        b = now_msec(CLOCK_MONOTONIC);
        ok(b >= a + 50 && b < a + 5000, "sleep_msec(50) sleeps at least 50 ms (%llu)", (unsigned long long) (b - a));
        ok(now_msec(CLOCK_BOOTTIME) >= now_msec(CLOCK_MONOTONIC), "BOOTTIME is not behind MONOTONIC");
        is_int(msec_until(0), 0, "msec_until a past deadline is 0");
        is_int(msec_until(b), 0, "msec_until now is 0");
        ok(msec_until(now_msec(CLOCK_MONOTONIC) + 10000) > 9000, "msec_until 10 s ahead");
        is_int(msec_until(UINT64_MAX), INT_MAX, "msec_until far ahead is clamped to INT_MAX");
        return done_testing();
}
