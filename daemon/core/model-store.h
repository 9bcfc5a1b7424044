/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The model store: GGUF models under <data>/models, by name.
 *
 *   names/<name>.json     the record of a model: name, sha256, image, the
 *                         metadata zvm-mkmodel printed, created (µs since the
 *                         epoch), written atomically after the image exists
 *   images/<sha256>.img   the content-addressed read-only model disk made by
 *                         "zvm-mkmodel disk" (daemon/tools/README.md); any
 *                         number of names and VMs share one image
 *   tmp/                  uploads and generated files being added
 *
 * A leaf module: it knows nothing of VMs. Whether a VM uses a model is the
 * caller's question (rest/models.c asks the registry).
 */

#include <stdint.h>

#include <json-c/json.h>

/* The image of model `name` (a record in <models_dir>/names/ whose image
 * exists and is readable). Reads one small file: cheap enough for the loop.
 * Returns 0, -ENOENT (no such model, or its image is gone: *ret_error says
 * which), -EINVAL (a broken record), -ENOMEM. */
int model_store_resolve(const char *models_dir, const char *name, char **ret_image, char **ret_error);
