/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Shared by the libFuzzer harnesses (fuzz-<target>.c). Each harness defines
 * LLVMFuzzerTestOneInput(); it is linked either with libFuzzer (-Dfuzz=true,
 * clang) or with replay-main.c, which runs it once over every corpus file
 * (the normal build's "fuzz" suite).
 *
 * A harness checks properties, not just "does not crash": a broken property
 * calls fuzz_fail(), which aborts, and libFuzzer saves the input.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

_noreturn_ static inline void fuzz_fail(const char *file, int line, const char *what) {
        fprintf(stderr, "%s:%d: property violated: %s\n", file, line, what);
        abort();
}

/* A property of the code under test (not an assert: kept with NDEBUG). */
#define FUZZ_CHECK(expr)                                                \
        do {                                                            \
                if (!(expr))                                            \
                        fuzz_fail(__FILE__, __LINE__, #expr);           \
        } while (0)

/* A NUL-terminated copy of the input; NULL when it holds a NUL byte (a C
 * string API cannot receive one) or on OOM. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size) {
        if (memchr(data, 0, size))
                return NULL;
        return strndup((const char *) data, size);
}

static inline bool fuzz_in_set(int x, const int *set, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (set[i] == x)
                        return true;
        return false;
}

/* Whether x is one of the listed values (typically the -errno codes a
 * function documents). */
#define IN_SET(x, ...)                                                  \
        fuzz_in_set((x), (const int[]) { __VA_ARGS__ },                 \
                    sizeof((const int[]) { __VA_ARGS__ }) / sizeof(int))
