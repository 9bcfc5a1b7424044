/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The ssh public keys zvm gives a VM (its "sshkeys" config), and the key
 * pair zvm makes for a user who has none, as Lima and Multipass do:
 * $XDG_DATA_HOME/zvm/ssh/id_ed25519 (default ~/.local/share/zvm/ssh/),
 * made once with ssh-keygen, used by "zvm ssh" with -i.
 *
 * Program code: these log what went wrong and return -errno.
 */

#include <stdbool.h>

/* Appends the public keys of file to *text. A line that is not a valid key
 * is an error when the user named the file (explicit), and skipped with a
 * notice when the file is one taken by default. */
int cli_sshkeys_add_file(const char *file, bool explicit, char **text);

/* The default keys of a new VM: every ~/.ssh/ *.pub; if there is none, the
 * public half of zvm's own key, made now if needed (which is said once, on
 * stderr). *text is left as is when HOME is unset. */
int cli_sshkeys_add_default(char **text);

/* Path of zvm's own private key (it may not exist). */
int cli_sshkeys_own_path(char **ret);

/* The file to name when a VM lacks a key: the first ~/.ssh/ *.pub, else
 * zvm's own public key, made now if needed. */
int cli_sshkeys_default_file(char **ret);
