/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "cli-run.h"
#include "cli-util.h"
#include "log.h"

static int run_parse(Cli *cli, int argc, char *argv[], RunOptions *o, ChatOptions *c) {
        enum { ARG_MODEL = ARG_VERB_FIRST, ARG_NAME, ARG_MEMORY, ARG_CORES, ARG_TEMPLATE, ARG_WAIT, ARG_KEEP };
        static const struct option options[] = {
                VERB_COMMON_OPTIONS,
                { "model",      required_argument, NULL, ARG_MODEL },
                { "name",       required_argument, NULL, ARG_NAME },
                { "memory",     required_argument, NULL, ARG_MEMORY },
                { "cores",      required_argument, NULL, ARG_CORES },
                { "template",   required_argument, NULL, ARG_TEMPLATE },
                { "wait",       required_argument, NULL, ARG_WAIT },
                { "keep",       no_argument,       NULL, ARG_KEEP },
                CHAT_OPTIONS,
                {}
        };
        int ch, r = 0;

        while ((ch = getopt_long(argc, argv, "hp:", options, NULL)) >= 0) {
                r = cli_chat_option(cli, ch, c);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                switch (ch) {
                case ARG_MODEL:         o->model = optarg; break;
                case ARG_NAME:          o->name = optarg; break;
                case ARG_TEMPLATE:      o->template_name = optarg; break;
                case ARG_KEEP:          o->keep = true; break;
                case ARG_MEMORY:
                        r = cli_parse_mib(optarg, &o->memory_mib);
                        if (r < 0)
                                r = log_error_errno(r, "invalid --memory '%s'", optarg);
                        break;
                case ARG_CORES:         r = verb_parse_uint(optarg, "--cores", 1, 256, &o->cores); break;
                case ARG_WAIT:          r = verb_parse_uint(optarg, "--wait", 1, 86400, &o->wait_sec); break;
                default:
                        r = verb_common_option(cli, ch);
                        if (r != 0)
                                return r;
                }
                if (r < 0)
                        return r;
        }
        r = verb_check_args(cli, argc, argv, 0, 0);
        if (r < 0)
                return r;
        if (!o->model)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "zvm run needs --model FILE.gguf|NAME");
        return 0;
}

/* zvm run --model FILE.gguf|NAME [--name VM] [--memory SIZE] [--cores N]
 *         [--template T] [--wait S] [--keep] [chat options] */
int verb_run(Cli *cli, int argc, char *argv[]) {
        const volatile sig_atomic_t *stop = cli_stop_on_signals();
        RunOptions o = { .template_name = "llm", .memory_mib = 1536, .cores = 2, .wait_sec = RUN_WAIT_DEFAULT_SEC };
        ChatOptions c = {};
        int r;

        cli->timeout_sec = CLI_INFER_TIMEOUT_SEC;
        r = run_parse(cli, argc, argv, &o, &c);
        if (r != 0)
                return r;
        return cli_stop_result(cli, cli_run(cli, &o, &c, stop));
}
