/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* daemon/pure/policy: zvm.conf's policy keys and the decisions for root and
 * for everyone else, table-driven. */
#include <errno.h>

#include "config-file.h"
#include "policy.h"
#include "string-util.h"
#include "tap.h"
#include "vm-config.h"

static const char conf[] =
        "# the service's keys are ignored\n"
        "ZVMD_ARGS=--listen 127.0.0.1:8007\n"
        "ZVM_STORAGE=local=/var/lib/zvm/images fast=/srv/fast/\n"
        "ZVM_RAW_PATHS=\"/dev/vg0/shared\"\n"
        "  ZVM_BRIDGES = vmbr1 vmbr2\n"
        "ZVM_VLANS=10,20-29 4094\n"
        "ZVM_HOSTFWD_PORTS=20000-20009,30000\n"
        "; a comment\n"
        "ZVM_MAX_MEMORY=1G\n"
        "ZVM_MAX_CORES=2\n"
        "ZVM_MAX_DISK_SIZE=8G\n";

static Policy *parse(const char *text) {
        _cleanup_free_ char *err = NULL;
        Policy *p = NULL;
        int r = policy_parse(text, strlen(text), NULL, &p, &err);

        if (r < 0)
                diag("policy_parse: %s", strnull(err));
        return p;
}

static void test_parse(void) {
        _cleanup_(policy_freep) Policy *p = parse(conf);
        _cleanup_free_ char *list = NULL;

        if (!ok(p, "zvm.conf with every policy key parses"))
                return;
        list = policy_storage_list(p);
        is_str(list, "local=/var/lib/zvm/images fast=/srv/fast", "storages, trailing '/' dropped");
        ok(strv_length(p->raw_paths) == 1 && streq(p->raw_paths[0], "/dev/vg0/shared"), "raw path, quotes dropped");
        ok(strv_length(p->bridges) == 2 && streq(p->bridges[1], "vmbr2"), "bridges");
        ok(p->any_vlan && (p->vlans[10 / 8] & (1 << (10 % 8))) && (p->vlans[29 / 8] & (1 << (29 % 8))) &&
                   !(p->vlans[30 / 8] & (1 << (30 % 8))) && (p->vlans[4094 / 8] & (1 << (4094 % 8))),
           "VLANs 10, 20-29, 4094 and not 30");
        ok(p->any_hostfwd_port && (p->hostfwd_ports[20009 / 8] & (1 << (20009 % 8))) &&
                   !(p->hostfwd_ports[20010 / 8] & (1 << (20010 % 8))) &&
                   (p->hostfwd_ports[30000 / 8] & (1 << (30000 % 8))),
           "hostfwd ports 20000-20009, 30000 and not 20010");
        is_int(p->max_memory_mib, 1024, "max memory 1G = 1024 MiB");
        is_int(p->max_cores, 2, "max cores");
        is_int(p->max_disk_size, 8ULL << 30, "max disk size");

        _cleanup_(policy_freep) Policy *d = parse("");
        if (ok(d, "an empty (or absent) zvm.conf parses"))
                ok(d->n_storages == 0 && !d->raw_paths[0] && !d->bridges[0] && !d->any_vlan && !d->any_hostfwd_port &&
                           !d->max_memory_mib &&
                           !d->max_cores && !d->max_disk_size,
                   "defaults: no storage (zvmd adds local), no raw paths, bridges, VLANs or forwarded ports, no quotas");
        /* zvmd's own storage: first, and its name taken. */
        static const char two[] = "ZVM_STORAGE=fast=/srv/fast\n", taken[] = "ZVM_STORAGE=local=/srv/x\n";
        _cleanup_(policy_freep) Policy *own = NULL;
        _cleanup_free_ char *ol = NULL, *oerr = NULL;
        Policy *none = NULL;

        if (policy_parse(two, strlen(two), "/var/lib/zvm/images", &own, NULL) == 0)
                ol = policy_storage_list(own);
        is_str(ol, "local=/var/lib/zvm/images fast=/srv/fast", "zvmd's own storage comes first");
        ok(policy_parse(taken, strlen(taken), "/var/lib/zvm/images", &none, &oerr) == -EINVAL && !none,
           "ZVM_STORAGE may not take the name local");
        is_str(oerr, "zvm.conf line 1: ZVM_STORAGE: the name local is zvm's own (/var/lib/zvm/images)", "  its message");
        _cleanup_(policy_freep) Policy *mib = parse("ZVM_MAX_MEMORY=512\n");
        ok(mib && mib->max_memory_mib == 512, "a bare ZVM_MAX_MEMORY is MiB, as memory:");
}

static void test_parse_refused(void) {
        static const struct {
                const char *text, *message;
        } bad[] = {
                { "ZVM_STORAGE=/srv\n", "zvm.conf line 1: ZVM_STORAGE: '/srv' is not NAME=DIR" },
                { "ZVM_STORAGE=a=/srv/../etc\n", NULL },
                { "ZVM_STORAGE=a=relative\n", NULL },
                { "ZVM_STORAGE=root=/\n", "zvm.conf line 1: ZVM_STORAGE: root=/ would be the whole host" },
                { "ZVM_STORAGE=a=/x a=/y\n", "zvm.conf line 1: ZVM_STORAGE: storage a given twice" },
                { "ZVM_STORAGE=a=/x\nZVM_STORAGE=b=/y\n",
                  "zvm.conf line 2: ZVM_STORAGE given twice: give all its values on one line" },
                { "ZVM_RAW_PATHS=/dev//sda\n", NULL },
                { "ZVM_BRIDGES=this-name-is-too-long\n", NULL },
                { "ZVM_VLANS=0\n", NULL },
                { "ZVM_VLANS=4095\n", NULL },
                { "ZVM_VLANS=30-20\n", NULL },
                { "ZVM_HOSTFWD_PORTS=1000-2000\n",
                  "zvm.conf line 1: ZVM_HOSTFWD_PORTS: '1000-2000' is not a port or range within 1024-65535" },
                { "ZVM_HOSTFWD_PORTS=65536\n", NULL },
                { "ZVM_HOSTFWD_PORTS=ssh\n", NULL },
                { "ZVM_MAX_MEMORY=16M\n", NULL },
                { "ZVM_MAX_CORES=0\n", NULL },
                { "ZVM_MAX_CORES=1 2\n", "zvm.conf line 1: ZVM_MAX_CORES takes one value" },
                { "ZVM_MAX_DISK_SIZE=lots\n", NULL },
                { "just words\n", "zvm.conf line 1: expected KEY=VALUE" },
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *err = NULL;
                Policy *p = NULL;
                int r = policy_parse(bad[i].text, strlen(bad[i].text), NULL, &p, &err);

                ok(r == -EINVAL && !p && err && startswith(err, "zvm.conf line "), "refused: %s → %s", bad[i].text,
                   strnull(err));
                if (bad[i].message)
                        is_str(err, bad[i].message, "  its message");
                policy_free(p);
        }
}

static VmConfig *config(const char *text) {
        _cleanup_config_file_free_ ConfigFile *cf = NULL;
        _cleanup_free_ char *err = NULL;
        VmConfig *c = NULL;

        assert_se(config_file_parse(text, strlen(text), &cf, NULL) >= 0);
        if (vm_config_from_file(cf, 100, &c, &err) < 0)
                diag("vm_config_from_file: %s", strnull(err));
        return c;
}

/* What each caller may set: the refusal's key and message for a non-root
 * caller, and root allowed. */
static void test_decisions(void) {
        static const struct {
                const char *config, *key, *message;     /* message NULL: allowed */
        } cases[] = {
                { "name: a\ndisk0: /var/lib/zvm/images/a.img\n", NULL, NULL },
                { "name: a\ndisk0: /srv/fast/sub/b.img,ro=1\n", NULL, NULL },
                { "name: a\ndisk0: /dev/vg0/shared\n", NULL, NULL },
                { "name: a\ndisk0: /dev/sda\n", "disk0",
                  "disk0: /dev/sda is outside the declared storage (storage: local=/var/lib/zvm/images "
                  "fast=/srv/fast); raw paths need root or ZVM_RAW_PATHS in zvm.conf" },
                { "name: a\ndisk1: /srv/fast/../../etc/shadow\n", "disk1",
                  "disk1: /srv/fast/../../etc/shadow has a '.', '..' or empty component; a path in storage must be "
                  "plain" },
                { "name: a\ndisk0: /srv/fastest/x.img\n", "disk0", NULL },      /* a prefix, not beneath */
                { "name: a\ndisk0: /srv/fast\n", "disk0", NULL },               /* the directory itself */
                { "name: a\nkernel: /boot/vmlinuz\n", "kernel", NULL },
                { "name: a\ninitrd: /etc/shadow\n", "initrd", NULL },
                { "name: a\nrootfs: /home/u/root.img\n", "rootfs", NULL },
                { "name: a\nrootfs: tiny,size=4G\n", NULL, NULL },
                { "name: a\nrootfs: tiny,size=9G\n", "rootfs",
                  "rootfs: size=9216M is over the quota of 8192 MiB per disk (ZVM_MAX_DISK_SIZE in zvm.conf)" },
                { "name: a\nmemory: 1024\n", NULL, NULL },
                { "name: a\nmemory: 2048\n", "memory",
                  "memory: 2048 MiB is over the quota of 1024 MiB per VM (ZVM_MAX_MEMORY in zvm.conf)" },
                { "name: a\ncores: 3\n", "cores", "cores: 3 is over the quota of 2 per VM (ZVM_MAX_CORES in zvm.conf)" },
                { "name: a\nnet0: user\n", NULL, NULL },
                { "name: a\nnet0: bridge=vmbr1,tag=25\n", NULL, NULL },
                { "name: a\nnet1: bridge=vmbr0\n", "net1",
                  "net1: bridge vmbr0 is not declared (bridges: vmbr1 vmbr2); other bridges need root or ZVM_BRIDGES "
                  "in zvm.conf" },
                { "name: a\nnet0: bridge=vmbr2,tag=30\n", "net0",
                  "net0: VLAN 30 is not declared; other VLANs need root or ZVM_VLANS in zvm.conf" },
                { "name: a\nnet0: user,hostfwd=tcp:20000-22,hostfwd=udp:127.1.2.3:30000-53\n", NULL, NULL },
                { "name: a\nnet2: user,hostfwd=tcp:20000-22,hostfwd=tcp:20010-22\n", "net2",
                  "net2: hostfwd= host port 20010 is not declared; other ports need root or ZVM_HOSTFWD_PORTS in "
                  "zvm.conf" },
                { "name: a\nnet0: user,hostfwd=tcp:0.0.0.0:20000-22\n", "net0",
                  "net0: hostfwd= address 0.0.0.0 is not a loopback address; other addresses need root" },
                { "name: a\nnet0: user,hostfwd=tcp:192.168.1.5:20000-22\n", "net0",
                  "net0: hostfwd= address 192.168.1.5 is not a loopback address; other addresses need root" },
                { "name: a\nnet0: user,hostfwd=tcp:22-22\n", "net0",
                  "net0: hostfwd= host port 22 is not declared; other ports need root or ZVM_HOSTFWD_PORTS in zvm.conf" },
        };
        _cleanup_(policy_freep) Policy *p = parse(conf);

        if (!ok(p, "the policy parses"))
                return;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(vm_config_freep) VmConfig *c = config(cases[i].config);
                _cleanup_free_ char *err = NULL, *key = NULL, *rerr = NULL;
                int r;

                if (!ok(c, "config %zu parses", i))
                        continue;
                r = policy_check_config(p, c, NULL, false, &err, &key);
                if (cases[i].key) {
                        ok(r == -EACCES && streq_ptr(key, cases[i].key), "refused for group zvm: %s (%s)",
                           cases[i].config, strnull(err));
                        if (cases[i].message)
                                is_str(err, cases[i].message, "  the message names key, value and rule");
                } else
                        ok(r == 0, "allowed for group zvm: %s (%s)", cases[i].config, strnull(err));
                is_int(policy_check_config(p, c, NULL, true, &rerr, NULL), 0, "allowed for root: %s",
                       cases[i].config);
        }
}

/* Without ZVM_HOSTFWD_PORTS no caller but root forwards a port. */
static void test_hostfwd_default(void) {
        _cleanup_(policy_freep) Policy *p = parse("");
        _cleanup_(vm_config_freep) VmConfig *c = config("name: a\nnet1: user,hostfwd=tcp:20000-22\n");
        _cleanup_free_ char *err = NULL, *key = NULL;

        if (!ok(p && c, "setup"))
                return;
        ok(policy_check_config(p, c, NULL, false, &err, &key) == -EACCES && streq_ptr(key, "net1"),
           "hostfwd= refused by default");
        is_str(err, "net1: hostfwd= host port 20000 is not declared (no ports are); other ports need root or "
                    "ZVM_HOSTFWD_PORTS in zvm.conf", "  and the message says none are declared");
        is_int(policy_check_config(p, c, NULL, true, NULL, NULL), 0, "root may");
}

/* PATCH checks the keys its body sets; a start checks every key. */
static void test_keys_filter(void) {
        _cleanup_(policy_freep) Policy *p = parse(conf);
        _cleanup_(vm_config_freep) VmConfig *c = config("name: a\nmemory: 4096\ndisk0: /dev/sda\n");
        json_object *body = json_object_new_object();
        _cleanup_free_ char *err = NULL, *key = NULL;

        if (!ok(p && c && body, "setup"))
                goto out;
        json_object_object_add(body, "name", json_object_new_string("b"));
        is_int(policy_check_config(p, c, body, false, &err, &key), 0, "a body that sets only name passes");
        json_object_object_add(body, "disk0", json_object_new_string("/dev/sda"));
        ok(policy_check_config(p, c, body, false, &err, &key) == -EACCES && streq_ptr(key, "disk0"),
           "a body that sets disk0 is refused on disk0");
        err = mfree(err);
        key = mfree(key);
        ok(policy_check_config(p, c, NULL, false, &err, &key) == -EACCES && streq_ptr(key, "memory"),
           "every key (a start): memory, the first rule broken");
out:
        json_object_put(body);
}

static void test_paths(void) {
        _cleanup_(policy_freep) Policy *p = parse(conf);
        _cleanup_free_ char *err = NULL;
        PolicyPath pp;

        if (!ok(p, "the policy parses"))
                return;
        ok(policy_check_path(p, "disk0", "/srv/fast/a/b.img", false, &pp, &err) == 0 && pp.kind == POLICY_PATH_STORAGE &&
                   streq(pp.storage->name, "fast") && streq(pp.relative, "a/b.img"),
           "a path in storage resolves to its storage and a relative path");
        ok(policy_check_path(p, "disk0", "/dev/vg0/shared", false, &pp, &err) == 0 && pp.kind == POLICY_PATH_RAW,
           "a declared raw path is opened as is");
        ok(policy_check_path(p, "disk0", "/srv/fast/a.img", true, &pp, &err) == 0 && pp.kind == POLICY_PATH_RAW,
           "root's paths are opened as is");
        is_int(policy_check_disk_size(p, "disk0", "/x", 8ULL << 30, false, &err), 0, "a disk at the quota fits");
        is_int(policy_check_disk_size(p, "disk0", "/x", (8ULL << 30) + 1, false, &err), -EACCES, "one byte over: refused");
        is_int(policy_check_disk_size(p, "disk0", "/x", 1ULL << 40, true, &err), 0, "root: no quota");

        _cleanup_(policy_freep) Policy *none = parse("");
        _cleanup_free_ char *e2 = NULL;
        ok(none && policy_check_path(none, "disk0", "/var/lib/zvm/images/a.img", false, &pp, &e2) == -EACCES &&
                   strstr(e2, "(storage: none)"),
           "no storage at all: every path refused (%s)", strnull(e2));
        ok(none && policy_add_storage(none, "local", "/var/lib/zvm/images") == 0 &&
                   policy_add_storage(none, "local", "/x") == -EEXIST &&
                   policy_add_storage(none, "bad", "/a/./b") == -EINVAL,
           "policy_add_storage: a name once, a clean path");
}

int main(void) {
        test_parse();
        test_parse_refused();
        test_decisions();
        test_hostfwd_default();
        test_keys_filter();
        test_paths();
        return done_testing();
}
