/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * GGUF model files: a validating reader for untrusted files (gguf.c) and a
 * writer of random-weight models with real shapes (gguf-gen.c). Both are
 * libc-only so that a fuzzer, the tools and the guest agent can link them.
 *
 * The reader reads the header, the key/value metadata and the tensor
 * directory with pread() (never the tensor data, never more than
 * GGUF_METADATA_MAX bytes), checks every count, length, type, shape, offset
 * and size against the format and the file's real size before using it, and
 * extracts what the model store shows (architecture, parameters, quantisation,
 * context, vocabulary, whether zvm generated it).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds on what a file can make the reader allocate or loop over. */
#define GGUF_METADATA_MAX (64u * 1024 * 1024)   /* header + KV + tensor directory */
#define GGUF_TENSORS_MAX 65536u
#define GGUF_KV_MAX 65536u
#define GGUF_KEY_MAX 1024u                      /* bytes in a key */
#define GGUF_STRING_MAX (16u * 1024 * 1024)     /* bytes in a string value */
#define GGUF_NAME_MAX 63u                       /* bytes in a tensor name (ggml: 64 with NUL) */
#define GGUF_DIMS_MAX 4u
#define GGUF_ALIGNMENT_DEFAULT 32u
#define GGUF_ALIGNMENT_MAX (1u << 20)

/* zvm's own keys, written by gguf-gen.c into every generated model. */
#define GGUF_KEY_ZVM_GENERATED "zvm.generated"   /* bool true: random weights */
#define GGUF_KEY_ZVM_SHAPE "zvm.shape"           /* string: "tiny", "qwen2.5-0.5b", "custom:…" */
#define GGUF_KEY_ZVM_SEED "zvm.seed"             /* uint64 */

/* ggml tensor types (the numbers are the file format's). */
enum {
        GGML_TYPE_F32 = 0,
        GGML_TYPE_F16 = 1,
        GGML_TYPE_Q4_0 = 2,
        GGML_TYPE_Q8_0 = 8,
        GGML_TYPE_COUNT = 40,
};

/* llama.cpp's general.file_type values that the generator writes. */
enum {
        GGUF_FILE_TYPE_MOSTLY_Q4_0 = 2,
        GGUF_FILE_TYPE_MOSTLY_Q8_0 = 7,
};

typedef struct GgufTensor {
        char *name;
        uint32_t type;                  /* GGML_TYPE_* */
        uint32_t n_dims;
        uint64_t ne[GGUF_DIMS_MAX];     /* unused dimensions are 1 */
        uint64_t n_elements;
        uint64_t offset;                /* absolute, in the file */
        uint64_t size;                  /* bytes */
} GgufTensor;

typedef struct GgufInfo {
        uint32_t version;
        uint64_t file_size;
        uint64_t alignment;
        uint64_t data_offset;           /* where tensor data starts */
        uint64_t n_kv;

        GgufTensor *tensors;
        size_t n_tensors;

        /* Extracted metadata; NULL / 0 / -1 when the file does not say. */
        char *architecture;             /* general.architecture */
        char *name;                     /* general.name */
        int64_t file_type;              /* general.file_type, -1 if absent */
        const char *quant;              /* static: "Q8_0", "Q4_K_M", … never NULL */
        uint64_t n_params;              /* sum of the tensors' elements */
        uint64_t context_length;        /* <arch>.context_length */
        uint64_t embedding_length;      /* <arch>.embedding_length */
        uint64_t block_count;           /* <arch>.block_count */
        uint64_t feed_forward_length;   /* <arch>.feed_forward_length */
        uint64_t head_count;            /* <arch>.attention.head_count */
        uint64_t head_count_kv;         /* <arch>.attention.head_count_kv */
        uint64_t vocab_size;            /* <arch>.vocab_size, else tokenizer.ggml.tokens' length */
        char *tokenizer;                /* tokenizer.ggml.model */

        bool generated;                 /* zvm.generated = true */
        char *generated_shape;          /* zvm.shape */
        uint64_t generated_seed;        /* zvm.seed */
} GgufInfo;

GgufInfo *gguf_info_free(GgufInfo *info);
static inline void gguf_info_freep(GgufInfo **p) {
        if (*p)
                gguf_info_free(*p);
}
#define _cleanup_gguf_info_free_ __attribute__((__cleanup__(gguf_info_freep)))

/* Reads and validates the GGUF file open on fd (any offset; pread only).
 *
 * Returns 0 and *ret, or a negative errno and, when ret_error is non-NULL,
 * a malloc'd sentence saying what is wrong (on -ENOMEM it may stay NULL):
 *   -EBADMSG     not a GGUF file, truncated, inconsistent or lying header
 *   -EOPNOTSUPP  a GGUF this reader does not handle (version, big-endian,
 *                tensor type)
 *   -E2BIG       a count or length past the reader's bounds (GGUF_*_MAX)
 *   -EISDIR/-EINVAL  not a regular file; other -errno from fstat/pread. */
int gguf_read_fd(int fd, GgufInfo **ret, char **ret_error);

/* ggml type traits: name ("Q8_0"), block size in elements and bytes per
 * block; false for a type number that is not (or no longer) valid. */
bool gguf_type_traits(uint32_t type, const char **ret_name, uint32_t *ret_block, uint32_t *ret_bytes);

/* Bytes of a tensor of this type and shape; -EINVAL when ne[0] is not a
 * multiple of the block size or the type is invalid, -EOVERFLOW. */
int gguf_tensor_size(uint32_t type, const uint64_t ne[GGUF_DIMS_MAX], uint64_t *ret);

/* The tensor called name, or NULL. */
const GgufTensor *gguf_info_find_tensor(const GgufInfo *info, const char *name);
