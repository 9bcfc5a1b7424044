/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli-sse.h"
#include "macro.h"
#include "string-util.h"

void sse_parser_init(SseParser *p, SseEventFunction on_event, void *userdata) {
        *p = (SseParser) {
                .on_event = on_event,
                .userdata = userdata,
        };
}

void sse_parser_done(SseParser *p) {
        p->line = mfree(p->line);
        p->data = mfree(p->data);
        p->line_size = p->data_size = 0;
        p->has_data = false;
}

static int append(char **buf, size_t *size, const char *s, size_t n) {
        char *b;

        if (n > SSE_LINE_MAX || *size > SSE_LINE_MAX - n)
                return -E2BIG;
        b = realloc(*buf, *size + n + 1);
        if (!b)
                return -ENOMEM;
        memcpy(b + *size, s, n);
        *size += n;
        b[*size] = '\0';
        *buf = b;
        return 0;
}

/* One complete line: a blank line dispatches the event, "data:" adds to it,
 * comments (":") and other fields (event, id, retry) are not used by the
 * OpenAI stream and are skipped. */
static int sse_line(SseParser *p, char *line, size_t n) {
        const char *v;
        int r;

        if (n > 0 && line[n - 1] == '\r')
                line[--n] = '\0';
        if (n == 0) {
                if (!p->has_data)
                        return 0;
                r = p->on_event(strempty(p->data), p->data_size, p->userdata);
                p->data_size = 0;
                if (p->data)
                        p->data[0] = '\0';
                p->has_data = false;
                return r < 0 ? r : 0;
        }
        v = startswith(line, "data:");
        if (!v)
                return 0;
        if (*v == ' ')
                v++;
        if (p->has_data) {
                r = append(&p->data, &p->data_size, "\n", 1);
                if (r < 0)
                        return r;
        }
        p->has_data = true;
        return append(&p->data, &p->data_size, v, n - (size_t) (v - line));
}

int sse_parser_feed(SseParser *p, const char *buf, size_t size) {
        int r;

        while (size > 0) {
                const char *nl = memchr(buf, '\n', size);
                size_t n = nl ? (size_t) (nl - buf) : size;

                r = append(&p->line, &p->line_size, buf, n);
                if (r < 0)
                        return r;
                buf += n;
                size -= n;
                if (!nl)
                        break;
                buf++;
                size--;
                r = sse_line(p, p->line, p->line_size);
                p->line_size = 0;
                if (r < 0)
                        return r;
        }
        return 0;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;

        return x < y ? -1 : x > y;
}

double stats_percentile(double *values, size_t n, double q) {
        double pos, frac;
        size_t i;

        if (n == 0)
                return 0;
        qsort(values, n, sizeof(double), cmp_double);
        q = MIN(MAX(q, 0.0), 100.0);
        pos = q / 100.0 * (double) (n - 1);
        i = (size_t) pos;       /* pos >= 0: truncation is floor() */
        frac = pos - (double) i;
        if (i + 1 >= n)
                return values[n - 1];
        return values[i] + frac * (values[i + 1] - values[i]);
}

double stats_wh_per_query(double watts, double total_tokens_per_sec, double isl, double osl) {
        if (!(total_tokens_per_sec > 0) || !(watts >= 0))
                return 0;
        return watts / total_tokens_per_sec * (isl + osl) / 3600.0;
}

int stats_parse_uint_list(const char *s, unsigned *ret, size_t max, unsigned limit) {
        size_t n = 0;

        if (!s || !*s)
                return -EINVAL;
        for (;;) {
                char *end;
                unsigned long v;

                if (*s < '0' || *s > '9' || n >= max)
                        return -EINVAL;
                errno = 0;
                v = strtoul(s, &end, 10);
                if (errno != 0 || v == 0 || v > limit)
                        return -EINVAL;
                ret[n++] = (unsigned) v;
                if (*end == '\0')
                        return (int) n;
                if (*end != ',')
                        return -EINVAL;
                s = end + 1;
        }
}
