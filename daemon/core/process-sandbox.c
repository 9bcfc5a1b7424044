/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The spawn of QEMU and the vsock helper as a VM's own unprivileged uid.
 * posix_spawn cannot change credentials, so this is fork + a child that
 * makes only async-signal-safe system calls (zvmd's libraries may hold
 * locks in the parent) and tells the parent through a CLOEXEC pipe which
 * step failed, or nothing when the exec succeeded.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fd-util.h"
#include "loop.h"
#include "macro.h"
#include "process-sandbox.h"
#include "string-util.h"

/* argv[0] as execve needs it: resolved here, in the parent, as
 * posix_spawnp would (execvpe in the child may allocate). */
static int resolve_exe(const char *name, char **ret) {
        _cleanup_free_ char *path = strdup(getenv("PATH") ?: "/usr/local/bin:/usr/bin:/bin");
        char *save = NULL;

        if (strchr(name, '/')) {
                *ret = strdup(name);
                return *ret ? 0 : -ENOMEM;
        }
        if (!path)
                return -ENOMEM;
        for (char *dir = strtok_r(path, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
                _cleanup_free_ char *p = strjoin(dir, "/", name);

                if (!p)
                        return -ENOMEM;
                if (access(p, X_OK) == 0) {
                        *ret = TAKE_PTR(p);
                        return 0;
                }
        }
        return -ENOENT;
}

static unsigned cap_last_cap(void) {
        _cleanup_free_ char *s = NULL;
        uint32_t v;

        if (read_one_line_file("/proc/sys/kernel/cap_last_cap", &s) >= 0 && safe_atou32(s, &v) >= 0 && v < 128)
                return v;
        return 63;
}

/* Whether path is dir or lies beneath it (both canonical). */
static bool path_under(const char *path, const char *dir) {
        size_t n = strlen(dir);

        if (!path)
                return false;
        if (streq(dir, "/"))
                return true;
        return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

typedef struct HidePlan {
        char **dirs;            /* covered by an empty tmpfs, or NULL */
        char *own, *siblings;   /* the cwd, bound back onto a tmpfs over its parent; or NULL */
} HidePlan;

static void hide_plan_done(HidePlan *p) {
        p->dirs = strv_free(p->dirs);
        p->own = mfree(p->own);
        p->siblings = mfree(p->siblings);
}

/* The cwd's parent, when its siblings can go (see hide_siblings). */
static int hide_siblings_plan(const char *cwd, const char *w, const char *x, HidePlan *p) {
        const char *slash = strrchr(cwd, '/');

        if ((w && !path_under(w, cwd)) || slash == cwd)
                return 0;
        p->siblings = strndup(cwd, slash - cwd);
        if (!p->siblings)
                return -ENOMEM;
        if (path_under(x, p->siblings)) {
                p->siblings = mfree(p->siblings);
                return 0;
        }
        p->own = strdup(cwd);
        return p->own ? 0 : -ENOMEM;
}

/* sb->hide as the child mounts it: canonical paths of existing dirs that
 * hold none of what the process needs by path (its cwd, its writable dir,
 * its executable). Decided here in the parent: realpath() allocates. */
static int hide_plan(const ProcessSandbox *sb, const char *exe, HidePlan *ret) {
        _cleanup_free_ char *cwd = NULL, *w = NULL, *x = NULL;
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0, k = 0;
        int r;

        if (!sb->mount_ns || (!sb->hide && !sb->hide_siblings))
                return 0;
        while (sb->hide && sb->hide[n])
                n++;
        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        /* A path that cannot be resolved keeps every dir. */
        cwd = sb->cwd ? realpath(sb->cwd, NULL) : NULL;
        w = sb->writable ? realpath(sb->writable, NULL) : NULL;
        x = realpath(exe, NULL);
        if ((sb->cwd && !cwd) || (sb->writable && !w) || !x)
                return 0;
        if (sb->hide_siblings && cwd) {
                r = hide_siblings_plan(cwd, w, x, ret);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *d = realpath(sb->hide[i], NULL);
                struct stat st;

                if (!d || stat(d, &st) < 0 || !S_ISDIR(st.st_mode))
                        continue;
                if (path_under(cwd, d) || path_under(w, d) || path_under(x, d))
                        continue;
                l[k++] = TAKE_PTR(d);
        }
        /* A dir beneath another one (a symlink such as /var/mail -> spool/mail
         * resolves there) would be gone once that one is covered. */
        for (size_t i = 0; i < k; i++)
                for (size_t j = 0; j < k; j++)
                        if (i != j && l[i] && l[j] && path_under(l[i], l[j]) && (!streq(l[i], l[j]) || j < i)) {
                                l[i] = mfree(l[i]);
                                break;
                        }
        n = 0;
        for (size_t i = 0; i < k; i++)          /* close the gaps: NULL ends the list */
                if (l[i])
                        l[n++] = l[i];
        for (; n < k; n++)
                l[n] = NULL;
        ret->dirs = TAKE_PTR(l);
        return 0;
}

typedef struct ChildSetup {
        const char *exe;
        const HidePlan *hide;
        char *const *argv, *const *envp;
        const int *keep_fds;
        size_t n_keep_fds;
        int null_fd, out_fd;
        const ProcessSandbox *sb;
        unsigned last_cap;
} ChildSetup;

/* Nothing waits for the child: a step that fails writes why to the
 * process's output (its log) and exits 127, which its watcher reports like
 * any exit, with that log's last lines. Only write() here, and
 * strerrordesc_np(), a table lookup with no locale. */
_noreturn_ static void child_fail(const ChildSetup *c, const char *step) {
        const char *desc = strerrordesc_np(errno) ?: "unknown error";
        const char *parts[] = { "zvmd: cannot run ", c->exe, ": ", step, ": ", desc, "\n" };

        for (size_t i = 0; i < ELEMENTSOF(parts); i++)
                (void) !write(c->out_fd, parts[i], strlen(parts[i]));
        _exit(127);
}

static int child_limit(int resource, rlim_t v) {
        struct rlimit rl = { v, v };

        return v == 0 ? 0 : setrlimit(resource, &rl);
}

/* Credentials last but one (NO_NEW_PRIVS last): the bounding set is
 * dropped while CAP_SETPCAP is still there; setresuid() to a non-zero uid
 * clears the permitted and effective sets, capset() the inheritable one. */
static int child_drop(const ChildSetup *c) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct d[2] = {};
        const ProcessSandbox *sb = c->sb;
        gid_t groups[1] = { sb->extra_gid };

        if (setgroups(sb->extra_gid == (gid_t) -1 ? 0 : 1, groups) < 0)
                return -1;
        if (setresgid(sb->gid, sb->gid, sb->gid) < 0)
                return -1;
        /* Needs CAP_SETPCAP (zvmd.service keeps it) for what is still there. */
        for (unsigned cap = 0; cap <= c->last_cap; cap++)
                if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) > 0 && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
                        return -1;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return -1;
        if (setresuid(sb->uid, sb->uid, sb->uid) < 0)
                return -1;
        if (syscall(SYS_capset, &h, d) < 0)
                return -1;
        return 0;
}

/* Its own dir (with the writable bind in it) is cloned before the tmpfs
 * covers its parent, then moved onto a dir made there; the tmpfs turns
 * read-only last. */
static int child_hide_siblings(const HidePlan *h) {
        struct mount_attr ro = { .attr_set = MOUNT_ATTR_RDONLY };
        int tree, r = -1;

        tree = open_tree(AT_FDCWD, h->own, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
        if (tree < 0)
                return -1;
        if (mount("tmpfs", h->siblings, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "size=4k,nr_inodes=2,mode=0755") >= 0 &&
            mkdir(h->own, 0700) >= 0 &&
            move_mount(tree, "", AT_FDCWD, h->own, MOVE_MOUNT_F_EMPTY_PATH) >= 0 &&
            mount_setattr(AT_FDCWD, h->siblings, 0, &ro, sizeof(ro)) >= 0)
                r = 0;
        (void) close(tree);     /* a close() that succeeds leaves errno as the failed step set it */
        return r;
}

/* Nothing of the host is writable by path any more, but the one dir given
 * (bound onto itself first, so that it is a mount of its own): no file in
 * /tmp, /var/tmp or /dev/shm, whatever their modes. Open fds are not
 * affected; device nodes (/dev/kvm, /dev/urandom) still open read-write.
 * Private first, so that nothing propagates back to the host. Then the
 * dirs of the plan vanish under an empty read-only tmpfs (one page, no
 * exec, no device, no suid): other users' homes, zvm's and other daemons'
 * data, logs, caches, spools; not even their names are left to read. */
static int child_mount_ns(const ChildSetup *c) {
        struct mount_attr ro = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID };
        struct mount_attr rw = { .attr_clr = MOUNT_ATTR_RDONLY };
        const char *w = c->sb->writable;

        if (unshare(CLONE_NEWNS) < 0)
                return -1;
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return -1;
        if (w && mount(w, w, NULL, MS_BIND, NULL) < 0)
                return -1;
        if (mount_setattr(AT_FDCWD, "/", AT_RECURSIVE, &ro, sizeof(ro)) < 0)
                return -1;
        if (w && mount_setattr(AT_FDCWD, w, 0, &rw, sizeof(rw)) < 0)
                return -1;
        for (char *const *d = c->hide->dirs; d && *d; d++)
                if (mount("tmpfs", *d, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                          "size=4k,nr_inodes=1,mode=0755") < 0)
                        return -1;
        return c->hide->own ? child_hide_siblings(c->hide) : 0;
}

_noreturn_ static void child_run(const ChildSetup *c) {
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        sigset_t none;

        for (int sig = 1; sig < _NSIG; sig++)
                (void) sigaction(sig, &dfl, NULL);      /* EINVAL for SIGKILL/SIGSTOP and RT gaps */
        if (setsid() < 0)
                child_fail(c, "setsid");
        if (dup2(c->null_fd, STDIN_FILENO) < 0 || dup2(c->out_fd, STDOUT_FILENO) < 0 ||
            dup2(c->out_fd, STDERR_FILENO) < 0)
                child_fail(c, "stdin/stdout/stderr");
        /* Everything above 2 closes at exec, but the fds given, which
         * must not be 0-2. */
        if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
                child_fail(c, "close_range");
        for (size_t i = 0; i < c->n_keep_fds; i++)
                if (c->keep_fds[i] <= STDERR_FILENO || fcntl(c->keep_fds[i], F_SETFD, 0) < 0) {
                        errno = errno ?: EBADF;
                        child_fail(c, "a kept fd");
                }
        /* The namespace before the fd limit: it opens a tree fd, and until
         * the exec every fd of zvmd is still here (1,000 and more with
         * ~145 VMs), so under a lowered RLIMIT_NOFILE there would be no
         * number left for it (EMFILE, found by bench/density). */
        if (c->sb->mount_ns && child_mount_ns(c) < 0)
                child_fail(c, "mount namespace");
        if (child_limit(RLIMIT_NOFILE, c->sb->nofile) < 0 || child_limit(RLIMIT_NPROC, c->sb->nproc) < 0 ||
            setrlimit(RLIMIT_CORE, &(struct rlimit) { 0, 0 }) < 0)     /* guest RAM never lands in a core file */
                child_fail(c, "limits");
        if (c->sb->cwd && chdir(c->sb->cwd) < 0)
                child_fail(c, "working directory");
        if (c->sb->uid != 0 && child_drop(c) < 0)
                child_fail(c, "dropping privileges");
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                child_fail(c, "no_new_privs");
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        execve(c->exe, c->argv, c->envp);
        child_fail(c, "execve");
}

int process_spawn_guest_facing(char *const *argv, const int *keep_fds, size_t n_keep_fds, int out_fd,
                               const ProcessSandbox *sb, pid_t *ret_pid) {
        static const ProcessSandbox as_is = { .extra_gid = (gid_t) -1 };
        _cleanup_free_ char *exe = NULL;
        _cleanup_(hide_plan_done) HidePlan hide = {};
        _cleanup_free_ char *path = strjoin("PATH=", getenv("PATH") ?: "/usr/local/bin:/usr/bin:/bin");
        char *envp[] = { path, (char *) "LC_ALL=C.UTF-8", NULL };
        _cleanup_close_ int null_fd = -EBADF;
        int r;
        pid_t pid;

        if (!path)
                return -ENOMEM;
        r = resolve_exe(argv[0], &exe);
        if (r < 0)
                return r;
        if (sb) {
                r = hide_plan(sb, exe, &hide);
                if (r < 0)
                        return r;
        }
        null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null_fd < 0)
                return -errno;

        ChildSetup c = {
                .exe = exe, .hide = &hide, .argv = argv, .envp = envp, .keep_fds = keep_fds, .n_keep_fds = n_keep_fds,
                .null_fd = null_fd, .out_fd = out_fd >= 0 ? out_fd : null_fd, .sb = sb ?: &as_is,
                .last_cap = cap_last_cap(),
        };
        loop_note("fork for %s", exe);
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0)
                child_run(&c);
        loop_note("after the fork for %s", exe);
        *ret_pid = pid;
        return 0;
}
