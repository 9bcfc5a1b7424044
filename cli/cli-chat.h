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

/* SIGINT, SIGTERM and SIGHUP set the flag returned (async-signal-safe: the
 * handler only stores), without SA_RESTART, so a blocking read returns
 * and the loops look at it. */
const volatile sig_atomic_t *cli_stop_on_signals(void);

/* Runs the conversation with target. Returns 0 at the end of stdin (or
 * after the one shot), -ECANCELED when *stop was set, or the error of an
 * answer (logged). */
int cli_chat(const Cli *cli, const OaiTarget *target, const ChatOptions *o, const volatile sig_atomic_t *stop);
