/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * A GGUF reader for untrusted files. Layout (little-endian):
 *
 *   "GGUF" u32:version u64:n_tensors u64:n_kv
 *   n_kv × { string:key u32:type value }
 *   n_tensors × { string:name u32:n_dims u64:ne[n_dims] u32:type u64:offset }
 *   padding to general.alignment, then the tensor data
 *
 * with string = u64 length + bytes and array = u32 element type + u64 count +
 * elements. Every number read from the file is checked before it sizes an
 * allocation, a loop or a seek; every sum and product is overflow-checked.
 * Like ggml, tensors must follow each other in order (each at the previous
 * one's aligned end), which also rules out overlapping or lying offsets.
 */

#include <errno.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "gguf.h"
#include "macro.h"

#define READ_BUF 65536u

enum {
        GGUF_TYPE_UINT8 = 0,
        GGUF_TYPE_INT8 = 1,
        GGUF_TYPE_UINT16 = 2,
        GGUF_TYPE_INT16 = 3,
        GGUF_TYPE_UINT32 = 4,
        GGUF_TYPE_INT32 = 5,
        GGUF_TYPE_FLOAT32 = 6,
        GGUF_TYPE_BOOL = 7,
        GGUF_TYPE_STRING = 8,
        GGUF_TYPE_ARRAY = 9,
        GGUF_TYPE_UINT64 = 10,
        GGUF_TYPE_INT64 = 11,
        GGUF_TYPE_FLOAT64 = 12,
        GGUF_TYPE_MAX,
};

static const uint8_t value_type_size[GGUF_TYPE_MAX] = {
        [GGUF_TYPE_UINT8] = 1, [GGUF_TYPE_INT8] = 1, [GGUF_TYPE_UINT16] = 2, [GGUF_TYPE_INT16] = 2,
        [GGUF_TYPE_UINT32] = 4, [GGUF_TYPE_INT32] = 4, [GGUF_TYPE_FLOAT32] = 4, [GGUF_TYPE_BOOL] = 1,
        [GGUF_TYPE_UINT64] = 8, [GGUF_TYPE_INT64] = 8, [GGUF_TYPE_FLOAT64] = 8,
};

typedef struct TypeTraits {
        const char *name;
        uint16_t block;
        uint16_t bytes;
} TypeTraits;

/* ggml's types as stored in files; the gaps are types ggml removed. */
static const TypeTraits type_traits[GGML_TYPE_COUNT] = {
        [0] = { "F32", 1, 4 },          [1] = { "F16", 1, 2 },
        [2] = { "Q4_0", 32, 18 },       [3] = { "Q4_1", 32, 20 },
        [6] = { "Q5_0", 32, 22 },       [7] = { "Q5_1", 32, 24 },
        [8] = { "Q8_0", 32, 34 },       [9] = { "Q8_1", 32, 36 },
        [10] = { "Q2_K", 256, 84 },     [11] = { "Q3_K", 256, 110 },
        [12] = { "Q4_K", 256, 144 },    [13] = { "Q5_K", 256, 176 },
        [14] = { "Q6_K", 256, 210 },    [15] = { "Q8_K", 256, 292 },
        [16] = { "IQ2_XXS", 256, 66 },  [17] = { "IQ2_XS", 256, 74 },
        [18] = { "IQ3_XXS", 256, 98 },  [19] = { "IQ1_S", 256, 50 },
        [20] = { "IQ4_NL", 32, 18 },    [21] = { "IQ3_S", 256, 110 },
        [22] = { "IQ2_S", 256, 82 },    [23] = { "IQ4_XS", 256, 136 },
        [24] = { "I8", 1, 1 },          [25] = { "I16", 1, 2 },
        [26] = { "I32", 1, 4 },         [27] = { "I64", 1, 8 },
        [28] = { "F64", 1, 8 },         [29] = { "IQ1_M", 256, 56 },
        [30] = { "BF16", 1, 2 },        [34] = { "TQ1_0", 256, 54 },
        [35] = { "TQ2_0", 256, 66 },    [39] = { "MXFP4", 32, 17 },
};

/* llama.cpp's general.file_type (llama_ftype) names. */
static const char *const file_type_names[] = {
        [0] = "F32", [1] = "F16", [2] = "Q4_0", [3] = "Q4_1", [7] = "Q8_0", [8] = "Q5_0",
        [9] = "Q5_1", [10] = "Q2_K", [11] = "Q3_K_S", [12] = "Q3_K_M", [13] = "Q3_K_L",
        [14] = "Q4_K_S", [15] = "Q4_K_M", [16] = "Q5_K_S", [17] = "Q5_K_M", [18] = "Q6_K",
        [19] = "IQ2_XXS", [20] = "IQ2_XS", [21] = "Q2_K_S", [22] = "IQ3_XS", [23] = "IQ3_XXS",
        [24] = "IQ1_S", [25] = "IQ4_NL", [26] = "IQ3_S", [27] = "IQ3_M", [28] = "IQ2_S",
        [29] = "IQ2_M", [30] = "IQ4_XS", [31] = "IQ1_M", [32] = "BF16", [36] = "TQ1_0",
        [37] = "TQ2_0", [38] = "MXFP4_MOE",
};
#define FILE_TYPE_GUESSED 1024   /* llama.cpp ORs this in when it guessed */

/* Hyperparameters read as "<architecture>.<suffix>" once the architecture
 * is known (it may come after them in the file). */
static const char *const hparam_suffixes[] = {
        ".context_length", ".embedding_length", ".block_count", ".feed_forward_length",
        ".attention.head_count", ".attention.head_count_kv", ".vocab_size",
};

typedef struct HParam {
        char *key;
        uint64_t value;
} HParam;

typedef struct Reader {
        int fd;
        uint64_t file_size;
        uint64_t pos;
        uint8_t *buf;
        uint64_t buf_start;
        size_t buf_len;
        char what[128];          /* what is being read, for messages */
        char *error;

        HParam *hparams;
        size_t n_hparams;
        char **keys;
        uint64_t n_tokens;
        bool have_tokens;
} Reader;

bool gguf_type_traits(uint32_t type, const char **ret_name, uint32_t *ret_block, uint32_t *ret_bytes) {
        if (type >= GGML_TYPE_COUNT || !type_traits[type].name)
                return false;
        if (ret_name)
                *ret_name = type_traits[type].name;
        if (ret_block)
                *ret_block = type_traits[type].block;
        if (ret_bytes)
                *ret_bytes = type_traits[type].bytes;
        return true;
}

int gguf_tensor_size(uint32_t type, const uint64_t ne[GGUF_DIMS_MAX], uint64_t *ret) {
        uint32_t block, bytes;
        uint64_t n;

        if (!gguf_type_traits(type, NULL, &block, &bytes) || ne[0] % block != 0)
                return -EINVAL;
        if (__builtin_mul_overflow(ne[0] / block, (uint64_t) bytes, &n))
                return -EOVERFLOW;
        for (unsigned i = 1; i < GGUF_DIMS_MAX; i++)
                if (__builtin_mul_overflow(n, ne[i], &n))
                        return -EOVERFLOW;
        *ret = n;
        return 0;
}

static int fail(Reader *r, int err, const char *fmt, ...) _printf_(3, 4);
static int fail(Reader *r, int err, const char *fmt, ...) {
        va_list ap;

        if (!r->error) {
                va_start(ap, fmt);
                if (vasprintf(&r->error, fmt, ap) < 0)
                        r->error = NULL;
                va_end(ap);
        }
        return err;
}

static void set_what(Reader *r, const char *fmt, ...) _printf_(2, 3);
static void set_what(Reader *r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        (void) vsnprintf(r->what, sizeof(r->what), fmt, ap);
        va_end(ap);
}

/* Checks that n more bytes at pos lie inside the file and inside the
 * metadata bound; "skip" and "read" both go through here. */
static int check_span(Reader *r, uint64_t n) {
        uint64_t end;

        if (__builtin_add_overflow(r->pos, n, &end) || end > r->file_size)
                return fail(r, -EBADMSG, "truncated: the file ends at byte %llu, inside %s",
                            (unsigned long long) r->file_size, r->what);
        if (end > GGUF_METADATA_MAX)
                return fail(r, -E2BIG, "metadata larger than %u MiB (at %s)", GGUF_METADATA_MAX >> 20, r->what);
        return 0;
}

static int skip(Reader *r, uint64_t n) {
        int k = check_span(r, n);
        if (k < 0)
                return k;
        r->pos += n;
        return 0;
}

static int fill(Reader *r) {
        size_t want = (size_t) MIN((uint64_t) READ_BUF, r->file_size - r->pos), got = 0;

        while (got < want) {
                ssize_t k = pread(r->fd, r->buf + got, want - got, (off_t) (r->pos + got));
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return fail(r, -errno, "reading at byte %llu: %s", (unsigned long long) (r->pos + got),
                                    strerror(errno));
                }
                if (k == 0)   /* the file shrank under us */
                        return fail(r, -EBADMSG, "truncated: the file ends at byte %llu, inside %s",
                                    (unsigned long long) (r->pos + got), r->what);
                got += (size_t) k;
        }
        r->buf_start = r->pos;
        r->buf_len = got;
        return 0;
}

static int read_bytes(Reader *r, void *dst, size_t n) {
        uint8_t *out = dst;
        int k = check_span(r, n);
        if (k < 0)
                return k;
        while (n > 0) {
                size_t chunk;
                if (r->pos < r->buf_start || r->pos >= r->buf_start + r->buf_len) {
                        k = fill(r);
                        if (k < 0)
                                return k;
                }
                chunk = MIN(n, (size_t) (r->buf_start + r->buf_len - r->pos));
                memcpy(out, r->buf + (r->pos - r->buf_start), chunk);
                out += chunk;
                n -= chunk;
                r->pos += chunk;
        }
        return 0;
}

static uint64_t le(const uint8_t *p, unsigned n) {
        uint64_t v = 0;
        for (unsigned i = n; i > 0; i--)
                v = v << 8 | p[i - 1];
        return v;
}

static int read_u32(Reader *r, uint32_t *ret) {
        uint8_t b[4];
        int k = read_bytes(r, b, sizeof(b));
        if (k < 0)
                return k;
        *ret = (uint32_t) le(b, 4);
        return 0;
}

static int read_u64(Reader *r, uint64_t *ret) {
        uint8_t b[8];
        int k = read_bytes(r, b, sizeof(b));
        if (k < 0)
                return k;
        *ret = le(b, 8);
        return 0;
}

/* A string's length, checked against max and the file before anything
 * is allocated for it. */
static int read_string_len(Reader *r, uint64_t max, uint64_t *ret) {
        uint64_t len;
        int k = read_u64(r, &len);
        if (k < 0)
                return k;
        if (len > max)
                return fail(r, -E2BIG, "%s is %llu bytes long (at most %llu allowed)", r->what,
                            (unsigned long long) len, (unsigned long long) max);
        k = check_span(r, len);
        if (k < 0)
                return k;
        *ret = len;
        return 0;
}

static int read_string(Reader *r, uint64_t max, char **ret) {
        _cleanup_free_ char *s = NULL;
        uint64_t len;
        int k = read_string_len(r, max, &len);
        if (k < 0)
                return k;
        s = malloc(len + 1);
        if (!s)
                return -ENOMEM;
        k = read_bytes(r, s, len);
        if (k < 0)
                return k;
        s[len] = 0;
        if (strlen(s) != len)
                return fail(r, -EBADMSG, "%s contains a NUL byte", r->what);
        *ret = TAKE_PTR(s);
        return 0;
}

/* A scalar value, as the widest types; strings are read only when wanted. */
typedef struct Value {
        uint32_t type;
        uint64_t u;             /* integers (signed ones sign-extended) and bool */
        bool negative;
        char *str;              /* STRING, when want_string */
        uint32_t array_type;
        uint64_t array_count;
} Value;

static int read_scalar(Reader *r, uint32_t type, Value *v) {
        uint8_t b[8];
        unsigned size = value_type_size[type];
        int k = read_bytes(r, b, size);
        if (k < 0)
                return k;
        v->u = le(b, size);
        if (type == GGUF_TYPE_INT8 || type == GGUF_TYPE_INT16 || type == GGUF_TYPE_INT32 || type == GGUF_TYPE_INT64) {
                unsigned bits = size * 8;
                v->negative = (v->u >> (bits - 1)) & 1;
        }
        if (type == GGUF_TYPE_BOOL && v->u > 1)
                return fail(r, -EBADMSG, "%s: a bool that is %llu", r->what, (unsigned long long) v->u);
        return 0;
}

static int skip_array(Reader *r, Value *v) {
        uint64_t n, bytes;
        int k = read_u32(r, &v->array_type);
        if (k < 0)
                return k;
        k = read_u64(r, &n);
        if (k < 0)
                return k;
        if (v->array_type >= GGUF_TYPE_MAX || v->array_type == GGUF_TYPE_ARRAY)
                return fail(r, -EBADMSG, "%s: an array of elements of type %u", r->what, v->array_type);
        v->array_count = n;
        if (v->array_type != GGUF_TYPE_STRING) {
                if (__builtin_mul_overflow(n, (uint64_t) value_type_size[v->array_type], &bytes))
                        return fail(r, -E2BIG, "%s: an array of %llu elements", r->what, (unsigned long long) n);
                return skip(r, bytes);
        }
        /* Each string takes at least its 8-byte length: a count that cannot
         * fit the metadata bound is refused before the loop. */
        if (n > GGUF_METADATA_MAX / 8)
                return fail(r, -E2BIG, "%s: an array of %llu strings", r->what, (unsigned long long) n);
        for (uint64_t i = 0; i < n; i++) {
                uint64_t len;
                k = read_string_len(r, GGUF_STRING_MAX, &len);
                if (k < 0)
                        return k;
                r->pos += len;
        }
        return 0;
}

static int read_value(Reader *r, uint32_t type, bool want_string, Value *v) {
        v->type = type;
        if (type >= GGUF_TYPE_MAX)
                return fail(r, -EBADMSG, "%s has an invalid value type %u", r->what, type);
        if (type == GGUF_TYPE_ARRAY)
                return skip_array(r, v);
        if (type == GGUF_TYPE_STRING) {
                uint64_t len;
                int k;
                if (want_string)
                        return read_string(r, GGUF_STRING_MAX, &v->str);
                k = read_string_len(r, GGUF_STRING_MAX, &len);
                if (k < 0)
                        return k;
                return skip(r, len);
        }
        return read_scalar(r, type, v);
}

static bool value_is_uint(const Value *v) {
        return v->type < GGUF_TYPE_MAX && value_type_size[v->type] > 0 && v->type != GGUF_TYPE_FLOAT32 &&
               v->type != GGUF_TYPE_FLOAT64 && v->type != GGUF_TYPE_BOOL && !v->negative;
}

static const char *hparam_suffix_of(const char *key) {
        size_t kl = strlen(key);
        for (size_t i = 0; i < ELEMENTSOF(hparam_suffixes); i++) {
                size_t sl = strlen(hparam_suffixes[i]);
                if (kl > sl && streq(key + kl - sl, hparam_suffixes[i]))
                        return hparam_suffixes[i];
        }
        return NULL;
}

static int take_string(Reader *r, Value *v, const char *key, char **dst) {
        if (v->type != GGUF_TYPE_STRING)
                return fail(r, -EBADMSG, "metadata key '%s' is not a string (type %u)", key, v->type);
        free(*dst);
        *dst = TAKE_PTR(v->str);
        return 0;
}

/* Keeps what the store needs from one key/value pair. */
static int use_kv(Reader *r, GgufInfo *info, const char *key, Value *v) {
        if (streq(key, "general.architecture"))
                return take_string(r, v, key, &info->architecture);
        if (streq(key, "general.name"))
                return take_string(r, v, key, &info->name);
        if (streq(key, "tokenizer.ggml.model"))
                return take_string(r, v, key, &info->tokenizer);
        if (streq(key, GGUF_KEY_ZVM_SHAPE))
                return take_string(r, v, key, &info->generated_shape);
        if (streq(key, "general.alignment")) {
                /* ggml insists on u32 here, and so does the data offset. */
                if (v->type != GGUF_TYPE_UINT32 || v->u == 0 || (v->u & (v->u - 1)) != 0 ||
                    v->u > GGUF_ALIGNMENT_MAX)
                        return fail(r, -EBADMSG, "general.alignment must be a power of two up to %u as uint32",
                                    GGUF_ALIGNMENT_MAX);
                info->alignment = v->u;
                return 0;
        }
        if (streq(key, "general.file_type")) {
                if (!value_is_uint(v) || v->u > INT32_MAX)
                        return fail(r, -EBADMSG, "general.file_type is not a small unsigned integer");
                info->file_type = (int64_t) v->u;
                return 0;
        }
        if (streq(key, GGUF_KEY_ZVM_GENERATED)) {
                info->generated = v->type == GGUF_TYPE_BOOL && v->u == 1;
                return 0;
        }
        if (streq(key, GGUF_KEY_ZVM_SEED)) {
                info->generated_seed = value_is_uint(v) ? v->u : 0;
                return 0;
        }
        if (streq(key, "tokenizer.ggml.tokens")) {
                if (v->type != GGUF_TYPE_ARRAY || v->array_type != GGUF_TYPE_STRING)
                        return fail(r, -EBADMSG, "tokenizer.ggml.tokens is not an array of strings");
                r->n_tokens = v->array_count;
                r->have_tokens = true;
                return 0;
        }
        if (hparam_suffix_of(key) && value_is_uint(v)) {
                HParam *h = reallocarray(r->hparams, r->n_hparams + 1, sizeof(HParam));
                if (!h)
                        return -ENOMEM;
                r->hparams = h;
                h[r->n_hparams].key = strdup(key);
                if (!h[r->n_hparams].key)
                        return -ENOMEM;
                h[r->n_hparams++].value = v->u;
        }
        return 0;
}

static bool key_wants_string(const char *key) {
        return streq(key, "general.architecture") || streq(key, "general.name") ||
               streq(key, "tokenizer.ggml.model") || streq(key, GGUF_KEY_ZVM_SHAPE);
}

static int read_kvs(Reader *r, GgufInfo *info) {
        r->keys = calloc(info->n_kv ?: 1, sizeof(char *));
        if (!r->keys)
                return -ENOMEM;
        for (uint64_t i = 0; i < info->n_kv; i++) {
                _cleanup_free_ char *str = NULL;
                Value v = {};
                uint32_t type;
                char *key;
                int k;

                set_what(r, "the key of metadata entry %llu", (unsigned long long) i);
                k = read_string(r, GGUF_KEY_MAX, &key);
                if (k < 0)
                        return k;
                r->keys[i] = key;
                set_what(r, "metadata key '%.64s'", key);
                k = read_u32(r, &type);
                if (k < 0)
                        return k;
                k = read_value(r, type, key_wants_string(key), &v);
                str = v.str;
                if (k < 0)
                        return k;
                k = use_kv(r, info, key, &v);
                str = v.str;   /* taken (NULL) or still ours */
                if (k < 0)
                        return k;
        }
        return 0;
}

static int read_tensor(Reader *r, GgufInfo *info, size_t i, uint64_t *data_size) {
        GgufTensor *t = &info->tensors[i];
        const char *tname;
        uint32_t block;
        int k;

        set_what(r, "the name of tensor %zu", i);
        k = read_string(r, GGUF_NAME_MAX, &t->name);
        if (k < 0)
                return k;
        set_what(r, "tensor '%s'", t->name);
        k = read_u32(r, &t->n_dims);
        if (k < 0)
                return k;
        if (t->n_dims > GGUF_DIMS_MAX)
                return fail(r, -EBADMSG, "tensor '%s' has %u dimensions (at most %u)", t->name, t->n_dims, GGUF_DIMS_MAX);
        for (unsigned d = 0; d < GGUF_DIMS_MAX; d++) {
                t->ne[d] = 1;
                if (d < t->n_dims) {
                        k = read_u64(r, &t->ne[d]);
                        if (k < 0)
                                return k;
                        if (t->ne[d] > INT64_MAX)
                                return fail(r, -EBADMSG, "tensor '%s' has a negative dimension", t->name);
                }
        }
        k = read_u32(r, &t->type);
        if (k < 0)
                return k;
        k = read_u64(r, &t->offset);
        if (k < 0)
                return k;
        if (!gguf_type_traits(t->type, &tname, &block, NULL))
                return fail(r, -EOPNOTSUPP, "tensor '%s' has unsupported type %u", t->name, t->type);
        if (t->ne[0] % block != 0)
                return fail(r, -EBADMSG, "tensor '%s': dimension 0 (%llu) is not a multiple of the %s block size %u",
                            t->name, (unsigned long long) t->ne[0], tname, block);
        t->n_elements = 1;
        for (unsigned d = 0; d < GGUF_DIMS_MAX; d++)
                if (__builtin_mul_overflow(t->n_elements, t->ne[d], &t->n_elements) || t->n_elements > INT64_MAX)
                        return fail(r, -EBADMSG, "tensor '%s': its shape overflows", t->name);
        if (gguf_tensor_size(t->type, t->ne, &t->size) < 0)
                return fail(r, -EBADMSG, "tensor '%s': its size overflows", t->name);
        /* ggml's rule: each tensor starts where the previous one ended,
         * padded to the alignment. */
        if (t->offset != *data_size)
                return fail(r, -EBADMSG, "tensor '%s' starts at data offset %llu, expected %llu "
                            "(tensors must follow each other)", t->name,
                            (unsigned long long) t->offset, (unsigned long long) *data_size);
        if (__builtin_add_overflow(*data_size, t->size, data_size) ||
            __builtin_add_overflow(*data_size, (info->alignment - *data_size % info->alignment) % info->alignment,
                                   data_size))
                return fail(r, -EBADMSG, "tensor '%s': the data size overflows", t->name);
        if (__builtin_add_overflow(info->n_params, t->n_elements, &info->n_params))
                return fail(r, -EBADMSG, "the parameter count overflows");
        return 0;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* ggml refuses a file with a key or tensor name twice; so do we. */
static int check_unique(Reader *r, char **names, size_t n, const char *what) {
        qsort(names, n, sizeof(char *), cmp_str);
        for (size_t i = 1; i < n; i++)
                if (streq(names[i - 1], names[i]))
                        return fail(r, -EBADMSG, "duplicate %s '%.64s'", what, names[i]);
        return 0;
}

static int read_tensors(Reader *r, GgufInfo *info) {
        _cleanup_free_ char **names = NULL;
        uint64_t data_size = 0;
        int k;

        info->tensors = calloc(info->n_tensors ?: 1, sizeof(GgufTensor));
        names = calloc(info->n_tensors ?: 1, sizeof(char *));
        if (!info->tensors || !names)
                return -ENOMEM;
        for (size_t i = 0; i < info->n_tensors; i++) {
                k = read_tensor(r, info, i, &data_size);
                if (k < 0)
                        return k;
                names[i] = info->tensors[i].name;
        }
        k = check_unique(r, names, info->n_tensors, "tensor name");
        if (k < 0)
                return k;

        info->data_offset = r->pos + (info->alignment - r->pos % info->alignment) % info->alignment;
        for (size_t i = 0; i < info->n_tensors; i++) {
                GgufTensor *t = &info->tensors[i];
                uint64_t end;
                if (__builtin_add_overflow(t->offset, info->data_offset, &t->offset) ||
                    __builtin_add_overflow(t->offset, t->size, &end) || end > info->file_size)
                        return fail(r, -EBADMSG, "truncated: tensor '%s' ends at byte %llu past the file's end %llu",
                                    t->name, (unsigned long long) (t->offset + t->size),
                                    (unsigned long long) info->file_size);
        }
        return 0;
}

static int read_header(Reader *r, GgufInfo *info) {
        uint8_t magic[4];
        uint64_t n_tensors;
        int k;

        if (r->file_size < 4)
                return fail(r, -EBADMSG, "not a GGUF file (%llu bytes)", (unsigned long long) r->file_size);
        set_what(r, "the header");
        k = read_bytes(r, magic, 4);
        if (k < 0)
                return k;
        if (memcmp(magic, "GGUF", 4) != 0)
                return fail(r, -EBADMSG, "not a GGUF file (magic %02x %02x %02x %02x, expected \"GGUF\")",
                            magic[0], magic[1], magic[2], magic[3]);
        k = read_u32(r, &info->version);
        if (k < 0)
                return k;
        if (info->version != 0 && (info->version & 0xffff) == 0 && __builtin_bswap32(info->version) <= 3)
                return fail(r, -EOPNOTSUPP, "big-endian GGUF (version %u) is not supported",
                            __builtin_bswap32(info->version));
        if (info->version != 2 && info->version != 3)
                return fail(r, -EOPNOTSUPP, "unsupported GGUF version %u (2 and 3 are)", info->version);
        k = read_u64(r, &n_tensors);
        if (k < 0)
                return k;
        k = read_u64(r, &info->n_kv);
        if (k < 0)
                return k;
        if (n_tensors > GGUF_TENSORS_MAX)
                return fail(r, -E2BIG, "the header claims %llu tensors (at most %u)",
                            (unsigned long long) n_tensors, GGUF_TENSORS_MAX);
        if (info->n_kv > GGUF_KV_MAX)
                return fail(r, -E2BIG, "the header claims %llu metadata entries (at most %u)",
                            (unsigned long long) info->n_kv, GGUF_KV_MAX);
        info->n_tensors = (size_t) n_tensors;
        return 0;
}

static uint64_t hparam(const Reader *r, const char *arch, const char *suffix) {
        size_t al = strlen(arch);
        for (size_t i = 0; i < r->n_hparams; i++) {
                const char *k = r->hparams[i].key;
                if (strneq(k, arch, al) && streq(k + al, suffix))
                        return r->hparams[i].value;
        }
        return 0;
}

/* The quantisation: the file's own word, else the type holding most bytes. */
static const char *quant_of(const GgufInfo *info) {
        uint64_t bytes[GGML_TYPE_COUNT] = {};
        unsigned best = 0;

        if (info->file_type >= 0) {
                int64_t ft = info->file_type & ~FILE_TYPE_GUESSED;
                if (ft < (int64_t) ELEMENTSOF(file_type_names) && file_type_names[ft])
                        return file_type_names[ft];
        }
        if (info->n_tensors == 0)
                return "unknown";
        for (size_t i = 0; i < info->n_tensors; i++)
                bytes[info->tensors[i].type] += info->tensors[i].size;
        for (unsigned t = 1; t < GGML_TYPE_COUNT; t++)
                if (bytes[t] > bytes[best])
                        best = t;
        return type_traits[best].name;
}

static void extract(const Reader *r, GgufInfo *info) {
        const char *arch = info->architecture ?: "";

        info->context_length = hparam(r, arch, ".context_length");
        info->embedding_length = hparam(r, arch, ".embedding_length");
        info->block_count = hparam(r, arch, ".block_count");
        info->feed_forward_length = hparam(r, arch, ".feed_forward_length");
        info->head_count = hparam(r, arch, ".attention.head_count");
        info->head_count_kv = hparam(r, arch, ".attention.head_count_kv");
        info->vocab_size = hparam(r, arch, ".vocab_size");
        if (info->vocab_size == 0 && r->have_tokens)
                info->vocab_size = r->n_tokens;
        info->quant = quant_of(info);
}

static void reader_done(Reader *r, uint64_t n_kv) {
        free(r->buf);
        for (size_t i = 0; i < r->n_hparams; i++)
                free(r->hparams[i].key);
        free(r->hparams);
        if (r->keys)
                for (uint64_t i = 0; i < n_kv; i++)
                        free(r->keys[i]);
        free(r->keys);
        free(r->error);
}

static int parse(Reader *r, GgufInfo *info) {
        int k = read_header(r, info);
        if (k < 0)
                return k;
        k = read_kvs(r, info);
        if (k < 0)
                return k;
        k = check_unique(r, r->keys, info->n_kv, "metadata key");
        if (k < 0)
                return k;
        k = read_tensors(r, info);
        if (k < 0)
                return k;
        extract(r, info);
        return 0;
}

int gguf_read_fd(int fd, GgufInfo **ret, char **ret_error) {
        _cleanup_gguf_info_free_ GgufInfo *info = NULL;
        Reader r = { .fd = fd };
        struct stat st;
        int k;

        assert_return(fd >= 0 && ret, -EINVAL);

        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode)) {
                k = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
                if (ret_error && asprintf(ret_error, "not a regular file") < 0)
                        *ret_error = NULL;
                return k;
        }
        info = calloc(1, sizeof(GgufInfo));
        r.buf = malloc(READ_BUF);
        if (!info || !r.buf) {
                free(r.buf);
                return -ENOMEM;
        }
        info->file_size = r.file_size = (uint64_t) st.st_size;
        info->alignment = GGUF_ALIGNMENT_DEFAULT;
        info->file_type = -1;

        k = parse(&r, info);
        if (k < 0) {
                if (ret_error && r.error)
                        *ret_error = TAKE_PTR(r.error);
                /* n_kv keys may be partly read: reader_done frees the non-NULL ones. */
                reader_done(&r, info->n_kv);
                return k;
        }
        reader_done(&r, info->n_kv);
        *ret = TAKE_PTR(info);
        return 0;
}

GgufInfo *gguf_info_free(GgufInfo *info) {
        if (!info)
                return NULL;
        if (info->tensors)
                for (size_t i = 0; i < info->n_tensors; i++)
                        free(info->tensors[i].name);
        free(info->tensors);
        free(info->architecture);
        free(info->name);
        free(info->tokenizer);
        free(info->generated_shape);
        return mfree(info);
}

const GgufTensor *gguf_info_find_tensor(const GgufInfo *info, const char *name) {
        if (!info || !name)
                return NULL;
        for (size_t i = 0; i < info->n_tensors; i++)
                if (streq(info->tensors[i].name, name))
                        return &info->tensors[i];
        return NULL;
}
