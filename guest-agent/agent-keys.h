/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Op set-authorized-keys. */

#include "agent-request.h"

#define KEYS_MAX 1024
#define KEY_LINE_MAX 16384

typedef struct KeysArgs {
        const char *user;       /* "root" when absent */
        char **keys;            /* each 1 to KEY_LINE_MAX bytes, one line */
        size_t n_keys;
} KeysArgs;

/* Checks and reads the op's arguments, nothing written (also tests/fuzz). */
int keys_parse_args(Request *rq, KeysArgs *a);
int op_set_authorized_keys(Request *rq, Buf *out);
