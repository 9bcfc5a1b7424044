/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Ops shutdown and reboot: they only mark the connection; the action runs
 * once the answer is out (power_action()). */

#include <stdbool.h>

#include "agent-request.h"

int op_shutdown(Request *rq, Buf *out);
int op_reboot(Request *rq, Buf *out);

/* --stdio: answer and log shutdown/reboot, do not do them. */
void power_set_dry_run(bool b);
/* Asks init to power off or reboot, falls back to reboot(2). */
_noreturn_ void power_action(After what);
