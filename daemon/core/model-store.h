/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The model store: GGUF models under <data>/models, by name.
 *
 *   names/<name>.json     the record of a model: name, sha256, image, the
 *                         metadata zvm-mkmodel printed, created (µs since the
 *                         epoch); written atomically once the image exists
 *   images/<sha256>.img   the content-addressed read-only model disk made by
 *                         "zvm-mkmodel disk" (daemon/tools/README.md); any
 *                         number of names and VMs share one image
 *   tmp/                  files being added: uploads (O_TMPFILE while they
 *                         arrive, so a dropped client or a crash leaves
 *                         nothing) and generated models
 *
 * Adding is a ProcessJob ("zvm-mkmodel disk", for a generated model first
 * "zvm-mkmodel generate"): never on the loop. An add is never half-made: the
 * record is written last, a failed or cancelled job removes its temporary
 * file (mkmodel removes its own partial image), and model_store_new() sweeps
 * what a killed zvmd left (tmp/, dot-files, images no record names).
 *
 * Bounds: one add per name at a time, MODEL_STORE_JOBS_MAX jobs at once,
 * uploads at most MODEL_UPLOAD_MAX bytes and only with room for the file and
 * its image.
 *
 * A leaf module: it knows nothing of VMs. Whether a VM uses a model is the
 * caller's question (rest/models.c asks the registry before a delete).
 */

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "macro.h"
#include "sync-worker.h"

typedef struct ModelStore ModelStore;

#define MODEL_STORE_JOBS_MAX 2U
#define MODEL_UPLOAD_MAX (256ULL << 30)
/* A disk of a 256 GiB file at ~100 MB/s is ~45 minutes; a job past this
 * deadline is killed (and cleans up). */
#define MODEL_JOB_TIMEOUT_USEC (6ULL * 3600ULL * 1000000ULL)

/* Creates the directories, sweeps leftovers. mkmodel: the zvm-mkmodel
 * binary. Returns 0 or -errno. */
int model_store_new(sd_event *e, const char *dir, const char *mkmodel, ModelStore **ret);
/* Leftovers of cancelled imports are then removed off the loop. */
void model_store_set_sync(ModelStore *s, SyncWorker *w);
/* Kills running jobs (their temporary files go). NULL is fine. */
ModelStore *model_store_free(ModelStore *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(ModelStore *, model_store_free);

bool model_name_is_valid(const char *name);
/* "tiny", "qwen2.5-0.5b", …, "custom:k=v,…": a bounded word zvm-mkmodel
 * then checks for real. */
bool model_shape_is_valid(const char *shape);
bool model_quant_is_valid(const char *quant);          /* q8_0, q4_0 */

/* A POST /models body once checked: the strings are the body's. */
typedef struct ModelGenerateRequest {
        const char *name, *shape, *quant;
} ModelGenerateRequest;

/*
 * Checks a generate request body (a JSON object) the way POST /models does:
 * members name, shape, quant (default q8_0) and nothing else. On success
 * fills *ret. On failure *ret is untouched: -EINVAL with the offending
 * member in *ret_key (a key other than the three is an unknown one) and
 * the reason in *ret_error.
 */
int model_generate_request_parse(json_object *body, ModelGenerateRequest *ret, const char **ret_key, char **ret_error);

/* Every model and every add under way or failed since start, sorted by
 * name: {name, state: ready|adding|failed, …record…, error?}. */
int model_store_list_json(ModelStore *s, json_object **ret);
/* Whether name is a ready model. */
bool model_store_has(ModelStore *s, const char *name);
/* Whether an add of name could start now (no such model, no add of it
 * running). */
bool model_store_can_add(ModelStore *s, const char *name);
/* One of them; -ENOENT if neither. */
int model_store_get_json(ModelStore *s, const char *name, json_object **ret);

/* An unnamed file in tmp/ for an upload of length bytes (UINT64_MAX:
 * unknown, refused), O_RDWR|O_CLOEXEC. -EFBIG over MODEL_UPLOAD_MAX,
 * -ENOSPC without room for it twice (file + image), -ENODATA no length. */
int model_store_upload_open(ModelStore *s, uint64_t length, int *ret_fd, const char **ret_why);

/*
 * Adds the uploaded file fd (from model_store_upload_open(); taken in
 * every case) as `name`: 202-style, the job runs on. Or generates one with
 * zvm-mkmodel (shape, quant already validated). *ret: the add as the API
 * shows it. Errors, with a message: -EEXIST the name is taken, -EBUSY an
 * add of that name runs, -EAGAIN MODEL_STORE_JOBS_MAX jobs run, -EIO, -ENOMEM.
 */
int model_store_add_fd(ModelStore *s, const char *name, int fd, json_object **ret, char **ret_error);
int model_store_generate(ModelStore *s, const char *name, const char *shape, const char *quant, json_object **ret,
                         char **ret_error);

/* Removes the record of name, and its image if no other record names it
 * (a running VM keeps the unlinked image open); cancels a running add or
 * forgets a failed one. Whether a VM's config uses it is the caller's
 * check. -ENOENT, -EIO (+ message). */
int model_store_remove(ModelStore *s, const char *name, json_object **ret, char **ret_error);

/* The image of model `name` (a record in <models_dir>/names/ whose image
 * exists and is readable). Reads one small file: cheap enough for the loop.
 * Returns 0, -ENOENT (no such model, or its image is gone: *ret_error says
 * which), -EINVAL (a broken record), -ENOMEM. */
int model_store_resolve(const char *models_dir, const char *name, char **ret_image, char **ret_error);
