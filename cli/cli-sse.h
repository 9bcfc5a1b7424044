/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Pure helpers of zvm's inference verbs (chat, bench, run): an incremental
 * parser of server-sent events as the OpenAI-compatible API streams them,
 * and the statistics of zvm bench. No I/O, no logging; unit-tested in
 * test-cli-infer.c.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest SSE line zvm accepts: one chunk of a streamed answer is one
 * token and its metadata (~500 bytes); the final one carries usage and
 * timings. Anything longer is not a sane stream. */
#define SSE_LINE_MAX (256U * 1024U)

/* Called for the data of each complete event (the "data:" lines joined by
 * "\n", NUL-terminated; "[DONE]" too). A negative return stops the parser
 * and is returned by sse_parser_feed(). */
typedef int (*SseEventFunction)(const char *data, size_t size, void *userdata);

typedef struct SseParser {
        char *line;             /* the line being read (without its "\n") */
        size_t line_size;
        char *data;             /* the data lines of the event being read */
        size_t data_size;
        bool has_data;
        SseEventFunction on_event;
        void *userdata;
} SseParser;

void sse_parser_init(SseParser *p, SseEventFunction on_event, void *userdata);
void sse_parser_done(SseParser *p);

/* Feeds bytes as they come off the wire, in pieces of any size. Returns 0,
 * -E2BIG for a line or an event longer than SSE_LINE_MAX, -ENOMEM, or the
 * callback's error. */
int sse_parser_feed(SseParser *p, const char *buf, size_t size);

/* The q-th percentile (0..100) of n values by linear interpolation between
 * closest ranks (numpy's default); values are sorted in place. 0 for n = 0. */
double stats_percentile(double *values, size_t n, double q);

/* Energy per query as seed 004 computes it: J/token = W / total tok/s
 * (prompt and generated tokens over the wall time), Wh/query = J/token ×
 * (isl + osl) / 3600. 0 when there is no throughput. */
double stats_wh_per_query(double watts, double total_tokens_per_sec, double isl, double osl);

/* Parses "1,2,4" into up to max positive integers (each <= limit), in the
 * given order. Returns the count, or -EINVAL. */
int stats_parse_uint_list(const char *s, unsigned *ret, size_t max, unsigned limit);
