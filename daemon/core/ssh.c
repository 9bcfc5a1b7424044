/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "fd-util.h"
#include "fileio.h"
#include "log.h"
#include "ssh-key.h"
#include "ssh.h"
#include "string-util.h"

#define SSH_PUSH_TIMEOUT_USEC (15ULL * 1000000ULL)

/* Lines, each ended by "\n"; NULL for none or on OOM. */
static char *lines_join(char *const *lines) {
        _cleanup_free_ char *text = NULL;

        if (strv_length(lines) == 0)
                return NULL;
        text = strv_join(lines, "\n");
        return text ? strjoin(text, "\n") : NULL;
}

/* The READY's "ssh_host_keys" as "TYPE BASE64\n" lines. A guest can send
 * anything, and these lines go into a known_hosts file that ssh trusts:
 * each must be exactly a host key (ssh_host_key_check()), and a list longer
 * than SSH_HOST_KEYS_MAX is refused whole. NULL if there are none. */
static char *host_keys_from_ready(const VmAgent *a) {
        _cleanup_strv_free_ char **keys = NULL;
        json_object *list;
        size_t n;

        if (!a->info || !json_object_object_get_ex(a->info, "ssh_host_keys", &list) ||
            !json_object_is_type(list, json_type_array))
                return NULL;
        n = json_object_array_length(list);
        if (n > SSH_HOST_KEYS_MAX) {
                log_warning("VM %u: the guest sent %zu ssh host keys (at most %u), ignoring them all", a->vmid, n,
                            SSH_HOST_KEYS_MAX);
                return NULL;
        }
        for (size_t i = 0; i < n; i++) {
                json_object *k = json_object_array_get_idx(list, i);
                const char *reason = "is not a string";

                if (!json_object_is_type(k, json_type_string) ||
                    ssh_host_key_check(json_object_get_string(k), &reason) < 0) {
                        log_warning("VM %u: ignoring a malformed ssh host key from the guest (%s)", a->vmid, reason);
                        continue;
                }
                if (strv_extend(&keys, json_object_get_string(k)) < 0)
                        return NULL;
        }
        return lines_join(keys);
}

int ssh_known_hosts_write(const char *data, const SshKnownHost *hosts, size_t n) {
        _cleanup_strv_free_ char **lines = NULL;
        _cleanup_free_ char *out = NULL;
        int r;

        if (strv_extend(&lines, "# Written by zvmd: the ssh host keys of zvm's guests, as their agents reported them.") < 0 ||
            strv_extend(&lines, "# Used by `zvm ssh` and the Host *.zvm block of `zvm ssh-config`. Do not edit.") < 0)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *path = strjoin(hosts[i].data_dir, "/" SSH_HOST_KEYS_FILE), *keys = NULL;
                char *line, *save = NULL;

                if (!path)
                        return -ENOMEM;
                if (read_full_file(path, &keys, NULL, 64 * 1024) < 0)
                        continue;
                for (line = strtok_r(keys, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                        char *entry = strjoin(hosts[i].name, ".zvm ", line);

                        if (!entry || strv_push(&lines, entry) < 0) {
                                free(entry);
                                return -ENOMEM;
                        }
                }
        }
        out = lines_join(lines);
        if (!out)
                return -ENOMEM;
        r = write_file_atomic(data, SSH_KNOWN_HOSTS_FILE, out, strlen(out), 0644);
        if (r < 0)
                return log_warning_errno(r, "Cannot write %s/%s: %m", data, SSH_KNOWN_HOSTS_FILE);
        return 0;
}

int ssh_record_host_keys(const VmAgent *a, const char *data_dir) {
        _cleanup_free_ char *keys = host_keys_from_ready(a), *path = NULL, *old = NULL;
        int r;

        if (!keys)
                return 0;       /* no sshd in this guest (tiny), or keys not made yet */
        path = strjoin(data_dir, "/" SSH_HOST_KEYS_FILE);
        if (!path)
                return -ENOMEM;
        if (read_full_file(path, &old, NULL, 64 * 1024) >= 0 && streq(old, keys))
                return 0;
        if (old)
                log_notice("VM %u: the guest's ssh host keys changed", a->vmid);
        r = write_file_atomic(data_dir, SSH_HOST_KEYS_FILE, keys, strlen(keys), 0644);
        if (r < 0)
                return log_warning_errno(r, "VM %u: cannot record its ssh host keys: %m", a->vmid);
        return 1;
}

static void on_keys_pushed(VmAgent *a, json_object *response, const char *code, const char *message,
                           void *userdata) {
        if (response)
                log_info("VM %u: %zu ssh key(s) installed for root", a->vmid, (size_t) (uintptr_t) userdata);
        else
                log_warning("VM %u: cannot install ssh keys through the agent: %s (%s)", a->vmid, strnull(message),
                            strnull(code));
}

void ssh_push_authorized_keys(VmAgent *a, char *const *sshkeys) {
        json_object *req, *keys;
        int r;

        if (strv_length(sshkeys) == 0)
                return;         /* keys managed inside the guest: leave them alone */
        req = json_object_new_object();
        keys = json_object_new_array();
        if (!req || !keys) {
                json_object_put(req);
                json_object_put(keys);
                return;
        }
        STRV_FOREACH(k, sshkeys)
                json_object_array_add(keys, json_object_new_string(*k));
        json_object_object_add(req, "op", json_object_new_string("set-authorized-keys"));
        json_object_object_add(req, "user", json_object_new_string("root"));
        json_object_object_add(req, "keys", keys);
        r = agent_call(a, req, SSH_PUSH_TIMEOUT_USEC, on_keys_pushed, (void *) (uintptr_t) strv_length(sshkeys),
                       NULL);   /* takes req */
        if (r < 0)
                log_warning_errno(r, "VM %u: cannot reach the agent to install ssh keys: %m", a->vmid);
}
