/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A connection's life: authentication, then one answer per request line
 * until EOF, an idle timeout or a fatal error. */

#include "agent-conn.h"

/*
 * Reads one request line (the --stdio and vsock reader, before any op
 * runs; also tests/fuzz): 0 with the request object, its "op" (a string
 * without NUL) and its "id" (NULL if none); or -EINVAL with the reason in
 * error and the id, if the line got that far, in *ret_id.
 */
int serve_parse_request(Arena *arena, const char *line, size_t len, char *error, size_t error_size,
                        const Json **ret_root, const Json **ret_id, const Json **ret_op);

void serve_connection(Conn *c);
