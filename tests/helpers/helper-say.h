/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Console messages of the guest-side test helpers (static, musl). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define HELPER_SAY_MAX 4352

/* Prints prefix, the message and a newline in one write(), unbuffered: a
 * helper's stdout is the guest console, which tests read (and which other
 * writers share), so a line must neither wait in a buffer nor be split. */
static inline void helper_say(const char *prefix, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void helper_say(const char *prefix, const char *fmt, ...) {
        char buf[HELPER_SAY_MAX];
        size_t len = strlen(prefix);
        va_list ap;
        int n;

        if (len > sizeof(buf) - 2)
                return;
        memcpy(buf, prefix, len);
        va_start(ap, fmt);
        n = vsnprintf(buf + len, sizeof(buf) - len, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        n += (int) len;
        if ((size_t) n > sizeof(buf) - 2)
                n = (int) sizeof(buf) - 2;
        buf[n++] = '\n';
        (void) !write(STDOUT_FILENO, buf, (size_t) n);
}
