/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent-buf.h"

#define ARENA_CHUNK ((size_t) 64 << 10)

bool buf_reserve(Buf *b, size_t extra) {
        size_t want;
        char *p;

        if (b->failed)
                return false;
        if (extra > OUT_MAX || b->len > OUT_MAX - extra) {
                b->failed = true;
                return false;
        }
        want = b->len + extra;
        if (want <= b->cap)
                return true;
        want = want < 4096 ? 4096 : want;
        if (want < b->cap * 2 && b->cap * 2 <= OUT_MAX)
                want = b->cap * 2;
        p = realloc(b->data, want);
        if (!p) {
                b->failed = true;
                return false;
        }
        b->data = p;
        b->cap = want;
        return true;
}

void buf_put(Buf *b, const void *p, size_t n) {
        if (n == 0 || !buf_reserve(b, n))
                return;
        memcpy(b->data + b->len, p, n);
        b->len += n;
}

void buf_putc(Buf *b, char c) {
        buf_put(b, &c, 1);
}

void buf_puts(Buf *b, const char *s) {
        buf_put(b, s, strlen(s));
}

void buf_printf(Buf *b, const char *fmt, ...) {
        char tmp[256];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t) n >= sizeof(tmp)) {
                b->failed = true;
                return;
        }
        buf_put(b, tmp, (size_t) n);
}

void buf_free(Buf *b) {
        free(b->data);
        *b = (Buf) {};
}


struct ArenaChunk {
        ArenaChunk *prev;
        size_t used, size;
        max_align_t data[];
};

void *arena_alloc(Arena *a, size_t n) {
        ArenaChunk *c = a->chunk;
        void *p;

        if (n > (size_t) 1 << 30)
                return NULL;
        n = (n + 15) & ~(size_t) 15;
        if (!c || n > c->size - c->used) {
                size_t size = n > ARENA_CHUNK ? n : ARENA_CHUNK;

                c = malloc(sizeof(ArenaChunk) + size);
                if (!c)
                        return NULL;
                *c = (ArenaChunk) { .prev = a->chunk, .size = size };
                a->chunk = c;
        }
        p = (char *) c->data + c->used;
        c->used += n;
        return p;
}

void arena_free(Arena *a) {
        while (a->chunk) {
                ArenaChunk *prev = a->chunk->prev;

                free(a->chunk);
                a->chunk = prev;
        }
}

