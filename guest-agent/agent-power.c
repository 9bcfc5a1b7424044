/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <unistd.h>

#include "agent-exec.h"
#include "agent-power.h"
#include "log.h"
#include "time-util.h"

#define POWER_GRACE_S 10

extern char **environ;

static bool dry_run;

void power_set_dry_run(bool b) {
        dry_run = b;
}

int op_shutdown(Request *rq, Buf *out) {
        rq->conn->after = AFTER_POWEROFF;
        return 0;
}

int op_reboot(Request *rq, Buf *out) {
        rq->conn->after = AFTER_REBOOT;
        return 0;
}

/* After the answer went out: ask init (busybox init, systemd: both provide
 * poweroff/reboot commands), and if it has not acted within POWER_GRACE_S —
 * during a real shutdown init kills us long before — do it ourselves. */
void power_action(After what) {
        const char *cmd = what == AFTER_REBOOT ? "reboot" : "poweroff";
        pid_t pid;

        if (dry_run) {
                log_info("%s requested (not done in --stdio mode)", cmd);
                _exit(EXIT_SUCCESS);
        }
        log_info("%s requested by the host", cmd);
        pid = fork();
        if (pid == 0) {
                static char *const envp[] = { (char *) EXEC_BASE_PATH, NULL };
                char *argv[] = { (char *) cmd, NULL };
                sigset_t none;

                (void) setsid();
                sigemptyset(&none);
                (void) sigprocmask(SIG_SETMASK, &none, NULL);
                (void) signal(SIGPIPE, SIG_DFL);
                environ = (char **) envp;
                execvp(cmd, argv);
                log_info("cannot execute %s: %s", cmd, strerror(errno));
                _exit(127);
        }
        if (pid < 0)
                log_info("cannot fork for %s: %s", cmd, strerror(errno));
        sleep_msec(POWER_GRACE_S * 1000);
        log_info("init did not %s within %d s, calling reboot(2)", what == AFTER_REBOOT ? "reboot" : "power off",
            POWER_GRACE_S);
        sync();
        (void) reboot(what == AFTER_REBOOT ? RB_AUTOBOOT : RB_POWER_OFF);
        log_info("reboot(2) failed: %s", strerror(errno));
        _exit(EXIT_FAILURE);
}

