/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * daemon/pure/build-record: <run>/template-builds/<name>.json, what a
 * restarted zvmd adopts a running template build from.
 *
 * Input: the file's bytes.
 *
 * Properties (build-record.h):
 *   - parse returns 0, -EBADMSG or -ENOMEM; over BUILD_RECORD_MAX is
 *     -EBADMSG; accepted records have a profile and a log;
 *   - pid 0 or in [1, INT32_MAX]; at most BUILD_RECORD_INCLUDE_MAX includes;
 *   - parse → format → parse gives the same record; format is then a fixed
 *     point.
 */
#include <errno.h>

#include "build-record.h"
#include "fuzz.h"
#include "string-util.h"

static bool strv_same(char **a, char **b) {
        size_t i = 0;

        for (; a && a[i] && b && b[i]; i++)
                if (!streq(a[i], b[i]))
                        return false;
        return !(a && a[i]) && !(b && b[i]);
}

static bool record_equal(const BuildRecord *a, const BuildRecord *b) {
        return a->pid == b->pid && a->starttime == b->starttime && streq_ptr(a->profile, b->profile) &&
               streq_ptr(a->suite, b->suite) && strv_same(a->include, b->include) && streq_ptr(a->log, b->log) &&
               a->started == b->started;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *text = fuzz_strndup(data, size), *out = NULL, *out2 = NULL;
        BuildRecord rec = {}, back = {};
        size_t n = 0;
        int r;

        if (!text)
                return 0;
        r = build_record_parse(text, size, &rec);
        FUZZ_CHECK(IN_SET(r, 0, -EBADMSG, -ENOMEM));
        if (size > BUILD_RECORD_MAX)
                FUZZ_CHECK(r == -EBADMSG);
        if (r < 0)
                return 0;
        FUZZ_CHECK(rec.profile && rec.log && rec.pid >= 0);
        STRV_FOREACH(p, rec.include)
                n++;
        FUZZ_CHECK(n <= BUILD_RECORD_INCLUDE_MAX);
        out = build_record_format(&rec);
        if (out) {
                r = build_record_parse(out, strlen(out), &back);
                FUZZ_CHECK(r == -ENOMEM || (r == 0 && record_equal(&rec, &back)));
                if (r == 0 && (out2 = build_record_format(&back)))
                        FUZZ_CHECK(streq(out, out2));
        }
        build_record_done(&back);
        build_record_done(&rec);
        return 0;
}
