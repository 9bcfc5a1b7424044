/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * zvm's HTTP client: one libcurl request to zvmd, over its unix socket or
 * its TCP listener (cli->url, with a bearer token). Connecting is bounded by
 * CLI_CONNECT_TIMEOUT_SEC, the whole request by cli->timeout_sec, the answer
 * by CLI_RESPONSE_MAX.
 *
 * These are program code: they log what went wrong (zvmd's own message for
 * API errors) and return an errno that cli_exit_from_errno() turns into the
 * exit status: -EHOSTUNREACH/-ETIMEDOUT when zvmd cannot be reached or does
 * not answer, cli_errno_from_http_status() for error statuses.
 */

#include <curl/curl.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zvm.h"

/* Sends method to ZVM_API_PREFIX + path ("/vms/web/start"; the caller
 * escapes it) with body as JSON (NULL: none). On 2xx, *ret_body (optional)
 * gets the answer, NUL-terminated, and *ret_size its length. */
int cli_http_request(const Cli *cli, const char *method, const char *path, json_object *body,
                     char **ret_body, size_t *ret_size);

/* Same with a raw body (data may be NULL: no body) of the given type. */
int cli_http_request_data(const Cli *cli, const char *method, const char *path, const char *data, size_t data_size,
                          const char *content_type, char **ret_body, size_t *ret_size);

/* PUTs size bytes read from fd as the body (application/octet-stream),
 * without the overall request deadline but given up after
 * CLI_UPLOAD_STALL_SEC without progress; with progress, a percentage line
 * on stderr. *ret (optional): the JSON answer. */
int cli_http_upload(const Cli *cli, const char *path, int fd, uint64_t size, const char *label, bool progress,
                    json_object **ret);

/* Same, and parses the answer as JSON into *ret (optional). An answer that
 * is not JSON is -EBADMSG. */
int cli_http_call(const Cli *cli, const char *method, const char *path, json_object *body,
                  json_object **ret);

/* For requests that are not zvmd's REST API (the OpenAI-compatible routes
 * at the root, "/v1/chat/completions"): the URL of path on the unix socket
 * or --url, without the "/api/v1" prefix. New string, NULL on OOM. */
char *cli_http_url_root(const Cli *cli, const char *path);

/* Sets up curl for url as every zvm request is: the unix socket or --url,
 * bounded connect time, http(s) only, no signals, the token, Accept (the
 * media type accept) and Content-Type (content_type, or none);
 * expect_continue (uploads) waits for zvmd's go before sending the body.
 * *ret_headers gets the header list, which must outlive the transfer.
 * errbuf (CURL_ERROR_SIZE) gets libcurl's message. Logs, returns -errno. */
int cli_http_setup(const Cli *cli, CURL *curl, const char *url, const char *content_type, const char *accept,
                   bool expect_continue, char *errbuf, struct curl_slist **ret_headers);

/* Logs a failed transfer as a message about reaching the endpoint and
 * returns the errno for it (-EHOSTUNREACH, -ETIMEDOUT, -EFBIG, ...). */
int cli_http_log_transport_error(const Cli *cli, CURL *curl, CURLcode code, const char *errbuf, bool too_large);
