/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The host's bounds on what a guest agent may send (agent-protocol.md,
 * "Limits"). A guest is hostile: each answer has a size cap chosen by the
 * operation that asked for it, enforced while reading; its JSON is
 * pre-scanned for depth and value count before json-c sees it
 * (lib/json-util.h); the secret in READY must be the VM's own.
 */

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

/* Nesting depth and value count of any one agent line: the deepest answer
 * (info, READY) nests 3 levels and holds a few dozen values. */
#define AGENT_JSON_DEPTH_MAX 8U
#define AGENT_JSON_VALUES_MAX 1024U

/* Answers with no bulk data: auth, ping, info, shutdown, reboot,
 * set-authorized-keys, set-hostname, file-write, errors. */
#define AGENT_ANSWER_SMALL_MAX (64U * 1024U)
/* READY: version, timings and up to 8 host keys. */
#define AGENT_READY_LINE_MAX (64U * 1024U)

/* The agent's own limits on bulk data (agent-protocol.md). */
#define AGENT_EXEC_OUTPUT_DEFAULT (1024U * 1024U)
#define AGENT_EXEC_OUTPUT_MAX (8U * 1024U * 1024U)
#define AGENT_FILE_READ_MAX (8U * 1024U * 1024U)

/* The longest answer line (without its newline) the request may get: the
 * small cap, plus the base64 of the bulk data the request asked for
 * (exec: two streams of max_output; file-read: max_bytes), each clamped
 * to what the agent would send at most. */
size_t agent_answer_max(json_object *request);

/* Whether a READY's secret is the VM's: never when either is NULL or empty
 * (a VM without a secret matches nothing), never for different lengths;
 * equal lengths are compared in constant time. */
bool agent_secret_equal(const char *expected, const char *given);

/* An agent's line (answer or READY), bounded by AGENT_JSON_DEPTH_MAX and
 * AGENT_JSON_VALUES_MAX (lib/json-util.h) before json-c builds it. NULL
 * unless it is a JSON object. */
json_object *agent_line_parse(const char *line, size_t len);

/* One answer line (auth or request): 1 and the answer object in *ret when
 * "ok" is true; 0 when it is false, *ret holding the error object, with
 * *ret_code and *ret_message pointing into it, or at "EPROTO" and a generic
 * text when the guest sent no string for them; -EBADMSG for a line that is
 * not a bounded JSON object with an "ok" member (nothing set). *ret_code
 * and *ret_message are set for 0 only. */
int agent_answer_parse(const char *line, size_t len, json_object **ret, const char **ret_code,
                       const char **ret_message);

/* A READY line: 0 and in *ret_info the object without "op" and "secret"
 * (what the VM's agent info shows) when it is a bounded JSON object with
 * "op":"ready" and a string "secret" equal to the VM's (agent_secret_equal);
 * -EBADMSG for anything else (nothing set). */
int agent_ready_parse(const char *line, size_t len, const char *secret, json_object **ret_info);
