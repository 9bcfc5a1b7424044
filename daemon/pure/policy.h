/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The storage and network policy (issue 10 item 2): what a VM config may
 * name, decided for a caller. Root (uid 0 on the unix socket, and zvmd's own
 * onboot starts) may name anything; every other caller (group zvm on the
 * unix socket, every TCP token whatever its role) gets:
 *
 *   paths     rootfs, diskN, kernel and initrd lie beneath a declared storage
 *             directory (plain relative paths: no "." or ".." components),
 *             or are on the declared raw list (exact match). The resolver
 *             in core (config-check.c) then opens them with openat2(
 *             RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), which this module cannot.
 *   bridges   only the declared ones (none by default); user networking is
 *             always allowed.
 *   VLANs     tag= only from the declared set (none by default).
 *   hostfwd   a user NIC's forwards listen only on a loopback address and
 *             only on declared host ports (none by default, never below
 *             1024).
 *   quotas    memory, cores, and disk size (a template's writable layer,
 *             an image's or block device's size) at most the declared
 *             ceilings (unlimited by default).
 *
 * A multicast MAC is refused for everyone, by the schema (vm-config.c).
 *
 * The policy comes from <etc>/zvm.conf (the service's EnvironmentFile, so
 * KEY=VALUE lines; see policy_parse()). Pure: text in, decisions out.
 *
 * Refusals are -EACCES (the API's 403 Forbidden) with a message naming the
 * key, the value and the rule, e.g.
 *   disk0: /dev/sda is outside the declared storage (storage: local=/var/lib/zvm/images);
 *   raw paths need root or ZVM_RAW_PATHS in zvm.conf
 */

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "macro.h"
#include "vm-config.h"

#define POLICY_STORAGES_MAX 64U
#define POLICY_RAW_PATHS_MAX 256U
#define POLICY_BRIDGES_MAX 256U
#define POLICY_VLAN_MAX 4094U
/* The path keys of one config: rootfs, kernel, initrd, disk0..7. */
#define POLICY_PATH_KEYS_MAX (VM_DISKS_MAX + 3U)

typedef struct PolicyStorage {
        char *name;
        char *path;             /* absolute, without ".", ".." or empty components, no trailing '/' */
} PolicyStorage;

typedef struct Policy {
        PolicyStorage storages[POLICY_STORAGES_MAX];
        size_t n_storages;
        char **raw_paths;       /* strv, never NULL */
        char **bridges;         /* strv, never NULL */
        uint8_t vlans[(POLICY_VLAN_MAX + 1 + 7) / 8];   /* bit n: tag n declared */
        bool any_vlan;
        uint8_t hostfwd_ports[65536 / 8];       /* bit n: host port n may be forwarded (>= 1024) */
        bool any_hostfwd_port;
        uint64_t max_memory_mib;        /* 0: unlimited */
        unsigned max_cores;             /* 0: unlimited */
        uint64_t max_disk_size;         /* bytes, 0: unlimited */
} Policy;

Policy *policy_free(Policy *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Policy *, policy_free);

/*
 * Parses zvm.conf (size bytes at text, NULL/0 for an absent file). Lines
 * are KEY=VALUE as systemd's EnvironmentFile reads them ('#' and ';' start
 * comments, a value may be in double or single quotes); keys other than
 * these are the service's and ignored:
 *
 *   ZVM_STORAGE=NAME=DIR [NAME=DIR ...]   storage directories
 *   ZVM_RAW_PATHS=PATH [PATH ...]         raw host paths and block devices
 *   ZVM_BRIDGES=IFNAME [IFNAME ...]
 *   ZVM_VLANS=N|N-M [...]                 1..4094, space or comma separated
 *   ZVM_MAX_MEMORY=MiB | SIZE             a bare number is MiB, as memory:
 *   ZVM_MAX_CORES=N
 *   ZVM_MAX_DISK_SIZE=SIZE                bytes, or with K/M/G/T
 *   ZVM_HOSTFWD_PORTS=N|N-M [...]         host ports for hostfwd=, 1024..65535
 *
 * A policy key given twice is refused (systemd would take the last, and
 * two storage lines were surely meant as one list). local (optional) is
 * zvmd's own storage, "local", listed first; the name is not free for
 * ZVM_STORAGE. -EINVAL with "zvm.conf line N: ..." in *ret_error (or a
 * local that is not a clean absolute path), -ENOMEM.
 */
int policy_parse(const char *text, size_t size, const char *local, Policy **ret, char **ret_error);

/* Adds a storage; -EEXIST for a taken name, -E2BIG past
 * POLICY_STORAGES_MAX, -EINVAL for a name that is not safe or a path that
 * is not absolute and clean. */
int policy_add_storage(Policy *p, const char *name, const char *path);

/* "local=/var/lib/zvm/images fast=/srv/fast", or "none". */
char *policy_storage_list(const Policy *p);

/* A path key of a config and its value. */
typedef struct PolicyPathKey {
        char key[16];
        const char *path;       /* into the VmConfig */
        bool block_ok;          /* an image or a block device (rootfs, diskN); else a regular file */
        bool sized;             /* counts against max_disk_size (rootfs, diskN) */
} PolicyPathKey;

/* The path keys c sets, in a fixed order (rootfs, disk0..7, kernel,
 * initrd). Returns how many. */
size_t policy_config_paths(const VmConfig *c, PolicyPathKey ret[static POLICY_PATH_KEYS_MAX]);

typedef enum PolicyPathKind {
        POLICY_PATH_RAW,        /* open as is: root's, or declared raw */
        POLICY_PATH_STORAGE,    /* open beneath storage, relative */
} PolicyPathKind;

typedef struct PolicyPath {
        PolicyPathKind kind;
        const PolicyStorage *storage;   /* STORAGE */
        const char *relative;           /* STORAGE: into path, beneath storage->path */
} PolicyPath;

/* How key's path may be opened for this caller, or -EACCES with why. */
int policy_check_path(const Policy *p, const char *key, const char *path, bool root, PolicyPath *ret,
                      char **ret_error);

/* Whether a disk of size bytes (the file's or device's) fits the quota. */
int policy_check_disk_size(const Policy *p, const char *key, const char *path, uint64_t size, bool root,
                           char **ret_error);

/* Every rule this module can decide alone (paths lexically, bridges, VLANs,
 * quotas) for the keys of c that keys names (a JSON object whose member
 * names are config keys: a POST/PATCH body), or for every key (keys NULL).
 * 0, or -EACCES with the message and the key. */
int policy_check_config(const Policy *p, const VmConfig *c, json_object *keys, bool root, char **ret_error,
                        char **ret_key);
