/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "json-util.h"
#include "macro.h"
#include "vm-state-record.h"

/* A flat object of 12 or 13 members. */
#define RECORD_DEPTH_MAX 2U
#define RECORD_VALUES_MAX 64U

char *vm_state_record_format(const VmStateRecord *rec) {
        json_object *o = json_object_new_object();
        char *text;

        if (!o)
                return NULL;
        json_object_object_add(o, "pid", json_object_new_int64(rec->pid));
        json_object_object_add(o, "starttime", json_object_new_uint64(rec->starttime));
        json_object_object_add(o, "helper_pid", json_object_new_int64(rec->helper_pid));
        json_object_object_add(o, "helper_starttime", json_object_new_uint64(rec->helper_starttime));
        json_object_object_add(o, "passt_pid", json_object_new_int64(rec->passt_pid));
        json_object_object_add(o, "passt_starttime", json_object_new_uint64(rec->passt_starttime));
        json_object_object_add(o, "accel", json_object_new_string(rec->kvm ? "kvm" : "tcg"));
        json_object_object_add(o, "started_usec", json_object_new_uint64(rec->started_usec));
        json_object_object_add(o, "balloon_target_mib", json_object_new_uint64(rec->balloon_target_mib));
        json_object_object_add(o, "balloon_manual", json_object_new_boolean(rec->balloon_manual));
        json_object_object_add(o, "starting", json_object_new_boolean(rec->starting));
        json_object_object_add(o, "stop_requested", json_object_new_boolean(rec->stop_requested));
        if (rec->from_pool)
                json_object_object_add(o, "from_pool", json_object_new_boolean(true));
        if (rec->naming)
                json_object_object_add(o, "naming", json_object_new_boolean(true));
        if (rec->pool_slot > 0)
                json_object_object_add(o, "pool_slot", json_object_new_uint64(rec->pool_slot));
        text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        return text;
}

static uint64_t get_u64(json_object *o, const char *key) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return 0;
        return json_object_get_uint64(v);
}

static int32_t get_pid(json_object *o, const char *key) {
        json_object *v;
        int64_t n;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return 0;
        n = json_object_get_int64(v);
        return n > 0 && n <= INT32_MAX ? (int32_t) n : 0;
}

static bool get_bool(json_object *o, const char *key) {
        json_object *v;

        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_boolean) &&
               json_object_get_boolean(v);
}

int vm_state_record_parse(const char *text, size_t len, VmStateRecord *ret) {
        json_object *o = NULL;
        int r;

        if (len > VM_STATE_RECORD_MAX)
                return -EBADMSG;
        r = json_parse_bounded_object(text, len, RECORD_DEPTH_MAX, RECORD_VALUES_MAX, &o);
        if (r < 0)
                return r == -ENOMEM ? r : -EBADMSG;
        *ret = (VmStateRecord) {
                .pid = get_pid(o, "pid"),
                .starttime = get_u64(o, "starttime"),
                .helper_pid = get_pid(o, "helper_pid"),
                .helper_starttime = get_u64(o, "helper_starttime"),
                .passt_pid = get_pid(o, "passt_pid"),
                .passt_starttime = get_u64(o, "passt_starttime"),
                .kvm = streq_ptr(json_get_string_member(o, "accel"), "kvm"),
                .started_usec = get_u64(o, "started_usec"),
                .balloon_target_mib = get_u64(o, "balloon_target_mib"),
                .balloon_manual = get_bool(o, "balloon_manual"),
                .starting = get_bool(o, "starting"),
                .stop_requested = get_bool(o, "stop_requested"),
        };
        ret->from_pool = get_bool(o, "from_pool");
        ret->naming = get_bool(o, "naming");
        ret->pool_slot = get_u64(o, "pool_slot") <= UINT32_MAX ? (uint32_t) get_u64(o, "pool_slot") : 0;
        json_object_put(o);
        return 0;
}
