/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A connection's life: authentication, then one answer per request line
 * until EOF, an idle timeout or a fatal error. */

#include "agent-conn.h"

void serve_connection(Conn *c);
