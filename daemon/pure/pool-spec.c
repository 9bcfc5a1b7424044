/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-file.h"
#include "pool-spec.h"
#include "string-util.h"
#include "vm-config.h"

static int spec_error(char **ret_error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int spec_error(char **ret_error, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        if (ret_error && vasprintf(ret_error, fmt, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
        return -EINVAL;
}

static int parse_uint(const char *v, uint64_t min, uint64_t max, uint64_t *ret) {
        char *end;

        if (!v || !*v || !strchr("0123456789", *v))
                return -EINVAL;
        errno = 0;
        unsigned long long n = strtoull(v, &end, 10);
        if (errno || *end || n < min || n > max)
                return -EINVAL;
        *ret = n;
        return 0;
}

static int spec_set(PoolSpec *s, const char *key, const char *value, char **ret_error) {
        uint64_t n;

        if (streq(key, "size")) {
                if (parse_uint(value, 0, POOL_SIZE_MAX, &n) < 0)
                        return spec_error(ret_error, "size=%s: must be 0 to 64", value);
                s->size = (unsigned) n;
        } else if (streq(key, "memory")) {
                if (parse_uint(value, 1, UINT32_MAX, &n) < 0)
                        return spec_error(ret_error, "memory=%s: must be a size in MiB", value);
                s->memory_mib = n;
        } else if (streq(key, "cores")) {
                if (parse_uint(value, 1, UINT32_MAX, &n) < 0)
                        return spec_error(ret_error, "cores=%s: must be a number of cores", value);
                s->cores = (unsigned) n;
        } else if (streq(key, "template")) {
                if (strlen(value) >= sizeof(s->template_name) || !*value)
                        return spec_error(ret_error, "template=%s: not a template name", value);
                strcpy(s->template_name, value);
        } else
                return spec_error(ret_error, "%s: unknown (size=, template=, memory=, cores=)", key);
        return 0;
}

int pool_spec_parse(const char *s, PoolSpec *ret, char **ret_error) {
        _cleanup_free_ char *copy = NULL, *text = NULL;
        _cleanup_(config_file_freep) ConfigFile *cf = NULL;
        ConfigError err = {};
        VmConfig *c = NULL;
        PoolSpec spec = { .cores = 1 };
        bool sized = false;
        char *save = NULL;
        uint64_t n;
        int r;

        if (ret_error)
                *ret_error = NULL;
        /* A new VM's defaults, from the config schema. */
        snprintf(spec.template_name, sizeof(spec.template_name), "%s", vm_config_key_default("rootfs"));
        (void) parse_uint(vm_config_key_default("memory"), 1, UINT32_MAX, &spec.memory_mib);
        if (parse_uint(vm_config_key_default("cores"), 1, UINT32_MAX, &n) >= 0)
                spec.cores = (unsigned) n;
        if (streq_ptr(s, "off") || streq_ptr(s, "0")) {
                *ret = spec;
                return 0;
        }
        copy = strdup(strempty(s));
        if (!copy)
                return -ENOMEM;
        for (char *part = strtok_r(copy, ",", &save); part; part = strtok_r(NULL, ",", &save)) {
                char *eq = strchr(part, '=');

                if (!eq)
                        return spec_error(ret_error, "%s: expected KEY=VALUE", part);
                *eq = 0;
                r = spec_set(&spec, part, eq + 1, ret_error);
                if (r < 0)
                        return r;
                sized = sized || streq(part, "size");
        }
        if (!sized)
                return spec_error(ret_error, "%s: size= is required (or \"off\")", strempty(s));
        /* What the pool boots must be a config zvm takes. */
        r = pool_spec_config(&spec, POOL_VMID_BASE, 3, &text);
        if (r < 0)
                return r;
        r = config_file_parse(text, strlen(text), &cf, &err);
        if (r < 0)
                return spec_error(ret_error, "%s", err.message);
        r = vm_config_from_file(cf, POOL_VMID_BASE, &c, ret_error);
        if (r < 0)
                return r;
        vm_config_free(c);
        *ret = spec;
        return 0;
}

int pool_spec_config(const PoolSpec *s, uint32_t vmid, uint32_t cid, char **ret_text) {
        /* rootfs: the template; its writable layer is the guest's own. */
        if (asprintf(ret_text,
                     "name: zvm-pool-%" PRIu32 "\nmemory: %" PRIu64 "\ncores: %u\nrootfs: %s\nvsock: cid=%" PRIu32 "\n",
                     vmid - POOL_VMID_BASE, s->memory_mib, s->cores, s->template_name, cid) < 0)
                return -ENOMEM;
        return 0;
}
