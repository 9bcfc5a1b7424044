/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * zvmd's REST API over the core (daemon/core/): the route table, one file
 * per resource, request parsing, error mapping and Operations. Only zvmd.c
 * calls in here.
 */

#include "macro.h"

#include "rest-object.h"

/* Loads the token store and subscribes to the manager's events. */
int rest_new(Manager *m, Rest **ret);
/* Ends every stream and pending request; free before the manager. */
Rest *rest_free(Rest *rest);
DEFINE_TRIVIAL_CLEANUP_FUNC(Rest *, rest_free);

/* The unix socket (mode 0660, group zvm) and, with tcp_address, the
 * token-guarded TCP listener. */
int rest_listen(Rest *rest, const char *tcp_address);

/* The route table, for the openapi consistency test (zvmd --dump-routes). */
void rest_dump_routes(void);
