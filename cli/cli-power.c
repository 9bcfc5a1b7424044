/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "cli-power.h"
#include "macro.h"
#include "time-util.h"

#define RAPL_DIR "/sys/class/powercap"

static int read_u64(const char *path, uint64_t *ret) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");

        if (!f)
                return -errno;
        if (fscanf(f, "%" SCNu64, ret) != 1)
                return -EBADMSG;
        return 0;
}

/* The package zones intel-rapl:0, :1, ...; their subzones (intel-rapl:0:0,
 * core and uncore) are inside the package's count, so they are skipped. */
static void rapl_sample(PowerSample *s) {
        for (unsigned i = 0; i < POWER_ZONES_MAX; i++) {
                char path[128];

                (void) snprintf(path, sizeof(path), RAPL_DIR "/intel-rapl:%u/energy_uj", i);
                if (read_u64(path, &s->energy_uj[s->n_zones]) < 0)
                        break;
                (void) snprintf(path, sizeof(path), RAPL_DIR "/intel-rapl:%u/max_energy_range_uj", i);
                if (read_u64(path, &s->range_uj[s->n_zones]) < 0)
                        s->range_uj[s->n_zones] = 0;
                s->n_zones++;
        }
}

int power_sample(PowerSample *ret) {
        _cleanup_fclose_ FILE *f = fopen("/proc/stat", "re");
        uint64_t v[8] = {};
        PowerSample s = {};

        if (!f)
                return -errno;
        /* cpu user nice system idle iowait irq softirq steal */
        if (fscanf(f, "cpu %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
                   " %" SCNu64, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) != 8)
                return -EBADMSG;
        s.busy_ticks = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
        s.usec = now_usec(CLOCK_MONOTONIC);
        rapl_sample(&s);
        *ret = s;
        return 0;
}

static double clock_ticks_per_sec(void) {
        long hz = sysconf(_SC_CLK_TCK);

        return hz > 0 ? (double) hz : 100;
}

double power_cpu_seconds(const PowerSample *a, const PowerSample *b) {
        return b->busy_ticks > a->busy_ticks ? (double) (b->busy_ticks - a->busy_ticks) / clock_ticks_per_sec() : 0;
}

double power_watts(const PowerSample *a, const PowerSample *b, double cpu_watts, PowerSource *ret_source) {
        double secs = (double) (b->usec - a->usec) / 1e6, joules = 0;

        if (a->n_zones > 0 && a->n_zones == b->n_zones) {
                *ret_source = POWER_MEASURED;
                if (!(secs > 0))
                        return NAN;
                for (unsigned i = 0; i < a->n_zones; i++) {
                        uint64_t d = b->energy_uj[i] >= a->energy_uj[i] ? b->energy_uj[i] - a->energy_uj[i] :
                                     b->energy_uj[i] + a->range_uj[i] - a->energy_uj[i];       /* wrapped */

                        joules += (double) d / 1e6;
                }
                return joules / secs;
        }
        if (!(secs > 0) || b->busy_ticks < a->busy_ticks || b->busy_ticks - a->busy_ticks < POWER_MIN_TICKS) {
                *ret_source = POWER_TOO_SHORT;
                return NAN;
        }
        *ret_source = POWER_ESTIMATED;
        return power_cpu_seconds(a, b) * cpu_watts / secs;
}

const char *power_source_to_string(PowerSource s) {
        switch (s) {
        case POWER_MEASURED:
                return "measured";
        case POWER_ESTIMATED:
                return "estimated";
        default:
                return "too-short";
        }
}
