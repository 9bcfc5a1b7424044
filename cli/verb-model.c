/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* zvm model add|generate|list|show|rm: the model store (/models). */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli-http.h"
#include "cli-output.h"
#include "cli-util.h"
#include "cli-vm.h"
#include "fd-util.h"
#include "log.h"
#include "string-util.h"

#define MODEL_POLL_MS 300
/* Uploads from this size on show their progress (as zvm-mkmodel does). */
#define MODEL_PROGRESS_MIN (32ULL << 20)

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig) {
        interrupted = 1;
}

/* Model names go into the request path: zvmd's rule, checked here so a '/'
 * or '?' never reaches the URL. */
static int model_path(const char *name, char **ret) {
        if (!string_is_safe_name(name))
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                       "Invalid model name '%s': use [A-Za-z0-9][A-Za-z0-9._-], at most 63, no \"..\"",
                                       name);
        *ret = strjoin("/models/", name);
        return *ret ? 0 : log_oom();
}

/* Waits for an add to end: "ready" (0) or "failed" (its reason). Ctrl-C
 * cancels it (DELETE), which leaves nothing in the store. */
static int follow_add(Cli *cli, const char *name) {
        _cleanup_free_ char *path = NULL;
        struct sigaction sa = { .sa_handler = on_interrupt }, old_int, old_term;
        bool said = false;
        int r;

        r = model_path(name, &path);
        if (r < 0)
                return r;
        (void) sigaction(SIGINT, &sa, &old_int);
        (void) sigaction(SIGTERM, &sa, &old_term);
        for (;;) {
                _cleanup_(json_object_putp) json_object *m = NULL;
                const char *state, *step;

                if (interrupted) {
                        fprintf(stderr, "Interrupted: cancelling the add of %s\n", name);
                        (void) cli_http_call(cli, "DELETE", path, NULL, NULL);
                        r = -ECANCELED;
                        break;
                }
                r = cli_http_call(cli, "GET", path, NULL, &m);
                if (r < 0)
                        break;
                state = json_object_get_string(json_object_object_get(m, "state"));
                if (streq_ptr(state, "adding")) {
                        step = json_object_get_string(json_object_object_get(m, "step"));
                        if (!said && step)
                                log_info("Model %s: %s…", name, step);
                        said = said || streq_ptr(step, "making the disk");
                        cli_sleep_ms(MODEL_POLL_MS);
                        continue;
                }
                if (streq_ptr(state, "ready")) {
                        char size[CLI_FORMAT_MAX] = "?";

                        cli_format_bytes(size, sizeof(size),
                                         (uint64_t) json_object_get_int64(json_object_object_get(m, "size")));
                        printf("Model %s is ready (%s %s, %s)\n", name,
                               strnull(json_object_get_string(json_object_object_get(m, "architecture"))),
                               strnull(json_object_get_string(json_object_object_get(m, "quant"))), size);
                        r = 0;
                } else
                        r = log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Model %s not added: %s", name,
                                            strnull(json_object_get_string(json_object_object_get(m, "error"))));
                break;
        }
        (void) sigaction(SIGINT, &old_int, NULL);
        (void) sigaction(SIGTERM, &old_term, NULL);
        return r;
}

/* The default name of FILE: its base name without ".gguf". */
static int default_name(const char *file, char **ret) {
        const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
        size_t l = strlen(base);
        _cleanup_free_ char *n = strndup(base, l > 5 && streq(base + l - 5, ".gguf") ? l - 5 : l);

        if (!n)
                return log_oom();
        if (!string_is_safe_name(n))
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "'%s' is not a usable model name; give one with --name",
                                       n);
        *ret = TAKE_PTR(n);
        return 0;
}

/* zvm model add FILE.gguf [--name N] [--detach] */
int verb_model_add(Cli *cli, int argc, char *argv[]) {
        enum { ARG_NAME = ARG_VERB_FIRST, ARG_DETACH };
        static const struct option options[] = {
                VERB_COMMON_OPTIONS,
                { "name",   required_argument, NULL, ARG_NAME },
                { "detach", no_argument,       NULL, ARG_DETACH },
                {}
        };
        _cleanup_(json_object_putp) json_object *answer = NULL;
        _cleanup_free_ char *name = NULL, *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        bool detach = false;
        struct stat st;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_NAME:
                        name = strdup(optarg);
                        if (!name)
                                return log_oom();
                        break;
                case ARG_DETACH:
                        detach = true;
                        break;
                default:
                        r = verb_common_option(cli, c);
                        if (r != 0)
                                return r;
                }
        r = verb_check_args(cli, argc, argv, 1, 1);
        if (r < 0)
                return r;
        if (!name) {
                r = default_name(argv[optind], &name);
                if (r < 0)
                        return r;
        }
        r = model_path(name, &path);
        if (r < 0)
                return r;
        /* zvm reads the file and sends it: zvmd never opens a path a client names. */
        fd = open(argv[optind], O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return log_error_errno(errno, "Cannot open %s: %m", argv[optind]);
        if (fstat(fd, &st) < 0)
                return log_error_errno(errno, "Cannot stat %s: %m", argv[optind]);
        if (!S_ISREG(st.st_mode) || st.st_size == 0)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "%s is not a regular, non-empty file", argv[optind]);

        r = cli_http_upload(cli, path, fd, (uint64_t) st.st_size, argv[optind],
                            (uint64_t) st.st_size >= MODEL_PROGRESS_MIN, &answer);
        if (r < 0)
                return r;
        if (detach) {
                if (cli->json)
                        return cli_print(cli, answer, NULL);
                log_info("Adding model '%s' in zvmd; 'zvm model show %s' shows its state.", name, name);
                return 0;
        }
        r = follow_add(cli, name);
        if (r >= 0 && cli->json)
                return cli_call_print(cli, "GET", path, NULL, NULL);
        return r;
}

/* zvm model generate NAME --shape S [--quant q8_0|q4_0] [--detach] */
int verb_model_generate(Cli *cli, int argc, char *argv[]) {
        enum { ARG_SHAPE = ARG_VERB_FIRST, ARG_QUANT, ARG_DETACH };
        static const struct option options[] = {
                VERB_COMMON_OPTIONS,
                { "shape",  required_argument, NULL, ARG_SHAPE },
                { "quant",  required_argument, NULL, ARG_QUANT },
                { "detach", no_argument,       NULL, ARG_DETACH },
                {}
        };
        _cleanup_(json_object_putp) json_object *body = json_object_new_object(), *answer = NULL;
        _cleanup_free_ char *path = NULL;
        const char *shape = NULL, *quant = "q8_0";
        bool detach = false;
        int c, r;

        if (!body)
                return log_oom();
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_SHAPE:
                        shape = optarg;
                        break;
                case ARG_QUANT:
                        quant = optarg;
                        break;
                case ARG_DETACH:
                        detach = true;
                        break;
                default:
                        r = verb_common_option(cli, c);
                        if (r != 0)
                                return r;
                }
        r = verb_check_args(cli, argc, argv, 1, 1);
        if (r < 0)
                return r;
        if (!shape)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                       "--shape tiny|qwen2.5-0.5b|qwen2.5-1.5b|llama3.2-1b|custom:... is required");
        r = model_path(argv[optind], &path);
        if (r < 0)
                return r;
        r = cli_body_put(body, "name", json_object_new_string(argv[optind]));
        if (r >= 0)
                r = cli_body_put(body, "shape", json_object_new_string(shape));
        if (r >= 0)
                r = cli_body_put(body, "quant", json_object_new_string(quant));
        if (r < 0)
                return r;
        r = cli_http_call(cli, "POST", "/models", body, &answer);
        if (r < 0)
                return r;
        if (detach) {
                if (cli->json)
                        return cli_print(cli, answer, NULL);
                log_info("Generating model '%s' in zvmd; 'zvm model show %s' shows its state.", argv[optind],
                         argv[optind]);
                return 0;
        }
        r = follow_add(cli, argv[optind]);
        if (r >= 0 && cli->json)
                return cli_call_print(cli, "GET", path, NULL, NULL);
        return r;
}

/* zvm model list */
int verb_model_list(Cli *cli, int argc, char *argv[]) {
        int r = verb_parse_simple(cli, argc, argv, 0, 0);

        if (r != 0)
                return r;
        return cli_call_print(cli, "GET", "/models", NULL, cli_output_model_list);
}

/* zvm model show NAME */
int verb_model_show(Cli *cli, int argc, char *argv[]) {
        _cleanup_free_ char *path = NULL;
        int r = verb_parse_simple(cli, argc, argv, 1, 1);

        if (r != 0)
                return r;
        r = model_path(argv[optind], &path);
        if (r < 0)
                return r;
        return cli_call_print(cli, "GET", path, NULL, cli_output_model_show);
}

/* zvm model rm NAME: refused while a VM's config names it. */
int verb_model_rm(Cli *cli, int argc, char *argv[]) {
        _cleanup_free_ char *path = NULL;
        int r = verb_parse_simple(cli, argc, argv, 1, 1);

        if (r != 0)
                return r;
        r = model_path(argv[optind], &path);
        if (r < 0)
                return r;
        return cli_call_print(cli, "DELETE", path, NULL, NULL);
}
