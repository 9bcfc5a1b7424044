/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Op set-authorized-keys. */

#include "agent-request.h"

int op_set_authorized_keys(Request *rq, Buf *out);
