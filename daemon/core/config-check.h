/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What a config can only be checked against on this host: the storage and
 * network policy for the caller (pure/policy.h, and here the resolution of
 * paths in storage with openat2), that the files it names exist and are of
 * the right kind, and that its template exists. The schema
 * (daemon/pure/vm-config.c) checks the text; this checks the host, at the
 * time a request sets a key (so that `config set disk0=/nonexistent.img` is
 * refused then and not at the next start) and again at a start. A leaf of
 * core/: it knows Paths, the policy and the typed config, nothing above.
 *
 * root: the caller is uid 0 on the unix socket (or zvmd itself); everyone
 * else, group zvm and every TCP token, is held to the policy.
 */

#include <stdbool.h>

#include <json-c/json.h>

#include "paths.h"
#include "policy.h"
#include "vm-config.h"

/* Opens key's path as the policy allows this caller: beneath its storage
 * with openat2 (no symlink, no escape), or as is (root's, or a
 * declared raw path). The fd QEMU should be handed once it no longer opens
 * paths itself (issue 10 item 1). -EACCES with the rule, or the open's
 * -errno, with a message naming key and path. */
int config_open_path(const Policy *pol, const char *key, const char *path, bool root, int flags, int *ret_fd,
                     char **ret_error);

/* Checks the keys of c that keys (a POST/PATCH body) sets, or every key
 * (keys NULL, as at a start): the policy (-EACCES), then the host (rootfs,
 * diskN, kernel, initrd; model names a store model and rest/ checks it).
 * Keys the body leaves alone are not looked at, so a file that went away
 * does not block an unrelated change. -EACCES, -ENOENT, -EISDIR, -EINVAL
 * or -ELOOP with a message and the key. */
int config_check_host(const Paths *p, const Policy *pol, const VmConfig *c, json_object *keys, bool root,
                      char **ret_error, char **ret_key);
