/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>

#include "config-file.h"
#include "string-util.h"
#include "tap.h"
#include "ssh-key.h"
#include "vm-config.h"

static ConfigFile *parse_str(const char *s) {
        ConfigFile *cf = NULL;

        assert_se(config_file_parse(s, strlen(s), &cf, NULL) >= 0);
        return cf;
}

static char *format(const ConfigFile *cf) {
        char *s = NULL;

        assert_se(config_file_format(cf, &s, NULL) >= 0);
        return s;
}

/* ---- the typed view ------------------------------------------------------------ */

static void test_defaults(void) {
        _cleanup_config_file_free_ ConfigFile *cf = parse_str("name: web\n");
        _cleanup_vm_config_free_ VmConfig *c = NULL;
        _cleanup_free_ char *err = NULL;

        is_int(vm_config_from_file(cf, 100, &c, &err), 0, "minimal config parses");
        if (!c)
                return;
        is_int(c->vmid, 100, "vmid");
        is_str(c->name, "web", "name");
        is_int(c->memory_mib, 256, "memory defaults to 256");
        is_int(c->balloon_mib, 128, "balloon defaults to half of memory");
        is_int(c->cores, 1, "cores defaults to 1");
        is_str(c->rootfs_template, "tiny", "rootfs defaults to the tiny template");
        ok(!c->rootfs_path, "no rootfs path");
        is_int(c->rootfs_size, 1ULL << 30, "writable layer defaults to 1G");
        ok(c->agent && !c->onboot && !c->pcie, "agent 1, onboot 0, pcie 0");
        is_int(c->accel, VM_ACCEL_AUTO, "accel auto");
        ok(c->tags && !c->tags[0], "no tags");
        ok(!c->kernel && !c->initrd && !c->cmdline && !c->model && !c->description && !c->cpu,
           "optional strings unset");
        ok(!c->inference.threads && !c->inference.ctx && !c->inference.parallel && !c->inference.batch,
           "inference: the agent's defaults");
        is_int(c->cid, 0, "no vsock");
        ok(!c->disks[0].path && !c->nets[0].present, "no disks, no nets");
}

static void test_full(void) {
        static const char text[] =
                "# a description comment\n"
                "name: llm-1\n"
                "memory: 4096\n"
                "balloon: 1024\n"
                "cores: 4\n"
                "kernel: /srv/k/vmlinux\n"
                "initrd: /srv/k/initrd.img\n"
                "cmdline: loglevel=4 zvm.init=/bin/sh\n"
                "rootfs: debian-sid,size=8G\n"
                "disk0: /srv/d0.img\n"
                "disk3: /srv/d3.img,ro=1,bus=scsi\n"
                "disk7: /srv/d7.img,bus=blk,ro=0\n"
                "net0: user,hostfwd=tcp:127.0.0.1:2222-22,hostfwd=udp::5353-:53,hostfwd=tcp:10.0.0.1:8080-80\n"
                "net1: user,hostfwd=udp:5354-53\n"
                "net2: bridge=vmbr0,tag=42,mac=52:54:00:AA:BB:CC\n"
                "net5: mac=02:00:00:00:00:01,bridge=br.lan-1\n"
                "vsock: cid=1100\n"
                "model: qwen2.5-0.5b_q8.0\n"
                "inference: threads=2,ctx=4096,parallel=4,batch=512\n"
                "cpu: qemu64\n"
                "agent: 0\n"
                "onboot: 1\n"
                "tags: prod;llm;a_b-c\n"
                "description: Ünïcode is fine here\n"
                "accel: tcg\n"
                "pcie: 1\n"
                "\n"
                "[snap1]\n"
                "memory: 1\n"
                "bogus-key: whatever\n";
        _cleanup_config_file_free_ ConfigFile *cf = parse_str(text);
        _cleanup_vm_config_free_ VmConfig *c = NULL;
        _cleanup_free_ char *err = NULL;

        is_int(vm_config_from_file(cf, 123456, &c, &err), 0, "full config parses (snapshot section ignored)");
        if (!c) {
                diag("%s", strnull(err));
                return;
        }
        is_int(c->memory_mib, 4096, "memory");
        is_int(c->balloon_mib, 1024, "balloon");
        is_int(c->cores, 4, "cores");
        is_str(c->kernel, "/srv/k/vmlinux", "kernel");
        is_str(c->initrd, "/srv/k/initrd.img", "initrd");
        is_str(c->cmdline, "loglevel=4 zvm.init=/bin/sh", "cmdline");
        is_str(c->rootfs_template, "debian-sid", "rootfs template");
        is_int(c->rootfs_size, 8ULL << 30, "rootfs size");
        is_str(c->disks[0].path, "/srv/d0.img", "disk0 path");
        ok(!c->disks[0].readonly && !c->disks[0].scsi, "disk0 rw blk");
        ok(c->disks[3].readonly && c->disks[3].scsi, "disk3 ro scsi");
        ok(!c->disks[7].readonly && !c->disks[7].scsi, "disk7 rw blk");
        ok(!c->disks[1].path, "disk1 unused");
        ok(c->nets[0].present && !c->nets[0].bridge && c->nets[0].mac[0] == 0, "net0 user, derived MAC");
        is_int(c->nets[0].n_hostfwd, 3, "net0: 3 forwards");
        ok(!c->nets[0].hostfwd[0].udp && c->nets[0].hostfwd[0].host_port == 2222 &&
           c->nets[0].hostfwd[0].guest_port == 22, "net0 forward 0: tcp 2222 to 22");
        is_str(c->nets[0].hostfwd[0].addr, "127.0.0.1", "net0 forward 0 address");
        ok(c->nets[0].hostfwd[1].udp && c->nets[0].hostfwd[1].host_port == 5353 &&
           c->nets[0].hostfwd[1].guest_port == 53, "net0 forward 1: udp 5353 to 53, QEMU's -:53 form");
        is_str(c->nets[0].hostfwd[1].addr, "127.0.0.1", "net0 forward 1: empty address is loopback, not any");
        is_str(c->nets[0].hostfwd[2].addr, "10.0.0.1", "net0 forward 2: address");
        ok(c->nets[1].n_hostfwd == 1 && c->nets[1].hostfwd[0].udp, "net1 forward without an address");
        is_int(c->nets[2].n_hostfwd, 0, "net2: no forwards");
        ok(c->nets[2].present && c->nets[2].bridge, "net2 bridge");
        is_str(c->nets[2].ifname, "vmbr0", "net2 bridge name");
        is_int(c->nets[2].tag, 42, "net2 tag");
        is_str(c->nets[2].mac, "52:54:00:aa:bb:cc", "net2 MAC, lower-cased");
        is_str(c->nets[5].ifname, "br.lan-1", "net5 options in any order");
        ok(!c->nets[3].present, "net3 unused");
        is_int(c->cid, 1100, "cid");
        is_str(c->model, "qwen2.5-0.5b_q8.0", "model");
        ok(c->inference.threads == 2 && c->inference.ctx == 4096 && c->inference.parallel == 4 &&
           c->inference.batch == 512, "inference");
        is_str(c->cpu, "qemu64", "cpu");
        ok(!c->agent && c->onboot && c->pcie, "agent 0, onboot 1, pcie 1");
        is_int(strv_length(c->tags), 3, "3 tags");
        is_str(c->tags[2], "a_b-c", "third tag");
        is_str(c->description, "Ünïcode is fine here", "description");
        is_int(c->accel, VM_ACCEL_TCG, "accel");
}

static void test_rootfs_path(void) {
        _cleanup_config_file_free_ ConfigFile *cf = parse_str("name: a\nrootfs: /srv/root.img\nballoon: 0\n");
        _cleanup_vm_config_free_ VmConfig *c = NULL;

        is_int(vm_config_from_file(cf, 100, &c, NULL), 0, "rootfs path parses");
        if (!c)
                return;
        is_str(c->rootfs_path, "/srv/root.img", "rootfs_path set");
        ok(!c->rootfs_template, "no template");
        is_int(c->balloon_mib, 0, "balloon 0 allowed");
}

/* Whole-file errors: vm_config_from_file(). */
static void test_file_errors(void) {
        static const struct {
                const char *text;
                uint32_t vmid;
                const char *error;
        } cases[] = {
                { "memory: 512\n", 100, "name: missing (every VM needs a name)" },
                { "name: a\nballoon: 512\n", 100, "balloon: 512 exceeds memory (256)" },
                { "name: a\nmemory: 128\nballoon: 129\n", 100, "balloon: 129 exceeds memory (128)" },
                { "name: a\nnet0: user,hostfwd=tcp:2222-22\nnet3: user,hostfwd=udp:2222-22,hostfwd=tcp:127.0.0.2:2222-23\n", 100,
                  "net3: hostfwd= tcp port 2222 is net0's already" },
                { "name: a\nfoo: 1\n", 100, "foo: unknown key" },
                { "name: a\nvmid: 100\n", 100, "vmid: not a config key (the VMID is the file name, given at creation)" },
                { "name: a\nmemory: -5\n", 100, "memory: must be an integer between 32 and 1048576 MiB (got \"-5\")" },
                { "name: a\nmemory:\n", 100, "memory: must be an integer between 32 and 1048576 MiB (got \"\")" },
                { "name: a\n", 99, "vmid: 99 is not between 100 and 999999999" },
                { "name: a\n", 1000000000, "vmid: 1000000000 is not between 100 and 999999999" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_config_file_free_ ConfigFile *cf = parse_str(cases[i].text);
                _cleanup_vm_config_free_ VmConfig *c = NULL;
                _cleanup_free_ char *err = NULL;

                is_int(vm_config_from_file(cf, cases[i].vmid, &c, &err), -EINVAL, "file error %zu: -EINVAL", i);
                is_str(err, cases[i].error, "file error %zu: message", i);
                ok(!c, "file error %zu: no result", i);
        }
}

/* ---- single values ---------------------------------------------------------------- */

static const struct {
        const char *key, *value;
} good_values[] = {
        { "name", "a" },
        { "name", "Web-1.example_x" },
        { "memory", "32" },
        { "memory", "1048576" },
        { "memory", "0256" },
        { "balloon", "0" },
        { "balloon", "1048576" },           /* alone; the cross-key check is separate */
        { "cores", "64" },
        { "kernel", "/boot/vmlinux-6.1" },
        { "initrd", "/x" },
        { "cmdline", "" },
        { "cmdline", "loglevel=7 zvm.diag=1 init=/bin/sh -- single" },
        { "cmdline", "myroot=1 consoleblank=0 rootwait=3" },
        { "rootfs", "tiny" },
        { "rootfs", "a" },
        { "rootfs", "debian_12-x,size=64M" },
        { "rootfs", "t,size=16T" },
        { "rootfs", "t,size=2GiB" },
        { "rootfs", "/var/lib/zvm/root.img" },
        { "disk0", "/dev/sdb" },
        { "disk7", "/a,ro=1" },
        { "disk4", "/a,bus=scsi" },
        { "net0", "user" },
        { "net5", "user,mac=02:00:00:00:00:00" },
        { "net1", "bridge=vmbr0" },
        { "net1", "bridge=a.b_c-d012345,tag=4094" },  /* 15 characters */
        { "net1", "bridge=x,tag=1,mac=52:54:00:12:34:56" },
        { "net0", "user,hostfwd=tcp:0.0.0.0:1-65535" },
        { "net0", "user,mac=02:00:00:00:00:01,hostfwd=tcp:1-2,hostfwd=udp:1-2,hostfwd=tcp:3-4,hostfwd=tcp:5-4,"
                  "hostfwd=tcp:6-4,hostfwd=tcp:7-4,hostfwd=tcp:8-4,hostfwd=tcp:9-4" },
        { "vsock", "cid=3" },
        { "vsock", "cid=4294967294" },
        { "model", "tiny" },
        { "model", "Qwen2.5-0.5B_q8.0" },
        { "inference", "threads=1" },
        { "inference", "ctx=64,threads=256,parallel=64,batch=65536" },
        { "inference", "ctx=1048576,batch=1,parallel=1" },
        { "cpu", "qemu64" },
        { "cpu", "Haswell-noTSX-IBRS" },
        { "cpu", "host" },
        { "cpu", "max" },
        { "agent", "0" },
        { "onboot", "1" },
        { "pcie", "0" },
        { "tags", "" },
        { "tags", "a" },
        { "tags", "a;b;c;d;e;f;g;h;i;j;k;l;m;n;o;p" },
        { "tags", "abcdefghijklmnopqrstuvwxyz012345" },
        { "description", "" },
        { "description", "Anything, even = and : and # and \xe2\x82\xac" },
        { "accel", "auto" },
        { "accel", "kvm" },
        { "accel", "tcg" },
};

static void test_good_values(void) {
        for (size_t i = 0; i < ELEMENTSOF(good_values); i++) {
                _cleanup_config_file_free_ ConfigFile *cf = parse_str("name: a\n");
                _cleanup_free_ char *err = NULL;
                int r;

                r = vm_config_set(cf, good_values[i].key, good_values[i].value, &err);
                if (!ok(r == 0, "set %s: %s", good_values[i].key, good_values[i].value))
                        diag("r=%d %s", r, strnull(err));
                else
                        is_str(config_file_get(cf, NULL, good_values[i].key), good_values[i].value,
                               "%s stored verbatim", good_values[i].key);
        }
}

static const struct {
        const char *key, *value;
        int r;
        const char *error;      /* the exact message */
} bad_values[] = {
        { "memory", "-5", -EINVAL, "memory: must be an integer between 32 and 1048576 MiB (got \"-5\")" },
        { "memory", "31", -EINVAL, "memory: must be an integer between 32 and 1048576 MiB (got \"31\")" },
        { "memory", "1048577", -EINVAL, "memory: must be an integer between 32 and 1048576 MiB (got \"1048577\")" },
        { "memory", "12abc", -EINVAL, "memory: must be an integer between 32 and 1048576 MiB (got \"12abc\")" },
        { "memory", "99999999999999999999999", -EINVAL, "memory: must be an integer between 32 and 1048576 MiB (got \"99999999999999999999999\")" },
        { "memory", "+256", -EINVAL, "memory: must be an integer between 32 and 1048576 MiB (got \"+256\")" },
        { "memory", "0x100", -EINVAL, "memory: must be an integer between 32 and 1048576 MiB (got \"0x100\")" },
        { "memory", "256M", -EINVAL, "memory: must be an integer between 32 and 1048576 MiB (got \"256M\")" },
        { "memory", "", -EINVAL, "memory: must be an integer between 32 and 1048576 MiB (got \"\")" },
        { "balloon", "-1", -EINVAL, "balloon: must be an integer between 0 and 1048576 MiB (got \"-1\")" },
        { "cores", "0", -EINVAL, "cores: must be an integer between 1 and 64 (got \"0\")" },
        { "cores", "65", -EINVAL, "cores: must be an integer between 1 and 64 (got \"65\")" },
        { "name", "", -EINVAL, "name: must match [A-Za-z0-9][A-Za-z0-9._-]{0,62} without \"..\" (got \"\")" },
        { "name", "-x", -EINVAL, "name: must match [A-Za-z0-9][A-Za-z0-9._-]{0,62} without \"..\" (got \"-x\")" },
        { "name", "a..b", -EINVAL, "name: must match [A-Za-z0-9][A-Za-z0-9._-]{0,62} without \"..\" (got \"a..b\")" },
        { "name", "a/b", -EINVAL, "name: must match [A-Za-z0-9][A-Za-z0-9._-]{0,62} without \"..\" (got \"a/b\")" },
        { "name", "caf\xc3\xa9", -EINVAL, "name: must match [A-Za-z0-9][A-Za-z0-9._-]{0,62} without \"..\" (got \"caf\\xc3\\xa9\")" },
        { "name", "a b", -EINVAL, "name: must match [A-Za-z0-9][A-Za-z0-9._-]{0,62} without \"..\" (got \"a b\")" },
        { "kernel", "vmlinux", -EINVAL, "kernel: must be an absolute path (got \"vmlinux\")" },
        { "kernel", "/a b", -EINVAL, "kernel: path must be printable ASCII without whitespace or ',' (got \"/a b\")" },
        { "kernel", "/a,b", -EINVAL, "kernel: path must be printable ASCII without whitespace or ',' (got \"/a,b\")" },
        { "initrd", "", -EINVAL, "initrd: must be an absolute path (got \"\")" },
        { "model", "/m.img", -EINVAL, "model: must be a model name from the store, not a path (got \"/m.img\"); add the file with \"zvm model add FILE.gguf --name NAME\"" },
        { "model", "m\xc3\xa9", -EINVAL, "model: must be a model name [A-Za-z0-9][A-Za-z0-9._-]{0,62} (got \"m\\xc3\\xa9\")" },
        { "model", "..", -EINVAL, "model: must be a model name [A-Za-z0-9][A-Za-z0-9._-]{0,62} (got \"..\")" },
        { "model", "a/b", -EINVAL, "model: must be a model name [A-Za-z0-9][A-Za-z0-9._-]{0,62} (got \"a/b\")" },
        { "inference", "", -EINVAL, "inference: empty element in \"\"" },
        { "inference", "threads=0", -EINVAL, "inference: threads= must be an integer between 1 and 256 (got \"0\")" },
        { "inference", "threads=257", -EINVAL, "inference: threads= must be an integer between 1 and 256 (got \"257\")" },
        { "inference", "ctx=63", -EINVAL, "inference: ctx= must be an integer between 64 and 1048576 (got \"63\")" },
        { "inference", "ctx=1048577", -EINVAL, "inference: ctx= must be an integer between 64 and 1048576 (got \"1048577\")" },
        { "inference", "parallel=65", -EINVAL, "inference: parallel= must be an integer between 1 and 64 (got \"65\")" },
        { "inference", "batch=65537", -EINVAL, "inference: batch= must be an integer between 1 and 65536 (got \"65537\")" },
        { "inference", "batch=-1", -EINVAL, "inference: batch= must be an integer between 1 and 65536 (got \"-1\")" },
        { "inference", "batch=", -EINVAL, "inference: batch= must be an integer between 1 and 65536 (got \"\")" },
        { "inference", "threads=2,threads=3", -EINVAL, "inference: threads= given twice" },
        { "inference", "threads", -EINVAL, "inference: unknown option \"threads\" (threads=, ctx=, parallel=, batch=)" },
        { "inference", "gpu=1", -EINVAL, "inference: unknown option \"gpu=1\" (threads=, ctx=, parallel=, batch=)" },
        { "inference", "threads=2,", -EINVAL, "inference: empty element in \"threads=2,\"" },
        { "cpu", "", -EINVAL, "cpu: must be a QEMU CPU model name [A-Za-z0-9][A-Za-z0-9_.-]{0,62} such as qemu64, Haswell, max or host (got \"\")" },
        { "cpu", "max,+avx2", -EINVAL, "cpu: must be a QEMU CPU model name [A-Za-z0-9][A-Za-z0-9_.-]{0,62} such as qemu64, Haswell, max or host (got \"max,+avx2\")" },
        { "cpu", "-help", -EINVAL, "cpu: must be a QEMU CPU model name [A-Za-z0-9][A-Za-z0-9_.-]{0,62} such as qemu64, Haswell, max or host (got \"-help\")" },
        { "cmdline", "root=/dev/sda", -EINVAL, "cmdline: must not set root=, zvm sets it itself" },
        { "cmdline", "quiet console=tty0", -EINVAL, "cmdline: must not set console=, zvm sets it itself" },
        { "cmdline", "zvm.overlay=0", -EINVAL, "cmdline: must not set zvm.overlay=, zvm sets it itself" },
        { "cmdline", "zvm.upper=/dev/vdb", -EINVAL, "cmdline: must not set zvm.upper=, zvm sets it itself" },
        { "cmdline", "a zvm.models=LABEL=x", -EINVAL, "cmdline: must not set zvm.models=, zvm sets it itself" },
        { "cmdline", "root", -EINVAL, "cmdline: must not set root=, zvm sets it itself" },
        { "cmdline", "x=\"root=/dev/sda\"", -EINVAL, "cmdline: must not contain '\"'" },
        { "cmdline", "caf\xc3\xa9", -EINVAL, "cmdline: must be printable ASCII (got \"caf\\xc3\\xa9\")" },
        { "rootfs", "", -EINVAL, "rootfs: empty element in \"\"" },
        { "rootfs", "Tiny", -EINVAL, "rootfs: must be a template name ([a-z0-9][a-z0-9_-]{0,62}) or an absolute image path (got \"Tiny\")" },
        { "rootfs", "_x", -EINVAL, "rootfs: must be a template name ([a-z0-9][a-z0-9_-]{0,62}) or an absolute image path (got \"_x\")" },
        { "rootfs", "a.b", -EINVAL, "rootfs: must be a template name ([a-z0-9][a-z0-9_-]{0,62}) or an absolute image path (got \"a.b\")" },
        { "rootfs", "tiny,size=63M", -EINVAL, "rootfs: size= must be a size between 64M and 16T (got \"63M\")" },
        { "rootfs", "tiny,size=17T", -EINVAL, "rootfs: size= must be a size between 64M and 16T (got \"17T\")" },
        { "rootfs", "tiny,size=1.5G", -EINVAL, "rootfs: size= must be a size between 64M and 16T (got \"1.5G\")" },
        { "rootfs", "tiny,size=99999999999999999999G", -EINVAL, "rootfs: size= must be a size between 64M and 16T (got \"99999999999999999999G\")" },
        { "rootfs", "tiny,size=1G,size=2G", -EINVAL, "rootfs: size= given twice" },
        { "rootfs", "tiny,foo=1", -EINVAL, "rootfs: unknown option \"foo=1\" (only size=)" },
        { "rootfs", "tiny,,size=1G", -EINVAL, "rootfs: empty element in \"tiny,,size=1G\"" },
        { "rootfs", "tiny,", -EINVAL, "rootfs: empty element in \"tiny,\"" },
        { "rootfs", "/r.img,size=1G", -EINVAL, "rootfs: size= applies to the writable layer of a template; an image path is used as is" },
        { "disk0", "d.img", -EINVAL, "disk0: must be an absolute path (got \"d.img\")" },
        { "disk0", "/d.img,ro=2", -EINVAL, "disk0: ro= must be 0 or 1 (got \"2\")" },
        { "disk0", "/d.img,bus=ide", -EINVAL, "disk0: bus= must be blk or scsi (got \"ide\")" },
        { "disk0", "/d.img,ro=1,ro=0", -EINVAL, "disk0: ro= given twice" },
        { "disk0", "/d.img,cache=none", -EINVAL, "disk0: unknown option \"cache=none\" (ro=, bus=)" },
        { "disk0", "/d.img,ro", -EINVAL, "disk0: unknown option \"ro\" (ro=, bus=)" },
        { "disk8", "/d.img", -ENOKEY, "disk8: unknown key" },
        { "disk01", "/d.img", -ENOKEY, "disk01: unknown key" },
        { "disk", "/d.img", -ENOKEY, "disk: unknown key" },
        { "net6", "user", -ENOKEY, "net6: unknown key" },
        { "net0", "", -EINVAL, "net0: empty element in \"\"" },
        { "net0", "user,hostfwd=tcp:1-2,hostfwd=udp:1-2,hostfwd=tcp:3-4,hostfwd=tcp:5-4,hostfwd=tcp:6-4,"
                  "hostfwd=tcp:7-4,hostfwd=tcp:8-4,hostfwd=tcp:9-4,hostfwd=tcp:10-4", -EINVAL, "net0: more than 8 hostfwd=" },
        { "net0", "user,hostfwd=tcp:127.0.0.1:22-22,hostfwd=tcp:127.0.0.2:22-23", -EINVAL, "net0: hostfwd= tcp port 22 given twice" },
        { "net0", "user,hostfwd=sctp:1-2", -EINVAL, "net0: hostfwd= must be tcp|udp:[ADDR:]HOSTPORT-GUESTPORT (got \"sctp:1-2\")" },
        { "net0", "user,hostfwd=tcp:2222", -EINVAL, "net0: hostfwd= must be tcp|udp:[ADDR:]HOSTPORT-GUESTPORT (got \"tcp:2222\")" },
        { "net0", "user,hostfwd=tcp:localhost:2222-22", -EINVAL, "net0: hostfwd= host address must be an IPv4 address (got \"localhost\")" },
        { "net0", "user,hostfwd=tcp:::1:2222-22", -EINVAL, "net0: hostfwd= host address must be an IPv4 address (got \"::1\")" },
        { "net0", "user,hostfwd=tcp:127.0.0.1:0-22", -EINVAL, "net0: hostfwd= host port must be 1-65535 (got \"0\")" },
        { "net0", "user,hostfwd=tcp:127.0.0.1:65536-22", -EINVAL, "net0: hostfwd= host port must be 1-65535 (got \"65536\")" },
        { "net0", "user,hostfwd=tcp:127.0.0.1:-22", -EINVAL, "net0: hostfwd= host port must be 1-65535 (got \"\")" },
        { "net0", "user,hostfwd=tcp:2222-10.0.2.15:22", -EINVAL, "net0: hostfwd= guest port must be 1-65535 (got \"10.0.2.15:22\")" },
        { "net0", "user,hostfwd=tcp:2222-0", -EINVAL, "net0: hostfwd= guest port must be 1-65535 (got \"0\")" },
        { "net0", "user,hostfwd", -EINVAL, "net0: unknown option \"hostfwd\" (user, bridge=, tag=, mac=, hostfwd=)" },
        { "net0", "bridge=x,hostfwd=tcp:2222-22", -EINVAL, "net0: hostfwd= needs user (a bridged NIC is reached directly)" },
        { "net0", "tap", -EINVAL, "net0: unknown option \"tap\" (user, bridge=, tag=, mac=, hostfwd=)" },
        { "net0", "user,tag=5", -EINVAL, "net0: tag= needs bridge=" },
        { "net0", "user,bridge=x", -EINVAL, "net0: must be user[,mac=..][,hostfwd=..] or bridge=<ifname>[,tag=N][,mac=..] (got \"user,bridge=x\")" },
        { "net0", "mac=52:54:00:12:34:56", -EINVAL, "net0: must be user[,mac=..][,hostfwd=..] or bridge=<ifname>[,tag=N][,mac=..] (got \"mac=52:54:00:12:34:56\")" },
        { "net0", "mac=52:54:00:12:34:56,user", -EINVAL, "net0: \"user\" must come first" },
        { "net0", "bridge=0123456789abcdef", -EINVAL, "net0: bridge= must be an interface name of 1-15 characters [A-Za-z0-9_.-] (got \"0123456789abcdef\")" },
        { "net0", "bridge=", -EINVAL, "net0: bridge= must be an interface name of 1-15 characters [A-Za-z0-9_.-] (got \"\")" },
        { "net0", "bridge=..", -EINVAL, "net0: bridge= must be an interface name of 1-15 characters [A-Za-z0-9_.-] (got \"..\")" },
        { "net0", "bridge=a/b", -EINVAL, "net0: bridge= must be an interface name of 1-15 characters [A-Za-z0-9_.-] (got \"a/b\")" },
        { "net0", "bridge=x,tag=0", -EINVAL, "net0: tag= must be a VLAN id between 1 and 4094 (got \"0\")" },
        { "net0", "bridge=x,tag=4095", -EINVAL, "net0: tag= must be a VLAN id between 1 and 4094 (got \"4095\")" },
        { "net0", "bridge=x,bridge=y", -EINVAL, "net0: bridge= given twice" },
        { "net0", "user,mac=01:00:5e:00:00:01", -EINVAL, "net0: mac: \"01:00:5e:00:00:01\" is a multicast address, must be unicast" },
        { "net0", "user,mac=ff:ff:ff:ff:ff:ff", -EINVAL, "net0: mac: \"ff:ff:ff:ff:ff:ff\" is a multicast address, must be unicast" },
        { "net0", "user,mac=00:00:00:00:00:00", -EINVAL, "net0: mac: \"00:00:00:00:00:00\" is not a usable address (all zero)" },
        { "net0", "user,mac=52:54:00:12:34", -EINVAL, "net0: mac: must look like 52:54:00:12:34:56 (got \"52:54:00:12:34\")" },
        { "net0", "user,mac=52-54-00-12-34-56", -EINVAL, "net0: mac: must look like 52:54:00:12:34:56 (got \"52-54-00-12-34-56\")" },
        { "net0", "user,mac=52:54:00:12:34:5g", -EINVAL, "net0: mac: must look like 52:54:00:12:34:56 (got \"52:54:00:12:34:5g\")" },
        { "net0", "user,mac=52:54:00:12:34:56,mac=52:54:00:12:34:57", -EINVAL, "net0: mac= given twice" },
        { "vsock", "3", -EINVAL, "vsock: must be cid=N with N between 3 and 4294967294 (got \"3\")" },
        { "vsock", "cid=2", -EINVAL, "vsock: must be cid=N with N between 3 and 4294967294 (got \"cid=2\")" },
        { "vsock", "cid=4294967295", -EINVAL, "vsock: must be cid=N with N between 3 and 4294967294 (got \"cid=4294967295\")" },
        { "vsock", "cid=", -EINVAL, "vsock: must be cid=N with N between 3 and 4294967294 (got \"cid=\")" },
        { "agent", "yes", -EINVAL, "agent: must be 0 or 1 (got \"yes\")" },
        { "onboot", "2", -EINVAL, "onboot: must be 0 or 1 (got \"2\")" },
        { "pcie", "true", -EINVAL, "pcie: must be 0 or 1 (got \"true\")" },
        { "tags", "a;;b", -EINVAL, "tags: empty tag in \"a;;b\"" },
        { "tags", ";a", -EINVAL, "tags: empty tag in \";a\"" },
        { "tags", "A", -EINVAL, "tags: tag \"A\" must match [a-z0-9_-]{1,32}" },
        { "tags", "a,b", -EINVAL, "tags: tag \"a,b\" must match [a-z0-9_-]{1,32}" },
        { "tags", "abcdefghijklmnopqrstuvwxyz0123456", -EINVAL, "tags: tag \"abcdefghijklmnopqrstuvwxyz0123456\" must match [a-z0-9_-]{1,32}" },
        { "tags", "a;b;c;d;e;f;g;h;i;j;k;l;m;n;o;p;q", -EINVAL, "tags: too many tags (17, at most 16)" },
        { "tags", "a;b;a", -EINVAL, "tags: tag \"a\" given twice" },
        { "accel", "hvf", -EINVAL, "accel: must be auto, kvm or tcg (got \"hvf\")" },
        { "accel", "KVM", -EINVAL, "accel: must be auto, kvm or tcg (got \"KVM\")" },
        /* Checks for every key. */
        { "description", "two\nlines", -EINVAL, "description: must be a single line (contains a newline)" },
        { "name", "a\nmemory: 1", -EINVAL, "name: must be a single line (contains a newline)" },
        { "description", "tab\there", -EINVAL, "description: must not contain control characters" },
        { "description", "cr\r", -EINVAL, "description: must not contain control characters" },
        { "description", "del\x7f", -EINVAL, "description: must not contain control characters" },
        { "description", "bad \xc3\x28 utf8", -EINVAL, "description: must be valid UTF-8" },
        { "description", "\xed\xa0\x80", -EINVAL, "description: must be valid UTF-8" },
        { "description", " padded", -EINVAL, "description: must not start or end with a space" },
        { "memory", "256 ", -EINVAL, "memory: must not start or end with a space" },
        /* Unknown keys, also odd ones. */
        { "foo", "1", -ENOKEY, "foo: unknown key" },
        { "vmid", "100", -ENOKEY, "vmid: not a config key (the VMID is the file name, given at creation)" },
        { "", "1", -ENOKEY, "\"\": unknown key" },
        { "a\nb", "1", -ENOKEY, "\"a\\x0ab\": unknown key" },
        { "Memory", "256", -ENOKEY, "Memory: unknown key" },
};

static void test_bad_values(void) {
        for (size_t i = 0; i < ELEMENTSOF(bad_values); i++) {
                _cleanup_config_file_free_ ConfigFile *cf = parse_str("name: a\nmemory: 512\n");
                _cleanup_free_ char *before = format(cf), *after = NULL, *err = NULL;
                int r;

                r = vm_config_set(cf, bad_values[i].key, bad_values[i].value, &err);
                is_int(r, bad_values[i].r, "bad %zu: %s rejected", i, bad_values[i].key);
                is_str(err, bad_values[i].error, "bad %zu: %s: message", i, bad_values[i].key);
                after = format(cf);
                is_str(after, before, "bad %zu: %s: file unchanged", i, bad_values[i].key);
        }
}

/* Bounds: long values give a clear error, never a crash or a huge message. */
static void test_long_values(void) {
        /* What "key: value" leaves of a config line (CONFIG_LINE_MAX, 8192),
         * or the key's own bound: paths PATH_MAX - 1, cmdline
         * VM_CMDLINE_MAX, description VM_DESCRIPTION_MAX. */
        static const struct {
                const char *key;
                size_t max;
        } bounds[] = {
                { "name", 8186 },    { "memory", 8184 }, { "balloon", 8183 }, { "cores", 8185 },
                { "kernel", 4095 },  { "initrd", 4095 }, { "cmdline", 1024 }, { "rootfs", 8184 },
                { "disk0", 8185 },   { "disk7", 8185 },  { "net0", 8186 },    { "net5", 8186 },
                { "vsock", 8185 },   { "model", 63 },  { "agent", 8185 },   { "onboot", 8184 },
                { "pcie", 8186 },    { "tags", 8186 },   { "sshkeys", 8183 }, { "description", 8179 },
                { "accel", 8185 },   { "inference", 8181 }, { "cpu", 63 },
        };
        _cleanup_config_file_free_ ConfigFile *cf = parse_str("name: a\n");
        _cleanup_free_ char *big = malloc(1024 * 1024 + 1), *err = NULL, *before = format(cf);
        int r;

        assert_se(big);
        memset(big, 'x', 1024 * 1024);
        big[1024 * 1024] = '\0';

        for (size_t i = 0; i < ELEMENTSOF(bounds); i++) {
                _cleanup_free_ char *want = NULL;

                assert_se(asprintf(&want, "%s: too long (1048576 bytes, at most %zu)", bounds[i].key,
                                   bounds[i].max) > 0);
                r = vm_config_set(cf, bounds[i].key, big, &err);
                is_int(r, -EINVAL, "1 MB value for %s rejected", bounds[i].key);
                is_str(err, want, "1 MB value for %s: message", bounds[i].key);
        }
        {
                _cleanup_free_ char *after = format(cf);
                is_str(after, before, "1 MB values left the file alone");
        }

        /* description: at most what fits in one config line. */
        big[VM_DESCRIPTION_MAX] = '\0';
        is_int(vm_config_set(cf, "description", big, NULL), 0, "description of VM_DESCRIPTION_MAX bytes");
        big[VM_DESCRIPTION_MAX] = 'x';
        big[VM_DESCRIPTION_MAX + 1] = '\0';
        is_int(vm_config_set(cf, "description", big, &err), -EINVAL, "description one byte longer");
        is_str(err, "description: too long (8180 bytes, at most 8179)", "description too long message");

        /* cmdline: 1024 characters. */
        big[VM_CMDLINE_MAX] = '\0';
        is_int(vm_config_set(cf, "cmdline", big, NULL), 0, "cmdline of 1024 bytes");
        big[VM_CMDLINE_MAX] = 'x';
        big[VM_CMDLINE_MAX + 1] = '\0';
        is_int(vm_config_set(cf, "cmdline", big, &err), -EINVAL, "cmdline of 1025 bytes");
        is_str(err, "cmdline: too long (1025 bytes, at most 1024)", "cmdline too long message");

        /* Quoted values are cut. */
        memset(big, '7', 200);
        big[200] = '\0';
        is_int(vm_config_set(cf, "memory", big, &err), -EINVAL, "200-digit memory");
        is_str(err, "memory: must be an integer between 32 and 1048576 MiB (got "
                    "\"7777777777777777777777777777777777777777777777777777777777777777\"...)",
               "long value cut in the message");
}

/* What vm_config_from_file() must say of a file whose single-key values
 * were each accepted: the one cross-key rule is balloon <= memory. */
static void expect_file_result(const ConfigFile *cf, int *ret_r, char **ret_error) {
        const char *m = config_file_get(cf, NULL, "memory"), *b = config_file_get(cf, NULL, "balloon");
        unsigned long long memory = strtoull(m ?: "256", NULL, 10), balloon = b ? strtoull(b, NULL, 10) : 0;

        *ret_error = NULL;
        *ret_r = 0;
        if (b && balloon > memory) {
                assert_se(asprintf(ret_error, "balloon: %llu exceeds memory (%llu)", balloon, memory) > 0);
                *ret_r = -EINVAL;
        }
}

/* Random bytes for every key (run under ASan). Each value is judged twice:
 * by vm_config_set() and by vm_config_from_file() on a file that holds it
 * alone (with memory at its maximum, so that no balloon exceeds it). The
 * two must agree: both accept, or both refuse with the same message. An
 * accepted value is stored verbatim; a refusal is -EINVAL with one line
 * that names the key, and leaves the file as it was. */
static void test_random_values(void) {
        _cleanup_config_file_free_ ConfigFile *cf = parse_str("name: a\n");
        unsigned seed = 12345;
        unsigned accepted = 0, rejected = 0, wrong = 0;
        char buf[64];

        for (unsigned round = 0; round < 20000; round++) {
                size_t l = (size_t) (rand_r(&seed) % (sizeof(buf) - 1));
                const char *key = good_values[(size_t) rand_r(&seed) % ELEMENTSOF(good_values)].key;
                _cleanup_config_file_free_ ConfigFile *alone = parse_str("name: a\nmemory: 1048576\n");
                _cleanup_vm_config_free_ VmConfig *c = NULL;
                _cleanup_free_ char *err = NULL, *file_err = NULL, *before = NULL, *prefix = NULL;
                const char *why = NULL;
                int r, r_file;

                /* Mostly printable, some bytes anything. */
                for (size_t i = 0; i < l; i++) {
                        unsigned v = (unsigned) rand_r(&seed);
                        static const char alphabet[] = " ,=;:/.0123456789abcmacidrgeusz";

                        if (v % 8 == 0)
                                buf[i] = (char) ((v >> 8) % 255 + 1);
                        else
                                buf[i] = alphabet[(v >> 8) % (sizeof(alphabet) - 1)];
                }
                buf[l] = '\0';

                before = strdup(config_file_get(cf, NULL, key) ?: "(unset)");
                assert_se(before && asprintf(&prefix, "%s: ", key) > 0);
                r = vm_config_set(cf, key, buf, &err);
                r_file = config_file_set(alone, NULL, key, buf);
                if (r_file >= 0)
                        r_file = vm_config_from_file(alone, 100, &c, &file_err);

                if (r == 0) {
                        accepted++;
                        if (!streq_ptr(config_file_get(cf, NULL, key), buf))
                                why = "accepted, but not stored verbatim";
                        else if (r_file != 0)
                                why = "accepted by vm_config_set(), refused in a file";
                } else {
                        rejected++;
                        if (r != -EINVAL || !err || strchr(err, '\n') || !startswith(err, prefix))
                                why = "refused, but not with -EINVAL and one line naming the key";
                        else if (!streq(config_file_get(cf, NULL, key) ?: "(unset)", before))
                                why = "refused, but the file changed";
                        else if (r_file == 0)
                                why = "refused by vm_config_set(), accepted in a file";
                        else if (file_err && !streq(err, file_err))
                                why = "refused with another message in a file";
                        /* (no file_err: the file itself cannot hold the value) */
                }
                if (why && wrong++ < 5)
                        diag("%s=%s: %s (r=%d: %s; in a file r=%d: %s)", key, buf, why, r, strnull(err), r_file,
                             strnull(file_err));
        }
        is_int(wrong, 0, "random values: vm_config_set() and the file agree, with exact outcomes");
        ok(accepted > 500 && rejected > 500, "random values: both outcomes exercised (%u accepted, %u rejected)",
           accepted, rejected);

        {
                _cleanup_vm_config_free_ VmConfig *c = NULL;
                _cleanup_free_ char *err = NULL, *want = NULL;
                int r, want_r;

                expect_file_result(cf, &want_r, &want);
                r = vm_config_from_file(cf, 100, &c, &err);
                is_int(r, want_r, "file after random edits: the expected result");
                is_str(err, want, "file after random edits: the expected message");
        }
}

/* ---- unset --------------------------------------------------------------------------- */

static void test_unset(void) {
        _cleanup_config_file_free_ ConfigFile *cf = parse_str("name: a\nmemory: 512\n");
        _cleanup_free_ char *err = NULL;

        is_int(vm_config_unset(cf, "memory", NULL), 1, "unset memory");
        is_int(vm_config_unset(cf, "memory", NULL), 0, "unset memory again: not set");
        is_int(vm_config_unset(cf, "disk7", NULL), 0, "unset an absent indexed key");
        is_int(vm_config_unset(cf, "name", &err), -EINVAL, "unset name refused");
        is_str(err, "name: cannot be removed (every VM needs a name)", "unset name message");
        is_int(vm_config_unset(cf, "foo", &err), -ENOKEY, "unset unknown key");
        is_str(err, "foo: unknown key", "unset unknown key message");
        is_str(config_file_get(cf, NULL, "name"), "a", "name still there");
}

/* ---- the key table ---------------------------------------------------------------------- */

static void test_keys(void) {
        static const struct {
                const char *key;
                bool known, restart;
        } cases[] = {
                { "name", true, false },
                { "description", true, false },
                { "tags", true, false },
                { "onboot", true, false },
                { "balloon", true, false },
                { "memory", true, true },
                { "cores", true, true },
                { "kernel", true, true },
                { "initrd", true, true },
                { "cmdline", true, true },
                { "rootfs", true, true },
                { "disk0", true, true },
                { "disk7", true, true },
                { "net0", true, true },
                { "net5", true, true },
                { "vsock", true, true },
                { "model", true, true },
                { "inference", true, true },
                { "cpu", true, true },
                { "agent", true, true },
                { "accel", true, true },
                { "pcie", true, true },
                { "disk8", false, false },
                { "net6", false, false },
                { "disk-1", false, false },
                { "disk00", false, false },
                { "vmid", false, false },
                { "", false, false },
                { NULL, false, false },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                ok(vm_config_key_known(cases[i].key) == cases[i].known, "%s known: %d", strnull(cases[i].key),
                   cases[i].known);
                ok(vm_config_key_needs_restart(cases[i].key) == cases[i].restart, "%s needs restart: %d",
                   strnull(cases[i].key), cases[i].restart);
        }

        is_str(vm_config_key_default("memory"), "256", "memory default");
        is_str(vm_config_key_default("rootfs"), "tiny", "rootfs default");
        is_str(vm_config_key_default("agent"), "1", "agent default");
        ok(!vm_config_key_default("balloon"), "balloon default depends on memory");
        ok(!vm_config_key_default("nope"), "no default for unknown keys");

        is_str(vm_accel_to_string(VM_ACCEL_KVM), "kvm", "accel to string");
        ok(!vm_accel_to_string(_VM_ACCEL_MAX), "accel out of range");
        is_int(vm_accel_from_string("tcg"), VM_ACCEL_TCG, "accel from string");
        is_int(vm_accel_from_string("x"), -EINVAL, "accel from bad string");
}

static void test_mac(void) {
        static const struct {
                uint32_t vmid;
                unsigned idx;
                const char *mac;
        } cases[] = {
                { 100, 0, "52:54:00:00:03:20" },
                { 100, 5, "52:54:00:00:03:25" },
                { 101, 0, "52:54:00:00:03:28" },
                { 2097151, 5, "52:54:00:ff:ff:fd" },
                { 2097152, 0, "52:54:00:00:00:00" },     /* wraps beyond 2^21 VMIDs */
                { 999999999, 5, "52:54:00:d6:4f:fd" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char mac[18];

                vm_net_derive_mac(cases[i].vmid, cases[i].idx, mac);
                is_str(mac, cases[i].mac, "MAC of vmid %" PRIu32 " net%u", cases[i].vmid, cases[i].idx);
        }
}

/* ---- JSON --------------------------------------------------------------------------------- */

static json_object *json(const char *s) {
        json_object *o = json_tokener_parse(s);

        assert_se(o);
        return o;
}

static void test_apply_json(void) {
        static const char base[] = "# keep me\nname: a\nmemory: 512\ncores:2\n\n[snap]\nmemory: 1\n";
        _cleanup_config_file_free_ ConfigFile *cf = parse_str(base);
        _cleanup_strv_free_ char **changed = NULL;
        _cleanup_free_ char *err = NULL, *bad = NULL, *text = NULL;
        json_object *o;
        int r;

        o = json("{\"memory\": 1024, \"agent\": false, \"onboot\": true, \"tags\": \"x;y\", \"cores\": \"2\", "
                 "\"disk0\": \"/d.img,ro=1\", \"net0\": \"user\", \"description\": \"hi\"}");
        r = vm_config_apply_json(cf, o, &changed, &err, &bad);
        json_object_put(o);
        is_int(r, 0, "apply: good body");
        text = format(cf);
        is_str(text,
               "# keep me\nname: a\nmemory: 1024\ncores:2\nagent: 0\nonboot: 1\ntags: x;y\ndisk0: /d.img,ro=1\n"
               "net0: user\ndescription: hi\n\n[snap]\nmemory: 1\n",
               "apply: file edited in place, new keys appended to the main section");
        text = mfree(text);
        {
                _cleanup_free_ char *j = strv_join(changed, ",");
                is_str(j, "memory,agent,onboot,tags,disk0,net0,description", "apply: changed keys (cores unchanged)");
        }
        changed = strv_free(changed);

        o = json("{\"description\": null, \"memory\": 1024, \"disk0\": null, \"disk1\": null}");
        is_int(vm_config_apply_json(cf, o, &changed, NULL, NULL), 0, "apply: null unsets");
        json_object_put(o);
        ok(!config_file_get(cf, NULL, "description") && !config_file_get(cf, NULL, "disk0"), "apply: keys removed");
        {
                _cleanup_free_ char *j = strv_join(changed, ",");
                is_str(j, "description,disk0", "apply: changed keys of an unset");
        }
        changed = strv_free(changed);

        /* Failures leave the file alone. */
        static const struct {
                const char *body;
                int r;
                const char *bad_key, *error;
        } fails[] = {
                { "{\"balloon\": 2048}", -EINVAL, "balloon", "balloon: 2048 exceeds memory (1024)" },
                { "{\"memory\": 128, \"balloon\": 256}", -EINVAL, "balloon", "balloon: 256 exceeds memory (128)" },
                { "{\"memory\": 2048, \"foo\": 1}", -ENOKEY, "foo", "foo: unknown key" },
                { "{\"vmid\": 100}", -ENOKEY, "vmid", "vmid: not a config key (the VMID is the file name, given at creation)" },
                { "{\"name\": null}", -EINVAL, "name", "name: cannot be removed (every VM needs a name)" },
                { "{\"memory\": -5}", -EINVAL, "memory", "memory: must be an integer between 32 and 1048576 MiB (got \"-5\")" },
                { "{\"memory\": 9223372036854775807}", -EINVAL, "memory", "memory: must be an integer between 32 and 1048576 MiB (got \"9223372036854775807\")" },
                { "{\"memory\": 18446744073709551615}", -EINVAL, "memory", "memory: must be an integer between 32 and 1048576 MiB (got \"18446744073709551615\")" },
                { "{\"memory\": 99999999999999999999999}", -EINVAL, "memory", "memory: must be an integer between 32 and 1048576 MiB (got \"18446744073709551615\")" },
                { "{\"memory\": 512.5}", -EINVAL, "memory", "memory: must be an integer, a string or a boolean (got a number with a fraction or exponent)" },
                { "{\"memory\": 1e3}", -EINVAL, "memory", "memory: must be an integer, a string or a boolean (got a number with a fraction or exponent)" },
                { "{\"memory\": [512]}", -EINVAL, "memory", "memory: must be an integer, a string or a boolean (got an array)" },
                { "{\"memory\": {\"a\": 1}}", -EINVAL, "memory", "memory: must be an integer, a string or a boolean (got an object)" },
                { "{\"memory\": \"12abc\"}", -EINVAL, "memory", "memory: must be an integer between 32 and 1048576 MiB (got \"12abc\")" },
                { "{\"name\": \"a\\u0000b\"}", -EINVAL, "name", "name: must not contain NUL characters" },
                { "{\"description\": \"x\\nmemory: 32\"}", -EINVAL, "description", "description: must be a single line (contains a newline)" },
                { "{\"agent\": 2}", -EINVAL, "agent", "agent: must be 0 or 1 (got \"2\")" },
                { "{\"cores\": 1, \"memory\": 64, \"pcie\": \"yes\"}", -EINVAL, "pcie", "pcie: must be 0 or 1 (got \"yes\")" },
        };
        _cleanup_free_ char *before = format(cf);

        for (size_t i = 0; i < ELEMENTSOF(fails); i++) {
                _cleanup_free_ char *e = NULL, *k = NULL, *after = NULL;
                char **ch = NULL;

                o = json(fails[i].body);
                r = vm_config_apply_json(cf, o, &ch, &e, &k);
                json_object_put(o);
                is_int(r, fails[i].r, "apply fail %zu: %s", i, fails[i].body);
                is_str(e, fails[i].error, "apply fail %zu: message", i);
                is_str(k, fails[i].bad_key, "apply fail %zu: bad key", i);
                ok(!ch, "apply fail %zu: no changed keys", i);
                after = format(cf);
                is_str(after, before, "apply fail %zu: file unchanged", i);
        }

        /* Booleans are stored as 1/0, for any key. */
        o = json("{\"name\": true}");
        is_int(vm_config_apply_json(cf, o, NULL, NULL, NULL), 0, "apply: true is stored as 1");
        json_object_put(o);
        is_str(config_file_get(cf, NULL, "name"), "1", "name is now \"1\"");

        o = json("[1]");
        is_int(vm_config_apply_json(cf, o, NULL, &err, NULL), -EINVAL, "apply: not an object");
        json_object_put(o);
        is_int(vm_config_apply_json(cf, NULL, NULL, NULL, NULL), -EINVAL, "apply: NULL");

        o = json("{}");
        is_int(vm_config_apply_json(cf, o, &changed, NULL, NULL), 0, "apply: empty object");
        json_object_put(o);
        ok(changed && !changed[0], "apply: empty object changes nothing");
}

static void test_apply_json_big(void) {
        _cleanup_config_file_free_ ConfigFile *cf = parse_str("name: a\n");
        _cleanup_free_ char *big = malloc(1024 * 1024 + 1), *err = NULL, *bad = NULL;
        json_object *o;

        assert_se(big);
        memset(big, 'd', 1024 * 1024);
        big[1024 * 1024] = '\0';
        o = json_object_new_object();
        assert_se(o);
        assert_se(json_object_object_add(o, "description", json_object_new_string(big)) == 0);
        is_int(vm_config_apply_json(cf, o, NULL, &err, &bad), -EINVAL, "apply: 1 MB description refused");
        is_str(err, "description: too long (1048576 bytes, at most 8179)", "apply: 1 MB message");
        is_str(bad, "description", "apply: 1 MB bad key");
        json_object_put(o);
}

static void test_to_json(void) {
        _cleanup_config_file_free_ ConfigFile *cf =
                parse_str("name: a\nmemory: 512\nballoon: 256\ncores: 2\nagent: 1\nonboot: 0\npcie: 1\n"
                          "tags: x\nvsock: cid=1100\nhand-edited: yes\n\n[snap]\nmemory: 1\n");
        _cleanup_config_file_free_ ConfigFile *odd = parse_str("name: a\nmemory: lots\n");
        json_object *o = NULL;

        is_int(vm_config_to_json(cf, &o), 0, "to_json");
        is_str(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
               "{\"name\":\"a\",\"memory\":512,\"balloon\":256,\"cores\":2,\"agent\":1,\"onboot\":0,\"pcie\":1,"
               "\"tags\":\"x\",\"vsock\":\"cid=1100\",\"hand-edited\":\"yes\"}",
               "to_json: ints as ints, the rest as strings, snapshot ignored");
        json_object_put(o);

        o = NULL;
        is_int(vm_config_to_json(odd, &o), 0, "to_json of a broken file");
        is_str(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), "{\"name\":\"a\",\"memory\":\"lots\"}",
               "to_json: a non-number stays a string");
        json_object_put(o);
}

static void test_sshkeys(void) {
        static const char *const k1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINyb+HhEWW5rVsZDoJ38sGvJrQgv2XNL9LI4hYW5thDD alice@host";
        /* The same blob under another type: the blob names ssh-ed25519. */
        static const char *const wrong_type = "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAINyb+HhEWW5rVsZDoJ38sGvJrQgv2XNL9LI4hYW5thDD";
        _cleanup_free_ char *text = NULL, *enc = NULL, *line = NULL, *err = NULL;
        _cleanup_config_file_free_ ConfigFile *cf = NULL;
        _cleanup_vm_config_free_ VmConfig *c = NULL;
        const char *reason = NULL;

        ok(ssh_pubkey_check(k1, &reason) == 0, "ed25519 key with comment is valid");
        ok(ssh_pubkey_check("no-pty,command=\"echo a b\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINyb+HhEWW5rVsZDoJ38sGvJrQgv2XNL9LI4hYW5thDD",
                            &reason) == 0, "key with options is valid");
        is_int(ssh_pubkey_check(wrong_type, &reason), -EINVAL, "blob of another type refused");
        is_int(ssh_pubkey_check("ssh-ed25519 AAAA!!!!", &reason), -EINVAL, "non-base64 refused");
        is_int(ssh_pubkey_check("ssh-ed25519", &reason), -EINVAL, "type without data refused");
        is_int(ssh_pubkey_check("-----BEGIN OPENSSH PRIVATE KEY-----", &reason), -EINVAL, "private key refused");
        is_int(ssh_pubkey_check("ssh-dss AAAAB3NzaC1kc3M=", &reason), -EINVAL, "unknown type refused");

        /* Two keys and a blank line, encoded as one config line. */
        assert_se(asprintf(&text, "%s\n\n%s second\n", k1, k1) > 0);
        enc = ssh_keys_encode(text);
        ok(enc && !strchr(enc, ' ') && !strchr(enc, '\n') && strstr(enc, "%0A"), "encoded value is one line");
        assert_se(asprintf(&line, "name: a\nsshkeys: %s\n", enc) > 0);
        cf = parse_str(line);
        is_int(vm_config_from_file(cf, 100, &c, &err), 0, "sshkeys parses");
        if (c) {
                is_int(strv_length(c->sshkeys), 2, "2 keys, blank line dropped");
                is_str(c->sshkeys[0], k1, "first key decoded");
        }
        c = vm_config_free(c);
        config_file_free(cf);
        cf = parse_str("name: a\n");
        is_int(vm_config_from_file(cf, 100, &c, &err), 0, "no sshkeys parses");
        ok(c && c->sshkeys && !c->sshkeys[0], "no sshkeys: empty list");
        c = vm_config_free(c);
        config_file_free(cf);

        cf = parse_str("name: a\nsshkeys: ssh-ed25519%20AAAA%ZZ\n");
        is_int(vm_config_from_file(cf, 100, &c, &err), -EINVAL, "bad percent-encoding refused");
        is_str(err, "sshkeys: bad percent-encoding at byte 18", "bad percent-encoding: message");
        config_file_free(cf);
        err = mfree(err);
        cf = parse_str("name: a\nsshkeys: ssh-rsa%20AAAAC3NzaC1lZDI1NTE5AAAAINyb%2BHhEWW5rVsZDoJ38sGvJrQgv2XNL9LI4hYW5thDD\n");
        is_int(vm_config_from_file(cf, 100, &c, &err), -EINVAL, "mismatched key refused");
        is_str(err, "sshkeys: key 1 has key data that does not match its key type", "mismatched key: message");
}

int main(void) {
        test_defaults();
        test_full();
        test_rootfs_path();
        test_file_errors();
        test_good_values();
        test_bad_values();
        test_long_values();
        test_random_values();
        test_unset();
        test_keys();
        test_mac();
        test_apply_json();
        test_apply_json_big();
        test_to_json();
        test_sshkeys();
        return done_testing();
}
