/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Facts about the guest: ops ping and info, and the parts of READY. */

#include "agent-request.h"

#ifndef ZVM_AGENT_VERSION
#define ZVM_AGENT_VERSION "0.0.0"
#endif

/* Seconds since the kernel started. */
double info_uptime(void);
/* The initrd's timing line as an object, or null. */
void info_put_initrd_timing(Buf *b);
/* ["TYPE BASE64", …] of the guest's ssh host keys. */
void info_put_ssh_host_keys(Buf *b);

int op_ping(Request *rq, Buf *out);
int op_info(Request *rq, Buf *out);
int op_set_hostname(Request *rq, Buf *out);
