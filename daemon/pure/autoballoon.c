/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Automatic ballooning's decisions (see autoballoon.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "autoballoon.h"
#include "macro.h"
#include "string-util.h"

int autoballoon_settings_parse(const char *s, AutoballoonSettings *ret) {
        unsigned high, low;
        int n = 0;

        assert_return(ret, -EINVAL);
        if (!s)
                return -EINVAL;
        if (streq(s, "off")) {
                *ret = (AutoballoonSettings) {};
                return 0;
        }
        if (sscanf(s, "%u,%u%n", &high, &low, &n) != 2 || s[n] != '\0' || s[0] < '0' || s[0] > '9' ||
            low < 1 || low >= high || high > 99)
                return -EINVAL;
        *ret = (AutoballoonSettings) { .high_pct = high, .low_pct = low };
        return 0;
}

static int meminfo_field(const char *text, const char *key, uint64_t *ret) {
        size_t k = strlen(key);

        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (strncmp(p, key, k) == 0 && p[k] == ':')
                        return sscanf(p + k + 1, "%" SCNu64, ret) == 1 ? 0 : -EBADMSG;
        return -EBADMSG;
}

int autoballoon_meminfo_used(const char *text, unsigned *ret_pct) {
        uint64_t total, avail;

        assert_return(text, -EINVAL);
        assert_return(ret_pct, -EINVAL);
        if (meminfo_field(text, "MemTotal", &total) < 0 || meminfo_field(text, "MemAvailable", &avail) < 0 ||
            total == 0 || avail > total)
                return -EBADMSG;
        *ret_pct = (unsigned) ((total - avail) * 100 / total);
        return 0;
}

AutoballoonMode autoballoon_mode(const AutoballoonSettings *s, unsigned used_pct) {
        if (!s || s->high_pct == 0)
                return AUTOBALLOON_HOLD;
        if (used_pct >= s->high_pct)
                return AUTOBALLOON_SHRINK;
        if (used_pct < s->low_pct)
                return AUTOBALLOON_GROW;
        return AUTOBALLOON_HOLD;
}

const char *autoballoon_mode_to_string(AutoballoonMode m) {
        switch (m) {
        case AUTOBALLOON_SHRINK:
                return "shrink";
        case AUTOBALLOON_GROW:
                return "grow";
        default:
                return "hold";
        }
}

uint64_t autoballoon_next_target(AutoballoonMode m, uint64_t floor_mib, uint64_t memory_mib, uint64_t target_mib) {
        uint64_t step;

        if (floor_mib >= memory_mib)
                return target_mib;
        step = MAX((memory_mib - floor_mib) / 4, (uint64_t) AUTOBALLOON_STEP_MIN_MIB);
        switch (m) {
        case AUTOBALLOON_SHRINK:
                return target_mib <= floor_mib + step ? floor_mib : target_mib - step;
        case AUTOBALLOON_GROW:
                return target_mib + step >= memory_mib ? memory_mib : target_mib + step;
        default:
                return target_mib;
        }
}
