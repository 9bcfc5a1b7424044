/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Ops file-read and file-write. */

#include "agent-request.h"

#define FILE_MAX ((size_t) 8 << 20)

int op_file_read(Request *rq, Buf *out);
int op_file_write(Request *rq, Buf *out);
