/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The chat prompt of zvm chat and zvm run: one shot (-p) or a conversation
 * read line by line from stdin, each answer streamed to stdout as its
 * tokens arrive (or, with --json, the server's whole answer object).
 */

#include <signal.h>

#include "cli-openai.h"

/* The longest line zvm reads as one message, and the most conversation it
 * sends: older turns are dropped (the system message stays). */
#define CHAT_LINE_MAX (64U * 1024U)
#define CHAT_HISTORY_MAX (1024U * 1024U)

typedef struct ChatOptions {
        const char *prompt;     /* one shot; NULL: read stdin */
        const char *system;     /* system message, or NULL */
        unsigned max_tokens;    /* 0: the server's default */
} ChatOptions;

/* The options of a chat, shared by zvm chat and zvm run. */
enum {
        ARG_CHAT_SYSTEM = ARG_VERB_FIRST + 64,
        ARG_CHAT_MAX_TOKENS,
        ARG_CHAT_TIMEOUT,
};
#define CHAT_OPTIONS                                                            \
        { "prompt",     required_argument, NULL, 'p' },                         \
        { "system",     required_argument, NULL, ARG_CHAT_SYSTEM },             \
        { "max-tokens", required_argument, NULL, ARG_CHAT_MAX_TOKENS },         \
        { "timeout",    required_argument, NULL, ARG_CHAT_TIMEOUT }

/* Takes getopt_long()'s c if it is one of CHAT_OPTIONS (into o, or
 * cli->timeout_sec): 1 if it was, 0 if not, -EINVAL (logged). */
int cli_chat_option(Cli *cli, int c, ChatOptions *o);

/* SIGINT, SIGTERM and SIGHUP set the flag returned (async-signal-safe: the
 * handler only stores), without SA_RESTART, so a blocking read returns
 * and the loops look at it. */
const volatile sig_atomic_t *cli_stop_on_signals(void);

/* What a verb returns for r: a stop signal (-ECANCELED) is exit status
 * 130 as for a shell, said by nothing more; anything else is r. */
int cli_stop_result(Cli *cli, int r);

/* Runs the conversation with target. Returns 0 at the end of stdin (or
 * after the one shot), -ECANCELED when *stop was set, or the error of an
 * answer (logged). */
int cli_chat(const Cli *cli, const OaiTarget *target, const ChatOptions *o, const volatile sig_atomic_t *stop);
