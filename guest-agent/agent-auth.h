/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The per-VM secret and the first line of every connection, which must
 * prove it: {"op":"auth","secret":"<64 hex>"}. */

#include <stdbool.h>
#include <stddef.h>

#include "agent-conn.h"

/* Loads the secret from path (64 hex digits, trailing whitespace ignored).
 * False, with the reason in secret_problem(), if the file is missing or
 * malformed. */
bool secret_load(const char *path);
/* Same, from a string (--stdio with $ZVM_AGENT_SECRET); source names it in
 * messages. */
bool secret_set(const char *value, const char *source);
bool secret_loaded(void);
/* Why no secret is loaded. */
const char *secret_problem(void);
/* The secret itself ("" if none), for READY. */
const char *secret_value(void);
/* Constant time in the content; the length is no secret. */
bool secret_matches(const char *s, size_t len);

/* Reads and checks the first line, answers it; false (after refusing with
 * EACCES, or on EOF) if the connection must close. */
bool auth_connection(Conn *c);
