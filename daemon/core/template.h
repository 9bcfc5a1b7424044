/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Root filesystem templates: the read-only ext4 images VMs boot from, each
 * VM with its own writable layer on top.
 *
 * A template is <data>/templates/<name>.img, plus the built-in ones shipped
 * next to the kernel (<guest_dir>/rootfs-<name>.img: "tiny"). zvmd builds
 * new ones by running templates/zvm-mktemplate (mmdebstrap for Debian
 * profiles) as a child in its own session, with its output in
 * <cache>/template-logs/<name>.log. The REST side (rest/templates.c) maps
 * these onto:
 *
 *   POST   /templates               {name, profile, suite?, include?}: 202, building
 *   GET    /templates               every template and build
 *   GET    /templates/{name}        one, with its build's state and error
 *   GET    /templates/{name}/log?offset=N   the build log from byte N
 *   DELETE /templates/{name}        removes it (409 while a VM uses it);
 *                                   cancels a build in progress
 *
 * The builder writes <name>.img.tmp.<pid> and renames it into place only
 * when everything succeeded, so a failed, cancelled or killed build leaves
 * no template (zvmd also sweeps stale *.tmp.* at start, but not those of
 * a build it adopted). A build outlives a SIGKILLed zvmd: the next one
 * adopts it from <run>/template-builds/<name>.json (template-adopt.c).
 * Builds are cached by content in the builder's cache directory.
 */

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "paths.h"

typedef struct TemplateBuild TemplateBuild;

/* The names of the VMs whose rootfs is this template (pending or running
 * config), as a strv; NULL for none. */
typedef int (*template_users_fn)(const char *name, char ***ret, void *userdata);

/* The templates of one zvmd: given its loop and paths, and how to find a
 * template's users (the VM registry is above this module). */
typedef struct Templates {
        sd_event *event;
        const Paths *paths;
        template_users_fn users;
        void *userdata;
        TemplateBuild **builds;         /* running, and finished since start */
        size_t n_builds;
} Templates;

#define TEMPLATE_NAME_MAX 63U
#define TEMPLATE_INCLUDE_MAX 64U
#define TEMPLATE_BUILD_TIMEOUT_DEFAULT_S (60U * 60U)

/* Adopts the builds an earlier zvmd recorded, then removes what killed
 * builds left behind in the templates directory (not an adopted build's
 * files). */
void template_sweep(Templates *t);
/* Cancels every build (zvmd is exiting). */
void template_builds_free(Templates *t);
/* Whether a build of this name is under way. */
bool template_is_building(Templates *t, const char *name);

/* What a build request may name (the name itself: template_name_is_valid()). */
bool template_profile_is_valid(const char *profile);   /* tiny, standard, llm */
bool template_suite_is_valid(const char *suite);
bool template_package_is_valid(const char *package);    /* a Debian package name */

/* A POST /templates body once checked: the strings are the body's. */
typedef struct TemplateBuildRequest {
        const char *name, *profile, *suite;     /* suite: NULL for the profile's default */
        char **include;                          /* owned; NULL for none */
} TemplateBuildRequest;

/*
 * Checks a build request body (a JSON object) the way POST /templates
 * does: members name, profile, suite, include (an array of package names or
 * a comma-separated string) and nothing else. On success fills *ret (free
 * its include with strv_free()). On failure *ret is untouched: -EINVAL with
 * the offending member in *ret_key (a key not among the four is an unknown
 * one) and the reason in *ret_error, or -ENOMEM.
 */
/* Frees what a parsed request owns (its include). */
void template_build_request_done(TemplateBuildRequest *rq);
int template_build_request_parse(json_object *body, TemplateBuildRequest *ret, const char **ret_key, char **ret_error);

/* Every template and build, as the API lists them, sorted by name. */
int template_list_json(Templates *t, json_object **ret);
/* One template or build; -ENOENT if neither exists. */
int template_get_json(Templates *t, const char *name, json_object **ret);
/*
 * Starts building template `name` (arguments already validated); *include
 * is taken on success. *ret: the build as the API shows it. Errors, with a
 * message in *ret_error: -EBUSY being built already, -EEXIST the template
 * exists, -EAGAIN TEMPLATE_BUILDS_MAX builds run, -ENOENT the builder is
 * missing, -EIO it could not be started, -ENOMEM.
 */
int template_build(Templates *t, const char *name, const char *profile, const char *suite, char ***include,
                   json_object **ret, char **ret_error);
/* Up to 64 KiB of the build log from offset; -ENOENT if no build of that
 * name ran since zvmd started. */
int template_read_log(Templates *t, const char *name, uint64_t offset, char **ret, size_t *ret_size);
/*
 * Removes a template, cancels its running build, or forgets its failed
 * one. *ret: what was removed, as the API shows it. Errors, with a message
 * in *ret_error: -ENOENT, -EPERM built in, -EBUSY used by a VM, -EIO.
 */
int template_delete(Templates *t, const char *name, json_object **ret, char **ret_error);
