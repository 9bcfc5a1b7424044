/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What zvm-mkmodel.c shares with mkmodel-disk.c: exit statuses, signal
 * checks, progress lines, JSON output, temporary files. */

#include <json-c/json.h>
#include <stdint.h>

#include "gguf.h"

enum {
        EXIT_OK = 0,
        EXIT_BAD_INPUT = 1,     /* not a usable GGUF, bad shape: the caller's input */
        EXIT_USAGE = 2,
        EXIT_SYSTEM = 3,        /* I/O, a helper failed, out of memory */
        EXIT_NO_SPACE = 4,      /* ENOSPC / EDQUOT */
};

#define CHUNK (1024u * 1024)
#define PROGRESS_MIN (32ull * 1024 * 1024)   /* files smaller than this report no progress */
#define MODEL_NAME "model.gguf"
#define IMAGE_LABEL "zvm-model"
#define CHILD_TIMEOUT_MS (30 * 60 * 1000)

typedef struct Progress {
        uint64_t total;
        unsigned base, span;    /* this phase covers base..base+span percent */
        const char *phase;
        int last;
} Progress;

typedef struct Leftovers {
        char *tmp_file;         /* unlinked */
        char *staged_file;      /* unlinked, before staging_dir */
        char *staging_dir;      /* rmdir'ed */
} Leftovers;

extern int caught_signal;

/* -EINTR once SIGINT/SIGTERM/SIGHUP arrived (blocked, read from a signalfd). */
int check_signal(void);
/* The signalfd, to wait for a signal in poll(). */
int sig_fd_get(void);
/* EXIT_NO_SPACE, 128+signal or EXIT_SYSTEM for a failure r. */
int exit_status(int r);

void progress_phase(Progress *p, uint64_t total, unsigned base, unsigned span, const char *phase);
/* Prints "progress N% PHASE" when N grew (files >= PROGRESS_MIN); check_signal(). */
int progress_update(Progress *p, uint64_t done);

int json_add(json_object *o, const char *key, json_object *v);
int json_add_str(json_object *o, const char *key, const char *s);
int json_add_u64(json_object *o, const char *key, uint64_t v);
int info_to_json(const GgufInfo *info, json_object **ret);
int print_json(json_object *o);

/* 0, or (logged) EXIT_BAD_INPUT / EXIT_SYSTEM. */
int open_model(const char *path, int *ret_fd, GgufInfo **ret_info);

void leftovers_remove(Leftovers *l);
int fsync_dir_of(const char *path);
/* mkostemp() of "<dir>/.<base>.XXXXXX". */
int make_tmp(const char *dir, const char *base, char **ret_path, int *ret_fd);
/* -ENOSPC (logged) when dir has less than need bytes free. */
int check_space(const char *dir, uint64_t need);

int verb_disk(int argc, char **argv);
