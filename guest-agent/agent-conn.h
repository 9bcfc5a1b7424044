/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One host connection: reading request lines, sending answer lines. */

#include <stddef.h>

#include "agent-buf.h"
#include "agent-contract.h"
#include "agent-json.h"

#define AUTH_TIMEOUT_MS 30000                   /* the first line must come within this */
#define IDLE_TIMEOUT_MS (10 * 60 * 1000)        /* an idle authenticated connection is closed */
#define WRITE_TIMEOUT_MS 60000                  /* a host that reads nothing for this long is dropped */
#define LINGER_MS 1000                          /* drain after a final error, so it is not lost to a reset */

/* Writes to vsock go out in pieces of at most this: a larger send() makes
 * the guest kernel (6.12 stable, 6.16+) queue a non-linear skb whose payload
 * spans several descriptors, which vhost-device-vsock (0.3.0) drops as
 * "DescriptorLengthTooSmall": the bytes are lost and the connection stalls
 * for lack of credit. Payloads up to SKB_WITH_OVERHEAD(32 KiB) stay linear. */
#define VSOCK_WRITE_MAX ((size_t) 16 << 10)

typedef enum After {
        AFTER_NOTHING,
        AFTER_POWEROFF,
        AFTER_REBOOT,
} After;

typedef struct Conn {
        int in_fd, out_fd;      /* the same socket, or stdin/stdout with --stdio */
        int sigfd;              /* SIGCHLD, for exec */
        int ctl_fd;             /* to the llm supervisor (agent-llm.h); -1: none */
        char *buf;              /* received bytes not yet consumed */
        size_t len, cap, scanned;
        size_t consumed;        /* bytes of buf belonging to the line handed out last */
        After after;            /* what to do once the answer is out */
} Conn;

/* Returns 1 with a line (NUL-terminated in place, without its '\n', valid
 * until the next call), 0 at EOF, -ETIMEDOUT, -E2BIG for a line over
 * AGENT_REQUEST_LINE_MAX, or -errno. */
int conn_read_line(Conn *c, int timeout_ms, char **ret_line, size_t *ret_len);
/* Sends b (-ENOMEM if b failed), bounded by WRITE_TIMEOUT_MS without
 * progress. */
int conn_send(Conn *c, Buf *b);
/* {"id":id,"ok":false,"error":{"code":"E…","message":message}} */
int conn_send_error(Conn *c, const Json *id, int err, const char *message);
/* Before closing on an error: stop writing, read and drop for LINGER_MS. */
void conn_linger(Conn *c);
