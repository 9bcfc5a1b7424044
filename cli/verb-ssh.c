/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli-http.h"
#include "cli-sshkeys.h"
#include "cli-util.h"
#include "cli-vm.h"
#include "fd-util.h"
#include "log.h"
#include "string-util.h"

#define SSH_ARGS_MAX 64

/* ssh runs ProxyCommand through /bin/sh: single-quote what we put there. */
static char *shell_quote(const char *s) {
        size_t n = 2;
        char *out, *q;

        for (const char *p = s; *p; p++)
                n += *p == '\'' ? 4 : 1;
        out = malloc(n + 1);
        if (!out)
                return NULL;
        q = out;
        *q++ = '\'';
        for (const char *p = s; *p; p++)
                if (*p == '\'')
                        q = stpcpy(q, "'\\''");
                else
                        *q++ = *p;
        *q++ = '\'';
        *q = '\0';
        return out;
}

/* "'/usr/bin/zvm' --socket '/run/zvm/api.sock' vsock-proxy %h 22": this very
 * binary, talking to the same zvmd. */
static int proxy_command(const Cli *cli, char **ret) {
        _cleanup_free_ char *self = realpath("/proc/self/exe", NULL), *qs = NULL, *qsock = NULL;

        if (cli->url)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                       "ssh goes over vsock and runs on the VM's host: use zvmd's unix socket, not --url");
        if (!self)
                return log_error_errno(errno, "Cannot find zvm's own binary: %m");
        qs = shell_quote(self);
        qsock = shell_quote(cli->socket_path);
        if (!qs || !qsock)
                return log_oom();
        /* The socket alone also tells the proxy zvmd's run directory. */
        *ret = strjoin(qs, " --socket ", qsock, " vsock-proxy %h 22");
        return *ret ? 0 : log_oom();
}

static int known_hosts_path(const Cli *cli, char **ret) {
        _cleanup_(json_object_putp) json_object *host = NULL;
        json_object *v;
        int r;

        r = cli_http_call(cli, "GET", "/host", NULL, &host);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(host, "ssh_known_hosts", &v) || !json_object_get_string(v))
                return log_error_errno(SYNTHETIC_ERRNO(EPROTO), "zvmd does not manage ssh host keys (too old?)");
        *ret = strdup(json_object_get_string(v));
        return *ret ? 0 : log_oom();
}

/* Refuses a VM whose sshkeys is empty: its sshd would refuse every login
 * with a bare "Permission denied (publickey)". Names the fix. */
static int check_has_keys(const Cli *cli, const char *id) {
        _cleanup_(json_object_putp) json_object *vm = NULL;
        _cleanup_free_ char *file = NULL;
        json_object *config, *v;
        int r;

        r = cli_vm_get(cli, id, &vm);
        if (r < 0)
                return r;
        if (json_object_object_get_ex(vm, "config", &config) && json_object_object_get_ex(config, "sshkeys", &v) &&
            !isempty(json_object_get_string(v)))
                return 0;
        r = cli_sshkeys_default_file(&file);
        return log_error_errno(SYNTHETIC_ERRNO(ENOKEY), "VM %s has no ssh key (its sshkeys is empty), so its sshd "
                               "refuses every login. Give it one: zvm config set %s --ssh-key %s",
                               id, id, r < 0 ? "FILE.pub" : file);
}

/* -i with zvm's own key, when it exists and the user named no key. */
static char *own_identity(bool user_gave_key) {
        _cleanup_free_ char *own = NULL;

        if (user_gave_key || cli_sshkeys_own_path(&own) < 0 || access(own, R_OK) < 0)
                return NULL;
        return TAKE_PTR(own);
}

/* Whether the known_hosts file lists "<name>.zvm ". */
static bool known_hosts_has(const char *path, const char *name) {
        _cleanup_free_ char *text = NULL, *needle = strjoin("\n", name, ".zvm ");

        if (!needle || read_full_file(path, &text, NULL, 4 * 1024 * 1024) < 0)
                return false;
        return strstr(text, needle) != NULL;
}

/* zvm ssh [-l USER] [-i KEY] [-o OPTION]... [--wait S] NAME [-- CMD [ARGS...]]:
 * the real OpenSSH client, over vsock port 22, with the guest's host key
 * checked against the known_hosts zvmd keeps. */
int verb_ssh(Cli *cli, int argc, char *argv[]) {
        enum { ARG_WAIT = ARG_VERB_FIRST };
        static const struct option options[] = {
                VERB_COMMON_OPTIONS,
                { "wait", required_argument, NULL, ARG_WAIT },
                {}
        };
        _cleanup_free_ char *name = NULL, *proxy = NULL, *known = NULL, *o_proxy = NULL, *o_known = NULL,
                            *o_alias = NULL, *dest = NULL, *identity = NULL;
        const char *user = "root", *extra[SSH_ARGS_MAX];
        size_t n_extra = 0, n = 0;
        unsigned wait_s = CLI_AGENT_WAIT_DEFAULT_S;
        const char **args;
        bool gave_key = false;
        int c, r;

        /* "+": options end at NAME, the rest is the remote command. */
        while ((c = getopt_long(argc, argv, "+hl:i:o:", options, NULL)) >= 0)
                switch (c) {
                case 'l':
                        user = optarg;
                        break;
                case 'i':
                case 'o':
                        gave_key = gave_key || c == 'i';
                        if (n_extra + 2 > SSH_ARGS_MAX)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Too many -i/-o options");
                        extra[n_extra++] = c == 'i' ? "-i" : "-o";
                        extra[n_extra++] = optarg;
                        break;
                case ARG_WAIT:
                        if (safe_atou32(optarg, &wait_s) < 0 || wait_s > 3600)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "--wait: seconds, 0..3600");
                        break;
                default:
                        r = verb_common_option(cli, c);
                        if (r != 0)
                                return r;
                }
        r = verb_check_args(cli, argc, argv, 1, -1);
        if (r < 0)
                return r;

        r = proxy_command(cli, &proxy);
        if (r < 0)
                return r;
        r = check_has_keys(cli, argv[optind]);
        if (r < 0)
                return r;
        r = cli_vm_wait_agent(cli, argv[optind], wait_s, &name);
        if (r < 0)
                return r;
        identity = own_identity(gave_key);
        r = known_hosts_path(cli, &known);
        if (r < 0)
                return r;
        if (!known_hosts_has(known, name))
                return log_error_errno(SYNTHETIC_ERRNO(ENOENT),
                                       "VM %s reported no ssh host key: its template has no sshd "
                                       "(build one with: zvm template build NAME --profile standard)", name);

        o_proxy = strjoin("ProxyCommand=", proxy);
        o_known = strjoin("UserKnownHostsFile=", known);
        o_alias = strjoin("HostKeyAlias=", name, ".zvm");
        dest = strjoin(user, "@", name, ".zvm");
        args = calloc((size_t) argc + n_extra + 24, sizeof(char *));
        if (!o_proxy || !o_known || !o_alias || !dest || !args)
                return log_oom();
        args[n++] = "ssh";
        args[n++] = "-o";
        args[n++] = o_proxy;
        args[n++] = "-o";
        args[n++] = o_known;
        args[n++] = "-o";
        args[n++] = "StrictHostKeyChecking=yes";
        args[n++] = "-o";
        args[n++] = o_alias;
        args[n++] = "-o";
        args[n++] = "CheckHostIP=no";
        args[n++] = "-o";
        args[n++] = "UpdateHostKeys=no";
        if (identity) {
                args[n++] = "-i";
                args[n++] = identity;
        }
        for (size_t i = 0; i < n_extra; i++)
                args[n++] = extra[i];
        args[n++] = "--";
        args[n++] = dest;
        for (int i = optind + 1; i < argc; i++)
                if (i > optind + 1 || !streq(argv[i], "--"))
                        args[n++] = argv[i];
        args[n] = NULL;

        log_debug("Running ssh with ProxyCommand %s", proxy);
        fflush(stdout);
        execvp("ssh", (char *const *) args);
        r = log_error_errno(errno, "Cannot run ssh: %m (install openssh-client)");
        free(args);
        return r;
}

/* zvm ssh-config: an OpenSSH "Host *.zvm" block, so that plain ssh, scp,
 * sftp and rsync reach guests as NAME.zvm. */
int verb_ssh_config(Cli *cli, int argc, char *argv[]) {
        _cleanup_free_ char *proxy = NULL, *known = NULL;
        int r;

        r = verb_parse_simple(cli, argc, argv, 0, 0);
        if (r != 0)
                return r;
        r = proxy_command(cli, &proxy);
        if (r < 0)
                return r;
        r = known_hosts_path(cli, &known);
        if (r < 0)
                return r;
        printf("# zvm: OpenSSH settings for zvm's guests, reachable as NAME.zvm over vsock port 22.\n"
               "# Append to ~/.ssh/config (zvm ssh-config >> ~/.ssh/config), or save it as a file\n"
               "# and \"Include\" that. Host keys come from the zvm-managed known_hosts below,\n"
               "# recorded from each guest's agent: even a first connection is verified.\n"
               "Host *.zvm\n"
               "    User root\n"
               "    ProxyCommand %s\n"
               "    UserKnownHostsFile \"%s\"\n"
               "    StrictHostKeyChecking yes\n"
               "    CheckHostIP no\n"
               "    UpdateHostKeys no\n",
               proxy, known);
        return 0;
}
