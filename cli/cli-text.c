/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <ctype.h>
#include <json-c/printbuf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-text.h"
#include "macro.h"
#include "string-util.h"

#define EDIT_WORD_MAX 64U
#define FOLLOW_ANCHOR_MAX 1024U

/* ---- memstreams ---------------------------------------------------------------- */

int cli_memstream_finish(FILE **f, char **buf, char **ret) {
        int r = 0;

        if (fflush(*f) != 0 || ferror(*f))
                r = -ENOMEM;
        if (fclose(*f) != 0 && r == 0)
                r = -ENOMEM;
        *f = NULL;
        if (r < 0)
                return r;
        *ret = TAKE_PTR(*buf);
        return 0;
}

/* ---- untrusted text ------------------------------------------------------------ */

char *cli_sanitize_dup(const char *s) {
        char *d = strdup(strempty(s));

        if (!d)
                return NULL;
        for (char *p = d; *p; p++)
                if ((unsigned char) *p < ' ' || *p == 0x7f)
                        *p = '?';
        return d;
}

/* ---- numbers ------------------------------------------------------------------ */

char *cli_format_decimal(char *buf, size_t l, double d) {
        /* zvmd's json-c writes doubles with %.17g, which shows the binary
         * rounding (16.487279000000001); people read 15 digits. */
        (void) snprintf(buf, l, "%.15g", d);
        return buf;
}

/* The shortest of %.15g, %.16g, %.17g that reads back as the same double:
 * --json stays exact. */
static char *format_double_exact(char *buf, size_t l, double d) {
        for (int digits = 15; digits <= 17; digits++) {
                (void) snprintf(buf, l, "%.*g", digits, d);
                if (strtod(buf, NULL) == d)
                        break;
        }
        return buf;
}

static int json_double_serialize(json_object *o, struct printbuf *pb, int level, int flags) {
        char buf[64];

        (void) level;
        (void) flags;
        format_double_exact(buf, sizeof(buf) - 2, json_object_get_double(o));
        /* Keep it a float for typed readers: "3" would read back as an integer. */
        if (!strpbrk(buf, ".eEni"))
                strcat(buf, ".0");
        return printbuf_memappend(pb, buf, (int) strlen(buf));
}

void cli_json_tidy_numbers(json_object *o) {
        switch (json_object_get_type(o)) {
        case json_type_double:
                /* Replaces the parser's copy of zvmd's text. */
                json_object_set_serializer(o, json_double_serialize, NULL, NULL);
                break;
        case json_type_object: {
                json_object_object_foreach(o, key, v) {
                        (void) key;
                        cli_json_tidy_numbers(v);
                }
                break;
        }
        case json_type_array:
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        cli_json_tidy_numbers(json_object_array_get_idx(o, i));
                break;
        default:
                break;
        }
}

void cli_json_collapse_empty(char *s) {
        char *w = s;

        for (const char *r = s; *r;) {
                if (*r == '[' || *r == '{') {
                        const char *p = r + 1;

                        while (*p == '\n' || *p == ' ')
                                p++;
                        if (p > r + 1 && *p == (*r == '[' ? ']' : '}')) {
                                *w++ = *r;
                                *w++ = *p;
                                r = p + 1;
                                continue;
                        }
                }
                if (*r == '"') {
                        /* Copy a string whole, so that brackets in it stay. */
                        *w++ = *r++;
                        while (*r && *r != '"') {
                                if (*r == '\\' && r[1])
                                        *w++ = *r++;
                                *w++ = *r++;
                        }
                        if (*r)
                                *w++ = *r++;
                        continue;
                }
                *w++ = *r++;
        }
        *w = '\0';
}

/* ---- words -------------------------------------------------------------------- */

size_t cli_edit_distance(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);
        size_t d[EDIT_WORD_MAX + 1][EDIT_WORD_MAX + 1];

        if (la > EDIT_WORD_MAX || lb > EDIT_WORD_MAX)
                return SIZE_MAX;

        for (size_t i = 0; i <= la; i++)
                d[i][0] = i;
        for (size_t j = 0; j <= lb; j++)
                d[0][j] = j;
        for (size_t i = 1; i <= la; i++)
                for (size_t j = 1; j <= lb; j++) {
                        size_t cost = a[i - 1] != b[j - 1];

                        d[i][j] = MIN(MIN(d[i - 1][j] + 1, d[i][j - 1] + 1), d[i - 1][j - 1] + cost);
                        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                                d[i][j] = MIN(d[i][j], d[i - 2][j - 2] + 1);
                }
        return d[la][lb];
}

const char *cli_closest_word(const char *word, const char *const *candidates, size_t n) {
        size_t best = SIZE_MAX, limit = strlen(word) >= 5 ? 2 : 1;
        const char *found = NULL;

        for (size_t i = 0; i < n; i++) {
                size_t dist = cli_edit_distance(word, candidates[i]);

                if (dist < best) {
                        best = dist;
                        found = candidates[i];
                }
        }
        return best <= limit ? found : NULL;
}

/* ---- zvmd's messages ------------------------------------------------------------ */

static bool string_is_digits(const char *s) {
        if (isempty(s))
                return false;
        for (; *s; s++)
                if (!isdigit((unsigned char) *s))
                        return false;
        return true;
}

char *cli_message_for_user(const char *message, const char *typed_name) {
        _cleanup_free_ char *buf = NULL;
        char *ret = NULL;
        size_t size = 0;
        _cleanup_fclose_ FILE *f = open_memstream(&buf, &size);
        bool rename = !isempty(typed_name) && !string_is_digits(typed_name);

        if (!f)
                return NULL;

        for (const char *p = message; *p;) {
                const char *digits = startswith(p, "VM ");
                size_t nd = digits ? strspn(digits, "0123456789") : 0;

                /* "VM 100" at a word start: zvmd names the VM of the request
                 * by VMID, except where it names another ("used by VM 101"). */
                if (rename && nd > 0 && (p == message || p[-1] == ' ') &&
                    !(p - message >= 3 && strneq(p - 3, "by ", 3)) && !isalnum((unsigned char) digits[nd])) {
                        fprintf(f, "VM '%s'", typed_name);
                        p = digits + nd;
                        continue;
                }
                if (startswith(p, "with force") && !isalnum((unsigned char) p[10])) {
                        fputs("with --force", f);
                        p += 10;
                        continue;
                }
                fputc(*p++, f);
        }
        return cli_memstream_finish(&f, &buf, &ret) < 0 ? NULL : ret;
}

/* ---- console logs --------------------------------------------------------------- */

/* Length of the escape sequence at s[0] == ESC, or 0 if it does not end
 * within s[0..n). */
static size_t escape_length(const char *s, size_t n) {
        size_t i;

        if (n < 2)
                return 0;
        if (s[1] == '[') {              /* CSI: parameters, intermediates, a final byte */
                for (i = 2; i < n; i++)
                        if ((unsigned char) s[i] >= 0x40 && (unsigned char) s[i] <= 0x7e)
                                return i + 1;
                return 0;
        }
        if (s[1] == ']' || s[1] == 'P' || s[1] == '_' || s[1] == '^') {   /* OSC, DCS, ...: up to BEL or ST */
                for (i = 2; i < n; i++) {
                        if (s[i] == '\a')
                                return i + 1;
                        if (s[i] == '\033' && i + 1 < n && s[i + 1] == '\\')
                                return i + 2;
                }
                return 0;
        }
        if ((unsigned char) s[1] >= 0x20 && (unsigned char) s[1] <= 0x2f)  /* ESC ( B and the like */
                return n >= 3 ? 3 : 0;
        return 2;
}

void cli_strip_terminal_escapes(char *s, size_t *size) {
        size_t w = 0, n = *size;

        for (size_t r = 0; r < n;) {
                unsigned char c = (unsigned char) s[r];

                if (c == '\033') {
                        size_t l = escape_length(s + r, n - r);

                        r += l > 0 ? l : n - r;
                        continue;
                }
                if ((c < ' ' && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
                        r++;
                        continue;
                }
                s[w++] = s[r++];
        }
        *size = w;
}

size_t cli_last_lines(const char *s, size_t size, uint64_t n) {
        size_t i = size;

        if (n == 0)
                return size;
        /* A final line without '\n' is a line; its '\n' is not a boundary. */
        if (i > 0 && s[i - 1] == '\n')
                i--;
        while (i > 0) {
                if (s[i - 1] == '\n' && --n == 0)
                        return i;
                i--;
        }
        return 0;
}

size_t cli_log_new_offset(const char *prev, size_t prev_size, const char *cur, size_t cur_size) {
        size_t anchor;
        const char *found = NULL;

        if (prev_size <= cur_size && memcmp(prev, cur, prev_size) == 0)
                return prev_size;
        if (prev_size == 0)
                return 0;

        anchor = MIN(prev_size, (size_t) FOLLOW_ANCHOR_MAX);
        for (const char *p = cur; (size_t) (p - cur) + anchor <= cur_size;) {
                const char *m = memmem(p, cur_size - (size_t) (p - cur), prev + prev_size - anchor, anchor);

                if (!m)
                        break;
                found = m;
                p = m + 1;
        }
        return found ? (size_t) (found - cur) + anchor : 0;
}

bool cli_line_is_qemu_argv(const char *line) {
        size_t l = strcspn(line, " ");
        const char *base = line;

        for (size_t i = 0; i < l; i++)
                if (line[i] == '/')
                        base = line + i + 1;
        return line[l] == ' ' && line[l + 1] == '-' && !memchr(line, ':', l) &&
               strneq(base, "qemu-system-", strlen("qemu-system-"));
}
