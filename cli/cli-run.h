/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * zvm run: a throwaway VM serving a model (a store name, or a GGUF file
 * added to the store first), started and waited for (bounded), a chat with
 * it (cli-chat.c), and the VM deleted however the chat ends.
 */

#include "cli-chat.h"

#define RUN_WAIT_DEFAULT_SEC 600U       /* TCG: boot ~40 s, loading a 0.5B model minutes */
#define RUN_POLL_MS 500U

typedef struct RunOptions {
        /* model: FILE.gguf or a store name; name: the VM (NULL: run-<pid>) */
        const char *model, *name, *template_name;
        uint64_t memory_mib;
        unsigned cores, wait_sec;
        bool keep;
} RunOptions;

/* Returns what the chat returned, -ECANCELED after a stop signal; the VM
 * is gone either way (unless --keep), or its leftover is said. */
int cli_run(Cli *cli, RunOptions *o, const ChatOptions *c, const volatile sig_atomic_t *stop);
