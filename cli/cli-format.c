/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Scalars as zvm prints them (cli-format.h). */

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli-format.h"
#include "cli-text.h"
#include "macro.h"
#include "string-util.h"

char *cli_format_duration(char *buf, size_t l, double seconds) {
        uint64_t s;

        if (isnan(seconds) || seconds < 0) {
                (void) snprintf(buf, l, "-");
                return buf;
        }
        s = seconds >= (double) UINT64_MAX ? UINT64_MAX : (uint64_t) seconds;

        if (s < 60)
                (void) snprintf(buf, l, "%" PRIu64 "s", s);
        else if (s < 3600)
                (void) snprintf(buf, l, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
        else if (s < 86400)
                (void) snprintf(buf, l, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s % 3600 / 60);
        else
                (void) snprintf(buf, l, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, s % 86400 / 3600);
        return buf;
}

char *cli_format_cpu(char *buf, size_t l, double seconds) {
        if (!isnan(seconds) && seconds >= 0 && seconds < 60) {
                (void) snprintf(buf, l, "%.2fs", seconds);
                return buf;
        }
        return cli_format_duration(buf, l, seconds);
}

char *cli_format_bytes(char *buf, size_t l, uint64_t bytes) {
        static const char units[] = "BKMGTPE";
        uint64_t unit = 1;
        size_t i = 0;

        while (i + 1 < sizeof(units) - 1 && bytes / 1024 >= unit) {
                unit *= 1024;
                i++;
        }

        if (bytes % unit == 0)
                (void) snprintf(buf, l, "%" PRIu64 "%c", bytes / unit, units[i]);
        else {
                double v = (double) bytes / (double) unit;

                (void) snprintf(buf, l, v < 10 ? "%.1f%c" : "%.0f%c", v, units[i]);
        }
        return buf;
}

char *cli_format_mib(char *buf, size_t l, uint64_t mib) {
        if (mib > UINT64_MAX >> 20) {
                (void) snprintf(buf, l, "%" PRIu64 "M", mib);
                return buf;
        }
        return cli_format_bytes(buf, l, mib << 20);
}

char *cli_format_timestamp(char *buf, size_t l, int64_t t) {
        time_t tt = (time_t) t;
        struct tm tm;

        if (!gmtime_r(&tt, &tm) || strftime(buf, l, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                (void) snprintf(buf, l, "%" PRIi64, t);
        return buf;
}

char *cli_json_to_value_string(json_object *v) {
        char *s;

        switch (json_object_get_type(v)) {
        case json_type_null:
                return strdup("");
        case json_type_string:
                return strdup(json_object_get_string(v));
        case json_type_boolean:
                return strdup(json_object_get_boolean(v) ? "1" : "0");
        case json_type_int:
                if (asprintf(&s, "%" PRIi64, json_object_get_int64(v)) < 0)
                        return NULL;
                return s;
        case json_type_double: {
                char buf[64];

                return strdup(cli_format_decimal(buf, sizeof(buf), json_object_get_double(v)));
        }
        default:
                return strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE));
        }
}
