/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "build-record.h"
#include "json-util.h"
#include "macro.h"
#include "string-util.h"

#define RECORD_DEPTH_MAX 3U
#define RECORD_VALUES_MAX 1024U

void build_record_done(BuildRecord *rec) {
        free(rec->profile);
        free(rec->suite);
        strv_free(rec->include);
        free(rec->log);
        *rec = (BuildRecord) {};
}

char *build_record_format(const BuildRecord *rec) {
        json_object *o = json_object_new_object(), *inc = json_object_new_array();
        char *text = NULL;

        if (!o || !inc) {
                json_object_put(o);
                json_object_put(inc);
                return NULL;
        }
        STRV_FOREACH(p, rec->include)
                json_object_array_add(inc, json_object_new_string(*p));
        json_object_object_add(o, "pid", json_object_new_int64(rec->pid));
        json_object_object_add(o, "starttime", json_object_new_uint64(rec->starttime));
        json_object_object_add(o, "profile", json_object_new_string(strempty(rec->profile)));
        if (rec->suite)
                json_object_object_add(o, "suite", json_object_new_string(rec->suite));
        json_object_object_add(o, "include", inc);
        json_object_object_add(o, "log", json_object_new_string(strempty(rec->log)));
        json_object_object_add(o, "started", json_object_new_int64(rec->started));
        text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        return text;
}

static json_object *get_int(json_object *o, const char *key) {
        json_object *v;

        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int) ? v : NULL;
}

static int parse_object(json_object *o, BuildRecord *rec) {
        const char *profile = json_get_string_member(o, "profile"), *suite = json_get_string_member(o, "suite"), *log = json_get_string_member(o, "log");
        json_object *v;
        int64_t pid;

        if (!profile || !log)
                return -EBADMSG;
        if (!(rec->profile = strdup(profile)) || !(rec->log = strdup(log)) || (suite && !(rec->suite = strdup(suite))))
                return -ENOMEM;
        if (json_object_object_get_ex(o, "include", &v) && json_object_is_type(v, json_type_array)) {
                size_t n = 0;

                for (size_t i = 0; i < json_object_array_length(v) && n < BUILD_RECORD_INCLUDE_MAX; i++) {
                        json_object *e = json_object_array_get_idx(v, i);

                        if (!json_object_is_type(e, json_type_string))
                                continue;
                        if (strv_extend(&rec->include, json_object_get_string(e)) < 0)
                                return -ENOMEM;
                        n++;
                }
        }
        pid = get_int(o, "pid") ? json_object_get_int64(get_int(o, "pid")) : 0;
        rec->pid = pid > 0 && pid <= INT32_MAX ? (int32_t) pid : 0;
        rec->starttime = get_int(o, "starttime") ? json_object_get_uint64(get_int(o, "starttime")) : 0;
        rec->started = get_int(o, "started") ? json_object_get_int64(get_int(o, "started")) : 0;
        return 0;
}

int build_record_parse(const char *text, size_t len, BuildRecord *ret) {
        BuildRecord rec = {};
        json_object *o = NULL;
        int r;

        if (len > BUILD_RECORD_MAX)
                return -EBADMSG;
        r = json_parse_bounded_object(text, len, RECORD_DEPTH_MAX, RECORD_VALUES_MAX, &o);
        if (r < 0)
                return r == -ENOMEM ? r : -EBADMSG;
        r = parse_object(o, &rec);
        json_object_put(o);
        if (r < 0) {
                build_record_done(&rec);
                return r;
        }
        *ret = rec;
        return 0;
}
