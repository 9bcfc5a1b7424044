/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * zvm's pure text helpers beyond the renderers of cli-output.c: numbers as
 * people write them, tidy --json, "did you mean", zvmd's messages in the
 * user's words, and console log text (lines, terminal escapes, following).
 * No I/O, no logging; unit-tested in test-cli-output.c.
 */

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Closes *f (an open_memstream() on *buf) and hands the text over in *ret;
 * -ENOMEM if writing failed. The renderers write with stdio and return
 * the string. */
int cli_memstream_finish(FILE **f, char **buf, char **ret);

#define MEMSTREAM_OPEN(f, buf, size)                                            \
        do {                                                                    \
                f = open_memstream(&(buf), &(size));                            \
                if (!f)                                                         \
                        return -ENOMEM;                                         \
        } while (false)

/* A copy of s (NULL: "") with control characters as '?': text from zvmd or
 * a guest cannot drive the terminal. NULL on OOM. */
char *cli_sanitize_dup(const char *s);

/* A double for people: 15 significant digits, so 16.487279000000001 is
 * "16.487279" and 0.1 + 0.2 is "0.3"; 3 is "3". Returns buf. */
char *cli_format_decimal(char *buf, size_t l, double d);

/* Prepares o (in place) for pretty printing: every double is written as
 * the shortest decimal that reads back as the same double (with ".0" if it
 * has no point, so it stays a float), not as the %.17g text zvmd sent. */
void cli_json_tidy_numbers(json_object *o);

/* Pretty JSON text with each empty array or object on one line: "[\n  ]" →
 * "[]". Literal newlines only occur between tokens in JSON text (strings
 * escape them), so this is safe on any output of json-c. In place. */
void cli_json_collapse_empty(char *s);

/* Optimal-string-alignment distance (insertions, deletions, substitutions,
 * adjacent transpositions: "strat" → "start" is 1). Words longer than 64
 * bytes are SIZE_MAX. */
size_t cli_edit_distance(const char *a, const char *b);

/* The candidate closest to word, if it is close enough to be what was
 * meant (distance 1, or 2 for words of 5 or more bytes), else NULL. Ties:
 * the first. */
const char *cli_closest_word(const char *word, const char *const *candidates, size_t n);

/* zvmd's message in the user's terms: "VM 100" (not "used by VM 100",
 * which names another VM) becomes "VM 't1'" when the user named the VM t1,
 * and "with force" becomes "with --force". New string, NULL on OOM. */
char *cli_message_for_user(const char *message, const char *typed_name);

/* Removes terminal control sequences (CSI "ESC [ ... final", OSC "ESC ] ...
 * BEL or ESC \", two-byte ESC sequences) and control bytes other than \t,
 * \n and \r from s[0..*size), in place; *size gets the new length. An
 * incomplete sequence at the end is removed too. */
void cli_strip_terminal_escapes(char *s, size_t *size);

/* The offset in s[0..size) where its last n lines start (a final line
 * without '\n' counts as one). n == 0: size. */
size_t cli_last_lines(const char *s, size_t size, uint64_t n);

/* Following a log by polling its tail: prev is the tail seen last time,
 * cur the tail now (both the last bytes of a log that only grows). Returns
 * the offset in cur where the new text starts: after prev if cur starts
 * with it, else after the last copy of prev's final 1 KiB (or less) in cur,
 * else 0 (more arrived than one tail holds, or the log started over). */
size_t cli_log_new_offset(const char *prev, size_t prev_size, const char *cur, size_t cur_size);

/* Whether line is QEMU's command line as zvmd writes it first into
 * qemu.log ("qemu-system-x86_64 -name ..."), not something QEMU said (its
 * messages start "qemu-system-x86_64: ..."). */
bool cli_line_is_qemu_argv(const char *line);
