/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The work behind zvm's verbs: build the request path, call zvmd, print
 * the answer (zvmd's JSON with --json, else a cli-output.c renderer).
 * Program code: errors are logged here and returned as -errno.
 */

#include <json-c/json.h>
#include <signal.h>
#include <stdint.h>

#include "zvm.h"

/* A cli-output.c renderer: JSON → text. */
typedef int (*CliRender)(json_object *o, char **ret);

/* "/vms/<id><suffix>". id is a VM name or VMID; anything else is a usage
 * error (-EINVAL, logged), so that it always is one safe path segment. */
int cli_vm_path(const char *id, const char *suffix, char **ret);

/* GET /vms/ID: the VM's config and state into *ret. */
int cli_vm_get(const Cli *cli, const char *id, json_object **ret);

/* Prints o: pretty JSON with --json, else render's text (nothing if render
 * is NULL). */
int cli_print(const Cli *cli, json_object *o, CliRender render);

/* Sends the request (body may be NULL) and prints the answer. */
int cli_call_print(const Cli *cli, const char *method, const char *path, json_object *body, CliRender render);

/* cli_call_print() on /vms/<id><suffix>; zvmd's errors name the VM as id. */
int cli_vm_call_print(Cli *cli, const char *method, const char *id, const char *suffix,
                      json_object *body, CliRender render);

typedef struct CliLogs {
        uint64_t tail_lines;    /* with have_tail_lines: the last N lines (within zvmd's 1 MiB) */
        bool have_tail_lines;
        uint64_t tail_bytes;    /* else the last N bytes (0: all zvmd sends) */
        bool follow;            /* then poll for more until the VM is deleted */
} CliLogs;

/* GET /vms/<id>/console/log and write it to stdout, without terminal
 * control sequences when stdout is a terminal (cli-logs.c). */
int cli_vm_logs(Cli *cli, const char *id, const CliLogs *o);

/* <run>/vms/<vmid>/<name> of a running VM (asks zvmd), and its CID. */
int cli_vm_runtime_path(const Cli *cli, const char *id, const char *name, char **ret, uint32_t *ret_cid);

/* Waits (bounded, polling its status) until the VM runs and its agent
 * said READY, as ssh and exec need; says once on stderr that it waits.
 * An unresponsive agent (it failed a health check) is not waited for.
 * -EBUSY for a VM that is down or has no agent, -ETIMEDOUT after wait_s.
 * *ret_name (optional): the VM's name. */
#define CLI_AGENT_WAIT_DEFAULT_S 120U
int cli_vm_wait_agent(const Cli *cli, const char *id, unsigned wait_s, char **ret_name);

/* Attaches the terminal to the VM's serial console (cli-console.c). */
int cli_console_attach(const Cli *cli, const char *id);
/* Blocks SIGINT, SIGTERM, SIGHUP, SIGQUIT (and extra, if > 0) and returns a
 * signalfd for them, so that a terminal in raw mode is restored on every
 * way out; the old mask in *ret_old (restored on failure). */
int cli_terminal_signals(int extra, sigset_t *ret_old);

/* POST /tokens; prints the secret (zvmd shows it only this once). */
/* role NULL: zvmd's default (read-only); expires 0: never. */
int cli_token_create(const Cli *cli, const char *comment, const char *role, uint64_t expires);

/* DELETE /tokens/<id>, id URL-escaped. */
int cli_token_delete(const Cli *cli, const char *id);

/* ---- request bodies; these log what is wrong with the user's input ------------ */

/* Adds key → value (NULL value: out of memory); a key given twice is a
 * usage error. */
int cli_body_put(json_object *body, const char *key, json_object *value);

/* Puts keys (authorized_keys text) as the percent-encoded "sshkeys". */
int cli_body_put_sshkeys(json_object *body, const char *keys);

/* key → null: "unset" in a PATCH. */
int cli_body_put_null(json_object *body, const char *key);

/* "key=value" → key → "value" (config values are strings on the wire). */
int cli_body_put_assignment(json_object *body, const char *assignment);

/* A size in MiB ("512", "512M", "1G") given to option, as an integer. */
int cli_body_put_mib(json_object *body, const char *key, const char *option, const char *arg);

/* An integer in [min, max] given to option. */
int cli_body_put_uint(json_object *body, const char *key, const char *option, const char *arg,
                      uint32_t min, uint32_t max);
