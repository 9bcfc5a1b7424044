/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Ops file-read and file-write. */

#include <limits.h>
#include <stdint.h>

#include "agent-request.h"

#define FILE_MAX ((size_t) 8 << 20)

typedef struct FileReadArgs {
        const char *path;
        int64_t max_bytes;
} FileReadArgs;

typedef struct FileWriteArgs {
        const char *path, *name;        /* name: the last component of path */
        char dir[PATH_MAX];             /* path's directory */
        unsigned char *data;            /* in the request's arena; NULL when empty */
        size_t len;
        int64_t mode;
} FileWriteArgs;

/* Check and read the ops' arguments, no file touched (also tests/fuzz). */
int file_read_parse_args(Request *rq, FileReadArgs *a);
int file_write_parse_args(Request *rq, FileWriteArgs *a);
int op_file_read(Request *rq, Buf *out);
int op_file_write(Request *rq, Buf *out);
