/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fd-util.h"
#include "fileio.h"
#include "json-util.h"
#include "log.h"
#include "loop.h"
#include "macro.h"
#include "process.h"
#include "string-util.h"
#include "template.h"
#include "template-internal.h"
#include "time-util.h"

#define TEMPLATE_BUILDS_MAX 4U
#define TEMPLATE_LOG_CHUNK_MAX (64U * 1024U)
#define TEMPLATE_META_MAX (16U * 1024U)

static const char *const build_state_table[] = {
        [BUILD_RUNNING] = "building",
        [BUILD_DONE] = "ready",
        [BUILD_FAILED] = "failed",
        [BUILD_CANCELLED] = "cancelled",
};

/* "cancelling" while a cancelled builder is still removing its files. */
static const char *build_state_name(const TemplateBuild *b) {
        return b->state == BUILD_RUNNING && b->cancel ? "cancelling" : build_state_table[b->state];
}

/* Debian package names (policy 5.6.1), optionally with "/suite". */
bool template_package_is_valid(const char *p) {
        size_t n = strlen(p);

        return n >= 2 && n <= 64 && strchr("abcdefghijklmnopqrstuvwxyz0123456789", p[0]) &&
               p[strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789+.-")] == '\0';
}

bool template_suite_is_valid(const char *s) {
        size_t n = strlen(s);

        return n >= 2 && n <= 32 && s[strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-")] == '\0';
}


/* ---- paths ---------------------------------------------------------------------- */

char *image_path(Templates *t, const char *name) {
        return strjoin(t->paths->templates, "/", name, ".img");
}

static char *meta_name(const char *name) {
        return strjoin(".", name, ".json");
}

static char *builtin_path(Templates *t, const char *name) {
        return strjoin(t->paths->guest_dir, "/rootfs-", name, ".img");
}

bool file_exists(const char *path) {
        return path && access(path, F_OK) == 0;
}

/* ---- builds --------------------------------------------------------------------- */

TemplateBuild *build_find(Templates *t, const char *name) {
        for (size_t i = 0; i < t->n_builds; i++)
                if (streq(t->builds[i]->name, name))
                        return t->builds[i];
        return NULL;
}

bool template_is_building(Templates *t, const char *name) {
        TemplateBuild *b = build_find(t, name);

        return b && b->state == BUILD_RUNNING;
}

static void build_kill(TemplateBuild *b) {
        if (b->state != BUILD_RUNNING || b->pid <= 0)
                return;
        /* The builder is a session leader: its whole group (mmdebstrap, apt,
         * dpkg) goes; its EXIT trap removes the temporary image. */
        (void) kill(-b->pid, SIGTERM);
}

TemplateBuild *build_free(TemplateBuild *b) {
        if (!b)
                return NULL;
        sd_event_source_disable_unref(b->exit_source);
        sd_event_source_disable_unref(b->timeout_source);
        safe_close(b->pidfd);
        free(b->name);
        free(b->profile);
        free(b->suite);
        strv_free(b->include);
        free(b->log_path);
        free(b->error);
        return mfree(b);
}

static void build_remove(Templates *t, TemplateBuild *b) {
        for (size_t i = 0; i < t->n_builds; i++)
                if (t->builds[i] == b) {
                        memmove(t->builds + i, t->builds + i + 1,
                                (t->n_builds - i - 1) * sizeof(*t->builds));
                        t->n_builds--;
                        break;
                }
        build_free(b);
}

void template_builds_free(Templates *t) {
        for (size_t i = 0; i < t->n_builds; i++) {
                TemplateBuild *b = t->builds[i];

                if (b->state == BUILD_RUNNING && b->pid > 0) {
                        struct pollfd p = { .fd = b->pidfd, .events = POLLIN };

                        build_kill(b);
                        /* Bounded: the builder's trap only removes files. The
                         * pidfd, not waitpid(): an adopted builder is not our
                         * child. */
                        (void) poll(&p, 1, 5000);
                        (void) kill(-b->pid, SIGKILL);
                        (void) waitpid(b->pid, NULL, WNOHANG);
                        build_record_remove(b);
                }
                build_free(b);
        }
        t->builds = mfree(t->builds);
        t->n_builds = 0;
}

/* The builder's last line that says what went wrong, for the API's error. */
static char *log_error_line(const char *log_path) {
        _cleanup_free_ char *text = NULL;
        char *line, *save = NULL, *last = NULL, *last_error = NULL;
        size_t size = 0;
        _cleanup_close_ int fd = open(log_path, O_RDONLY | O_CLOEXEC);
        off_t end;

        if (fd < 0)
                return NULL;
        end = lseek(fd, 0, SEEK_END);
        if (end > 32 * 1024)
                (void) lseek(fd, end - 32 * 1024, SEEK_SET);
        else
                (void) lseek(fd, 0, SEEK_SET);
        if (read_full_fd(fd, &text, &size, 64 * 1024) < 0)
                return NULL;
        for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                if (isempty(line))
                        continue;
                last = line;
                if (strstr(line, "error") || strstr(line, "Error") || strstr(line, "E: "))
                        last_error = line;
        }
        return strdup(last_error ?: last ?: "the builder failed without a message");
}

void build_write_meta(TemplateBuild *b) {
        Templates *t = b->templates;
        _cleanup_free_ char *name = meta_name(b->name);
        json_object *o = json_object_new_object(), *inc = json_object_new_array();
        const char *text;

        if (!o || !inc || !name) {
                json_object_put(o);
                json_object_put(inc);
                return;
        }
        STRV_FOREACH(p, b->include)
                json_object_array_add(inc, json_object_new_string(*p));
        json_object_object_add(o, "profile", json_object_new_string(b->profile));
        if (b->suite)
                json_object_object_add(o, "suite", json_object_new_string(b->suite));
        json_object_object_add(o, "include", inc);
        json_object_object_add(o, "built", json_object_new_int64(time(NULL)));
        json_object_object_add(o, "build_seconds", json_object_new_fixed(b->seconds, 3));
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        if (write_file_atomic(t->paths->templates, name, text, strlen(text), 0644) < 0)
                log_warning("Template %s: cannot write its metadata", b->name);
        json_object_put(o);
}

/* status: the builder's wait status; -1 for an adopted builder (not our
 * child): then the image alone tells whether it succeeded. */
static void build_finish(TemplateBuild *b, int status) {
        _cleanup_free_ char *img = image_path(b->templates, b->name);
        bool ok = (status == -1 || (WIFEXITED(status) && WEXITSTATUS(status) == 0)) && file_exists(img);

        b->seconds = (double) (now_usec(CLOCK_MONOTONIC) - b->started_mono) / 1e6;
        b->exit_source = sd_event_source_disable_unref(b->exit_source);
        b->timeout_source = sd_event_source_disable_unref(b->timeout_source);
        b->pidfd = safe_close(b->pidfd);
        b->pid = 0;
        build_record_remove(b);
        if (b->cancel) {
                b->state = BUILD_CANCELLED;
                log_info("Template %s: build cancelled after %.1f s", b->name, b->seconds);
                return;
        }
        if (ok) {
                b->state = BUILD_DONE;
                build_write_meta(b);
                log_info("Template %s: built in %.1f s", b->name, b->seconds);
                return;
        }
        b->state = BUILD_FAILED;
        free(b->error);
        b->error = log_error_line(b->log_path);
        if (!b->error && asprintf(&b->error, "the builder exited with status %d", status) < 0)
                b->error = NULL;
        log_warning("Template %s: build failed after %.1f s: %s", b->name, b->seconds, strnull(b->error));
}

int build_on_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        loop_note("template build exited");
        TemplateBuild *b = userdata;
        int status = -1;

        if (!b->adopted && waitpid(b->pid, &status, WNOHANG) <= 0)
                status = W_EXITCODE(1, 0);
        build_finish(b, status);
        return 0;
}

int build_on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        loop_note("template build timeout");
        TemplateBuild *b = userdata;

        log_warning("Template %s: build still running after its time limit; killing it", b->name);
        free(b->error);
        b->error = strdup("the build took longer than its time limit (ZVM_TEMPLATE_BUILD_TIMEOUT)");
        build_kill(b);
        return 0;
}

unsigned build_timeout_s(void) {
        const char *e = getenv("ZVM_TEMPLATE_BUILD_TIMEOUT");
        uint32_t v;

        if (e && safe_atou32(e, &v) >= 0 && v > 0)
                return v;
        return TEMPLATE_BUILD_TIMEOUT_DEFAULT_S;
}

static int build_spawn(TemplateBuild *b) {
        Templates *t = b->templates;
        _cleanup_free_ char *out = image_path(t, b->name), *include = NULL, *logdir = NULL;
        const char *cache = getenv("ZVM_CACHE_DIR") ?: t->paths->cache;
        _cleanup_close_ int log_fd = -EBADF;
        const char *argv[16];
        size_t n = 0;
        int r;

        if (!out)
                return -ENOMEM;
        if (b->include) {
                include = strv_join(b->include, ",");
                if (!include)
                        return -ENOMEM;
        }
        logdir = strjoin(t->paths->cache, "/template-logs");
        if (!logdir)
                return -ENOMEM;
        r = mkdir_p(logdir, 0755);
        if (r < 0)
                return r;
        b->log_path = strjoin(logdir, "/", b->name, ".log");
        if (!b->log_path)
                return -ENOMEM;
        log_fd = open(b->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
        if (log_fd < 0)
                return -errno;

        argv[n++] = t->paths->mktemplate;
        argv[n++] = "--profile";
        argv[n++] = b->profile;
        if (b->suite) {
                argv[n++] = "--suite";
                argv[n++] = b->suite;
        }
        if (include) {
                argv[n++] = "--include";
                argv[n++] = include;
        }
        argv[n++] = "--agent";
        argv[n++] = t->paths->agent_binary;
        argv[n++] = "--cache-dir";
        argv[n++] = cache;
        argv[n++] = out;
        argv[n] = NULL;

        r = process_spawn((char *const *) argv, NULL, 0, log_fd, true, &b->pid);
        if (r < 0)
                return r;
        /* Our unreaped child: its pid cannot be reused yet. */
        b->pidfd = (int) syscall(SYS_pidfd_open, b->pid, 0);
        r = b->pidfd < 0 ? -errno : 0;
        if (r < 0) {
                (void) kill(-b->pid, SIGKILL);
                (void) waitpid(b->pid, NULL, 0);
                return r;
        }
        r = sd_event_add_io(t->event, &b->exit_source, b->pidfd, EPOLLIN, build_on_exit, b);
        if (r >= 0)
                r = sd_event_add_time_relative(t->event, &b->timeout_source, CLOCK_MONOTONIC,
                                               (uint64_t) build_timeout_s() * 1000000ULL, 0, build_on_timeout, b);
        if (r < 0) {
                (void) kill(-b->pid, SIGKILL);
                (void) waitpid(b->pid, NULL, 0);
                return r;
        }
        b->started_mono = now_usec(CLOCK_MONOTONIC);
        b->started_wall = time(NULL);
        r = build_record_save(b);
        if (r < 0)
                log_warning_errno(r, "Template %s: cannot record the build, a restarted zvmd will not adopt it: %m",
                                  b->name);
        log_info("Template %s: building (profile %s%s%s), log %s", b->name, b->profile, b->suite ? ", suite " : "",
                 strempty(b->suite), b->log_path);
        return 0;
}

/* ---- sweeping ------------------------------------------------------------------- */

/* A file a running build's builder may still write: <name>.img.tmp.* */
static bool build_owns(Templates *t, const char *file) {
        for (size_t i = 0; i < t->n_builds; i++) {
                TemplateBuild *b = t->builds[i];
                const char *rest = b->state == BUILD_RUNNING ? startswith(file, b->name) : NULL;

                if (rest && startswith(rest, ".img.tmp."))
                        return true;
        }
        return false;
}

void template_sweep(Templates *t) {
        DIR *d;
        struct dirent *de;

        template_builds_adopt(t);       /* first: their files are not stale */
        d = opendir(t->paths->templates);
        if (!d)
                return;
        while ((de = readdir(d)))
                if ((strstr(de->d_name, ".img.tmp.") || startswith(de->d_name, ".#")) && !build_owns(t, de->d_name)) {
                        log_notice("Removing %s/%s, left by an interrupted template build", t->paths->templates,
                                   de->d_name);
                        (void) unlinkat(dirfd(d), de->d_name, 0);
                }
        closedir(d);
}

/* ---- JSON ----------------------------------------------------------------------- */

/* The names of the VMs whose rootfs is this template: a strv, NULL for
 * none. */
static int template_users(Templates *t, const char *name, char ***ret) {
        if (!t->users) {
                *ret = NULL;
                return 0;
        }
        return t->users(name, ret, t->userdata);
}

static json_object *used_by(Templates *t, const char *name) {
        _cleanup_strv_free_ char **users = NULL;
        json_object *a = json_object_new_array();

        if (template_users(t, name, &users) < 0) {
                json_object_put(a);
                return NULL;
        }
        STRV_FOREACH(u, users)
                if (a)
                        json_object_array_add(a, json_object_new_string(*u));
        return a;
}

static void add_build(json_object *o, TemplateBuild *b) {
        json_object *j = json_object_new_object();

        if (!j)
                return;
        json_object_object_add(j, "state", json_object_new_string(build_state_name(b)));
        json_object_object_add(j, "profile", json_object_new_string(b->profile));
        json_object_object_add(j, "started", json_object_new_int64(b->started_wall));
        json_object_object_add(j, "seconds",
                               json_object_new_fixed(b->state == BUILD_RUNNING
                                                             ? (double) (now_usec(CLOCK_MONOTONIC) - b->started_mono) / 1e6
                                                             : b->seconds,
                                                     3));
        json_object_object_add(j, "log", json_object_new_string(b->log_path));
        if (b->error)
                json_object_object_add(j, "error", json_object_new_string(b->error));
        json_object_object_add(o, "build", j);
}

/* One template, as the API shows it. path: its image, or NULL while it
 * only exists as a build. */
static json_object *template_json(Templates *t, const char *name, const char *path, bool builtin) {
        json_object *o = json_object_new_object(), *meta = NULL, *v;
        TemplateBuild *b = build_find(t, name);
        struct stat st;

        if (!o)
                return NULL;
        json_object_object_add(o, "name", json_object_new_string(name));
        if (path && stat(path, &st) >= 0) {
                _cleanup_free_ char *mname = meta_name(name), *mpath = NULL, *text = NULL;

                json_object_object_add(o, "state", json_object_new_string(
                                                   b && b->state == BUILD_RUNNING ? build_state_name(b) : "ready"));
                json_object_object_add(o, "path", json_object_new_string(path));
                json_object_object_add(o, "size", json_object_new_int64((int64_t) st.st_size));
                json_object_object_add(o, "disk_usage", json_object_new_int64((int64_t) st.st_blocks * 512));
                json_object_object_add(o, "created", json_object_new_int64((int64_t) st.st_mtime));
                json_object_object_add(o, "builtin", json_object_new_boolean(builtin));
                mpath = mname ? strjoin(t->paths->templates, "/", mname) : NULL;
                if (builtin)
                        json_object_object_add(o, "profile", json_object_new_string(name));
                else if (mpath && read_full_file(mpath, &text, NULL, TEMPLATE_META_MAX) >= 0 &&
                         (meta = json_tokener_parse(text)) && json_object_is_type(meta, json_type_object)) {
                        static const char *const keys[] = { "profile", "suite", "include", "build_seconds" };

                        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                                if (json_object_object_get_ex(meta, keys[i], &v))
                                        json_object_object_add(o, keys[i], json_object_get(v));
                }
                json_object_put(meta);
        } else {
                json_object_object_add(o, "state", json_object_new_string(b ? build_state_name(b) : "unknown"));
                if (b)
                        json_object_object_add(o, "profile", json_object_new_string(b->profile));
        }
        json_object_object_add(o, "used_by", used_by(t, name));
        if (b)
                add_build(o, b);
        return o;
}

/* Finds a template by name: its image (user's first, then built-in). */
static int template_lookup(Templates *t, const char *name, char **ret_path, bool *ret_builtin) {
        _cleanup_free_ char *a = image_path(t, name), *b = builtin_path(t, name);

        if (!a || !b)
                return -ENOMEM;
        if (file_exists(a)) {
                *ret_path = TAKE_PTR(a);
                *ret_builtin = false;
                return 0;
        }
        if (file_exists(b)) {
                *ret_path = TAKE_PTR(b);
                *ret_builtin = true;
                return 0;
        }
        return -ENOENT;
}

static bool name_seen(json_object *a, const char *name) {
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *v;

                if (json_object_object_get_ex(json_object_array_get_idx(a, i), "name", &v) &&
                    streq(json_object_get_string(v), name))
                        return true;
        }
        return false;
}

static void list_dir(Templates *t, json_object *a, const char *dir, const char *prefix, bool builtin) {
        DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d))) {
                _cleanup_free_ char *name = NULL, *path = NULL;
                const char *n = de->d_name;
                size_t l = strlen(n);

                if (n[0] == '.' || !startswith(n, prefix) || l < strlen(prefix) + 5 || !streq(n + l - 4, ".img"))
                        continue;
                name = strndup(n + strlen(prefix), l - strlen(prefix) - 4);
                path = strjoin(dir, "/", n);
                if (!name || !path || !template_name_is_valid(name) || name_seen(a, name))
                        continue;
                json_object_array_add(a, template_json(t, name, path, builtin));
        }
        closedir(d);
}

static int cmp_name(const void *x, const void *y) {
        json_object *const *a = x, *const *b = y;
        json_object *va, *vb;

        (void) json_object_object_get_ex(*a, "name", &va);
        (void) json_object_object_get_ex(*b, "name", &vb);
        return strcmp(json_object_get_string(va), json_object_get_string(vb));
}

/* ---- what rest/templates.c calls -------------------------------------------------- */

bool template_profile_is_valid(const char *p) {
        return streq(p, "tiny") || streq(p, "standard") || streq(p, "llm");
}

/* "include": an array of package names or a comma-separated string. */
static int parse_include(json_object *v, char ***ret, char **ret_error) {
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
        if (strv_length(l) > TEMPLATE_INCLUDE_MAX)
                return set_error(ret_error, "include: at most %u packages", TEMPLATE_INCLUDE_MAX), -EINVAL;
        STRV_FOREACH(p, l)
                if (!template_package_is_valid(*p))
                        return set_error(ret_error, "include: '%.64s' is not a Debian package name",
                                         string_for_message(*p)), -EINVAL;
        *ret = TAKE_PTR(l);
        return 0;
bad:
        return set_error(ret_error, "include: must be an array of package names or a comma-separated string"), -EINVAL;
}

void template_build_request_done(TemplateBuildRequest *rq) {
        rq->include = strv_free(rq->include);
}

int template_build_request_parse(json_object *body, TemplateBuildRequest *ret, const char **ret_key, char **ret_error) {
        _cleanup_strv_free_ char **include = NULL;
        const char *name, *profile, *suite = NULL;
        json_object *v;
        int r;

        assert_return(body, -EINVAL);
        assert_return(ret, -EINVAL);

        json_object_object_foreach(body, key, val) {
                (void) val;
                if (!streq(key, "name") && !streq(key, "profile") && !streq(key, "suite") && !streq(key, "include")) {
                        if (ret_key)
                                *ret_key = key;
                        return set_error(ret_error, "%.64s: unknown (name, profile, suite, include)",
                                         string_for_message(key)), -EINVAL;
                }
        }
        if (ret_key)
                *ret_key = "name";
        if (!json_object_object_get_ex(body, "name", &v) || !json_object_is_type(v, json_type_string) ||
            !template_name_is_valid(name = json_object_get_string(v)))
                return set_error(ret_error, "name: must match [a-z0-9][a-z0-9_.-]* (at most %u bytes, no \"..\", no .img)",
                                 TEMPLATE_NAME_MAX), -EINVAL;
        if (ret_key)
                *ret_key = "profile";
        if (!json_object_object_get_ex(body, "profile", &v) || !json_object_is_type(v, json_type_string) ||
            !template_profile_is_valid(profile = json_object_get_string(v)))
                return set_error(ret_error, "profile: must be tiny, standard or llm"), -EINVAL;
        if (ret_key)
                *ret_key = "suite";
        if (json_object_object_get_ex(body, "suite", &v) &&
            (!json_object_is_type(v, json_type_string) || !template_suite_is_valid(suite = json_object_get_string(v))))
                return set_error(ret_error, "suite: must be a Debian suite or codename, e.g. bookworm, trixie, sid"), -EINVAL;
        if (streq(profile, "tiny") && (suite || json_object_object_get_ex(body, "include", NULL))) {
                if (ret_key)
                        *ret_key = suite ? "suite" : "include";
                return set_error(ret_error, "%s: the tiny profile is busybox, not Debian", suite ? "suite" : "include"),
                       -EINVAL;
        }
        if (ret_key)
                *ret_key = "include";
        if (json_object_object_get_ex(body, "include", &v)) {
                r = parse_include(v, &include, ret_error);
                if (r < 0)
                        return r;
        }
        *ret = (TemplateBuildRequest) { .name = name, .profile = profile, .suite = suite, .include = TAKE_PTR(include) };
        return 0;
}

int template_list_json(Templates *t, json_object **ret) {
        json_object *a = json_object_new_array();

        if (!a)
                return -ENOMEM;
        list_dir(t, a, t->paths->templates, "", false);
        list_dir(t, a, t->paths->guest_dir, "rootfs-", true);
        for (size_t i = 0; i < t->n_builds; i++)
                if (!name_seen(a, t->builds[i]->name))
                        json_object_array_add(a, template_json(t, t->builds[i]->name, NULL, false));
        json_object_array_sort(a, cmp_name);
        *ret = a;
        return 0;
}

int template_build(Templates *t, const char *name, const char *profile, const char *suite, char ***include,
                   json_object **ret, char **ret_error) {
        _cleanup_free_ char *existing = NULL;
        TemplateBuild *b = NULL, *old, **nb;
        bool builtin;
        size_t running = 0;
        int r;

        if (template_is_building(t, name))
                return set_error(ret_error, "template '%s' is being built already", name), -EBUSY;
        if (template_lookup(t, name, &existing, &builtin) >= 0)
                return set_error(ret_error, "template '%s' exists: remove it first (zvm template rm %s)", name, name),
                       -EEXIST;
        for (size_t i = 0; i < t->n_builds; i++)
                running += t->builds[i]->state == BUILD_RUNNING;
        if (running >= TEMPLATE_BUILDS_MAX)
                return set_error(ret_error, "%zu template builds are running already", running), -EAGAIN;
        if (access(t->paths->mktemplate, X_OK) < 0)
                return set_error(ret_error, "the template builder %s is missing: %s", t->paths->mktemplate,
                                 errno_str(errno)), -ENOENT;

        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        *b = (TemplateBuild) { .templates = t, .pidfd = -EBADF, .state = BUILD_RUNNING };
        b->name = strdup(name);
        b->profile = strdup(profile);
        if (!b->name || !b->profile || (suite && !(b->suite = strdup(suite)))) {
                build_free(b);
                return -ENOMEM;
        }
        nb = reallocarray(t->builds, t->n_builds + 1, sizeof(*nb));
        if (!nb) {
                build_free(b);
                return -ENOMEM;
        }
        t->builds = nb;
        b->include = TAKE_PTR(*include);
        r = build_spawn(b);
        if (r < 0) {
                *include = TAKE_PTR(b->include);
                build_free(b);
                return set_error(ret_error, "cannot start the template builder: %s", errno_str(r)), -EIO;
        }
        old = build_find(t, name);
        if (old)
                build_remove(t, old);
        t->builds[t->n_builds++] = b;
        *ret = template_json(t, name, NULL, false);
        return 0;
}

int template_get_json(Templates *t, const char *name, json_object **ret) {
        _cleanup_free_ char *path = NULL;
        bool builtin = false;
        json_object *j;
        int r;

        r = template_lookup(t, name, &path, &builtin);
        if (r == -ENOENT && !build_find(t, name))
                return -ENOENT;
        j = template_json(t, name, path, builtin);
        if (!j)
                return -ENOMEM;
        *ret = j;
        return 0;
}

int template_read_log(Templates *t, const char *name, uint64_t offset, char **ret, size_t *ret_size) {
        TemplateBuild *b = build_find(t, name);
        _cleanup_free_ char *buf = NULL;
        _cleanup_close_ int fd = -EBADF;
        ssize_t n;

        if (!b)
                return -ENOENT;
        fd = open(b->log_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        buf = malloc(TEMPLATE_LOG_CHUNK_MAX);
        if (!buf)
                return -ENOMEM;
        n = pread(fd, buf, TEMPLATE_LOG_CHUNK_MAX, (off_t) offset);
        if (n < 0)
                return -errno;
        *ret = TAKE_PTR(buf);
        *ret_size = (size_t) n;
        return 0;
}

int template_delete(Templates *t, const char *name, json_object **ret, char **ret_error) {
        TemplateBuild *b = build_find(t, name);
        _cleanup_free_ char *path = NULL, *meta = NULL;
        _cleanup_strv_free_ char **users = NULL;
        json_object *j;
        bool builtin = false;
        int r;

        if (b && b->state == BUILD_RUNNING) {
                b->cancel = true;
                free(b->error);
                b->error = strdup("cancelled");
                build_kill(b);
                *ret = template_json(t, name, NULL, false);
                return 0;
        }
        r = template_lookup(t, name, &path, &builtin);
        if (r == -ENOENT) {
                if (b) {        /* only a failed build to forget */
                        build_remove(t, b);
                        *ret = json_object_new_object();
                        return 0;
                }
                return set_error(ret_error, "no template '%.64s'", name), -ENOENT;
        }
        if (r < 0)
                return r;
        if (builtin)
                return set_error(ret_error, "template '%s' is built in (%s), shipped with zvm", name, path), -EPERM;
        if (template_users(t, name, &users) < 0)
                return -ENOMEM;
        if (users) {
                _cleanup_free_ char *list = strv_join(users, ", ");

                return set_error(ret_error,
                                 "template '%s' is used by VM(s) %s: delete them or change their rootfs first", name,
                                 strnull(list)),
                       -EBUSY;
        }
        j = template_json(t, name, path, false);
        if (unlink(path) < 0) {
                r = -errno;
                json_object_put(j);
                return set_error(ret_error, "cannot remove %s: %s", path, errno_str(r)), -EIO;
        }
        meta = meta_name(name);
        if (meta) {
                _cleanup_free_ char *mpath = strjoin(t->paths->templates, "/", meta);

                if (mpath)
                        (void) unlink(mpath);
        }
        if (b)
                build_remove(t, b);
        log_info("Template %s removed", name);
        *ret = j;
        return 0;
}
