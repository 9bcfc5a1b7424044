/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* READY: tell the host (CID 2) on port that the agent is up. Runs in a
 * child of the main process, with a bounded back-off; exits. */
#include "macro.h"

_noreturn_ void ready_run(unsigned port);
