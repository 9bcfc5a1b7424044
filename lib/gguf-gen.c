/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * Writes random-weight llama-architecture GGUF files (see gguf-gen.h).
 *
 * What llama.cpp needs from such a file, as measured with Debian's
 * llama.cpp 0.7.0: the llama hyperparameter keys, an SPM vocabulary
 * (<unk>, <s>, </s>, the 256 <0xXX> byte tokens, some "▁x" pieces, then
 * <pad_N> up to n_vocab, with scores and types), and tensors named and
 * shaped as its llama loader expects. Weights are uniform random quants
 * under a small fixed scale, so activations stay finite through any depth
 * (every block starts with an RMS norm).
 *
 * The writer runs twice over the metadata: once counting (key count and
 * header size, needed before the first byte), once writing.
 */

#include <stdarg.h>
#include <stdio.h>

#include "fd-util.h"
#include "gguf-gen.h"
#include "gguf.h"
#include "macro.h"
#include "string-util.h"

#define WRITE_BUF (1024u * 1024)
#define ALIGNMENT GGUF_ALIGNMENT_DEFAULT
#define N_SPECIAL 3u
#define N_BYTE_TOKENS 256u
#define SPM_SPACE "\xe2\x96\x81"     /* U+2581, SentencePiece's word boundary */
#define WEIGHT_MAX 0.05f              /* largest |weight| */

enum { TOKEN_NORMAL = 1, TOKEN_UNKNOWN = 2, TOKEN_CONTROL = 3, TOKEN_UNUSED = 5, TOKEN_BYTE = 6 };
enum { KV_UINT32 = 4, KV_INT32 = 5, KV_FLOAT32 = 6, KV_BOOL = 7, KV_STRING = 8, KV_ARRAY = 9, KV_UINT64 = 10 };

const char *const gguf_shape_names[] = { "tiny", "qwen2.5-0.5b", "qwen2.5-1.5b", "llama3.2-1b", NULL };

/* Real models' shapes: Qwen2.5 and Llama 3.2 tie the output head to the
 * token embedding. tiny has its own head so the tests cover output.weight. */
static const GgufShape builtin_shapes[] = {
        { "tiny",         512,    64,   2,  4,  2, 128,  2048,   false, 10000.0f,   1e-5f },
        { "qwen2.5-0.5b", 151936, 896,  24, 14, 2, 4864, 32768,  true,  1000000.0f, 1e-6f },
        { "qwen2.5-1.5b", 151936, 1536, 28, 12, 2, 8960, 32768,  true,  1000000.0f, 1e-6f },
        { "llama3.2-1b",  128256, 2048, 16, 32, 8, 8192, 131072, true,  500000.0f,  1e-5f },
};

GgufQuant gguf_quant_from_string(const char *s) {
        if (s && strcasecmp(s, "q8_0") == 0)
                return GGUF_QUANT_Q8_0;
        if (s && strcasecmp(s, "q4_0") == 0)
                return GGUF_QUANT_Q4_0;
        return -EINVAL;
}

const char *gguf_quant_to_string(GgufQuant q) {
        return q == GGUF_QUANT_Q8_0 ? "Q8_0" : q == GGUF_QUANT_Q4_0 ? "Q4_0" : NULL;
}

static int shape_error(char **ret_error, const char *fmt, ...) _printf_(2, 3);
static int shape_error(char **ret_error, const char *fmt, ...) {
        va_list ap;
        if (ret_error) {
                va_start(ap, fmt);
                if (vasprintf(ret_error, fmt, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
        }
        return -EINVAL;
}

/* What llama.cpp's CPU backend needs: rows that are whole quant blocks,
 * whole heads, grouped-query heads that divide evenly, an even RoPE dim. */
static int shape_check(const GgufShape *s, char **ret_error) {
        uint32_t min_vocab = N_SPECIAL + N_BYTE_TOKENS + 1;

        if (s->n_vocab < min_vocab || s->n_vocab > (1u << 22))
                return shape_error(ret_error, "vocab must be %u..%u", min_vocab, 1u << 22);
        if (s->n_embd < 32 || s->n_embd > 65536 || s->n_embd % 32 != 0)
                return shape_error(ret_error, "embd must be a multiple of 32 in 32..65536");
        if (s->n_ff < 32 || s->n_ff > (1u << 20) || s->n_ff % 32 != 0)
                return shape_error(ret_error, "ffn must be a multiple of 32 in 32..1048576");
        if (s->n_layer < 1 || s->n_layer > 1024)
                return shape_error(ret_error, "layers must be 1..1024");
        if (s->n_head < 1 || s->n_embd % s->n_head != 0 || (s->n_embd / s->n_head) % 2 != 0)
                return shape_error(ret_error, "heads must divide embd into heads of an even size");
        if (s->n_head_kv < 1 || s->n_head % s->n_head_kv != 0 || (s->n_embd / s->n_head * s->n_head_kv) % 32 != 0)
                return shape_error(ret_error, "kv_heads must divide heads and give a K/V width that is a multiple of 32");
        if (s->n_ctx < 16 || s->n_ctx > (1u << 24))
                return shape_error(ret_error, "ctx must be 16..16777216");
        return 0;
}

static int parse_custom(const char *spec, GgufShape *s, char **ret_error) {
        static const struct { const char *key; size_t off; bool required; } fields[] = {
                { "vocab", offsetof(GgufShape, n_vocab), true },
                { "embd", offsetof(GgufShape, n_embd), true },
                { "layers", offsetof(GgufShape, n_layer), true },
                { "heads", offsetof(GgufShape, n_head), true },
                { "kv_heads", offsetof(GgufShape, n_head_kv), true },
                { "ffn", offsetof(GgufShape, n_ff), true },
                { "ctx", offsetof(GgufShape, n_ctx), false },
        };
        _cleanup_strv_free_ char **items = NULL;
        unsigned seen = 0;
        uint32_t tied = 1;
        int r;

        *s = (GgufShape) { .n_ctx = 4096, .rope_freq_base = 10000.0f, .rms_eps = 1e-5f };
        r = strv_split(spec, ",", &items);
        if (r < 0)
                return r;
        STRV_FOREACH(it, items) {
                const char *eq = strchr(*it, '=');
                size_t i;
                uint32_t v;

                if (!eq || safe_atou32(eq + 1, &v) < 0)
                        return shape_error(ret_error, "custom shape: '%s' is not key=number", *it);
                if (strneq(*it, "tied", (size_t) (eq - *it)) && eq - *it == 4 && v <= 1) {
                        tied = v;
                        continue;
                }
                for (i = 0; i < ELEMENTSOF(fields); i++)
                        if (strlen(fields[i].key) == (size_t) (eq - *it) && strneq(*it, fields[i].key, (size_t) (eq - *it)))
                                break;
                if (i == ELEMENTSOF(fields) || seen & (1u << i))
                        return shape_error(ret_error, "custom shape: unknown or repeated key in '%s'", *it);
                seen |= 1u << i;
                *(uint32_t *) ((char *) s + fields[i].off) = v;
        }
        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                if (fields[i].required && !(seen & (1u << i)))
                        return shape_error(ret_error, "custom shape: '%s=' is missing", fields[i].key);
        s->tied = tied;
        (void) snprintf(s->name, sizeof(s->name), "custom:vocab=%u,embd=%u,layers=%u,heads=%u,kv_heads=%u,ffn=%u,ctx=%u,tied=%u",
                        s->n_vocab, s->n_embd, s->n_layer, s->n_head, s->n_head_kv, s->n_ff, s->n_ctx, tied);
        return shape_check(s, ret_error);
}

int gguf_shape_parse(const char *spec, GgufShape *ret, char **ret_error) {
        GgufShape s;
        int r;

        assert_return(spec && ret, -EINVAL);
        for (size_t i = 0; i < ELEMENTSOF(builtin_shapes); i++)
                if (streq(spec, builtin_shapes[i].name)) {
                        *ret = builtin_shapes[i];
                        return 0;
                }
        if (!startswith(spec, "custom:"))
                return shape_error(ret_error, "unknown shape '%s' (tiny, qwen2.5-0.5b, qwen2.5-1.5b, llama3.2-1b, "
                                   "custom:vocab=…,embd=…,layers=…,heads=…,kv_heads=…,ffn=…[,ctx=…][,tied=0|1])", spec);
        r = parse_custom(spec + strlen("custom:"), &s, ret_error);
        if (r < 0)
                return r;
        *ret = s;
        return 0;
}

/* ---- tensors ---------------------------------------------------------- */

typedef struct Tensor {
        char name[GGUF_NAME_MAX + 1];
        uint32_t type;
        uint32_t n_dims;
        uint64_t ne[GGUF_DIMS_MAX];
        uint64_t size;
        uint64_t offset;       /* relative to the data section */
} Tensor;

static void tensor_set(Tensor *t, uint32_t type, uint64_t ne0, uint64_t ne1, const char *fmt, ...) _printf_(5, 6);
static void tensor_set(Tensor *t, uint32_t type, uint64_t ne0, uint64_t ne1, const char *fmt, ...) {
        va_list ap;
        *t = (Tensor) { .type = type, .n_dims = ne1 > 1 ? 2 : 1, .ne = { ne0, ne1, 1, 1 } };
        va_start(ap, fmt);
        (void) vsnprintf(t->name, sizeof(t->name), fmt, ap);
        va_end(ap);
}

/* The tensor directory, in file order, with sizes and offsets. */
static int tensors_plan(const GgufShape *s, GgufQuant quant, Tensor **ret, size_t *ret_n, uint64_t *ret_data_size) {
        uint32_t q = quant == GGUF_QUANT_Q8_0 ? GGML_TYPE_Q8_0 : GGML_TYPE_Q4_0;
        uint64_t head_dim = s->n_embd / s->n_head, kv = head_dim * s->n_head_kv, off = 0;
        size_t n = 0, max = 3 + 9 * (size_t) s->n_layer;
        _cleanup_free_ Tensor *t = calloc(max, sizeof(Tensor));

        if (!t)
                return -ENOMEM;
        tensor_set(&t[n++], q, s->n_embd, s->n_vocab, "token_embd.weight");
        for (uint32_t l = 0; l < s->n_layer; l++) {
                tensor_set(&t[n++], GGML_TYPE_F32, s->n_embd, 1, "blk.%u.attn_norm.weight", l);
                tensor_set(&t[n++], q, s->n_embd, s->n_embd, "blk.%u.attn_q.weight", l);
                tensor_set(&t[n++], q, s->n_embd, kv, "blk.%u.attn_k.weight", l);
                tensor_set(&t[n++], q, s->n_embd, kv, "blk.%u.attn_v.weight", l);
                tensor_set(&t[n++], q, s->n_embd, s->n_embd, "blk.%u.attn_output.weight", l);
                tensor_set(&t[n++], GGML_TYPE_F32, s->n_embd, 1, "blk.%u.ffn_norm.weight", l);
                tensor_set(&t[n++], q, s->n_embd, s->n_ff, "blk.%u.ffn_gate.weight", l);
                tensor_set(&t[n++], q, s->n_ff, s->n_embd, "blk.%u.ffn_down.weight", l);
                tensor_set(&t[n++], q, s->n_embd, s->n_ff, "blk.%u.ffn_up.weight", l);
        }
        tensor_set(&t[n++], GGML_TYPE_F32, s->n_embd, 1, "output_norm.weight");
        if (!s->tied)
                tensor_set(&t[n++], q, s->n_embd, s->n_vocab, "output.weight");

        for (size_t i = 0; i < n; i++) {
                int r = gguf_tensor_size(t[i].type, t[i].ne, &t[i].size);
                if (r < 0)
                        return r;
                t[i].offset = off;
                off += (t[i].size + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
        }
        *ret = TAKE_PTR(t);
        *ret_n = n;
        *ret_data_size = off;
        return 0;
}

/* ---- buffered writer (or byte/key counter) ----------------------------- */

typedef struct Writer {
        int fd;
        bool counting;          /* count bytes and keys, write nothing */
        uint8_t *buf;
        size_t len;
        uint64_t written;       /* bytes written or counted */
        uint64_t n_kv;
        uint64_t total;         /* the whole file, for progress */
        GgufProgressFn progress;
        void *userdata;
} Writer;

static int w_flush(Writer *w) {
        int r;
        if (w->counting || w->len == 0)
                return 0;
        r = loop_write(w->fd, w->buf, w->len, false);
        if (r < 0)
                return r;
        w->len = 0;
        return w->progress ? MIN(w->progress(w->written, w->total, w->userdata), 0) : 0;
}

static int w_bytes(Writer *w, const void *p, size_t n) {
        const uint8_t *b = p;
        w->written += n;
        if (w->counting)
                return 0;
        while (n > 0) {
                size_t chunk = MIN(n, WRITE_BUF - w->len);
                memcpy(w->buf + w->len, b, chunk);
                w->len += chunk;
                b += chunk;
                n -= chunk;
                if (w->len == WRITE_BUF) {
                        int r = w_flush(w);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int w_le(Writer *w, uint64_t v, unsigned n) {
        uint8_t b[8];
        for (unsigned i = 0; i < n; i++)
                b[i] = (uint8_t) (v >> (8 * i));
        return w_bytes(w, b, n);
}

static uint32_t f32_bits(float f) {
        uint32_t u;
        memcpy(&u, &f, sizeof(u));
        return u;
}

/* float → IEEE half, round to nearest; for the positive normal scales used here. */
static uint16_t f32_to_f16(float f) {
        uint32_t x = f32_bits(f), sign = (x >> 16) & 0x8000, mant = x & 0x7fffff;
        int32_t e = (int32_t) ((x >> 23) & 0xff) - 127 + 15;
        if (e <= 0)
                return (uint16_t) sign;
        if (e >= 31)
                return (uint16_t) (sign | 0x7c00);
        return (uint16_t) (sign | (((uint32_t) e << 10 | mant >> 13) + ((mant >> 12) & 1)));
}

static int w_str(Writer *w, const char *s) {
        size_t n = strlen(s);
        int r = w_le(w, n, 8);
        return r < 0 ? r : w_bytes(w, s, n);
}

static int w_key(Writer *w, const char *key, uint32_t type) {
        int r = w_str(w, key);
        w->n_kv++;
        return r < 0 ? r : w_le(w, type, 4);
}

static int kv_u32(Writer *w, const char *key, uint32_t v) {
        int r = w_key(w, key, KV_UINT32);
        return r < 0 ? r : w_le(w, v, 4);
}

static int kv_u64(Writer *w, const char *key, uint64_t v) {
        int r = w_key(w, key, KV_UINT64);
        return r < 0 ? r : w_le(w, v, 8);
}

static int kv_f32(Writer *w, const char *key, float v) {
        int r = w_key(w, key, KV_FLOAT32);
        return r < 0 ? r : w_le(w, f32_bits(v), 4);
}

static int kv_bool(Writer *w, const char *key, bool v) {
        int r = w_key(w, key, KV_BOOL);
        return r < 0 ? r : w_le(w, v, 1);
}

static int kv_str(Writer *w, const char *key, const char *v) {
        int r = w_key(w, key, KV_STRING);
        return r < 0 ? r : w_str(w, v);
}

static int kv_array(Writer *w, const char *key, uint32_t type, uint64_t n) {
        int r = w_key(w, key, KV_ARRAY);
        if (r >= 0)
                r = w_le(w, type, 4);
        return r < 0 ? r : w_le(w, n, 8);
}

/* ---- vocabulary --------------------------------------------------------- */

/* The "▁x" style pieces after the byte tokens: the word boundary, every
 * printable ASCII character, and the boundary + each letter and digit. */
static unsigned n_pieces(const GgufShape *s) {
        return MIN(1u + 94u + 62u, s->n_vocab - N_SPECIAL - N_BYTE_TOKENS);
}

static void token_text(const GgufShape *s, uint32_t i, char buf[static 32], float *ret_score, int32_t *ret_type) {
        static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        static const char *const special[N_SPECIAL] = { "<unk>", "<s>", "</s>" };
        uint32_t p;

        *ret_score = 0.0f;
        if (i < N_SPECIAL) {
                strcpy(buf, special[i]);
                *ret_type = i == 0 ? TOKEN_UNKNOWN : TOKEN_CONTROL;
                return;
        }
        if (i < N_SPECIAL + N_BYTE_TOKENS) {
                (void) snprintf(buf, 32, "<0x%02X>", i - N_SPECIAL);
                *ret_type = TOKEN_BYTE;
                return;
        }
        p = i - N_SPECIAL - N_BYTE_TOKENS;
        if (p >= n_pieces(s)) {
                (void) snprintf(buf, 32, "<pad_%u>", i);
                *ret_type = TOKEN_UNUSED;
                *ret_score = -1e6f;
                return;
        }
        *ret_type = TOKEN_NORMAL;
        *ret_score = -(float) p;
        if (p == 0)
                strcpy(buf, SPM_SPACE);
        else if (p <= 94)
                (void) snprintf(buf, 32, "%c", (char) ('!' + p - 1));
        else
                (void) snprintf(buf, 32, SPM_SPACE "%c", alnum[p - 95]);
}

static int write_vocab(Writer *w, const GgufShape *s) {
        char buf[32];
        float score;
        int32_t type;
        int r;

        r = kv_str(w, "tokenizer.ggml.model", "llama");
        if (r >= 0)
                r = kv_array(w, "tokenizer.ggml.tokens", KV_STRING, s->n_vocab);
        for (uint32_t i = 0; r >= 0 && i < s->n_vocab; i++) {
                token_text(s, i, buf, &score, &type);
                r = w_str(w, buf);
        }
        if (r >= 0)
                r = kv_array(w, "tokenizer.ggml.scores", KV_FLOAT32, s->n_vocab);
        for (uint32_t i = 0; r >= 0 && i < s->n_vocab; i++) {
                token_text(s, i, buf, &score, &type);
                r = w_le(w, f32_bits(score), 4);
        }
        if (r >= 0)
                r = kv_array(w, "tokenizer.ggml.token_type", KV_INT32, s->n_vocab);
        for (uint32_t i = 0; r >= 0 && i < s->n_vocab; i++) {
                token_text(s, i, buf, &score, &type);
                r = w_le(w, (uint32_t) type, 4);
        }
        if (r >= 0)
                r = kv_u32(w, "tokenizer.ggml.unknown_token_id", 0);
        if (r >= 0)
                r = kv_u32(w, "tokenizer.ggml.bos_token_id", 1);
        if (r >= 0)
                r = kv_u32(w, "tokenizer.ggml.eos_token_id", 2);
        if (r >= 0)
                r = kv_bool(w, "tokenizer.ggml.add_bos_token", true);
        if (r >= 0)
                r = kv_bool(w, "tokenizer.ggml.add_eos_token", false);
        return r;
}

static int write_metadata(Writer *w, const GgufShape *s, GgufQuant quant, uint64_t seed) {
        char name[192];
        int r;

        (void) snprintf(name, sizeof(name), "zvm random %s %s", s->name, gguf_quant_to_string(quant));
        r = kv_str(w, "general.architecture", "llama");
        if (r >= 0) r = kv_str(w, "general.name", name);
        if (r >= 0) r = kv_u32(w, "general.file_type",
                               quant == GGUF_QUANT_Q8_0 ? GGUF_FILE_TYPE_MOSTLY_Q8_0 : GGUF_FILE_TYPE_MOSTLY_Q4_0);
        if (r >= 0) r = kv_u32(w, "general.quantization_version", 2);
        if (r >= 0) r = kv_u32(w, "general.alignment", ALIGNMENT);
        if (r >= 0) r = kv_u32(w, "llama.vocab_size", s->n_vocab);
        if (r >= 0) r = kv_u32(w, "llama.context_length", s->n_ctx);
        if (r >= 0) r = kv_u32(w, "llama.embedding_length", s->n_embd);
        if (r >= 0) r = kv_u32(w, "llama.block_count", s->n_layer);
        if (r >= 0) r = kv_u32(w, "llama.feed_forward_length", s->n_ff);
        if (r >= 0) r = kv_u32(w, "llama.attention.head_count", s->n_head);
        if (r >= 0) r = kv_u32(w, "llama.attention.head_count_kv", s->n_head_kv);
        if (r >= 0) r = kv_f32(w, "llama.attention.layer_norm_rms_epsilon", s->rms_eps);
        if (r >= 0) r = kv_u32(w, "llama.rope.dimension_count", s->n_embd / s->n_head);
        if (r >= 0) r = kv_f32(w, "llama.rope.freq_base", s->rope_freq_base);
        if (r >= 0) r = kv_bool(w, GGUF_KEY_ZVM_GENERATED, true);
        if (r >= 0) r = kv_str(w, GGUF_KEY_ZVM_SHAPE, s->name);
        if (r >= 0) r = kv_u64(w, GGUF_KEY_ZVM_SEED, seed);
        if (r >= 0) r = write_vocab(w, s);
        return r;
}

static int write_header(Writer *w, const GgufShape *s, GgufQuant quant, uint64_t seed,
                        const Tensor *t, size_t n_tensors, uint64_t n_kv) {
        int r = w_bytes(w, "GGUF", 4);
        if (r >= 0) r = w_le(w, 3, 4);
        if (r >= 0) r = w_le(w, n_tensors, 8);
        if (r >= 0) r = w_le(w, n_kv, 8);
        if (r >= 0) r = write_metadata(w, s, quant, seed);
        for (size_t i = 0; r >= 0 && i < n_tensors; i++) {
                r = w_str(w, t[i].name);
                if (r >= 0) r = w_le(w, t[i].n_dims, 4);
                for (unsigned d = 0; r >= 0 && d < t[i].n_dims; d++)
                        r = w_le(w, t[i].ne[d], 8);
                if (r >= 0) r = w_le(w, t[i].type, 4);
                if (r >= 0) r = w_le(w, t[i].offset, 8);
        }
        return r;
}

/* ---- weights ------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *state) {
        uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

static int write_pad(Writer *w) {
        static const uint8_t zero[ALIGNMENT];
        return w_bytes(w, zero, (ALIGNMENT - w->written % ALIGNMENT) % ALIGNMENT);
}

/* One tensor's data: F32 ones for norms; Q8_0 (f16 scale + 32 int8 in
 * -127..127) or Q4_0 (f16 scale + 16 bytes of nibbles) blocks of random
 * quants. Each tensor has its own random stream, from the seed and index. */
static int write_tensor_data(Writer *w, const Tensor *t, size_t index, uint64_t seed) {
        uint64_t state = seed ^ (0x5851f42d4c957f2dull * (index + 1)), n_blocks;
        uint8_t block[34];
        uint16_t d;
        int r = 0;

        if (t->type == GGML_TYPE_F32) {
                for (uint64_t i = 0; r >= 0 && i < t->ne[0] * t->ne[1]; i++)
                        r = w_le(w, f32_bits(1.0f), 4);
                return r;
        }
        n_blocks = t->ne[0] * t->ne[1] / 32;
        d = f32_to_f16(t->type == GGML_TYPE_Q8_0 ? WEIGHT_MAX / 127.0f : WEIGHT_MAX / 8.0f);
        block[0] = (uint8_t) d;
        block[1] = (uint8_t) (d >> 8);
        for (uint64_t b = 0; r >= 0 && b < n_blocks; b++) {
                size_t nq = t->type == GGML_TYPE_Q8_0 ? 32 : 16;
                for (size_t i = 0; i < nq; i += 8) {
                        uint64_t x = splitmix64(&state);
                        memcpy(block + 2 + i, &x, 8);
                }
                if (t->type == GGML_TYPE_Q8_0)
                        for (size_t i = 2; i < 34; i++)
                                if (block[i] == 0x80)   /* -128 is outside what ggml's quantizer makes */
                                        block[i] = 0x81;
                r = w_bytes(w, block, 2 + nq);
        }
        return r;
}

int gguf_generate_size(const GgufShape *shape, GgufQuant quant, uint64_t *ret) {
        _cleanup_free_ Tensor *t = NULL;
        Writer w = { .counting = true };
        uint64_t data_size;
        size_t n;
        int r;

        assert_return(shape && ret && quant >= 0 && quant < _GGUF_QUANT_MAX, -EINVAL);
        r = tensors_plan(shape, quant, &t, &n, &data_size);
        if (r < 0)
                return r;
        r = write_header(&w, shape, quant, 0, t, n, 0);
        if (r < 0)
                return r;
        *ret = (w.written + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT + data_size;
        return 0;
}

int gguf_generate_fd(int fd, const GgufShape *shape, GgufQuant quant, uint64_t seed,
                     GgufProgressFn progress, void *userdata) {
        _cleanup_free_ Tensor *t = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        Writer count = { .counting = true }, w;
        uint64_t data_size;
        size_t n;
        int r;

        assert_return(fd >= 0 && shape && quant >= 0 && quant < _GGUF_QUANT_MAX, -EINVAL);
        r = shape_check(shape, NULL);
        if (r < 0)
                return r;
        r = tensors_plan(shape, quant, &t, &n, &data_size);
        if (r < 0)
                return r;
        r = write_header(&count, shape, quant, seed, t, n, 0);
        if (r < 0)
                return r;
        buf = malloc(WRITE_BUF);
        if (!buf)
                return -ENOMEM;
        w = (Writer) { .fd = fd, .buf = buf, .progress = progress, .userdata = userdata,
                       .total = (count.written + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT + data_size };

        r = write_header(&w, shape, quant, seed, t, n, count.n_kv);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                r = write_pad(&w);
                if (r >= 0)
                        r = write_tensor_data(&w, &t[i], i, seed);
        }
        if (r >= 0)
                r = write_pad(&w);
        if (r >= 0)
                r = w_flush(&w);
        return r;
}
