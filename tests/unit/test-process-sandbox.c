/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* core/process-sandbox.c: a guest-facing child runs as the uid it is given,
 * under its limits, in its own read-only mount namespace, even when zvmd
 * holds more fds than the child's RLIMIT_NOFILE; a step that fails in the
 * child names itself in the child's output and exits 127. Needs root (the
 * drop and the namespace); the spawn returns before the child's setup, so
 * the test waits for the child itself. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fd-util.h"
#include "process-sandbox.h"
#include "tap.h"

#define NOBODY 65534

static bool root_is_mount(void) {
        struct statx sx;

        return statx(AT_FDCWD, "/", 0, 0, &sx) >= 0 && (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
               (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

/* Runs `sh -c script` sandboxed by sb; returns its wait status and what
 * it printed (stdout and stderr) in out. */
static int run(const ProcessSandbox *sb, const char *script, char *out, size_t size) {
        char *const argv[] = { (char *) "/bin/sh", (char *) "-c", (char *) script, NULL };
        int p[2], status = -1, r;
        size_t got = 0;
        ssize_t n;
        pid_t pid;

        out[0] = 0;
        if (pipe2(p, O_CLOEXEC) < 0)
                return -1;
        r = process_spawn_guest_facing(argv, NULL, 0, p[1], sb, &pid);
        close(p[1]);
        if (r < 0) {
                close(p[0]);
                snprintf(out, size, "spawn: %s", strerror(-r));
                return -1;
        }
        while (got < size - 1 && (n = read(p[0], out + got, size - 1 - got)) > 0)
                got += (size_t) n;
        out[got] = 0;
        close(p[0]);
        (void) waitpid(pid, &status, 0);
        return status;
}

/* Holds fds of this process up to number `top` (as zvmd does with many VMs). */
static int hold_fds_up_to(int top, int *ret_first) {
        int fd = -1, first = -1;

        do {
                fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        return -errno;
                if (first < 0)
                        first = fd;
        } while (fd < top);
        *ret_first = first;
        return fd;
}

/* A run dir as zvmd lays it out: <tmp>/vms/100 (the child's cwd, with its
 * writable vsock dir) beside another VM's <tmp>/vms/101. */
static int make_run_dirs(char tmp[static 64], char own[static 96], char vsock[static 112]) {
        char other[96];

        snprintf(tmp, 64, "/tmp/zvm-sandbox-XXXXXX");
        if (!mkdtemp(tmp))
                return -errno;
        (void) chmod(tmp, 0755);
        snprintf(own, 96, "%s/vms", tmp);
        (void) mkdir(own, 0755);
        snprintf(other, sizeof(other), "%s/vms/101", tmp);
        snprintf(own, 96, "%s/vms/100", tmp);
        snprintf(vsock, 112, "%s/vsock", own);
        if (mkdir(other, 0755) < 0 || mkdir(own, 0755) < 0 || mkdir(vsock, 0700) < 0 || chown(vsock, NOBODY, NOBODY) < 0)
                return -errno;
        return 0;
}

static void test_many_fds(bool mount_ns) {
        char tmp[64], own[96], vsock[112], out[512], want[64], cmd[512];
        ProcessSandbox sb = { .uid = NOBODY, .gid = NOBODY, .extra_gid = (gid_t) -1, .nofile = 64, .nproc = 0,
                              .cwd = own, .mount_ns = mount_ns, .writable = vsock, .hide_siblings = true };
        int first = -1, last, status;

        if (!ok(make_run_dirs(tmp, own, vsock) == 0, "run dirs made under /tmp"))
                return;
        last = hold_fds_up_to(200, &first);
        ok(last >= 200, "this process holds fds up to %d, over the child's limit of 64", last);
        snprintf(cmd, sizeof(cmd),
                 "echo ran as $(id -u); ulimit -n; ls ..; touch vsock/x && echo vsock writable; "
                 "touch /zvm-sandbox-test 2>/dev/null && echo wrote / || echo / read-only");
        status = run(&sb, cmd, out, sizeof(out));
        snprintf(want, sizeof(want), "ran as %d\n64\n", NOBODY);
        /* Before the namespace came ahead of the limit, the tree fd it
         * opens found no number under 64: "mount namespace: Too many open
         * files" (bench/density, at ~145 VMs). */
        ok(WIFEXITED(status) && WEXITSTATUS(status) == 0 && strncmp(out, want, strlen(want)) == 0,
           "the child runs as nobody with RLIMIT_NOFILE 64 (status %d: %s)", status, out);
        if (mount_ns) {
                ok(strstr(out, "64\n100\nvsock writable\n/ read-only\n") != NULL,
                   "in its mount namespace: the other VM's dir is hidden, its vsock dir writable, / read-only (%s)",
                   out);
        } else
                skip(1, "/ is not a mount here (a chroot): no namespace to check");
        (void) unlink("/zvm-sandbox-test");
        for (int fd = first; fd <= last; fd++)
                (void) close(fd);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
        (void) !system(cmd);
}

static void test_failed_step(void) {
        ProcessSandbox sb = { .uid = NOBODY, .gid = NOBODY, .extra_gid = (gid_t) -1, .nofile = 64,
                              .cwd = "/nonexistent-zvm-test" };
        char out[512];
        int status;

        status = run(&sb, "echo should not run", out, sizeof(out));
        ok(WIFEXITED(status) && WEXITSTATUS(status) == 127, "a child whose cwd is missing exits 127 (status %d)",
           status);
        is_str(out, "zvmd: cannot run /bin/sh: working directory: No such file or directory\n",
               "and its output names the step and the reason");
}

int main(void) {
        struct rlimit rl;

        if (geteuid() != 0) {
                printf("1..0 # SKIP needs root (the uid drop and the mount namespace)\n");
                return 0;
        }
        /* Room for the fds held above the child's limit. */
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1024) {
                rl.rlim_cur = rl.rlim_max < 1024 ? rl.rlim_max : 1024;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
        test_many_fds(root_is_mount());
        test_failed_step();
        return done_testing();
}
