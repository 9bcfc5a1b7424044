/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* cli/cli-sse.c: the SSE parser fed in every split, its bounds, and zvm
 * bench's statistics. */

#include <errno.h>
#include <math.h>
#include <unistd.h>

#include "cli-power.h"
#include "cli-sse.h"
#include "tap.h"

typedef struct Events {
        char got[8][64];
        unsigned n;
} Events;

static int on_event(const char *data, size_t size, void *userdata) {
        Events *e = userdata;

        if (e->n < 8)
                snprintf(e->got[e->n], sizeof(e->got[0]), "%.*s", (int) size, data);
        e->n++;
        return 0;
}

static const char stream[] =
        ": comment\r\n"
        "data: {\"a\":1}\r\n\r\n"
        "event: x\n"
        "data:{\"b\":2}\n\n"
        "data: one\n"
        "data: two\n\n"
        "data: [DONE]\n\n";

static void test_splits(void) {
        bool all = true;

        /* Every way of cutting the stream in two gives the same events. */
        for (size_t cut = 0; cut <= sizeof(stream) - 1; cut++) {
                Events e = {};
                SseParser p;

                sse_parser_init(&p, on_event, &e);
                all = all && sse_parser_feed(&p, stream, cut) == 0 &&
                      sse_parser_feed(&p, stream + cut, sizeof(stream) - 1 - cut) == 0 && e.n == 4 &&
                      strcmp(e.got[0], "{\"a\":1}") == 0 && strcmp(e.got[1], "{\"b\":2}") == 0 &&
                      strcmp(e.got[2], "one\ntwo") == 0 && strcmp(e.got[3], "[DONE]") == 0;
                sse_parser_done(&p);
        }
        ok(all, "SSE: CRLF and LF, comments, other fields, multi-line data, [DONE], at every split point");
}

static void test_byte_by_byte(void) {
        Events e = {};
        SseParser p;
        int r = 0;

        sse_parser_init(&p, on_event, &e);
        for (size_t i = 0; i < sizeof(stream) - 1 && r == 0; i++)
                r = sse_parser_feed(&p, stream + i, 1);
        ok(r == 0 && e.n == 4 && strcmp(e.got[2], "one\ntwo") == 0, "SSE: fed one byte at a time");
        sse_parser_done(&p);
}

static void test_bounds(void) {
        char *big = malloc(SSE_LINE_MAX + 16);
        Events e = {};
        SseParser p;
        int r = 0;

        memset(big, 'x', SSE_LINE_MAX + 16);
        sse_parser_init(&p, on_event, &e);
        r = sse_parser_feed(&p, "data: ", 6);
        /* No newline ever: the line must not grow past the bound. */
        for (size_t i = 0; i < 4 && r == 0; i++)
                r = sse_parser_feed(&p, big, SSE_LINE_MAX / 2);
        is_int(r, -E2BIG, "SSE: a line longer than SSE_LINE_MAX is refused, never buffered");
        sse_parser_done(&p);

        /* Many short data lines of one event: the event is bounded too. */
        e.n = 0;
        sse_parser_init(&p, on_event, &e);
        r = 0;
        memcpy(big, "data: ", 6);
        big[1024] = '\n';
        for (size_t i = 0; i < SSE_LINE_MAX / 1000 + 2 && r == 0; i++)
                r = sse_parser_feed(&p, big, 1025);
        ok(r == -E2BIG && e.n == 0, "SSE: an event of many data lines is bounded as well");
        sse_parser_done(&p);
        free(big);
}

static void test_stats(void) {
        double v[] = { 5, 1, 4, 2, 3 }, one[] = { 7 };
        unsigned l[16];

        ok(fabs(stats_percentile(v, 5, 50) - 3) < 1e-9, "p50 of 1..5 is 3");
        ok(fabs(stats_percentile(v, 5, 95) - 4.8) < 1e-9, "p95 of 1..5 is 4.8 (linear between ranks)");
        ok(stats_percentile(one, 1, 95) == 7 && stats_percentile(NULL, 0, 50) == 0, "p95 of one value, of none");
        /* Seed 004: 100 W at 1000 tok/s = 0.1 J/token; 1000 tokens/query = 100 J = 0.02778 Wh. */
        ok(fabs(stats_wh_per_query(100, 1000, 800, 200) - 100.0 / 3600) < 1e-12, "Wh/query = W / tok/s x (isl + osl) / 3600");
        ok(stats_wh_per_query(100, 0, 8, 8) == 0, "no throughput, no figure");
        is_int(stats_parse_uint_list("1,2,4", l, 16, 1024), 3, "1,2,4 parses");
        ok(l[0] == 1 && l[1] == 2 && l[2] == 4, "in order");
        is_int(stats_parse_uint_list("1,,2", l, 16, 1024), -EINVAL, "empty item refused");
        is_int(stats_parse_uint_list("0", l, 16, 1024), -EINVAL, "0 refused");
        is_int(stats_parse_uint_list("2000", l, 16, 1024), -EINVAL, "above the limit refused");
        is_int(stats_parse_uint_list("1,2,3", l, 2, 1024), -EINVAL, "more than max refused");
        is_int(stats_parse_uint_list("-1", l, 16, 1024), -EINVAL, "signs refused");
}

/* The bench's watts: RAPL where both samples have it; else busy ticks x
 * watts, but only from POWER_MIN_TICKS ticks up (no "0 W" for a level of
 * a few milliseconds, as CI once printed). */
static void test_power(void) {
        PowerSample a = { .usec = 1000000, .busy_ticks = 500 }, b = { .usec = 2000000, .busy_ticks = 500 };
        double hz = (double) sysconf(_SC_CLK_TCK);
        PowerSource s;

        ok(isnan(power_watts(&a, &b, 15, &s)) && s == POWER_TOO_SHORT, "no busy tick in 1 s: too short, no figure");
        b.busy_ticks = 500 + POWER_MIN_TICKS - 1;
        ok(isnan(power_watts(&a, &b, 15, &s)) && s == POWER_TOO_SHORT, "POWER_MIN_TICKS - 1 ticks: too short");
        b.busy_ticks = 500 + 2 * (unsigned) hz;
        ok(fabs(power_watts(&a, &b, 15, &s) - 30) < 1e-9 && s == POWER_ESTIMATED, "2 CPU-s in 1 s x 15 W = 30 W");
        ok(fabs(power_cpu_seconds(&a, &b) - 2) < 1e-9 && power_cpu_seconds(&b, &a) == 0, "busy CPU-seconds");
        is_str(power_source_to_string(s), "estimated", "its name");
        b.usec = a.usec;
        ok(isnan(power_watts(&a, &b, 15, &s)), "no time passed: no figure");
        a.n_zones = b.n_zones = 2;
        a.energy_uj[0] = 1000000, b.energy_uj[0] = 41000000;    /* 40 J */
        a.energy_uj[1] = 9000000, b.energy_uj[1] = 1000000, a.range_uj[1] = 10000000;   /* wrapped: 2 J */
        b.usec = 3000000;
        ok(fabs(power_watts(&a, &b, 15, &s) - 21) < 1e-9 && s == POWER_MEASURED, "RAPL: 42 J in 2 s = 21 W, a wrap counted");
        b.n_zones = 1;
        ok(!isnan(power_watts(&a, &b, 15, &s)) && s == POWER_ESTIMATED, "zones differ: the estimate");
}

int main(void) {
        test_splits();
        test_byte_by_byte();
        test_bounds();
        test_stats();
        test_power();
        return done_testing();
}
