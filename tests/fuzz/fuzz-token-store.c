/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * daemon/http/token-store: loading <etc>/tokens.conf (a file root may edit
 * by hand), and the bearer check every TCP request goes through before
 * authentication.
 *
 * Input: FILE [ '\0' BEARER ]. FILE is written to a scratch directory
 * (tmpfs when there is one) and loaded; BEARER is checked against a store
 * holding one token whose secret this harness knows (KNOWN_BEARER, also in
 * the dictionary and the seeds, so that the fuzzer starts next to it).
 *
 * Properties:
 *   - a loaded store lists each token once, and get_json finds each;
 *   - round trip through the writer: deleting the first token persists a
 *     file that loads back as the same list without it;
 *   - the check accepts exactly the known bearer, nothing else.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "fd-util.h"
#include "fuzz.h"
#include "string-util.h"
#include "token-store.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(TokenStore *, token_store_free);

/* SHA-256 of the 64 '0' characters of the secret. */
#define KNOWN_ID "0123abcd"
#define KNOWN_HASH "60e05bd1b195af2f94112fa7197a5c88289058840ce7c6df9693756bc6250f55"
#define KNOWN_BEARER TOKEN_PREFIX KNOWN_ID ".0000000000000000000000000000000000000000000000000000000000000000"

static struct {
        char dir[64];
        char path[128], known_path[128];
        TokenStore *known;
} st;

static void cleanup(void) {
        st.known = token_store_free(st.known);
        (void) unlink(st.path);
        (void) unlink(st.known_path);
        (void) rmdir(st.dir);
}

static int write_file(const char *path, const void *data, size_t size) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        if (fd < 0)
                return -errno;
        return loop_write(fd, data, size, false);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        static const char known[] = KNOWN_ID " " KNOWN_HASH " 1700000000 fuzz\n";

        /* The round trip writes (and fsyncs) a file per input: tmpfs. */
        snprintf(st.dir, sizeof(st.dir), "%s/zvm-fuzz-tokens.XXXXXX",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        if (!mkdtemp(st.dir))
                abort();
        snprintf(st.path, sizeof(st.path), "%s/tokens.conf", st.dir);
        snprintf(st.known_path, sizeof(st.known_path), "%s/known.conf", st.dir);
        atexit(cleanup);
        if (write_file(st.known_path, known, strlen(known)) < 0 || token_store_load(st.known_path, &st.known) < 0)
                abort();
        FUZZ_CHECK(token_store_verify(st.known, KNOWN_BEARER));
        return 0;
}

static void check_round_trip(TokenStore *s) {
        _cleanup_(token_store_freep) TokenStore *again = NULL;
        json_object *before = NULL, *after = NULL, *first, *id;
        int r;

        if (token_store_size(s) == 0 || token_store_to_json(s, &before) < 0)
                return;
        first = json_object_array_get_idx(before, 0);
        FUZZ_CHECK(json_object_object_get_ex(first, "id", &id));
        r = token_store_delete(s, json_object_get_string(id));
        if (r < 0) {
                FUZZ_CHECK(r == -ENOMEM || r == -ENOSPC);
                goto finish;
        }
        r = token_store_load(st.path, &again);
        if (r == -ENOMEM)
                goto finish;
        FUZZ_CHECK(r >= 0);
        if (token_store_to_json(again, &after) < 0)
                goto finish;
        FUZZ_CHECK(json_object_array_length(after) + 1 == json_object_array_length(before));
        for (size_t i = 0; i < json_object_array_length(after); i++)
                FUZZ_CHECK(json_object_equal(json_object_array_get_idx(after, i),
                                             json_object_array_get_idx(before, i + 1)));
finish:
        json_object_put(before);
        json_object_put(after);
}

static void check_loaded(TokenStore *s) {
        json_object *list = NULL;

        if (token_store_to_json(s, &list) < 0)
                return;
        FUZZ_CHECK(json_object_array_length(list) == token_store_size(s));
        FUZZ_CHECK(token_store_size(s) <= TOKEN_STORE_MAX);
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                json_object *id, *one = NULL;
                const char *ids;

                FUZZ_CHECK(json_object_object_get_ex(json_object_array_get_idx(list, i), "id", &id));
                ids = json_object_get_string(id);
                FUZZ_CHECK(strlen(ids) == TOKEN_ID_LEN);
                for (size_t j = i + 1; j < json_object_array_length(list); j++) {
                        json_object *id2;

                        FUZZ_CHECK(json_object_object_get_ex(json_object_array_get_idx(list, j), "id", &id2));
                        FUZZ_CHECK(!streq(ids, json_object_get_string(id2)));
                }
                if (token_store_get_json(s, ids, &one) >= 0) {
                        FUZZ_CHECK(json_object_equal(one, json_object_array_get_idx(list, i)));
                        json_object_put(one);
                }
        }
        json_object_put(list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(token_store_freep) TokenStore *s = NULL;
        const uint8_t *nul = memchr(data, 0, size);
        size_t file_size = nul ? (size_t) (nul - data) : size;
        int r;

        if (nul) {
                _cleanup_free_ char *bearer = fuzz_strndup(nul + 1, size - file_size - 1);

                if (bearer)
                        FUZZ_CHECK(token_store_verify(st.known, bearer) == streq(bearer, KNOWN_BEARER));
        }

        if (write_file(st.path, data, file_size) < 0)
                return 0;
        r = token_store_load(st.path, &s);
        if (r < 0) {
                FUZZ_CHECK(IN_SET(r, -EBADMSG, -ENOMEM));
                return 0;
        }
        check_loaded(s);
        check_round_trip(s);
        return 0;
}
