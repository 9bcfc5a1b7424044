/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What a config can only be checked against on this host: that the files it
 * names exist and are of the right kind, and that its template exists. The
 * schema (daemon/pure/vm-config.c) checks the text; this checks the host, at
 * the time a request sets a key, so that `config set disk0=/nonexistent.img`
 * is refused then and not at the next start. A leaf of core/: it knows
 * Paths and the typed config, nothing above.
 */

#include <json-c/json.h>

#include "paths.h"
#include "vm-config.h"

/* Checks the keys of c that body sets (rootfs, diskN, kernel, initrd,
 * model); keys body leaves alone are not looked at, so a file that went
 * away does not block an unrelated change. -ENOENT, -EISDIR or -EINVAL
 * with a message and the key. */
int config_check_host(const Paths *p, const VmConfig *c, json_object *body, char **ret_error, char **ret_key);
