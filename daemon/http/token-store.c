/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "fd-util.h"
#include "fileio.h"
#include "macro.h"
#include "string-util.h"
#include "token-store.h"

#define TOKEN_FILE_MAX (1024U * 1024U)
#define TOKEN_SECRET_HEX_LEN (TOKEN_SECRET_BYTES * 2U)
#define TOKEN_HASH_HEX_LEN (SHA256_DIGEST_LENGTH * 2U)
/* First line of a version-2 store; a file without it is version 1 (no role
 * and expiry columns) and is rewritten as version 2 on the next change. */
#define TOKEN_STORE_V2_HEADER "# zvm-tokens v2"

static const char *const token_role_names[_TOKEN_ROLE_MAX] = {
        [TOKEN_ROLE_READ_ONLY] = "read-only",
        [TOKEN_ROLE_OPERATOR] = "operator",
        [TOKEN_ROLE_ADMIN] = "admin",
};

const char *token_role_to_string(TokenRole r) {
        return r >= 0 && r < _TOKEN_ROLE_MAX ? token_role_names[r] : NULL;
}

int token_role_from_string(const char *s) {
        for (int i = 0; i < _TOKEN_ROLE_MAX; i++)
                if (streq_ptr(s, token_role_names[i]))
                        return i;
        return -EINVAL;
}

typedef struct Token {
        char id[TOKEN_ID_LEN + 1];
        uint8_t hash[SHA256_DIGEST_LENGTH];
        uint64_t created;
        uint64_t expires;               /* UNIX time; 0: never */
        TokenRole role;
        char *comment;                  /* never NULL */
} Token;

struct TokenStore {
        char *dir;                      /* NULL: current directory */
        char *name;
        Token *tokens;
        size_t n_tokens, n_allocated;
};

static bool is_lower_hex(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!strchr("0123456789abcdef", s[i]) || s[i] == '\0')
                        return false;
        return true;
}

static int hex_value(char c) {
        return c >= 'a' ? c - 'a' + 10 : c - '0';
}

/* s must be 2*n lower-case hex characters (checked by the caller). */
static void unhex_lower(const char *s, uint8_t *out, size_t n) {
        for (size_t i = 0; i < n; i++)
                out[i] = (uint8_t) (hex_value(s[2 * i]) << 4 | hex_value(s[2 * i + 1]));
}

/* What may be stored as a comment: one line of printable, valid UTF-8. */
static bool comment_is_valid(const char *c, size_t l) {
        if (l > TOKEN_COMMENT_MAX)
                return false;
        for (size_t i = 0; i < l; i++)
                if ((unsigned char) c[i] < 0x20 || c[i] == 0x7f)
                        return false;
        return utf8_is_valid_n(c, l);
}

static int secret_hash(const char *secret_hex, uint8_t ret[static SHA256_DIGEST_LENGTH]) {
        unsigned len = 0;

        if (EVP_Digest(secret_hex, TOKEN_SECRET_HEX_LEN, ret, &len, EVP_sha256(), NULL) != 1 ||
            len != SHA256_DIGEST_LENGTH)
                return -EIO;
        return 0;
}

static int random_bytes(void *p, size_t n) {
        uint8_t *b = p;

        while (n > 0) {
                ssize_t k = getrandom(b, n, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                b += k;
                n -= (size_t) k;
        }
        return 0;
}

static Token *token_find(TokenStore *s, const char *id) {
        for (size_t i = 0; i < s->n_tokens; i++)
                if (streq(s->tokens[i].id, id))
                        return &s->tokens[i];
        return NULL;
}

static int tokens_reserve(TokenStore *s, size_t n) {
        Token *t;
        size_t a;

        if (n <= s->n_allocated)
                return 0;
        a = MAX(n, MAX(s->n_allocated * 2, (size_t) 8));
        t = reallocarray(s->tokens, a, sizeof(Token));
        if (!t)
                return -ENOMEM;
        s->tokens = t;
        s->n_allocated = a;
        return 0;
}

/* Takes one space-terminated decimal from *p. */
static int take_u64(const char **p, uint64_t *ret) {
        _cleanup_free_ char *num = NULL;
        size_t l = strcspn(*p, " ");

        num = strndup(*p, l);
        if (!num)
                return -ENOMEM;
        if (safe_atou64(num, ret) < 0)
                return -EBADMSG;
        *p += l;
        if (**p == ' ')
                (*p)++;
        return 0;
}

/* Takes one space-terminated role name from *p. */
static int take_role(const char **p, TokenRole *ret) {
        _cleanup_free_ char *name = NULL;
        size_t l = strcspn(*p, " ");
        int r;

        name = strndup(*p, l);
        if (!name)
                return -ENOMEM;
        r = token_role_from_string(name);
        if (r < 0)
                return -EBADMSG;
        *ret = r;
        *p += l;
        if (**p == ' ')
                (*p)++;
        return 0;
}

/* Parses one non-empty, non-comment line into t (t->comment allocated).
 * Version 1 lines have no role and expiry: they were full-access tokens,
 * so they load as admin tokens that never expire. */
static int token_parse_line(const char *line, bool v2, Token *t) {
        const char *p = line;
        int r;

        /* <id> */
        if (strlen(p) < TOKEN_ID_LEN + 1 || !is_lower_hex(p, TOKEN_ID_LEN) || p[TOKEN_ID_LEN] != ' ')
                return -EBADMSG;
        memcpy(t->id, p, TOKEN_ID_LEN);
        t->id[TOKEN_ID_LEN] = '\0';
        p += TOKEN_ID_LEN + 1;

        /* <sha256-hex> */
        if (strlen(p) < TOKEN_HASH_HEX_LEN + 1 || !is_lower_hex(p, TOKEN_HASH_HEX_LEN) ||
            p[TOKEN_HASH_HEX_LEN] != ' ')
                return -EBADMSG;
        unhex_lower(p, t->hash, SHA256_DIGEST_LENGTH);
        p += TOKEN_HASH_HEX_LEN + 1;

        /* <created> [<role> <expires>] [<comment>] */
        r = take_u64(&p, &t->created);
        if (r < 0)
                return r;
        t->role = TOKEN_ROLE_ADMIN;
        t->expires = 0;
        if (v2) {
                r = take_role(&p, &t->role);
                if (r < 0)
                        return r;
                r = take_u64(&p, &t->expires);
                if (r < 0)
                        return r;
        }
        if (!comment_is_valid(p, strlen(p)))
                return -EBADMSG;

        t->comment = strdup(p);
        if (!t->comment)
                return -ENOMEM;
        return 0;
}

static int token_store_parse(TokenStore *s, char *buf, size_t size) {
        bool v2;
        int r;

        if (strlen(buf) != size)        /* embedded NUL */
                return -EBADMSG;
        v2 = startswith(buf, TOKEN_STORE_V2_HEADER "\n") || streq(buf, TOKEN_STORE_V2_HEADER);

        for (char *line = buf, *next; line && *line; line = next) {
                Token t = {};

                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                if (isempty(line) || line[0] == '#')
                        continue;

                if (s->n_tokens >= TOKEN_STORE_MAX)
                        return -EBADMSG;
                r = token_parse_line(line, v2, &t);
                if (r < 0)
                        return r;
                if (token_find(s, t.id)) {
                        free(t.comment);
                        return -EBADMSG;
                }
                r = tokens_reserve(s, s->n_tokens + 1);
                if (r < 0) {
                        free(t.comment);
                        return r;
                }
                s->tokens[s->n_tokens++] = t;
        }
        return 0;
}

TokenStore *token_store_free(TokenStore *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_tokens; i++)
                free(s->tokens[i].comment);
        free(s->tokens);
        free(s->dir);
        free(s->name);
        return mfree(s);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(TokenStore *, token_store_free);

int token_store_load(const char *path, TokenStore **ret) {
        _cleanup_(token_store_freep) TokenStore *s = NULL;
        _cleanup_free_ char *buf = NULL;
        const char *slash;
        size_t size = 0;
        int r;

        assert_return(!isempty(path), -EINVAL);
        assert_return(ret, -EINVAL);

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;

        slash = strrchr(path, '/');
        if (slash) {
                s->dir = slash == path ? strdup("/") : strndup(path, (size_t) (slash - path));
                s->name = strdup(slash + 1);
                if (!s->dir)
                        return -ENOMEM;
        } else
                s->name = strdup(path);
        if (!s->name)
                return -ENOMEM;
        if (isempty(s->name))
                return -EINVAL;

        r = read_full_file(path, &buf, &size, TOKEN_FILE_MAX);
        if (r == -EFBIG)
                return -EBADMSG;
        if (r < 0 && r != -ENOENT)
                return r;
        if (r >= 0) {
                r = token_store_parse(s, buf, size);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(s);
        return 0;
}

/* Writes the first n tokens, leaving out index skip (SIZE_MAX: none). The
 * caller commits the in-memory change only after this succeeded. */
static int token_store_write(TokenStore *s, size_t n, size_t skip) {
        _cleanup_free_ char *data = NULL;      /* declared before f: f is closed first */
        _cleanup_fclose_ FILE *f = NULL;
        size_t size = 0;

        f = open_memstream(&data, &size);
        if (!f)
                return -ENOMEM;

        fputs(TOKEN_STORE_V2_HEADER "\n"
              "# zvm API tokens: <id> <sha256 of secret> <created> <role> <expires or 0> [<comment>]. Managed by zvmd.\n", f);
        for (size_t i = 0; i < n; i++) {
                const Token *t = &s->tokens[i];
                _cleanup_free_ char *hex = NULL;

                if (i == skip)
                        continue;
                hex = hexencode(t->hash, sizeof(t->hash));
                if (!hex)
                        return -ENOMEM;
                fprintf(f, "%s %s %" PRIu64 " %s %" PRIu64 "%s%s\n", t->id, hex, t->created,
                        token_role_to_string(t->role), t->expires, isempty(t->comment) ? "" : " ", t->comment);
        }
        /* data and size are final only after fclose() */
        if (fclose(TAKE_PTR(f)) != 0)
                return -ENOMEM;

        return write_file_atomic(s->dir, s->name, data, size, 0600);
}

/* A comment comes from an API client: control characters (a newline would
 * forge a line) become spaces, the ends are stripped, and what remains must
 * be valid UTF-8 and short enough. */
static int comment_sanitize(const char *comment, char **ret) {
        _cleanup_free_ char *c = NULL;
        char *stripped;

        c = strdup(strempty(comment));
        if (!c)
                return -ENOMEM;
        for (char *p = c; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = ' ';
        stripped = strstrip(c);
        if (!comment_is_valid(stripped, strlen(stripped)))
                return -EINVAL;

        memmove(c, stripped, strlen(stripped) + 1);
        *ret = TAKE_PTR(c);
        return 0;
}

int token_store_create(TokenStore *s, const char *comment, char **ret_id, char **ret_token) {
        return token_store_create_full(s, comment, TOKEN_ROLE_ADMIN, 0, ret_id, ret_token);
}

int token_store_create_full(TokenStore *s, const char *comment, TokenRole role, uint64_t expires,
                            char **ret_id, char **ret_token) {
        _cleanup_free_ char *c = NULL, *id = NULL, *secret_hex = NULL, *token = NULL;
        uint8_t secret[TOKEN_SECRET_BYTES];
        Token t = {};
        int r;

        assert_return(s, -EINVAL);
        assert_return(role >= 0 && role < _TOKEN_ROLE_MAX, -EINVAL);

        if (s->n_tokens >= TOKEN_STORE_MAX)
                return -ENOSPC;

        r = comment_sanitize(comment, &c);
        if (r < 0)
                return r;

        /* 2^32 ids and at most 1024 tokens: a collision is rare, a few
         * tries make it practically impossible. */
        for (unsigned attempt = 0;; attempt++) {
                uint8_t b[TOKEN_ID_LEN / 2];

                if (attempt >= 16)
                        return -EBUSY;
                r = random_bytes(b, sizeof(b));
                if (r < 0)
                        return r;
                id = mfree(id);
                id = hexencode(b, sizeof(b));
                if (!id)
                        return -ENOMEM;
                if (!token_find(s, id))
                        break;
        }

        r = random_bytes(secret, sizeof(secret));
        if (r < 0)
                return r;
        secret_hex = hexencode(secret, sizeof(secret));
        explicit_bzero(secret, sizeof(secret));
        if (!secret_hex)
                return -ENOMEM;

        r = secret_hash(secret_hex, t.hash);
        if (r >= 0) {
                token = strjoin(TOKEN_PREFIX, id, ".", secret_hex);
                if (!token)
                        r = -ENOMEM;
        }
        explicit_bzero(secret_hex, strlen(secret_hex));
        if (r < 0)
                return r;

        r = tokens_reserve(s, s->n_tokens + 1);
        if (r < 0)
                return r;

        memcpy(t.id, id, sizeof(t.id));
        t.created = (uint64_t) time(NULL);
        t.role = role;
        t.expires = expires;
        t.comment = c;
        s->tokens[s->n_tokens] = t;             /* not counted until persisted */

        r = token_store_write(s, s->n_tokens + 1, SIZE_MAX);
        if (r < 0)
                return r;                       /* c is freed by its cleanup */

        TAKE_PTR(c);
        s->n_tokens++;

        if (ret_id)
                *ret_id = TAKE_PTR(id);
        if (ret_token)
                *ret_token = TAKE_PTR(token);
        else
                explicit_bzero(token, strlen(token));
        return 0;
}

int token_store_delete(TokenStore *s, const char *id) {
        Token *t;
        size_t i;
        int r;

        assert_return(s, -EINVAL);
        assert_return(id, -EINVAL);

        t = token_find(s, id);
        if (!t)
                return -ENOENT;
        i = (size_t) (t - s->tokens);

        r = token_store_write(s, s->n_tokens, i);
        if (r < 0)
                return r;

        free(t->comment);
        memmove(t, t + 1, (s->n_tokens - i - 1) * sizeof(Token));
        s->n_tokens--;
        return 0;
}

int token_store_check(TokenStore *s, const char *bearer, uint64_t now) {
        char id[TOKEN_ID_LEN + 1];
        uint8_t hash[SHA256_DIGEST_LENGTH];
        const char *p;
        Token *t;

        if (!s || !bearer)
                return -EACCES;

        p = startswith(bearer, TOKEN_PREFIX);
        if (!p)
                return -EACCES;
        if (strlen(p) != TOKEN_ID_LEN + 1 + TOKEN_SECRET_HEX_LEN ||
            !is_lower_hex(p, TOKEN_ID_LEN) || p[TOKEN_ID_LEN] != '.' ||
            !is_lower_hex(p + TOKEN_ID_LEN + 1, TOKEN_SECRET_HEX_LEN))
                return -EACCES;

        memcpy(id, p, TOKEN_ID_LEN);
        id[TOKEN_ID_LEN] = '\0';
        t = token_find(s, id);
        if (!t)
                return -EACCES;         /* ids are not secret: they are listed by the API */

        if (secret_hash(p + TOKEN_ID_LEN + 1, hash) < 0)
                return -EACCES;
        if (CRYPTO_memcmp(hash, t->hash, sizeof(hash)) != 0)
                return -EACCES;
        /* Only after the secret matched: an expired id is no oracle. */
        if (t->expires != 0 && now >= t->expires)
                return -EKEYEXPIRED;
        return (int) t->role;
}

bool token_store_verify(TokenStore *s, const char *bearer) {
        return token_store_check(s, bearer, (uint64_t) time(NULL)) >= 0;
}

static json_object *token_to_json(const Token *t) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        if (json_object_object_add(o, "id", json_object_new_string(t->id)) < 0 ||
            json_object_object_add(o, "comment", json_object_new_string(t->comment)) < 0 ||
            json_object_object_add(o, "created", json_object_new_int64((int64_t) MIN(t->created, (uint64_t) INT64_MAX))) < 0 ||
            json_object_object_add(o, "role", json_object_new_string(token_role_to_string(t->role))) < 0 ||
            json_object_object_add(o, "expires",
                                   t->expires == 0 ? NULL :
                                   json_object_new_int64((int64_t) MIN(t->expires, (uint64_t) INT64_MAX))) < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

int token_store_to_json(TokenStore *s, json_object **ret) {
        json_object *a;

        assert_return(s, -EINVAL);
        assert_return(ret, -EINVAL);

        a = json_object_new_array();
        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_tokens; i++) {
                json_object *o = token_to_json(&s->tokens[i]);

                if (!o || json_object_array_add(a, o) < 0) {
                        json_object_put(o);
                        json_object_put(a);
                        return -ENOMEM;
                }
        }
        *ret = a;
        return 0;
}

int token_store_get_json(TokenStore *s, const char *id, json_object **ret) {
        Token *t;
        json_object *o;

        assert_return(s, -EINVAL);
        assert_return(id, -EINVAL);
        assert_return(ret, -EINVAL);

        t = token_find(s, id);
        if (!t)
                return -ENOENT;
        o = token_to_json(t);
        if (!o)
                return -ENOMEM;
        *ret = o;
        return 0;
}

unsigned token_store_size(TokenStore *s) {
        return s ? (unsigned) s->n_tokens : 0;
}

int token_store_auth(const char *bearer, void *userdata) {
        return token_store_check(userdata, bearer, (uint64_t) time(NULL));
}
