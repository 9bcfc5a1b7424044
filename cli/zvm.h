/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What zvm's verbs share: the context built from the global options, the
 * verb table's row type, and the helpers every verb file uses (option and
 * argument checks, API calls, printing). A verb file parses its options and
 * calls one helper; the work lives in cli-http.c, cli-vm.c, cli-console.c.
 */

#include <getopt.h>
#include <json-c/json.h>
#include <stdbool.h>

#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

#define CLI_CONNECT_TIMEOUT_SEC 5U
/* How long zvm waits for a zvmd that is starting (its socket missing or
 * refusing while it probes the host, ~0.6 s under TCG) before it says zvmd
 * cannot be reached, and how often it looks. */
#define CLI_START_WAIT_MS 5000U        /* "5 s" in cli-http.c's message */
#define CLI_START_POLL_MS 100U
/* start and shutdown answer only when the VM is up or down. */
#define CLI_REQUEST_TIMEOUT_SEC 120U
/* chat, bench and run: generating under TCG takes minutes (--timeout). */
#define CLI_INFER_TIMEOUT_SEC 600U
/* An upload (zvm model add) that moves no byte for this long is given up. */
#define CLI_UPLOAD_STALL_SEC 120U
/* The largest answer zvm accepts from zvmd. */
#define CLI_RESPONSE_MAX (64U * 1024U * 1024U)

typedef struct Verb Verb;

typedef struct Cli {
        char *run_dir;          /* /run/zvm or <root>/run/zvm: console sockets */
        char *socket_path;      /* zvmd's unix socket (unused with url) */
        const char *url;        /* base URL of zvmd's TCP listener, or NULL */
        const char *token;      /* sent as "Authorization: Bearer" */
        char *token_buf;        /* the token read from a file (erased on exit) */
        const char *ca_file;    /* --ca: check the certificate chain, not a pin */
        bool insecure;          /* --insecure: check nothing */
        bool json;              /* print zvmd's JSON instead of text */
        unsigned timeout_sec;   /* whole request */
        const Verb *verb;       /* the verb being run */
        const char *vm_name;    /* the VM as the user named it, for zvmd's messages (or NULL) */
        int exit_status;        /* set by verbs that pass a guest's exit code through (exec) */
} Cli;

typedef int (*VerbFunction)(Cli *cli, int argc, char *argv[]);

struct Verb {
        const char *name;       /* "list", or two words: "config set" */
        VerbFunction run;
        const char *synopsis;   /* arguments, for usage lines */
        const char *summary;    /* one line for "zvm --help" */
        const char *details;    /* more for "zvm help VERB", or NULL */
};

/* ---- verbs (verb-*.c); argv[0] is "zvm <verb name>" ------------------------- */

int verb_create(Cli *cli, int argc, char *argv[]);
int verb_list(Cli *cli, int argc, char *argv[]);
int verb_show(Cli *cli, int argc, char *argv[]);
int verb_status(Cli *cli, int argc, char *argv[]);
int verb_action(Cli *cli, int argc, char *argv[]);      /* start, stop, kill */
int verb_shutdown(Cli *cli, int argc, char *argv[]);    /* shutdown, reboot */
int verb_delete(Cli *cli, int argc, char *argv[]);
int verb_config_show(Cli *cli, int argc, char *argv[]);
int verb_pending(Cli *cli, int argc, char *argv[]);
int verb_config_set(Cli *cli, int argc, char *argv[]);
int verb_config_unset(Cli *cli, int argc, char *argv[]);
int verb_set_memory(Cli *cli, int argc, char *argv[]);
int verb_console(Cli *cli, int argc, char *argv[]);
int verb_logs(Cli *cli, int argc, char *argv[]);
int verb_host(Cli *cli, int argc, char *argv[]);
int verb_token_create(Cli *cli, int argc, char *argv[]);
int verb_token_list(Cli *cli, int argc, char *argv[]);
int verb_token_delete(Cli *cli, int argc, char *argv[]);
int verb_help(Cli *cli, int argc, char *argv[]);
int verb_chat(Cli *cli, int argc, char *argv[]);
int verb_bench(Cli *cli, int argc, char *argv[]);
int verb_run(Cli *cli, int argc, char *argv[]);
int verb_exec(Cli *cli, int argc, char *argv[]);
int verb_cp(Cli *cli, int argc, char *argv[]);
int verb_vsock_proxy(Cli *cli, int argc, char *argv[]);
int verb_ssh(Cli *cli, int argc, char *argv[]);
int verb_ssh_config(Cli *cli, int argc, char *argv[]);
int verb_template_build(Cli *cli, int argc, char *argv[]);
int verb_template_list(Cli *cli, int argc, char *argv[]);
int verb_model_add(Cli *cli, int argc, char *argv[]);
int verb_model_generate(Cli *cli, int argc, char *argv[]);
int verb_model_list(Cli *cli, int argc, char *argv[]);
int verb_model_show(Cli *cli, int argc, char *argv[]);
int verb_model_rm(Cli *cli, int argc, char *argv[]);
int verb_template_rm(Cli *cli, int argc, char *argv[]);

/* ---- option parsing shared by the verbs (zvm.c) ------------------------------ */

enum {
        ARG_VERB_JSON = 0x1000,         /* verbs' own options start above this */
        ARG_VERB_FIRST,
};

/* Every verb takes --help; --json is also accepted after the verb. */
#define VERB_COMMON_OPTIONS                                                     \
        { "help", no_argument, NULL, 'h' },                                     \
        { "json", no_argument, NULL, ARG_VERB_JSON }

/* Handles a getopt_long() result the verb does not know: --help prints the
 * verb's help and returns 1 (the verb returns that: success), --json sets
 * cli->json and returns 0, anything else is a usage error (-EINVAL, getopt
 * has already said why). */
int verb_common_option(Cli *cli, int c);

/* Checks that min..max positional arguments remain after the options
 * (max < 0: no limit); else logs the verb's usage and returns -EINVAL. */
int verb_check_args(const Cli *cli, int argc, char *argv[], int min, int max);

/* The common case: a verb with no options of its own and min..max
 * positional arguments. Returns 0 to go on, 1 if --help was handled (the
 * verb returns that), or -EINVAL. */
int verb_parse_simple(Cli *cli, int argc, char *argv[], int min, int max);

/* Parses the value of a numeric option: min..max, else a usage error
 * naming option (-EINVAL, logged). */
int verb_parse_uint(const char *arg, const char *option, unsigned min, unsigned max, unsigned *ret);

/* Prints "zvm help VERB" text for one verb to f. */
void verb_print_help(const Verb *verb, FILE *f);
