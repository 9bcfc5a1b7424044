/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "time-util.h"

uint64_t now_usec(clockid_t clock) {
        struct timespec ts = {};

        (void) clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}
