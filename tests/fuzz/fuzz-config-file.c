/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lib/config-file: the parser, the editor and the writer of
 * /etc/zvm/vms/<vmid>.conf, which a user may edit by hand.
 *
 * Input: FILE [ '\0' EDIT ( '\0' EDIT )* ]. FILE is parsed; each EDIT is an
 * opcode byte ('s' set, 'u' unset, 'r' remove section) followed by
 * SECTION '\1' KEY '\1' VALUE (an empty SECTION is the main one). The parser
 * rejects NUL, so the split never hides a file the parser would accept.
 *
 * Properties:
 *   - an unmodified parse formats back byte for byte (the documented round
 *     trip), and every entry the iterator shows is what config_file_get()
 *     returns;
 *   - after a successful set, get returns the value;
 *   - whatever the edits, the result formats to a file that parses, and that
 *     parse holds the same sections and entries (the editor never builds a
 *     file the parser would reject) and formats back to the same bytes.
 */
#include "config-file.h"
#include "fuzz.h"
#include "string-util.h"

static void check_entries_equal(const ConfigFile *a, const ConfigFile *b) {
        _cleanup_strv_free_ char **sa = NULL, **sb = NULL;
        int na, nb;

        na = config_file_sections(a, &sa);
        nb = config_file_sections(b, &sb);
        if (na < 0 || nb < 0)
                return; /* OOM */
        FUZZ_CHECK(na == nb);
        for (int i = -1; i < na; i++) {
                const char *sec = i < 0 ? NULL : sa[i];
                const char *key, *value;
                size_t n = 0, m = 0;

                FUZZ_CHECK(i < 0 || streq(sa[i], sb[i]));
                CONFIG_FILE_FOREACH(a, sec, key, value) {
                        const char *v = config_file_get(b, sec, key);

                        FUZZ_CHECK(v && streq(v, value));
                        /* get() finds this very entry: keys are unique. */
                        FUZZ_CHECK(config_file_get(a, sec, key) == value);
                        n++;
                }
                CONFIG_FILE_FOREACH(b, sec, key, value)
                        m++;
                FUZZ_CHECK(n == m);
        }
}

static void apply_edit(ConfigFile *cf, char *edit) {
        char *section, *key, *value;
        const char *v;
        int r;

        section = edit + 1;
        key = strchr(section, '\1');
        if (!key)
                return;
        *key++ = '\0';
        value = strchr(key, '\1');
        if (!value)
                return;
        *value++ = '\0';

        switch (edit[0]) {
        case 's':
                r = config_file_set(cf, isempty(section) ? NULL : section, key, value);
                if (r >= 0) {
                        v = config_file_get(cf, isempty(section) ? NULL : section, key);
                        FUZZ_CHECK(v && streq(v, value));
                } else
                        FUZZ_CHECK(IN_SET(r, -EINVAL, -E2BIG, -EFBIG, -ENOMEM));
                break;
        case 'u':
                r = config_file_unset(cf, isempty(section) ? NULL : section, key);
                if (r >= 0)
                        FUZZ_CHECK(!config_file_get(cf, isempty(section) ? NULL : section, key));
                break;
        case 'r':
                if (!isempty(section)) {
                        r = config_file_remove_section(cf, section);
                        if (r >= 0)
                                FUZZ_CHECK(!config_file_has_section(cf, section));
                }
                break;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_config_file_free_ ConfigFile *cf = NULL, *again = NULL;
        _cleanup_free_ char *out = NULL, *out2 = NULL, *edits = NULL;
        const uint8_t *nul = memchr(data, 0, size);
        size_t file_size = nul ? (size_t) (nul - data) : size, out_size = 0, out2_size = 0;
        ConfigError err = {};
        int r;

        r = config_file_parse((const char *) data, file_size, &cf, &err);
        if (r < 0) {
                FUZZ_CHECK(!cf);
                FUZZ_CHECK(IN_SET(r, -EBADMSG, -EFBIG, -E2BIG, -ENOMEM));
                /* The message is a bounded, terminated string. */
                FUZZ_CHECK(memchr(err.message, 0, sizeof(err.message)));
                return 0;
        }

        r = config_file_format(cf, &out, &out_size);
        if (r < 0)
                return 0;
        FUZZ_CHECK(out_size == file_size && memcmp(out, data, file_size) == 0);
        FUZZ_CHECK(strlen(out) == out_size);

        if (nul) {
                edits = malloc(size - file_size);
                if (!edits)
                        return 0;
                memcpy(edits, nul + 1, size - file_size - 1);
                edits[size - file_size - 1] = '\0';
                for (char *e = edits, *end = edits + (size - file_size - 1); e < end; e += strlen(e) + 1)
                        apply_edit(cf, e);
                out = mfree(out);
                r = config_file_format(cf, &out, &out_size);
                if (r < 0) {
                        FUZZ_CHECK(IN_SET(r, -EFBIG, -ENOMEM));
                        return 0;
                }
        }

        r = config_file_parse(out, out_size, &again, &err);
        if (r == -ENOMEM)
                return 0;
        if (r < 0)
                fprintf(stderr, "reparse failed: %s\n", err.message);
        FUZZ_CHECK(r >= 0);
        check_entries_equal(cf, again);
        check_entries_equal(again, cf);
        r = config_file_format(again, &out2, &out2_size);
        if (r < 0)
                return 0;
        FUZZ_CHECK(out2_size == out_size && memcmp(out, out2, out_size) == 0);
        return 0;
}
