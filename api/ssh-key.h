/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/*
 * OpenSSH public keys as a VM's "sshkeys" config value carries them.
 *
 * The value is the authorized_keys text, percent-encoded like Proxmox VE's
 * sshkeys option (one config line holds several keys: "\n" is "%0A", " " is
 * "%20"). Every non-empty line must be one OpenSSH public key,
 * "[OPTIONS ]TYPE BASE64[ COMMENT]", whose base64 blob decodes and names the
 * same TYPE: a typo or a private key pasted by mistake is refused when the
 * config is written, not when the guest's sshd quietly ignores it.
 */

#define SSH_KEYS_MAX 32U
#define SSH_KEY_LINE_MAX 8192U

/* Checks one authorized_keys line. Returns 0, or -EINVAL with a reason
 * (static string) in *ret_reason. */
int ssh_pubkey_check(const char *line, const char **ret_reason);

/* A guest's ssh host public key as the agent's READY carries it, before it
 * goes into a known_hosts file: exactly "TYPE BASE64" (one blank), a plain
 * host key type, padded base64 whose blob names the same type, nothing else
 * (no options, comment, blank or control character), shorter than
 * SSH_HOST_KEY_LINE_MAX. 0, -EINVAL with a reason (static string), -ENOMEM. */
#define SSH_HOST_KEY_LINE_MAX 4096U
int ssh_host_key_check(const char *line, const char **ret_reason);

/* Decodes a percent-encoded sshkeys value into a strv of key lines (empty
 * lines and surrounding blanks dropped). -EINVAL with *ret_reason (malloc'd)
 * naming the line and the reason; -ENOMEM. */
int ssh_keys_decode(const char *value, char ***ret, char **ret_reason);

/* Percent-encodes text (typically authorized_keys lines joined by "\n"):
 * every byte outside [A-Za-z0-9._~@+/=-] becomes %XX. NULL on OOM. */
char *ssh_keys_encode(const char *text);
