/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "fd-util.h"
#include "fileio.h"
#include "host.h"
#include "log.h"
#include "macro.h"
#include "process.h"
#include "string-util.h"
#include "tsc.h"
#include "zvm-config.h"

/* A KVM guest reaches the initrd's diag output in well under a second; on a
 * host where /dev/kvm exists but cannot run a standard guest (a nested PVM
 * guest, as on zvm's CI) the guest hangs forever, so a bound decides. */
#define KVM_PROBE_TIMEOUT_MS 4000

static int qemu_version_probe(Host *h) {
        _cleanup_free_ char *out = NULL;
        char *argv[] = { h->qemu_path, (char *) "--version", NULL };
        unsigned a = 0, b = 0, c = 0;
        const char *v;
        int r;

        r = process_run(argv, 10000, &out);
        if (r < 0)
                return r;
        if (r != 0)
                return -EIO;
        v = strstr(out, "version ");
        if (!v || sscanf(v + 8, "%u.%u.%u", &a, &b, &c) < 2)
                return -EBADMSG;
        h->caps.qemu_version = a * 10000 + b * 100 + c;
        if (asprintf(&h->qemu_version, "%u.%u.%u", a, b, c) < 0)
                return -ENOMEM;
        return 0;
}

/* The cache key: whatever would change the answer. */
static char *kvm_probe_key(const Host *h, const Paths *p) {
        struct stat st = {};
        char *key = NULL;

        (void) stat(p->default_kernel, &st);
        if (asprintf(&key, "%s|%s|%lld|%lld", h->qemu_version, p->default_kernel, (long long) st.st_size,
                     (long long) st.st_mtime) < 0)
                return NULL;
        return key;
}

static bool kvm_probe_boot(const Host *h, const Paths *p) {
        _cleanup_free_ char *out = NULL;
        char *argv[] = {
                h->qemu_path, (char *) "-M", (char *) "microvm,x-option-roms=off,rtc=on,pit=off,pic=off",
                (char *) "-accel", (char *) "kvm", (char *) "-cpu", (char *) "host", (char *) "-m", (char *) "128",
                (char *) "-nodefaults", (char *) "-no-user-config", (char *) "-display", (char *) "none",
                (char *) "-no-reboot", (char *) "-bios", (char *) h->caps.qboot_rom,
                (char *) "-serial", (char *) "stdio", (char *) "-kernel", p->default_kernel,
                (char *) "-initrd", p->default_initrd,
                (char *) "-append", (char *) "console=ttyS0 panic=-1 quiet zvm.diag=1 rootwait=0", NULL,
        };
        int r;

        r = process_run(argv, KVM_PROBE_TIMEOUT_MS, &out);
        return r >= 0 && out && strstr(out, "zvm-initrd: diag: done");
}

static void kvm_probe(Host *h, const Paths *p) {
        _cleanup_free_ char *cache = strjoin(p->cache, "/accel-probe.json");
        _cleanup_free_ char *key = kvm_probe_key(h, p);
        json_object *j;
        const char *forced = getenv("ZVM_ACCEL");
        bool usable;

        if (forced && (streq(forced, "kvm") || streq(forced, "tcg"))) {
                h->caps.kvm_usable = streq(forced, "kvm");
                h->accel_reason = strjoin("forced by ZVM_ACCEL=", forced);
                return;
        }
        if (access("/dev/kvm", R_OK | W_OK) < 0) {
                h->caps.kvm_usable = false;
                h->accel_reason = strjoin("/dev/kvm is not usable (", errno_str(errno), "): using TCG");
                return;
        }
        if (access(p->default_kernel, R_OK) < 0 || access(p->default_initrd, R_OK) < 0) {
                h->caps.kvm_usable = false;
                h->accel_reason = strdup("cannot probe KVM: guest kernel/initrd missing; using TCG");
                return;
        }
        j = cache && key ? json_object_from_file(cache) : NULL;
        if (j) {
                json_object *k, *u;

                if (json_object_object_get_ex(j, "key", &k) && streq_ptr(json_object_get_string(k), key) &&
                    json_object_object_get_ex(j, "kvm_usable", &u)) {
                        h->caps.kvm_usable = json_object_get_boolean(u);
                        json_object_put(j);
                        goto reason;
                }
                json_object_put(j);
        }
        usable = kvm_probe_boot(h, p);
        h->caps.kvm_usable = usable;
        if (cache && key) {
                _cleanup_free_ char *text = NULL;

                j = json_object_new_object();
                json_object_object_add(j, "key", json_object_new_string(key));
                json_object_object_add(j, "kvm_usable", json_object_new_boolean(usable));
                text = strdup(json_object_to_json_string(j));
                json_object_put(j);
                if (text)
                        (void) write_file_atomic(p->cache, "accel-probe.json", text, strlen(text), 0644);
        }
reason:
        h->accel_reason = strdup(h->caps.kvm_usable
                                         ? "KVM boots guests here"
                                         : "/dev/kvm exists but a guest did not boot under KVM within the probe "
                                           "bound (nested host?): using TCG");
        if (!h->caps.kvm_usable)
                log_notice("KVM is not usable: %s", h->accel_reason);
}

/* ZVM_TCG_TB_MIB: the TCG translation cache for bench/density's side-by-side
 * runs; bad values are ignored with a warning. */
static void tcg_tb_from_env(Host *h) {
        const char *e = getenv("ZVM_TCG_TB_MIB");
        uint32_t v;

        if (!e)
                return;
        if (safe_atou32(e, &v) < 0 || v < 1 || v > 2048) {
                log_warning("Ignoring ZVM_TCG_TB_MIB=%s: not a size in MiB between 1 and 2048", e);
                return;
        }
        h->caps.tcg_tb_mib = v;
}

int host_probe(Host *h, const Paths *p) {
        const char *qemu = getenv("ZVM_QEMU");
        struct sysinfo si;
        uint64_t khz;
        int r;

        *h = (Host) {};
        h->qemu_path = find_executable(qemu ? qemu : "qemu-system-x86_64");
        if (!h->qemu_path)
                return log_error_errno(SYNTHETIC_ERRNO(ENOENT), "QEMU (%s) not found in PATH",
                                       qemu ? qemu : "qemu-system-x86_64");
        h->caps.qemu_binary = h->qemu_path;
        r = qemu_version_probe(h);
        if (r < 0)
                return log_error_errno(r, "Failed to get the version of %s: %m", h->qemu_path);
        h->caps.qboot_rom = "/usr/share/qemu/qboot.rom";
        h->caps.kernel = p->default_kernel;
        h->caps.initrd = p->default_initrd;
        h->caps.vhost_vsock = access("/dev/vhost-vsock", R_OK | W_OK) == 0 && !getenv("ZVM_HYBRID_VSOCK");
        h->vsock_helper = find_executable("vhost-device-vsock");
        /* User NICs through passt only when the administrator asks: see
         * core/vm-passt.c for the hole that passt 2023.03 leaves. */
        if (streq_ptr(getenv("ZVM_USER_NET"), "passt")) {
                h->passt = find_executable("passt");
                if (!h->passt)
                        log_warning("ZVM_USER_NET=passt, but passt is not installed: user NICs stay isolated "
                                    "(scripts/install-deps installs it)");
        }
        if (tsc_khz_measure(&khz) >= 0)
                h->caps.tsc_khz = khz;
        tcg_tb_from_env(h);
        h->cpus = (unsigned) sysconf(_SC_NPROCESSORS_ONLN);
        if (sysinfo(&si) == 0)
                h->memory_mib = (uint64_t) si.totalram * si.mem_unit >> 20;
        kvm_probe(h, p);
        if (!h->accel_reason)
                return log_oom();
        return 0;
}

void host_done(Host *h) {
        free(h->qemu_path);
        free(h->qemu_version);
        free(h->accel_reason);
        free(h->vsock_helper);
        free(h->passt);
        *h = (Host) {};
}

int host_to_json(const Host *h, const Paths *p, json_object **ret) {
        json_object *o = json_object_new_object();

        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "version", json_object_new_string(ZVM_VERSION));
        json_object_object_add(o, "qemu", json_object_new_string(h->qemu_version));
        json_object_object_add(o, "qemu_binary", json_object_new_string(h->qemu_path));
        json_object_object_add(o, "accel", json_object_new_string(h->caps.kvm_usable ? "kvm" : "tcg"));
        json_object_object_add(o, "accel_reason", json_object_new_string(h->accel_reason));
        json_object_object_add(o, "vsock_mode", json_object_new_string(h->caps.vhost_vsock ? "kernel" : "hybrid"));
        json_object_object_add(o, "kernel", json_object_new_string(p->default_kernel));
        json_object_object_add(o, "initrd", json_object_new_string(p->default_initrd));
        json_object_object_add(o, "templates_dir", json_object_new_string(p->templates));
        json_object_object_add(o, "ssh_known_hosts", json_object_new_string(p->ssh_known_hosts));
        json_object_object_add(o, "tsc_khz", json_object_new_int64((int64_t) h->caps.tsc_khz));
        json_object_object_add(o, "cpus", json_object_new_int((int) h->cpus));
        json_object_object_add(o, "memory_mib", json_object_new_int64((int64_t) h->memory_mib));
        *ret = o;
        return 0;
}
