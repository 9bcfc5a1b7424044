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
 * <cache>/template-logs/<name>.log:
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
 * no template (zvmd also sweeps stale *.tmp.* at start). Builds are cached
 * by content in the builder's cache directory.
 */

#include <stdbool.h>

typedef struct HttpRequest HttpRequest;
typedef struct Manager Manager;
typedef struct TemplateBuild TemplateBuild;

#define TEMPLATE_NAME_MAX 63U
#define TEMPLATE_INCLUDE_MAX 64U
#define TEMPLATE_BUILD_TIMEOUT_DEFAULT_S (60U * 60U)

/* Removes what killed builds left behind in the templates directory. */
void template_sweep(Manager *m);
/* Cancels every build (zvmd is exiting). */
void template_builds_free(Manager *m);
/* Whether a build of this name is under way. */
bool template_is_building(Manager *m, const char *name);

void route_templates_list(void *ctx, HttpRequest *req, char **params);
void route_templates_build(void *ctx, HttpRequest *req, char **params);
void route_template_get(void *ctx, HttpRequest *req, char **params);
void route_template_log(void *ctx, HttpRequest *req, char **params);
void route_template_delete(void *ctx, HttpRequest *req, char **params);
