/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The vsock ↔ unix-socket bridge to llama-server: a vsock listener whose
 * every connection is relayed, both ways, to a unix socket. Runs in the
 * agent's main loop (agent-poll.h), never blocks. */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "agent-poll.h"

#define BRIDGE_MAX_CONNECTIONS 64
#define BRIDGE_BUFFER ((size_t) 32 << 10)              /* per direction and connection */
#define BRIDGE_IDLE_MS (15U * 60U * 1000U)             /* no byte either way for this long: closed */

typedef struct Relay Relay;

typedef struct Bridge {
        int lfd;                /* -EBADF: not listening */
        uint32_t port;
        const char *target;     /* the unix socket's path (owned by the caller) */
        Relay *relays[BRIDGE_MAX_CONNECTIONS];
        unsigned n_relays;
        int i_listen;           /* index in this round's PollSet */
} Bridge;

#define BRIDGE_NULL { .lfd = -EBADF, .i_listen = -1 }

/* Listens on vsock port (any CID). Returns 0 or -errno; already listening
 * on that port: 0. */
int bridge_open(Bridge *b, uint32_t port, const char *target);
/* Closes the listener and every connection. */
void bridge_close(Bridge *b);
/* In a forked child: closes our fds without touching the connections. */
void bridge_forget(Bridge *b);
bool bridge_is_open(const Bridge *b);

void bridge_poll_add(Bridge *b, PollSet *ps);
void bridge_poll_dispatch(Bridge *b, const PollSet *ps);
