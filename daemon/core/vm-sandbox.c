/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Who a VM's QEMU and vsock helper run as, and what zvmd opens for them.
 *
 * Each VM gets its own uid and gid, VM_UID_BASE + VMID: 0x71000000
 * (1895825408) is above what systemd-nspawn picks for containers
 * (524288…1879048191) and what useradd hands out as subordinate ids
 * (SUB_UID_MAX 600100000), above the 64 Ki subordinate ids zvm gives its
 * template builder (user zvm-build, at 0x70000000: templates/README.md), and
 * below systemd's foreign range (0x7ffe0000) and 2^31, which some tools
 * still get wrong. A VMID whose id would leave that gap (VMID >=
 * 251527168) is refused at start. Every start also checks that the id is
 * no user or group in /etc/passwd and /etc/group and in no range of
 * /etc/subuid and /etc/subgid, so it can never be anybody else's.
 *
 * QEMU then needs no path: its disks come as fds (-add-fd), kernel and
 * initrd as /proc/self/fd/N (reopened: they must be world-readable, which
 * shipped kernels are), the agent's secret as a memfd, the vhost-user
 * socket through the fd of the VM's vsock dir, the only place its uid may
 * write: <run>/vms/<vmid>/vsock, 0700, owned by it, inside the root-owned
 * 0750 run dir it cannot enter.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config-check.h"
#include "fd-util.h"
#include "log.h"
#include "macro.h"
#include "pool-spec.h"
#include "string-util.h"
#include "vm.h"
#include "vm-internal.h"

#define VM_UID_BASE 0x71000000U
#define VM_UID_END 0x7ffe0000U          /* systemd's foreign range starts here */
_Static_assert(POOL_VMID_END == VM_UID_END - VM_UID_BASE, "the pool slots are the top of the VMs' uid range");
/* QEMU needs ~100 fds for a microVM (disks, eventfds per queue, vhost-user);
 * tasks: vCPU threads, up to 64 block workers, the helper's threads. */
#define VM_NOFILE 1024U
#define VM_NPROC 512U
/* What QEMU and the helper need besides guest RAM: the TCG translation
 * cache (up to QEMU_TCG_TB_MAX_MIB), QEMU itself (~60 MB measured), the
 * helper, and page cache of the disks, which the cgroup reclaims before it
 * kills. */
#define VM_MEMORY_OVERHEAD_MIB 384U

/* "name:start:count" lines: is id in one of the ranges? */
static int subid_taken(const char *file, uint32_t id, bool *ret) {
        _cleanup_fclose_ FILE *f = fopen(file, "re");
        char line[512];

        *ret = false;
        if (!f)
                return errno == ENOENT ? 0 : -errno;
        while (fgets(line, sizeof(line), f)) {
                uint64_t start, count;
                char *p = strchr(line, ':');

                if (p && sscanf(p + 1, "%" SCNu64 ":%" SCNu64, &start, &count) == 2 && id >= start &&
                    id - start < count) {
                        *ret = true;
                        return 0;
                }
        }
        return 0;
}

/* Local files only (no NSS, which may be remote and would block the loop):
 * the ids zvm takes are in no range that directories hand out either. */
static int id_check(uint32_t id, char **ret_error) {
        _cleanup_fclose_ FILE *pw = fopen("/etc/passwd", "re"), *gr = fopen("/etc/group", "re");
        static const char *const sub[] = { "/etc/subuid", "/etc/subgid" };
        struct passwd *p;
        struct group *g;
        bool taken;

        while (pw && (p = fgetpwent(pw)))
                if (p->pw_uid == id)
                        return set_error(ret_error, "uid %" PRIu32 ", reserved by zvm for this VM, is user '%s' in "
                                         "/etc/passwd", id, p->pw_name), -EADDRINUSE;
        while (gr && (g = fgetgrent(gr)))
                if (g->gr_gid == id)
                        return set_error(ret_error, "gid %" PRIu32 ", reserved by zvm for this VM, is group '%s' in "
                                         "/etc/group", id, g->gr_name), -EADDRINUSE;
        for (size_t i = 0; i < ELEMENTSOF(sub); i++) {
                int r = subid_taken(sub[i], id, &taken);

                if (r < 0)
                        return set_error(ret_error, "cannot read %s: %s", sub[i], errno_str(r)), r;
                if (taken)
                        return set_error(ret_error, "id %" PRIu32 ", reserved by zvm for this VM, is in a range of %s",
                                         id, sub[i]), -EADDRINUSE;
        }
        return 0;
}

/* The private, read-only mount namespace needs "/" to be a mount: in a
 * chroot (zvm installed into one, as the package test does) it is a plain
 * directory and making it private fails with EINVAL. There the VM runs
 * without the namespace: still its own uid, no capabilities, seccomp. */
static bool root_is_mount(void) {
        static int cached = -1;
        struct statx sx;

        if (cached < 0)
                cached = statx(AT_FDCWD, "/", 0, 0, &sx) >= 0 && (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
                         (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
        return cached > 0;
}

/* What QEMU and the vsock helper never open by path (they need /usr:
 * binary, libraries, firmware given to -bios; /etc: ld.so.cache; /dev;
 * /proc for the /proc/self/fd reopens; their run dir; /tmp holds test
 * wrappers), hidden in their mount namespace: other users' files, zvm's and
 * other daemons' data (/var/lib/zvm: disks, configs, secrets), logs,
 * caches, spools. A dir holding the cwd, the vsock dir or the executable
 * stays (see process-sandbox.h). */
static const char *const vm_hidden_dirs[] = {
        "/home", "/root", "/srv", "/mnt", "/media",
        "/var/lib", "/var/cache", "/var/log", "/var/backups", "/var/spool", "/var/mail", "/var/tmp",
        NULL
};

int vm_sandbox_identity(const Vm *vm, bool kvm, ProcessSandbox *ret, char **ret_error) {
        uint32_t id;
        struct stat st;
        int r;

        /* The top of the range is the warm pool's slots (pure/pool-spec.h). */
        if (!vm->pool && pool_vmid(vm->vmid))
                return set_error(ret_error, "VMID %u is reserved for the warm pool's guests (%u to %u): use a "
                                 "VMID below %u", vm->vmid, POOL_VMID_BASE, POOL_VMID_END - 1, POOL_VMID_BASE),
                       -ERANGE;
        if (vm->vmid >= VM_UID_END - VM_UID_BASE)
                return set_error(ret_error, "VMID %u has no uid of its own (zvm runs each QEMU as uid 0x%x + VMID, "
                                 "below 0x%x): use a VMID below %u", vm->vmid, VM_UID_BASE, VM_UID_END,
                                 VM_UID_END - VM_UID_BASE), -ERANGE;
        id = VM_UID_BASE + vm->vmid;
        r = id_check(id, ret_error);
        if (r < 0)
                return r;
        *ret = (ProcessSandbox) { .uid = id, .gid = id, .extra_gid = (gid_t) -1, .nofile = VM_NOFILE,
                                  .nproc = VM_NPROC, .cwd = vm->run_dir, .mount_ns = root_is_mount(),
                                  .hide = vm_hidden_dirs, .hide_siblings = true };
        /* QEMU 7.2 opens /dev/kvm itself (no fd option): its group is the
         * one supplementary group, and only with KVM. */
        if (kvm && stat("/dev/kvm", &st) >= 0 && st.st_gid != 0)
                ret->extra_gid = st.st_gid;
        return 0;
}

/* With a scope (systemd is PID 1): the whole VM's memory (RLIMIT_AS would
 * count QEMU's reservations, not its use) and tasks. Without one only the
 * rlimits hold: tasks and fds per uid, no memory bound but guest RAM. */
ScopeLimits vm_sandbox_scope_limits(const Vm *vm) {
        return (ScopeLimits) {
                .memory_max = (vm->running->memory_mib + VM_MEMORY_OVERHEAD_MIB) << 20,
                .tasks_max = VM_NPROC,
        };
}

/* The VM's vsock dir, made (again) its uid's, and an O_PATH fd to it; then
 * the names the rest of zvm (and older tools) use in the run dir, as
 * symlinks into it. root follows them; the uid cannot touch them. */
int vm_sandbox_vsock_dir(const Vm *vm, const ProcessSandbox *sb, int *ret_fd) {
        static const char *const compat[] = { "vsock.sock", "vsock.sock_1025" };
        _cleanup_close_ int run = -EBADF, fd = -EBADF;
        struct stat st;

        run = open(vm->run_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (run < 0)
                return -errno;
        if (mkdirat(run, "vsock", 0700) < 0 && errno != EEXIST)
                return -errno;
        fd = openat(run, "vsock", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fchownat(fd, "", sb->uid, sb->gid, AT_EMPTY_PATH) < 0 || fstat(fd, &st) < 0)
                return -errno;
        char proc[64];

        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        if (!S_ISDIR(st.st_mode) || chmod(proc, 0700) < 0)
                return -errno ?: -ENOTDIR;
        for (size_t i = 0; i < ELEMENTSOF(compat); i++) {
                _cleanup_free_ char *target = strjoin("vsock/", compat[i]);

                if (!target)
                        return -ENOMEM;
                (void) unlinkat(run, compat[i], 0);
                if (symlinkat(target, run, compat[i]) < 0)
                        return -errno;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* O_RDONLY for what QEMU opens read-only; else O_RDWR and a second
 * O_RDONLY fd (see VmDiskFd). A path of the config (in->policy set) as the
 * policy allows it for the starter: beneath its storage with openat2(), no
 * symlinks, so what was checked is what QEMU gets. zvm's own images (the
 * template, the writable layer, the model) are opened as they are. */
static int open_disk(const VmSandboxFiles *in, const char *path, bool readonly, const char *key, VmDiskFd *ret,
                     char **ret_error) {
        int r;

        if (in && in->policy) {
                r = config_open_path(in->policy, key, path, in->root, readonly ? O_RDONLY : O_RDWR, &ret->fd, ret_error);
                if (r >= 0 && !readonly)
                        r = config_open_path(in->policy, key, path, in->root, O_RDONLY, &ret->ro_fd, ret_error);
                return r;
        }
        ret->fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOCTTY);
        if (ret->fd >= 0 && !readonly)
                ret->ro_fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (ret->fd < 0 || (!readonly && ret->ro_fd < 0)) {
                r = -errno;
                return set_error(ret_error, "%s: cannot open %s: %s", key, path, errno_str(r)), r;
        }
        return 0;
}

/* Kernel and initrd are reopened by QEMU through /proc/self/fd/N as the
 * VM's uid: they must be readable by others (shipped kernels are 0644). */
static int open_public(const VmSandboxFiles *in, const char *path, const char *key, int *ret_fd, char **ret_error) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int r;

        if (in) {               /* the config's own kernel or initrd: see open_disk() */
                r = config_open_path(in->policy, key, path, in->root, O_RDONLY, &fd, ret_error);
                if (r < 0)
                        return r;
        } else
                fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0 || fstat(fd, &st) < 0) {
                r = -errno;
                return set_error(ret_error, "%s %s: %s", key, path, errno_str(r)), r;
        }
        if (!(st.st_mode & S_IROTH))
                return set_error(ret_error, "%s %s is not readable by the VM's unprivileged user (mode %04o): "
                                 "make it world-readable", key, path, (unsigned) (st.st_mode & 07777)), -EACCES;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int vm_sandbox_open_files(const VmConfig *c, const VmSandboxFiles *in, VmSandboxFds *out, char **ret_error) {
        int r;

        if (c->rootfs_template)
                r = open_disk(NULL, in->template_image, true, "rootfs", &out->qemu.root, ret_error);
        else
                r = open_disk(in, c->rootfs_path, false, "rootfs", &out->qemu.root, ret_error);
        if (r >= 0 && in->upper_image)
                r = open_disk(NULL, in->upper_image, false, "rootfs", &out->qemu.upper, ret_error);
        if (r >= 0 && in->model_image)
                r = open_disk(NULL, in->model_image, true, "model", &out->qemu.model, ret_error);
        for (unsigned i = 0; r >= 0 && i < VM_DISKS_MAX; i++) {
                char key[16];

                if (!c->disks[i].path)
                        continue;
                snprintf(key, sizeof(key), "disk%u", i);
                r = open_disk(in, c->disks[i].path, c->disks[i].readonly, key, &out->qemu.disks[i], ret_error);
        }
        /* Bridged NICs: /dev/net/tun now, attached to the tap once zvmd
         * made it (vm_taps_attach()): QEMU opens no device. */
        for (unsigned i = 0; r >= 0 && i < VM_NETS_MAX; i++) {
                if (!c->nets[i].present || !c->nets[i].bridge)
                        continue;
                out->qemu.taps[i] = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
                if (out->qemu.taps[i] < 0) {
                        r = -errno;
                        set_error(ret_error, "net%u: cannot open /dev/net/tun: %s", i, errno_str(r));
                }
        }
        if (r >= 0)
                r = open_public(c->kernel && in->policy ? in : NULL, in->kernel, "kernel", &out->kernel, ret_error);
        if (r >= 0 && !isempty(in->initrd))
                r = open_public(c->initrd && in->policy ? in : NULL, in->initrd, "initrd", &out->initrd, ret_error);
        if (r >= 0 && in->agent_secret) {
                /* A memfd: QEMU reopens it by /proc/self/fd whoever owns it,
                 * and agent.secret stays root's. Sealed: nobody changes it. */
                out->secret = memfd_create("zvm-agent-secret", MFD_CLOEXEC | MFD_ALLOW_SEALING);
                if (out->secret < 0)
                        r = -errno;
                else
                        r = loop_write(out->secret, in->agent_secret, strlen(in->agent_secret), false);
                if (r >= 0 && fcntl(out->secret, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW |
                                                              F_SEAL_WRITE) < 0)
                        r = -errno;
                if (r < 0)
                        set_error(ret_error, "cannot hand QEMU the agent's secret: %s", errno_str(r));
        }
        return r;
}

static void disk_fd_close(VmDiskFd *d) {
        d->fd = safe_close(d->fd);
        d->ro_fd = safe_close(d->ro_fd);
}

void vm_sandbox_fds_close(VmSandboxFds *f) {
        disk_fd_close(&f->qemu.root);
        disk_fd_close(&f->qemu.upper);
        disk_fd_close(&f->qemu.model);
        for (unsigned i = 0; i < VM_DISKS_MAX; i++)
                disk_fd_close(&f->qemu.disks[i]);
        for (unsigned i = 0; i < VM_NETS_MAX; i++)
                f->qemu.taps[i] = safe_close(f->qemu.taps[i]);
        f->kernel = safe_close(f->kernel);
        f->initrd = safe_close(f->initrd);
        f->secret = safe_close(f->secret);
        f->vsock_dir = safe_close(f->vsock_dir);
}

void vm_sandbox_fds_init(VmSandboxFds *f) {
        const VmDiskFd none = { -EBADF, -EBADF };

        *f = (VmSandboxFds) { .qemu = { .root = none, .upper = none, .model = none,
                                         .disks = { [0 ... VM_DISKS_MAX - 1] = none },
                                         .taps = { [0 ... VM_NETS_MAX - 1] = -EBADF } },
                              .kernel = -EBADF, .initrd = -EBADF, .secret = -EBADF, .vsock_dir = -EBADF };
}

/* Every fd of f that is open, for the spawn's keep list (at most
 * VM_SANDBOX_FDS_MAX). */
size_t vm_sandbox_fds_list(const VmSandboxFds *f, int *fds) {
        const int all[] = { f->qemu.root.fd, f->qemu.root.ro_fd, f->qemu.upper.fd, f->qemu.upper.ro_fd,
                            f->qemu.model.fd, f->qemu.model.ro_fd, f->kernel, f->initrd, f->secret, f->vsock_dir };
        size_t n = 0;

        for (size_t i = 0; i < ELEMENTSOF(all); i++)
                if (all[i] >= 0)
                        fds[n++] = all[i];
        for (unsigned i = 0; i < VM_DISKS_MAX; i++) {
                if (f->qemu.disks[i].fd >= 0)
                        fds[n++] = f->qemu.disks[i].fd;
                if (f->qemu.disks[i].ro_fd >= 0)
                        fds[n++] = f->qemu.disks[i].ro_fd;
        }
        for (unsigned i = 0; i < VM_NETS_MAX; i++)
                if (f->qemu.taps[i] >= 0)
                        fds[n++] = f->qemu.taps[i];
        return n;
}
