/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* lib/gguf.c on generated models (round trip through lib/gguf-gen.c) and
 * on crafted bad files: each must be refused with the right reason, never
 * crash (this test also runs in the ASan/UBSan build). */

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf-gen.h"
#include "gguf.h"
#include "macro.h"
#include "tap.h"

/* ---- a byte buffer and a tiny GGUF builder for crafted files ------------ */

typedef struct Buf {
        uint8_t *p;
        size_t len;
} Buf;

static void put(Buf *b, const void *p, size_t n) {
        b->p = realloc(b->p, b->len + n);
        assert_se(b->p);
        memcpy(b->p + b->len, p, n);
        b->len += n;
}

static void put_le(Buf *b, uint64_t v, unsigned n) {
        uint8_t x[8];
        for (unsigned i = 0; i < n; i++)
                x[i] = (uint8_t) (v >> (8 * i));
        put(b, x, n);
}

static void put_str(Buf *b, const char *s) {
        put_le(b, strlen(s), 8);
        put(b, s, strlen(s));
}

static void put_kv_str(Buf *b, const char *k, const char *v) {
        put_str(b, k);
        put_le(b, 8, 4);
        put_str(b, v);
}

static void put_kv_u32(Buf *b, const char *k, uint32_t v) {
        put_str(b, k);
        put_le(b, 4, 4);
        put_le(b, v, 4);
}

typedef struct Spec {
        uint32_t version;
        uint64_t n_tensors, n_kv;       /* as claimed in the header */
        uint32_t alignment;
        const char *name2;              /* second tensor's name */
        uint32_t type2, n_dims2;
        uint64_t ne2[2], offset2;
        uint64_t data_len;              /* bytes of tensor data actually written */
} Spec;

/* A valid file by default: 2 metadata keys (3 with an alignment), tensors
 * "a" (F32 [8]) and the second (F32 [8, 2] at offset 32). */
static Spec spec_default(void) {
        return (Spec) { .version = 3, .n_tensors = 2, .n_kv = 2, .name2 = "b", .type2 = 0, .n_dims2 = 2,
                        .ne2 = { 8, 2 }, .offset2 = 32, .data_len = 32 + 64 };
}

static Buf build(const Spec *s) {
        Buf b = {};
        put(&b, "GGUF", 4);
        put_le(&b, s->version, 4);
        put_le(&b, s->n_tensors, 8);
        put_le(&b, s->n_kv + (s->alignment ? 1 : 0), 8);
        put_kv_str(&b, "general.architecture", "llama");
        put_kv_u32(&b, "llama.context_length", 4096);
        if (s->alignment)
                put_kv_u32(&b, "general.alignment", s->alignment);
        put_str(&b, "a");
        put_le(&b, 1, 4);
        put_le(&b, 8, 8);
        put_le(&b, 0, 4);
        put_le(&b, 0, 8);
        put_str(&b, s->name2);
        put_le(&b, s->n_dims2, 4);
        for (unsigned d = 0; d < s->n_dims2; d++)
                put_le(&b, d < 2 ? s->ne2[d] : 1, 8);
        put_le(&b, s->type2, 4);
        put_le(&b, s->offset2, 8);
        while (b.len % (s->alignment ?: 32))
                put_le(&b, 0, 1);
        for (uint64_t i = 0; i < s->data_len; i++)
                put_le(&b, 0x3f, 1);
        return b;
}

static int memfd_with(const void *p, size_t n) {
        int fd = memfd_create("gguf", MFD_CLOEXEC);
        assert_se(fd >= 0);
        assert_se(write(fd, p, n) == (ssize_t) n);
        return fd;
}

/* Reads the bytes; returns r and the reason (caller frees). */
static int read_buf(const void *p, size_t n, GgufInfo **ret, char **why) {
        _cleanup_close_ int fd = memfd_with(p, n);
        GgufInfo *info = NULL;
        int r;
        *why = NULL;
        r = gguf_read_fd(fd, &info, why);
        if (ret)
                *ret = info;
        else
                gguf_info_free(info);
        return r;
}

static void refused(const Buf *b, int err, const char *reason, const char *name) {
        _cleanup_free_ char *why = NULL;
        int r = read_buf(b->p, b->len, NULL, &why);
        if (!ok(r == err && why && strstr(why, reason), "%s: refused (%d) with \"%s\"", name, r, why ?: "(no reason)"))
                diag("  expected %d and a reason containing \"%s\"", err, reason);
}

static void refused_spec(const Spec *s, int err, const char *reason, const char *name) {
        Buf b = build(s);
        refused(&b, err, reason, name);
        free(b.p);
}

/* ---- crafted files ------------------------------------------------------- */

static void test_crafted(void) {
        _cleanup_free_ char *why = NULL;
        GgufInfo *info = NULL;
        Spec s = spec_default();
        Buf b = build(&s);
        int r;

        r = read_buf(b.p, b.len, &info, &why);
        ok(r == 0 && info && info->n_tensors == 2 && streq_ptr(info->architecture, "llama") &&
           info->context_length == 4096 && info->n_params == 24 && streq(info->quant, "F32"),
           "the crafted baseline file is valid (r=%d %s)", r, why ?: "");
        gguf_info_free(info);

        b.p[0] = 'X';
        refused(&b, -EBADMSG, "not a GGUF file (magic 58 47 55 46", "bad magic");
        refused(&(Buf) { b.p, 2 }, -EBADMSG, "not a GGUF file (2 bytes)", "a 2-byte file");
        refused(&(Buf) { b.p, 0 }, -EBADMSG, "not a GGUF file (0 bytes)", "an empty file");
        free(b.p);

        s = spec_default(), s.version = 7;
        refused_spec(&s, -EOPNOTSUPP, "unsupported GGUF version 7", "version 7");
        s = spec_default(), s.version = 1;
        refused_spec(&s, -EOPNOTSUPP, "unsupported GGUF version 1", "version 1");
        s = spec_default(), s.version = 0x03000000;
        refused_spec(&s, -EOPNOTSUPP, "big-endian", "a big-endian file");
        s = spec_default(), s.version = 2;
        b = build(&s);
        ok(read_buf(b.p, b.len, NULL, &why) == 0, "version 2 is read");
        free(b.p);

        s = spec_default(), s.n_tensors = 1ull << 40;
        refused_spec(&s, -E2BIG, "claims 1099511627776 tensors", "a huge tensor count");
        s = spec_default(), s.n_kv = UINT64_MAX - 1;
        refused_spec(&s, -E2BIG, "metadata entries", "a huge key count");

        s = spec_default(), s.offset2 = 64;
        refused_spec(&s, -EBADMSG, "tensor 'b' starts at data offset 64, expected 32", "a lying tensor offset");
        s = spec_default(), s.offset2 = 0;
        refused_spec(&s, -EBADMSG, "expected 32", "overlapping tensors");
        s = spec_default(), s.ne2[1] = 1000;
        refused_spec(&s, -EBADMSG, "truncated: tensor 'b' ends at byte", "a lying tensor size (past the end)");
        s = spec_default(), s.data_len = 40;
        refused_spec(&s, -EBADMSG, "past the file's end", "tensor data cut short");
        s = spec_default(), s.ne2[0] = 1ull << 62, s.ne2[1] = 1ull << 62;
        refused_spec(&s, -EBADMSG, "overflows", "dimensions whose product overflows");
        s = spec_default(), s.ne2[0] = 1ull << 63;
        refused_spec(&s, -EBADMSG, "negative dimension", "a negative dimension");
        s = spec_default(), s.type2 = 4;
        refused_spec(&s, -EOPNOTSUPP, "unsupported type 4", "a removed tensor type");
        s = spec_default(), s.type2 = 1000;
        refused_spec(&s, -EOPNOTSUPP, "unsupported type 1000", "an unknown tensor type");
        s = spec_default(), s.type2 = GGML_TYPE_Q8_0;
        refused_spec(&s, -EBADMSG, "not a multiple of the Q8_0 block size 32", "a row that is not whole blocks");
        s = spec_default(), s.n_dims2 = 5;
        refused_spec(&s, -EBADMSG, "has 5 dimensions", "5 dimensions");
        s = spec_default(), s.name2 = "a";
        refused_spec(&s, -EBADMSG, "duplicate tensor name 'a'", "a duplicate tensor name");
        s = spec_default(), s.name2 = "this-tensor-name-is-longer-than-the-sixty-three-bytes-ggml-allows";
        refused_spec(&s, -E2BIG, "bytes long", "a tensor name past 63 bytes");
        s = spec_default(), s.alignment = 3;
        refused_spec(&s, -EBADMSG, "general.alignment must be a power of two", "alignment 3");
        s = spec_default(), s.alignment = 64, s.offset2 = 64, s.data_len = 64 + 64;
        b = build(&s);
        r = read_buf(b.p, b.len, &info, &why);
        ok(r == 0 && info->alignment == 64 && info->tensors[1].offset == info->data_offset + 64 &&
           info->data_offset % 64 == 0, "general.alignment 64 moves the data and the offsets (r=%d)", r);
        gguf_info_free(info);
        free(b.p);
}

/* Metadata entries built by hand: header + one key of the given bytes. */
static void test_crafted_kv(void) {
        size_t base;
        Buf b = {};

        put(&b, "GGUF", 4), put_le(&b, 3, 4), put_le(&b, 0, 8), put_le(&b, 1, 8);
        put_le(&b, 1ull << 60, 8);      /* key length */
        refused(&b, -E2BIG, "the key of metadata entry 0 is 1152921504606846976 bytes long", "a huge key length");
        b.len -= 8;
        put_str(&b, "k");
        base = b.len;
        put_le(&b, 8, 4), put_le(&b, 1ull << 40, 8);
        refused(&b, -E2BIG, "metadata key 'k' is 1099511627776 bytes long", "a huge string length");
        b.len = base;
        put_le(&b, 9, 4), put_le(&b, 4, 4), put_le(&b, 1ull << 62, 8);
        refused(&b, -E2BIG, "an array of 4611686018427387904 elements", "a u32 array whose size overflows");
        b.len = base;
        put_le(&b, 9, 4), put_le(&b, 8, 4), put_le(&b, 1ull << 40, 8);
        refused(&b, -E2BIG, "an array of 1099511627776 strings", "a huge string array");
        b.len = base;
        put_le(&b, 9, 4), put_le(&b, 0, 4), put_le(&b, 1ull << 40, 8);
        refused(&b, -EBADMSG, "truncated", "a u8 array past the end of the file");
        b.len = base;
        put_le(&b, 9, 4), put_le(&b, 9, 4), put_le(&b, 1, 8);
        refused(&b, -EBADMSG, "an array of elements of type 9", "an array of arrays");
        b.len = base;
        put_le(&b, 42, 4);
        refused(&b, -EBADMSG, "invalid value type 42", "an unknown value type");
        b.len = base;
        put_le(&b, 7, 4), put_le(&b, 2, 1);
        refused(&b, -EBADMSG, "a bool that is 2", "a bool that is 2");
        free(b.p);
        b = (Buf) {};
        put(&b, "GGUF", 4), put_le(&b, 3, 4), put_le(&b, 0, 8), put_le(&b, 1, 8);
        put_kv_str(&b, "general.name", "a");
        b.p[b.len - 1] = 0;
        refused(&b, -EBADMSG, "metadata key 'general.name' contains a NUL byte", "a string with a NUL");
        free(b.p);

        /* Past the 64 MiB metadata bound, in a sparse file: 5 × 15 MiB strings. */
        {
                _cleanup_close_ int fd = memfd_create("big", MFD_CLOEXEC);
                _cleanup_free_ char *why = NULL;
                GgufInfo *info = NULL;
                uint64_t pos;
                Buf h = {};
                int r;

                put(&h, "GGUF", 4), put_le(&h, 3, 4), put_le(&h, 0, 8), put_le(&h, 1, 8);
                put_str(&h, "big"), put_le(&h, 9, 4), put_le(&h, 8, 4), put_le(&h, 5, 8);
                assert_se(write(fd, h.p, h.len) == (ssize_t) h.len);
                pos = h.len;
                for (int i = 0; i < 5; i++) {
                        uint8_t len[8];
                        for (int j = 0; j < 8; j++)
                                len[j] = (uint8_t) ((15ull << 20) >> (8 * j));
                        assert_se(pwrite(fd, len, 8, (off_t) pos) == 8);
                        pos += 8 + (15ull << 20);
                }
                assert_se(ftruncate(fd, (off_t) pos + 64) == 0);
                r = gguf_read_fd(fd, &info, &why);
                ok(r == -E2BIG && why && strstr(why, "metadata larger than 64 MiB"),
                   "metadata past 64 MiB is refused: %s", why ?: "(none)");
                gguf_info_free(info);
                free(h.p);
        }
}

/* ---- generated models ---------------------------------------------------- */

static int generate(const char *shape_name, GgufQuant q, uint64_t seed, Buf *ret) {
        _cleanup_close_ int fd = memfd_create("gen", MFD_CLOEXEC);
        GgufShape shape;
        struct stat st;
        int r;

        assert_se(gguf_shape_parse(shape_name, &shape, NULL) == 0);
        r = gguf_generate_fd(fd, &shape, q, seed, NULL, NULL);
        if (r < 0)
                return r;
        assert_se(fstat(fd, &st) == 0);
        ret->len = (size_t) st.st_size;
        ret->p = malloc(ret->len);
        assert_se(ret->p && pread(fd, ret->p, ret->len, 0) == (ssize_t) ret->len);
        return 0;
}

/* The llama parameter count: embeddings (+ head), per layer q,k,v,o, gate/up/down, 2 norms; final norm. */
static uint64_t expected_params(const GgufShape *s) {
        uint64_t kv = (uint64_t) s->n_embd / s->n_head * s->n_head_kv;
        uint64_t layer = 2ull * s->n_embd * s->n_embd + 2ull * s->n_embd * kv + 3ull * s->n_embd * s->n_ff + 2ull * s->n_embd;
        return (uint64_t) s->n_vocab * s->n_embd * (s->tied ? 1 : 2) + s->n_layer * layer + s->n_embd;
}

static void test_round_trip(const char *shape_name, GgufQuant q) {
        _cleanup_free_ char *why = NULL;
        GgufInfo *info = NULL;
        const GgufTensor *t;
        GgufShape shape;
        uint64_t size;
        Buf b = {};
        int r;

        assert_se(gguf_shape_parse(shape_name, &shape, NULL) == 0);
        assert_se(gguf_generate_size(&shape, q, &size) == 0);
        r = generate(shape_name, q, 42, &b);
        ok(r == 0 && b.len == size, "%s %s: generated, %zu bytes as planned (%llu)", shape_name,
           gguf_quant_to_string(q), b.len, (unsigned long long) size);
        r = read_buf(b.p, b.len, &info, &why);
        if (!ok(r == 0, "%s %s: the reader accepts it (%s)", shape_name, gguf_quant_to_string(q), why ?: "")) {
                free(b.p);
                return;
        }
        ok(streq_ptr(info->architecture, "llama") && streq(info->quant, gguf_quant_to_string(q)) &&
           streq_ptr(info->tokenizer, "llama") && info->generated && streq_ptr(info->generated_shape, shape.name) &&
           info->generated_seed == 42, "%s: architecture, quant, tokenizer and the zvm.* keys", shape_name);
        is_int(info->n_params, expected_params(&shape), "%s: parameter count", shape_name);
        ok(info->vocab_size == shape.n_vocab && info->context_length == shape.n_ctx &&
           info->embedding_length == shape.n_embd && info->block_count == shape.n_layer &&
           info->head_count == shape.n_head && info->head_count_kv == shape.n_head_kv &&
           info->feed_forward_length == shape.n_ff, "%s: hyperparameters", shape_name);
        t = gguf_info_find_tensor(info, "blk.1.ffn_down.weight");
        ok(t && t->ne[0] == shape.n_ff && t->ne[1] == shape.n_embd && t->type == (q == GGUF_QUANT_Q8_0 ? 8u : 2u),
           "%s: blk.1.ffn_down.weight is [ffn, embd] in %s", shape_name, gguf_quant_to_string(q));
        ok(!gguf_info_find_tensor(info, "output.weight") == shape.tied, "%s: output.weight present iff untied", shape_name);
        t = gguf_info_find_tensor(info, "output_norm.weight");
        ok(t && t->type == GGML_TYPE_F32 && t->offset + 4 <= b.len && memcmp(b.p + t->offset, "\0\0\x80\x3f", 4) == 0,
           "%s: norms are F32 ones", shape_name);
        gguf_info_free(info);
        free(b.p);
}

static void test_truncations(void) {
        _cleanup_free_ char *why = NULL;
        GgufInfo *info = NULL;
        unsigned bad = 0, n = 0;
        uint64_t data_offset;
        Buf b = {};

        assert_se(generate("tiny", GGUF_QUANT_Q8_0, 1, &b) == 0);
        assert_se(read_buf(b.p, b.len, &info, &why) == 0);
        data_offset = info->data_offset;
        gguf_info_free(info);

        /* Every cut inside header and metadata, and every 97th in the data. */
        for (uint64_t cut = 0; cut < b.len; cut += cut < data_offset ? 1 : 97) {
                _cleanup_free_ char *reason = NULL;
                int r = read_buf(b.p, cut, NULL, &reason);
                bool good = r == -EBADMSG && reason &&
                            (cut < 4 ? strstr(reason, "not a GGUF file") != NULL
                                     : cut < data_offset ? startswith(reason, "truncated") != NULL
                                                         : strstr(reason, "truncated: tensor '") != NULL);
                n++;
                if (!good && bad++ < 5)
                        diag("cut at %llu: r=%d %s", (unsigned long long) cut, r, reason ?: "(none)");
        }
        ok(bad == 0, "the tiny model cut at %u places (every byte up to the data at %llu): each refused as truncated",
           n, (unsigned long long) data_offset);
        free(b.p);
}

static void test_shape_refused(const char *spec, const char *reason) {
        _cleanup_free_ char *why = NULL;
        GgufShape s;
        int r = gguf_shape_parse(spec, &s, &why);
        ok(r == -EINVAL && why && strstr(why, reason), "shape %s refused: %s", spec, why ?: "(no reason)");
}

static void test_shapes(void) {
        _cleanup_free_ char *why = NULL;
        uint64_t size = 0;
        GgufShape s;
        int r;

        r = gguf_shape_parse("qwen2.5-0.5b", &s, NULL);
        assert_se(r == 0 && gguf_generate_size(&s, GGUF_QUANT_Q8_0, &size) == 0);
        is_int(expected_params(&s), 494005120, "qwen2.5-0.5b: 494,005,120 parameters");
        ok(size > 529000000 && size < 529300000, "qwen2.5-0.5b Q8_0: %llu bytes, ~529.16 MB like the real one",
           (unsigned long long) size);
        r = gguf_shape_parse("custom:vocab=1000,embd=128,layers=3,heads=4,kv_heads=2,ffn=256,ctx=512", &s, &why);
        ok(r == 0 && s.n_vocab == 1000 && s.n_layer == 3 && s.n_ctx == 512 && s.tied &&
           startswith(s.name, "custom:vocab=1000,embd=128,"), "a custom shape parses (%s)", s.name);
        test_shape_refused("custom:vocab=1000,embd=100,layers=3,heads=4,kv_heads=2,ffn=256", "embd must be a multiple of 32");
        test_shape_refused("custom:vocab=1000,embd=128,heads=4,kv_heads=2,ffn=256", "'layers=' is missing");
        test_shape_refused("custom:vocab=1000,embd=128,layers=1,heads=4,kv_heads=3,ffn=256", "kv_heads");
        test_shape_refused("custom:vocab=100,embd=128,layers=1,heads=4,kv_heads=2,ffn=256", "vocab must be");
        test_shape_refused("custom:vocab=1000,embd=128,layers=1,heads=4,kv_heads=2,ffn=256,bogus=1", "unknown or repeated");
        test_shape_refused("gpt-5", "unknown shape 'gpt-5'");
        ok(gguf_quant_from_string("Q4_0") == GGUF_QUANT_Q4_0 && gguf_quant_from_string("q5_k") == -EINVAL,
           "quant names");
}

static void test_determinism(void) {
        Buf a = {}, b = {}, c = {};
        assert_se(generate("tiny", GGUF_QUANT_Q4_0, 9, &a) == 0);
        assert_se(generate("tiny", GGUF_QUANT_Q4_0, 9, &b) == 0);
        assert_se(generate("tiny", GGUF_QUANT_Q4_0, 10, &c) == 0);
        ok(a.len == b.len && memcmp(a.p, b.p, a.len) == 0, "the same seed gives the same bytes");
        ok(a.len == c.len && memcmp(a.p, c.p, a.len) != 0, "another seed gives other weights, same size");
        free(a.p), free(b.p), free(c.p);
}

int main(void) {
        test_crafted();
        test_crafted_kv();
        test_shapes();
        test_round_trip("tiny", GGUF_QUANT_Q8_0);
        test_round_trip("tiny", GGUF_QUANT_Q4_0);
        test_round_trip("custom:vocab=300,embd=96,layers=3,heads=3,kv_heads=1,ffn=160,ctx=64,tied=1", GGUF_QUANT_Q8_0);
        test_truncations();
        test_determinism();
        return done_testing();
}
