/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Adding a model: zvm-mkmodel as ProcessJobs (generate, then disk), then
 * the record. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "fd-util.h"
#include "fileio.h"
#include "json-util.h"
#include "log.h"
#include "model-store-internal.h"
#include "model-store.h"
#include "string-util.h"
#include "time-util.h"

ModelJob *model_job_find(ModelStore *s, const char *name) {
        for (size_t i = 0; i < s->n_jobs; i++)
                if (streq(s->jobs[i]->name, name))
                        return s->jobs[i];
        return NULL;
}

static const char *step_to_string(ModelJobStep step) {
        switch (step) {
        case MODEL_JOB_GENERATING:
                return "generating";
        case MODEL_JOB_DISK:
                return "making the disk";
        default:
                return NULL;
        }
}

int model_job_to_json(ModelJob *j, json_object **ret) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        bool failed = j->step == MODEL_JOB_FAILED;

        if (!o || json_object_object_add(o, "name", json_object_new_string(j->name)) < 0 ||
            json_object_object_add(o, "state", json_object_new_string(failed ? "failed" : "adding")) < 0 ||
            json_object_object_add(o, "generated", json_object_new_boolean(!!j->shape)) < 0 ||
            json_object_object_add(o, "started", json_object_new_int64((int64_t) j->started)) < 0)
                return -ENOMEM;
        if (!failed && json_object_object_add(o, "step", json_object_new_string(step_to_string(j->step))) < 0)
                return -ENOMEM;
        if (j->shape && (json_object_object_add(o, "shape", json_object_new_string(j->shape)) < 0 ||
                         json_object_object_add(o, "quant", json_object_new_string(j->quant)) < 0))
                return -ENOMEM;
        if (failed && json_object_object_add(o, "error", json_object_new_string(strempty(j->error))) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

/* Stops the child if it runs and removes the job's file. */
static void job_end(ModelJob *j) {
        ModelStore *s = j->store;

        if (j->job) {
                j->job = process_job_free(j->job);
                assert_se(s->n_running > 0);
                s->n_running--;
        }
        if (j->file) {
                (void) unlink(j->file);
                j->file = mfree(j->file);
        }
        /* A killed mkmodel leaves its staging files; with nothing else
         * running they are told apart from live ones. */
        if (s->n_running == 0)
                model_store_sweep(s);
}

void model_job_drop(ModelJob *j) {
        ModelStore *s;

        if (!j)
                return;
        s = j->store;
        job_end(j);
        for (size_t i = 0; i < s->n_jobs; i++)
                if (s->jobs[i] == j) {
                        memmove(s->jobs + i, s->jobs + i + 1, (s->n_jobs - i - 1) * sizeof(ModelJob *));
                        s->n_jobs--;
                        break;
                }
        free(j->name);
        free(j->shape);
        free(j->quant);
        free(j->error);
        free(j);
}

static void job_fail(ModelJob *j, const char *format, ...) _printf_(2, 3);
static void job_fail(ModelJob *j, const char *format, ...) {
        va_list ap;
        char *m = NULL;

        va_start(ap, format);
        if (vasprintf(&m, format, ap) < 0)
                m = NULL;
        va_end(ap);
        job_end(j);
        free(j->error);
        j->error = m;
        j->step = MODEL_JOB_FAILED;
        log_debug("model store: adding %s failed: %s", j->name, strnull(m));
}

/* The last line of output that starts with prefix, without it (a copy). */
static char *last_line_with(const char *output, const char *prefix) {
        const char *found = NULL;

        for (const char *p = output; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
                if (startswith(p, prefix))
                        found = p + strlen(prefix);
        return found ? strndup(found, strcspn(found, "\n")) : NULL;
}

/* What a failed mkmodel run says, for the client. */
static void job_fail_mkmodel(ModelJob *j, int status, const char *output) {
        _cleanup_free_ char *why = last_line_with(output, "zvm-mkmodel: ");
        const char *rest = why && j->file ? startswith(why, j->file) : NULL;

        /* "<tmp file>: truncated: …": the client knows which file it sent. */
        if (rest && startswith(rest, ": "))
                memmove(why, rest + 2, strlen(rest + 2) + 1);
        if (status == -ETIMEDOUT)
                job_fail(j, "zvm-mkmodel took too long and was stopped");
        else if (status == 4)
                job_fail(j, "no space left in the model store: %s", why ? why : "see the store's free space");
        else if (why)
                job_fail(j, "%s", why);
        else
                job_fail(j, "zvm-mkmodel failed (%s %d)", status > 128 ? "signal" : "status",
                         status > 128 ? status - 128 : status);
}

static int job_spawn(ModelJob *j, char **argv);

static const char *const record_drop_keys[] = { "image", "reused" };

/* The record: mkmodel's metadata without what is per run, plus ours. */
static int job_write_record(ModelJob *j, json_object *meta, char **ret_sha) {
        ModelStore *s = j->store;
        _cleanup_free_ char *image = NULL, *fname = NULL;
        const char *sha = json_object_get_string(json_object_object_get(meta, "sha256"));
        const char *text;
        int r;

        if (!sha || strlen(sha) != 64)
                return -EBADMSG;
        for (size_t i = 0; i < ELEMENTSOF(record_drop_keys); i++)
                json_object_object_del(meta, record_drop_keys[i]);
        image = strjoin(s->images, "/", sha, ".img");
        fname = strjoin(j->name, ".json");
        if (!image || !fname)
                return -ENOMEM;
        /* A remove of another name may have taken a shared image while
         * mkmodel reported it reused. */
        if (access(image, R_OK) < 0)
                return -ENOENT;
        if (json_object_object_add(meta, "name", json_object_new_string(j->name)) < 0 ||
            json_object_object_add(meta, "image", json_object_new_string(image)) < 0 ||
            json_object_object_add(meta, "created", json_object_new_int64((int64_t) (now_usec(CLOCK_REALTIME) / 1000000U))) < 0)
                return -ENOMEM;
        if (!json_object_object_get_ex(meta, "generated", NULL) &&
            json_object_object_add(meta, "generated", json_object_new_boolean(false)) < 0)
                return -ENOMEM;
        text = json_object_to_json_string_ext(meta, JSON_C_TO_STRING_PLAIN);
        if (!text)
                return -ENOMEM;
        *ret_sha = strdup(sha);
        if (!*ret_sha)
                return -ENOMEM;
        r = write_file_atomic(s->names, fname, text, strlen(text), 0640);
        if (r < 0)
                *ret_sha = mfree(*ret_sha);
        return r;
}

static void job_disk_done(ModelJob *j, const char *output) {
        _cleanup_(json_object_putp) json_object *meta = NULL;
        _cleanup_free_ char *line = last_line_with(output, "{"), *sha = NULL;
        _cleanup_free_ char *json = line ? strjoin("{", line) : NULL;
        int r;

        if (!json || json_parse_bounded(json, strlen(json), 8, 4096, &meta) < 0 ||
            !json_object_is_type(meta, json_type_object))
                return job_fail(j, "zvm-mkmodel disk printed no metadata");
        r = job_write_record(j, meta, &sha);
        if (r < 0) {
                if (sha)
                        model_image_unlink_unused(j->store, sha);
                return job_fail(j, "cannot record the model: %s",
                                r == -ENOENT ? "its image vanished (removed meanwhile), add it again" : errno_str(r));
        }
        log_debug("model store: added %s (%s)", j->name, sha);
        model_job_drop(j);                      /* ready: the record speaks for it now */
}

static void on_job_done(ProcessJob *pj, int status, const char *output, void *userdata) {
        ModelJob *j = userdata;
        ModelStore *s = j->store;

        /* output belongs to pj: whatever ends the job (job_end() frees pj)
         * reads it first. */
        if (status != 0)
                return job_fail_mkmodel(j, status, output);
        if (j->step == MODEL_JOB_GENERATING) {
                char *argv[] = { s->mkmodel, (char *) "disk", j->file, s->images, NULL };

                j->job = process_job_free(j->job);
                assert_se(s->n_running > 0);
                s->n_running--;
                j->step = MODEL_JOB_DISK;
                if (job_spawn(j, argv) < 0)
                        return job_fail(j, "cannot run %s", s->mkmodel);
                return;
        }
        job_disk_done(j, output);
}

static int job_spawn(ModelJob *j, char **argv) {
        int r;

        r = process_job_start(j->store->event, argv, MODEL_JOB_TIMEOUT_USEC, on_job_done, j, &j->job);
        if (r < 0)
                return r;
        j->store->n_running++;
        return 0;
}

bool model_store_can_add(ModelStore *s, const char *name) {
        ModelJob *j = model_job_find(s, name);

        return !model_record_exists(s, name) && (!j || j->step == MODEL_JOB_FAILED);
}

/* Checks that the name can be added now, forgets its failed add, and makes
 * a job for it. */
static int job_new(ModelStore *s, const char *name, ModelJob **ret, char **ret_error) {
        _cleanup_free_ char *file = NULL;
        ModelJob *j, *old, **a;
        char n[16];

        if (model_record_exists(s, name))
                return set_error(ret_error, "model \"%s\" exists (remove it first)", name), -EEXIST;
        old = model_job_find(s, name);
        if (old && old->step != MODEL_JOB_FAILED)
                return set_error(ret_error, "model \"%s\" is being added", name), -EBUSY;
        if (s->n_running >= MODEL_STORE_JOBS_MAX)
                return set_error(ret_error, "%u models are being added; try again when one is done",
                                       s->n_running), -EAGAIN;
        (void) snprintf(n, sizeof(n), ".%u", s->counter++);
        file = strjoin(s->tmp, "/", name, n, ".gguf");
        a = reallocarray(s->jobs, s->n_jobs + 1, sizeof(ModelJob *));
        if (!file || !a)
                return -ENOMEM;
        s->jobs = a;
        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        *j = (ModelJob) { .store = s, .started = now_usec(CLOCK_REALTIME) / 1000000U, .file = TAKE_PTR(file) };
        j->name = strdup(name);
        if (!j->name) {
                free(j->file);
                free(j);
                return -ENOMEM;
        }
        model_job_drop(old);
        s->jobs[s->n_jobs++] = j;
        *ret = j;
        return 0;
}

int model_store_add_fd(ModelStore *s, const char *name, int fd, json_object **ret, char **ret_error) {
        _cleanup_close_ int owned = fd;
        char proc[64];
        ModelJob *j;
        int r;

        assert_return(s, -EINVAL);
        assert_return(fd >= 0, -EBADF);

        r = job_new(s, name, &j, ret_error);
        if (r < 0)
                return r;
        /* The upload was an unnamed O_TMPFILE: give it a name mkmodel can
         * open (linkat of /proc/self/fd needs no capability). */
        (void) snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        if (linkat(AT_FDCWD, proc, AT_FDCWD, j->file, AT_SYMLINK_FOLLOW) < 0) {
                r = -errno;
                j->file = mfree(j->file);       /* not ours: never made */
                model_job_drop(j);
                return set_error(ret_error, "cannot keep the upload: %s", errno_str(r)), -EIO;
        }
        {
                char *argv[] = { s->mkmodel, (char *) "disk", j->file, s->images, NULL };

                j->step = MODEL_JOB_DISK;
                r = job_spawn(j, argv);
        }
        if (r < 0) {
                model_job_drop(j);
                return set_error(ret_error, "cannot run %s: %s", s->mkmodel, errno_str(r)), -EIO;
        }
        return ret ? model_job_to_json(j, ret) : 0;
}

int model_store_generate(ModelStore *s, const char *name, const char *shape, const char *quant, json_object **ret,
                         char **ret_error) {
        ModelJob *j;
        int r;

        assert_return(s, -EINVAL);
        assert_return(model_shape_is_valid(shape), -EINVAL);
        assert_return(model_quant_is_valid(quant), -EINVAL);

        r = job_new(s, name, &j, ret_error);
        if (r < 0)
                return r;
        j->shape = strdup(shape);
        j->quant = strdup(quant);
        if (!j->shape || !j->quant) {
                model_job_drop(j);
                return -ENOMEM;
        }
        {
                char *argv[] = { s->mkmodel, (char *) "generate", (char *) "--shape", j->shape,
                                 (char *) "--quant", j->quant, j->file, NULL };

                j->step = MODEL_JOB_GENERATING;
                r = job_spawn(j, argv);
        }
        if (r < 0) {
                model_job_drop(j);
                return set_error(ret_error, "cannot run %s: %s", s->mkmodel, errno_str(r)), -EIO;
        }
        return ret ? model_job_to_json(j, ret) : 0;
}
