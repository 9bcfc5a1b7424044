/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What model-store.c and model-store-job.c share; nobody else includes it. */

#include "macro.h"
#include <json-c/json.h>
#include <stdbool.h>
#include <systemd/sd-event.h>

/* Not model-store.h (its users include it): a leaf, no cycle with model-store.c. */
typedef struct ModelStore ModelStore;
#include "process-async.h"
#include "sync-worker.h"

#define MODEL_NAMES_DIR "names"
#define MODEL_IMAGES_DIR "images"
#define MODEL_TMP_DIR "tmp"
/* rm of a removed image: freeing even a large file takes seconds at worst. */
#define MODEL_RM_TIMEOUT_USEC (120ULL * 1000000ULL)

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

typedef enum ModelJobStep {
        MODEL_JOB_GENERATING,           /* zvm-mkmodel generate */
        MODEL_JOB_DISK,                 /* zvm-mkmodel disk */
        MODEL_JOB_FAILED,
} ModelJobStep;

/* An add under way, or one that failed (kept, with its reason, until the
 * name is added again or removed). */
typedef struct ModelJob {
        ModelStore *store;
        char *name;
        char *file;                     /* tmp/<name>.<n>.gguf, removed when the job ends */
        char *shape, *quant;            /* generated: what was asked */
        ModelJobStep step;
        ProcessJob *job;
        char *error;                    /* failed: why */
        uint64_t started;               /* µs, CLOCK_REALTIME */
} ModelJob;

struct ModelStore {
        sd_event *event;
        char *dir, *names, *images, *tmp;
        char *mkmodel;
        ModelJob **jobs;
        size_t n_jobs;
        unsigned n_running;
        unsigned counter;               /* for tmp file names */
        SyncWorker *sync;               /* removes swept files off the loop; NULL: inline */
};

void model_dir_sync(const char *dir);
int model_record_read(const char *models_dir, const char *name, json_object **ret);
bool model_record_exists(ModelStore *s, const char *name);
json_object *model_record_to_json(json_object *rec, const char *state);
bool model_image_is_named(ModelStore *s, const char *sha256);
void model_image_unlink_unused(ModelStore *s, const char *sha256);
void model_store_sweep(ModelStore *s);

ModelJob *model_job_find(ModelStore *s, const char *name);
int model_job_to_json(ModelJob *j, json_object **ret);
/* Cancels it if it runs (its file goes), unlinks it from the store, frees it. */
void model_job_drop(ModelJob *j);
