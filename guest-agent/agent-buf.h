/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* zvm-agent's growable output buffer and per-request arena. */

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

/* The largest answer line the agent builds; past it a Buf fails. */
#define OUT_MAX ((size_t) 64 << 20)

/* A growable byte buffer that remembers running out of memory or past
 * OUT_MAX (->failed) instead of failing every call: writers append without
 * checking, the sender checks once. Zero-initialised = empty. */
typedef struct Buf {
        char *data;
        size_t len, cap;
        bool failed;
} Buf;

/* Room for extra more bytes; false (and ->failed) if that passes OUT_MAX or
 * memory runs out. */
bool buf_reserve(Buf *b, size_t extra);
void buf_put(Buf *b, const void *p, size_t n);
void buf_putc(Buf *b, char c);
void buf_puts(Buf *b, const char *s);
/* At most 255 characters per call, more sets ->failed. */
void buf_printf(Buf *b, const char *fmt, ...) _printf_(2, 3);
void buf_free(Buf *b);

typedef struct ArenaChunk ArenaChunk;

/* Per-request memory for the parsed JSON and decoded arguments: everything
 * is freed at once by arena_free(). Zero-initialised = empty. */
typedef struct Arena {
        ArenaChunk *chunk;      /* the newest; the others hang off ->prev */
} Arena;

/* 16-byte aligned; NULL on OOM or for more than 1 GiB. */
void *arena_alloc(Arena *a, size_t n);
void arena_free(Arena *a);
