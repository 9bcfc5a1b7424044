/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Proxmox-VE style configuration files (/etc/zvm/vms/<vmid>.conf, modelled
 * on /etc/pve/qemu-server/<vmid>.conf):
 *
 *         # Leading comment lines are the VM description.
 *         name: web
 *         memory: 2048
 *
 *         [snap1]
 *         memory: 1024
 *
 *         [special:cloudinit]
 *         ipconfig0: ip=dhcp
 *
 * Keys before the first "[section]" header belong to the main section
 * (section NULL in this API); each header starts a new section. Values are
 * opaque strings: typed validation of VM settings is the daemon's job.
 *
 * Round trip: the parsed file keeps every line verbatim (comments, blank
 * lines, order, spacing such as "key:value" or "key:   value", and whether
 * the last line ends in a newline), so config_file_format() of an unmodified
 * parse reproduces the input byte-for-byte. Only lines touched by
 * config_file_set() are rewritten, in the canonical "key: value" spelling.
 *
 * Encoding: LF line endings only. CR (i.e. CRLF files), NUL, other control
 * characters except TAB, and invalid UTF-8 are rejected with the line number,
 * rather than preserved: such bytes in a VM config are a mistake, and would
 * otherwise leak into QEMU command lines and JSON.
 *
 * Grammar, per line (TAB counts as whitespace):
 *   blank     whitespace only
 *   comment   optional whitespace, then '#', then anything
 *   section   '[' NAME ']' optional trailing whitespace, NAME matching
 *             [A-Za-z0-9][A-Za-z0-9_.:-]{0,63} (":" for "special:cloudinit")
 *   entry     KEY ':' optional whitespace VALUE optional whitespace, KEY
 *             matching [A-Za-z0-9_-]{1,64} at the very start of the line;
 *             VALUE (possibly empty) contains no control characters
 * Keys are unique within a section, section names unique within a file
 * (both compared case-sensitively).
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "macro.h"

/* Resource bounds; the parser rejects input beyond them and the editing
 * functions refuse to build a file that the parser would reject. */
#define CONFIG_FILE_SIZE_MAX    (1024U * 1024U)  /* bytes */
#define CONFIG_LINE_MAX         8192U            /* bytes per line, without '\n' */
#define CONFIG_LINES_MAX        65536U
#define CONFIG_KEY_MAX          64U
#define CONFIG_SECTION_NAME_MAX 64U
#define CONFIG_SECTIONS_MAX     1024U            /* "[...]" sections per file */
#define CONFIG_KEYS_MAX         1024U            /* keys per section */

typedef struct ConfigFile ConfigFile;

/* Filled in by the parser on failure. line is 1-based, 0 when the error is
 * not about one line (file too big, out of memory, I/O). message is a
 * complete sentence fragment, starting with "line N: " when line > 0,
 * e.g. "line 7: expected 'key: value'". */
typedef struct ConfigError {
        unsigned line;
        char message[256];
} ConfigError;

/* An empty file (formats to ""). */
int config_file_new(ConfigFile **ret);
ConfigFile *config_file_free(ConfigFile *cf);
DEFINE_TRIVIAL_CLEANUP_FUNC(ConfigFile *, config_file_free);
#define _cleanup_config_file_free_ _cleanup_(config_file_freep)

/* Parses size bytes at data (need not be NUL-terminated). Returns 0, or
 * -EBADMSG for syntax errors, -EFBIG when over CONFIG_FILE_SIZE_MAX, -E2BIG
 * when over another bound, -ENOMEM. ret_error (optional) is filled in on
 * failure; *ret is untouched then. */
int config_file_parse(const char *data, size_t size, ConfigFile **ret, ConfigError *ret_error);

/* Reads and parses a file; I/O errors are returned as -errno with line 0. */
int config_file_load(const char *path, ConfigFile **ret, ConfigError *ret_error);

/* Serializes to a new NUL-terminated buffer; *ret_size (optional) excludes
 * the NUL. -EFBIG if the result would exceed CONFIG_FILE_SIZE_MAX. */
int config_file_format(const ConfigFile *cf, char **ret, size_t *ret_size);

/* config_file_format() + write_file_atomic(). */
int config_file_save(const ConfigFile *cf, const char *dir, const char *name, mode_t mode);

/* The value of key in section (NULL = main section), or NULL if absent. The
 * pointer is valid until the file is modified or freed. */
const char *config_file_get(const ConfigFile *cf, const char *section, const char *key);

/* Sets key to value in section (NULL = main). An existing entry is rewritten
 * in place as "key: value" (left alone if the value is unchanged); a new key
 * goes after the last non-blank line of its section, i.e. before the blank
 * line(s) separating it from the next section; a new section is appended at
 * the end of the file after a blank line. Returns 0; -EINVAL for an invalid
 * section name, key or value (control characters, leading or trailing
 * whitespace, invalid UTF-8: a value that would not read back the same);
 * -E2BIG when a bound would be exceeded. */
int config_file_set(ConfigFile *cf, const char *section, const char *key, const char *value);

/* Removes key from section. Returns 1 if it was removed, 0 if absent. */
int config_file_unset(ConfigFile *cf, const char *section, const char *key);

bool config_file_has_section(const ConfigFile *cf, const char *section);

/* Removes a named section with all its lines (including the blank lines
 * that separated it from the next one). Returns 1 if removed, 0 if absent;
 * -EINVAL for section NULL (the main section cannot be removed). */
int config_file_remove_section(ConfigFile *cf, const char *section);

/* Names of the "[...]" sections in file order (main not included), as a
 * new strv. Returns the number of sections. */
int config_file_sections(const ConfigFile *cf, char ***ret);

/* Iterates over the entries of a section in file order. Set *state = 0
 * before the first call. Returns 1 with *ret_key and *ret_value (optional) set,
 * 0 after the last entry, -ENOENT if the section does not exist. Do not
 * modify the file while iterating. */
int config_file_next(const ConfigFile *cf, const char *section, size_t *state,
                     const char **ret_key, const char **ret_value);

/* Loops over the entries of a section:
 *         const char *key, *value;
 *         CONFIG_FILE_FOREACH(cf, "snap1", key, value)
 *                 printf("%s=%s\n", key, value);
 */
#define CONFIG_FILE_FOREACH(cf, section, key, value)                            \
        _CONFIG_FILE_FOREACH(UNIQ, cf, section, key, value)
#define _CONFIG_FILE_FOREACH(q, cf, section, key, value)                        \
        for (size_t UNIQ_T(state, q) = 0;                                       \
             config_file_next((cf), (section), &UNIQ_T(state, q), &(key), &(value)) > 0;)

bool config_key_is_valid(const char *key);
bool config_section_name_is_valid(const char *name);
bool config_value_is_valid(const char *value);
