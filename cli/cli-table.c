/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The aligned tables of zvm's output (cli-output.h declares them). */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-output.h"
#include "cli-text.h"
#include "macro.h"
#include "string-util.h"

/* ---- tables ------------------------------------------------------------------ */

struct CliTable {
        size_t ncols;
        char **header;          /* NULL or ncols strings */
        bool *right;
        char **cells;
        size_t n_cells, allocated;
};

CliTable *cli_table_new(size_t ncols, const char *const *header) {
        _cleanup_(cli_table_freep) CliTable *t = NULL;

        if (ncols == 0)
                return NULL;

        t = calloc(1, sizeof(CliTable));
        if (!t)
                return NULL;
        t->ncols = ncols;
        t->right = calloc(ncols, sizeof(bool));
        if (!t->right)
                return NULL;

        if (header) {
                t->header = calloc(ncols + 1, sizeof(char *));
                if (!t->header)
                        return NULL;
                for (size_t i = 0; i < ncols; i++) {
                        const char *h = header[i];

                        if (h[0] == '>') {
                                t->right[i] = true;
                                h++;
                        }
                        t->header[i] = strdup(h);
                        if (!t->header[i])
                                return NULL;
                }
        }
        return TAKE_PTR(t);
}

CliTable *cli_table_free(CliTable *t) {
        if (!t)
                return NULL;
        if (t->header)
                for (size_t i = 0; i < t->ncols; i++)
                        free(t->header[i]);
        free(t->header);
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t->right);
        return mfree(t);
}

int cli_table_add(CliTable *t, const char *cell) {
        char *c;

        assert_return(t, -EINVAL);

        if (t->n_cells >= t->allocated) {
                size_t n = MAX(t->allocated * 2, (size_t) 16);
                char **p = reallocarray(t->cells, n, sizeof(char *));

                if (!p)
                        return -ENOMEM;
                t->cells = p;
                t->allocated = n;
        }

        c = cli_sanitize_dup(cell ?: "-");
        if (!c)
                return -ENOMEM;
        t->cells[t->n_cells++] = c;
        return 0;
}

/* Display width: UTF-8 code points (continuation bytes do not count). */
static size_t text_width(const char *s) {
        size_t w = 0;

        for (; *s; s++)
                if (((unsigned char) *s & 0xc0) != 0x80)
                        w++;
        return w;
}

/* Writes one row. Blanks are only written once something follows them, so
 * that no line ends in padding. */
static void table_write_row(const CliTable *t, char *const *row, const size_t *width,
                            const char *sep, FILE *f) {
        size_t pending = 0;

        for (size_t i = 0; i < t->ncols; i++) {
                size_t w = text_width(row[i]), pad = width[i] - w;

                if (i > 0)
                        pending += strlen(sep);
                if (t->right[i])
                        pending += pad;
                if (row[i][0] != '\0') {
                        fprintf(f, "%*s%s", (int) pending, "", row[i]);
                        pending = 0;
                }
                if (!t->right[i])
                        pending += pad;
        }
        fputc('\n', f);
}

int cli_table_format_sep(const CliTable *t, const char *sep, char **ret) {
        _cleanup_free_ size_t *width = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        _cleanup_fclose_ FILE *f = NULL;

        assert_return(t && ret, -EINVAL);

        if (t->n_cells % t->ncols != 0)
                return -EINVAL;

        width = calloc(t->ncols, sizeof(size_t));
        if (!width)
                return -ENOMEM;
        for (size_t i = 0; i < t->ncols; i++)
                if (t->header)
                        width[i] = text_width(t->header[i]);
        for (size_t i = 0; i < t->n_cells; i++)
                width[i % t->ncols] = MAX(width[i % t->ncols], text_width(t->cells[i]));

        MEMSTREAM_OPEN(f, buf, size);
        if (t->header)
                table_write_row(t, t->header, width, sep, f);
        for (size_t i = 0; i < t->n_cells; i += t->ncols)
                table_write_row(t, t->cells + i, width, sep, f);

        return cli_memstream_finish(&f, &buf, ret);
}

int cli_table_format(const CliTable *t, char **ret) {
        return cli_table_format_sep(t, "  ", ret);
}

