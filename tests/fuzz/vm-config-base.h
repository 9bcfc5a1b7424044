/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The config the edit harnesses start from: a VM using most keys, so that
 * an edit can change, remove or contradict each of them (balloon vs memory,
 * disk slots, nets). */

#include "config-file.h"
#include "fuzz.h"

static const char fuzz_vm_config_base[] =
        "# a VM as a user would write it\n"
        "name: web\n"
        "memory: 1024\n"
        "balloon: 512\n"
        "cores: 2\n"
        "cmdline: loglevel=4\n"
        "rootfs: tiny,size=2G\n"
        "disk0: /srv/d0.img\n"
        "disk3: /srv/d3.img,ro=1,bus=scsi\n"
        "net0: user\n"
        "net2: bridge=vmbr0,tag=42,mac=52:54:00:aa:bb:cc\n"
        "vsock: cid=1100\n"
        "agent: 1\n"
        "onboot: 0\n"
        "tags: prod;web\n"
        "description: front end\n"
        "accel: auto\n"
        "\n"
        "[snap1]\n"
        "memory: 512\n";

static inline ConfigFile *fuzz_vm_config_base_new(void) {
        ConfigFile *cf = NULL;

        if (config_file_parse(fuzz_vm_config_base, strlen(fuzz_vm_config_base), &cf, NULL) == -ENOMEM)
                return NULL;
        FUZZ_CHECK(cf);
        return cf;
}

/* The file's text, for comparing before and after a refused edit. */
static inline char *fuzz_config_text(const ConfigFile *cf) {
        char *s = NULL;

        return config_file_format(cf, &s, NULL) < 0 ? NULL : s;
}
