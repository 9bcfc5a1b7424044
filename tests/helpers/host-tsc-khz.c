/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Host-side test helper: prints the host TSC frequency in kHz, for test
 * scripts that build TCG command lines (see lib/tsc.c for why). Prints
 * nothing and exits 1 if the host has no invariant TSC. */
#include <stdint.h>
#include <stdio.h>

#include "tsc.h"

int main(void) {
        uint64_t khz;

        if (tsc_khz_measure(&khz) < 0)
                return 1;
        printf("%llu\n", (unsigned long long) khz);
        return 0;
}
