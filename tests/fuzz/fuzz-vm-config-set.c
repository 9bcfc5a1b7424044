/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * daemon/pure/vm-config: vm_config_set() and vm_config_unset(), what
 * `zvm config set/unset` and a PATCH go through, key by key.
 *
 * Input: lines of "KEY=VALUE" (set) or "KEY" (unset), applied in order to a
 * realistic config; the first LINES_MAX of them (each line formats the whole
 * config twice, so long inputs of short lines were what made this target
 * slow; the edits that matter interact within a few lines).
 *
 * Properties (vm-config.h's contract):
 *   - refused: the file is byte-for-byte what it was, with a one-line reason;
 *   - set accepted: config_file_get() returns the value, and the file still
 *     formats and parses; unset accepted: the key is gone;
 *   - "name" can never be unset, unknown keys are -ENOKEY.
 */
#include "fuzz.h"
#include "string-util.h"
#include "vm-config-base.h"
#include "vm-config.h"

#define LINES_MAX 32U

static void apply_line(ConfigFile *cf, char *line) {
        _cleanup_free_ char *before = NULL, *after = NULL, *err = NULL;
        char *value = strchr(line, '=');
        int r;

        before = fuzz_config_text(cf);
        if (!before)
                return;

        if (value) {
                *value++ = '\0';
                r = vm_config_set(cf, line, value, &err);
                if (r >= 0) {
                        const char *v = config_file_get(cf, NULL, line);

                        FUZZ_CHECK(v && streq(v, value));
                        FUZZ_CHECK(vm_config_key_known(line));
                        return;
                }
        } else {
                r = vm_config_unset(cf, line, &err);
                if (r >= 0) {
                        FUZZ_CHECK(!config_file_get(cf, NULL, line));
                        FUZZ_CHECK(!streq(line, "name"));
                        return;
                }
        }
        FUZZ_CHECK(IN_SET(r, -ENOKEY, -EINVAL, -ENOMEM));
        FUZZ_CHECK(r != -ENOKEY || !vm_config_key_known(line));
        FUZZ_CHECK(r == -ENOMEM || (err && !strchr(err, '\n')));
        after = fuzz_config_text(cf);
        FUZZ_CHECK(!after || streq(before, after));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_config_file_free_ ConfigFile *cf = NULL, *again = NULL;
        _cleanup_free_ char *text = NULL, *out = NULL;
        char *line, *save = NULL;
        unsigned n_lines = 0;
        int r;

        text = fuzz_strndup(data, size);
        if (!text)
                return 0;
        cf = fuzz_vm_config_base_new();
        if (!cf)
                return 0;

        for (line = strtok_r(text, "\n", &save); line && n_lines < LINES_MAX;
             line = strtok_r(NULL, "\n", &save), n_lines++)
                apply_line(cf, line);

        /* What the edits built is a file the parser takes back. */
        out = fuzz_config_text(cf);
        if (!out)
                return 0;
        r = config_file_parse(out, strlen(out), &again, NULL);
        FUZZ_CHECK(r >= 0 || r == -ENOMEM);
        return 0;
}
