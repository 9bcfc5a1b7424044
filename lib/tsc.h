/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/* Measures the host's TSC frequency in kHz (x86_64 with an invariant TSC
 * only). Returns 0, -EOPNOTSUPP when the TSC is not invariant or this is not
 * x86_64, or -errno. */
int tsc_khz_measure(uint64_t *ret_khz);
