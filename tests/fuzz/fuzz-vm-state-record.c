/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * daemon/pure/vm-state-record: <run>/vms/<vmid>/state.json, what a
 * restarted zvmd re-adopts a VM from (whatever a killed zvmd, a full disk
 * or a hand edit left).
 *
 * Input: the file's bytes.
 *
 * Properties (vm-state-record.h):
 *   - parse returns 0, -EBADMSG or -ENOMEM; over VM_STATE_RECORD_MAX bytes
 *     is -EBADMSG;
 *   - a parsed pid is 0 or in [1, INT32_MAX] (never a pid the record did not
 *     name, never one truncated to another process's);
 *   - parse → format → parse gives the same record, and format is a fixed
 *     point from there.
 */
#include <errno.h>

#include "fuzz.h"
#include "vm-state-record.h"

static bool record_equal(const VmStateRecord *a, const VmStateRecord *b) {
        return a->pid == b->pid && a->starttime == b->starttime && a->helper_pid == b->helper_pid &&
               a->helper_starttime == b->helper_starttime && a->passt_pid == b->passt_pid &&
               a->passt_starttime == b->passt_starttime && a->kvm == b->kvm &&
               a->started_usec == b->started_usec && a->balloon_target_mib == b->balloon_target_mib &&
               a->balloon_manual == b->balloon_manual && a->starting == b->starting &&
               a->stop_requested == b->stop_requested && a->pool_slot == b->pool_slot &&
               a->from_pool == b->from_pool && a->naming == b->naming;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *text = fuzz_strndup(data, size), *out = NULL, *out2 = NULL;
        VmStateRecord rec, back, back2;
        int r;

        if (!text)
                return 0;
        r = vm_state_record_parse(text, size, &rec);
        FUZZ_CHECK(IN_SET(r, 0, -EBADMSG, -ENOMEM));
        if (size > VM_STATE_RECORD_MAX)
                FUZZ_CHECK(r == -EBADMSG);
        if (r < 0)
                return 0;
        FUZZ_CHECK(rec.pid >= 0 && rec.helper_pid >= 0);
        out = vm_state_record_format(&rec);
        if (!out)
                return 0;
        FUZZ_CHECK(strlen(out) <= VM_STATE_RECORD_MAX);
        r = vm_state_record_parse(out, strlen(out), &back);
        if (r == -ENOMEM)
                return 0;
        FUZZ_CHECK(r == 0 && record_equal(&rec, &back));
        out2 = vm_state_record_format(&back);
        if (!out2)
                return 0;
        FUZZ_CHECK(streq(out, out2));
        r = vm_state_record_parse(out2, strlen(out2), &back2);
        FUZZ_CHECK(r == -ENOMEM || (r == 0 && record_equal(&back, &back2)));
        return 0;
}
