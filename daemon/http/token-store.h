/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Bearer tokens for zvmd's TCP listener, stored hashed.
 *
 * File format (<etc>/tokens.conf, mode 0600), one token per line:
 *
 *         <id> <sha256-hex> <created-unix> [<comment>]
 *
 * id is 8 lower-case hex characters, sha256-hex the 64 lower-case hex
 * characters of SHA-256 over the secret's text (the 64 hex characters after
 * the '.'), created a decimal UNIX time, comment the rest of the line (single
 * line, printable, valid UTF-8, at most TOKEN_COMMENT_MAX bytes). Empty lines
 * and lines starting with '#' are ignored (and dropped on the next write).
 *
 * A token is shown to the user once, as "zvm-<id>.<secret>" where secret is
 * 32 random bytes (getrandom()) in lower-case hex. Only its hash is kept, so
 * a leaked tokens.conf does not leak usable tokens.
 *
 * Every change is written atomically (write_file_atomic(), 0600) before the
 * call returns; on a write error the in-memory store is unchanged.
 * Never logs.
 */

#include <stdbool.h>

#include <json-c/json.h>

#define TOKEN_STORE_MAX 1024U
#define TOKEN_COMMENT_MAX 256U
#define TOKEN_ID_LEN 8U
#define TOKEN_SECRET_BYTES 32U
#define TOKEN_PREFIX "zvm-"

typedef struct TokenStore TokenStore;

/* Loads path; a missing file is an empty store (created on the first
 * change). A malformed line, a duplicate id, more than TOKEN_STORE_MAX
 * tokens or a file over 1 MiB → -EBADMSG. */
int token_store_load(const char *path, TokenStore **ret);
TokenStore *token_store_free(TokenStore *s);

/* Creates a token. comment may be NULL; control characters (newlines,
 * tabs, …) become spaces, surrounding whitespace is stripped, and it must be
 * valid UTF-8 of at most TOKEN_COMMENT_MAX bytes (else -EINVAL). At
 * TOKEN_STORE_MAX tokens → -ENOSPC. Persists before returning. *ret_id is the
 * id, *ret_token the full "zvm-<id>.<secret>" (both malloc'd; the secret is
 * not kept anywhere else). */
int token_store_create(TokenStore *s, const char *comment, char **ret_id, char **ret_token);

/* Removes a token and persists; -ENOENT if there is no such id. */
int token_store_delete(TokenStore *s, const char *id);

/* Whether bearer is a complete "zvm-<id>.<secret>" of a stored token. The
 * hash comparison is constant-time. NULL or malformed → false. */
bool token_store_verify(TokenStore *s, const char *bearer);

/* [{"id": …, "comment": …, "created": …}, …] in creation order; never hashes
 * or secrets. */
int token_store_to_json(TokenStore *s, json_object **ret);

/* Same for one token (e.g. the response to a delete); -ENOENT. */
int token_store_get_json(TokenStore *s, const char *id, json_object **ret);

unsigned token_store_size(TokenStore *s);

/* token_store_verify() with the http_auth_fn signature, so that the store
 * plugs into the TCP listener directly:
 *         http_server_listen_tcp(server, address, token_store_auth, store); */
bool token_store_auth(const char *bearer, void *userdata);
