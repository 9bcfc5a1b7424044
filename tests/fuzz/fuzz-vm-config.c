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
 *     from a config can start a new line or option in a log or a shell.
 */
#include "config-file.h"
#include "fuzz.h"
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
        return 0;
}
