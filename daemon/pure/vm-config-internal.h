/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the parts of vm-config (vm-config.c: messages, keys, the typed view;
 * vm-config-net.c: netN and its hostfwd=; vm-config-json.c: the API's JSON)
 * share. Not for other modules: vm-config.h is the interface. */

#include <stdbool.h>
#include <stddef.h>

#include "config-file.h"
#include "macro.h"

/* vm-config.h's (this leaf must not include it back: tests/unit/check-includes.py). */
typedef struct VmConfig VmConfig;

/* Offending values are quoted in messages. They may come from a JSON body
 * (1 MB strings, newlines, invalid UTF-8), so they are cut and escaped: a
 * message is always one short line of printable ASCII. */
#define QUOTE_CUT 64
#define QUOTE_BUF (2 + QUOTE_CUT * 4 + 3 + 1)

/* v quoted and cut into buf. */
const char *vmc_quote(const char *v, char buf[static QUOTE_BUF]);
/* *reason = the formatted text; returns -EINVAL (-ENOMEM if it cannot). */
int vmc_reason_set(char **reason, const char *format, ...) _printf_(2, 3);
/* "key: reason" into *ret_error; returns r. */
int vmc_error_for_key(int r, const char *key, const char *reason, char **ret_error);
/* The formatted text into *ret_error; returns r. */
int vmc_error_set(int r, char **ret_error, const char *format, ...) _printf_(3, 4);
int vmc_set_string(char **field, const char *value);
/* "k=v" split: *ret_key allocated, *ret_value points into opt. */
int vmc_option_split(const char *opt, char **ret_key, const char **ret_value);
/* A comma-separated option list, split. */
int vmc_option_list_split(const char *value, char ***ret, char **reason);
/* "unknown key …" into *ret_error. */
int vmc_unknown_key(const char *key, char **ret_error);

/* Parses value into c. idx is the N of diskN/netN. Returns 0, -EINVAL with
 * *reason set (without the "key: " prefix), or -ENOMEM. */
typedef int (*VmKeyParser)(const char *value, unsigned idx, VmConfig *c, char **reason);

typedef struct VmKey {
        const char *name;               /* with n_indexed: the prefix of name0..name<n-1> */
        unsigned n_indexed;
        VmKeyParser parse;
        const char *default_value;      /* parsed when the key is absent; NULL: none */
        bool needs_restart;
        bool json_int;                  /* an integer in the API's "config" object */
        size_t max_len;                 /* bytes; 0: what fits in one config line */
} VmKey;

/* The key's entry, and for diskN/netN its N; NULL for an unknown key. */
const VmKey *vm_key_find(const char *key, unsigned *ret_idx);
/* The typed view, without the check of vmid (vm_config_apply_json()
 * validates files of VMs that do not have a VMID yet). ret_bad_key
 * (optional) gets the key an error is about. */
int vm_config_parse(const ConfigFile *cf, uint32_t vmid, VmConfig **ret, char **ret_error, char **ret_bad_key);
/* Validates value for key, alone. */
int vm_config_check(const char *key, const char *value, char **ret_error);
/* config_file_set() with errors explained. */
int vm_config_store(ConfigFile *cf, const char *key, const char *value, char **ret_error);

/* vm-config-net.c */
int vm_config_parse_net(const char *value, unsigned idx, VmConfig *c, char **reason);
/* Two NICs forwarding one host port: QEMU would refuse the second at start. */
int vm_config_check_hostfwd_unique(const VmConfig *c, char ret_key[static 8], char **ret_error);
