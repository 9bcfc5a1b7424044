/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Pure helpers of zvm: argument parsing and the mapping from errors to exit
 * statuses. No I/O, no logging; unit-tested in test-cli-output.c. */

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

/* zvm's exit statuses. Scripts rely on them: never renumber. */
typedef enum CliExit {
        CLI_EXIT_SUCCESS     = 0,
        CLI_EXIT_FAILURE     = 1,       /* anything else */
        CLI_EXIT_USAGE       = 2,       /* bad arguments, or 400 from zvmd */
        CLI_EXIT_NOT_FOUND   = 3,       /* 404: no such VM/token */
        CLI_EXIT_CONFLICT    = 4,       /* 409: name taken, VM in the wrong state */
        CLI_EXIT_UNREACHABLE = 5,       /* zvmd did not answer (socket, timeout) */
} CliExit;

/* The errno a zvmd HTTP status stands for inside zvm: 0 for 2xx, -EINVAL
 * for 400, -ENOENT for 404, -EBUSY for 409, ... Only the values that
 * cli_exit_from_errno() maps to a specific status matter for scripts. */
int cli_errno_from_http_status(long status);

/* Maps a verb's result (>= 0 or -errno) to an exit status. Transport
 * failures are reported as -EHOSTUNREACH or -ETIMEDOUT. */
CliExit cli_exit_from_errno(int r);

/* Parses a memory size in MiB: a bare number is MiB ("512"), a suffix
 * K/M/G/T (lib/parse_size, powers of 1024) gives bytes that must be a whole
 * number of MiB ("1G" → 1024, "1536K" is -EINVAL). -ERANGE above 2^32 MiB. */
int cli_parse_mib(const char *s, uint64_t *ret);

/* Config keys as zvmd names them: [a-z][a-z0-9_]{0,62}. */
bool cli_config_key_is_valid(const char *key);

/* Splits "key=value" (value may be empty, and may contain '='). *ret_key is
 * a new string, *ret_value points into s. -EINVAL if there is no '=' or the
 * key is not a valid config key. */
int cli_parse_assignment(const char *s, char **ret_key, const char **ret_value);

/* Adds key → value to a PATCH/POST body. Always takes ownership of value
 * (NULL means JSON null, i.e. "unset"). -EEXIST if the key is already set:
 * giving one key twice is a user error, not "last one wins". */
int cli_body_add(json_object *body, const char *key, json_object *value);

/* Sleeps ms milliseconds (the bounded polling loops of ssh and template
 * build). */
void cli_sleep_ms(unsigned ms);

/* The VMs of a GET /vms answer in state state (NULL: any) that carry tag
 * tag (NULL: any), as a new array sharing the elements. */
int cli_vm_list_filter(json_object *vms, const char *state, const char *tag, json_object **ret);
