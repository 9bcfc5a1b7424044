/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Op pty: a command on a pseudo-terminal, relayed in frames. */

#include "agent-json.h"
#include "agent-request.h"

/* Answers the request itself (the ok line, then frames until the command
 * ends). Returns 1 when a session ran (the connection then closes), or
 * -errno with rq->error set if the command could not start (the caller
 * sends the error answer; the connection stays usable). */
int op_pty(Request *rq, const Json *id);
