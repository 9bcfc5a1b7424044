/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The QEMU command line of a microVM.
 *
 * Booted by hand with the builder's output (QEMU 7.2, TCG, the shared 6.12
 * kernel, initrd and tiny template): template + upper layer + model disk +
 * virtio-blk and virtio-scsi disks + user net + hybrid vsock on a memfd
 * backend (guest→host and host→guest connections through
 * vhost-device-vsock), QMP on an inherited listening fd, system_reset
 * rebooting the guest with the upper layer kept; an image root with the
 * model disk, a user NIC with a fixed MAC and a tap NIC on a bridge (ping
 * across it). Virtio-blk disks are named in -device order: vda, vdb, ...
 * The PCIe variant enumerates in -device order too (slots 1, 2, ...), but
 * needs a guest kernel with CONFIG_PCI_MMCONFIG to find the ECAM.
 */

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "api.h"
#include "qemu-argv.h"
#include "string-util.h"

/* ---- an argv under construction -------------------------------------------------- */

/* Appends latch the first error, so that the builder below reads as the
 * command line it produces; the error is checked once at the end. */
typedef struct Argv {
        char **l;
        int r;
} Argv;

static void argv_done(Argv *a) {
        a->l = strv_free(a->l);
}

static void arg_push(Argv *a, char *s) {
        if (a->r < 0) {
                free(s);
                return;
        }
        if (!s) {
                a->r = -ENOMEM;
                return;
        }
        if (strv_push(&a->l, s) < 0) {
                free(s);
                a->r = -ENOMEM;
        }
}

static void arg(Argv *a, const char *s) {
        arg_push(a, a->r < 0 ? NULL : strdup(s));
}

/* An option pair "-opt value". */
static void opt(Argv *a, const char *o, const char *value) {
        arg(a, o);
        arg(a, value);
}

static void optf(Argv *a, const char *o, const char *format, ...) _printf_(3, 4);
static void optf(Argv *a, const char *o, const char *format, ...) {
        va_list ap;
        char *s;

        arg(a, o);
        if (a->r < 0)
                return;
        va_start(ap, format);
        if (vasprintf(&s, format, ap) < 0)
                s = NULL;
        va_end(ap);
        arg_push(a, s);
}

/* QEMU option values ("path=...,logfile=...") end at a ',' unless it is
 * doubled. Config paths cannot contain ',' (vm-config refuses them), but
 * the daemon's directories might. Returns a new string, NULL on OOM. */
static char *qemu_escape(const char *s) {
        size_t n = 0;
        char *e, *p;

        for (const char *q = s; *q; q++)
                n += *q == ',' ? 2 : 1;
        e = malloc(n + 1);
        if (!e)
                return NULL;
        p = e;
        for (const char *q = s; *q; q++) {
                *p++ = *q;
                if (*q == ',')
                        *p++ = ',';
        }
        *p = '\0';
        return e;
}

/* Escaped copies live in a small pool freed with the builder. */
typedef struct EscapePool {
        char **l;
        int r;
} EscapePool;

static void escape_pool_done(EscapePool *pool) {
        pool->l = strv_free(pool->l);
}

static const char *esc(EscapePool *pool, const char *s) {
        char *e;

        if (pool->r < 0)
                return "";
        e = qemu_escape(s);
        if (!e || strv_push(&pool->l, e) < 0) {
                free(e);
                pool->r = -ENOMEM;
                return "";
        }
        return e;
}

/* ---- devices ---------------------------------------------------------------------- */

typedef enum QemuDev {
        QEMU_DEV_BLK,
        QEMU_DEV_SCSI,
        QEMU_DEV_NET,
        QEMU_DEV_RNG,
        QEMU_DEV_BALLOON,
        QEMU_DEV_VHOST_USER_VSOCK,
        QEMU_DEV_VHOST_VSOCK,
        _QEMU_DEV_MAX,
} QemuDev;

/* virtio-mmio models and their PCIe counterparts. PCIe uses the
 * non-transitional (virtio 1.0 only) variants: no legacy I/O BARs, which a
 * PCIe root port could not route anyway. All exist in QEMU 7.2 and 10
 * ("qemu-system-x86_64 -device help"). */
static const char *const qemu_dev_table[_QEMU_DEV_MAX][2] = {
        [QEMU_DEV_BLK]              = { "virtio-blk-device",       "virtio-blk-pci-non-transitional" },
        [QEMU_DEV_SCSI]             = { "virtio-scsi-device",      "virtio-scsi-pci-non-transitional" },
        [QEMU_DEV_NET]              = { "virtio-net-device",       "virtio-net-pci-non-transitional" },
        [QEMU_DEV_RNG]              = { "virtio-rng-device",       "virtio-rng-pci-non-transitional" },
        [QEMU_DEV_BALLOON]          = { "virtio-balloon-device",   "virtio-balloon-pci-non-transitional" },
        [QEMU_DEV_VHOST_USER_VSOCK] = { "vhost-user-vsock-device", "vhost-user-vsock-pci-non-transitional" },
        [QEMU_DEV_VHOST_VSOCK]      = { "vhost-vsock-device",      "vhost-vsock-pci-non-transitional" },
};

static const char *dev(const VmConfig *c, QemuDev d) {
        return qemu_dev_table[d][c->pcie];
}

static int fail(char **ret_error, int r, const char *format, ...) _printf_(3, 4);
static int fail(char **ret_error, int r, const char *format, ...) {
        va_list ap;
        char *s;

        if (!ret_error)
                return r;
        va_start(ap, format);
        if (vasprintf(&s, format, ap) < 0)
                s = NULL;
        va_end(ap);
        if (!s)
                return -ENOMEM;
        free(*ret_error);
        *ret_error = s;
        return r;
}

/* ---- accelerator ------------------------------------------------------------------ */

VmAccel qemu_effective_accel(const VmConfig *c, const HostCaps *h, char **ret_error) {
        assert_return(c, -EINVAL);
        assert_return(h, -EINVAL);

        switch (c->accel) {
        case VM_ACCEL_AUTO:
                return h->kvm_usable ? VM_ACCEL_KVM : VM_ACCEL_TCG;
        case VM_ACCEL_KVM:
                if (h->kvm_usable)
                        return VM_ACCEL_KVM;
                if (ret_error) {
                        char *s = strdup("accel: kvm requested, but KVM cannot boot guests on this host "
                                         "(/dev/kvm missing, inaccessible, or a nested host where guests hang); "
                                         "use accel: auto or tcg");
                        if (!s)
                                return -ENOMEM;
                        free(*ret_error);
                        *ret_error = s;
                }
                return -EOPNOTSUPP;
        case VM_ACCEL_TCG:
                return VM_ACCEL_TCG;
        default:
                return -EINVAL;
        }
}

/* ---- block device naming ----------------------------------------------------------- */

/* The order in which virtio-blk devices are put on the command line, which
 * is the order in which the guest names them vda, vdb, ... (checked by
 * booting: virtio-mmio transports are probed in command-line order under
 * ACPI, PCIe slots are assigned in command-line order). Fixed disks first,
 * so that the root is always vda and the model disk's name does not depend
 * on the user's disks. */
static unsigned blk_index_of_model(const VmConfig *c, const VmPaths *p) {
        unsigned n = 1;                         /* root */

        if (c->rootfs_template && p->upper_image)
                n++;                            /* upper */
        return n;
}

static void blk_name(unsigned idx, char ret[static 8]) {
        /* At most 1 root + 1 upper + 1 model + 8 disks: one letter. */
        (void) snprintf(ret, 8, "vd%c", 'a' + (char) idx);
}

int qemu_model_device(const VmConfig *c, const VmPaths *p, char **ret) {
        char name[8];
        char *s = NULL;

        assert_return(c, -EINVAL);
        assert_return(p, -EINVAL);
        assert_return(ret, -EINVAL);

        if (c->model) {
                blk_name(blk_index_of_model(c, p), name);
                s = strjoin("/dev/", name);
                if (!s)
                        return -ENOMEM;
        }
        *ret = s;
        return 0;
}

/* ---- the virtio-mmio budget ----------------------------------------------------------- */

static unsigned mmio_limit(const HostCaps *h) {
        if (h->mmio_transports > 0)
                return h->mmio_transports;
        /* The second IO-APIC, and with it 24 transports, came with 6.0. */
        if (h->qemu_version > 0 && h->qemu_version < 60000)
                return 8;
        return QEMU_MICROVM_MMIO_TRANSPORTS;
}

/* Counts the virtio-mmio devices the builder below will add, and refuses
 * more than the machine has transports: QEMU's own error ("No 'virtio-bus'
 * bus found for device ...") would not say what to do about it. */
static int mmio_check(const VmConfig *c, const HostCaps *h, const VmPaths *p, char **ret_error) {
        _cleanup_strv_free_ char **users = NULL;
        _cleanup_free_ char *list = NULL;
        bool scsi = false;
        unsigned n;

        if (c->pcie)
                return 0;

        if (strv_extend(&users, "rng") < 0)
                return -ENOMEM;
        if (c->balloon_mib > 0 && strv_extend(&users, "balloon") < 0)
                return -ENOMEM;
        if (strv_extend(&users, "root") < 0)
                return -ENOMEM;
        if (c->rootfs_template && p->upper_image && strv_extend(&users, "upper") < 0)
                return -ENOMEM;
        if (c->model && strv_extend(&users, "model") < 0)
                return -ENOMEM;
        for (unsigned i = 0; i < VM_DISKS_MAX; i++) {
                char name[16];

                if (!c->disks[i].path)
                        continue;
                if (c->disks[i].scsi) {
                        scsi = true;    /* one controller for all of them */
                        continue;
                }
                (void) snprintf(name, sizeof(name), "disk%u", i);
                if (strv_extend(&users, name) < 0)
                        return -ENOMEM;
        }
        if (scsi && strv_extend(&users, "scsi") < 0)
                return -ENOMEM;
        for (unsigned i = 0; i < VM_NETS_MAX; i++) {
                char name[16];

                if (!c->nets[i].present)
                        continue;
                (void) snprintf(name, sizeof(name), "net%u", i);
                if (strv_extend(&users, name) < 0)
                        return -ENOMEM;
        }
        if (c->cid > 0 && strv_extend(&users, "vsock") < 0)
                return -ENOMEM;

        n = (unsigned) strv_length(users);
        if (n <= mmio_limit(h))
                return 0;

        list = strv_join(users, ", ");
        if (!list)
                return -ENOMEM;
        return fail(ret_error, -E2BIG,
                    "%u virtio devices, but -M microvm has only %u virtio-mmio slots (%s); remove some or set pcie: 1",
                    n, mmio_limit(h), list);
}

/* The kernel command line: ours first, the user's last. */
static int kernel_cmdline(const VmConfig *c, const HostCaps *h, const VmPaths *p, bool kvm, char **ret) {
        _cleanup_free_ char *model_dev = NULL;
        char tsc[64] = "";
        char *s;
        int r;

        r = qemu_model_device(c, p, &model_dev);
        if (r < 0)
                return r;

        /* Under TCG the guest TSC runs at the host's rate, and calibrating
         * it against the emulated PIT fails on a busy host: the boot then
         * hangs at random. Tell the kernel the rate. And trust it: the
         * clocksource watchdog compares it with jiffies, which lag whenever
         * the vCPU thread waits for a host CPU, marks the TSC unstable, and
         * the guest falls back to refined-jiffies, which cannot do one-shot
         * timers: no tickless idle, 250 timer interrupts a second, each one
         * translated code to run (7 % of a host core per idle VM here). */
        if (!kvm && h->tsc_khz > 0)
                (void) snprintf(tsc, sizeof(tsc), " tsc_early_khz=%" PRIu64 " tsc=reliable", h->tsc_khz);

        /* The root: a shared read-only template under an overlay whose
         * upper layer is the VM's own ext4 image, or a tmpfs without one;
         * or the VM's own image. Disks are named by device path, not by
         * label: virtio-blk devices get vda, vdb, … in command-line order
         * (MMIO under ACPI and PCIe alike), we always emit the root first
         * and the writable layer second, and a user disk that happens to
         * carry the label "rootfs" must never be mounted as the root. */
        /* systemd.hostname=: the guest is called what the VM is (systemd
         * takes it, our initrd sets it for any other init). Names are
         * [A-Za-z0-9._-], nothing to quote. */
        /* A machine without PCIe has no PCI config space at all (no port
         * 0xcf8, no ECAM), and the kernel's pci_arch_init() then prints
         * "PCI: Fatal: No config space access function found" at KERN_ERR
         * on every boot; pci=off does not stop it (it only clears the
         * probe mask, the message follows). Skipping that one initcall
         * does, and leaves nothing undone on such a machine: it only
         * chooses config space access and makes the PCI MSI domain. With
         * pcie the ECAM window is found later from ACPI, after the
         * message, so it stays there (and the MSI domain is needed). */
        s = strjoin("console=ttyS0 panic=-1 quiet", tsc, c->pcie ? "" : " initcall_blacklist=pci_arch_init",
                    " systemd.hostname=", c->name,
                    c->rootfs_template ? " root=/dev/vda ro zvm.overlay=1" : " root=/dev/vda rw",
                    c->rootfs_template && p->upper_image ? " zvm.upper=/dev/vdb" : "",
                    model_dev ? " zvm.models=" : "", strempty(model_dev),
                    c->cmdline ? " " : "", strempty(c->cmdline));
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* The file= of a drive: its path, or with an fd from zvmd, its own fdset
 * (ids from 1: set 0 is as valid, but a 0 in a golden file reads as
 * "unset"). */
static const char *drive_file(Argv *a, EscapePool *pool, VmDiskFd fd, unsigned set, const char *path) {
        char buf[32];

        if (fd.fd < 0)
                return esc(pool, path);
        optf(a, "-add-fd", "fd=%d,set=%u", fd.fd, set);
        if (fd.ro_fd >= 0)
                optf(a, "-add-fd", "fd=%d,set=%u", fd.ro_fd, set);
        (void) snprintf(buf, sizeof(buf), "/dev/fdset/%u", set);
        return esc(pool, buf);
}

enum { FDSET_ROOT = 1, FDSET_UPPER, FDSET_MODEL, FDSET_DISK0 };

/* ---- the builder ----------------------------------------------------------------------- */

/*
 * The command line, in this order: identity and machine, CPU and memory,
 * firmware, console and QMP, kernel, then the virtio devices (rng, balloon,
 * block devices in naming order, SCSI, network, vsock).
 *
 * Not here on purpose: -no-reboot (QMP system_reset must reboot the guest;
 * a guest-initiated reboot then also restarts in place), -daemonize (zvmd
 * supervises the process), -enable-kvm (spelled -accel).
 */
int qemu_argv_build(const VmConfig *c, const HostCaps *h, const VmPaths *p, char ***ret_argv, char **ret_error) {
        _cleanup_(argv_done) Argv a = {};
        _cleanup_(escape_pool_done) EscapePool pool = {};
        _cleanup_free_ char *append = NULL;
        const char *kernel, *initrd;
        const VmFds nofds = { .root = { -1, -1 }, .upper = { -1, -1 }, .model = { -1, -1 },
                              .disks = { [0 ... VM_DISKS_MAX - 1] = { -1, -1 } },
                              .taps = { [0 ... VM_NETS_MAX - 1] = -1 } };
        const VmFds *fds = p->fds ?: &nofds;
        bool hybrid_vsock, kvm, scsi = false, passt_used = false;
        VmAccel accel;
        int r;

        assert_return(c, -EINVAL);
        assert_return(h, -EINVAL);
        assert_return(p, -EINVAL);
        assert_return(ret_argv, -EINVAL);

        /* ---- inputs that must be there ---- */
        if (c->vmid < ZVM_VMID_MIN || c->vmid > ZVM_VMID_MAX || !c->name)
                return fail(ret_error, -EINVAL, "the config has no VMID or name");
        if (isempty(h->qemu_binary))
                return fail(ret_error, -EINVAL, "no QEMU binary");
        if (isempty(h->qboot_rom))
                return fail(ret_error, -EINVAL,
                            "no qboot firmware (QEMU's default SeaBIOS cannot boot -kernel on microvm)");
        kernel = p->kernel ?: c->kernel ?: h->kernel;
        initrd = p->initrd ?: c->initrd ?: h->initrd;
        if (isempty(kernel))
                return fail(ret_error, -EINVAL, "kernel: not set, and the host has no default kernel");
        if (c->rootfs_template && isempty(p->template_image))
                return fail(ret_error, -EINVAL, "rootfs: template \"%s\" has no image", c->rootfs_template);
        if (!c->rootfs_template && !c->rootfs_path)
                return fail(ret_error, -EINVAL, "rootfs: not set");
        if (p->serial_fd < 0 && isempty(p->serial_socket))
                return fail(ret_error, -EINVAL, "no serial console socket (neither a file descriptor nor a path)");
        if (p->passt && p->passt_fd < 0)
                return fail(ret_error, -EINVAL, "passt: no socket for QEMU");
        if (p->qmp_fd < 0 && isempty(p->qmp_socket))
                return fail(ret_error, -EINVAL, "no QMP socket (neither a file descriptor nor a path)");
        hybrid_vsock = c->cid > 0 && !h->vhost_vsock;
        if (hybrid_vsock && isempty(p->vhost_user_vsock_socket))
                return fail(ret_error, -EINVAL,
                            "vsock: no vhost-user socket for vhost-device-vsock (no /dev/vhost-vsock on this host)");

        accel = qemu_effective_accel(c, h, ret_error);
        if (accel < 0)
                return accel;
        kvm = accel == VM_ACCEL_KVM;

        if (!kvm && streq_ptr(c->cpu, "host"))
                return fail(ret_error, -EINVAL, "cpu: host needs KVM, and this VM runs under TCG "
                            "(use a CPU model such as qemu64 or max, or remove the key)");
        if (c->model && isempty(p->model_image))
                return fail(ret_error, -EINVAL, "model: \"%s\" has no image", c->model);

        r = mmio_check(c, h, p, ret_error);
        if (r < 0)
                return r;

        r = kernel_cmdline(c, h, p, kvm, &append);
        if (r < 0)
                return r;

        /* ---- identity, machine ---- */
        arg(&a, h->qemu_binary);
        optf(&a, "-name", "guest=%s,process=zvm-%" PRIu32, esc(&pool, c->name), c->vmid);
        /* Under TCG the kernel hangs calibrating the TSC without the PIT, and
         * userspace timers stall without the PIC; under KVM kvmclock makes
         * both unnecessary. vhost-user needs guest RAM in shared memory. */
        optf(&a, "-M", "microvm,x-option-roms=off,rtc=on%s%s%s",
             kvm ? ",pit=off,pic=off" : "",
             c->pcie ? ",pcie=on" : "",
             hybrid_vsock ? ",memory-backend=mem" : "");
        if (kvm)
                opt(&a, "-accel", "kvm");
        else    /* See QEMU_TCG_TB_MIN_MIB. */
                optf(&a, "-accel", "tcg,tb-size=%u",
                     h->tcg_tb_mib ?: (unsigned) MIN(MAX(c->memory_mib / 8, (uint64_t) QEMU_TCG_TB_MIN_MIB), (uint64_t) QEMU_TCG_TB_MAX_MIB));
        opt(&a, "-cpu", c->cpu ?: kvm ? "host" : VM_CPU_DEFAULT_TCG);
        optf(&a, "-m", "%" PRIu64 "M", c->memory_mib);
        if (hybrid_vsock)
                optf(&a, "-object", "memory-backend-memfd,id=mem,size=%" PRIu64 "M,share=on", c->memory_mib);
        optf(&a, "-smp", "%u", c->cores);
        arg(&a, "-nodefaults");
        arg(&a, "-no-user-config");
        /* QEMU's seccomp filter (it also sets NO_NEW_PRIVS): no obsolete
         * syscalls, no setuid/setgid/capset, no fork/exec (taps and helpers
         * are zvmd's job), no scheduler or affinity changes. A device bug
         * then meets a process that can do little more than its job. */
        opt(&a, "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
        opt(&a, "-display", "none");
        /* QEMU 10's default SeaBIOS cannot load -kernel with
         * x-option-roms=off; qboot boots on 7.2 and 10. */
        opt(&a, "-bios", h->qboot_rom);
        if (p->pidfile)
                opt(&a, "-pidfile", p->pidfile);

        /* ---- console, QMP ---- */
        /* No logfile=: QEMU's is unbounded. zvmd reads the console and
         * keeps a capped log (daemon/console.h). */
        if (p->serial_fd >= 0)
                optf(&a, "-chardev", "socket,id=serial0,fd=%d,server=on,wait=on", p->serial_fd);
        else
                optf(&a, "-chardev", "socket,id=serial0,path=%s,server=on,wait=off", esc(&pool, p->serial_socket));
        opt(&a, "-serial", "chardev:serial0");
        if (p->qmp_fd >= 0)
                optf(&a, "-chardev", "socket,id=qmp,fd=%d,server=on,wait=off", p->qmp_fd);
        else
                optf(&a, "-chardev", "socket,id=qmp,path=%s,server=on,wait=off", esc(&pool, p->qmp_socket));
        opt(&a, "-mon", "chardev=qmp,mode=control");

        /* ---- the agent's secret: through fw_cfg, a file only root reads,
         * never on a command line that ps shows (api/agent-protocol.md) ---- */
        if (c->agent && p->agent_secret)
                optf(&a, "-fw_cfg", "name=opt/zvm/agent-secret,file=%s", esc(&pool, p->agent_secret));

        /* ---- kernel ---- */
        opt(&a, "-kernel", kernel);
        if (!isempty(initrd))
                opt(&a, "-initrd", initrd);
        opt(&a, "-append", append);

        /* ---- devices ---- */
        opt(&a, "-object", "rng-random,id=rng0,filename=/dev/urandom");
        optf(&a, "-device", "%s,rng=rng0", dev(c, QEMU_DEV_RNG));

        if (c->balloon_mib > 0)
                optf(&a, "-device", "%s,id=balloon0,free-page-reporting=on,deflate-on-oom=on",
                     dev(c, QEMU_DEV_BALLOON));

        /* Block devices: raw images only (format probing of a guest-written
         * image is a known hole), cache=writeback (QEMU's default, spelled
         * out): guest flushes reach the disk, and unlike cache=none it
         * works on filesystems without O_DIRECT such as tmpfs. The shared
         * template is read-only, so QEMU takes only a shared lock on it and
         * any number of VMs can use it. discard=unmap on the images a VM
         * owns gives space back when the guest trims. */
        if (c->rootfs_template) {
                optf(&a, "-drive", "id=root,file=%s,format=raw,if=none,readonly=on,cache=writeback",
                     drive_file(&a, &pool, fds->root, FDSET_ROOT, p->template_image));
                optf(&a, "-device", "%s,drive=root", dev(c, QEMU_DEV_BLK));
                if (p->upper_image) {
                        optf(&a, "-drive", "id=upper,file=%s,format=raw,if=none,cache=writeback,discard=unmap",
                             drive_file(&a, &pool, fds->upper, FDSET_UPPER, p->upper_image));
                        optf(&a, "-device", "%s,drive=upper", dev(c, QEMU_DEV_BLK));
                }
        } else {
                optf(&a, "-drive", "id=root,file=%s,format=raw,if=none,cache=writeback,discard=unmap",
                     drive_file(&a, &pool, fds->root, FDSET_ROOT, c->rootfs_path));
                optf(&a, "-device", "%s,drive=root", dev(c, QEMU_DEV_BLK));
        }
        if (c->model) {
                optf(&a, "-drive", "id=model,file=%s,format=raw,if=none,readonly=on,cache=writeback",
                     drive_file(&a, &pool, fds->model, FDSET_MODEL, p->model_image));
                optf(&a, "-device", "%s,drive=model", dev(c, QEMU_DEV_BLK));
        }
        for (unsigned i = 0; i < VM_DISKS_MAX; i++) {
                const VmDisk *d = &c->disks[i];

                if (!d->path)
                        continue;
                const char *file = drive_file(&a, &pool, fds->disks[i], FDSET_DISK0 + i, d->path);

                optf(&a, "-drive", "id=disk%u,file=%s,format=raw,if=none,cache=writeback%s", i, file,
                     d->readonly ? ",readonly=on" : "");
                if (d->scsi)
                        continue;
                /* serial= gives /dev/disk/by-id/virtio-diskN in guests with udev. */
                optf(&a, "-device", "%s,drive=disk%u,serial=disk%u", dev(c, QEMU_DEV_BLK), i, i);
        }
        for (unsigned i = 0; i < VM_DISKS_MAX; i++) {
                const VmDisk *d = &c->disks[i];

                if (!d->path || !d->scsi)
                        continue;
                if (!scsi) {
                        optf(&a, "-device", "%s,id=scsi0", dev(c, QEMU_DEV_SCSI));
                        scsi = true;
                }
                optf(&a, "-device", "scsi-hd,drive=disk%u,bus=scsi0.0,serial=disk%u", i, i);
        }

        for (unsigned i = 0; i < VM_NETS_MAX; i++) {
                const VmNet *n = &c->nets[i];
                char mac[18];

                if (!n->present)
                        continue;
                if (n->mac[0])
                        memcpy(mac, n->mac, sizeof(mac));
                else
                        vm_net_derive_mac(c->vmid, i, mac);
                if (n->bridge && fds->taps[i] >= 0)
                        /* The daemon creates the tap, puts it on the bridge
                         * and attaches an fd of /dev/net/tun to it. */
                        optf(&a, "-netdev", "tap,id=net%u,fd=%d", i, fds->taps[i]);
                else if (n->bridge)
                        /* The daemon creates the tap and puts it on the bridge. */
                        optf(&a, "-netdev", "tap,id=net%u,ifname=zvm%" PRIu32 "i%u,script=no,downscript=no", i,
                             c->vmid, i);
                else if (p->passt && !passt_used) {
                        optf(&a, "-netdev", "stream,id=net%u,server=off,addr.type=fd,addr.str=%d", i, p->passt_fd);
                        passt_used = true;
                } else {
                        /* slirp maps 10.0.2.2 to the host's 127.0.0.1; restricted,
                         * the guest reaches nothing outside (issue 10), but
                         * hostfwd= connections still come in. */
                        char fwd[VM_HOSTFWD_MAX * sizeof(",hostfwd=tcp:255.255.255.255:65535-:65535")] = "";
                        size_t l = 0;

                        for (unsigned j = 0; j < n->n_hostfwd; j++)
                                l += (size_t) snprintf(fwd + l, sizeof(fwd) - l, ",hostfwd=%s:%s:%u-:%u",
                                                       n->hostfwd[j].udp ? "udp" : "tcp", n->hostfwd[j].addr,
                                                       n->hostfwd[j].host_port, n->hostfwd[j].guest_port);
                        optf(&a, "-netdev", "user,id=net%u,restrict=on%s", i, fwd);
                }
                /* A PCI NIC would get QEMU's iPXE option ROM: useless with
                 * qboot and -kernel, and QEMU refuses to start when the
                 * ROM file is not installed. */
                optf(&a, "-device", "%s,netdev=net%u,mac=%s%s", dev(c, QEMU_DEV_NET), i, mac,
                     c->pcie ? ",romfile=" : "");
        }

        if (c->cid > 0) {
                if (hybrid_vsock) {
                        optf(&a, "-chardev", "socket,id=vsock0,path=%s", esc(&pool, p->vhost_user_vsock_socket));
                        optf(&a, "-device", "%s,chardev=vsock0", dev(c, QEMU_DEV_VHOST_USER_VSOCK));
                } else if (p->vhost_vsock_fd >= 0)
                        /* The fd the CID was reserved on (cid_probe_vhost()):
                         * QEMU sets the same CID on it again, which the
                         * kernel accepts for the owner. */
                        optf(&a, "-device", "%s,guest-cid=%" PRIu32 ",vhostfd=%d", dev(c, QEMU_DEV_VHOST_VSOCK),
                             c->cid, p->vhost_vsock_fd);
                else
                        optf(&a, "-device", "%s,guest-cid=%" PRIu32, dev(c, QEMU_DEV_VHOST_VSOCK), c->cid);
        }

        if (pool.r < 0 || a.r < 0)
                return -ENOMEM;
        *ret_argv = TAKE_PTR(a.l);
        return 0;
}
