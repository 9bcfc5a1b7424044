/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Clock helpers. libc only: part of the subset that the static musl guest
 * programs build too (see README.md). */

#include <stdint.h>
#include <time.h>

#ifndef USEC_PER_SEC
#define USEC_PER_SEC 1000000ULL
#endif
#ifndef USEC_PER_MSEC
#define USEC_PER_MSEC 1000ULL
#endif

/* The time on clock (CLOCK_MONOTONIC for deadlines, CLOCK_BOOTTIME for "since
 * the kernel started"). */
uint64_t now_usec(clockid_t clock);
uint64_t now_msec(clockid_t clock);

/* Milliseconds from now until deadline_msec on CLOCK_MONOTONIC, for poll():
 * 0 once it has passed, at most INT_MAX. */
int msec_until(uint64_t deadline_msec);

/* Sleeps ms milliseconds, also across signals. Only for deliberate back-off,
 * never to wait for an event. */
void sleep_msec(unsigned ms);
