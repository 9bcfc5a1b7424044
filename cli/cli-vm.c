/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli-http.h"
#include "cli-output.h"
#include "cli-util.h"
#include "cli-vm.h"
#include "fd-util.h"
#include "log.h"
#include "ssh-key.h"
#include "string-util.h"

#define AGENT_POLL_MS 250

int cli_vm_path(const char *id, const char *suffix, char **ret) {
        char *p;

        /* VMIDs are digits, which string_is_safe_name() accepts too; zvmd
         * tells a VMID from a name. */
        if (!string_is_safe_name(id))
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "invalid VM name or VMID '%s'", id);

        p = strjoin("/vms/", id, strempty(suffix));
        if (!p)
                return log_oom();
        *ret = p;
        return 0;
}

int cli_print(const Cli *cli, json_object *o, CliRender render) {
        _cleanup_free_ char *text = NULL;
        int r;

        if (cli->json)
                render = cli_output_json;
        if (!render)
                return 0;

        r = render(o, &text);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return log_error_errno(r, "zvmd sent an answer zvm does not understand: %m");

        fputs(text, stdout);
        return 0;
}

int cli_call_print(const Cli *cli, const char *method, const char *path, json_object *body, CliRender render) {
        json_object *answer = NULL;
        int r;

        r = cli_http_call(cli, method, path, body, &answer);
        if (r < 0)
                return r;
        r = cli_print(cli, answer, render);
        json_object_put(answer);
        return r;
}

int cli_vm_call_print(Cli *cli, const char *method, const char *id, const char *suffix,
                      json_object *body, CliRender render) {
        _cleanup_free_ char *path = NULL;
        int r;

        cli->vm_name = id;
        r = cli_vm_path(id, suffix, &path);
        if (r < 0)
                return r;
        return cli_call_print(cli, method, path, body, render);
}

int cli_token_create(const Cli *cli, const char *comment, const char *role, uint64_t expires) {
        _cleanup_(json_object_putp) json_object *body = json_object_new_object(), *token = NULL;
        json_object *id = NULL;
        int r;

        if (!body)
                return log_oom();
        if (comment) {
                r = cli_body_put(body, "comment", json_object_new_string(comment));
                if (r < 0)
                        return r;
        }
        if (role) {
                r = cli_body_put(body, "role", json_object_new_string(role));
                if (r < 0)
                        return r;
        }
        if (expires > 0) {
                r = cli_body_put(body, "expires", json_object_new_int64((int64_t) expires));
                if (r < 0)
                        return r;
        }

        r = cli_http_call(cli, "POST", "/tokens", body, &token);
        if (r < 0)
                return r;
        r = cli_print(cli, token, cli_output_token_secret);
        if (r < 0)
                return r;

        /* stdout carries the secret alone, for scripts; the reminder goes to stderr. */
        if (!cli->json && json_object_object_get_ex(token, "id", &id))
                log_info("Created token %s. Its secret is shown only this once.", json_object_get_string(id));
        return 0;
}

int cli_token_delete(const Cli *cli, const char *id) {
        _cleanup_free_ char *path = NULL;
        char *escaped;

        if (isempty(id))
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "empty token ID");
        escaped = curl_easy_escape(NULL, id, 0);
        if (!escaped)
                return log_oom();
        path = strjoin("/tokens/", escaped);
        curl_free(escaped);
        if (!path)
                return log_oom();
        return cli_call_print(cli, "DELETE", path, NULL, NULL);
}

int cli_body_put(json_object *body, const char *key, json_object *value) {
        int r;

        if (!value)
                return log_oom();
        r = cli_body_add(body, key, value);
        if (r == -EEXIST)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "'%s' given twice", key);
        if (r < 0)
                return log_oom();
        return 0;
}

int cli_body_put_sshkeys(json_object *body, const char *keys) {
        _cleanup_free_ char *enc = ssh_keys_encode(keys);

        if (!enc)
                return log_oom();
        return cli_body_put(body, "sshkeys", json_object_new_string(enc));
}

int cli_vm_get(const Cli *cli, const char *id, json_object **ret) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = cli_vm_path(id, NULL, &path);
        if (r < 0)
                return r;
        return cli_http_call(cli, "GET", path, NULL, ret);
}

int cli_body_put_null(json_object *body, const char *key) {
        int r;

        if (!cli_config_key_is_valid(key))
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "invalid config key '%s'", key);
        r = cli_body_add(body, key, NULL);
        if (r == -EEXIST)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "'%s' given twice", key);
        if (r < 0)
                return log_oom();
        return 0;
}

int cli_body_put_assignment(json_object *body, const char *assignment) {
        _cleanup_free_ char *key = NULL;
        const char *value;
        int r;

        r = cli_parse_assignment(assignment, &key, &value);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                       "invalid setting '%s', expected KEY=VALUE with a lower-case key", assignment);
        if (streq(key, "memory") || streq(key, "balloon")) {
                /* Sizes take the units of --memory and set-memory; the
                 * config holds MiB. */
                char mib_text[24];
                uint64_t mib;

                if (cli_parse_mib(value, &mib) < 0)
                        return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                               "invalid size for %s: '%s' (MiB, or a whole number of MiB with K, M, G or T: 512, 512M, 1G)",
                                               key, value);
                (void) snprintf(mib_text, sizeof(mib_text), "%" PRIu64, mib);
                return cli_body_put(body, key, json_object_new_string(mib_text));
        }
        return cli_body_put(body, key, json_object_new_string(value));
}

int cli_body_put_mib(json_object *body, const char *key, const char *option, const char *arg) {
        uint64_t mib;
        int r;

        r = cli_parse_mib(arg, &mib);
        if (r < 0)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                       "invalid size for %s: '%s' (MiB, or a whole number of MiB with K, M, G or T: 512, 512M, 1G)",
                                       option, arg);
        return cli_body_put(body, key, json_object_new_int64((int64_t) mib));
}

int cli_body_put_uint(json_object *body, const char *key, const char *option, const char *arg,
                      uint32_t min, uint32_t max) {
        uint32_t v;

        if (safe_atou32(arg, &v) < 0 || v < min || v > max)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "invalid value for %s: '%s' (expected %" PRIu32 "-%" PRIu32 ")",
                                       option, arg, min, max);
        return cli_body_put(body, key, json_object_new_int64(v));
}

int cli_vm_wait_agent(const Cli *cli, const char *id, unsigned wait_s, char **ret_name) {
        _cleanup_free_ char *path = NULL;
        struct timespec t0;
        int r;

        r = cli_vm_path(id, "/status", &path);
        if (r < 0)
                return r;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (bool said = false;; said = true) {
                _cleanup_(json_object_putp) json_object *st = NULL;
                json_object *v;
                const char *state = NULL, *agent = NULL;
                struct timespec now;

                r = cli_http_call(cli, "GET", path, NULL, &st);
                if (r < 0)
                        return r;
                if (json_object_object_get_ex(st, "state", &v))
                        state = json_object_get_string(v);
                if (json_object_object_get_ex(st, "agent", &v))
                        agent = json_object_get_string(v);
                if (!streq_ptr(state, "running") && !streq_ptr(state, "starting"))
                        return log_error_errno(SYNTHETIC_ERRNO(EBUSY), "VM %s is %s: start it first (zvm start %s)", id,
                                               strnull(state), id);
                /* Only a booting guest's agent (waiting) is waited for. One that
                 * stopped answering its health check (unresponsive) is tried at
                 * once: the call then fails within its own --timeout, it does not
                 * wait minutes for an agent that may never come back. */
                if (streq_ptr(agent, "ready") || streq_ptr(agent, "unresponsive")) {
                        if (!json_object_object_get_ex(st, "name", &v))
                                return log_error_errno(SYNTHETIC_ERRNO(EPROTO), "zvmd's status has no name");
                        if (!ret_name)
                                return 0;
                        *ret_name = strdup(json_object_get_string(v));
                        return *ret_name ? 0 : log_oom();
                }
                if (streq_ptr(agent, "none"))
                        return log_error_errno(SYNTHETIC_ERRNO(EBUSY),
                                               "VM %s runs without an agent (agent: 0)", id);
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec - t0.tv_sec >= (time_t) wait_s)
                        return log_error_errno(SYNTHETIC_ERRNO(ETIMEDOUT),
                                               "VM %s: agent still %s after %u s; is the guest booting?", id,
                                               strnull(agent), wait_s);
                if (!said)
                        log_info("Waiting for VM %s's agent (%s)...", id, strnull(agent));
                cli_sleep_ms(AGENT_POLL_MS);
        }
}
