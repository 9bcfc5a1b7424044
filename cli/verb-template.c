/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli-http.h"
#include "cli-util.h"
#include "cli-output.h"
#include "cli-vm.h"
#include "log.h"
#include "string-util.h"

#define FOLLOW_INTERVAL_MS 500
/* Lines of the builder's log shown when a build fails (without --verbose). */
#define FAIL_TAIL_LINES 15

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig) {
        interrupted = 1;
}

/* Template names go into the request path: the daemon's rule, checked
 * here so a '/' or '?' never reaches the URL. */
static int template_path(const char *name, const char *suffix, char **ret) {
        if (!template_name_is_valid(name))
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                       "Invalid template name '%s': use a-z, 0-9, '_', '.', '-' (at most 63, no .img)",
                                       name);
        *ret = strjoin("/templates/", name, strempty(suffix));
        return *ret ? 0 : log_oom();
}

/* The log's complete lines: printed when verbose or when they are the
 * builder's own progress lines ("zvm-mktemplate: ..."); every line is kept
 * in a ring of the last FAIL_TAIL_LINES for a failure report. */
typedef struct LogFollow {
        char *partial;
        char *tail[FAIL_TAIL_LINES];
        size_t n_tail;
        bool verbose;
} LogFollow;

static void follow_line(LogFollow *f, const char *line) {
        if (f->verbose || startswith(line, "zvm-mktemplate:"))
                printf("%s\n", line);
        free(f->tail[f->n_tail % FAIL_TAIL_LINES]);
        f->tail[f->n_tail % FAIL_TAIL_LINES] = strdup(line);
        f->n_tail++;
        fflush(stdout);
}

static int follow_feed(LogFollow *f, const char *data, size_t size) {
        size_t have = f->partial ? strlen(f->partial) : 0;
        _cleanup_free_ char *text = malloc(have + size + 1);
        char *p, *nl;

        if (!text)
                return -ENOMEM;
        if (have > 0)
                memcpy(text, f->partial, have);
        memcpy(text + have, data, size);
        text[have + size] = '\0';
        f->partial = mfree(f->partial);
        for (p = text; (nl = strchr(p, '\n')); p = nl + 1) {
                *nl = '\0';
                follow_line(f, p);
        }
        if (*p)
                f->partial = strdup(p);
        return 0;
}

static void follow_done(LogFollow *f) {
        if (f->partial)
                follow_line(f, f->partial);
        f->partial = mfree(f->partial);
}

static void follow_print_tail(LogFollow *f) {
        size_t n = MIN(f->n_tail, (size_t) FAIL_TAIL_LINES);

        if (f->verbose || n == 0)
                return;
        fprintf(stderr, "Last %zu lines of the build log:\n", n);
        for (size_t i = f->n_tail - n; i < f->n_tail; i++)
                fprintf(stderr, "  %s\n", f->tail[i % FAIL_TAIL_LINES]);
}

static void follow_free(LogFollow *f) {
        free(f->partial);
        for (size_t i = 0; i < FAIL_TAIL_LINES; i++)
                free(f->tail[i]);
}

/* Reads what the log has beyond *offset: 1 if there was some, 0 if not. */
static int follow_poll(const Cli *cli, const char *name, LogFollow *f, uint64_t *offset) {
        _cleanup_free_ char *path = NULL, *base = NULL, *data = NULL;
        char q[48];
        size_t size = 0;
        int r;

        r = template_path(name, "/log", &base);
        if (r < 0)
                return r;
        snprintf(q, sizeof(q), "?offset=%llu", (unsigned long long) *offset);
        path = strjoin(base, q);
        if (!path)
                return log_oom();
        r = cli_http_request_data(cli, "GET", path, NULL, 0, NULL, &data, &size);
        if (r < 0)
                return r;
        *offset += size;
        if (size > 0 && follow_feed(f, data, size) < 0)
                return log_oom();
        return size > 0;
}

static const char *build_state(json_object *t, json_object **ret_build) {
        json_object *b = NULL, *v = NULL;

        (void) json_object_object_get_ex(t, "build", &b);
        *ret_build = b;
        if (b && json_object_object_get_ex(b, "state", &v))
                return json_object_get_string(v);
        return json_object_object_get_ex(t, "state", &v) ? json_object_get_string(v) : "unknown";
}

/* Follows a build until it ends: its progress lines, then the outcome.
 * Ctrl-C cancels the build (DELETE), like stopping a `docker build`. */
static int follow_build(Cli *cli, const char *name, bool verbose) {
        _cleanup_(follow_free) LogFollow f = { .verbose = verbose };
        _cleanup_free_ char *path = NULL;
        struct sigaction sa = { .sa_handler = on_interrupt }, old_int, old_term;
        uint64_t offset = 0;
        int r;

        r = template_path(name, NULL, &path);
        if (r < 0)
                return r;
        (void) sigaction(SIGINT, &sa, &old_int);
        (void) sigaction(SIGTERM, &sa, &old_term);
        for (;;) {
                _cleanup_(json_object_putp) json_object *t = NULL;
                json_object *b = NULL, *v;
                const char *state;

                if (interrupted) {
                        fprintf(stderr, "Interrupted: cancelling the build of %s\n", name);
                        (void) cli_http_call(cli, "DELETE", path, NULL, NULL);
                        r = -ECANCELED;
                        break;
                }
                r = follow_poll(cli, name, &f, &offset);
                if (r < 0)
                        break;
                r = cli_http_call(cli, "GET", path, NULL, &t);
                if (r < 0)
                        break;
                state = build_state(t, &b);
                if (streq(state, "building") || streq(state, "cancelling")) {
                        cli_sleep_ms(FOLLOW_INTERVAL_MS);
                        continue;
                }
                /* Ended: the rest of the log (bounded), then the verdict. */
                for (unsigned k = 0; k < 1000 && follow_poll(cli, name, &f, &offset) > 0; k++)
                        ;
                follow_done(&f);
                if (streq(state, "ready")) {
                        char size[32] = "?";

                        if (json_object_object_get_ex(t, "size", &v))
                                cli_format_bytes(size, sizeof(size), (uint64_t) json_object_get_int64(v));
                        printf("Template %s is ready (%s", name, size);
                        if (b && json_object_object_get_ex(b, "seconds", &v))
                                printf(", built in %.1f s", json_object_get_double(v));
                        printf(")\n");
                        r = 0;
                } else {
                        follow_print_tail(&f);
                        r = log_error_errno(SYNTHETIC_ERRNO(EIO), "Template %s: build %s: %s", name, state,
                                            b && json_object_object_get_ex(b, "error", &v) ? json_object_get_string(v)
                                                                                           : "see the build log");
                }
                break;
        }
        (void) sigaction(SIGINT, &old_int, NULL);
        (void) sigaction(SIGTERM, &old_term, NULL);
        return r;
}

/* zvm template build NAME --profile tiny|standard|llm [--suite S]
 *                    [--include PKG,...] [--detach] [--verbose] */
int verb_template_build(Cli *cli, int argc, char *argv[]) {
        enum { ARG_PROFILE = ARG_VERB_FIRST, ARG_SUITE, ARG_INCLUDE, ARG_DETACH, ARG_VERBOSE };
        static const struct option options[] = {
                VERB_COMMON_OPTIONS,
                { "profile", required_argument, NULL, ARG_PROFILE },
                { "suite",   required_argument, NULL, ARG_SUITE },
                { "include", required_argument, NULL, ARG_INCLUDE },
                { "detach",  no_argument,       NULL, ARG_DETACH },
                { "verbose", no_argument,       NULL, ARG_VERBOSE },
                {}
        };
        _cleanup_(json_object_putp) json_object *body = json_object_new_object(), *answer = NULL;
        _cleanup_strv_free_ char **include = NULL;
        const char *profile = NULL, *suite = NULL;
        bool detach = false, verbose = false;
        int c, r;

        if (!body)
                return log_oom();
        while ((c = getopt_long(argc, argv, "hv", options, NULL)) >= 0)
                switch (c) {
                case ARG_PROFILE:
                        profile = optarg;
                        break;
                case ARG_SUITE:
                        suite = optarg;
                        break;
                case ARG_INCLUDE: {
                        _cleanup_strv_free_ char **l = NULL;

                        if (strv_split(optarg, ", ", &l) < 0)
                                return log_oom();
                        STRV_FOREACH(p, l)
                                if (strv_extend(&include, *p) < 0)
                                        return log_oom();
                        break;
                }
                case ARG_DETACH:
                        detach = true;
                        break;
                case 'v':
                case ARG_VERBOSE:
                        verbose = true;
                        break;
                default:
                        r = verb_common_option(cli, c);
                        if (r != 0)
                                return r;
                }
        r = verb_check_args(cli, argc, argv, 1, 1);
        if (r < 0)
                return r;
        if (!profile)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "--profile tiny|standard|llm is required");

        r = cli_body_put(body, "name", json_object_new_string(argv[optind]));
        if (r >= 0)
                r = cli_body_put(body, "profile", json_object_new_string(profile));
        if (r >= 0 && suite)
                r = cli_body_put(body, "suite", json_object_new_string(suite));
        if (r >= 0 && include) {
                json_object *a = json_object_new_array();

                STRV_FOREACH(p, include)
                        if (a)
                                json_object_array_add(a, json_object_new_string(*p));
                r = cli_body_put(body, "include", a);
        }
        if (r < 0)
                return r;

        r = cli_http_call(cli, "POST", "/templates", body, &answer);
        if (r < 0)
                return r;
        if (cli->json)
                return cli_print(cli, answer, NULL);
        if (detach) {
                /* stderr, like follow_build()'s progress: stdout stays for scripts. */
                log_info("Building template '%s' (profile %s) in zvmd. 'zvm template list' shows its state, "
                         "'zvm template rm %s' cancels it.", argv[optind], profile, argv[optind]);
                return 0;
        }
        return follow_build(cli, argv[optind], verbose);
}

/* zvm template list */
int verb_template_list(Cli *cli, int argc, char *argv[]) {
        int r;

        r = verb_parse_simple(cli, argc, argv, 0, 0);
        if (r != 0)
                return r;
        return cli_call_print(cli, "GET", "/templates", NULL, cli_output_template_list);
}

/* zvm template rm NAME: refused while a VM uses it; cancels a build. */
int verb_template_rm(Cli *cli, int argc, char *argv[]) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = verb_parse_simple(cli, argc, argv, 1, 1);
        if (r != 0)
                return r;
        r = template_path(argv[optind], NULL, &path);
        if (r < 0)
                return r;
        return cli_call_print(cli, "DELETE", path, NULL, NULL);
}
