/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * zvm's human output: pure functions from zvmd's JSON (api/openapi.yaml) to
 * text. Nothing here does I/O; each renderer returns a new string (ending in
 * a newline unless empty) so that tests compare it byte for byte.
 *
 * Values from the daemon are untrusted text: control characters are shown
 * as '?' so that a VM name or token comment cannot drive the terminal.
 */

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli-format.h"
#include "macro.h"

/* ---- tables ---------------------------------------------------------------- */

typedef struct CliTable CliTable;

/* A table with ncols columns; header may be NULL (no header line). Columns
 * whose header starts with '>' are right-aligned (the '>' is not shown). */
CliTable *cli_table_new(size_t ncols, const char *const *header);
CliTable *cli_table_free(CliTable *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(CliTable *, cli_table_free);
#define _cleanup_table_ _cleanup_(cli_table_freep)

/* Appends one cell; rows fill left to right. NULL is shown as "-". */
int cli_table_add(CliTable *t, const char *cell);

/* Columns separated by sep, padded to the widest cell, no trailing blanks;
 * the key/value blocks use one space. */
int cli_table_format_sep(const CliTable *t, const char *sep, char **ret);

/* Columns separated by two spaces, padded to the widest cell (counted in
 * UTF-8 code points), no trailing blanks. An incomplete last row is -EINVAL. */
int cli_table_format(const CliTable *t, char **ret);

/* ---- renderers for the API's objects ---------------------------------------- */

/* Pretty JSON, two-space indent, with a final newline (--json). Floats are
 * plain decimals (cli_json_tidy_numbers(), which changes o's serializers),
 * empty arrays and objects "[]" and "{}". */
int cli_output_json(json_object *o, char **ret);

/* The "vmid" of a Vm alone: what "zvm create" prints. */
int cli_output_vmid(json_object *vm, char **ret);

/* The "secret" of a new Token alone: what "zvm token create" prints. */
int cli_output_token_secret(json_object *token, char **ret);

/* GET /vms: VMID NAME STATE CID MEMORY CORES UPTIME (CORES 1 when the
 * config leaves it at its default); MEMORY and CORES of a running VM are
 * those it runs with (status.memory_mib, status.running), not pending ones. */
int cli_output_vm_list(json_object *vms, char **ret);

/* GET /vms/{id}: summary lines, then the config indented under "config:". */
int cli_output_vm_show(json_object *vm, char **ret);

/* GET /vms/{id}/status: aligned "key: value" lines (state, pid, uptime, cpu,
 * rss, cid, memory, balloon target/actual, accel, agent, exit info), then
 * blocks: QEMU's last output lines of a crash (without its command line)
 * and the agent's "boot" object, nested objects indented. */
int cli_output_vm_status(json_object *status, char **ret);

/* "config" of a Vm as "key: value" lines, in the daemon's order, like the
 * .conf file. */
int cli_output_vm_config(json_object *vm, char **ret);

/* "key: needs restart" for each key in "pending_restart" of a Vm; "" if
 * there is none. */
int cli_output_pending_restart(json_object *vm, char **ret);

/* GET /vms/{id}/pending: KEY VALUE PENDING, one row per config key;
 * PENDING is empty unless the key changes at the next start, "(unset)"
 * for a key removed since the start (cli-pending.c). */
int cli_output_vm_pending(json_object *entries, char **ret);

/* GET /host: aligned "key: value" lines. */
int cli_output_host(json_object *host, char **ret);

/* GET /tokens: ID CREATED COMMENT. */
int cli_output_token_list(json_object *tokens, char **ret);

/* GET /templates: NAME PROFILE STATE SIZE DISK CREATED USED BY. */
int cli_output_template_list(json_object *templates, char **ret);

/* A parameter count: "140K", "494M", "1.5B". */
char *cli_format_params(char *buf, size_t l, uint64_t n);
/* GET /models: NAME STATE ARCH PARAMS QUANT CONTEXT SIZE SHA256 (12) VMS. */
int cli_output_model_list(json_object *models, char **ret);
/* GET /models/NAME: aligned "key: value" lines. */
int cli_output_model_show(json_object *model, char **ret);
