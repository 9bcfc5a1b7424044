/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * Golden tests of the QEMU command line: each case builds the argv for a
 * config text and a host, and compares it with tests/unit/golden/<case>.argv
 * (one argument per line).
 *
 * After an intended change of the command line, regenerate the files with
 *         ZVM_UPDATE_GOLDEN=1 meson test -C <builddir> test-qemu-argv
 * (or run the test binary with that variable set), review the diff of
 * tests/unit/golden/ and commit it with the change. In that mode the test
 * writes the files instead of comparing and reports every case as passed.
 *
 * The command lines behind these files were booted by hand under TCG with
 * the shared kernel, initrd and tiny template (see daemon/qemu-argv.c).
 */

#include "config-file.h"
#include "fd-util.h"
#include "fileio.h"
#include "qemu-argv.h"
#include "string-util.h"
#include "qemu-argv-fixtures.h"
#include "tap.h"

#ifndef GOLDEN_DIR
#error "GOLDEN_DIR must be defined by the build"
#endif

static const HostCaps host_tcg_vhost = {
        .qemu_binary = "qemu-system-x86_64",
        .qemu_version = 70222,
        .kvm_usable = false,
        .vhost_vsock = true,
        .tsc_khz = 2100000,
        .qboot_rom = "/usr/share/qemu/qboot.rom",
        .kernel = "/usr/lib/zvm/vmlinux",
        .initrd = "/usr/lib/zvm/initrd.img",
};

static const HostCaps host_tcg_notsc = {
        .qemu_binary = "/opt/qemu/bin/qemu-system-x86_64",
        .qemu_version = 100002,
        .kvm_usable = false,
        .vhost_vsock = false,
        .tsc_khz = 0,
        .qboot_rom = "/usr/share/qemu/qboot.rom",
        .kernel = "/usr/lib/zvm/vmlinux",
        .initrd = NULL,
};

static const HostCaps host_kvm = {
        .qemu_binary = "qemu-system-x86_64",
        .qemu_version = 100002,
        .kvm_usable = true,
        .vhost_vsock = true,
        .tsc_khz = 2100000,
        .qboot_rom = "/usr/share/qemu/qboot.rom",
        .kernel = "/usr/lib/zvm/vmlinux",
        .initrd = "/usr/lib/zvm/initrd.img",
};

static const VmPaths paths_vhost_fd = {
        .run_dir = "/run/zvm/vms/100",
        .qmp_fd = 3,
        .serial_fd = 5,
        .vhost_vsock_fd = 4,
        .template_image = "/var/lib/zvm/templates/tiny.img",
        .upper_image = "/var/lib/zvm/images/100/upper.img",
        .model_image = "/var/lib/zvm/models/images/5e1f.img",
};

/* The user NIC goes to passt over QEMU's end of a socketpair. */
static const VmPaths paths_passt = {
        .run_dir = "/run/zvm/vms/100",
        .qmp_fd = 3,
        .serial_fd = 5,
        .vhost_vsock_fd = -1,
        .vhost_user_vsock_socket = "/run/zvm/vms/100/vhost-vsock.sock",
        .template_image = "/var/lib/zvm/templates/tiny.img",
        .upper_image = "/var/lib/zvm/images/100/upper.img",
        .passt = true,
        .passt_fd = 7,
};

/* rootfs is an image path: no template, no upper layer. */
static const VmPaths paths_image = {
        .run_dir = "/run/zvm/vms/100",
        .qmp_fd = 3,
        .serial_fd = 5,
        .vhost_user_vsock_socket = "/run/zvm/vms/100/vhost-vsock.sock",
        .vhost_vsock_fd = -1,
        .model_image = "/var/lib/zvm/models/images/5e1f.img",
};

/* QMP and the serial console by path; ',' in the daemon's directories must be doubled. */
static const VmPaths paths_commas = {
        .run_dir = "/tmp/a,b/vms/100",
        .qmp_socket = "/tmp/a,b/vms/100/qmp.sock",
        .qmp_fd = -1,
        .serial_socket = "/tmp/a,b/vms/100/serial,.sock",
        .serial_fd = -1,
        .vhost_user_vsock_socket = "/tmp/a,b/vms/100/vsock,.sock",
        .vhost_vsock_fd = -1,
        .template_image = "/tmp/a,b/templates/tiny.img",
        .upper_image = "/tmp/a,b/images/100/upper.img",
};

/* A template without a writable layer image: the upper layer is a tmpfs. */
static const VmPaths paths_no_upper = {
        .run_dir = "/run/zvm/vms/100",
        .qmp_fd = 3,
        .serial_fd = 5,
        .vhost_user_vsock_socket = "/run/zvm/vms/100/vhost-vsock.sock",
        .vhost_vsock_fd = -1,
        .template_image = "/var/lib/zvm/templates/tiny.img",
        .model_image = "/var/lib/zvm/models/images/5e1f.img",
};

/* As zvmd starts a VM (daemon/core/vm-sandbox.c): disks in fdsets (a
 * writable one with an O_RDWR and an O_RDONLY fd), kernel, initrd and the
 * agent's secret through /proc/self/fd, the vhost-user socket through the
 * vsock dir's fd. */
static const VmFds fds_sandbox = {
        .root = { 10, -1 },
        .upper = { 11, 12 },
        .model = { 13, -1 },
        .disks = { { 20, 21 }, { 22, -1 }, { -1, -1 }, { -1, -1 }, { -1, -1 }, { -1, -1 }, { -1, -1 }, { -1, -1 } },
        .taps = { -1, 30, -1, -1, -1, -1 },
};

static const VmPaths paths_sandbox = {
        .run_dir = "/run/zvm/vms/100",
        .qmp_fd = 3,
        .serial_fd = 5,
        .vhost_user_vsock_socket = "/proc/self/fd/6/vhost-vsock.sock",
        .vhost_vsock_fd = -1,
        .template_image = "/var/lib/zvm/templates/tiny.img",
        .upper_image = "/var/lib/zvm/images/100/upper.img",
        .model_image = "/var/lib/zvm/models/images/5e1f.img",
        .agent_secret = "/proc/self/fd/9",
        .kernel = "/proc/self/fd/7",
        .initrd = "/proc/self/fd/8",
        .fds = &fds_sandbox,
};

static const struct {
        const char *name;
        const char *config;
        const HostCaps *host;
        const VmPaths *paths;
} golden_cases[] = {
        { "minimal-tcg", "name: web\nvsock: cid=1100\n", &host_tcg, &paths_std },
        { "minimal-kvm", "name: web\nvsock: cid=1100\n", &host_kvm, &paths_vhost_fd },
        { "no-vsock", "name: web\n", &host_tcg, &paths_std },
        { "vsock-hybrid", "name: web\nmemory: 1024\nvsock: cid=1100\n", &host_tcg, &paths_std },
        { "vsock-kernel", "name: web\nmemory: 1024\nvsock: cid=1100\n", &host_tcg_vhost, &paths_vhost_fd },
        { "vsock-kernel-nofd", "name: web\nvsock: cid=1100\n", &host_tcg_vhost, &paths_std },
        { "accel-tcg-on-kvm-host", "name: web\naccel: tcg\nvsock: cid=1100\n", &host_kvm, &paths_vhost_fd },
        { "accel-kvm", "name: web\naccel: kvm\ncores: 4\nmemory: 8192\n", &host_kvm, &paths_std },
        { "no-tsc", "name: web\n", &host_tcg_notsc, &paths_std },
        { "pcie",
          "name: big\npcie: 1\nmemory: 2048\ncores: 2\nmodel: m\n"
          "disk0: /srv/d0.img\ndisk1: /srv/d1.img,bus=scsi\nnet0: user\nnet1: bridge=vmbr0\nvsock: cid=1100\n",
          &host_tcg, &paths_std },
        { "pcie-kvm",
          "name: big\npcie: 1\nmodel: m\nnet0: user\nvsock: cid=1100\n",
          &host_kvm, &paths_vhost_fd },
        { "disks-scsi",
          "name: disks\ndisk0: /srv/d0.img\ndisk1: /srv/d1.img,bus=scsi,ro=1\ndisk2: /srv/d2.img,bus=scsi\n"
          "disk5: /dev/vg/d5,ro=1\n",
          &host_tcg, &paths_std },
        { "nets",
          "name: nets\nnet0: user\nnet1: user,mac=02:AB:CD:EF:00:01\nnet3: bridge=vmbr0,tag=42\n"
          "net5: bridge=br-lan,mac=52:54:00:12:34:56\n",
          &host_tcg, &paths_std },
        /* Eight forwards of the longest form fill the builder's buffer. */
        { "nets-hostfwd",
          "name: fwd\nnet0: user,hostfwd=tcp:127.0.0.1:2222-22,hostfwd=udp::5353-:53\n"
          "net1: user,hostfwd=tcp:255.255.255.255:65535-:65535,hostfwd=udp:255.255.255.255:65535-65535,"
          "hostfwd=tcp:255.255.255.255:65534-65535,hostfwd=tcp:255.255.255.255:65533-65535,"
          "hostfwd=tcp:255.255.255.255:65532-65535,hostfwd=tcp:255.255.255.255:65531-65535,"
          "hostfwd=tcp:255.255.255.255:65530-65535,hostfwd=udp:255.255.255.255:65534-65535\n",
          &host_tcg, &paths_std },
        /* passt serves the first user NIC; a second one (zvmd refuses it
         * before the builder runs) would get restricted slirp. */
        { "nets-passt", "name: nets\nnet0: user\nnet1: user\nnet2: bridge=vmbr0\nvsock: cid=1100\n", &host_tcg,
          &paths_passt },
        { "model", "name: llm\nmemory: 4096\nmodel: qwen\nvsock: cid=1100\n", &host_tcg,
          &paths_std },
        { "model-after-disks",
          "name: llm\nmodel: qwen\ndisk0: /srv/d0.img\ndisk1: /srv/d1.img\n",
          &host_tcg, &paths_std },
        { "rootfs-path", "name: img\nrootfs: /srv/vm/root.img\nmodel: m\n", &host_tcg,
          &paths_image },
        { "cpu-tcg", "name: llm\ncpu: Haswell-v4\n", &host_tcg, &paths_std },
        { "cpu-kvm", "name: llm\ncpu: EPYC\n", &host_kvm, &paths_vhost_fd },
        { "cpu-host-kvm", "name: llm\ncpu: host\n", &host_kvm, &paths_vhost_fd },
        { "balloon0", "name: web\nballoon: 0\n", &host_tcg, &paths_std },
        { "balloon-floor", "name: web\nmemory: 1024\nballoon: 256\n", &host_tcg, &paths_std },
        { "user-cmdline",
          "name: dev\nkernel: /srv/k/vmlinux\ninitrd: /srv/k/initrd.img\ncmdline: loglevel=7 zvm.init=/bin/sh\n"
          "cores: 2\nmemory: 512\n",
          &host_tcg, &paths_std },
        { "qmp-path-commas", "name: web\nvsock: cid=1100\n", &host_tcg, &paths_commas },
        { "template-tmpfs-upper", "name: web\nvsock: cid=1100\n", &host_tcg, &paths_no_upper },
        { "sandbox-fds", "name: web\nmodel: m\ndisk0: /srv/d0.img\ndisk1: /srv/d1.img,ro=1,bus=scsi\nnet0: user\n"
          "net1: bridge=vmbr0\nvsock: cid=1100\n",
          &host_tcg, &paths_sandbox },
        /* Everything MMIO can carry: 1 rng + 1 balloon + root + upper + model +
         * 7 blk disks + 1 SCSI controller + 6 nets + vsock = 20 of 24. */
        { "mmio-max",
          "name: max\nmodel: m\ndisk0: /d0\ndisk1: /d1\ndisk2: /d2\ndisk3: /d3\ndisk4: /d4\ndisk5: /d5\n"
          "disk6: /d6\ndisk7: /d7,bus=scsi\nnet0: user\nnet1: user\nnet2: user\nnet3: user\nnet4: user\n"
          "net5: user\nvsock: cid=1100\n",
          &host_tcg, &paths_std },
};

static char *argv_text(char **argv) {
        _cleanup_free_ char *j = strv_join(argv, "\n");

        assert_se(j);
        return strjoin(j, "\n");
}

static VmConfig *config_new(const char *text, uint32_t vmid) {
        _cleanup_config_file_free_ ConfigFile *cf = NULL;
        _cleanup_free_ char *err = NULL;
        VmConfig *c = NULL;

        assert_se(config_file_parse(text, strlen(text), &cf, NULL) >= 0);
        if (vm_config_from_file(cf, vmid, &c, &err) < 0) {
                diag("config: %s", strnull(err));
                abort();
        }
        return c;
}

/* The first line where a and b differ, for the diagnostics. */
static void diag_first_difference(const char *got, const char *want) {
        unsigned line = 1;
        const char *g = got, *w = want;

        while (*g && *w && *g == *w) {
                if (*g == '\n')
                        line++;
                g++;
                w++;
        }
        while (g > got && g[-1] != '\n')
                g--;
        while (w > want && w[-1] != '\n')
                w--;
        diag("  line %u: got '%.*s'\n  expected '%.*s'", line, (int) strcspn(g, "\n"), g, (int) strcspn(w, "\n"), w);
}

static void test_golden(void) {
        bool update = streq_ptr(getenv("ZVM_UPDATE_GOLDEN"), "1");

        for (size_t i = 0; i < ELEMENTSOF(golden_cases); i++) {
                _cleanup_vm_config_free_ VmConfig *c = config_new(golden_cases[i].config, 100);
                _cleanup_strv_free_ char **argv = NULL;
                _cleanup_free_ char *err = NULL, *got = NULL, *want = NULL, *file = NULL, *path = NULL;
                int r;

                r = qemu_argv_build(c, golden_cases[i].host, golden_cases[i].paths, &argv, &err);
                if (!ok(r == 0, "%s: builds", golden_cases[i].name)) {
                        diag("r=%d %s", r, strnull(err));
                        continue;
                }
                got = argv_text(argv);
                file = strjoin(golden_cases[i].name, ".argv");
                path = strjoin(GOLDEN_DIR "/", file);
                assert_se(got && file && path);

                if (update) {
                        r = write_file_atomic(GOLDEN_DIR, file, got, strlen(got), 0644);
                        is_int(r, 0, "%s: golden file rewritten", golden_cases[i].name);
                        continue;
                }

                r = read_full_file(path, &want, NULL, 0);
                if (!ok(r >= 0, "%s: golden file readable", golden_cases[i].name)) {
                        diag("  %s: %s (ZVM_UPDATE_GOLDEN=1 creates it)", path, strerror(-r));
                        continue;
                }
                if (!ok(streq(got, want), "%s: matches %s", golden_cases[i].name, file))
                        diag_first_difference(got, want);
        }
}

/* Properties that must hold for every golden case, so that a careless
 * ZVM_UPDATE_GOLDEN=1 cannot bless a broken command line. */
static void test_invariants(void) {
        for (size_t i = 0; i < ELEMENTSOF(golden_cases); i++) {
                _cleanup_vm_config_free_ VmConfig *c = config_new(golden_cases[i].config, 100);
                _cleanup_strv_free_ char **argv = NULL;
                const char *machine = NULL, *accel = NULL, *append = NULL;
                bool hybrid = false, memfd = false, no_reboot = false, logfile = false;

                if (qemu_argv_build(c, golden_cases[i].host, golden_cases[i].paths, &argv, NULL) < 0)
                        continue;
                for (size_t j = 0; argv[j]; j++) {
                        if (streq(argv[j], "-M") && argv[j + 1])
                                machine = argv[j + 1];
                        if (streq(argv[j], "-accel") && argv[j + 1])
                                accel = argv[j + 1];
                        if (streq(argv[j], "-append") && argv[j + 1])
                                append = argv[j + 1];
                        if (startswith(argv[j], "vhost-user-vsock"))
                                hybrid = true;
                        if (startswith(argv[j], "memory-backend-memfd,") && strstr(argv[j], "share=on"))
                                memfd = true;
                        if (streq(argv[j], "-no-reboot"))
                                no_reboot = true;
                        if (strstr(argv[j], "logfile="))
                                logfile = true;
                }
                ok(!no_reboot, "%s: no -no-reboot (QMP system_reset must reboot)", golden_cases[i].name);
                /* QEMU's chardev logfile has no size limit: a guest printing
                 * to ttyS0 would fill /run. zvmd keeps the capped log. */
                ok(!logfile, "%s: no chardev logfile= (unbounded)", golden_cases[i].name);
                ok(machine && accel && append, "%s: -M, -accel, -append present", golden_cases[i].name);
                if (!machine || !accel || !append)
                        continue;
                if (startswith(accel, "tcg"))
                        ok(!strstr(machine, "pit=off") && !strstr(machine, "pic=off"),
                           "%s: PIT and PIC stay on under TCG", golden_cases[i].name);
                else
                        ok(strstr(machine, ",pit=off,pic=off") && !strstr(append, "tsc_early_khz"),
                           "%s: KVM: pit/pic off, no tsc_early_khz", golden_cases[i].name);
                ok(hybrid == memfd && hybrid == !!strstr(machine, "memory-backend=mem"),
                   "%s: shared memory exactly with vhost-user", golden_cases[i].name);
                ok(startswith(append, "console=ttyS0 panic=-1 quiet "), "%s: console first", golden_cases[i].name);
                ok(!c->cmdline || (strlen(append) >= strlen(c->cmdline) &&
                                   streq(append + strlen(append) - strlen(c->cmdline), c->cmdline)),
                   "%s: user cmdline last", golden_cases[i].name);
        }
}

static int build(const char *config, const HostCaps *h, const VmPaths *p, char **ret_error) {
        _cleanup_vm_config_free_ VmConfig *c = config_new(config, 100);
        char **argv = NULL;
        int r;

        r = qemu_argv_build(c, h, p, &argv, ret_error);
        ok(r < 0 ? !argv : !!argv, "argv only on success");
        strv_free(argv);
        return r;
}

static void test_errors(void) {
        HostCaps eight = host_tcg, old = host_tcg, nokernel = host_tcg, noqboot = host_tcg;
        VmPaths novu = paths_std, notmpl = paths_std, noconsole = paths_std, noqmp = paths_std;
        _cleanup_free_ char *err = NULL;

        /* 9 devices on a QEMU with 8 transports (acpi=off or ioapic2=off). */
        static const char nine[] =
                "name: nine\nmodel: m\ndisk0: /d0\ndisk1: /d1\nnet0: user\nvsock: cid=1100\n";
        eight.mmio_transports = 8;
        is_int(build(nine, &eight, &paths_std, &err), -E2BIG, "9 MMIO devices, 8 slots: -E2BIG");
        is_str(err,
               "9 virtio devices, but -M microvm has only 8 virtio-mmio slots (rng, balloon, root, upper, model, "
               "disk0, disk1, net0, vsock); remove some or set pcie: 1",
               "the error names the count, the limit and the users");
        err = mfree(err);
        {
                /* The same with pcie: 1 builds. */
                _cleanup_free_ char *nine_pcie = strjoin(nine, "pcie: 1\n");
                is_int(build(nine_pcie, &eight, &paths_std, NULL), 0, "… and builds with pcie: 1");
        }
        is_int(build(nine, &host_tcg, &paths_std, NULL), 0, "… and fits the 24 slots of QEMU >= 6.0");

        /* Before QEMU 6.0 microvm had 8 transports. */
        old.qemu_version = 50200;
        is_int(build(nine, &old, &paths_std, &err), -E2BIG, "QEMU 5.2: 8 slots");
        ok(err && strstr(err, "only 8 virtio-mmio slots"), "QEMU 5.2 message: %s", strnull(err));
        err = mfree(err);
        {
                static const char eight_devs[] =
                        "name: eight\ndisk0: /d0\ndisk1: /d1,bus=scsi\ndisk2: /d2,bus=scsi\nnet0: user\n"
                        "vsock: cid=1100\n";
                is_int(build(eight_devs, &old, &paths_std, NULL), 0, "8 devices fit 8 slots (one SCSI controller)");
        }

        is_int(build("name: k\naccel: kvm\n", &host_tcg, &paths_std, &err), -EOPNOTSUPP,
               "accel=kvm without usable KVM");
        is_str(err,
               "accel: kvm requested, but KVM cannot boot guests on this host (/dev/kvm missing, inaccessible, or a "
               "nested host where guests hang); use accel: auto or tcg",
               "accel=kvm message");
        err = mfree(err);

        novu.vhost_user_vsock_socket = NULL;
        is_int(build("name: v\nvsock: cid=1100\n", &host_tcg, &novu, &err), -EINVAL, "hybrid vsock without socket");
        ok(err && startswith(err, "vsock: "), "hybrid vsock message: %s", strnull(err));
        err = mfree(err);
        is_int(build("name: v\n", &host_tcg, &novu, NULL), 0, "no vsock key: no socket needed");

        notmpl.template_image = NULL;
        is_int(build("name: t\n", &host_tcg, &notmpl, &err), -EINVAL, "template without image");
        is_str(err, "rootfs: template \"tiny\" has no image", "template without image message");
        err = mfree(err);

        nokernel.kernel = NULL;
        is_int(build("name: t\n", &nokernel, &paths_std, &err), -EINVAL, "no kernel");
        is_str(err, "kernel: not set, and the host has no default kernel", "no kernel message");
        err = mfree(err);
        is_int(build("name: t\nkernel: /k\n", &nokernel, &paths_std, NULL), 0, "the VM's own kernel is enough");

        is_int(build("name: c\ncpu: host\n", &host_tcg, &paths_std, &err), -EINVAL, "cpu: host under TCG");
        is_str(err, "cpu: host needs KVM, and this VM runs under TCG (use a CPU model such as qemu64 or max, "
                    "or remove the key)", "cpu: host under TCG message");
        err = mfree(err);
        {
                VmPaths nomodel = paths_std;

                nomodel.model_image = NULL;
                is_int(build("name: m\nmodel: qwen\n", &host_tcg, &nomodel, &err), -EINVAL,
                       "model without a resolved image");
                is_str(err, "model: \"qwen\" has no image", "model without image message");
                err = mfree(err);
        }

        noqboot.qboot_rom = NULL;
        is_int(build("name: t\n", &noqboot, &paths_std, NULL), -EINVAL, "no qboot");
        noconsole.serial_fd = -1;
        noconsole.serial_socket = NULL;
        is_int(build("name: t\n", &host_tcg, &noconsole, NULL), -EINVAL, "no serial console socket");
        noqmp.qmp_fd = -1;
        noqmp.qmp_socket = NULL;
        is_int(build("name: t\n", &host_tcg, &noqmp, NULL), -EINVAL, "no QMP");
}

static void test_accel(void) {
        static const struct {
                const char *accel;
                bool kvm_usable;
                int want;
        } cases[] = {
                { "auto", true, VM_ACCEL_KVM },
                { "auto", false, VM_ACCEL_TCG },
                { "kvm", true, VM_ACCEL_KVM },
                { "kvm", false, -EOPNOTSUPP },
                { "tcg", true, VM_ACCEL_TCG },
                { "tcg", false, VM_ACCEL_TCG },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *text = strjoin("name: a\naccel: ", cases[i].accel, "\n"), *err = NULL;
                _cleanup_vm_config_free_ VmConfig *c = config_new(text, 100);
                HostCaps h = host_tcg;

                h.kvm_usable = cases[i].kvm_usable;
                is_int(qemu_effective_accel(c, &h, &err), cases[i].want, "accel %s, KVM usable %d", cases[i].accel,
                       cases[i].kvm_usable);
                ok((cases[i].want < 0) == !!err, "accel %s: message exactly on error", cases[i].accel);
        }
}

static void test_model_device(void) {
        static const struct {
                const char *config;
                const VmPaths *paths;
                const char *dev;
        } cases[] = {
                { "name: a\n", &paths_std, NULL },
                { "name: a\nmodel: m\n", &paths_std, "/dev/vdc" },
                { "name: a\nmodel: m\ndisk0: /d\n", &paths_std, "/dev/vdc" },
                { "name: a\nmodel: m\n", &paths_no_upper, "/dev/vdb" },
                { "name: a\nmodel: m\nrootfs: /r.img\n", &paths_image, "/dev/vdb" },
                { "name: a\nmodel: m\npcie: 1\n", &paths_std, "/dev/vdc" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_vm_config_free_ VmConfig *c = config_new(cases[i].config, 100);
                _cleanup_free_ char *dev = NULL;

                is_int(qemu_model_device(c, cases[i].paths, &dev), 0, "model device %zu", i);
                is_str(dev, cases[i].dev, "model device %zu name", i);
        }
}

int main(void) {
        test_golden();
        test_invariants();
        test_errors();
        test_accel();
        test_model_device();
        return done_testing();
}
