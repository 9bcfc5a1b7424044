/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* libFuzzer harness for lib/gguf.c (libc only, so it builds alone):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Ilib \
 *         lib/gguf.c tests/fuzz/fuzz-gguf.c -o fuzz-gguf
 *   mkdir -p corpus && build/daemon/tools/zvm-mkmodel generate --shape tiny corpus/tiny.gguf
 *   ./fuzz-gguf -max_total_time=60 corpus
 *
 * The input becomes a memfd (the reader wants a regular file to pread). */

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        GgufInfo *info = NULL;
        char *why = NULL;
        int fd = memfd_create("fuzz", MFD_CLOEXEC);

        if (fd < 0 || write(fd, data, size) != (ssize_t) size)
                abort();
        if (gguf_read_fd(fd, &info, &why) == 0 && (!info->quant || info->n_tensors > GGUF_TENSORS_MAX))
                abort();
        gguf_info_free(info);
        free(why);
        close(fd);
        return 0;
}
