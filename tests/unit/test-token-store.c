/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <ftw.h>
#include <sys/stat.h>

#include "fd-util.h"
#include "fileio.h"
#include "string-util.h"
#include "tap.h"
#include "token-store.h"

static char tmpdir[] = "/tmp/test-token-store.XXXXXX";

static char *tmp_path(const char *name) {
        char *p = strjoin(tmpdir, "/", name);
        assert_se(p);
        return p;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void write_tokens(const char *name, const char *content) {
        assert_se(write_file_atomic(tmpdir, name, content, strlen(content), 0600) >= 0);
}

static const char *json_get_string(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static void test_round_trip(void) {
        _cleanup_free_ char *path = tmp_path("tokens.conf"), *id1 = NULL, *tok1 = NULL, *id2 = NULL, *tok2 = NULL;
        _cleanup_free_ char *content = NULL;
        TokenStore *s = NULL, *t = NULL;
        json_object *j = NULL;
        struct stat st;
        json_object *v;

        is_int(token_store_load(path, &s), 0, "missing file loads as an empty store");
        is_int(token_store_size(s), 0, "  empty");
        ok(stat(path, &st) < 0 && errno == ENOENT, "  and is not created by loading");
        ok(!token_store_verify(s, "zvm-00000000.0000000000000000000000000000000000000000000000000000000000000000"),
           "  verifies nothing");

        is_int(token_store_create(s, "ci runner", &id1, &tok1), 0, "create token 1");
        is_int(strlen(id1), TOKEN_ID_LEN, "  id has %u characters", TOKEN_ID_LEN);
        ok(startswith(tok1, "zvm-") && strneq(tok1 + 4, id1, TOKEN_ID_LEN) && tok1[4 + TOKEN_ID_LEN] == '.',
           "  token is zvm-<id>.<secret>: %s", tok1);
        is_int(strlen(tok1), 4 + TOKEN_ID_LEN + 1 + 64, "  secret is 64 hex characters");
        ok(token_store_verify(s, tok1), "  verifies");

        is_int(token_store_create(s, "  two\nlines\tand\x01" "ctl  ", &id2, &tok2), 0, "create token 2 with a messy comment");
        ok(!streq(id1, id2) && !streq(tok1, tok2), "  different id and secret");

        ok(stat(path, &st) == 0, "file exists");
        is_int(st.st_mode & 07777, 0600, "  mode 0600");
        assert_se(read_full_file(path, &content, NULL, 0) >= 0);
        ok(!strstr(content, tok1 + 4 + TOKEN_ID_LEN + 1) && !strstr(content, tok2 + 4 + TOKEN_ID_LEN + 1),
           "  secrets are not in the file");
        ok(strstr(content, " two lines and ctl\n"), "  comment sanitised onto one line");

        /* Reload */
        is_int(token_store_load(path, &t), 0, "reload");
        is_int(token_store_size(t), 2, "  two tokens");
        ok(token_store_verify(t, tok1) && token_store_verify(t, tok2), "  both verify after reload");

        is_int(token_store_to_json(t, &j), 0, "to_json");
        is_int(json_object_array_length(j), 2, "  two entries");
        is_str(json_get_string(json_object_array_get_idx(j, 0), "id"), id1, "  first id");
        is_str(json_get_string(json_object_array_get_idx(j, 0), "comment"), "ci runner", "  first comment");
        is_str(json_get_string(json_object_array_get_idx(j, 1), "comment"), "two lines and ctl", "  second comment");
        ok(json_object_get_int64(json_object_object_get(json_object_array_get_idx(j, 0), "created")) > 1600000000,
           "  created is a UNIX time");
        ok(!strstr(json_object_to_json_string(j), tok1 + 4 + TOKEN_ID_LEN + 1), "  no secret in JSON");
        is_int(json_object_object_length(json_object_array_get_idx(j, 0)), 5, "  only id, comment, created, role, expires");
        is_str(json_get_string(json_object_array_get_idx(j, 0), "role"), "admin", "  token_store_create() makes admin tokens");
        ok(json_object_object_get_ex(json_object_array_get_idx(j, 0), "expires", &v) && !v, "  that never expire (null)");
        json_object_put(j);

        /* Wrong secrets */
        {
                _cleanup_free_ char *bad = strdup(tok1);
                char *last = bad + strlen(bad) - 1;

                *last = *last == '0' ? '1' : '0';
                ok(!token_store_verify(t, bad), "changed secret does not verify");
                bad[strlen(bad) - 1] = '\0';
                ok(!token_store_verify(t, bad), "truncated secret does not verify");
                ok(!token_store_verify(t, tok1 + 4), "missing prefix does not verify");
                ok(!token_store_verify(t, ""), "empty does not verify");
                ok(!token_store_verify(t, NULL), "NULL does not verify");
        }
        {
                /* The right secret under the other id. */
                _cleanup_free_ char *swapped = strdup(tok2);
                memcpy(swapped + 4, id1, TOKEN_ID_LEN);
                ok(!token_store_verify(t, swapped), "secret of token 2 with id of token 1 does not verify");
        }
        {
                _cleanup_free_ char *upper = strdup(tok1);
                for (char *p = upper + 4; *p; p++)
                        if (*p >= 'a' && *p <= 'f')
                                *p = (char) (*p - 'a' + 'A');
                ok(!token_store_verify(t, upper) || streq(upper, tok1), "upper-case hex is not the same token");
        }

        /* Delete */
        is_int(token_store_delete(t, id1), 0, "delete token 1");
        ok(!token_store_verify(t, tok1), "  no longer verifies");
        ok(token_store_verify(t, tok2), "  token 2 still does");
        is_int(token_store_delete(t, id1), -ENOENT, "  deleting again: -ENOENT");
        is_int(token_store_delete(t, "nothere"), -ENOENT, "  unknown id: -ENOENT");
        token_store_free(t);
        is_int(token_store_load(path, &t), 0, "reload after delete");
        ok(!token_store_verify(t, tok1) && token_store_verify(t, tok2), "  deletion persisted");
        assert_se(stat(path, &st) == 0);
        is_int(st.st_mode & 07777, 0600, "  still 0600");
        token_store_free(t);

        /* The first store is stale now (token 1 deleted by the other one);
         * that is the caller's business (one store per daemon). */
        token_store_free(s);
}

static void test_tampered(void) {
        _cleanup_free_ char *path = tmp_path("tampered.conf"), *id = NULL, *tok = NULL, *content = NULL;
        TokenStore *s = NULL;
        char *hash;

        assert_se(token_store_load(path, &s) >= 0);
        assert_se(token_store_create(s, NULL, &id, &tok) >= 0);
        token_store_free(s);

        assert_se(read_full_file(path, &content, NULL, 0) >= 0);
        hash = strstr(content, id);
        assert_se(hash);
        hash += TOKEN_ID_LEN + 1;
        hash[10] = hash[10] == 'a' ? 'b' : 'a';
        write_tokens("tampered.conf", content);

        is_int(token_store_load(path, &s), 0, "tampered hash still parses");
        ok(!token_store_verify(s, tok), "  but the token no longer verifies");
        token_store_free(s);
}

static void test_malformed(void) {
        static const struct {
                const char *content;
                int r;
        } cases[] = {
                { "", 0 },
                { "# comment only\n\n", 0 },
                { "0a1b2c3d " "0000000000000000000000000000000000000000000000000000000000000000" " 1700000000\n", 0 },
                { "0a1b2c3d " "0000000000000000000000000000000000000000000000000000000000000000" " 1700000000 a comment\n", 0 },
                { "0a1b2c3d " "0000000000000000000000000000000000000000000000000000000000000000" " 1700000000", 0 },
                { "garbage\n", -EBADMSG },
                { "0a1b2c3d\n", -EBADMSG },
                { "0A1B2C3D " "0000000000000000000000000000000000000000000000000000000000000000" " 1700000000\n", -EBADMSG },
                { "0a1b2c3 " "0000000000000000000000000000000000000000000000000000000000000000" " 1700000000\n", -EBADMSG },
                { "0a1b2c3d " "000000000000000000000000000000000000000000000000000000000000000" " 1700000000\n", -EBADMSG },
                { "0a1b2c3d " "000000000000000000000000000000000000000000000000000000000000000g" " 1700000000\n", -EBADMSG },
                { "0a1b2c3d " "0000000000000000000000000000000000000000000000000000000000000000" " x\n", -EBADMSG },
                { "0a1b2c3d " "0000000000000000000000000000000000000000000000000000000000000000" "\n", -EBADMSG },
                { "0a1b2c3d " "0000000000000000000000000000000000000000000000000000000000000000" " 1700000000 tab\there\n", -EBADMSG },
                { "0a1b2c3d " "0000000000000000000000000000000000000000000000000000000000000000" " 1700000000 bad \xff utf8\n", -EBADMSG },
                { "0a1b2c3d " "0000000000000000000000000000000000000000000000000000000000000000" " 1700000000\r\n", -EBADMSG },
                { "0a1b2c3d " "0000000000000000000000000000000000000000000000000000000000000000" " 1700000000\n"
                  "0a1b2c3d " "1111111111111111111111111111111111111111111111111111111111111111" " 1700000001\n", -EBADMSG },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *path = tmp_path("m.conf");
                TokenStore *s = (TokenStore *) 0x1;
                int r;

                write_tokens("m.conf", cases[i].content);
                r = token_store_load(path, &s);
                is_int(r, cases[i].r, "malformed case %zu → %d", i, cases[i].r);
                if (r >= 0)
                        token_store_free(s);
                else
                        ok(s == (TokenStore *) 0x1, "  ret untouched");
        }

        /* Embedded NUL */
        {
                _cleanup_free_ char *path = tmp_path("nul.conf");
                static const char data[] = "# a\0b\n";
                TokenStore *s = NULL;

                assert_se(write_file_atomic(tmpdir, "nul.conf", data, sizeof(data) - 1, 0600) >= 0);
                is_int(token_store_load(path, &s), -EBADMSG, "embedded NUL → -EBADMSG");
        }

        /* A comment too long to create */
        {
                _cleanup_free_ char *path = tmp_path("long.conf");
                char c[TOKEN_COMMENT_MAX + 2];
                TokenStore *s = NULL;
                char *id = NULL, *tok = NULL;

                memset(c, 'x', sizeof(c) - 1);
                c[sizeof(c) - 1] = '\0';
                assert_se(token_store_load(path, &s) >= 0);
                is_int(token_store_create(s, c, &id, &tok), -EINVAL, "comment over TOKEN_COMMENT_MAX → -EINVAL");
                is_int(token_store_create(s, "bad \xc3(", &id, &tok), -EINVAL, "invalid UTF-8 comment → -EINVAL");
                ok(!id && !tok, "  outputs untouched");
                is_int(token_store_size(s), 0, "  nothing added");
                c[TOKEN_COMMENT_MAX] = '\0';
                is_int(token_store_create(s, c, &id, &tok), 0, "comment of exactly TOKEN_COMMENT_MAX is fine");
                free(id);
                free(tok);
                token_store_free(s);
                is_int(token_store_load(path, &s), 0, "  and loads again");
                token_store_free(s);
        }
}

static void test_limit(void) {
        _cleanup_free_ char *path = tmp_path("many.conf"), *content = NULL;
        TokenStore *s = NULL;
        size_t size = 0;
        FILE *f;

        /* A file at the limit, written directly (creating 1024 tokens one by
         * one would rewrite the file 1024 times). */
        f = open_memstream(&content, &size);
        assert_se(f);
        for (unsigned i = 0; i < TOKEN_STORE_MAX; i++)
                fprintf(f, "%08x %064x %u c%u\n", i, i, 1700000000U + i, i);
        assert_se(fclose(f) == 0);
        write_tokens("many.conf", content);

        is_int(token_store_load(path, &s), 0, "file with TOKEN_STORE_MAX tokens loads");
        is_int(token_store_size(s), TOKEN_STORE_MAX, "  all of them");
        is_int(token_store_create(s, "one too many", NULL, NULL), -ENOSPC, "  one more → -ENOSPC");
        is_int(token_store_delete(s, "00000000"), 0, "  delete one");
        is_int(token_store_create(s, "fits again", NULL, NULL), 0, "  then there is room");
        token_store_free(s);

        /* One more line in the file itself → malformed. */
        content = mfree(content);
        f = open_memstream(&content, &size);
        assert_se(f);
        for (unsigned i = 0; i <= TOKEN_STORE_MAX; i++)
                fprintf(f, "%08x %064x %u\n", i, i, 1700000000U + i);
        assert_se(fclose(f) == 0);
        write_tokens("many.conf", content);
        is_int(token_store_load(path, &s), -EBADMSG, "file with TOKEN_STORE_MAX + 1 tokens → -EBADMSG");
}

static void test_persist_failure(void) {
        _cleanup_free_ char *dir = tmp_path("ro"), *path = NULL;
        TokenStore *s = NULL;
        char *id = NULL, *tok = NULL;

        if (geteuid() == 0) {
                /* root ignores directory permissions: use a missing directory. */
                path = strjoin(dir, "/missing/tokens.conf");
        } else {
                assert_se(mkdir(dir, 0500) == 0);
                path = strjoin(dir, "/tokens.conf");
        }
        assert_se(path);
        assert_se(token_store_load(path, &s) >= 0);
        ok(token_store_create(s, "x", &id, &tok) < 0, "create fails when the file cannot be written");
        ok(!id && !tok, "  outputs untouched");
        is_int(token_store_size(s), 0, "  store unchanged");
        token_store_free(s);
}

/* Roles and expiry: what token_store_check() answers, what survives a
 * reload, and what the file says. */
static void test_roles_expiry(void) {
        _cleanup_free_ char *path = tmp_path("roles.conf"), *content = NULL;
        _cleanup_free_ char *idr = NULL, *tokr = NULL, *ido = NULL, *toko = NULL, *ide = NULL, *toke = NULL;
        TokenStore *s = NULL;
        json_object *j = NULL;

        is_int(token_role_from_string("read-only"), TOKEN_ROLE_READ_ONLY, "role read-only parses");
        is_int(token_role_from_string("operator"), TOKEN_ROLE_OPERATOR, "role operator parses");
        is_int(token_role_from_string("admin"), TOKEN_ROLE_ADMIN, "role admin parses");
        is_int(token_role_from_string("root"), -EINVAL, "role root does not");
        is_int(token_role_from_string(NULL), -EINVAL, "NULL does not");

        assert_se(token_store_load(path, &s) >= 0);
        is_int(token_store_create_full(s, "ro", TOKEN_ROLE_READ_ONLY, 0, &idr, &tokr), 0, "create a read-only token");
        is_int(token_store_create_full(s, "op", TOKEN_ROLE_OPERATOR, 2000000000, &ido, &toko), 0,
               "create an operator token expiring at 2000000000");
        is_int(token_store_create_full(s, "ex", TOKEN_ROLE_ADMIN, 1000, &ide, &toke), 0, "create an admin token that expired");
        is_int(token_store_create_full(s, "bad", _TOKEN_ROLE_MAX, 0, NULL, NULL), -EINVAL, "an unknown role → -EINVAL");
        token_store_free(s);

        assert_se(token_store_load(path, &s) >= 0);
        is_int(token_store_check(s, tokr, 1900000000), TOKEN_ROLE_READ_ONLY, "after reload: read-only role");
        is_int(token_store_check(s, toko, 1999999999), TOKEN_ROLE_OPERATOR, "  operator, a second before expiry");
        is_int(token_store_check(s, toko, 2000000000), -EKEYEXPIRED, "  operator at its expiry → -EKEYEXPIRED");
        is_int(token_store_check(s, toke, 1900000000), -EKEYEXPIRED, "  expired admin → -EKEYEXPIRED");
        ok(!token_store_verify(s, toke), "  and does not verify");
        toke[strlen(toke) - 1] = toke[strlen(toke) - 1] == '0' ? '1' : '0';
        is_int(token_store_check(s, toke, 1900000000), -EACCES, "  expired with a wrong secret → -EACCES (no oracle)");
        is_int(token_store_get_json(s, ido, &j), 0, "get_json operator");
        is_str(json_get_string(j, "role"), "operator", "  role operator");
        is_int(json_object_get_int64(json_object_object_get(j, "expires")), 2000000000, "  expires");
        json_object_put(j);
        token_store_free(s);

        assert_se(read_full_file(path, &content, NULL, 0) >= 0);
        ok(startswith(content, "# zvm-tokens v2\n"), "file starts with the v2 header");
        ok(strstr(content, " operator 2000000000 op\n") && strstr(content, " read-only 0 ro\n"),
           "  role and expiry on each line");
}

/* A version-1 store (no header, no role, no expiry) loads as admin tokens
 * that never expire, and the next change rewrites it as version 2. */
static void test_migration(void) {
        _cleanup_free_ char *path = tmp_path("v1.conf"), *content = NULL;
        /* sha256 of the secret "00…0" (64 × '0'). */
        static const char v1[] =
                "# zvm API tokens: <id> <sha256 of secret> <created> [<comment>]. Managed by zvmd.\n"
                "0a1b2c3d 60e05bd1b195af2f94112fa7197a5c88289058840ce7c6df9693756bc6250f55 1700000000 old ci\n"
                "0a1b2c3e 60e05bd1b195af2f94112fa7197a5c88289058840ce7c6df9693756bc6250f55 1700000001\n";
        const char *tok = "zvm-0a1b2c3d.0000000000000000000000000000000000000000000000000000000000000000";
        TokenStore *s = NULL;
        json_object *j = NULL;

        write_tokens("v1.conf", v1);
        is_int(token_store_load(path, &s), 0, "a version-1 store loads");
        is_int(token_store_size(s), 2, "  both tokens");
        is_int(token_store_check(s, tok, UINT64_MAX - 1), TOKEN_ROLE_ADMIN, "  its token is admin and never expires");
        is_int(token_store_get_json(s, "0a1b2c3d", &j), 0, "  get_json");
        is_str(json_get_string(j, "comment"), "old ci", "  comment kept");
        json_object_put(j);
        is_int(token_store_delete(s, "0a1b2c3e"), 0, "a change");
        token_store_free(s);
        assert_se(read_full_file(path, &content, NULL, 0) >= 0);
        ok(startswith(content, "# zvm-tokens v2\n") && strstr(content, " 1700000000 admin 0 old ci\n"),
           "  rewrites the store as version 2");
        is_int(token_store_load(path, &s), 0, "  which loads");
        is_int(token_store_check(s, tok, 1), TOKEN_ROLE_ADMIN, "  with the same token and role");
        token_store_free(s);

        /* v2 lines must have role and expiry */
        write_tokens("v1.conf", "# zvm-tokens v2\n"
                     "0a1b2c3d 60e05bd1b195af2f94112fa7197a5c88289058840ce7c6df9693756bc6250f55 1700000000 old ci\n");
        is_int(token_store_load(path, &s), -EBADMSG, "v2 line without role → -EBADMSG");
        write_tokens("v1.conf", "# zvm-tokens v2\n"
                     "0a1b2c3d 60e05bd1b195af2f94112fa7197a5c88289058840ce7c6df9693756bc6250f55 1700000000 admin\n");
        is_int(token_store_load(path, &s), -EBADMSG, "v2 line without expiry → -EBADMSG");
        write_tokens("v1.conf", "# zvm-tokens v2\n"
                     "0a1b2c3d 60e05bd1b195af2f94112fa7197a5c88289058840ce7c6df9693756bc6250f55 1700000000 root 0\n");
        is_int(token_store_load(path, &s), -EBADMSG, "v2 line with an unknown role → -EBADMSG");
}

int main(void) {
        assert_se(mkdtemp(tmpdir));
        test_roles_expiry();
        test_migration();

        test_round_trip();
        test_tampered();
        test_malformed();
        test_limit();
        test_persist_failure();

        (void) nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        return done_testing();
}
