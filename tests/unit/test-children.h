/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Children a unit test starts (QEMU, vhost-device-vsock, ...) and its temp
 * directory, so that an exit, a failed assertion or the watchdog never
 * leaves a VM behind. One set per test program. */

#include <signal.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "macro.h"
#include "string-util.h"

#define TEST_CHILDREN_MAX 8

static pid_t test_children[TEST_CHILDREN_MAX];

static inline void test_child_track(pid_t pid) {
        for (size_t i = 0; i < ELEMENTSOF(test_children); i++)
                if (test_children[i] == 0) {
                        test_children[i] = pid;
                        return;
                }
        assert_se(!"too many children");
}

/* After the test reaped pid itself. */
static inline void test_child_forget(pid_t pid) {
        for (size_t i = 0; i < ELEMENTSOF(test_children); i++)
                if (test_children[i] == pid)
                        test_children[i] = 0;
}

static inline void test_children_kill(void) {
        for (size_t i = 0; i < ELEMENTSOF(test_children); i++)
                if (test_children[i] > 0) {
                        (void) kill(test_children[i], SIGKILL);
                        (void) waitpid(test_children[i], NULL, 0);
                        test_children[i] = 0;
                }
}

/* Kills the children, then removes tmpdir if it starts with prefix (a guard
 * against ever running rm -rf on anything else). */
static inline void test_children_cleanup(const char *tmpdir, const char *prefix) {
        _cleanup_free_ char *cmd = NULL;

        test_children_kill();
        cmd = strjoin("rm -rf ", tmpdir);
        if (cmd && strneq(tmpdir, prefix, strlen(prefix)))
                (void) !system(cmd);
}
