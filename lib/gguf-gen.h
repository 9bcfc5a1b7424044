/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Random-weight GGUF models with the exact shapes of real ones (architecture
 * "llama", a byte-fallback SPM vocabulary, Q8_0 or Q4_0 weights written
 * directly, F32 norms). Throughput depends on shape and quantisation, not on
 * the values, so these stand in for real models in tests and benchmarks.
 * Written as a stream (a few MiB of memory whatever the size) and
 * deterministic: the same shape, quantisation and seed give the same bytes.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct GgufShape {
        char name[160];         /* "tiny", "qwen2.5-0.5b", "custom:vocab=…" (canonical) */
        uint32_t n_vocab;
        uint32_t n_embd;
        uint32_t n_layer;
        uint32_t n_head;
        uint32_t n_head_kv;
        uint32_t n_ff;
        uint32_t n_ctx;
        bool tied;              /* no output.weight: the head reuses token_embd */
        float rope_freq_base;
        float rms_eps;
} GgufShape;

typedef enum GgufQuant {
        GGUF_QUANT_Q8_0,
        GGUF_QUANT_Q4_0,
        _GGUF_QUANT_MAX,
        _GGUF_QUANT_INVALID = -EINVAL,
} GgufQuant;

/* "q8_0"/"Q8_0" → GGUF_QUANT_Q8_0, …; -EINVAL otherwise. */
GgufQuant gguf_quant_from_string(const char *s);
const char *gguf_quant_to_string(GgufQuant q);

/* A named shape (tiny, qwen2.5-0.5b, qwen2.5-1.5b, llama3.2-1b) or
 * "custom:vocab=…,embd=…,layers=…,heads=…,kv_heads=…,ffn=…[,ctx=…][,tied=0|1]".
 * -EINVAL with a malloc'd reason in *ret_error when it is neither or the
 * numbers cannot make a model llama.cpp loads. */
int gguf_shape_parse(const char *s, GgufShape *ret, char **ret_error);

/* The names of the built-in shapes, NULL-terminated. */
extern const char *const gguf_shape_names[];

/* Called after each chunk written; a negative return aborts generation
 * with that error (the caller's way to honour a signal). */
typedef int (*GgufProgressFn)(uint64_t done, uint64_t total, void *userdata);

/* The exact size in bytes of the file gguf_generate_fd() would write. */
int gguf_generate_size(const GgufShape *shape, GgufQuant quant, uint64_t *ret);

/* Writes the model to fd from its current position (write() only: a pipe
 * works). Returns 0, or -errno of the failed write / the progress callback. */
int gguf_generate_fd(int fd, const GgufShape *shape, GgufQuant quant, uint64_t seed,
                     GgufProgressFn progress, void *userdata);
