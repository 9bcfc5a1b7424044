/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One poll() round of the main loop: each module adds its fds (remembering
 * the index it got) and its next deadline, then reads its revents back. */

#include <poll.h>
#include <stdint.h>

#include "time-util.h"

/* sigfd, listener, 16 control sockets, the llm's log pipe and probe, the
 * bridge listener and 2 fds for each of its 64 connections, with room. */
#define POLL_SET_MAX 192

typedef struct PollSet {
        struct pollfd pfd[POLL_SET_MAX];
        unsigned n;
        uint64_t deadline;      /* CLOCK_MONOTONIC ms; UINT64_MAX: none */
} PollSet;

/* Returns the index, or -1 when full (the caller then skips the fd this round). */
static inline int poll_set_add(PollSet *ps, int fd, short events) {
        if (fd < 0 || ps->n >= POLL_SET_MAX)
                return -1;
        ps->pfd[ps->n] = (struct pollfd) { .fd = fd, .events = events };
        return (int) ps->n++;
}

static inline void poll_set_deadline(PollSet *ps, uint64_t when) {
        if (when < ps->deadline)
                ps->deadline = when;
}

static inline short poll_set_revents(const PollSet *ps, int i) {
        return i >= 0 && (unsigned) i < ps->n ? ps->pfd[i].revents : 0;
}

static inline int poll_set_timeout(const PollSet *ps) {
        return ps->deadline == UINT64_MAX ? -1 : msec_until(ps->deadline);
}
