/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Template builds across a zvmd restart. The builder runs in its own
 * session, so it outlives a zvmd killed with SIGKILL (a clean exit cancels
 * its builds). Each build zvmd spawns is recorded in
 * <run>/template-builds/<name>.json (pid + start time, what it builds, its
 * log); the next zvmd adopts a builder that still runs (same pid and start
 * time, watched by pidfd), so GET /templates shows it building, its tmp
 * file survives the sweep, and its end is judged by whether the image
 * exists (it is no longer our child: no exit status). Adopting is safe
 * where killing is not needed: the builder only ever renames a complete,
 * synced image into place, and the pidfd cannot name another process.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fd-util.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "process.h"
#include "string-util.h"
#include "template-internal.h"
#include "time-util.h"

#define RECORD_MAX (16U * 1024U)

static char *records_dir(Templates *t) {
        return strjoin(t->paths->run, "/template-builds");
}

static char *record_name(const char *name) {
        return strjoin(name, ".json");
}

int build_record_save(TemplateBuild *b) {
        _cleanup_free_ char *dir = records_dir(b->templates), *name = record_name(b->name);
        json_object *o, *inc;
        int r;

        if (!dir || !name)
                return -ENOMEM;
        r = process_starttime(b->pid, &b->starttime);
        if (r < 0)
                return r;
        r = mkdir_p(dir, 0700);
        if (r < 0)
                return r;
        o = json_object_new_object();
        inc = json_object_new_array();
        if (!o || !inc) {
                json_object_put(o);
                json_object_put(inc);
                return -ENOMEM;
        }
        STRV_FOREACH(p, b->include)
                json_object_array_add(inc, json_object_new_string(*p));
        json_object_object_add(o, "pid", json_object_new_int64(b->pid));
        json_object_object_add(o, "starttime", json_object_new_int64((int64_t) b->starttime));
        json_object_object_add(o, "profile", json_object_new_string(b->profile));
        if (b->suite)
                json_object_object_add(o, "suite", json_object_new_string(b->suite));
        json_object_object_add(o, "include", inc);
        json_object_object_add(o, "log", json_object_new_string(b->log_path));
        json_object_object_add(o, "started", json_object_new_int64(b->started_wall));
        {
                const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);

                r = write_file_atomic(dir, name, text, strlen(text), 0600);
        }
        json_object_put(o);
        return r;
}

void build_record_remove(TemplateBuild *b) {
        _cleanup_free_ char *dir = records_dir(b->templates), *name = record_name(b->name);
        _cleanup_free_ char *path = dir && name ? strjoin(dir, "/", name) : NULL;

        if (path)
                (void) unlink(path);
}

static const char *get_str(json_object *o, const char *key) {
        json_object *v;

        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : NULL;
}

/* A TemplateBuild from a record; NULL if the record is unusable. */
static TemplateBuild *build_from_record(Templates *t, const char *name, json_object *o) {
        const char *profile = get_str(o, "profile"), *suite = get_str(o, "suite"), *log = get_str(o, "log");
        TemplateBuild *b;
        json_object *v;

        if (!template_name_is_valid(name) || !profile || !template_profile_is_valid(profile) || !log)
                return NULL;
        b = calloc(1, sizeof(*b));
        if (!b)
                return NULL;
        *b = (TemplateBuild) { .templates = t, .pidfd = -EBADF, .state = BUILD_RUNNING, .adopted = true };
        b->name = strdup(name);
        b->profile = strdup(profile);
        b->log_path = strdup(log);
        if (!b->name || !b->profile || !b->log_path || (suite && !(b->suite = strdup(suite))))
                return build_free(b);
        if (json_object_object_get_ex(o, "include", &v) && json_object_is_type(v, json_type_array))
                for (size_t i = 0; i < json_object_array_length(v) && i < TEMPLATE_INCLUDE_MAX; i++) {
                        const char *p = json_object_get_string(json_object_array_get_idx(v, i));

                        if (p && strv_extend(&b->include, p) < 0)
                                return build_free(b);
                }
        if (json_object_object_get_ex(o, "pid", &v))
                b->pid = (pid_t) json_object_get_int64(v);
        if (json_object_object_get_ex(o, "starttime", &v))
                b->starttime = (uint64_t) json_object_get_int64(v);
        if (json_object_object_get_ex(o, "started", &v))
                b->started_wall = json_object_get_int64(v);
        return b;
}

/* Watches a live builder; <0 if it is gone (or not ours any more). */
static int build_watch(TemplateBuild *b) {
        Templates *t = b->templates;
        int64_t elapsed = (int64_t) time(NULL) - b->started_wall;
        uint64_t left_s;
        int r;

        r = b->pid > 0 ? pidfd_open_checked(b->pid, b->starttime, &b->pidfd) : -ESRCH;
        if (r < 0)
                return r;
        elapsed = MIN(MAX(elapsed, 0), (int64_t) build_timeout_s());
        left_s = MAX((uint64_t) build_timeout_s() - (uint64_t) elapsed, 1U);
        b->started_mono = now_usec(CLOCK_MONOTONIC) - (uint64_t) elapsed * 1000000ULL;
        r = sd_event_add_io(t->event, &b->exit_source, b->pidfd, EPOLLIN, build_on_exit, b);
        if (r >= 0)
                r = sd_event_add_time_relative(t->event, &b->timeout_source, CLOCK_MONOTONIC, left_s * 1000000ULL, 0,
                                               build_on_timeout, b);
        return r;
}

/* A builder that ended while no zvmd ran: done if its image is there. */
static void build_ended_unwatched(TemplateBuild *b) {
        _cleanup_free_ char *img = image_path(b->templates, b->name);

        b->pid = 0;
        b->seconds = 0;
        if (file_exists(img)) {
                b->state = BUILD_DONE;
                build_write_meta(b);
                log_info("Template %s: its build finished while zvmd was not running", b->name);
        } else {
                b->state = BUILD_FAILED;
                b->error = strdup("the build ended while zvmd was not running, without an image");
                log_warning("Template %s: %s", b->name, strnull(b->error));
        }
}

static void adopt_one(Templates *t, int dfd, const char *dir, const char *file) {
        _cleanup_free_ char *name = NULL, *text = NULL, *path = strjoin(dir, "/", file);
        TemplateBuild *b = NULL, **nb;
        json_object *o;
        size_t l = strlen(file);

        if (l <= 5 || !streq(file + l - 5, ".json"))
                return;
        name = strndup(file, l - 5);
        if (!name || !path || read_full_file(path, &text, NULL, RECORD_MAX) < 0)
                goto drop;
        o = json_tokener_parse(text);
        if (o && json_object_is_type(o, json_type_object) && !build_find(t, name))
                b = build_from_record(t, name, o);
        json_object_put(o);
        if (!b)
                goto drop;
        nb = reallocarray(t->builds, t->n_builds + 1, sizeof(*nb));
        if (!nb) {
                build_free(b);
                goto drop;
        }
        t->builds = nb;
        t->builds[t->n_builds++] = b;
        if (build_watch(b) >= 0) {
                log_info("Template %s: adopted its running build (pid %d)", b->name, (int) b->pid);
                return;         /* the record stays until the build ends */
        }
        b->exit_source = sd_event_source_disable_unref(b->exit_source);
        b->pidfd = safe_close(b->pidfd);
        build_ended_unwatched(b);
drop:
        (void) unlinkat(dfd, file, 0);
}

void template_builds_adopt(Templates *t) {
        _cleanup_free_ char *dir = records_dir(t);
        DIR *d = dir ? opendir(dir) : NULL;
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        adopt_one(t, dirfd(d), dir, de->d_name);
        closedir(d);
}
