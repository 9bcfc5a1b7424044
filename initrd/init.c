/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * zvm-initrd: the only program in zvm's initramfs. Static (musl), one file
 * plus lib/'s libc-only subset (logging, fd helpers, atomic write, clocks),
 * no shell.
 *
 * It mounts /proc, /sys, /dev and /run, reads the kernel command line, waits
 * (bounded, on kernel uevents) for the root device, mounts it — optionally as
 * the read-only lower layer of an overlay — mounts the model disk at /models,
 * moves the API filesystems into the new root, switches to it and execs the
 * root's init. Each stage is timed in milliseconds since the kernel started
 * (CLOCK_BOOTTIME) and reported as one line on the console and in
 * /run/zvm/initrd-timing inside the guest.
 *
 * Any failure prints a diagnosis (what was asked for, what block devices
 * exist) and powers the VM off: PID 1 must never exit (that panics the kernel)
 * and must never hang, so every path ends in exec or in power_off().
 *
 * Command line:
 *   root=LABEL=x|UUID=x|/dev/xxx   rootfstype=ext4|squashfs|…   ro | rw
 *   rootwait=SECONDS               bound on the device wait (default 10)
 *   zvm.overlay=1                  root is a shared read-only template: overlay
 *                                  it with a tmpfs upper, or with the disk
 *   zvm.upper=LABEL=x|/dev/xxx     given here (ext4; upper/ and work/ inside)
 *   zvm.models=LABEL=x|/dev/xxx    mounted read-only at /models
 *   zvm.init=/path                 what to exec (default /sbin/init)
 *   zvm.diag=1                     print what was detected, power off
 *   zvm.ci=1                       run the final init as a child; power off
 *                                  when it exits (bounded by zvm.ci.timeout=S)
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent-contract.h"
#include "fd-util.h"
#include "fileio.h"
#include "log.h"
#include "time-util.h"

/* musl ships no kernel UAPI headers; these two are the netlink ABI we use
 * (include/uapi/linux/netlink.h), stable since 2.6. */
#define NETLINK_KOBJECT_UEVENT 15
struct sockaddr_nl {
        sa_family_t nl_family;
        unsigned short nl_pad;
        uint32_t nl_pid;
        uint32_t nl_groups;
};

#define NEWROOT "/newroot"
#define MAX_STAGES 8
#define MAX_DEVICES 64
#define DEFAULT_ROOTWAIT_MS 10000
#define DEFAULT_CI_TIMEOUT_S 120

typedef struct Options {
        const char *root;
        const char *rootfstype;
        const char *init;
        const char *upper;
        const char *models;
        const char *hostname;
        bool rw;
        bool overlay;
        bool diag;
        bool ci;
        unsigned rootwait_ms;
        unsigned ci_timeout_s;
} Options;

typedef struct BlockDev {
        char name[32];          /* vda, sda1, … */
        char fstype[16];        /* ext4, squashfs, or "" if unknown */
        char label[17];
        char uuid[37];
        unsigned long long size_bytes;
} BlockDev;

typedef struct Stage {
        const char *name;
        unsigned long ms;
} Stage;

static Stage stages[MAX_STAGES];
static unsigned n_stages;
static char cmdline[4096];

static unsigned long now_ms(void) {
        /* BOOTTIME starts when the kernel's timekeeping does, which is what
         * "ms since kernel start" means on a guest console. */
        return (unsigned long) now_msec(CLOCK_BOOTTIME);
}

static void stage(const char *name) {
        if (n_stages < MAX_STAGES)
                stages[n_stages++] = (Stage) { name, now_ms() };
}

static int format_timing(char *buf, size_t size) {
        size_t off = 0;

        for (unsigned i = 0; i < n_stages && off < size; i++) {
                int n = snprintf(buf + off, size - off, "%s%s=%lu", i ? " " : "",
                                 stages[i].name, stages[i].ms);
                if (n < 0)
                        return -1;
                off += (size_t) n;
        }
        return 0;
}

/* The end of every road that is not exec(). */
static __attribute__((noreturn)) void power_off(void) {
        sync();
        log_info("powering off");
        (void) reboot(RB_POWER_OFF);
        /* Only reached if the platform cannot power off: a reset makes QEMU
         * exit when it runs with -no-reboot, which zvm always passes. */
        (void) reboot(RB_AUTOBOOT);
        for (;;)
                pause();
}

/* ---- kernel command line ---------------------------------------------- */

static bool flag_value(const char *v) {
        return v && (strcmp(v, "1") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "on") == 0 ||
                     strcmp(v, "true") == 0);
}

static unsigned parse_uint(const char *v, unsigned dflt, unsigned max) {
        char *end;
        unsigned long n;

        if (!v || !*v)
                return dflt;
        errno = 0;
        n = strtoul(v, &end, 10);
        if (errno || *end || n > max)
                return dflt;
        return (unsigned) n;
}

/* Splits cmdline in place into words (kernel-style: double quotes group
 * spaces, and are dropped), and applies those we know. */
static void parse_cmdline(char *s, Options *o) {
        while (*s) {
                char *word, *out, *eq, *value;
                bool quoted = false;

                while (isspace((unsigned char) *s))
                        s++;
                if (!*s)
                        break;
                word = out = s;
                for (; *s && (quoted || !isspace((unsigned char) *s)); s++) {
                        if (*s == '"')
                                quoted = !quoted;
                        else
                                *out++ = *s;
                }
                if (*s)
                        s++;
                *out = 0;

                if (strcmp(word, "--") == 0)
                        break;                  /* the rest belongs to init */
                eq = strchr(word, '=');
                value = eq ? eq + 1 : NULL;
                if (eq)
                        *eq = 0;

                if (strcmp(word, "root") == 0 && value)
                        o->root = value;
                else if (strcmp(word, "rootfstype") == 0 && value)
                        o->rootfstype = value;
                else if (strcmp(word, "ro") == 0 && !value)
                        o->rw = false;
                else if (strcmp(word, "rw") == 0 && !value)
                        o->rw = true;
                else if (strcmp(word, "rootwait") == 0)
                        o->rootwait_ms = value ? parse_uint(value, DEFAULT_ROOTWAIT_MS / 1000, 3600) * 1000
                                               : DEFAULT_ROOTWAIT_MS;
                else if (strcmp(word, "zvm.overlay") == 0)
                        o->overlay = flag_value(value);
                else if (strcmp(word, "zvm.upper") == 0 && value)
                        o->upper = value;
                else if (strcmp(word, "zvm.models") == 0 && value)
                        o->models = value;
                else if (strcmp(word, "systemd.hostname") == 0 && value)
                        o->hostname = value;    /* the VM's name, from zvmd */
                else if (strcmp(word, "zvm.init") == 0 && value)
                        o->init = value;
                else if (strcmp(word, "zvm.diag") == 0)
                        o->diag = flag_value(value);
                else if (strcmp(word, "zvm.ci") == 0)
                        o->ci = flag_value(value);
                else if (strcmp(word, "zvm.ci.timeout") == 0)
                        o->ci_timeout_s = parse_uint(value, DEFAULT_CI_TIMEOUT_S, 86400);
        }
}

/* ---- block devices ----------------------------------------------------- */

static unsigned le16(const unsigned char *p) {
        return (unsigned) p[0] | (unsigned) p[1] << 8;
}

/* Identifies the filesystem on /dev/<name> by its superblock: we need only
 * the label and UUID of ext2/3/4 and the magic of squashfs, which is less
 * than static libblkid would cost. */
static void probe_fs(BlockDev *d) {
        unsigned char sb[2048];
        char path[64];
        int fd;
        ssize_t n;

        snprintf(path, sizeof(path), "/dev/%s", d->name);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
                return;
        n = pread(fd, sb, sizeof(sb), 0);
        close(fd);
        if (n < (ssize_t) sizeof(sb))
                return;

        if (memcmp(sb, "hsqs", 4) == 0) {
                strcpy(d->fstype, "squashfs");
                return;
        }
        /* ext2/3/4 superblock at byte 1024: magic 0xEF53 at +56, UUID at
         * +104, volume name at +120. */
        if (le16(sb + 1024 + 56) == 0xEF53) {
                const unsigned char *u = sb + 1024 + 104;

                strcpy(d->fstype, "ext4");
                memcpy(d->label, sb + 1024 + 120, 16);
                d->label[16] = 0;
                snprintf(d->uuid, sizeof(d->uuid),
                         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                         u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10],
                         u[11], u[12], u[13], u[14], u[15]);
        }
}

static unsigned scan_block_devices(BlockDev *devs, unsigned max) {
        DIR *dir;
        struct dirent *de;
        unsigned n = 0;

        dir = opendir("/sys/class/block");
        if (!dir)
                return 0;
        while ((de = readdir(dir)) && n < max) {
                char path[300], buf[32];

                if (de->d_name[0] == '.' || strlen(de->d_name) >= sizeof(devs[n].name))
                        continue;
                /* Empty loop and ram devices are noise in a diagnosis. */
                if (strncmp(de->d_name, "loop", 4) == 0 || strncmp(de->d_name, "ram", 3) == 0)
                        continue;
                memset(&devs[n], 0, sizeof(devs[n]));
                strcpy(devs[n].name, de->d_name);
                snprintf(path, sizeof(path), "/sys/class/block/%s/size", de->d_name);
                if (read_file_to_buffer(path, buf, sizeof(buf)) > 0)
                        devs[n].size_bytes = strtoull(buf, NULL, 10) * 512ULL;
                probe_fs(&devs[n]);
                n++;
        }
        closedir(dir);
        return n;
}

static void print_block_devices(const BlockDev *devs, unsigned n) {
        if (n == 0) {
                log_info("block devices: none");
                return;
        }
        for (unsigned i = 0; i < n; i++)
                log_info("block device /dev/%s: %llu MiB, %s%s%s%s%s", devs[i].name,
                    devs[i].size_bytes >> 20, devs[i].fstype[0] ? devs[i].fstype : "unknown fs",
                    devs[i].label[0] ? " LABEL=" : "", devs[i].label,
                    devs[i].uuid[0] ? " UUID=" : "", devs[i].uuid);
}

/* The fallback for a device path: /dev/vdXN → /dev/sdXN. Firecracker-style
 * virtio-blk names the root vda, virtio-scsi and q35 AHCI name it sda. */
static bool fallback_path(const char *spec, char *buf, size_t size) {
        if (strncmp(spec, "/dev/vd", 7) != 0)
                return false;
        snprintf(buf, size, "/dev/sd%s", spec + 7);
        return true;
}

/* Resolves a device spec against the devices present now. Virtio-blk disks
 * are probed synchronously before init runs, so when /dev/vdX is absent but
 * /dev/sdX is there, vdX is not coming and the fallback is safe to take. */
static bool resolve_spec(const char *spec, char *out, size_t size) {
        BlockDev devs[MAX_DEVICES];
        unsigned n;
        struct stat st;
        char alt[64];

        if (strncmp(spec, "LABEL=", 6) == 0 || strncmp(spec, "UUID=", 5) == 0) {
                bool by_label = spec[0] == 'L';
                const char *want = spec + (by_label ? 6 : 5);

                n = scan_block_devices(devs, MAX_DEVICES);
                for (unsigned i = 0; i < n; i++) {
                        const char *have = by_label ? devs[i].label : devs[i].uuid;

                        if (have[0] && (by_label ? strcmp(have, want) : strcasecmp(have, want)) == 0) {
                                snprintf(out, size, "/dev/%s", devs[i].name);
                                return true;
                        }
                }
                return false;
        }
        if (stat(spec, &st) == 0 && S_ISBLK(st.st_mode)) {
                snprintf(out, size, "%s", spec);
                return true;
        }
        if (fallback_path(spec, alt, sizeof(alt)) && stat(alt, &st) == 0 && S_ISBLK(st.st_mode)) {
                log_info("%s not present, falling back to %s", spec, alt);
                snprintf(out, size, "%s", alt);
                return true;
        }
        return false;
}

static bool spec_supported(const char *spec) {
        return strncmp(spec, "LABEL=", 6) == 0 || strncmp(spec, "UUID=", 5) == 0 ||
               strncmp(spec, "/dev/", 5) == 0;
}

static int uevent_socket(void) {
        struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = 1 };
        int fd;

        fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_KOBJECT_UEVENT);
        if (fd < 0)
                return -1;
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

/* Waits until spec resolves or deadline_ms (BOOTTIME) passes. Woken by the
 * kernel's uevents, which devtmpfs sends after it has made the node. */
static bool wait_for_device(int nl, const char *spec, unsigned long deadline_ms, char *out, size_t size) {
        for (;;) {
                struct pollfd p = { .fd = nl, .events = POLLIN };
                unsigned long now;
                char buf[4096];

                if (resolve_spec(spec, out, size))
                        return true;
                now = now_ms();
                if (now >= deadline_ms)
                        return false;
                if (nl < 0) {
                        /* No netlink (cannot happen with zvm's kernel): a
                         * short bounded nap is the only way left. */
                        usleep(20000);
                        continue;
                }
                if (poll(&p, 1, (int) (deadline_ms - now)) < 0 && errno != EINTR)
                        return false;
                while (recv(nl, buf, sizeof(buf), MSG_DONTWAIT) > 0)
                        ;
        }
}

/* ---- mounting ----------------------------------------------------------- */

static int mount_one(const char *src, const char *dst, const char *type, unsigned long flags,
                     const char *data) {
        (void) mkdir(dst, 0755);
        if (mount(src, dst, type, flags, data) < 0) {
                log_info("mount %s on %s (%s) failed: %s", src, dst, type ? type : "bind/move", strerror(errno));
                return -1;
        }
        return 0;
}

static const char *detect_fstype(const char *dev) {
        BlockDev d = { 0 };

        snprintf(d.name, sizeof(d.name), "%s", dev + 5);       /* skip "/dev/" */
        probe_fs(&d);
        if (strcmp(d.fstype, "squashfs") == 0)
                return "squashfs";
        return "ext4";
}

static void diagnose(const char *what, const char *spec) {
        BlockDev devs[MAX_DEVICES];
        unsigned n = scan_block_devices(devs, MAX_DEVICES);

        log_error("FATAL: %s", what);
        if (spec)
                log_info("wanted: %s", spec);
        log_info("kernel command line: %s", cmdline);
        print_block_devices(devs, n);
}

static __attribute__((noreturn)) void fail(const char *what, const char *spec) {
        diagnose(what, spec);
        power_off();
}

/* Resolves a spec, waiting up to the deadline; fails the boot if it does not
 * show up. */
static void need_device(int nl, const char *role, const char *spec, unsigned long deadline,
                        char *out, size_t size) {
        char msg[256];

        if (!spec_supported(spec)) {
                snprintf(msg, sizeof(msg), "%s=%s is not LABEL=, UUID= or a /dev path", role, spec);
                fail(msg, NULL);
        }
        if (!wait_for_device(nl, spec, deadline, out, size)) {
                snprintf(msg, sizeof(msg), "%s device %s did not appear within %lu ms", role, spec,
                         deadline > stages[0].ms ? deadline - stages[0].ms : 0);
                fail(msg, spec);
        }
}

static void mount_root(const Options *o, int nl, unsigned long deadline) {
        char dev[64];
        const char *type;

        if (!o->root)
                fail("no root= on the kernel command line", NULL);
        need_device(nl, "root", o->root, deadline, dev, sizeof(dev));
        stage("root-dev");
        type = o->rootfstype ? o->rootfstype : detect_fstype(dev);

        if (!o->overlay) {
                if (mount_one(dev, NEWROOT, type, o->rw ? 0 : MS_RDONLY, NULL) < 0)
                        fail("cannot mount the root filesystem", o->root);
                stage("root-mount");
                return;
        }

        /* Shared template: read-only lower, private upper. Both live under
         * /run/zvm so the guest still sees them after the switch (moving
         * /run moves its submounts along). */
        char upper_dev[64], opts[256];

        if (mount_one(dev, "/run/zvm/lower", type, MS_RDONLY, NULL) < 0)
                fail("cannot mount the root template", o->root);
        if (o->upper) {
                need_device(nl, "zvm.upper", o->upper, deadline, upper_dev, sizeof(upper_dev));
                if (mount_one(upper_dev, "/run/zvm/upper", "ext4", 0, NULL) < 0)
                        fail("cannot mount the writable layer", o->upper);
        } else if (mount_one("tmpfs", "/run/zvm/upper", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
                fail("cannot mount a tmpfs for the writable layer", NULL);
        (void) mkdir("/run/zvm/upper/upper", 0755);
        (void) mkdir("/run/zvm/upper/work", 0755);
        snprintf(opts, sizeof(opts),
                 "lowerdir=/run/zvm/lower,upperdir=/run/zvm/upper/upper,workdir=/run/zvm/upper/work");
        if (mount_one("overlay", NEWROOT, "overlay", 0, opts) < 0)
                fail("cannot mount the overlay root", o->root);
        stage("root-mount");
}

static void mount_models(const Options *o, int nl, unsigned long deadline) {
        char dev[64];

        need_device(nl, "zvm.models", o->models, deadline, dev, sizeof(dev));
        if (mkdir(NEWROOT "/models", 0755) < 0 && errno != EEXIST)
                fail("the root has no /models and it cannot be created (read-only root?)", o->models);
        if (mount(dev, NEWROOT "/models", detect_fstype(dev), MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0) {
                log_info("mount %s on /models failed: %s", dev, strerror(errno));
                fail("cannot mount the model disk", o->models);
        }
        stage("models");
}

/* ---- diagnostics (zvm.diag=1) ------------------------------------------ */

static void print_dir_entries(const char *title, const char *path) {
        DIR *dir = opendir(path);
        struct dirent *de;
        char line[512];
        size_t off = 0;

        line[0] = 0;
        if (dir) {
                while ((de = readdir(dir))) {
                        int n;

                        if (de->d_name[0] == '.')
                                continue;
                        n = snprintf(line + off, sizeof(line) - off, "%s%s", off ? " " : "", de->d_name);
                        if (n < 0 || (size_t) n >= sizeof(line) - off)
                                break;
                        off += (size_t) n;
                }
                closedir(dir);
        }
        log_info("%s: %s", title, off ? line : "none");
}

static void print_models(const char *dir_path) {
        DIR *dir = opendir(dir_path);
        struct dirent *de;
        unsigned n = 0;

        if (!dir) {
                log_info("models: %s not mounted", dir_path);
                return;
        }
        while ((de = readdir(dir))) {
                char path[512], magic[4] = { 0 };
                struct stat st;
                int fd;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof(path), "%s/%s", dir_path, de->d_name);
                if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
                        continue;
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd >= 0) {
                        (void) !read(fd, magic, sizeof(magic));
                        close(fd);
                }
                log_info("model %s: %lld bytes%s", de->d_name, (long long) st.st_size,
                    memcmp(magic, "GGUF", 4) == 0 ? ", GGUF" : ", not GGUF");
                n++;
        }
        closedir(dir);
        if (n == 0)
                log_info("models: none on the model disk");
}

static __attribute__((noreturn)) void run_diag(const Options *o, int nl, unsigned long deadline) {
        BlockDev devs[MAX_DEVICES];
        struct utsname u;
        struct sysinfo si;
        char dev[64];
        unsigned n;

        log_info("diag: kernel %s", uname(&u) == 0 ? u.release : "?");
        log_info("diag: command line: %s", cmdline);
        if (sysinfo(&si) == 0)
                log_info("diag: memory %lu MiB, %ld online cpus", (unsigned long) ((si.totalram * si.mem_unit) >> 20),
                    sysconf(_SC_NPROCESSORS_ONLN));
        /* Give the root device its usual chance to appear, then report. */
        if (o->root && spec_supported(o->root)) {
                if (wait_for_device(nl, o->root, deadline, dev, sizeof(dev)))
                        log_info("diag: root %s found at %s", o->root, dev);
                else
                        log_info("diag: root %s NOT FOUND", o->root);
        } else
                log_info("diag: root %s", o->root ? "spec not supported" : "not given");
        n = scan_block_devices(devs, MAX_DEVICES);
        print_block_devices(devs, n);
        print_dir_entries("diag: virtio devices", "/sys/bus/virtio/devices");
        log_info("diag: vsock %s", access("/dev/vsock", F_OK) == 0 ? "present" : "absent");
        print_dir_entries("diag: fw_cfg opt/zvm", "/sys/firmware/qemu_fw_cfg/by_name/opt/zvm");
        if (o->models) {
                if (wait_for_device(nl, o->models, deadline, dev, sizeof(dev)) &&
                    mount_one(dev, "/run/zvm/models", detect_fstype(dev), MS_RDONLY, NULL) == 0)
                        print_models("/run/zvm/models");
                else
                        log_info("diag: model disk %s NOT FOUND", o->models);
        } else
                log_info("diag: no model disk (zvm.models=)");
        log_info("diag: done");
        power_off();
}

/* ---- switching root ------------------------------------------------------ */

static void write_timing_file(const char *line) {
        char buf[300];
        int n = snprintf(buf, sizeof(buf), "%s\n", line);

        (void) mkdir(AGENT_INITRD_TIMING_DIR, 0755);
        if (n > 0 && (size_t) n < sizeof(buf))
                (void) write_file_atomic(AGENT_INITRD_TIMING_DIR, AGENT_INITRD_TIMING_NAME, buf, (size_t) n, 0644);
}

static void switch_root(void) {
        static const char *const api[] = { "/dev", "/proc", "/sys", "/run" };

        for (size_t i = 0; i < ELEMENTSOF(api); i++) {
                char target[64];

                snprintf(target, sizeof(target), NEWROOT "%s", api[i]);
                (void) mkdir(target, 0755);
                if (mount(api[i], target, NULL, MS_MOVE, NULL) < 0) {
                        /* A read-only root without this directory: the guest
                         * runs without it rather than not at all. */
                        log_info("cannot move %s into the root (%s), detaching it", api[i], strerror(errno));
                        (void) umount2(api[i], MNT_DETACH);
                }
        }
        /* The initramfs is a ramfs we are about to leave; our own binary is
         * all it holds, so freeing it is one unlink. */
        (void) unlink("/init");
        if (chdir(NEWROOT) < 0 || mount(NEWROOT, "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 ||
            chdir("/") < 0)
                fail("switching to the new root failed", NULL);
}

static const char *pick_init(const char *wanted) {
        static const char *const fallbacks[] = { "/sbin/init", "/etc/init", "/bin/init", "/bin/sh" };

        if (wanted)
                return access(wanted, X_OK) == 0 ? wanted : NULL;
        for (size_t i = 0; i < ELEMENTSOF(fallbacks); i++)
                if (access(fallbacks[i], X_OK) == 0)
                        return fallbacks[i];
        return NULL;
}

/* zvm.ci=1: we stay PID 1, run the final init as a child and power off when
 * it exits or the timeout passes, so a CI boot always ends by itself. */
static __attribute__((noreturn)) void run_ci(const char *init, char **argv, unsigned timeout_s) {
        sigset_t set;
        struct timespec ts = { .tv_sec = timeout_s };
        pid_t pid;
        int status;

        sigemptyset(&set);
        sigaddset(&set, SIGCHLD);
        pid = fork();
        if (pid < 0)
                fail("fork failed", NULL);
        if (pid == 0) {
                sigset_t none;

                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                setenv("ZVM_CI", "1", 1);
                execv(init, argv);
                log_info("exec %s failed: %s", init, strerror(errno));
                _exit(127);
        }
        for (;;) {
                pid_t w = waitpid(-1, &status, WNOHANG);

                if (w == pid)
                        break;
                if (w > 0)
                        continue;                       /* reaped an orphan */
                if (sigtimedwait(&set, NULL, &ts) < 0 && errno == EAGAIN) {
                        log_info("ci: final init %s still running after %us, killing it", init, timeout_s);
                        kill(pid, SIGKILL);
                        (void) waitpid(pid, &status, 0);
                        power_off();
                }
        }
        if (WIFEXITED(status))
                log_info("ci: final init %s exited with status %d", init, WEXITSTATUS(status));
        else
                log_info("ci: final init %s killed by signal %d", init, WTERMSIG(status));
        power_off();
}

/* ---- main ----------------------------------------------------------------- */

static void setup_console(void) {
        int fd;

        /* The kernel opens /dev/console from the initramfs for us; if that
         * failed there is no stdout at all, so take it from devtmpfs. */
        if (fcntl(STDERR_FILENO, F_GETFD) >= 0)
                return;
        fd = open("/dev/console", O_RDWR | O_NOCTTY);
        if (fd < 0)
                return;
        for (int i = 0; i < 3; i++)
                if (fd != i)
                        dup2(fd, i);
        if (fd > 2)
                close(fd);
}

/* /dev (and the console, if the kernel could not open it), /proc, /sys, /run. */
static void mount_api_filesystems(void) {
        int r;

        (void) mkdir("/dev", 0755);
        r = mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
        setup_console();
        if (r < 0 && errno != EBUSY)
                fail("cannot mount devtmpfs on /dev", NULL);
        if (mount_one("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 ||
            mount_one("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 ||
            mount_one("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
                fail("cannot mount the API filesystems", NULL);
        (void) mkdir(AGENT_INITRD_TIMING_DIR, 0755);
        (void) mkdir(NEWROOT, 0755);
}

/* cmdline keeps the text for diagnoses; the options point into a copy. */
static void read_cmdline(Options *o) {
        static char work[sizeof(cmdline)];
        ssize_t n = read_file_to_buffer("/proc/cmdline", cmdline, sizeof(cmdline));

        if (n > 0 && cmdline[n - 1] == '\n')
                cmdline[n - 1] = 0;
        memcpy(work, cmdline, sizeof(work));
        parse_cmdline(work, o);
}

int main(int argc, char **argv) {
        Options o = {
                .rootwait_ms = DEFAULT_ROOTWAIT_MS,
                .ci_timeout_s = DEFAULT_CI_TIMEOUT_S,
        };
        char timing[256];
        const char *init;
        unsigned long deadline;
        sigset_t all;
        int nl;

        log_set_program_name("zvm-initrd");
        /* PID 1: no signal is ever delivered to us by default; block them so
         * that run_ci() can wait for SIGCHLD synchronously. */
        sigfillset(&all);
        sigprocmask(SIG_BLOCK, &all, NULL);
        stage("init");

        mount_api_filesystems();
        read_cmdline(&o);
        stage("mounts");

        nl = uevent_socket();
        deadline = stages[0].ms + o.rootwait_ms;
        if (o.diag)
                run_diag(&o, nl, deadline);

        mount_root(&o, nl, deadline);
        if (o.models)
                mount_models(&o, nl, deadline);
        if (nl >= 0)
                close(nl);

        {
                /* Check the init inside the new root before leaving ours, so a
                 * missing init is diagnosed with the devices still in view. */
                char path[512];
                const char *want = o.init ? o.init : "/sbin/init";

                snprintf(path, sizeof(path), NEWROOT "%s", want);
                if (access(path, X_OK) < 0 && o.init) {
                        char msg[600];

                        snprintf(msg, sizeof(msg), "zvm.init=%s is not an executable in the root", o.init);
                        fail(msg, o.root);
                }
        }

        /* systemd takes systemd.hostname= itself; any other init (the tiny
         * template's busybox) keeps what the kernel has from here. */
        if (o.hostname && sethostname(o.hostname, strlen(o.hostname)) < 0)
                log_info("sethostname(%s) failed: %s", o.hostname, strerror(errno));

        stage("switch");
        (void) format_timing(timing, sizeof(timing));
        write_timing_file(timing);
        log_info("timing %s (ms since kernel start; initrd took %lu ms)", timing,
            stages[n_stages - 1].ms - stages[0].ms);

        switch_root();
        init = pick_init(o.init);
        if (!init)
                fail("no init found in the root (tried /sbin/init, /etc/init, /bin/init, /bin/sh)", o.root);

        argv[0] = (char *) init;
        (void) argc;
        if (o.ci)
                run_ci(init, argv, o.ci_timeout_s);

        /* From here on we are the root's init: exec must not return. */
        {
                sigset_t none;

                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
        }
        execv(init, argv);
        log_info("exec %s failed: %s", init, strerror(errno));
        fail("cannot start the root's init", o.root);
}
