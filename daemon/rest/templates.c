/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* /templates: list, build, get, log, delete (core/template.h does the work). */
#include <errno.h>
#include <stdlib.h>

#include "request.h"
#include "routes.h"
#include "string-util.h"
#include "template.h"

void route_templates_list(void *ctx, HttpRequest *req, char **params) {
        json_object *a = NULL;

        (void) template_list_json(&((Rest *) ctx)->manager->templates, &a);
        rest_reply_json(req, 200, a);
}

static void templates_build(Manager *m, HttpRequest *req, json_object *body) {
        _cleanup_(template_build_request_done) TemplateBuildRequest rq = {};
        _cleanup_free_ char *err = NULL;
        const char *key = NULL;
        json_object *j = NULL;
        int r;

        r = template_build_request_parse(body, &rq, &key, &err);
        if (r == -ENOMEM) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                return;
        }
        if (r < 0) {
                bool known = streq(key, "name") || streq(key, "profile") || streq(key, "suite") || streq(key, "include");

                http_request_reply_error(req, known ? API_ERROR_INVALID_VALUE : API_ERROR_UNKNOWN_KEY, key, "%s",
                                         strempty(err));
                return;
        }
        r = template_build(&m->templates, rq.name, rq.profile, rq.suite, &rq.include, &j, &err);
        if (r < 0) {
                http_request_reply_error(req, rest_error_from_job_errno(r), r == -EBUSY || r == -EEXIST ? "name" : NULL, "%s",
                                         err ? err : r == -ENOMEM ? "out of memory" : errno_str(r));
                return;
        }
        rest_reply_json(req, 202, j);
}

void route_templates_build(void *ctx, HttpRequest *req, char **params) {
        json_object *body = rest_parse_body_object(req);

        if (!body)
                return;
        templates_build(((Rest *) ctx)->manager, req, body);
        json_object_put(body);
}

void route_template_get(void *ctx, HttpRequest *req, char **params) {
        json_object *j = NULL;
        int r;

        r = template_get_json(&((Rest *) ctx)->manager->templates, params[0], &j);
        if (r == -ENOENT) {
                http_request_reply_error(req, API_ERROR_NOT_FOUND, NULL, "no template '%.64s'", params[0]);
                return;
        }
        rest_reply_json(req, 200, j);
}

void route_template_log(void *ctx, HttpRequest *req, char **params) {
        const char *off_s = http_request_query(req, "offset");
        _cleanup_free_ char *buf = NULL;
        uint64_t offset = 0;
        size_t size = 0;
        int r;

        if (off_s && safe_atou64(off_s, &offset) < 0) {
                http_request_reply_error(req, API_ERROR_INVALID_VALUE, "offset", "offset: must be a byte offset");
                return;
        }
        r = template_read_log(&((Rest *) ctx)->manager->templates, params[0], offset, &buf, &size);
        if (r == -ENOENT) {
                http_request_reply_error(req, API_ERROR_NOT_FOUND, NULL, "no build of template '%.64s' since zvmd started",
                                         params[0]);
                return;
        }
        if (r < 0) {
                http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "cannot read the build log: %s", errno_str(r));
                return;
        }
        http_request_reply_text(req, 200, "text/plain; charset=utf-8", buf, size);
}

void route_template_delete(void *ctx, HttpRequest *req, char **params) {
        _cleanup_free_ char *err = NULL;
        json_object *j = NULL;
        int r;

        r = template_delete(&((Rest *) ctx)->manager->templates, params[0], &j, &err);
        if (r < 0) {
                http_request_reply_error(req,
                                         r == -ENOENT                  ? API_ERROR_NOT_FOUND
                                         : r == -EPERM || r == -EBUSY ? API_ERROR_CONFLICT
                                                                      : API_ERROR_INTERNAL,
                                         NULL, "%s", err ? err : r == -ENOMEM ? "out of memory" : errno_str(r));
                return;
        }
        /* Pool guests booted on it must not serve a VM made later with a
         * new template of the same name. */
        manager_pool_template_removed(((Rest *) ctx)->manager, params[0]);
        rest_reply_json(req, 200, j);
}
