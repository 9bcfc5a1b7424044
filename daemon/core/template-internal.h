/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared by template.c (builds, listing) and template-adopt.c (the build
 * records a restarted zvmd adopts); nobody else includes it. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

/* Not template.h (its users include it): a leaf, no cycle with template.c. */
typedef struct Templates Templates;
typedef struct TemplateBuild TemplateBuild;

typedef enum BuildState {
        BUILD_RUNNING,
        BUILD_DONE,
        BUILD_FAILED,
        BUILD_CANCELLED,
} BuildState;

struct TemplateBuild {
        Templates *templates;
        char *name, *profile, *suite;
        char **include;
        char *log_path;
        pid_t pid;
        uint64_t starttime;     /* with pid, names the builder (/proc/PID/stat) */
        int pidfd;
        sd_event_source *exit_source, *timeout_source;
        uint64_t started_mono;
        int64_t started_wall;
        double seconds;
        BuildState state;
        bool cancel;            /* DELETE asked; the builder is still cleaning up */
        bool adopted;           /* spawned by an earlier zvmd: not our child, no exit status */
        char *error;
};

/* template.c */
char *image_path(Templates *t, const char *name);
bool file_exists(const char *path);
TemplateBuild *build_find(Templates *t, const char *name);
TemplateBuild *build_free(TemplateBuild *b);
void build_write_meta(TemplateBuild *b);
int build_on_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata);
int build_on_timeout(sd_event_source *s, uint64_t usec, void *userdata);
unsigned build_timeout_s(void);

/* template-adopt.c: <run>/template-builds/<name>.json */
int build_record_save(TemplateBuild *b);
void build_record_remove(TemplateBuild *b);
/* Takes over the builds an earlier zvmd recorded: a live builder (same
 * pid and start time) as a running build, a finished one by whether its
 * image exists. */
void template_builds_adopt(Templates *t);
