/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * ssh into guests, the host side. zvmd does two things with the agent's
 * READY:
 *  - the guest's ssh host public keys it carries are kept in
 *    <data>/vms/<vmid>/ssh_host_keys and listed, as "NAME.zvm KEY", in the
 *    zvm-managed known_hosts (<data>/ssh_known_hosts, 0644). `zvm ssh` and
 *    `zvm ssh-config` point OpenSSH's UserKnownHostsFile at it with
 *    StrictHostKeyChecking=yes: the key comes over the authenticated agent
 *    channel, so even the first connection is verified.
 *  - the VM's sshkeys (config) are written to root's authorized_keys
 *    through the agent's set-authorized-keys.
 */

#include <stddef.h>

typedef struct VmAgent VmAgent;

#define SSH_HOST_KEYS_FILE "ssh_host_keys"
#define SSH_KNOWN_HOSTS_FILE "ssh_known_hosts"
#define SSH_HOST_KEYS_MAX 8U

/* One VM's lines in known_hosts: "NAME.zvm KEY" for each key recorded in
 * DATA_DIR/ssh_host_keys. */
typedef struct SshKnownHost {
        const char *name;
        const char *data_dir;
} SshKnownHost;

/* On READY: records the host keys of a->info in DATA_DIR/ssh_host_keys.
 * > 0 when they changed (the caller rewrites known_hosts), 0 when not. */
int ssh_record_host_keys(const VmAgent *a, const char *data_dir);
/* Pushes these keys to the agent's root authorized_keys (on READY, and when
 * the config changes while ready). No keys: the guest's own are left alone. */
void ssh_push_authorized_keys(VmAgent *a, char *const *sshkeys);
/* Rewrites DATA/ssh_known_hosts from these VMs' recorded keys (after a
 * start, a delete, a rename). */
int ssh_known_hosts_write(const char *data, const SshKnownHost *hosts, size_t n);
