/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * daemon/pure/vm-config: vm_config_from_file() on a hand-edited
 * /etc/zvm/vms/<vmid>.conf, then what zvmd does with a config it accepted:
 * vm_config_to_json() (GET /vms/{id}) and qemu_argv_build().
 *
 * Input: the config file.
 *
 * Properties of an accepted config:
 *   - the typed view keeps the documented bounds (memory, balloon <= memory,
 *     cores, a safe name, tags), its strvs are never NULL;
 *   - round trip through the API: the "config" object, applied as a POST
 *     body to an empty file, gives a file that vm_config_from_file()
 *     accepts and whose "config" object is equal;
 *   - the QEMU argv, if it can be built, has no control characters: nothing
 *     from a config can start a new line or option in a log or a shell;
 *   - the storage and network policy (pure/policy) allows root everything;
 *     for anyone else it allows or refuses (-EACCES, a one-line message,
 *     a config key), and a path it lets through is the declared raw path,
 *     or exactly a storage directory + '/' + a relative path with no "."
 *     or ".." component.
 */
#include "config-file.h"
#include "fuzz.h"
#include "policy.h"
#include "qemu-argv-fixtures.h"
#include "string-util.h"
#include "vm-config.h"

static void check_typed(const VmConfig *c) {
        FUZZ_CHECK(c->vmid == 100);
        FUZZ_CHECK(c->name && string_is_safe_name(c->name));
        FUZZ_CHECK(c->memory_mib >= VM_MEMORY_MIN_MIB && c->memory_mib <= VM_MEMORY_MAX_MIB);
        FUZZ_CHECK(c->balloon_mib <= c->memory_mib);
        FUZZ_CHECK(c->cores >= 1 && c->cores <= VM_CORES_MAX);
        FUZZ_CHECK(c->tags && strv_length(c->tags) <= VM_TAGS_MAX);
        FUZZ_CHECK(c->sshkeys);
        FUZZ_CHECK(!(c->rootfs_template && c->rootfs_path));
        FUZZ_CHECK(c->accel >= 0 && c->accel < _VM_ACCEL_MAX);
        FUZZ_CHECK(!c->cmdline || strlen(c->cmdline) <= VM_CMDLINE_MAX);
}

static void check_json_round_trip(const ConfigFile *cf) {
        _cleanup_config_file_free_ ConfigFile *copy = NULL;
        _cleanup_vm_config_free_ VmConfig *c = NULL;
        _cleanup_free_ char *err = NULL, *bad = NULL, *err2 = NULL;
        json_object *j = NULL, *j2 = NULL;
        int r;

        if (vm_config_to_json(cf, &j) < 0 || config_file_new(&copy) < 0)
                goto finish;
        r = vm_config_apply_json(copy, j, NULL, &err, &bad);
        if (r == -ENOMEM)
                goto finish;
        if (r < 0)
                fprintf(stderr, "apply of own JSON failed at %s: %s\n", strnull(bad), strnull(err));
        FUZZ_CHECK(r >= 0);
        r = vm_config_from_file(copy, 100, &c, &err2);
        if (r == -ENOMEM)
                goto finish;
        FUZZ_CHECK(r >= 0);
        if (vm_config_to_json(copy, &j2) < 0)
                goto finish;
        FUZZ_CHECK(json_object_equal(j, j2));
finish:
        json_object_put(j);
        json_object_put(j2);
}

static void check_argv(const VmConfig *c) {
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_free_ char *err = NULL;
        int r;

        r = qemu_argv_build(c, &host_tcg, &paths_std, &argv, &err);
        if (r < 0) {
                FUZZ_CHECK(IN_SET(r, -EOPNOTSUPP, -E2BIG, -EINVAL, -ENOMEM));
                FUZZ_CHECK(r == -ENOMEM || err);
                return;
        }
        FUZZ_CHECK(argv[0] && streq(argv[0], host_tcg.qemu_binary));
        STRV_FOREACH(a, argv)
                for (const char *p = *a; *p; p++)
                        FUZZ_CHECK((unsigned char) *p >= 0x20 && *p != 0x7f);
}

static bool has_dot_component(const char *rel) {
        for (const char *s = rel; *s;) {
                size_t n = strcspn(s, "/");

                if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
                        return true;
                s += n;
                if (*s == '/')
                        s++;
        }
        return false;
}

static void check_policy(const VmConfig *c) {
        static const char conf[] = "ZVM_STORAGE=fast=/srv/fast\nZVM_RAW_PATHS=/dev/vg0/a\nZVM_BRIDGES=vmbr1\n"
                                   "ZVM_VLANS=10-20\nZVM_MAX_MEMORY=512\nZVM_MAX_CORES=2\nZVM_MAX_DISK_SIZE=2G\n";
        _cleanup_(policy_freep) Policy *p = NULL;
        _cleanup_free_ char *err = NULL, *key = NULL;
        PolicyPathKey paths[POLICY_PATH_KEYS_MAX];
        size_t n;
        int r;

        if (policy_parse(conf, sizeof(conf) - 1, "/var/lib/zvm/images", &p, NULL) < 0)
                return; /* OOM */
        FUZZ_CHECK(policy_check_config(p, c, NULL, true, NULL, NULL) == 0);
        r = policy_check_config(p, c, NULL, false, &err, &key);
        FUZZ_CHECK(IN_SET(r, 0, -EACCES, -ENOMEM));
        if (r == -EACCES)
                FUZZ_CHECK(err && !strchr(err, '\n') && key && vm_config_key_known(key) && startswith(err, key));
        n = policy_config_paths(c, paths);
        FUZZ_CHECK(n <= POLICY_PATH_KEYS_MAX);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *e = NULL, *joined = NULL;
                PolicyPath pp;

                if (policy_check_path(p, paths[i].key, paths[i].path, false, &pp, &e) < 0)
                        continue;
                if (pp.kind == POLICY_PATH_RAW) {
                        FUZZ_CHECK(streq(paths[i].path, "/dev/vg0/a"));
                        continue;
                }
                joined = strjoin(pp.storage->path, "/", pp.relative);
                FUZZ_CHECK(!joined || streq(joined, paths[i].path));
                FUZZ_CHECK(!has_dot_component(pp.relative));
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_config_file_free_ ConfigFile *cf = NULL;
        _cleanup_vm_config_free_ VmConfig *c = NULL;
        _cleanup_free_ char *err = NULL;
        int r;

        if (config_file_parse((const char *) data, size, &cf, NULL) < 0)
                return 0;

        r = vm_config_from_file(cf, 100, &c, &err);
        if (r < 0) {
                FUZZ_CHECK(IN_SET(r, -EINVAL, -ENOMEM));
                FUZZ_CHECK(!c);
                FUZZ_CHECK(r == -ENOMEM || (err && !strchr(err, '\n')));
                return 0;
        }
        check_typed(c);
        check_json_round_trip(cf);
        check_argv(c);
        check_policy(c);
        return 0;
}
