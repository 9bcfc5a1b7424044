/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdint.h>
#include <sys/stat.h>

#include "config-file.h"
#include "fd-util.h"
#include "fileio.h"
#include "string-util.h"
#include "tap.h"

/* A realistic file in the Proxmox VE format, used by several tests. */
static const char pve_sample[] =
        "#Web server\n"
        "# second description line\n"
        "boot: order=scsi0\n"
        "cores: 2\n"
        "memory: 2048\n"
        "name: web\n"
        "net0: virtio=BC:24:11:2E:3B:4F,bridge=vmbr0\n"
        "parent: snap1\n"
        "scsi0: local-lvm:vm-100-disk-0,size=32G\n"
        "\n"
        "[snap1]\n"
        "cores: 1\n"
        "memory: 1024\n"
        "snaptime: 1700000000\n"
        "\n"
        "[special:cloudinit]\n"
        "ipconfig0: ip=dhcp\n";

/* ---- helpers ------------------------------------------------------------------- */

static ConfigFile *parse_str(const char *s, ConfigError *e) {
        ConfigFile *cf = NULL;

        if (config_file_parse(s, strlen(s), &cf, e) < 0)
                return NULL;
        return cf;
}

static char *format(const ConfigFile *cf) {
        char *s = NULL;

        assert_se(config_file_format(cf, &s, NULL) >= 0);
        return s;
}

/* Parses, formats and compares with the input, byte for byte. */
static bool roundtrips(const char *data, size_t size, char **ret_out) {
        _cleanup_config_file_free_ ConfigFile *cf = NULL;
        _cleanup_free_ char *out = NULL;
        size_t out_size;

        if (config_file_parse(data, size, &cf, NULL) < 0)
                return false;
        if (config_file_format(cf, &out, &out_size) < 0)
                return false;
        if (out_size != size || memcmp(out, data, size) != 0 || strlen(out) != out_size) {
                if (ret_out)
                        *ret_out = TAKE_PTR(out);
                return false;
        }
        return true;
}

/* ---- round trip ---------------------------------------------------------------- */

static void test_roundtrip(void) {
        static const struct {
                const char *name, *input;
                const char *section, *key, *value; /* one lookup to check, optional */
        } t[] = {
                { "empty file", "", NULL, "x", NULL },
                { "single newline", "\n", NULL, "x", NULL },
                { "one entry", "memory: 512\n", NULL, "memory", "512" },
                { "no final newline", "memory: 512", NULL, "memory", "512" },
                { "no final newline after comment", "a: 1\n# end", NULL, "a", "1" },
                { "no final newline after header", "a: 1\n[s]", "s", "a", NULL },
                { "no final newline after blank", "a: 1\n  ", NULL, "a", "1" },
                { "pve sample", pve_sample, "snap1", "memory", "1024" },
                { "pve sample main", pve_sample, NULL, "net0", "virtio=BC:24:11:2E:3B:4F,bridge=vmbr0" },
                { "pve cloudinit", pve_sample, "special:cloudinit", "ipconfig0", "ip=dhcp" },
                { "no space after colon", "key:value\n", NULL, "key", "value" },
                { "many spaces", "key:     value   \n", NULL, "key", "value" },
                { "tabs around value", "key:\t\tvalue\t \n", NULL, "key", "value" },
                { "inner spaces kept", "args: -foo  bar  baz\n", NULL, "args", "-foo  bar  baz" },
                { "empty value", "empty:\n", NULL, "empty", "" },
                { "empty value with blanks", "empty:   \t\n", NULL, "empty", "" },
                { "colons and brackets in value", "args: -x [a]: b:c\n", NULL, "args", "-x [a]: b:c" },
                { "whitespace-only lines", "a: 1\n   \n\t\n \t \nb: 2\n", NULL, "b", "2" },
                { "indented comments", "   # indented\n\t#tab\n#\n", NULL, "x", NULL },
                { "comment looks like entry", "# memory: 5\n", NULL, "memory", NULL },
                { "comment with odd text", "#[not a section] : ::\n", NULL, "x", NULL },
                { "header trailing blanks", "[s1]  \t\nk: v\n", "s1", "k", "v" },
                { "empty sections", "[a]\n[b]\n", "b", "x", NULL },
                { "same key in two sections", "a: 1\n[s]\na: 2\n[t]\na: 3\n", "t", "a", "3" },
                { "utf8", "name: Grüße € 😀\n# Beschreibung ä\n", NULL, "name", "Grüße € 😀" },
                { "many blank lines", "\n\n\na: 1\n\n\n\n[s]\n\n\nb: 2\n\n\n", "s", "b", "2" },
                { "comments inside sections", "[s]\n# c1\nk: v\n# c2\n", "s", "k", "v" },
                { "key charset", "Aa_0-z: 1\n", NULL, "Aa_0-z", "1" },
                { "section charset", "[snap-1.2_x:y]\nk: v\n", "snap-1.2_x:y", "k", "v" },
                { "pending section", "[PENDING]\nmemory: 1\n", "PENDING", "memory", "1" },
                { "value with hash", "description: a # b\n", NULL, "description", "a # b" },
        };

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                _cleanup_config_file_free_ ConfigFile *cf = NULL;
                _cleanup_free_ char *out = NULL;
                ConfigError e = {};

                ok(roundtrips(t[i].input, strlen(t[i].input), &out), "round trip: %s", t[i].name);
                if (out)
                        diag("  got '%s'", out);

                /* A parse failure is a failed lookup, not a lookup left out. */
                cf = parse_str(t[i].input, &e);
                if (!cf) {
                        ok(false, "lookup: %s: [%s] %s (the input did not parse: %s)", t[i].name,
                           strnull(t[i].section), t[i].key, e.message);
                        continue;
                }
                is_str(config_file_get(cf, t[i].section, t[i].key), t[i].value, "lookup: %s: [%s] %s",
                       t[i].name, strnull(t[i].section), t[i].key);
        }
}

/* ---- errors -------------------------------------------------------------------- */

static void test_errors(void) {
        static const struct {
                const char *name, *input;
                size_t size;            /* 0: strlen(input) */
                unsigned line;
                int r;
                const char *message;    /* substring of the message */
        } t[] = {
                { "no colon", "memory 512\n", 0, 1, -EBADMSG, "line 1: expected 'key: value'" },
                { "no colon later", "a: 1\nb: 2\n\n# c\nbad line\n", 0, 5, -EBADMSG, "line 5: expected 'key: value'" },
                { "no colon, no newline", "a: 1\nb", 0, 2, -EBADMSG, "expected 'key: value'" },
                { "empty key", ": value\n", 0, 1, -EBADMSG, "empty key" },
                { "space in key", "me mory: 1\n", 0, 1, -EBADMSG, "invalid key 'me mory'" },
                { "space before colon", "memory : 1\n", 0, 1, -EBADMSG, "invalid key" },
                { "dot in key", "a.b: 1\n", 0, 1, -EBADMSG, "invalid key" },
                { "non-ascii key", "grüße: 1\n", 0, 1, -EBADMSG, "invalid key" },
                { "long non-ascii key quoted", "xääääääääääääääääääääääääääääääääääääääääää: 1\n", 0, 1, -EBADMSG, "invalid key 'xäääääääääääääääääääääääääääääää' (" },
                { "key too long", "a234567890123456789012345678901234567890123456789012345678901234x: 1\n", 0, 1, -EBADMSG, "invalid key" },
                { "leading blank before key", "  key: v\n", 0, 1, -EBADMSG, "leading whitespace before key" },
                { "duplicate key", "a: 1\nb: 2\na: 3\n", 0, 3, -EBADMSG, "duplicate key 'a' (first on line 1)" },
                { "duplicate key in section", "a: 1\n[s]\nk: 1\n\nk: 2\n", 0, 5, -EBADMSG, "duplicate key 'k' (first on line 3)" },
                { "duplicate section", "[s]\na: 1\n[t]\n[s]\n", 0, 4, -EBADMSG, "duplicate section '[s]' (first on line 1)" },
                { "missing bracket", "a: 1\n[s\n", 0, 2, -EBADMSG, "missing ']'" },
                { "empty section name", "[]\n", 0, 1, -EBADMSG, "empty section name" },
                { "space in section", "[a b]\n", 0, 1, -EBADMSG, "invalid section name 'a b'" },
                { "section starts with dash", "[-x]\n", 0, 1, -EBADMSG, "invalid section name" },
                { "section name too long", "[a2345678901234567890123456789012345678901234567890123456789012345]\n", 0, 1, -EBADMSG, "invalid section name" },
                { "text after header", "[s] x\n", 0, 1, -EBADMSG, "unexpected text after section header" },
                { "double bracket", "[x]]\n", 0, 1, -EBADMSG, "unexpected text after section header" },
                { "indented header", " [s]\n", 0, 1, -EBADMSG, "leading whitespace before section header" },
                { "CRLF", "a: 1\r\n", 0, 1, -EBADMSG, "carriage return" },
                { "CRLF later", "a: 1\nb: 2\r\n", 0, 2, -EBADMSG, "CRLF" },
                { "CR in comment", "#x\ry\n", 0, 1, -EBADMSG, "carriage return" },
                { "NUL byte", "a: 1\nb: x\0y\n", 11, 2, -EBADMSG, "NUL byte" },
                { "NUL at end", "a: 1\n\0", 6, 2, -EBADMSG, "NUL byte" },
                { "escape sequence", "a: \x1b[31mred\n", 0, 1, -EBADMSG, "control character 0x1b" },
                { "DEL", "#ok\nkey: \x7f\n", 0, 2, -EBADMSG, "control character 0x7f" },
                { "control in comment", "# \x07 bell\n", 0, 1, -EBADMSG, "control character 0x07" },
                { "tab inside value", "a: b\tc\n", 0, 1, -EBADMSG, "tab character inside value" },
                { "invalid utf8", "a: \xff\n", 0, 1, -EBADMSG, "invalid UTF-8" },
                { "truncated utf8", "a: \xc3", 0, 1, -EBADMSG, "invalid UTF-8" },
                { "error after sections", "a: 1\n\n\n\n\n\n[s]\nk: v\nk2\n", 0, 9, -EBADMSG, "line 9: expected 'key: value'" },
        };

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                _cleanup_config_file_free_ ConfigFile *cf = NULL;
                ConfigError e = { .line = 4242 };
                size_t size = t[i].size ?: strlen(t[i].input);
                int r;

                r = config_file_parse(t[i].input, size, &cf, &e);
                is_int(r, t[i].r, "error: %s: return value", t[i].name);
                is_int(e.line, t[i].line, "error: %s: line number", t[i].name);
                ok(strstr(e.message, t[i].message), "error: %s: message '%s'", t[i].name, e.message);
                ok(!cf, "error: %s: no result", t[i].name);
                ok(utf8_is_valid_n(e.message, strlen(e.message)), "error: %s: message is valid UTF-8", t[i].name);
        }
}

static void test_limits(void) {
        _cleanup_free_ char *big = NULL, *longline = NULL, *maxline = NULL, *keys = NULL;
        _cleanup_config_file_free_ ConfigFile *cf = NULL;
        ConfigError e = {};
        size_t n;
        char *p;

        /* The size bound comes first, with line 0. */
        big = malloc(CONFIG_FILE_SIZE_MAX + 2);
        assert_se(big);
        memset(big, '\n', CONFIG_FILE_SIZE_MAX + 1);
        big[CONFIG_FILE_SIZE_MAX + 1] = '\0';
        is_int(config_file_parse(big, CONFIG_FILE_SIZE_MAX + 1, &cf, &e), -EFBIG, "file over the size bound");
        is_int(e.line, 0, "size error has line 0");
        ok(strstr(e.message, "file too large"), "message '%s'", e.message);

        /* Within the size bound but too many lines. */
        is_int(config_file_parse(big, CONFIG_LINES_MAX + 1, &cf, &e), -E2BIG, "too many lines");
        is_int(e.line, CONFIG_LINES_MAX + 1, "line number of the first line too many");
        is_int(config_file_parse(big, CONFIG_LINES_MAX, &cf, &e), 0, "exactly CONFIG_LINES_MAX lines");
        cf = config_file_free(cf);

        /* Line length: "a: " + value. */
        longline = malloc(CONFIG_LINE_MAX + 16);
        assert_se(longline);
        memcpy(longline, "x: 1\na: ", 8);
        memset(longline + 8, 'v', CONFIG_LINE_MAX + 1 - 3);
        n = 8 + CONFIG_LINE_MAX + 1 - 3;
        longline[n] = '\0';
        is_int(config_file_parse(longline, n, &cf, &e), -E2BIG, "line over CONFIG_LINE_MAX");
        is_int(e.line, 2, "line number of the long line");
        ok(strstr(e.message, "line too long"), "message '%s'", e.message);
        is_int(config_file_parse(longline, n - 1, &cf, &e), 0, "line of exactly CONFIG_LINE_MAX bytes");
        cf = config_file_free(cf);

        /* Keys per section. */
        keys = malloc((CONFIG_KEYS_MAX + 1) * 16 + 1);
        assert_se(keys);
        p = keys;
        for (unsigned i = 0; i < CONFIG_KEYS_MAX + 1; i++)
                p += sprintf(p, "k%u: v\n", i);
        is_int(config_file_parse(keys, strlen(keys), &cf, &e), -E2BIG, "too many keys in a section");
        is_int(e.line, CONFIG_KEYS_MAX + 1, "line number of the first key too many");

        /* set() refuses to go over the bounds too. */
        maxline = malloc(CONFIG_LINE_MAX + 1);
        assert_se(maxline);
        memset(maxline, 'v', CONFIG_LINE_MAX);
        maxline[CONFIG_LINE_MAX - 3] = '\0'; /* "a: " + value = CONFIG_LINE_MAX */
        assert_se(config_file_new(&cf) == 0);
        is_int(config_file_set(cf, NULL, "a", maxline), 0, "set a value of maximal line length");
        maxline[CONFIG_LINE_MAX - 3] = 'v';
        maxline[CONFIG_LINE_MAX - 2] = '\0';
        is_int(config_file_set(cf, NULL, "a", maxline), -E2BIG, "set a value over the line bound");
        cf = config_file_free(cf);

        assert_se(config_file_parse(keys, strlen(keys) - strlen("k1024: v\n"), &cf, &e) == 0);
        is_int(config_file_set(cf, NULL, "one-more", "x"), -E2BIG, "set over the keys-per-section bound");
        is_int(config_file_set(cf, NULL, "k5", "changed"), 0, "changing an existing key is still fine");
}

/* ---- editing ------------------------------------------------------------------- */

typedef enum Op { SET, UNSET, REMOVE_SECTION } Op;

static void test_edit(void) {
        static const struct {
                const char *name, *input;
                Op op;
                const char *section, *key, *value;
                int r;
                const char *output;
        } t[] = {
                { "set in place", "#d\na: 1\nb:   2\nc: 3\n", SET, NULL, "b", "5", 0,
                  "#d\na: 1\nb: 5\nc: 3\n" },
                { "same value keeps spelling", "a:1\nb:   2   \n", SET, NULL, "b", "2", 0,
                  "a:1\nb:   2   \n" },
                { "set in place in a section", "a: 1\n\n[s]\na:9\nb: 2\n", SET, "s", "a", "7", 0,
                  "a: 1\n\n[s]\na: 7\nb: 2\n" },
                { "append to main before the blank line", "a: 1\n\n[s]\nx: 1\n", SET, NULL, "c", "3", 0,
                  "a: 1\nc: 3\n\n[s]\nx: 1\n" },
                { "append after trailing comment", "a: 1\n# tail\n\n[s]\n", SET, NULL, "c", "3", 0,
                  "a: 1\n# tail\nc: 3\n\n[s]\n" },
                { "append to a middle section", "[s]\nx: 1\n\n\n[t]\ny: 1\n", SET, "s", "z", "2", 0,
                  "[s]\nx: 1\nz: 2\n\n\n[t]\ny: 1\n" },
                { "append to the last section", "a: 1\n\n[s]\nx: 1\n", SET, "s", "y", "2", 0,
                  "a: 1\n\n[s]\nx: 1\ny: 2\n" },
                { "append to an empty section", "[s]\n\n[t]\n", SET, "s", "k", "v", 0,
                  "[s]\nk: v\n\n[t]\n" },
                { "append to empty main", "[s]\nk: v\n", SET, NULL, "a", "1", 0,
                  "a: 1\n[s]\nk: v\n" },
                { "set in an empty file", "", SET, NULL, "a", "1", 0, "a: 1\n" },
                { "new section", "a: 1\n", SET, "new", "k", "v", 0, "a: 1\n\n[new]\nk: v\n" },
                { "new section after a blank line", "a: 1\n\n", SET, "new", "k", "v", 0, "a: 1\n\n[new]\nk: v\n" },
                { "new section in an empty file", "", SET, "new", "k", "v", 0, "[new]\nk: v\n" },
                { "new section after others", pve_sample, SET, "snap2", "memory", "4096", 0,
                  "#Web server\n# second description line\nboot: order=scsi0\ncores: 2\nmemory: 2048\n"
                  "name: web\nnet0: virtio=BC:24:11:2E:3B:4F,bridge=vmbr0\nparent: snap1\n"
                  "scsi0: local-lvm:vm-100-disk-0,size=32G\n\n[snap1]\ncores: 1\nmemory: 1024\n"
                  "snaptime: 1700000000\n\n[special:cloudinit]\nipconfig0: ip=dhcp\n\n[snap2]\nmemory: 4096\n" },
                { "append without final newline", "a: 1", SET, NULL, "b", "2", 0, "a: 1\nb: 2\n" },
                { "set in place without final newline", "a: 1", SET, NULL, "a", "9", 0, "a: 9" },
                { "set before an unterminated comment", "a: 1\n# x", SET, NULL, "b", "2", 0, "a: 1\n# x\nb: 2\n" },
                { "empty value", "a: 1\n", SET, NULL, "e", "", 0, "a: 1\ne:\n" },
                { "value with inner spaces", "", SET, NULL, "d", "a  b", 0, "d: a  b\n" },
                { "invalid key", "a: 1\n", SET, NULL, "a b", "1", -EINVAL, "a: 1\n" },
                { "empty key", "a: 1\n", SET, NULL, "", "1", -EINVAL, "a: 1\n" },
                { "newline in value", "a: 1\n", SET, NULL, "a", "1\nb: 2", -EINVAL, "a: 1\n" },
                { "leading blank in value", "a: 1\n", SET, NULL, "a", " 1", -EINVAL, "a: 1\n" },
                { "trailing blank in value", "a: 1\n", SET, NULL, "a", "1 ", -EINVAL, "a: 1\n" },
                { "tab in value", "a: 1\n", SET, NULL, "a", "1\t2", -EINVAL, "a: 1\n" },
                { "CR in value", "a: 1\n", SET, NULL, "a", "1\r", -EINVAL, "a: 1\n" },
                { "invalid utf8 value", "a: 1\n", SET, NULL, "a", "\xff", -EINVAL, "a: 1\n" },
                { "invalid section", "a: 1\n", SET, "bad name", "a", "1", -EINVAL, "a: 1\n" },
                { "invalid section 2", "a: 1\n", SET, "[x]", "a", "1", -EINVAL, "a: 1\n" },
                { "unset", "a: 1\nb: 2\nc: 3\n", UNSET, NULL, "b", NULL, 1, "a: 1\nc: 3\n" },
                { "unset absent", "a: 1\n", UNSET, NULL, "b", NULL, 0, "a: 1\n" },
                { "unset in missing section", "a: 1\n", UNSET, "s", "a", NULL, 0, "a: 1\n" },
                { "unset only in its section", "a: 1\n[s]\na: 2\n", UNSET, "s", "a", NULL, 1, "a: 1\n[s]\n" },
                { "unset unterminated last line", "a: 1\nb: 2", UNSET, NULL, "b", NULL, 1, "a: 1\n" },
                { "unset keeps comments", "# d\na: 1\n# c\n", UNSET, NULL, "a", NULL, 1, "# d\n# c\n" },
                { "remove middle section", "a: 1\n\n[s]\nk: v\n\n[t]\nk: w\n", REMOVE_SECTION, "s", NULL, NULL, 1,
                  "a: 1\n\n[t]\nk: w\n" },
                { "remove last section", "a: 1\n\n[s]\nk: v\n\n[t]\nk: w\n", REMOVE_SECTION, "t", NULL, NULL, 1,
                  "a: 1\n\n[s]\nk: v\n" },
                { "remove only section", "[s]\nk: v\n", REMOVE_SECTION, "s", NULL, NULL, 1, "" },
                { "remove missing section", "a: 1\n", REMOVE_SECTION, "s", NULL, NULL, 0, "a: 1\n" },
                { "remove main section", "a: 1\n", REMOVE_SECTION, NULL, NULL, NULL, -EINVAL, "a: 1\n" },
        };

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                _cleanup_config_file_free_ ConfigFile *cf = NULL, *again = NULL;
                _cleanup_free_ char *out = NULL;
                ConfigError e = {};
                int r;

                cf = parse_str(t[i].input, &e);
                if (!ok(cf, "edit: %s: parse input", t[i].name)) {
                        diag("  %s", e.message);
                        continue;
                }

                switch (t[i].op) {
                case SET:
                        r = config_file_set(cf, t[i].section, t[i].key, t[i].value);
                        break;
                case UNSET:
                        r = config_file_unset(cf, t[i].section, t[i].key);
                        break;
                case REMOVE_SECTION:
                        r = config_file_remove_section(cf, t[i].section);
                        break;
                default:
                        r = -EINVAL;
                }

                is_int(r, t[i].r, "edit: %s: return value", t[i].name);
                out = format(cf);
                is_str(out, t[i].output, "edit: %s: output", t[i].name);

                /* Whatever was written must read back, with the new value. */
                again = parse_str(out, &e);
                ok(again, "edit: %s: output parses again%s%s", t[i].name, again ? "" : ": ", again ? "" : e.message);
                if (again && t[i].op == SET && r >= 0)
                        is_str(config_file_get(again, t[i].section, t[i].key), t[i].value,
                               "edit: %s: value reads back", t[i].name);
                if (again && t[i].op == UNSET)
                        ok(!config_file_get(again, t[i].section, t[i].key), "edit: %s: key gone", t[i].name);
        }
}

static void test_sequence(void) {
        _cleanup_config_file_free_ ConfigFile *cf = NULL;
        _cleanup_strv_free_ char **sections = NULL;
        _cleanup_free_ char *out = NULL;
        const char *key, *value;
        size_t state = 0;
        unsigned n = 0;

        assert_se(config_file_new(&cf) == 0);
        is_int(config_file_set(cf, NULL, "name", "web"), 0, "set name");
        is_int(config_file_set(cf, NULL, "memory", "512"), 0, "set memory");
        is_int(config_file_set(cf, "snap1", "memory", "256"), 0, "set in new section snap1");
        is_int(config_file_set(cf, NULL, "cores", "2"), 0, "set cores in main after a section exists");
        is_int(config_file_set(cf, "snap2", "memory", "128"), 0, "set in new section snap2");
        is_int(config_file_set(cf, "snap1", "cores", "1"), 0, "append to snap1");
        is_int(config_file_set(cf, NULL, "memory", "1024"), 0, "change memory");

        out = format(cf);
        is_str(out,
               "name: web\nmemory: 1024\ncores: 2\n\n[snap1]\nmemory: 256\ncores: 1\n\n[snap2]\nmemory: 128\n",
               "file built by a sequence of sets");

        is_int(config_file_sections(cf, &sections), 2, "two sections");
        ok(sections && streq(sections[0], "snap1") && streq(sections[1], "snap2") && !sections[2],
           "sections in file order");
        ok(config_file_has_section(cf, "snap2") && !config_file_has_section(cf, "snap3") &&
           config_file_has_section(cf, NULL), "config_file_has_section");

        CONFIG_FILE_FOREACH(cf, NULL, key, value) {
                static const char *const want[][2] = { { "name", "web" }, { "memory", "1024" }, { "cores", "2" } };

                if (n < ELEMENTSOF(want))
                        ok(streq(key, want[n][0]) && streq(value, want[n][1]), "iteration %u: %s=%s", n, key, value);
                n++;
        }
        is_int(n, 3, "main section has three entries");

        n = 0;
        CONFIG_FILE_FOREACH(cf, "snap1", key, value)
                n++;
        is_int(n, 2, "snap1 has two entries");

        is_int(config_file_next(cf, "nope", &state, &key, &value), -ENOENT, "iterating a missing section");
}

static void test_iterate_empty_section(void) {
        _cleanup_config_file_free_ ConfigFile *cf = NULL;
        const char *key = NULL, *value = NULL;
        size_t state = 0;

        cf = parse_str("# only comments\n[e]\n# c\n[f]\nk: v\n", NULL);
        assert_se(cf);
        is_int(config_file_next(cf, NULL, &state, &key, &value), 0, "main without entries");
        state = 0;
        is_int(config_file_next(cf, "e", &state, &key, &value), 0, "iteration stops at the next header");
        state = 0;
        is_int(config_file_next(cf, "f", &state, &key, &value), 1, "entry in f");
        ok(streq(key, "k") && streq(value, "v"), "f: k=v");
        is_int(config_file_next(cf, "f", &state, &key, &value), 0, "end of f");
        is_int(config_file_next(cf, "f", &state, &key, &value), 0, "stays at the end");
}

static void test_load_save(void) {
        _cleanup_config_file_free_ ConfigFile *cf = NULL, *again = NULL;
        _cleanup_free_ char *path = NULL, *data = NULL;
        char dir[] = "/tmp/test-config-file.XXXXXX";
        ConfigError e = {};
        struct stat st;

        assert_se(mkdtemp(dir));
        path = strjoin(dir, "/100.conf");
        assert_se(path);

        is_int(config_file_load(path, &cf, &e), -ENOENT, "load of a missing file");
        ok(e.line == 0 && strstr(e.message, "No such file"), "message '%s'", e.message);

        assert_se(write_file_atomic(dir, "100.conf", pve_sample, strlen(pve_sample), 0644) == 0);
        is_int(config_file_load(path, &cf, &e), 0, "load");
        is_int(config_file_set(cf, NULL, "memory", "4096"), 0, "set");
        is_int(config_file_save(cf, dir, "100.conf", 0640), 0, "save");
        assert_se(stat(path, &st) == 0);
        is_int(st.st_mode & 0777, 0640 & ~022, "saved with the given mode");
        is_int(config_file_load(path, &again, &e), 0, "load again");
        is_str(config_file_get(again, NULL, "memory"), "4096", "saved value");
        is_str(config_file_get(again, "snap1", "memory"), "1024", "other sections untouched");

        assert_se(write_file_atomic(dir, "bad.conf", "a: 1\nbad\n", 10, 0644) == 0);
        data = strjoin(dir, "/bad.conf");
        assert_se(data);
        again = config_file_free(again);
        is_int(config_file_load(data, &again, &e), -EBADMSG, "load of a bad file");
        is_int(e.line, 2, "line number from load");

        (void) unlink(path);
        (void) unlink(data);
        ok(rmdir(dir) == 0, "no files left behind");
}

/* ---- fuzz ---------------------------------------------------------------------- */

/* splitmix64: a fixed seed makes every run (and every failure) reproducible. */
static uint64_t rng_state = 0x5eed2024ULL;

static uint64_t rng(void) {
        uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
}

static size_t rng_below(size_t n) {
        return n == 0 ? 0 : (size_t) (rng() % n);
}

/* Bytes that matter to the grammar, plus a few that must be rejected. */
static const char fuzz_alphabet[] = "\n\n\n:::   \t##[[]]abcXYZ019_-.=,/\r\x7f\x1b\xc3\xa4\xff\x80";

static bool is_parse_error(int r) {
        return r == -EBADMSG || r == -E2BIG;
}

static size_t mutate(char *buf, size_t len, size_t cap) {
        unsigned n = 1 + (unsigned) rng_below(4);

        for (unsigned k = 0; k < n; k++) {
                size_t pos = rng_below(len + 1);
                char c = (rng_below(50) == 0) ? '\0' : fuzz_alphabet[rng_below(sizeof(fuzz_alphabet) - 1)];

                switch (rng_below(5)) {
                case 0: /* replace */
                        if (pos < len)
                                buf[pos] = c;
                        break;
                case 1: /* insert */
                        if (len < cap) {
                                memmove(buf + pos + 1, buf + pos, len - pos);
                                buf[pos] = c;
                                len++;
                        }
                        break;
                case 2: /* delete */
                        if (pos < len) {
                                memmove(buf + pos, buf + pos + 1, len - pos - 1);
                                len--;
                        }
                        break;
                case 3: { /* duplicate a chunk (repeats keys and headers) */
                        size_t from = rng_below(len + 1), l = MIN(rng_below(40), len - from);
                        if (len + l <= cap) {
                                memmove(buf + pos + l, buf + pos, len - pos);
                                memmove(buf + pos, buf + (from >= pos ? from + l : from), l);
                                len += l;
                        }
                        break;
                }
                case 4: /* truncate */
                        len = pos;
                        break;
                }
        }
        return len;
}

static void test_fuzz(void) {
        const unsigned iterations = 5000;
        unsigned parsed = 0, rejected = 0, bad_roundtrip = 0, bad_error = 0, bad_set = 0;
        size_t cap = sizeof(pve_sample) * 3;
        _cleanup_free_ char *buf = malloc(cap);

        assert_se(buf);

        for (unsigned i = 0; i < iterations; i++) {
                _cleanup_config_file_free_ ConfigFile *cf = NULL, *again = NULL;
                _cleanup_free_ char *out = NULL, *out2 = NULL;
                ConfigError e = { .line = 99999 };
                size_t len, out_size, lines = 1;
                char key[8], value[16];
                const char *section;
                int r;

                len = sizeof(pve_sample) - 1;
                memcpy(buf, pve_sample, len);
                len = mutate(buf, len, cap);

                r = config_file_parse(buf, len, &cf, &e);
                if (r < 0) {
                        char prefix[32];

                        rejected++;
                        for (size_t k = 0; k < len; k++)
                                lines += buf[k] == '\n';
                        (void) snprintf(prefix, sizeof(prefix), "line %u: ", e.line);
                        if (!is_parse_error(r) || e.line == 0 || e.line > lines || !startswith(e.message, prefix) ||
                            strlen(e.message) <= strlen(prefix)) {
                                if (bad_error++ < 5)
                                        diag("  iteration %u: r=%d line=%u message='%s'", i, r, e.line, e.message);
                        }
                        continue;
                }

                parsed++;
                if (config_file_format(cf, &out, &out_size) < 0 || out_size != len || memcmp(out, buf, len) != 0) {
                        if (bad_roundtrip++ < 5)
                                diag("  iteration %u: round trip differs", i);
                        continue;
                }

                /* Edit the mutated file and check the result still parses and
                 * holds the value. */
                (void) snprintf(key, sizeof(key), "k%u", (unsigned) rng_below(4));
                (void) snprintf(value, sizeof(value), "v%llu", (unsigned long long) rng_below(1000));
                section = (const char *[]) { NULL, "snap1", "special:cloudinit", "fresh" }[rng_below(4)];

                r = config_file_set(cf, section, key, value);
                if (r >= 0) {
                        assert_se(config_file_format(cf, &out2, &out_size) >= 0);
                        if (config_file_parse(out2, out_size, &again, &e) < 0 ||
                            !streq_ptr(config_file_get(again, section, key), value)) {
                                if (bad_set++ < 5)
                                        diag("  iteration %u: set %s/%s broke the file: %s", i, strnull(section), key,
                                             e.message);
                        }
                } else if (bad_set++ < 5)
                        diag("  iteration %u: set failed: %d", i, r);
        }

        diag("fuzz: %u parsed, %u rejected", parsed, rejected);
        ok(parsed > iterations / 10 && rejected > iterations / 10, "fuzz exercises both outcomes");
        is_int(bad_roundtrip, 0, "fuzz: every accepted mutation round-trips byte-for-byte");
        is_int(bad_error, 0, "fuzz: every rejection names a plausible line and a message");
        is_int(bad_set, 0, "fuzz: set on accepted mutations yields a parseable file");
}

int main(void) {
        umask(022);

        test_roundtrip();
        test_errors();
        test_limits();
        test_edit();
        test_sequence();
        test_iterate_empty_section();
        test_load_save();
        test_fuzz();
        return done_testing();
}
