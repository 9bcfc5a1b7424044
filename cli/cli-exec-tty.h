/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>

#include "zvm.h"

/* zvm exec -it: runs request ({"op":"pty","argv":…,"env":…}; rows and
 * cols are added) on a terminal in the guest, through the agent, with
 * this terminal raw meanwhile. Sets cli->exit_status to the command's
 * (127: no such command). The VM's agent must be up (cli_vm_wait_agent). */
int cli_exec_tty(Cli *cli, const char *name, json_object *request);
