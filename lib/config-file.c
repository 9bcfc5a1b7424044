/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The file is kept as a flat array of lines, each with its verbatim text.
 * Sections are not separate objects: a section is the run of lines from its
 * "[name]" header to the next header (the main section runs from the first
 * line to the first header). Config files are small (bounded, a few dozen
 * lines in practice), so lookups are linear scans and edits memmove the
 * array; what matters here is that untouched lines are reproduced exactly.
 */

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>

#include "config-file.h"
#include "fd-util.h"
#include "fileio.h"
#include "string-util.h"

typedef enum ConfigLineType {
        CONFIG_LINE_BLANK,
        CONFIG_LINE_COMMENT,
        CONFIG_LINE_SECTION,
        CONFIG_LINE_ENTRY,
} ConfigLineType;

typedef struct ConfigLine {
        ConfigLineType type;
        unsigned line;  /* 1-based line number in the parsed input; 0 if added later */
        char *raw;      /* the line as written, without '\n' */
        char *name;     /* section name (SECTION) or key (ENTRY), else NULL */
        char *value;    /* value with surrounding whitespace removed (ENTRY), else NULL */
} ConfigLine;

struct ConfigFile {
        ConfigLine *lines;
        size_t n_lines;
        size_t n_allocated;

        /* False only while the last line is the parsed input's last line and
         * that had no terminating newline. Lines this module appends always
         * end in a newline. */
        bool final_newline;
};

/* Whitespace inside a line. */
static bool char_is_blank(char c) {
        return c == ' ' || c == '\t';
}

/* ---- character classes ---------------------------------------------------- */

static bool char_is_key(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
}

static bool key_is_valid_n(const char *s, size_t n) {
        if (n == 0 || n > CONFIG_KEY_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!char_is_key(s[i]))
                        return false;
        return true;
}

static bool section_name_is_valid_n(const char *s, size_t n) {
        if (n == 0 || n > CONFIG_SECTION_NAME_MAX)
                return false;
        /* The first character is alphanumeric so that names never look like
         * options, hidden files or relative paths when used elsewhere. */
        if (!char_is_key(s[0]) || s[0] == '_' || s[0] == '-')
                return false;
        for (size_t i = 1; i < n; i++)
                if (!char_is_key(s[i]) && s[i] != '.' && s[i] != ':')
                        return false;
        return true;
}

/* Control characters anywhere in a line, TAB excepted (it is whitespace). */
static bool char_is_control(unsigned char c) {
        return (c < 0x20 && c != '\t') || c == 0x7f;
}

bool config_key_is_valid(const char *key) {
        return key && key_is_valid_n(key, strlen(key));
}

bool config_section_name_is_valid(const char *name) {
        return name && section_name_is_valid_n(name, strlen(name));
}

bool config_value_is_valid(const char *value) {
        size_t l;

        if (!value)
                return false;

        l = strlen(value);
        for (size_t i = 0; i < l; i++)
                if (char_is_control((unsigned char) value[i]) || value[i] == '\t')
                        return false;

        /* The parser drops surrounding whitespace; a value with some would
         * not read back the same. */
        if (l > 0 && (value[0] == ' ' || value[l - 1] == ' '))
                return false;

        return utf8_is_valid_n(value, l);
}

/* ---- line array ------------------------------------------------------------ */

static void config_line_done(ConfigLine *l) {
        free(l->raw);
        free(l->name);
        free(l->value);
        *l = (ConfigLine) {};
}

/* Inserts *l at index idx, taking ownership of its strings on success. */
static int lines_insert(ConfigFile *cf, size_t idx, ConfigLine *l) {
        if (idx > cf->n_lines)
                return -EINVAL;

        if (cf->n_lines >= cf->n_allocated) {
                size_t n = MAX(cf->n_allocated * 2, (size_t) 16);
                ConfigLine *t;

                t = reallocarray(cf->lines, n, sizeof(ConfigLine));
                if (!t)
                        return -ENOMEM;
                cf->lines = t;
                cf->n_allocated = n;
        }

        memmove(cf->lines + idx + 1, cf->lines + idx, (cf->n_lines - idx) * sizeof(ConfigLine));
        cf->lines[idx] = *l;
        cf->n_lines++;
        *l = (ConfigLine) {};

        if (idx == cf->n_lines - 1)
                cf->final_newline = true;
        return 0;
}

/* Removes lines [from, to). */
static void lines_remove(ConfigFile *cf, size_t from, size_t to) {
        if (from >= to || to > cf->n_lines)
                return;

        for (size_t i = from; i < to; i++)
                config_line_done(cf->lines + i);

        memmove(cf->lines + from, cf->lines + to, (cf->n_lines - to) * sizeof(ConfigLine));
        if (to == cf->n_lines)
                cf->final_newline = true;
        cf->n_lines -= to - from;
}

/* Finds the section's body: lines [*ret_begin, *ret_end). For a named
 * section, *ret_begin - 1 is its header. -ENOENT if there is no such section. */
static int section_find(const ConfigFile *cf, const char *section, size_t *ret_begin, size_t *ret_end) {
        size_t begin = 0, end;

        if (section) {
                for (begin = 0; begin < cf->n_lines; begin++)
                        if (cf->lines[begin].type == CONFIG_LINE_SECTION &&
                            streq(cf->lines[begin].name, section))
                                break;
                if (begin >= cf->n_lines)
                        return -ENOENT;
                begin++;
        }

        for (end = begin; end < cf->n_lines; end++)
                if (cf->lines[end].type == CONFIG_LINE_SECTION)
                        break;

        *ret_begin = begin;
        *ret_end = end;
        return 0;
}

static ConfigLine *entry_find(const ConfigFile *cf, size_t begin, size_t end, const char *key) {
        for (size_t i = begin; i < end; i++)
                if (cf->lines[i].type == CONFIG_LINE_ENTRY && streq(cf->lines[i].name, key))
                        return cf->lines + i;
        return NULL;
}

static size_t count_type(const ConfigFile *cf, size_t begin, size_t end, ConfigLineType type) {
        size_t n = 0;

        for (size_t i = begin; i < end; i++)
                if (cf->lines[i].type == type)
                        n++;
        return n;
}

/* ---- construction ---------------------------------------------------------- */

int config_file_new(ConfigFile **ret) {
        ConfigFile *cf;

        assert_return(ret, -EINVAL);

        cf = calloc(1, sizeof(ConfigFile));
        if (!cf)
                return -ENOMEM;
        cf->final_newline = true;

        *ret = cf;
        return 0;
}

ConfigFile *config_file_free(ConfigFile *cf) {
        if (!cf)
                return NULL;

        for (size_t i = 0; i < cf->n_lines; i++)
                config_line_done(cf->lines + i);
        free(cf->lines);
        free(cf);
        return NULL;
}

/* ---- parser ---------------------------------------------------------------- */

static int config_error(ConfigError *e, unsigned line, int r, const char *format, ...) _printf_(4, 5);
static int config_error(ConfigError *e, unsigned line, int r, const char *format, ...) {
        va_list ap;
        int n = 0;

        if (!e)
                return r;

        e->line = line;
        if (line > 0)
                n = snprintf(e->message, sizeof(e->message), "line %u: ", line);
        if (n < 0 || (size_t) n >= sizeof(e->message))
                n = 0;

        va_start(ap, format);
        (void) vsnprintf(e->message + n, sizeof(e->message) - (size_t) n, format, ap);
        va_end(ap);
        return r;
}

typedef struct ParseState {
        size_t section_begin;   /* index of the current section's first body line */
        size_t n_keys;          /* entries in the current section so far */
        size_t n_sections;      /* "[...]" headers so far */
} ParseState;

/* Keys and section names quoted in error messages are cut to at most this
 * many bytes so that the message always fits, and never inside a UTF-8
 * sequence, so that the message stays valid UTF-8 (it may end up in JSON). */
#define QUOTE_MAX 64

static int quote_len(const char *s, size_t n) {
        if (n <= QUOTE_MAX)
                return (int) n;
        n = QUOTE_MAX;
        while (n > 0 && ((unsigned char) s[n] & 0xC0) == 0x80)
                n--;
        return (int) n;
}

static int parse_section_header(ConfigFile *cf, ParseState *st, const char *p, size_t len,
                                unsigned line_no, ConfigLine *l, ConfigError *e) {
        const char *close, *name;
        size_t name_len;

        close = memchr(p, ']', len);
        if (!close)
                return config_error(e, line_no, -EBADMSG, "malformed section header: missing ']'");
        for (const char *t = close + 1; t < p + len; t++)
                if (!char_is_blank(*t))
                        return config_error(e, line_no, -EBADMSG, "unexpected text after section header");

        name = p + 1;
        name_len = (size_t) (close - name);
        if (name_len == 0)
                return config_error(e, line_no, -EBADMSG, "empty section name");
        if (!section_name_is_valid_n(name, name_len))
                return config_error(e, line_no, -EBADMSG,
                                    "invalid section name '%.*s' (expected [A-Za-z0-9][A-Za-z0-9_.:-]*, at most %u characters)",
                                    quote_len(name, name_len), name, CONFIG_SECTION_NAME_MAX);

        for (size_t i = 0; i < cf->n_lines; i++)
                if (cf->lines[i].type == CONFIG_LINE_SECTION &&
                    strlen(cf->lines[i].name) == name_len &&
                    strneq(cf->lines[i].name, name, name_len))
                        return config_error(e, line_no, -EBADMSG,
                                            "duplicate section '[%s]' (first on line %u)",
                                            cf->lines[i].name, cf->lines[i].line);

        if (st->n_sections >= CONFIG_SECTIONS_MAX)
                return config_error(e, line_no, -E2BIG, "too many sections (maximum %u)", CONFIG_SECTIONS_MAX);

        l->type = CONFIG_LINE_SECTION;
        l->name = strndup(name, name_len);
        if (!l->name)
                return config_error(e, 0, -ENOMEM, "out of memory");

        st->n_sections++;
        st->section_begin = cf->n_lines + 1;
        st->n_keys = 0;
        return 0;
}

static int parse_entry(ConfigFile *cf, ParseState *st, const char *p, size_t len,
                       unsigned line_no, ConfigLine *l, ConfigError *e) {
        const char *colon, *v, *ve;
        size_t key_len;
        ConfigLine *dup;

        colon = memchr(p, ':', len);
        if (!colon)
                return config_error(e, line_no, -EBADMSG, "expected 'key: value'");

        key_len = (size_t) (colon - p);
        if (key_len == 0)
                return config_error(e, line_no, -EBADMSG, "empty key");
        if (!key_is_valid_n(p, key_len))
                return config_error(e, line_no, -EBADMSG,
                                    "invalid key '%.*s' (expected [A-Za-z0-9_-], at most %u characters)",
                                    quote_len(p, key_len), p, CONFIG_KEY_MAX);

        /* The value is what lies between the separator's whitespace and the
         * trailing whitespace; the raw line keeps the original spelling. */
        v = colon + 1;
        ve = p + len;
        while (v < ve && char_is_blank(*v))
                v++;
        while (ve > v && char_is_blank(ve[-1]))
                ve--;
        if (memchr(v, '\t', (size_t) (ve - v)))
                return config_error(e, line_no, -EBADMSG, "tab character inside value");

        l->type = CONFIG_LINE_ENTRY;
        l->name = strndup(p, key_len);
        l->value = strndup(v, (size_t) (ve - v));
        if (!l->name || !l->value)
                return config_error(e, 0, -ENOMEM, "out of memory");

        dup = entry_find(cf, st->section_begin, cf->n_lines, l->name);
        if (dup)
                return config_error(e, line_no, -EBADMSG, "duplicate key '%s' (first on line %u)",
                                    dup->name, dup->line);

        if (st->n_keys >= CONFIG_KEYS_MAX)
                return config_error(e, line_no, -E2BIG, "too many keys in section (maximum %u)", CONFIG_KEYS_MAX);

        st->n_keys++;
        return 0;
}

static int parse_line(ConfigFile *cf, ParseState *st, const char *p, size_t len,
                      unsigned line_no, ConfigError *e) {
        _cleanup_(config_line_done) ConfigLine l = { .line = line_no };
        size_t indent;
        int r;

        if (line_no > CONFIG_LINES_MAX)
                return config_error(e, line_no, -E2BIG, "too many lines (maximum %u)", CONFIG_LINES_MAX);
        if (len > CONFIG_LINE_MAX)
                return config_error(e, line_no, -E2BIG, "line too long (%zu bytes, maximum %u)",
                                    len, CONFIG_LINE_MAX);

        /* Bytes that are never valid, whatever the line type. */
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) p[i];

                if (c == '\0')
                        return config_error(e, line_no, -EBADMSG, "NUL byte");
                if (c == '\r')
                        return config_error(e, line_no, -EBADMSG,
                                            "carriage return (CRLF line endings are not supported)");
                if (char_is_control(c))
                        return config_error(e, line_no, -EBADMSG, "control character 0x%02x", c);
        }
        if (!utf8_is_valid_n(p, len))
                return config_error(e, line_no, -EBADMSG, "invalid UTF-8");

        l.raw = strndup(p, len);
        if (!l.raw)
                return config_error(e, 0, -ENOMEM, "out of memory");

        indent = 0;
        while (indent < len && char_is_blank(p[indent]))
                indent++;

        if (indent == len)
                l.type = CONFIG_LINE_BLANK;
        else if (p[indent] == '#')
                l.type = CONFIG_LINE_COMMENT;
        else if (indent > 0)
                return config_error(e, line_no, -EBADMSG,
                                    p[indent] == '[' ? "leading whitespace before section header"
                                                     : "leading whitespace before key");
        else if (p[0] == '[') {
                r = parse_section_header(cf, st, p, len, line_no, &l, e);
                if (r < 0)
                        return r;
        } else {
                r = parse_entry(cf, st, p, len, line_no, &l, e);
                if (r < 0)
                        return r;
        }

        r = lines_insert(cf, cf->n_lines, &l);
        if (r < 0)
                return config_error(e, 0, r, "out of memory");
        return 0;
}

int config_file_parse(const char *data, size_t size, ConfigFile **ret, ConfigError *ret_error) {
        _cleanup_config_file_free_ ConfigFile *cf = NULL;
        ParseState st = {};
        unsigned line_no = 0;
        int r;

        assert_return(data || size == 0, -EINVAL);
        assert_return(ret, -EINVAL);

        if (size > CONFIG_FILE_SIZE_MAX)
                return config_error(ret_error, 0, -EFBIG, "file too large (%zu bytes, maximum %u)",
                                    size, CONFIG_FILE_SIZE_MAX);

        r = config_file_new(&cf);
        if (r < 0)
                return config_error(ret_error, 0, r, "out of memory");

        for (const char *p = data, *end = data + size; p < end;) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t len = nl ? (size_t) (nl - p) : (size_t) (end - p);

                r = parse_line(cf, &st, p, len, ++line_no, ret_error);
                if (r < 0)
                        return r;

                p += len + (nl ? 1 : 0);
        }

        /* Set last: appending lines above resets it. */
        cf->final_newline = size == 0 || data[size - 1] == '\n';

        *ret = TAKE_PTR(cf);
        return 0;
}

int config_file_load(const char *path, ConfigFile **ret, ConfigError *ret_error) {
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r;

        assert_return(path, -EINVAL);
        assert_return(ret, -EINVAL);

        r = read_full_file(path, &data, &size, CONFIG_FILE_SIZE_MAX);
        if (r == -EFBIG)
                return config_error(ret_error, 0, r, "file too large (maximum %u bytes)", CONFIG_FILE_SIZE_MAX);
        if (r < 0) {
                errno = -r;
                return config_error(ret_error, 0, r, "cannot read file: %m");
        }

        return config_file_parse(data, size, ret, ret_error);
}

/* ---- writer ---------------------------------------------------------------- */

/* Size of config_file_format()'s output, without the NUL. */
static size_t config_file_formatted_size(const ConfigFile *cf) {
        size_t n = 0;

        for (size_t i = 0; i < cf->n_lines; i++)
                n += strlen(cf->lines[i].raw) + 1;
        if (cf->n_lines > 0 && !cf->final_newline)
                n--;
        return n;
}

int config_file_format(const ConfigFile *cf, char **ret, size_t *ret_size) {
        size_t size;
        char *buf, *p;

        assert_return(cf, -EINVAL);
        assert_return(ret, -EINVAL);

        size = config_file_formatted_size(cf);
        if (size > CONFIG_FILE_SIZE_MAX)
                return -EFBIG;

        buf = malloc(size + 1);
        if (!buf)
                return -ENOMEM;

        p = buf;
        for (size_t i = 0; i < cf->n_lines; i++) {
                p = stpcpy(p, cf->lines[i].raw);
                if (i + 1 < cf->n_lines || cf->final_newline)
                        *p++ = '\n';
        }
        *p = '\0';

        if (ret_size)
                *ret_size = size;
        *ret = buf;
        return 0;
}

int config_file_save(const ConfigFile *cf, const char *dir, const char *name, mode_t mode) {
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r;

        r = config_file_format(cf, &data, &size);
        if (r < 0)
                return r;

        return write_file_atomic(dir, name, data, size, mode);
}

/* ---- queries ----------------------------------------------------------------- */

const char *config_file_get(const ConfigFile *cf, const char *section, const char *key) {
        size_t begin, end;
        ConfigLine *l;

        assert_return(cf, NULL);
        assert_return(key, NULL);

        if (section_find(cf, section, &begin, &end) < 0)
                return NULL;

        l = entry_find(cf, begin, end, key);
        return l ? l->value : NULL;
}

bool config_file_has_section(const ConfigFile *cf, const char *section) {
        size_t begin, end;

        assert_return(cf, false);

        return section_find(cf, section, &begin, &end) >= 0;
}

int config_file_sections(const ConfigFile *cf, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        int n = 0, r;

        assert_return(cf, -EINVAL);
        assert_return(ret, -EINVAL);

        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;

        for (size_t i = 0; i < cf->n_lines; i++) {
                if (cf->lines[i].type != CONFIG_LINE_SECTION)
                        continue;

                r = strv_extend(&l, cf->lines[i].name);
                if (r < 0)
                        return r;
                n++;
        }

        *ret = TAKE_PTR(l);
        return n;
}

int config_file_next(const ConfigFile *cf, const char *section, size_t *state,
                     const char **ret_key, const char **ret_value) {
        size_t i;

        assert_return(cf, -EINVAL);
        assert_return(state, -EINVAL);

        /* *state is 0 before the first call, else 1 + the index of the line
         * to look at next; 0 is never a valid continuation since the first
         * entry found sets it to at least 2. */
        if (*state == 0) {
                size_t end;

                if (section_find(cf, section, &i, &end) < 0)
                        return -ENOENT;
        } else
                i = *state - 1;

        for (; i < cf->n_lines; i++) {
                const ConfigLine *l = cf->lines + i;

                if (l->type == CONFIG_LINE_SECTION)
                        break;
                if (l->type != CONFIG_LINE_ENTRY)
                        continue;

                *state = i + 2;
                if (ret_key)
                        *ret_key = l->name;
                if (ret_value)
                        *ret_value = l->value;
                return 1;
        }

        *state = SIZE_MAX;
        return 0;
}

/* ---- editing ----------------------------------------------------------------- */

/* The canonical spelling written for a set value. */
static char *entry_format(const char *key, const char *value) {
        return isempty(value) ? strjoin(key, ":") : strjoin(key, ": ", value);
}

static int config_line_new_entry(ConfigLine *l, const char *key, const char *value) {
        *l = (ConfigLine) { .type = CONFIG_LINE_ENTRY };

        l->raw = entry_format(key, value);
        l->name = strdup(key);
        l->value = strdup(value);
        if (!l->raw || !l->name || !l->value) {
                config_line_done(l);
                return -ENOMEM;
        }
        return 0;
}

static int config_line_new_raw(ConfigLine *l, ConfigLineType type, char *raw, const char *name) {
        *l = (ConfigLine) { .type = type, .raw = raw };

        if (!l->raw)
                return -ENOMEM;
        if (name) {
                l->name = strdup(name);
                if (!l->name) {
                        config_line_done(l);
                        return -ENOMEM;
                }
        }
        return 0;
}

int config_file_set(ConfigFile *cf, const char *section, const char *key, const char *value) {
        _cleanup_(config_line_done) ConfigLine entry = {}, header = {}, blank = {};
        size_t begin, end, line_len, added, insert_at;
        ConfigLine *existing;
        int r;

        assert_return(cf, -EINVAL);
        assert_return(!section || config_section_name_is_valid(section), -EINVAL);
        assert_return(config_key_is_valid(key), -EINVAL);
        assert_return(config_value_is_valid(value), -EINVAL);

        line_len = strlen(key) + 2 + strlen(value);
        if (line_len > CONFIG_LINE_MAX)
                return -E2BIG;

        r = section_find(cf, section, &begin, &end);
        if (r >= 0) {
                existing = entry_find(cf, begin, end, key);
                if (existing) {
                        char *raw, *v;

                        if (streq(existing->value, value))
                                return 0; /* Keep the original spelling. */

                        if (config_file_formatted_size(cf) - strlen(existing->raw) + line_len > CONFIG_FILE_SIZE_MAX)
                                return -E2BIG;

                        raw = entry_format(key, value);
                        v = strdup(value);
                        if (!raw || !v) {
                                free(raw);
                                free(v);
                                return -ENOMEM;
                        }

                        free(existing->raw);
                        free(existing->value);
                        existing->raw = raw;
                        existing->value = v;
                        return 0;
                }

                if (count_type(cf, begin, end, CONFIG_LINE_ENTRY) >= CONFIG_KEYS_MAX)
                        return -E2BIG;
                if (cf->n_lines + 1 > CONFIG_LINES_MAX)
                        return -E2BIG;
                if (config_file_formatted_size(cf) + 1 + line_len + 1 > CONFIG_FILE_SIZE_MAX)
                        return -E2BIG;

                /* After the last non-blank line of the section, so that the
                 * blank line(s) before the next section stay where they are. */
                insert_at = end;
                while (insert_at > begin && cf->lines[insert_at - 1].type == CONFIG_LINE_BLANK)
                        insert_at--;

                r = config_line_new_entry(&entry, key, value);
                if (r < 0)
                        return r;
                return lines_insert(cf, insert_at, &entry);
        }

        /* A new section at the end of the file, separated by a blank line. */
        if (count_type(cf, 0, cf->n_lines, CONFIG_LINE_SECTION) >= CONFIG_SECTIONS_MAX)
                return -E2BIG;

        added = cf->n_lines > 0 && cf->lines[cf->n_lines - 1].type != CONFIG_LINE_BLANK;
        if (cf->n_lines + added + 2 > CONFIG_LINES_MAX)
                return -E2BIG;
        if (config_file_formatted_size(cf) + 1 + added + strlen(section) + 3 + line_len + 1 > CONFIG_FILE_SIZE_MAX)
                return -E2BIG;

        if (added) {
                r = config_line_new_raw(&blank, CONFIG_LINE_BLANK, strdup(""), NULL);
                if (r < 0)
                        return r;
        }
        r = config_line_new_raw(&header, CONFIG_LINE_SECTION, strjoin("[", section, "]"), section);
        if (r < 0)
                return r;
        r = config_line_new_entry(&entry, key, value);
        if (r < 0)
                return r;

        /* Make room first so that the three insertions below cannot fail
         * half-way: lines_insert() only allocates when the array is full. */
        if (cf->n_lines + 3 > cf->n_allocated) {
                ConfigLine *t = reallocarray(cf->lines, cf->n_lines + 3, sizeof(ConfigLine));
                if (!t)
                        return -ENOMEM;
                cf->lines = t;
                cf->n_allocated = cf->n_lines + 3;
        }

        if (added)
                assert_se(lines_insert(cf, cf->n_lines, &blank) >= 0);
        assert_se(lines_insert(cf, cf->n_lines, &header) >= 0);
        assert_se(lines_insert(cf, cf->n_lines, &entry) >= 0);
        return 0;
}

int config_file_unset(ConfigFile *cf, const char *section, const char *key) {
        size_t begin, end;
        ConfigLine *l;

        assert_return(cf, -EINVAL);
        assert_return(key, -EINVAL);

        if (section_find(cf, section, &begin, &end) < 0)
                return 0;

        l = entry_find(cf, begin, end, key);
        if (!l)
                return 0;

        lines_remove(cf, (size_t) (l - cf->lines), (size_t) (l - cf->lines) + 1);
        return 1;
}

int config_file_remove_section(ConfigFile *cf, const char *section) {
        size_t begin, end, from;

        assert_return(cf, -EINVAL);
        assert_return(section, -EINVAL);

        if (section_find(cf, section, &begin, &end) < 0)
                return 0;

        from = begin - 1; /* the header */

        /* The last section takes the blank lines that separated it from the
         * previous one along, so no trailing blank lines are left behind. */
        if (end == cf->n_lines)
                while (from > 0 && cf->lines[from - 1].type == CONFIG_LINE_BLANK)
                        from--;

        lines_remove(cf, from, end);
        return 1;
}
