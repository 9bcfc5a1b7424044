/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * failtimer.so: an LD_PRELOAD shim for issue 14's "a deadline that cannot
 * be armed" (tests/integration/zvmd_exhaust.py, scenario timer_fail).
 * While the file named by $ZVM_FAIL_TIMER_FLAG exists,
 * sd_event_add_time_relative() fails with -ENOMEM, as it would when zvmd
 * is out of memory; the test creates and removes the file to choose the
 * moment. Only zvmd's own calls through the dynamic libsystemd are seen.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <systemd/sd-event.h>

int sd_event_add_time_relative(sd_event *e, sd_event_source **s, clockid_t clock, uint64_t usec, uint64_t accuracy,
                               sd_event_time_handler_t callback, void *userdata) {
        static __typeof__(&sd_event_add_time_relative) real;
        const char *flag = getenv("ZVM_FAIL_TIMER_FLAG");

        if (flag && access(flag, F_OK) == 0)
                return -ENOMEM;
        if (!real)
                real = (__typeof__(&sd_event_add_time_relative)) dlsym(RTLD_NEXT, "sd_event_add_time_relative");
        return real ? real(e, s, clock, usec, accuracy, callback, userdata) : -ENOSYS;
}
