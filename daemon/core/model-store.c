/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The store on disk: records, listing, removal, the sweep at start. The
 * jobs that add models are in model-store-job.c. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fd-util.h"
#include "fileio.h"
#include "json-util.h"
#include "log.h"
#include "model-store-internal.h"
#include "model-store.h"
#include "string-util.h"

/* A record is a few hundred bytes; anything bigger is not ours. */
#define MODEL_RECORD_MAX (64U * 1024U)
/* Records the store lists; more files in names/ are ignored. */
#define MODEL_RECORDS_MAX 4096U

void model_dir_sync(const char *dir) {
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd >= 0)
                (void) fileio_sync_dir(fd);
}

bool model_name_is_valid(const char *name) {
        return string_is_safe_name(name);
}

bool model_shape_is_valid(const char *shape) {
        size_t l = shape ? strlen(shape) : 0;

        return l > 0 && l <= 256 && shape[0] != '-' &&
               shape[strspn(shape, "abcdefghijklmnopqrstuvwxyz0123456789.:=,_-")] == '\0';
}

bool model_quant_is_valid(const char *quant) {
        return streq_ptr(quant, "q8_0") || streq_ptr(quant, "q4_0");
}

int model_generate_request_parse(json_object *body, ModelGenerateRequest *ret, const char **ret_key, char **ret_error) {
        const char *name, *shape, *quant = "q8_0";

        assert_return(body, -EINVAL);
        assert_return(ret, -EINVAL);

        json_object_object_foreach(body, key, val) {
                (void) val;
                if (!streq(key, "name") && !streq(key, "shape") && !streq(key, "quant")) {
                        if (ret_key)
                                *ret_key = key;
                        return set_error(ret_error, "%.64s: unknown (name, shape, quant)", string_for_message(key)),
                               -EINVAL;
                }
        }
        /* A number or a bool is taken as its text, as it always was. */
        name = json_object_get_string(json_object_object_get(body, "name"));
        shape = json_object_get_string(json_object_object_get(body, "shape"));
        if (json_object_object_get_ex(body, "quant", NULL))
                quant = json_object_get_string(json_object_object_get(body, "quant"));
        if (!model_name_is_valid(strempty(name))) {
                if (ret_key)
                        *ret_key = "name";
                return set_error(ret_error, "name: must match [A-Za-z0-9][A-Za-z0-9._-]{0,62} without \"..\""), -EINVAL;
        }
        if (!model_shape_is_valid(shape)) {
                if (ret_key)
                        *ret_key = "shape";
                return set_error(ret_error, "shape: tiny, qwen2.5-0.5b, qwen2.5-1.5b, llama3.2-1b or custom:k=v,..."),
                       -EINVAL;
        }
        if (!model_quant_is_valid(quant)) {
                if (ret_key)
                        *ret_key = "quant";
                return set_error(ret_error, "quant: q8_0 or q4_0"), -EINVAL;
        }
        *ret = (ModelGenerateRequest) { .name = name, .shape = shape, .quant = quant };
        return 0;
}

static bool is_sha256_hex(const char *s) {
        return s && strlen(s) == 64 && s[strspn(s, "0123456789abcdef")] == '\0';
}

static int record_read_path(const char *path, json_object **ret) {
        _cleanup_free_ char *text = NULL;
        json_object *o = NULL;
        size_t size = 0;
        int r;

        r = read_full_file(path, &text, &size, MODEL_RECORD_MAX);
        if (r < 0)
                return r;
        r = json_parse_bounded(text, size, 8, 4096, &o);
        if (r < 0)
                return r == -ENOMEM ? r : -EINVAL;
        if (!json_object_is_type(o, json_type_object) ||
            !is_sha256_hex(json_object_get_string(json_object_object_get(o, "sha256")))) {
                json_object_put(o);
                return -EINVAL;
        }
        *ret = o;
        return 0;
}

int model_record_read(const char *models_dir, const char *name, json_object **ret) {
        _cleanup_free_ char *path = NULL;

        if (!model_name_is_valid(name))
                return -EINVAL;
        path = strjoin(models_dir, "/" MODEL_NAMES_DIR "/", name, ".json");
        if (!path)
                return -ENOMEM;
        return record_read_path(path, ret);
}

int model_store_resolve(const char *models_dir, const char *name, char **ret_image, char **ret_error) {
        _cleanup_(json_object_putp) json_object *rec = NULL;
        _cleanup_free_ char *image = NULL;
        int r;

        assert_return(models_dir, -EINVAL);
        assert_return(name, -EINVAL);
        assert_return(ret_image, -EINVAL);

        r = model_record_read(models_dir, name, &rec);
        if (r == -ENOENT)
                return set_error(ret_error, "model \"%s\" is not in the store (see zvm model list)", name), r;
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return set_error(ret_error, "model \"%s\": cannot read its record: %s", name,
                                       errno_str(r)), r;
        image = strjoin(models_dir, "/" MODEL_IMAGES_DIR "/",
                        json_object_get_string(json_object_object_get(rec, "sha256")), ".img");
        if (!image)
                return -ENOMEM;
        if (access(image, R_OK) < 0)
                return set_error(ret_error, "model \"%s\": its image %s is missing", name, image), -ENOENT;
        *ret_image = TAKE_PTR(image);
        return 0;
}

/* Calls fn for every record in names/ (at most MODEL_RECORDS_MAX), with
 * the name from the file name. Broken records are skipped. */
static int records_foreach(ModelStore *s, int (*fn)(ModelStore *s, const char *name, json_object *rec, void *ud),
                           void *userdata) {
        _cleanup_(closedirp) DIR *d = opendir(s->names);
        struct dirent *de;
        unsigned n = 0;
        int r;

        if (!d)
                return -errno;
        while ((de = readdir(d)) && n < MODEL_RECORDS_MAX) {
                _cleanup_(json_object_putp) json_object *rec = NULL;
                _cleanup_free_ char *name = NULL;
                const char *dot = strrchr(de->d_name, '.');

                if (de->d_name[0] == '.' || !dot || !streq(dot, ".json"))
                        continue;
                name = strndup(de->d_name, (size_t) (dot - de->d_name));
                if (!name)
                        return -ENOMEM;
                if (!model_name_is_valid(name) || model_record_read(s->dir, name, &rec) < 0)
                        continue;
                n++;
                r = fn(s, name, rec, userdata);
                if (r != 0)
                        return r;
        }
        return 0;
}

static int uses_sha(ModelStore *s, const char *name, json_object *rec, void *userdata) {
        return streq(json_object_get_string(json_object_object_get(rec, "sha256")), userdata) ? 1 : 0;
}

bool model_image_is_named(ModelStore *s, const char *sha256) {
        return records_foreach(s, uses_sha, (void *) sha256) != 0;
}

/* Removes images/<sha256>.img unless a record names it. Freeing a large
 * file's extents takes ext4 100-200 ms, too long for the loop: the image is
 * renamed into tmp/ at once (it is gone from the store) and rm(1) frees it
 * off the loop; a zvmd killed before rm ends leaves it to the sweep of tmp/
 * at the next start. */
void model_image_unlink_unused(ModelStore *s, const char *sha256) {
        _cleanup_free_ char *path = NULL, *doomed = NULL;
        char n[16];
        ProcessJob *j = NULL;

        if (!is_sha256_hex(sha256) || model_image_is_named(s, sha256))
                return;
        path = strjoin(s->images, "/", sha256, ".img");
        (void) snprintf(n, sizeof(n), "%u", s->counter++);
        doomed = strjoin(s->tmp, "/removed-", sha256, ".", n);
        if (!path || !doomed)
                return;
        if (rename(path, doomed) < 0) {
                (void) unlink(path);
                return;
        }
        if (process_job_start(s->event, (char *const[]) { (char *) "rm", (char *) "-f", (char *) "--", doomed, NULL },
                              MODEL_RM_TIMEOUT_USEC, NULL, NULL, &j) < 0) {
                (void) unlink(doomed);
                return;
        }
        process_job_detach(j);
}

json_object *model_record_to_json(json_object *rec, const char *state) {
        json_object *o = NULL;

        if (json_object_deep_copy(rec, &o, NULL) < 0)
                return NULL;
        if (json_object_object_add(o, "state", json_object_new_string(state)) < 0)
                return json_object_put(o), NULL;
        return o;
}

static int list_add(ModelStore *s, const char *name, json_object *rec, void *userdata) {
        json_object *o = model_record_to_json(rec, "ready");

        if (!o || json_object_array_add(userdata, o) < 0) {
                json_object_put(o);
                return -ENOMEM;
        }
        return 0;
}

static int by_name(const void *a, const void *b) {
        json_object *const *x = a, *const *y = b;

        return strcmp(strempty(json_object_get_string(json_object_object_get(*x, "name"))),
                      strempty(json_object_get_string(json_object_object_get(*y, "name"))));
}

int model_store_list_json(ModelStore *s, json_object **ret) {
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();
        int r;

        assert_return(s, -EINVAL);
        if (!a)
                return -ENOMEM;
        r = records_foreach(s, list_add, a);
        if (r < 0)
                return r;
        for (size_t i = 0; i < s->n_jobs; i++) {
                json_object *o = NULL;

                if (model_record_exists(s, s->jobs[i]->name))
                        continue;       /* a failed add of a name added since */
                r = model_job_to_json(s->jobs[i], &o);
                if (r < 0)
                        return r;
                if (json_object_array_add(a, o) < 0) {
                        json_object_put(o);
                        return -ENOMEM;
                }
        }
        json_object_array_sort(a, by_name);
        *ret = TAKE_PTR(a);
        return 0;
}

bool model_record_exists(ModelStore *s, const char *name) {
        _cleanup_free_ char *path = strjoin(s->names, "/", name, ".json");

        return path && access(path, F_OK) == 0;
}

bool model_store_has(ModelStore *s, const char *name) {
        return s && model_name_is_valid(name) && model_record_exists(s, name);
}

int model_store_get_json(ModelStore *s, const char *name, json_object **ret) {
        _cleanup_(json_object_putp) json_object *rec = NULL;
        ModelJob *j;
        int r;

        assert_return(s, -EINVAL);
        if (!model_name_is_valid(name))
                return -ENOENT;
        r = model_record_read(s->dir, name, &rec);
        if (r >= 0) {
                *ret = model_record_to_json(rec, "ready");
                return *ret ? 0 : -ENOMEM;
        }
        if (r != -ENOENT)
                return r;
        j = model_job_find(s, name);
        if (!j)
                return -ENOENT;
        return model_job_to_json(j, ret);
}

int model_store_remove(ModelStore *s, const char *name, json_object **ret, char **ret_error) {
        _cleanup_(json_object_putp) json_object *rec = NULL, *out = NULL;
        _cleanup_free_ char *path = NULL;
        ModelJob *j;
        int r;

        assert_return(s, -EINVAL);
        if (!model_name_is_valid(name))
                return set_error(ret_error, "no model \"%.64s\"", name), -ENOENT;

        j = model_job_find(s, name);
        r = model_record_read(s->dir, name, &rec);
        if (r == -ENOENT && !j)
                return set_error(ret_error, "no model \"%s\" (see zvm model list)", name), -ENOENT;
        if (r < 0 && r != -ENOENT && r != -EINVAL)
                return set_error(ret_error, "model \"%s\": %s", name, errno_str(r)), r;
        if (j) {
                r = model_job_to_json(j, &out);
                if (r < 0)
                        return r;
                model_job_drop(j);              /* cancels it if it runs: its files go */
        }
        if (rec || model_record_exists(s, name)) {
                path = strjoin(s->names, "/", name, ".json");
                if (!path)
                        return -ENOMEM;
                if (unlink(path) < 0 && errno != ENOENT)
                        return set_error(ret_error, "cannot remove %s: %s", path, errno_str(-errno)), -EIO;
                model_dir_sync(s->names);
                if (rec) {
                        model_image_unlink_unused(s, json_object_get_string(json_object_object_get(rec, "sha256")));
                        json_object_put(out);
                        out = model_record_to_json(rec, "removed");
                        if (!out)
                                return -ENOMEM;
                }
        }
        if (ret)
                *ret = TAKE_PTR(out);
        return 0;
}

/* ---- upload files ------------------------------------------------------------------- */

int model_store_upload_open(ModelStore *s, uint64_t length, int *ret_fd, const char **ret_why) {
        struct statvfs sv;
        int fd;

        assert_return(s, -EINVAL);
        assert_return(ret_fd, -EINVAL);

        if (length == UINT64_MAX) {
                *ret_why = "An upload needs a Content-Length.";
                return -ENODATA;
        }
        if (length > MODEL_UPLOAD_MAX) {
                *ret_why = "The model is larger than the upload limit (256 GiB).";
                return -EFBIG;
        }
        /* The file and then its image: twice its size, plus slack for ext4. */
        if (statvfs(s->tmp, &sv) == 0 &&
            (uint64_t) sv.f_bavail * sv.f_frsize < length * 2 + (64ULL << 20)) {
                *ret_why = "Not enough space in the model store for this file and its image.";
                return -ENOSPC;
        }
        fd = open(s->tmp, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd < 0) {
                *ret_why = "Cannot create the upload file.";
                return -errno;
        }
        *ret_fd = fd;
        return 0;
}

/* ---- the sweep ---------------------------------------------------------------------- */

/* Freeing a large file's extents can keep the loop 150 ms and more on a
 * busy disk (a cancelled import's model.gguf): with a worker, the entry is
 * renamed into tmp/ (one cheap operation: its name is free at once) and the
 * worker removes it; a zvmd killed first leaves it to the sweep of tmp/. */
static int sweep_aside(ModelStore *s, int dir_fd, const char *name) {
        _cleanup_close_ int tmp_fd = -EBADF;
        char aside[64];

        if (!s->sync)
                return -EOPNOTSUPP;
        tmp_fd = open(s->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (tmp_fd < 0)
                return -errno;
        (void) snprintf(aside, sizeof(aside), "removed-sweep.%u", s->counter++);
        if (renameat(dir_fd, name, tmp_fd, aside) < 0)
                return -errno;
        if (sync_worker_remove(s->sync, tmp_fd, aside) < 0)
                return rm_rf_at(tmp_fd, aside);
        TAKE_FD(tmp_fd);
        return 0;
}

/* Removes dir's entries (a directory: its entries, one level, then
 * itself) whose name passes keep() false. */
static void dir_sweep(ModelStore *s, const char *dir, bool (*remove_it)(ModelStore *s, const char *name)) {
        _cleanup_(closedirp) DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, "..") || !remove_it(s, de->d_name))
                        continue;
                if (sweep_aside(s, dirfd(d), de->d_name) < 0)
                        (void) rm_rf_at(dirfd(d), de->d_name);
                log_debug("model store: removed the leftover %s/%s", dir, de->d_name);
        }
}

static bool any(ModelStore *s, const char *name) {
        return true;
}

static bool dot_file(ModelStore *s, const char *name) {
        return name[0] == '.';
}

/* A dot-file (mkmodel's staging) or an image no record names (a zvmd
 * killed between the image and the record). */
static bool image_leftover(ModelStore *s, const char *name) {
        _cleanup_free_ char *sha = NULL;
        const char *dot = strrchr(name, '.');

        if (name[0] == '.')
                return true;
        if (!dot || !streq(dot, ".img"))
                return false;
        sha = strndup(name, (size_t) (dot - name));
        return sha && is_sha256_hex(sha) && !model_image_is_named(s, sha);
}

void model_store_set_sync(ModelStore *s, SyncWorker *w) {
        s->sync = w;
}

/* Only with no job running: their files look the same. */
void model_store_sweep(ModelStore *s) {
        dir_sweep(s, s->tmp, any);
        dir_sweep(s, s->names, dot_file);
        dir_sweep(s, s->images, image_leftover);
}

int model_store_new(sd_event *e, const char *dir, const char *mkmodel, ModelStore **ret) {
        _cleanup_(model_store_freep) ModelStore *s = NULL;
        int r;

        assert_return(e, -EINVAL);
        assert_return(dir, -EINVAL);
        assert_return(mkmodel, -EINVAL);

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(e);
        s->dir = strdup(dir);
        s->mkmodel = strdup(mkmodel);
        s->names = strjoin(dir, "/" MODEL_NAMES_DIR);
        s->images = strjoin(dir, "/" MODEL_IMAGES_DIR);
        s->tmp = strjoin(dir, "/" MODEL_TMP_DIR);
        if (!s->dir || !s->mkmodel || !s->names || !s->images || !s->tmp)
                return -ENOMEM;
        for (char **d = (char *[]) { s->names, s->images, s->tmp, NULL }; *d; d++) {
                r = mkdir_p(*d, 0750);
                if (r < 0)
                        return r;
        }
        model_store_sweep(s);
        *ret = TAKE_PTR(s);
        return 0;
}

ModelStore *model_store_free(ModelStore *s) {
        if (!s)
                return NULL;
        while (s->n_jobs > 0)
                model_job_drop(s->jobs[s->n_jobs - 1]);
        free(s->jobs);
        sd_event_unref(s->event);
        free(s->dir);
        free(s->mkmodel);
        free(s->names);
        free(s->images);
        free(s->tmp);
        return mfree(s);
}
