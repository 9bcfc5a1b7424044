/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Ops llm-start, llm-stop and the "llm" part of info: the connection
 * process's side of the llm supervisor (agent-llm.h), reached over
 * Conn.ctl_fd. */

#include "agent-llm.h"
#include "agent-request.h"

/* llm-start defaults and bounds. */
#define LLM_DEFAULT_CTX 2048
#define LLM_MAX_CTX (1 << 20)
#define LLM_MAX_THREADS 256
#define LLM_MAX_PARALLEL 64
#define LLM_DEFAULT_BATCH 512
#define LLM_MAX_BATCH 65536
#define LLM_CTL_TIMEOUT_MS 5000
#define LLM_STOP_WAIT_MS 15000          /* llm-stop answers once it is stopped, or after this */

/* Checks and reads llm-start's arguments into c; the model file itself is
 * op_llm_start()'s check (also tests/fuzz: nothing opened here). */
int llm_parse_args(Request *rq, LlmConfig *c);
int op_llm_start(Request *rq, Buf *out);
int op_llm_stop(Request *rq, Buf *out);
/* The supervisor's status as a JSON object, or null without one. */
void llm_put_info(Conn *c, Buf *out);
