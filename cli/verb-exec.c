/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base64.h"
#include "cli-exec-tty.h"
#include "cli-http.h"
#include "cli-vm.h"
#include "fd-util.h"
#include "log.h"
#include "string-util.h"

#define EXEC_STDIN_MAX (1024U * 1024U)

/* Decodes base64 field `key` of o and writes it to fd. */
static int write_b64(json_object *o, const char *key, int fd) {
        _cleanup_free_ unsigned char *out = NULL;
        json_object *v;
        const char *in;
        size_t size = 0;

        if (!json_object_object_get_ex(o, key, &v) || !(in = json_object_get_string(v)) || !*in)
                return 0;
        if (base64_decode(in, &out, &size) < 0)
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "zvmd sent malformed %s", key);
        return loop_write(fd, out, size, false);
}

/* Parses exec's options from optind on, up to the first non-option or
 * "--". An unknown one is refused and named: it would otherwise become (part
 * of) the command, as "-t" in "zvm exec s1 -t -- bash" did. */
static int exec_parse_options(Cli *cli, int argc, char *argv[], json_object *body, json_object *env,
                              uint32_t *timeout, unsigned *wait_s, bool *interactive, bool *tty) {
        enum { ARG_TIMEOUT = ARG_VERB_FIRST, ARG_ENV, ARG_CWD, ARG_WAIT };
        static const struct option options[] = {
                VERB_COMMON_OPTIONS,
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "wait", required_argument, NULL, ARG_WAIT },
                { "env", required_argument, NULL, ARG_ENV },
                { "cwd", required_argument, NULL, ARG_CWD },
                { "interactive", no_argument, NULL, 'i' },
                { "tty", no_argument, NULL, 't' },
                {}
        };
        int c;

        opterr = 0;
        /* "+": stop at the first non-option, so CMD's own options stay its. */
        while ((c = getopt_long(argc, argv, "+hit", options, NULL)) >= 0)
                switch (c) {
                case 'i':
                        *interactive = true;
                        break;
                case 't':
                        *tty = true;
                        break;
                case ARG_TIMEOUT:
                        if (safe_atou32(optarg, timeout) < 0 || *timeout == 0 || *timeout > 86400)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                                       "invalid --timeout '%s' (seconds, 1-86400)", optarg);
                        break;
                case ARG_WAIT:
                        if (safe_atou32(optarg, wait_s) < 0 || *wait_s > 3600)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "invalid --wait '%s' (seconds, 0-3600)",
                                                       optarg);
                        break;
                case ARG_ENV:
                        if (!strchr(optarg, '='))
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "--env wants KEY=VALUE, got '%s'",
                                                       optarg);
                        json_object_array_add(env, json_object_new_string(optarg));
                        break;
                case ARG_CWD:
                        json_object_object_add(body, "cwd", json_object_new_string(optarg));
                        break;
                case '?':
                case ':':
                        if (optopt > 0 && optopt < 0x100)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                                       "exec: unknown option '-%c' or missing value (the command "
                                                       "and its options go after '--'), see 'zvm help exec'", optopt);
                        return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                               "exec: unknown option '%s' or missing value (the command and its "
                                               "options go after '--'), see 'zvm help exec'", argv[optind - 1]);
                default: {
                        int r = verb_common_option(cli, c);

                        if (r != 0)
                                return r;
                }
                }
        return 0;
}

/* exec -it: the request becomes op pty's (no timeout: a terminal lasts
 * as long as its user wants), with the user's TERM. */
static int exec_tty(Cli *cli, const char *name, json_object *body, json_object *env, unsigned wait_s) {
        const char *term = getenv("TERM");
        _cleanup_free_ char *t = strjoin("TERM=", isempty(term) ? "xterm" : term);
        int r;

        if (!t)
                return log_oom();
        if (cli->url)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                       "exec -t goes over vsock and runs on the VM's host: use zvmd's unix socket, "
                                       "not --url");
        json_object_array_add(env, json_object_new_string(t));
        json_object_object_add(body, "op", json_object_new_string("pty"));
        cli->vm_name = name;
        r = cli_vm_wait_agent(cli, name, wait_s, NULL);
        if (r < 0)
                return r;
        return cli_exec_tty(cli, name, body);
}

/* zvm exec NAME [--timeout S] [--wait S] [--env K=V]... [--cwd DIR] -- CMD [ARGS...]:
 * runs CMD in the guest through the agent, passes stdin (when it is not a
 * terminal), stdout and stderr through, and exits with CMD's exit code
 * (128+N for a signal, 124 when the timeout killed it, like timeout(1);
 * 127 when the guest has no such command, like a shell).
 * Options may come before or after NAME. */
int verb_exec(Cli *cli, int argc, char *argv[]) {
        _cleanup_(json_object_putp) json_object *body = json_object_new_object(), *res = NULL;
        json_object *args = json_object_new_array(), *env = json_object_new_array(), *v;
        _cleanup_free_ char *path = NULL;
        uint32_t timeout = 30;
        unsigned wait_s = CLI_AGENT_WAIT_DEFAULT_S;
        bool interactive = false, tty = false;
        const char *name;
        int r;

        if (!body || !args || !env)
                return log_oom();
        json_object_object_add(body, "argv", args);
        json_object_object_add(body, "env", env);
        r = exec_parse_options(cli, argc, argv, body, env, &timeout, &wait_s, &interactive, &tty);
        if (r != 0)
                return r;
        if (optind >= argc)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "usage: zvm exec NAME [OPTIONS] -- CMD [ARGS...]");
        name = argv[optind++];
        if (optind < argc && !streq(argv[optind], "--")) {
                r = exec_parse_options(cli, argc, argv, body, env, &timeout, &wait_s, &interactive, &tty);
                if (r != 0)
                        return r;
        } else if (optind < argc)
                optind++;
        if (optind >= argc)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "no command given (zvm exec %s -- CMD)", name);
        for (int i = optind; i < argc; i++)
                json_object_array_add(args, json_object_new_string(argv[i]));
        if (interactive && !tty)
                /* Plain exec passes stdin already (up to 1 MiB, before the
                 * command runs); a stream without a terminal is not there. */
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                       "exec -i needs -t (a terminal): use -it, or pipe stdin to zvm exec without -i");
        if (tty)
                return exec_tty(cli, name, body, env, wait_s);
        json_object_object_add(body, "timeout", json_object_new_int64(timeout));

        if (!isatty(STDIN_FILENO)) {
                _cleanup_free_ char *in = NULL, *b64 = NULL;
                size_t size = 0;

                r = read_full_fd(STDIN_FILENO, &in, &size, EXEC_STDIN_MAX);
                if (r == -EFBIG)
                        return log_error_errno(r, "stdin is larger than %u bytes, the limit of zvm exec", EXEC_STDIN_MAX);
                if (r < 0 && r != -EBADF)
                        return log_error_errno(r, "cannot read stdin: %m");
                if (r >= 0 && size > 0) {
                        b64 = base64_encode(in, size);
                        if (!b64)
                                return log_oom();
                        json_object_object_add(body, "stdin", json_object_new_string(b64));
                }
        }

        cli->vm_name = name;
        r = cli_vm_path(name, "/exec", &path);
        if (r < 0)
                return r;
        if (cli->timeout_sec < timeout + 30)
                cli->timeout_sec = timeout + 30;
        /* Right after a start the agent is not up yet: wait as ssh does. */
        r = cli_vm_wait_agent(cli, name, wait_s, NULL);
        if (r < 0)
                return r;
        r = cli_http_call(cli, "POST", path, body, &res);
        if (r == -ENOENT) {
                /* The VM and its agent are there (just checked): what the
                 * agent could not find is the command, which a shell
                 * reports as 127. zvmd's message is on stderr already. */
                cli->exit_status = 127;
                return 0;
        }
        if (r < 0)
                return r;
        if (cli->json)
                return cli_print(cli, res, NULL);
        (void) write_b64(res, "stdout", STDOUT_FILENO);
        (void) write_b64(res, "stderr", STDERR_FILENO);
        if (json_object_object_get_ex(res, "stdout_truncated", &v) && json_object_get_boolean(v))
                log_warning("stdout was truncated");
        if (json_object_object_get_ex(res, "stderr_truncated", &v) && json_object_get_boolean(v))
                log_warning("stderr was truncated");
        if (json_object_object_get_ex(res, "timed_out", &v) && json_object_get_boolean(v)) {
                log_error("the command ran longer than %us and was killed", timeout);
                cli->exit_status = 124;
                return 0;
        }
        if (json_object_object_get_ex(res, "exit_code", &v) && json_object_is_type(v, json_type_int)) {
                cli->exit_status = json_object_get_int(v) & 0xff;
                return 0;
        }
        /* The agent names the signal ("SIGSEGV"); a shell exits 128 + its number. */
        cli->exit_status = 128 + SIGKILL;
        if (json_object_object_get_ex(res, "signal", &v) && json_object_get_string(v)) {
                const char *sname = json_object_get_string(v);

                log_error("the command was killed by %s", sname);
                for (int sig = 1; sig < 32; sig++)
                        if (sigabbrev_np(sig) && streq(startswith(sname, "SIG") ?: sname, sigabbrev_np(sig)))
                                cli->exit_status = 128 + sig;
        }
        return 0;
}
