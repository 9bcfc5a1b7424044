/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>
#include <time.h>

/* The one clock helper: the time of clock (CLOCK_MONOTONIC, CLOCK_REALTIME,
 * ...) in microseconds. The clocks it is used with cannot fail on Linux. */
uint64_t now_usec(clockid_t clock);
