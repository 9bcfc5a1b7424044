/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The VM config schema: typed view and validation of <etc>/vms/<vmid>.conf.
 *
 * The ConfigFile (lib/config-file) keeps the text and stays the source of
 * truth; this module knows what the keys mean. Every key is described by one
 * row of a table in vm-config.c (name, parser, default, whether a change
 * needs a restart), and every function here goes through that table.
 *
 * Only the main section is looked at: "[snapshot]" sections are ignored.
 *
 * Errors are returned as -errno with a message that names the key and the
 * reason, e.g.
 *         memory: must be an integer between 32 and 1048576 MiB (got "-5")
 *         balloon: 512 exceeds memory (256)
 * Offending values are quoted in messages, cut to 64 bytes and with
 * non-printable bytes escaped, so that a message is always one short line.
 *
 * Error codes:
 *   -ENOKEY  the key is not a VM config key (includes "vmid", which is not
 *            stored in the file). Maps to the API's UnknownKey.
 *   -EINVAL  the value is not valid for the key, the file as a whole is not
 *            valid (missing name, balloon > memory, ...), or a refused edit
 *            (unsetting name). Maps to InvalidValue.
 *   -ENOMEM  out of memory; *ret_error may be left NULL then.
 */

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "config-file.h"
#include "macro.h"

#define VM_DISKS_MAX 8
#define VM_NETS_MAX 6
#define VM_HOSTFWD_MAX 8U      /* hostfwd= per user NIC */

#define VM_MEMORY_MIN_MIB 32ULL
#define VM_MEMORY_MAX_MIB 1048576ULL
#define VM_MEMORY_DEFAULT_MIB 256ULL
#define VM_CORES_MAX 64U
#define VM_CMDLINE_MAX 1024U
#define VM_TAGS_MAX 16U
#define VM_TAG_LEN_MAX 32U
#define VM_ROOTFS_DEFAULT "tiny"
#define VM_ROOTFS_SIZE_MIN (64ULL << 20)
#define VM_ROOTFS_SIZE_MAX (16ULL << 40)
#define VM_ROOTFS_SIZE_DEFAULT (1ULL << 30)
#define VM_CID_MIN 3U
#define VM_CID_MAX 0xFFFFFFFEU
#define VM_IFNAME_MAX 15U
/* Paths (kernel, initrd, rootfs, diskN) are bounded like PATH_MAX. */
#define VM_PATH_MAX 4095U
/* inference: bounds as the agent's llm-start (api/agent-protocol.md). */
#define VM_INFERENCE_THREADS_MAX 256U
#define VM_INFERENCE_CTX_MAX 1048576U
#define VM_INFERENCE_PARALLEL_MAX 64U
#define VM_INFERENCE_BATCH_MAX 65536U
/* cpu: a QEMU CPU model name, at most this many bytes. */
#define VM_CPU_MODEL_MAX 63U
/* The guest CPU model under TCG when the config has no "cpu": with "max"
 * Debian's ggml picks its AVX2 kernels, whose emulation is ~17-20x slower
 * than the baseline x86-64 kernels "qemu64" selects (issue 9, measured
 * with llama.cpp 0.7.0). Under KVM the default is "host". "+arat" (an
 * always-running APIC timer): without it the guest's LAPIC timer may stop in
 * idle (C3STOP), there is no broadcast timer to cover for it, and the kernel
 * keeps a periodic 250 Hz tick: an idle tiny VM cost 6-7 % of a host core
 * under TCG, with it 0.8 % (issue 13). */
#define VM_CPU_DEFAULT_TCG "qemu64,+arat"
/* "description: <text>" must fit in one config line (CONFIG_LINE_MAX). */
#define VM_DESCRIPTION_MAX (CONFIG_LINE_MAX - sizeof("description: ") + 1)

typedef enum VmAccel {
        VM_ACCEL_AUTO,
        VM_ACCEL_KVM,
        VM_ACCEL_TCG,
        _VM_ACCEL_MAX,
        _VM_ACCEL_INVALID = -EINVAL,
} VmAccel;

typedef struct VmDisk {
        char *path;             /* NULL: slot unused */
        bool readonly;
        bool scsi;              /* bus=scsi, else virtio-blk */
} VmDisk;

/* hostfwd= of a user NIC: slirp listens on addr:host_port on the host and
 * forwards to the guest's port (restrict=on still lets these in). */
typedef struct VmHostfwd {
        bool udp;               /* else tcp */
        char addr[16];          /* dotted IPv4, "127.0.0.1" unless given */
        uint16_t host_port, guest_port;
} VmHostfwd;

typedef struct VmNet {
        bool present;
        bool bridge;            /* bridge=<ifname>, else user-mode networking */
        char *ifname;           /* the bridge, if bridge */
        unsigned tag;           /* VLAN tag 1..4094, 0 = untagged */
        char mac[18];           /* "xx:xx:xx:xx:xx:xx" lower case, "" = derive (vm_net_derive_mac) */
        VmHostfwd hostfwd[VM_HOSTFWD_MAX];      /* user NICs only */
        unsigned n_hostfwd;
} VmNet;

/* llama-server's settings in llm guests; 0 = the agent's default. */
typedef struct VmInference {
        unsigned threads, ctx, parallel, batch;
} VmInference;

typedef struct VmConfig {
        uint32_t vmid;
        char *name;
        uint64_t memory_mib, balloon_mib;
        unsigned cores;
        char *kernel, *initrd, *cmdline;        /* NULL: host default / none */
        char *rootfs_template;  /* set if rootfs names a template */
        char *rootfs_path;      /* set if rootfs is an absolute image path (used as the writable root, no overlay) */
        uint64_t rootfs_size;   /* bytes, writable layer */
        VmDisk disks[VM_DISKS_MAX];
        VmNet nets[VM_NETS_MAX];
        uint32_t cid;           /* 0: no "vsock" key */
        char *model;            /* model store name (resolved to its image at start), or NULL */
        VmInference inference;
        char *cpu;              /* QEMU CPU model, NULL: host under KVM, VM_CPU_DEFAULT_TCG under TCG */
        bool agent, onboot, pcie;
        char **tags;            /* strv, never NULL after parsing */
        char **sshkeys;         /* authorized_keys lines, strv, never NULL after parsing */
        char *description;
        VmAccel accel;
} VmConfig;

VmConfig *vm_config_free(VmConfig *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(VmConfig *, vm_config_free);
#define _cleanup_vm_config_free_ _cleanup_(vm_config_freep)

/* The typed view of the main section of cf, with defaults filled in. Every
 * key is validated, unknown keys are refused, then the cross-key rules are
 * checked (name present, balloon <= memory). vmid must be in
 * ZVM_VMID_MIN..ZVM_VMID_MAX. Returns 0, -EINVAL (+ message), -ENOMEM. */
int vm_config_from_file(const ConfigFile *cf, uint32_t vmid, VmConfig **ret, char **ret_error);

/* Validates value for key (the value alone: cross-key rules are checked by
 * vm_config_from_file() / vm_config_apply_json()), then sets it in cf.
 * Returns 0, -ENOKEY, -EINVAL, -ENOMEM. cf is unchanged on failure. */
int vm_config_set(ConfigFile *cf, const char *key, const char *value, char **ret_error);

/* Removes key from cf. Refuses "name" (-EINVAL). Returns 1 if removed, 0 if
 * it was not set, -ENOKEY for an unknown key. */
int vm_config_unset(ConfigFile *cf, const char *key, char **ret_error);

/* Applies a POST/PATCH body: an object of key → string | integer | boolean
 * | null (null = unset; true/false are stored as 1/0). Every key and value
 * is validated, then the resulting file as a whole (vm_config_from_file()
 * rules). On any error cf is left exactly as it was, *ret_bad_key
 * (optional) names the offending key and *ret_error says why. On success
 * *ret_changed_keys (optional) lists, in body order, the keys whose value
 * actually changed (set to something else, added or removed).
 * "vmid" is refused with -ENOKEY: the daemon takes it out of a POST body
 * before calling this. Returns 0, -ENOKEY, -EINVAL, -ENOMEM. */
int vm_config_apply_json(ConfigFile *cf, json_object *obj, char ***ret_changed_keys, char **ret_error,
                         char **ret_bad_key);

/* The "config" object of API responses: every key of the main section, in
 * file order; memory, balloon, cores, agent, onboot and pcie as integers
 * (as strings if a hand-edited file holds something that is not a number),
 * everything else as strings. */
int vm_config_to_json(const ConfigFile *cf, json_object **ret);

bool vm_config_key_known(const char *key);
/* Whether a change of key takes effect only after a restart of the VM. False
 * for unknown keys. */
bool vm_config_key_needs_restart(const char *key);
/* The default of a key as a string ("256" for memory, "tiny" for rootfs),
 * NULL if it has none (or depends on another key: balloon = memory). */
const char *vm_config_key_default(const char *key);
/* Whether key needs a restart and a and b give it different values (an
 * absent key has its default). */
bool vm_config_key_differs(const ConfigFile *a, const ConfigFile *b, const char *key);
/* Whether a guest booted with config a runs what config b asks for: no
 * key that needs a restart differs, except `except` (NULL: none). The
 * warm pool's match (core/pool.h). */
bool vm_config_same_run(const ConfigFile *a, const ConfigFile *b, const char *except);

/* An interface name as bridge= takes it: 1-15 of [A-Za-z0-9_.-], not "." or "..". */
bool vm_ifname_is_valid(const char *s);

const char *vm_accel_to_string(VmAccel a);
VmAccel vm_accel_from_string(const char *s);

/* The MAC used for netN when the config gives none: 52:54:00 (QEMU's
 * locally administered prefix) + the low 24 bits of vmid * 8 + idx. Stable
 * across restarts, and distinct for all VMs whose VMIDs lie within 2^21
 * (2097152) of each other, i.e. for every host numbering VMs from 100 up;
 * set mac= explicitly beyond that. */
void vm_net_derive_mac(uint32_t vmid, unsigned idx, char ret[static 18]);
