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

typedef struct Manager Manager;
typedef struct Vm Vm;

#define SSH_HOST_KEYS_FILE "ssh_host_keys"
#define SSH_KNOWN_HOSTS_FILE "ssh_known_hosts"
#define SSH_HOST_KEYS_MAX 8U

/* On READY: records the host keys and pushes the authorized keys. */
void ssh_on_agent_ready(Vm *vm);
/* Pushes the VM's sshkeys to its agent now (config changed while ready). */
void ssh_push_authorized_keys(Vm *vm);
/* Rewrites <data>/ssh_known_hosts from every VM's recorded keys (after a
 * start, a delete, a rename). */
int ssh_known_hosts_write(Manager *m);
