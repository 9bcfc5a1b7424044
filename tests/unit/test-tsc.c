/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdint.h>

#include "tap.h"
#include "tsc.h"

int main(void) {
        uint64_t a = 0, b = 0;
        int r;

        r = tsc_khz_measure(&a);
        if (r == -EOPNOTSUPP) {
                /* Not x86_64 or no invariant TSC: the caller must then not
                 * pass tsc_early_khz=, and nothing else is promised. */
                plan(1);
                ok(a == 0, "no invariant TSC: ret_khz untouched");
                return done_testing();
        }
        plan(4);
        is_int(r, 0, "measure succeeds on an invariant-TSC host");
        ok(a >= 100000 && a <= 10000000, "frequency %llu kHz is between 100 MHz and 10 GHz",
           (unsigned long long) a);
        is_int(tsc_khz_measure(&b), 0, "second measurement succeeds");
        /* Two medians of five windows agree to well under 1%. */
        ok((a > b ? a - b : b - a) * 200 < a, "two measurements agree within 0.5%% (%llu vs %llu)",
           (unsigned long long) a, (unsigned long long) b);
        return done_testing();
}
