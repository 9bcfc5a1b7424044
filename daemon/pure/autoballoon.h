/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Automatic ballooning, as Proxmox's pvestatd does it: while the host's
 * memory use is at or above `high` percent, every VM with a balloon (and no
 * target set by hand) is shrunk a step toward its floor; once use falls
 * below `low`, they grow back a step at a time to their memory. Between the
 * two nothing moves, so a host near the mark does not flap. The floor
 * (config key `balloon`) is the guest's guarantee: it is never crossed, and
 * the balloon deflates on OOM in the guest (deflate-on-oom).
 * Pure: the daemon reads /proc/meminfo and sets the targets.
 */

#include <stdint.h>

typedef enum AutoballoonMode {
        AUTOBALLOON_HOLD,
        AUTOBALLOON_SHRINK,
        AUTOBALLOON_GROW,
} AutoballoonMode;

typedef struct AutoballoonSettings {
        unsigned high_pct, low_pct;     /* 0/0: off */
} AutoballoonSettings;

#define AUTOBALLOON_DEFAULT_HIGH 80U
#define AUTOBALLOON_DEFAULT_LOW 70U
/* A step is a quarter of the range between floor and memory, at least this. */
#define AUTOBALLOON_STEP_MIN_MIB 16U

/* "HIGH,LOW" (percent, 1 <= LOW < HIGH <= 99) or "off". -EINVAL otherwise. */
int autoballoon_settings_parse(const char *s, AutoballoonSettings *ret);

/* The host's memory use in percent, from the text of /proc/meminfo
 * (MemTotal and MemAvailable). -EBADMSG when they are missing. */
int autoballoon_meminfo_used(const char *text, unsigned *ret_pct);

AutoballoonMode autoballoon_mode(const AutoballoonSettings *s, unsigned used_pct);
const char *autoballoon_mode_to_string(AutoballoonMode m);

/* The next target for a VM whose balloon is at target_mib, between floor_mib
 * and memory_mib; the same target when there is nothing to do. */
uint64_t autoballoon_next_target(AutoballoonMode m, uint64_t floor_mib, uint64_t memory_mib, uint64_t target_mib);
