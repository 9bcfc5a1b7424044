/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Minimal TAP producer: plan(), ok(), is_int(), is_str(), skip(), diag(),
 * done_testing(). End main() with "return done_testing();": the exit status
 * is non-zero if a test failed or the plan was not met. Newlines in test
 * names and diagnostics are escaped so that they cannot break the stream. */

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned tap_count, tap_failed;
static long tap_planned = -1;

/* Prints fmt; in_diag: newlines continue the "# " comment, else become "\n". */
static inline void tap_vprint(bool in_diag, const char *fmt, va_list ap) {
        char *s = NULL;
        if (vasprintf(&s, fmt, ap) < 0)
                abort();
        for (const char *p = s; *p; p++)
                if (*p == '\n')
                        fputs(in_diag ? "\n# " : "\\n", stdout);
                else
                        putchar(*p);
        putchar('\n');
        free(s);
}

static inline void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void diag(const char *fmt, ...) {
        va_list ap;
        fputs("# ", stdout);
        va_start(ap, fmt);
        tap_vprint(true, fmt, ap);
        va_end(ap);
        fflush(stdout);
}

static inline bool tap_ok(bool c, const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static inline bool tap_ok(bool c, const char *file, int line, const char *fmt, ...) {
        va_list ap;
        printf("%sok %u - ", c ? "" : "not ", ++tap_count);
        va_start(ap, fmt);
        tap_vprint(false, fmt, ap);
        va_end(ap);
        if (!c) {
                tap_failed++;
                diag("  failed at %s:%d", file, line);
        }
        fflush(stdout);
        return c;
}

#define ok(c, ...) tap_ok(!!(c), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, exp, ...) ({ long long _tap_g = (got), _tap_e = (exp); \
        ok(_tap_g == _tap_e, __VA_ARGS__) || (diag("  got %lld, expected %lld", _tap_g, _tap_e), false); })
#define is_str(got, exp, ...) ({ const char *_tap_gs = (got), *_tap_es = (exp); \
        ok(_tap_gs && _tap_es ? strcmp(_tap_gs, _tap_es) == 0 : _tap_gs == _tap_es, __VA_ARGS__) || \
        (diag("  got '%s'\nexpected '%s'", _tap_gs ?: "(null)", _tap_es ?: "(null)"), false); })

/* Reports the next n tests as skipped ("ok N # SKIP reason"). Only for what
 * this host lacks (a device, a network family), never for a missing feature
 * of ours; the reason says what is missing. */
static inline void skip(unsigned n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void skip(unsigned n, const char *fmt, ...) {
        va_list ap;

        for (unsigned i = 0; i < n; i++) {
                printf("ok %u # SKIP ", ++tap_count);
                va_start(ap, fmt);
                tap_vprint(false, fmt, ap);
                va_end(ap);
        }
        fflush(stdout);
}

static inline void plan(unsigned n) {
        tap_planned = n;
        printf("1..%u\n", n);
}

static inline void plan_skip_all(const char *reason) {
        printf("1..0 # SKIP %s\n", reason);
        exit(EXIT_SUCCESS);
}

static inline int done_testing(void) {
        if (tap_planned < 0)
                printf("1..%u\n", tap_count);
        else if (tap_planned != (long) tap_count)
                diag("planned %ld tests but ran %u", tap_planned, tap_count);
        if (tap_failed > 0)
                diag("%u of %u tests failed", tap_failed, tap_count);
        return tap_failed > 0 || (tap_planned >= 0 && tap_planned != (long) tap_count) ? EXIT_FAILURE : EXIT_SUCCESS;
}
