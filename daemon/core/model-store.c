/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "fd-util.h"
#include "json-util.h"
#include "macro.h"
#include "model-store.h"
#include "string-util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

/* A record is a few hundred bytes; anything bigger is not ours. */
#define MODEL_RECORD_MAX (64U * 1024U)

static int error_set(char **ret_error, int r, const char *format, ...) _printf_(3, 4);
static int error_set(char **ret_error, int r, const char *format, ...) {
        va_list ap;
        char *s;

        if (!ret_error)
                return r;
        va_start(ap, format);
        if (vasprintf(&s, format, ap) < 0)
                s = NULL;
        va_end(ap);
        if (!s)
                return -ENOMEM;
        free(*ret_error);
        *ret_error = s;
        return r;
}

static bool is_sha256_hex(const char *s) {
        return s && strlen(s) == 64 && s[strspn(s, "0123456789abcdef")] == '\0';
}

static int record_read(const char *models_dir, const char *name, json_object **ret, char **ret_error) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        size_t size = 0;
        int r;

        if (!string_is_safe_name(name))
                return error_set(ret_error, -EINVAL, "invalid model name");
        path = strjoin(models_dir, "/names/", name, ".json");
        if (!path)
                return -ENOMEM;
        r = read_full_file(path, &text, &size, MODEL_RECORD_MAX);
        if (r == -ENOENT)
                return error_set(ret_error, -ENOENT, "model \"%s\" is not in the store (see zvm model list)", name);
        if (r < 0)
                return error_set(ret_error, r, "model \"%s\": cannot read its record: %s", name, errno_str(r));
        r = json_parse_bounded(text, size, 8, 4096, ret);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return error_set(ret_error, -EINVAL, "model \"%s\": its record is broken", name);
        if (!json_object_is_type(*ret, json_type_object)) {
                json_object_put(TAKE_PTR(*ret));
                return error_set(ret_error, -EINVAL, "model \"%s\": its record is broken", name);
        }
        return 0;
}

int model_store_resolve(const char *models_dir, const char *name, char **ret_image, char **ret_error) {
        _cleanup_(json_object_putp) json_object *rec = NULL;
        _cleanup_free_ char *image = NULL;
        const char *sha;
        int r;

        assert_return(models_dir, -EINVAL);
        assert_return(name, -EINVAL);
        assert_return(ret_image, -EINVAL);

        r = record_read(models_dir, name, &rec, ret_error);
        if (r < 0)
                return r;
        sha = json_object_get_string(json_object_object_get(rec, "sha256"));
        if (!is_sha256_hex(sha))
                return error_set(ret_error, -EINVAL, "model \"%s\": its record has no valid sha256", name);
        image = strjoin(models_dir, "/images/", sha, ".img");
        if (!image)
                return -ENOMEM;
        if (access(image, R_OK) < 0)
                return error_set(ret_error, -ENOENT, "model \"%s\": its image %s is missing", name, image);
        *ret_image = TAKE_PTR(image);
        return 0;
}
