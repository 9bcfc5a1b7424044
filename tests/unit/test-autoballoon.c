/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>

#include "autoballoon.h"
#include "macro.h"
#include "tap.h"

static void test_settings(void) {
        AutoballoonSettings s;

        is_int(autoballoon_settings_parse("80,70", &s), 0, "80,70 parses");
        is_int(s.high_pct, 80, "high 80");
        is_int(s.low_pct, 70, "low 70");
        is_int(autoballoon_settings_parse("off", &s), 0, "off parses");
        is_int(s.high_pct, 0, "off: high 0");
        for (const char *const *bad = (const char *const[]) { "", "80", "70,80", "80,80", "100,50", "80,0", "-5,1",
                                                              "80,70x", "80 ,70", " 80,70", "on", NULL };
             *bad; bad++)
                is_int(autoballoon_settings_parse(*bad, &s), -EINVAL, "'%s' is refused", *bad);
}

static void test_meminfo(void) {
        unsigned pct = 0;

        is_int(autoballoon_meminfo_used("MemTotal:       1000 kB\nMemFree:  10 kB\nMemAvailable:    250 kB\n", &pct), 0,
               "meminfo parses");
        is_int(pct, 75, "75%% used");
        is_int(autoballoon_meminfo_used("MemTotal: 1000 kB\n", &pct), -EBADMSG, "no MemAvailable");
        is_int(autoballoon_meminfo_used("MemTotal: 0 kB\nMemAvailable: 0 kB\n", &pct), -EBADMSG, "total 0");
        is_int(autoballoon_meminfo_used("MemTotal: 10 kB\nMemAvailable: 20 kB\n", &pct), -EBADMSG, "avail > total");
        is_int(autoballoon_meminfo_used("XMemTotal: 10 kB\nMemAvailable: 5 kB\n", &pct), -EBADMSG,
               "a key must match whole");
}

static void test_mode(void) {
        AutoballoonSettings s = { 80, 70 }, off = {};

        is_int(autoballoon_mode(&s, 80), AUTOBALLOON_SHRINK, "80%% of 80,70 shrinks");
        is_int(autoballoon_mode(&s, 79), AUTOBALLOON_HOLD, "79%% holds");
        is_int(autoballoon_mode(&s, 70), AUTOBALLOON_HOLD, "70%% holds");
        is_int(autoballoon_mode(&s, 69), AUTOBALLOON_GROW, "69%% grows");
        is_int(autoballoon_mode(&off, 99), AUTOBALLOON_HOLD, "off always holds");
}

static void test_targets(void) {
        uint64_t t = 1024;
        unsigned steps = 0;

        /* floor 256, memory 1024: steps of 192 MiB. */
        while (t != 256 && steps < 10)
                t = autoballoon_next_target(AUTOBALLOON_SHRINK, 256, 1024, t), steps++;
        is_int(t, 256, "shrinking ends at the floor");
        is_int(steps, 4, "in 4 steps");
        is_int(autoballoon_next_target(AUTOBALLOON_SHRINK, 256, 1024, 256), 256, "never below the floor");
        for (steps = 0; t != 1024 && steps < 10; steps++)
                t = autoballoon_next_target(AUTOBALLOON_GROW, 256, 1024, t);
        is_int(t, 1024, "growing ends at the memory");
        is_int(steps, 4, "in 4 steps");
        is_int(autoballoon_next_target(AUTOBALLOON_HOLD, 256, 1024, 600), 600, "hold keeps the target");
        is_int(autoballoon_next_target(AUTOBALLOON_SHRINK, 128, 128, 128), 128, "no range: nothing moves");
        is_int(autoballoon_next_target(AUTOBALLOON_SHRINK, 120, 128, 128), 120, "a small range: the minimum step");
        is_int(autoballoon_next_target(AUTOBALLOON_SHRINK, 300, 1024, 200), 300, "a target under a raised floor rises to it");
}

int main(void) {
        test_settings();
        test_meminfo();
        test_mode();
        test_targets();
        return done_testing();
}
