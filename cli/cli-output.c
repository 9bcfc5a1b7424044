/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <inttypes.h>

#include "cli-output.h"
#include "cli-text.h"
#include "macro.h"
#include "string-util.h"

/* Numbers from zvmd may arrive as JSON numbers or, for config values (which
 * are stored as strings), as decimal strings. */
static bool json_get_u64(json_object *v, uint64_t *ret) {
        switch (json_object_get_type(v)) {
        case json_type_int:
                if (json_object_get_int64(v) < 0)
                        return false;
                *ret = (uint64_t) json_object_get_int64(v);
                return true;
        case json_type_double:
                if (!(json_object_get_double(v) >= 0))
                        return false;
                *ret = (uint64_t) json_object_get_double(v);
                return true;
        case json_type_string:
                return safe_atou64(json_object_get_string(v), ret) >= 0;
        default:
                return false;
        }
}

static bool json_get_double(json_object *v, double *ret) {
        uint64_t u;

        switch (json_object_get_type(v)) {
        case json_type_int:
        case json_type_double:
                *ret = json_object_get_double(v);
                return true;
        case json_type_string:
                if (!json_get_u64(v, &u))
                        return false;
                *ret = (double) u;
                return true;
        default:
                return false;
        }
}

/* Looks up "key" or "key.sub" (one level) in an object; NULL if absent or
 * JSON null. */
/* The items of a JSON array as config values, joined by sep; "" for an
 * empty array or a non-array. NULL on OOM. */
static char *json_list_join(json_object *a, const char *sep) {
        _cleanup_strv_free_ char **items = NULL;

        for (size_t i = 0; json_object_is_type(a, json_type_array) && i < json_object_array_length(a); i++) {
                char *item = cli_json_to_value_string(json_object_array_get_idx(a, i));

                if (!item || strv_push(&items, item) < 0) {
                        free(item);
                        return NULL;
                }
        }
        return items ? strv_join(items, sep) : strdup("");
}

static json_object *json_get_path(json_object *o, const char *path) {
        const char *dot = strchr(path, '.');
        json_object *v = NULL;

        if (!dot) {
                (void) json_object_object_get_ex(o, path, &v);
                return v;
        }

        _cleanup_free_ char *first = strndup(path, dot - path);
        if (!first || !json_object_object_get_ex(o, first, &v))
                return NULL;
        return json_get_path(v, dot + 1);
}

/* ---- key/value blocks ------------------------------------------------------------ */

typedef enum FieldKind {
        FIELD_TEXT,
        FIELD_DURATION,
        FIELD_CPU,
        FIELD_BYTES,
        FIELD_MIB,
        FIELD_LIST,             /* array of strings, joined with ", " */
        FIELD_LINES,            /* array of strings, one indented line each, after the block */
        FIELD_QEMU_LOG,         /* FIELD_LINES without the command line zvmd writes first */
        FIELD_OBJECT,           /* an object, as an indented block after the block */
        FIELD_BOOL,             /* yes / no */
        FIELD_HOST_MEMORY,      /* status host_memory: the PSS and its parts on one line */
        FIELD_AUTOBALLOON,      /* host autoballoon: the mode and its thresholds on one line */
        FIELD_POOL,             /* host pool: ready guests, shape, claims on one line */
} FieldKind;

typedef struct Field {
        const char *path;       /* "key" or "key.sub" */
        const char *label;
        FieldKind kind;
} Field;

static double member_double(json_object *o, const char *key) {
        double d = 0;

        (void) json_get_double(json_get_path(o, key), &d);
        return d;
}

static char *host_memory_value(json_object *m) {
        char *s = NULL;

        if (asprintf(&s, "%.1fM (guest RAM %.1fM, TCG cache %.1fM, QEMU %.1fM, files %.1fM, helpers %.1fM)",
                     member_double(m, "pss_mib"), member_double(m, "guest_ram_mib"), member_double(m, "tcg_cache_mib"),
                     member_double(m, "qemu_private_mib"), member_double(m, "files_mib"),
                     member_double(m, "helper_mib")) < 0)
                return NULL;
        return s;
}

static char *autoballoon_value(json_object *a) {
        json_object *enabled = json_get_path(a, "enabled");
        char *s = NULL;

        if (!json_object_is_type(enabled, json_type_boolean) || !json_object_get_boolean(enabled))
                return strdup("off");
        if (asprintf(&s, "%s (host %.0f%% used; shrinks balloons at %.0f%%, grows them below %.0f%%)",
                     json_object_get_string(json_get_path(a, "mode")) ?: "?", member_double(a, "used_pct"),
                     member_double(a, "high_pct"), member_double(a, "low_pct")) < 0)
                return NULL;
        return s;
}

static char *pool_value(json_object *p) {
        char *s = NULL;

        if (member_double(p, "size") <= 0 && member_double(p, "guests") <= 0)
                return strdup("off");
        if (asprintf(&s, "%.0f of %.0f ready (template %s, %.0fM, %.0f core(s)); %.0f claimed, %.0f cold start(s), "
                     "%.0f with none ready",
                     member_double(p, "ready"), member_double(p, "size"),
                     json_object_get_string(json_get_path(p, "template")) ?: "?", member_double(p, "memory"),
                     member_double(p, "cores"), member_double(p, "claims"), member_double(p, "misses"),
                     member_double(p, "empty")) < 0)
                return NULL;
        return s;
}

static char *field_value(FieldKind kind, json_object *v) {
        char buf[CLI_FORMAT_MAX];
        uint64_t u;
        double d;

        switch (kind) {
        case FIELD_BOOL:
                if (json_object_is_type(v, json_type_boolean))
                        return strdup(json_object_get_boolean(v) ? "yes" : "no");
                break;
        case FIELD_HOST_MEMORY:
                if (json_object_is_type(v, json_type_object))
                        return host_memory_value(v);
                break;
        case FIELD_AUTOBALLOON:
                if (json_object_is_type(v, json_type_object))
                        return autoballoon_value(v);
                break;
        case FIELD_POOL:
                if (json_object_is_type(v, json_type_object))
                        return pool_value(v);
                break;
        case FIELD_DURATION:
                if (json_get_double(v, &d))
                        return strdup(cli_format_duration(buf, sizeof(buf), d));
                break;
        case FIELD_CPU:
                if (json_get_double(v, &d))
                        return strdup(cli_format_cpu(buf, sizeof(buf), d));
                break;
        case FIELD_BYTES:
                if (json_get_u64(v, &u))
                        return strdup(cli_format_bytes(buf, sizeof(buf), u));
                break;
        case FIELD_MIB:
                if (json_get_u64(v, &u))
                        return strdup(cli_format_mib(buf, sizeof(buf), u));
                break;
        case FIELD_LIST:
                if (json_object_is_type(v, json_type_array))
                        return json_list_join(v, ", ");
                break;
        default:
                break;
        }
        return cli_json_to_value_string(v);
}

static bool field_known(const Field *fields, size_t n, const char *key) {
        for (size_t i = 0; i < n; i++) {
                size_t l = strcspn(fields[i].path, ".");

                if (strlen(key) == l && strneq(fields[i].path, key, l))
                        return true;
        }
        return false;
}

static int kv_add(CliTable *t, const char *label, const char *value) {
        _cleanup_free_ char *l = strjoin(label, ":");
        int r;

        if (!l || !value)
                return -ENOMEM;
        r = cli_table_add(t, l);
        if (r < 0)
                return r;
        return cli_table_add(t, value);
}

/* A scalar or an array of them as one value: arrays joined with ", ", an
 * empty one as "-". */
static char *scalar_text(json_object *v) {
        if (json_object_is_type(v, json_type_array))
                return json_object_array_length(v) > 0 ? json_list_join(v, ", ") : strdup("-");
        return cli_json_to_value_string(v);
}

/* Adds "key: value" for each key of obj that fields do not name, except
 * objects unless objects_too (they become blocks of their own). */
static int kv_add_values(CliTable *t, json_object *obj, const Field *fields, size_t n, bool objects_too) {
        int r;

        if (!json_object_is_type(obj, json_type_object))
                return 0;
        json_object_object_foreach(obj, key, v) {
                if (!v || field_known(fields, n, key) || (!objects_too && json_object_is_type(v, json_type_object)))
                        continue;
                _cleanup_free_ char *value = scalar_text(v);
                r = kv_add(t, key, value);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Nesting shown as blocks; deeper objects (zvmd passes the guest agent's
 * READY through) are one compact value. */
#define OBJECT_BLOCK_DEPTH_MAX 3U

/* "label:" then the object's scalars as aligned "key: value" lines and its
 * objects as blocks of their own, each level indented by two more blanks. */
static int object_block_write(json_object *o, const char *label, unsigned depth, FILE *f) {
        _cleanup_table_ CliTable *t = cli_table_new(2, NULL);
        _cleanup_free_ char *text = NULL, *l = cli_sanitize_dup(label);
        int r;

        if (!t || !l)
                return -ENOMEM;
        fprintf(f, "%*s%s:\n", (int) (2 * depth), "", l);

        /* Past the depth limit, objects are values too. */
        r = kv_add_values(t, o, NULL, 0, depth + 1 >= OBJECT_BLOCK_DEPTH_MAX);
        if (r < 0)
                return r;
        r = cli_table_format_sep(t, " ", &text);
        if (r < 0)
                return r;
        for (const char *line = strempty(text); *line;) {
                size_t len = strcspn(line, "\n");

                fprintf(f, "%*s%.*s\n", (int) (2 * depth + 2), "", (int) len, line);
                line += len + (line[len] == '\n');
        }

        json_object_object_foreach(o, k2, v2) {
                if (!json_object_is_type(v2, json_type_object) || depth + 1 >= OBJECT_BLOCK_DEPTH_MAX)
                        continue;
                r = object_block_write(v2, k2, depth + 1, f);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* "label:" and the strings of array a as indented lines; nothing for an
 * empty or absent array. */
static int lines_write(json_object *a, const char *label, bool skip_qemu_argv, FILE *f) {
        bool header = false;

        for (size_t j = 0; json_object_is_type(a, json_type_array) && j < json_object_array_length(a); j++) {
                _cleanup_free_ char *raw = cli_json_to_value_string(json_object_array_get_idx(a, j));
                _cleanup_free_ char *line = raw ? cli_sanitize_dup(raw) : NULL;

                if (!line)
                        return -ENOMEM;
                if (skip_qemu_argv && cli_line_is_qemu_argv(line))
                        continue;
                if (!header)
                        fprintf(f, "%s:\n", label);
                header = true;
                fprintf(f, "  %s\n", line);
        }
        return 0;
}

/* Writes the fields of obj that are present, aligned; with extras, also
 * keys the table does not know (a newer daemon's), so nothing is hidden. */
static int kv_write(json_object *obj, const Field *fields, size_t n, bool extras, FILE *f) {
        _cleanup_table_ CliTable *t = NULL;
        _cleanup_free_ char *text = NULL;
        int r;

        t = cli_table_new(2, NULL);
        if (!t)
                return -ENOMEM;

        for (size_t i = 0; i < n; i++) {
                json_object *v = json_get_path(obj, fields[i].path);

                if (!v || fields[i].kind == FIELD_LINES || fields[i].kind == FIELD_QEMU_LOG ||
                    fields[i].kind == FIELD_OBJECT ||
                    (fields[i].kind == FIELD_LIST && json_object_is_type(v, json_type_array) &&
                     json_object_array_length(v) == 0))
                        continue;
                _cleanup_free_ char *value = field_value(fields[i].kind, v);
                r = kv_add(t, fields[i].label, value);
                if (r < 0)
                        return r;
        }

        if (extras) {
                r = kv_add_values(t, obj, fields, n, false);
                if (r < 0)
                        return r;
        }

        r = cli_table_format_sep(t, " ", &text);
        if (r < 0)
                return r;
        fputs(text, f);

        for (size_t i = 0; i < n; i++) {
                json_object *v = json_get_path(obj, fields[i].path);

                r = 0;
                if (fields[i].kind == FIELD_OBJECT && json_object_is_type(v, json_type_object))
                        r = object_block_write(v, fields[i].label, 0, f);
                else if (fields[i].kind == FIELD_LINES || fields[i].kind == FIELD_QEMU_LOG)
                        r = lines_write(v, fields[i].label, fields[i].kind == FIELD_QEMU_LOG, f);
                if (r < 0)
                        return r;
        }
        if (extras && json_object_is_type(obj, json_type_object)) {
                json_object_object_foreach(obj, key, val) {
                        if (!json_object_is_type(val, json_type_object) || field_known(fields, n, key))
                                continue;
                        r = object_block_write(val, key, 0, f);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int kv_format(json_object *obj, const Field *fields, size_t n, bool extras, char **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        _cleanup_fclose_ FILE *f = NULL;
        int r;

        assert_return(ret, -EINVAL);
        if (!json_object_is_type(obj, json_type_object))
                return -EBADMSG;

        MEMSTREAM_OPEN(f, buf, size);
        r = kv_write(obj, fields, n, extras, f);
        if (r < 0)
                return r;
        return cli_memstream_finish(&f, &buf, ret);
}

/* ---- renderers ----------------------------------------------------------------- */

int cli_output_json(json_object *o, char **ret) {
        const char *s;

        assert_return(ret, -EINVAL);

        cli_json_tidy_numbers(o);
        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                              JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
                return -ENOMEM;
        *ret = strjoin(s, "\n");
        if (!*ret)
                return -ENOMEM;
        cli_json_collapse_empty(*ret);
        return 0;
}

int cli_output_vmid(json_object *vm, char **ret) {
        json_object *v = json_get_path(vm, "vmid");
        uint64_t u;

        assert_return(ret, -EINVAL);
        if (!json_get_u64(v, &u))
                return -EBADMSG;
        return asprintf(ret, "%" PRIu64 "\n", u) < 0 ? -ENOMEM : 0;
}

int cli_output_token_secret(json_object *token, char **ret) {
        json_object *v = json_get_path(token, "secret");

        assert_return(ret, -EINVAL);
        if (!json_object_is_type(v, json_type_string))
                return -EBADMSG;
        _cleanup_free_ char *secret = cli_sanitize_dup(json_object_get_string(v));
        if (!secret)
                return -ENOMEM;
        *ret = strjoin(secret, "\n");
        return *ret ? 0 : -ENOMEM;
}

static int table_add_u64(CliTable *t, json_object *v, bool mib) {
        char buf[CLI_FORMAT_MAX];
        uint64_t u;

        if (!v)
                return cli_table_add(t, NULL);
        if (!json_get_u64(v, &u)) {
                _cleanup_free_ char *s = cli_json_to_value_string(v);

                return s ? cli_table_add(t, s) : -ENOMEM;
        }
        if (mib)
                return cli_table_add(t, cli_format_mib(buf, sizeof(buf), u));
        (void) snprintf(buf, sizeof(buf), "%" PRIu64, u);
        return cli_table_add(t, buf);
}

static int vm_list_add_row(CliTable *t, json_object *vm) {
        const char *state = json_object_get_string(json_get_path(vm, "state"));
        json_object *uptime = json_get_path(vm, "status.uptime");
        char buf[CLI_FORMAT_MAX];
        double d;
        int r;

        r = table_add_u64(t, json_get_path(vm, "vmid"), false);
        if (r >= 0)
                r = cli_table_add(t, json_object_get_string(json_get_path(vm, "name")));
        if (r >= 0)
                r = cli_table_add(t, state);
        if (r >= 0)
                r = table_add_u64(t, json_get_path(vm, "cid"), false);
        /* What runs, not what is pending: a running VM's status has the
         * memory it runs with and the config it was started with. */
        if (r >= 0)
                r = table_add_u64(t, json_get_path(vm, "status.memory_mib") ?: json_get_path(vm, "config.memory"), true);
        if (r >= 0) {
                json_object *cores = json_get_path(vm, "status.running") ? json_get_path(vm, "status.running.cores")
                                                                         : json_get_path(vm, "config.cores");

                /* zvmd leaves defaults out of the config; cores defaults to 1. */
                r = cores ? table_add_u64(t, cores, false) : cli_table_add(t, "1");
        }
        if (r < 0)
                return r;

        /* A stopped VM has no uptime, whatever a stale field says. */
        if (!uptime || !json_get_double(uptime, &d) || streq_ptr(state, "stopped") || streq_ptr(state, "crashed"))
                return cli_table_add(t, NULL);
        return cli_table_add(t, cli_format_duration(buf, sizeof(buf), d));
}

int cli_output_vm_list(json_object *vms, char **ret) {
        static const char *const header[] = { ">VMID", "NAME", "STATE", ">CID", ">MEMORY", ">CORES", ">UPTIME" };
        _cleanup_table_ CliTable *t = NULL;
        int r;

        assert_return(ret, -EINVAL);
        if (!json_object_is_type(vms, json_type_array))
                return -EBADMSG;

        t = cli_table_new(ELEMENTSOF(header), header);
        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < json_object_array_length(vms); i++) {
                r = vm_list_add_row(t, json_object_array_get_idx(vms, i));
                if (r < 0)
                        return r;
        }
        return cli_table_format(t, ret);
}

static int config_write(json_object *config, const char *indent, FILE *f) {
        if (!json_object_is_type(config, json_type_object))
                return -EBADMSG;

        /* json-c keeps the daemon's key order, which is the file's. */
        json_object_object_foreach(config, key, v) {
                _cleanup_free_ char *raw = cli_json_to_value_string(v);
                _cleanup_free_ char *value = raw ? cli_sanitize_dup(raw) : NULL;
                _cleanup_free_ char *k = cli_sanitize_dup(key);

                if (!value || !k)
                        return -ENOMEM;
                fprintf(f, "%s%s: %s\n", indent, k, value);
        }
        return 0;
}

int cli_output_vm_show(json_object *vm, char **ret) {
        static const Field fields[] = {
                { "vmid",            "vmid",            FIELD_TEXT },
                { "name",            "name",            FIELD_TEXT },
                { "state",           "state",           FIELD_TEXT },
                { "cid",             "cid",             FIELD_TEXT },
                { "status.uptime",   "uptime",          FIELD_DURATION },
                { "status.start_path", "start-path",    FIELD_TEXT },
                { "pending_restart", "pending-restart", FIELD_LIST },
        };
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        _cleanup_fclose_ FILE *f = NULL;
        json_object *config;
        int r;

        assert_return(ret, -EINVAL);
        if (!json_object_is_type(vm, json_type_object))
                return -EBADMSG;

        MEMSTREAM_OPEN(f, buf, size);
        r = kv_write(vm, fields, ELEMENTSOF(fields), false, f);
        if (r < 0)
                return r;

        config = json_get_path(vm, "config");
        if (config) {
                fputs("config:\n", f);
                r = config_write(config, "  ", f);
                if (r < 0)
                        return r;
        }
        return cli_memstream_finish(&f, &buf, ret);
}

int cli_output_vm_status(json_object *status, char **ret) {
        static const Field fields[] = {
                { "vmid",               "vmid",           FIELD_TEXT },
                { "name",               "name",           FIELD_TEXT },
                { "state",              "state",          FIELD_TEXT },
                { "pid",                "pid",            FIELD_TEXT },
                { "uptime",             "uptime",         FIELD_DURATION },
                { "start_path",         "start-path",     FIELD_TEXT },
                { "cpu_seconds",        "cpu",            FIELD_CPU },
                { "rss_bytes",          "rss",            FIELD_BYTES },
                { "helper_pid",         "helper-pid",     FIELD_TEXT },
                { "host_memory",        "host-memory",    FIELD_HOST_MEMORY },
                { "cid",                "cid",            FIELD_TEXT },
                { "accel",              "accel",          FIELD_TEXT },
                { "memory_mib",         "memory",         FIELD_MIB },
                { "balloon_target_mib", "balloon-target", FIELD_MIB },
                { "balloon_actual_mib", "balloon-actual", FIELD_MIB },
                { "balloon_auto",       "balloon-auto",   FIELD_BOOL },
                { "exit.code",          "exit-code",      FIELD_TEXT },
                { "exit.signal",        "exit-signal",    FIELD_TEXT },
                { "exit.reason",        "exit-reason",    FIELD_TEXT },
                { "agent",              "agent",          FIELD_TEXT },
                { "exit.stderr",        "stderr",         FIELD_QEMU_LOG },
                { "boot",               "boot",           FIELD_OBJECT },
                { "inference",          "inference",      FIELD_OBJECT },
        };

        return kv_format(status, fields, ELEMENTSOF(fields), true, ret);
}

int cli_output_vm_config(json_object *vm, char **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        _cleanup_fclose_ FILE *f = NULL;
        int r;

        assert_return(ret, -EINVAL);

        MEMSTREAM_OPEN(f, buf, size);
        r = config_write(json_get_path(vm, "config"), "", f);
        if (r < 0)
                return r;
        return cli_memstream_finish(&f, &buf, ret);
}

int cli_output_pending_restart(json_object *vm, char **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        _cleanup_fclose_ FILE *f = NULL;
        json_object *pending;

        assert_return(ret, -EINVAL);

        MEMSTREAM_OPEN(f, buf, size);
        pending = json_get_path(vm, "pending_restart");
        for (size_t i = 0; json_object_is_type(pending, json_type_array) && i < json_object_array_length(pending); i++) {
                _cleanup_free_ char *key = cli_sanitize_dup(json_object_get_string(json_object_array_get_idx(pending, i)));

                if (!key)
                        return -ENOMEM;
                fprintf(f, "%s: needs restart\n", key);
        }
        return cli_memstream_finish(&f, &buf, ret);
}

int cli_output_host(json_object *host, char **ret) {
        static const Field fields[] = {
                { "version",      "version",      FIELD_TEXT },
                { "qemu",         "qemu",         FIELD_TEXT },
                { "accel",        "accel",        FIELD_TEXT },
                { "accel_reason", "accel-reason", FIELD_TEXT },
                { "vsock_mode",   "vsock-mode",   FIELD_TEXT },
                { "kernel",       "kernel",       FIELD_TEXT },
                { "initrd",       "initrd",       FIELD_TEXT },
                { "cpus",         "cpus",         FIELD_TEXT },
                { "memory_mib",   "memory",       FIELD_MIB },
                { "vms",          "vms",          FIELD_TEXT },
                { "running",      "running",      FIELD_TEXT },
                /* One naming style in text: the API's keys with '-'. */
                { "qemu_binary",          "qemu-binary",          FIELD_TEXT },
                { "templates_dir",        "templates-dir",        FIELD_TEXT },
                { "ssh_known_hosts",      "ssh-known-hosts",      FIELD_TEXT },
                { "tsc_khz",              "tsc-khz",              FIELD_TEXT },
                { "loop_worst_ms",        "loop-worst-ms",        FIELD_TEXT },
                { "loop_worst_wall_ms",   "loop-worst-wall-ms",   FIELD_TEXT },
                { "loop_worst_what",      "loop-worst-what",      FIELD_TEXT },
                { "loop_slow_iterations", "loop-slow-iterations", FIELD_TEXT },
                { "loop_iterations",      "loop-iterations",      FIELD_TEXT },
                { "autoballoon",          "autoballoon",          FIELD_AUTOBALLOON },
                { "pool",                 "pool",                 FIELD_POOL },
                { "sync_handovers",       "sync-handovers",       FIELD_TEXT },
                { "sync_failures",        "sync-failures",        FIELD_TEXT },
                { "sync_queued",          "sync-queued",          FIELD_TEXT },
                { "sync_worst_ms",        "sync-worst-ms",        FIELD_TEXT },
                { "sync_inline",          "sync-inline",          FIELD_TEXT },
        };

        return kv_format(host, fields, ELEMENTSOF(fields), true, ret);
}

int cli_output_token_list(json_object *tokens, char **ret) {
        static const char *const header[] = { "ID", "ROLE", "CREATED", "EXPIRES", "COMMENT" };
        _cleanup_table_ CliTable *t = NULL;
        int r;

        assert_return(ret, -EINVAL);
        if (!json_object_is_type(tokens, json_type_array))
                return -EBADMSG;

        t = cli_table_new(ELEMENTSOF(header), header);
        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < json_object_array_length(tokens); i++) {
                json_object *tok = json_object_array_get_idx(tokens, i), *created;     /* and expires */
                char buf[CLI_FORMAT_MAX];

                r = cli_table_add(t, json_object_get_string(json_get_path(tok, "id")));
                if (r < 0)
                        return r;
                r = cli_table_add(t, json_object_get_string(json_get_path(tok, "role")) ?: "admin");
                if (r < 0)
                        return r;
                created = json_get_path(tok, "created");
                r = cli_table_add(t, json_object_is_type(created, json_type_int) ?
                                     cli_format_timestamp(buf, sizeof(buf), json_object_get_int64(created)) : NULL);
                if (r < 0)
                        return r;
                created = json_get_path(tok, "expires");
                r = cli_table_add(t, json_object_is_type(created, json_type_int) ?
                                     cli_format_timestamp(buf, sizeof(buf), json_object_get_int64(created)) : "never");
                if (r < 0)
                        return r;
                r = cli_table_add(t, json_object_get_string(json_get_path(tok, "comment")) ?: "");
                if (r < 0)
                        return r;
        }
        return cli_table_format(t, ret);
}

int cli_output_template_list(json_object *templates, char **ret) {
        static const char *const header[] = { "NAME", "PROFILE", "STATE", ">SIZE", ">DISK", "CREATED", "USED BY" };
        _cleanup_table_ CliTable *t = NULL;
        int r;

        assert_return(ret, -EINVAL);
        if (!json_object_is_type(templates, json_type_array))
                return -EBADMSG;

        t = cli_table_new(ELEMENTSOF(header), header);
        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < json_object_array_length(templates); i++) {
                json_object *tp = json_object_array_get_idx(templates, i), *v;
                _cleanup_free_ char *used = NULL;
                char size[CLI_FORMAT_MAX], disk[CLI_FORMAT_MAX], created[CLI_FORMAT_MAX];
                const char *profile = json_object_get_string(json_get_path(tp, "profile"));
                _cleanup_free_ char *prof = NULL;

                if (json_object_get_boolean(json_get_path(tp, "builtin")) && asprintf(&prof, "%s (built in)",
                                                                                     strnull(profile)) < 0)
                        return -ENOMEM;
                used = json_list_join(json_get_path(tp, "used_by"), ",");
                if (!used)
                        return -ENOMEM;
                v = json_get_path(tp, "size");
                r = cli_table_add(t, json_object_get_string(json_get_path(tp, "name")));
                if (r >= 0)
                        r = cli_table_add(t, prof ?: profile);
                if (r >= 0)
                        r = cli_table_add(t, json_object_get_string(json_get_path(tp, "state")));
                if (r >= 0)
                        r = cli_table_add(t, v ? cli_format_bytes(size, sizeof(size), (uint64_t) json_object_get_int64(v)) : NULL);
                v = json_get_path(tp, "disk_usage");
                if (r >= 0)
                        r = cli_table_add(t, v ? cli_format_bytes(disk, sizeof(disk), (uint64_t) json_object_get_int64(v)) : NULL);
                v = json_get_path(tp, "created");
                if (r >= 0)
                        r = cli_table_add(t, v ? cli_format_timestamp(created, sizeof(created), json_object_get_int64(v)) : NULL);
                if (r >= 0)
                        r = cli_table_add(t, used);
                if (r < 0)
                        return r;
        }
        return cli_table_format(t, ret);
}

/* ---- models --------------------------------------------------------------------- */

/* A parameter count as people say it: 139584 → "140K", 494005120 → "494M",
 * 1543714304 → "1.5B". */
char *cli_format_params(char *buf, size_t l, uint64_t n) {
        if (n < 1000000U)
                (void) snprintf(buf, l, "%" PRIu64 "K", (n + 500U) / 1000U);
        else if (n < 1000000000U)
                (void) snprintf(buf, l, "%" PRIu64 "M", (n + 500000U) / 1000000U);
        else
                (void) snprintf(buf, l, "%.1fB", (double) n / 1e9);
        return buf;
}

int cli_output_model_list(json_object *models, char **ret) {
        static const char *const header[] = { "NAME", "STATE", "ARCH", ">PARAMS", "QUANT", ">CONTEXT", ">SIZE",
                                              "SHA256", "VMS" };
        _cleanup_table_ CliTable *t = NULL;
        int r = 0;

        assert_return(ret, -EINVAL);
        if (!json_object_is_type(models, json_type_array))
                return -EBADMSG;
        t = cli_table_new(ELEMENTSOF(header), header);
        if (!t)
                return -ENOMEM;
        for (size_t i = 0; r >= 0 && i < json_object_array_length(models); i++) {
                json_object *m = json_object_array_get_idx(models, i), *v;
                _cleanup_free_ char *vms = json_list_join(json_get_path(m, "vms"), ",");
                char params[CLI_FORMAT_MAX], size[CLI_FORMAT_MAX], sha[13] = "";
                bool ready = streq_ptr(json_object_get_string(json_get_path(m, "state")), "ready");

                if (!vms)
                        return -ENOMEM;
                (void) snprintf(sha, sizeof(sha), "%s", strempty(json_object_get_string(json_get_path(m, "sha256"))));
                v = json_get_path(m, "params");
                r = cli_table_add(t, json_object_get_string(json_get_path(m, "name")));
                if (r >= 0)
                        r = cli_table_add(t, json_object_get_string(json_get_path(m, "state")));
                if (r >= 0)
                        r = cli_table_add(t, ready ? json_object_get_string(json_get_path(m, "architecture")) : NULL);
                if (r >= 0)
                        r = cli_table_add(t, ready && v ? cli_format_params(params, sizeof(params),
                                                                            (uint64_t) json_object_get_int64(v)) : NULL);
                if (r >= 0)
                        r = cli_table_add(t, ready ? json_object_get_string(json_get_path(m, "quant")) : NULL);
                if (r >= 0)
                        r = cli_table_add(t, ready ? json_object_get_string(json_get_path(m, "context_length")) : NULL);
                v = json_get_path(m, "size");
                if (r >= 0)
                        r = cli_table_add(t, ready && v ? cli_format_bytes(size, sizeof(size),
                                                                           (uint64_t) json_object_get_int64(v)) : NULL);
                if (r >= 0)
                        r = cli_table_add(t, ready ? sha : NULL);
                if (r >= 0)
                        r = cli_table_add(t, vms);
        }
        if (r < 0)
                return r;
        return cli_table_format(t, ret);
}

int cli_output_model_show(json_object *model, char **ret) {
        static const Field fields[] = {
                { "name",             "name",         FIELD_TEXT },
                { "state",            "state",        FIELD_TEXT },
                { "step",             "step",         FIELD_TEXT },
                { "error",            "error",        FIELD_TEXT },
                { "architecture",     "architecture", FIELD_TEXT },
                { "params",           "params",       FIELD_TEXT },
                { "quant",            "quant",        FIELD_TEXT },
                { "context_length",   "context",      FIELD_TEXT },
                { "size",             "size",         FIELD_BYTES },
                { "sha256",           "sha256",       FIELD_TEXT },
                { "image",            "image",        FIELD_TEXT },
                { "image_size",       "image-size",   FIELD_BYTES },
                { "generated",        "generated",    FIELD_TEXT },
                { "shape",            "shape",        FIELD_TEXT },
                { "vms",              "vms",          FIELD_LIST },
        };

        return kv_format(model, fields, ELEMENTSOF(fields), false, ret);
}
