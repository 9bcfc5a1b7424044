/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Unix stream sockets by path. All functions return >= 0 or -errno; fds
 * are O_CLOEXEC. */

#include <stdbool.h>
#include <sys/types.h>

/* Binds and listens on path, replacing whatever socket was there (a stale
 * one of a process that died: the caller knows it owns the path), with the
 * given mode. -ENAMETOOLONG if path does not fit a socket address. */
int socket_listen_unix(const char *path, mode_t mode, int backlog, int *ret_fd);

/* Connects to path. With nonblock the socket is non-blocking, and a
 * listener whose backlog is full yields -EAGAIN instead of waiting. */
int socket_connect_unix(const char *path, bool nonblock, int *ret_fd);
