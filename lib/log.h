/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Logging to stderr, for programs. Library code only ever uses log_debug().
 *
 * Output goes to stderr. When stderr is connected to the journal (the
 * JOURNAL_STREAM environment variable names stderr's device:inode, as systemd
 * sets it for services), each line gets a "<N>" syslog priority prefix that
 * the journal turns into the message priority. Otherwise lines look like
 * "zvmd: message".
 *
 * The *_errno() variants take an errno value (negative, positive or wrapped
 * in SYNTHETIC_ERRNO()), make "%m" in the format print its description and
 * return the negative errno, so that error paths read:
 *
 *         if (r < 0)
 *                 return log_error_errno(r, "Failed to open %s: %m", path);
 *
 * A message is always one line: control characters in it (a newline in a
 * guest-supplied string, say) become spaces, so no input can forge a line.
 *
 * All log functions preserve errno.
 */

#include <stdarg.h>
#include <syslog.h>

#include "macro.h"

/* Largest formatted message; longer messages are truncated. */
#define LOG_MESSAGE_MAX 4096

int log_get_max_level(void);
void log_set_max_level(int level);

/* The "name: " in front of each line; default program_invocation_short_name.
 * For programs whose file name is not the name they should log under (the
 * initrd's /init). The string is not copied. */
void log_set_program_name(const char *name);

/* Parses "emerg", "alert", "crit", "err"/"error", "warning"/"warn", "notice",
 * "info", "debug" or a number 0..7. Returns the level or -EINVAL. */
int log_parse_level(const char *s);
const char *log_level_to_string(int level);

/* Reads ZVM_LOG_LEVEL (if set) and re-checks whether stderr is the journal.
 * Returns 0, or -EINVAL if ZVM_LOG_LEVEL is set but invalid (the level is
 * then left unchanged; the caller decides whether to complain). */
int log_setup_from_env(void);

/* Whether the next message will use the journal "<N>" prefix. */
bool log_stderr_is_journal(void);

int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *format, ...) _printf_(6, 7);
int log_internalv(int level, int error, const char *file, int line, const char *func,
                  const char *format, va_list ap) _printf_(6, 0);

/* Level check before evaluating the arguments, so that disabled debug
 * messages cost nothing; level and error are evaluated exactly once. */
#define log_full_errno(level, error, ...)                                       \
        _ZVM_LOG_FULL_ERRNO(UNIQ, level, error, __VA_ARGS__)
#define _ZVM_LOG_FULL_ERRNO(q, level, error, ...)                               \
        ({                                                                      \
                int UNIQ_T(L, q) = (level), UNIQ_T(E, q) = (error);             \
                log_get_max_level() >= UNIQ_T(L, q)                             \
                        ? log_internal(UNIQ_T(L, q), UNIQ_T(E, q), __FILE__,    \
                                       __LINE__, __func__, __VA_ARGS__)         \
                        : -ERRNO_VALUE(UNIQ_T(E, q));                           \
        })

#define log_full(level, ...) ((void) log_full_errno((level), 0, __VA_ARGS__))

#define log_debug(...)   log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)    log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...)  log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...)   log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(error, ...)   log_full_errno(LOG_DEBUG, (error), __VA_ARGS__)
#define log_info_errno(error, ...)    log_full_errno(LOG_INFO, (error), __VA_ARGS__)
#define log_notice_errno(error, ...)  log_full_errno(LOG_NOTICE, (error), __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, (error), __VA_ARGS__)
#define log_error_errno(error, ...)   log_full_errno(LOG_ERR, (error), __VA_ARGS__)

#define log_oom() log_error_errno(SYNTHETIC_ERRNO(ENOMEM), "Out of memory.")
