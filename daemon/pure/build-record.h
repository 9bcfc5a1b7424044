/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * <run>/template-builds/<name>.json: the record of a template build zvmd
 * spawned (pid + start time, what it builds, its log), from which the next
 * zvmd adopts a builder that outlived it (core/template-adopt.c). Kept apart
 * from TemplateBuild so that it can be parsed (and fuzzed) on its own: the
 * file is whatever a killed zvmd or a hand edit left.
 */

#include <stddef.h>
#include <stdint.h>

#define BUILD_RECORD_MAX (16U * 1024U)
/* As many as a build request may name (TEMPLATE_INCLUDE_MAX). */
#define BUILD_RECORD_INCLUDE_MAX 64U

typedef struct BuildRecord {
        int32_t pid;                    /* 0: none */
        uint64_t starttime;             /* clock ticks since boot, with pid = identity */
        char *profile;
        char *suite;                    /* NULL: the profile's default */
        char **include;                 /* NULL-terminated strv, NULL if none */
        char *log;
        int64_t started;                /* CLOCK_REALTIME seconds */
} BuildRecord;

void build_record_done(BuildRecord *rec);

/* The record as one JSON line; NULL on OOM. */
char *build_record_format(const BuildRecord *rec);

/* 0 and *ret filled (owned by the caller: build_record_done()); -EBADMSG
 * when the text is over BUILD_RECORD_MAX, not a JSON object, or lacks the
 * string "profile" or "log"; -ENOMEM. Numbers of the wrong type are 0, a
 * pid outside [1, INT32_MAX] is 0, "include" keeps its first
 * BUILD_RECORD_INCLUDE_MAX strings (other elements are skipped).
 * format → parse is identity. */
int build_record_parse(const char *text, size_t len, BuildRecord *ret);
