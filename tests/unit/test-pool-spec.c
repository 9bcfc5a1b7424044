/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config-file.h"
#include "macro.h"
#include "pool-spec.h"
#include "tap.h"
#include "vm-config.h"

static void test_parse(void) {
        PoolSpec s;
        char *err = NULL;

        is_int(pool_spec_parse("off", &s, &err), 0, "off parses");
        is_int(s.size, 0, "off: size 0");
        is_int(pool_spec_parse("size=3", &s, &err), 0, "size=3 parses");
        is_int(s.size, 3, "size 3");
        is_str(s.template_name, "tiny", "a new VM's template by default");
        is_int(s.memory_mib, 256, "a new VM's memory by default");
        is_int(s.cores, 1, "one core by default");
        is_int(pool_spec_parse("size=2,memory=128,cores=2,template=std", &s, &err), 0, "all keys parse");
        is_int(s.memory_mib, 128, "memory 128");
        is_int(s.cores, 2, "cores 2");
        is_str(s.template_name, "std", "template std");
        for (const char *const *bad = (const char *const[]) { "", "on", "size", "size=", "size=65", "size=-1",
                                                              "memory=128", "size=1,memory=0", "size=1,cores=x",
                                                              "size=1,template=Bad/Name", "size=1,color=red",
                                                              "size=1,memory=99999999", NULL };
             *bad; bad++) {
                is_int(pool_spec_parse(*bad, &s, &err), -EINVAL, "'%s' is refused", *bad);
                ok(err && *err, "'%s': %s", *bad, err ? err : "(no message)");
                err = mfree(err);
        }
}

static ConfigFile *parse(const char *text) {
        ConfigFile *cf = NULL;
        ConfigError e = {};

        if (config_file_parse(text, strlen(text), &cf, &e) < 0)
                abort();
        return cf;
}

static void test_config_and_match(void) {
        PoolSpec s;
        char *text = NULL, *err = NULL;
        ConfigFile *pool, *vm, *other;
        VmConfig *c = NULL;

        is_int(pool_spec_parse("size=1,memory=128", &s, &err), 0, "spec parses");
        is_int(pool_spec_config(&s, POOL_VMID_BASE + 5, 4242, &text), 0, "config text");
        pool = parse(text);
        is_int(vm_config_from_file(pool, POOL_VMID_BASE + 5, &c, &err), 0, "the pool guest's config is valid");
        is_int(c ? c->cid : 0, 4242, "with its CID");
        ok(pool_vmid(POOL_VMID_BASE + 5) && !pool_vmid(POOL_VMID_BASE - 1) && !pool_vmid(POOL_VMID_END),
           "pool_vmid() is the slot range");
        vm_config_free(c);

        /* A VM made with memory 128 and defaults otherwise: served, whatever
         * its name, CID, description, ssh keys or balloon floor. */
        vm = parse("name: web\nmemory: 128\nvsock: cid=1101\ndescription: x\nballoon: 64\nonboot: 1\n");
        ok(vm_config_same_run(pool, vm, "vsock"), "a VM of the pool's shape matches");
        ok(!vm_config_same_run(pool, vm, NULL), "its CID differs");
        other = parse("name: web\nmemory: 256\nvsock: cid=1101\n");
        ok(!vm_config_same_run(pool, other, "vsock"), "another memory does not match");
        config_file_free(other);
        other = parse("name: web\nmemory: 128\nvsock: cid=1101\nmodel: m\n");
        ok(!vm_config_same_run(pool, other, "vsock") && !vm_config_same_run(other, pool, "vsock"),
           "a key only one side has (model) does not match, either way round");
        config_file_free(other);
        other = parse("name: web\nmemory: 128\nrootfs: tiny\ncores: 1\nagent: 1\n");
        ok(vm_config_same_run(pool, other, "vsock"), "explicit defaults match absent keys");
        config_file_free(other);
        other = parse("name: web\nmemory: 128\nagent: 0\n");
        ok(!vm_config_same_run(pool, other, "vsock"), "agent 0 does not match");
        config_file_free(other);
        config_file_free(vm);
        config_file_free(pool);
        free(text);
}

int main(void) {
        test_parse();
        test_config_and_match();
        return done_testing();
}
