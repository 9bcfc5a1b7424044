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

/* "include": an array of package names or a comma-separated string.
 * -EINVAL after replying 400. */
static int parse_include(HttpRequest *req, json_object *v, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n;

        if (json_object_is_type(v, json_type_string)) {
                if (strv_split(json_object_get_string(v), ", ", &l) < 0)
                        return -ENOMEM;
        } else if (json_object_is_type(v, json_type_array)) {
                n = json_object_array_length(v);
                for (size_t i = 0; i < n; i++) {
                        json_object *e = json_object_array_get_idx(v, i);

                        if (!json_object_is_type(e, json_type_string))
                                goto bad;
                        if (strv_extend(&l, json_object_get_string(e)) < 0)
                                return -ENOMEM;
                }
        } else
                goto bad;
        if (strv_length(l) > TEMPLATE_INCLUDE_MAX) {
                http_request_reply_error(req, API_ERROR_INVALID_VALUE, "include", "include: at most %u packages",
                                         TEMPLATE_INCLUDE_MAX);
                return -EINVAL;
        }
        STRV_FOREACH(p, l)
                if (!template_package_is_valid(*p)) {
                        http_request_reply_error(req, API_ERROR_INVALID_VALUE, "include",
                                                 "include: '%.64s' is not a Debian package name", *p);
                        return -EINVAL;
                }
        *ret = TAKE_PTR(l);
        return 0;
bad:
        http_request_reply_error(req, API_ERROR_INVALID_VALUE, "include",
                                 "include: must be an array of package names or a comma-separated string");
        return -EINVAL;
}

static ApiError build_error(int r) {
        switch (r) {
        case -EBUSY:
                return API_ERROR_CONFLICT;
        case -EEXIST:
                return API_ERROR_NAME_TAKEN;
        case -EAGAIN:
                return API_ERROR_UNAVAILABLE;
        default:
                return API_ERROR_INTERNAL;
        }
}

static void templates_build(Manager *m, HttpRequest *req, json_object *body) {
        _cleanup_strv_free_ char **include = NULL;
        _cleanup_free_ char *err = NULL;
        const char *name, *profile, *suite = NULL;
        json_object *v, *j = NULL;
        int r;

        json_object_object_foreach(body, key, val) {
                (void) val;
                if (!streq(key, "name") && !streq(key, "profile") && !streq(key, "suite") && !streq(key, "include")) {
                        http_request_reply_error(req, API_ERROR_UNKNOWN_KEY, key,
                                                 "%.64s: unknown (name, profile, suite, include)", key);
                        return;
                }
        }
        if (!json_object_object_get_ex(body, "name", &v) || !json_object_is_type(v, json_type_string) ||
            !template_name_is_valid(name = json_object_get_string(v))) {
                http_request_reply_error(req, API_ERROR_INVALID_VALUE, "name",
                                         "name: must match [a-z0-9][a-z0-9_.-]* (at most %u bytes, no \"..\", no .img)",
                                         TEMPLATE_NAME_MAX);
                return;
        }
        if (!json_object_object_get_ex(body, "profile", &v) || !json_object_is_type(v, json_type_string) ||
            !template_profile_is_valid(profile = json_object_get_string(v))) {
                http_request_reply_error(req, API_ERROR_INVALID_VALUE, "profile", "profile: must be tiny, standard or llm");
                return;
        }
        if (json_object_object_get_ex(body, "suite", &v) &&
            (!json_object_is_type(v, json_type_string) || !template_suite_is_valid(suite = json_object_get_string(v)))) {
                http_request_reply_error(req, API_ERROR_INVALID_VALUE, "suite",
                                         "suite: must be a Debian suite or codename, e.g. bookworm, trixie, sid");
                return;
        }
        if (streq(profile, "tiny") && (suite || json_object_object_get_ex(body, "include", NULL))) {
                http_request_reply_error(req, API_ERROR_INVALID_VALUE, suite ? "suite" : "include",
                                         "%s: the tiny profile is busybox, not Debian", suite ? "suite" : "include");
                return;
        }
        if (json_object_object_get_ex(body, "include", &v)) {
                r = parse_include(req, v, &include);
                if (r == -ENOMEM)
                        http_request_reply_error(req, API_ERROR_INTERNAL, NULL, "out of memory");
                if (r < 0)
                        return;
        }
        r = template_build(&m->templates, name, profile, suite, &include, &j, &err);
        if (r < 0) {
                http_request_reply_error(req, build_error(r), r == -EBUSY || r == -EEXIST ? "name" : NULL, "%s",
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
        rest_reply_json(req, 200, j);
}
