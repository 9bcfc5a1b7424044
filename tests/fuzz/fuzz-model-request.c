/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * daemon/core/model-store: model_generate_request_parse() (the checks of a
 * POST /models body) and the names/<name>.json records a start reads
 * through model_store_resolve().
 *
 * Input: the request body, then optionally "\0" and the bytes of a record
 * (written to a scratch store as names/m.json; images/ holds one image,
 * that of sha256 "aa…a").
 *
 * Properties (model-store.h):
 *   - request: 0 or -EINVAL; a refusal names a key and gives a one-line
 *     reason, an unknown key is one of the body's own; accepted: a valid
 *     name, shape and quant and no other member; the request written back
 *     as a body parses to the same request;
 *   - record: 0, -ENOENT, -EINVAL or -ENOMEM, a reason with each refusal;
 *     0 only with the one image there is, named by the record's sha256;
 *     nothing over 64 KiB is taken.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "model-store.h"
#include "string-util.h"

#define SHA "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static char *store;

static void store_remove(void) {
        static const char *const files[] = { "/names/m.json", "/images/" SHA ".img", "/names", "/images", "" };

        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *p = strjoin(store, files[i]);

                if (p)
                        (void) remove(p);
        }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        char tmpl[] = "/tmp/zvm-fuzz-models.XXXXXX", *p;
        int fd;

        store = mkdtemp(tmpl) ? strdup(tmpl) : NULL;
        if (!store)
                abort();
        p = strjoin(store, "/names");
        if (!p || mkdir(p, 0755) < 0)
                abort();
        free(p);
        p = strjoin(store, "/images");
        if (!p || mkdir(p, 0755) < 0)
                abort();
        free(p);
        p = strjoin(store, "/images/" SHA ".img");
        fd = p ? open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644) : -1;
        if (fd < 0)
                abort();
        close(fd);
        free(p);
        atexit(store_remove);
        return 0;
}

static bool known_key(const char *k) {
        return streq(k, "name") || streq(k, "shape") || streq(k, "quant");
}

static void check_request(const char *text, size_t size) {
        _cleanup_free_ char *err = NULL, *err2 = NULL;
        ModelGenerateRequest rq = {}, back = {};
        const char *key = NULL;
        json_tokener *tok;
        json_object *body, *o;
        int r;

        if (size == 0 || size > 64 * 1024 || !(tok = json_tokener_new()))
                return;
        body = json_tokener_parse_ex(tok, text, (int) size);
        if (json_tokener_get_error(tok) != json_tokener_success || !json_object_is_type(body, json_type_object)) {
                json_object_put(body);
                json_tokener_free(tok);
                return;
        }
        json_tokener_free(tok);
        r = model_generate_request_parse(body, &rq, &key, &err);
        FUZZ_CHECK(IN_SET(r, 0, -EINVAL));
        if (r < 0) {
                FUZZ_CHECK(key && err && err[0] && !strchr(err, '\n') && !rq.name);
                if (!known_key(key))
                        FUZZ_CHECK(json_object_object_get_ex(body, key, NULL));
        } else {
                FUZZ_CHECK(rq.name && model_name_is_valid(rq.name) && model_shape_is_valid(rq.shape) &&
                           model_quant_is_valid(rq.quant));
                json_object_object_foreach(body, k, val) {
                        (void) val;
                        FUZZ_CHECK(known_key(k));
                }
                o = json_object_new_object();
                if (o) {
                        json_object_object_add(o, "name", json_object_new_string(rq.name));
                        json_object_object_add(o, "shape", json_object_new_string(rq.shape));
                        json_object_object_add(o, "quant", json_object_new_string(rq.quant));
                        r = model_generate_request_parse(o, &back, NULL, &err2);
                        FUZZ_CHECK(r == 0 && streq(back.name, rq.name) && streq(back.shape, rq.shape) &&
                                   streq(back.quant, rq.quant));
                        json_object_put(o);
                }
        }
        json_object_put(body);
}

static void check_record(const uint8_t *data, size_t size) {
        _cleanup_free_ char *path = strjoin(store, "/names/m.json"), *image = NULL, *err = NULL;
        _cleanup_free_ char *want = strjoin(store, "/images/" SHA ".img");
        int fd, r;

        if (!path || !want)
                return;
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                abort();
        FUZZ_CHECK(write(fd, data, size) == (ssize_t) size);
        close(fd);
        r = model_store_resolve(store, "m", &image, &err);
        FUZZ_CHECK(IN_SET(r, 0, -ENOENT, -EINVAL, -ENOMEM));
        if (r == 0) {
                FUZZ_CHECK(image && streq(image, want) && !err);
                FUZZ_CHECK(size <= 64 * 1024 && memmem(data, size, SHA, strlen(SHA)));
        } else {
                FUZZ_CHECK(!image);
                if (r != -ENOMEM)
                        FUZZ_CHECK(err && err[0]);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *nul = memchr(data, 0, size);
        size_t body_size = nul ? (size_t) (nul - data) : size;
        _cleanup_free_ char *text = strndup((const char *) data, body_size);

        if (!text)
                return 0;
        check_request(text, body_size);
        if (nul)
                check_record(nul + 1, size - body_size - 1);
        return 0;
}
