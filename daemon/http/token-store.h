/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Bearer tokens for zvmd's TCP listener, stored hashed.
 *
 * File format (<etc>/tokens.conf, mode 0600): the first line is
 * "# zvm-tokens v2", then one token per line:
 *
 *         <id> <sha256-hex> <created-unix> <role> <expires-unix or 0> [<comment>]
 *
 * role is "read-only", "operator" or "admin" (what each may do is rest/'s
 * business, see daemon/rest/access.c). A file without the header line is a
 * version-1 store, "<id> <sha256-hex> <created-unix> [<comment>]": its
 * tokens had full access, so they load as admin tokens that never expire,
 * and the next change rewrites the file as version 2.
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
#include <stdint.h>

#include <errno.h>

#include <json-c/json.h>

#define TOKEN_STORE_MAX 1024U
#define TOKEN_COMMENT_MAX 256U
#define TOKEN_ID_LEN 8U
#define TOKEN_SECRET_BYTES 32U
#define TOKEN_PREFIX "zvm-"

typedef struct TokenStore TokenStore;

typedef enum TokenRole {
        TOKEN_ROLE_READ_ONLY,
        TOKEN_ROLE_OPERATOR,
        TOKEN_ROLE_ADMIN,
        _TOKEN_ROLE_MAX,
        _TOKEN_ROLE_INVALID = -EINVAL,
} TokenRole;

const char *token_role_to_string(TokenRole r);
int token_role_from_string(const char *s);

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
int token_store_create_full(TokenStore *s, const char *comment, TokenRole role, uint64_t expires,
                            char **ret_id, char **ret_token);
/* An admin token that never expires. */
int token_store_create(TokenStore *s, const char *comment, char **ret_id, char **ret_token);

/* Removes a token and persists; -ENOENT if there is no such id. */
int token_store_delete(TokenStore *s, const char *id);

/* The role of bearer, a complete "zvm-<id>.<secret>" of a stored token, at
 * UNIX time now. The hash comparison is constant-time. NULL, malformed,
 * unknown or wrong secret → -EACCES; right secret but expired (now >=
 * expires) → -EKEYEXPIRED. */
int token_store_check(TokenStore *s, const char *bearer, uint64_t now);
/* token_store_check() >= 0 at the current time. */
bool token_store_verify(TokenStore *s, const char *bearer);

/* [{"id": …, "comment": …, "created": …, "role": …, "expires": … or null}, …]
 * in creation order; never hashes or secrets. */
int token_store_to_json(TokenStore *s, json_object **ret);

/* Same for one token (e.g. the response to a delete); -ENOENT. */
int token_store_get_json(TokenStore *s, const char *id, json_object **ret);

unsigned token_store_size(TokenStore *s);

/* token_store_check() at the current time with the http_auth_fn signature,
 * so that the store plugs into the TCP listener directly (the role becomes
 * the request's grant, http_request_grant()). */
int token_store_auth(const char *bearer, void *userdata);
