/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <ctype.h>
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include "api.h"
#include "ssh-key.h"
#include "string-util.h"
#include "vm-config.h"
#include "vm-config-internal.h"

/* ---- messages ------------------------------------------------------------------- */

const char *vmc_quote(const char *v, char buf[static QUOTE_BUF]) {
        char *p = buf;
        size_t i;

        *p++ = '"';
        for (i = 0; v[i] && i < QUOTE_CUT; i++) {
                unsigned char ch = (unsigned char) v[i];

                if (ch == '"' || ch == '\\') {
                        *p++ = '\\';
                        *p++ = (char) ch;
                } else if (ch < 0x20 || ch >= 0x7f)
                        p += sprintf(p, "\\x%02x", ch);
                else
                        *p++ = (char) ch;
        }
        *p++ = '"';
        if (v[i])
                p = stpcpy(p, "...");
        *p = '\0';
        return buf;
}

/* A key for a message: as is if it is a valid config key, else quoted. */
static const char *key_for_message(const char *key, char buf[static QUOTE_BUF]) {
        if (config_key_is_valid(key) && strlen(key) < QUOTE_BUF)
                return strcpy(buf, key);
        return vmc_quote(key, buf);
}

/* Sets *reason to a new formatted string. Returns -EINVAL, or -ENOMEM if
 * even the message cannot be allocated. */
int vmc_reason_set(char **reason, const char *format, ...) {
        va_list ap;
        char *s;
        int r;

        va_start(ap, format);
        r = vasprintf(&s, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;

        free(*reason);
        *reason = s;
        return -EINVAL;
}

/* Composes "<key>: <reason>" into *ret_error (if given). Returns r. */
int vmc_error_for_key(int r, const char *key, const char *reason, char **ret_error) {
        char kb[QUOTE_BUF];
        char *s;

        if (!ret_error)
                return r;
        if (asprintf(&s, "%s: %s", key_for_message(key, kb), reason ?: "invalid") < 0)
                return -ENOMEM;
        free(*ret_error);
        *ret_error = s;
        return r;
}

int vmc_error_set(int r, char **ret_error, const char *format, ...) {
        va_list ap;
        char *s;
        int k;

        if (!ret_error)
                return r;
        va_start(ap, format);
        k = vasprintf(&s, format, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;
        free(*ret_error);
        *ret_error = s;
        return r;
}

/* ---- value helpers -------------------------------------------------------------- */

int vmc_set_string(char **field, const char *value) {
        char *s = NULL;

        if (value) {
                s = strdup(value);
                if (!s)
                        return -ENOMEM;
        }
        free(*field);
        *field = s;
        return 0;
}

static int parse_range(const char *value, uint64_t min, uint64_t max, const char *unit, uint64_t *ret,
                       char **reason) {
        char qb[QUOTE_BUF];
        uint64_t v;

        if (safe_atou64(value, &v) < 0 || v < min || v > max)
                return vmc_reason_set(reason, "must be an integer between %" PRIu64 " and %" PRIu64 "%s (got %s)",
                                  min, max, unit, vmc_quote(value, qb));
        *ret = v;
        return 0;
}

static int parse_bool01(const char *value, bool *ret, char **reason) {
        char qb[QUOTE_BUF];

        if (streq(value, "0") || streq(value, "1")) {
                *ret = value[0] == '1';
                return 0;
        }
        return vmc_reason_set(reason, "must be 0 or 1 (got %s)", vmc_quote(value, qb));
}

/* Absolute paths of images, kernels, initrds: '/' first, printable ASCII
 * without whitespace or ',' (',' separates options in disk and rootfs
 * values and in QEMU's -drive; refusing it everywhere keeps the rule
 * simple). */
static int check_path(const char *value, char **reason) {
        char qb[QUOTE_BUF];

        if (value[0] != '/')
                return vmc_reason_set(reason, "must be an absolute path (got %s)", vmc_quote(value, qb));
        if (strlen(value) > VM_PATH_MAX)
                return vmc_reason_set(reason, "path too long (at most %u bytes)", VM_PATH_MAX);
        for (const char *p = value; *p; p++)
                if (*p <= ' ' || *p >= 0x7f || *p == ',')
                        return vmc_reason_set(reason,
                                          "path must be printable ASCII without whitespace or ',' (got %s)",
                                          vmc_quote(value, qb));
        return 0;
}

/* "a=b" → *ret_key = "a" (malloc'd), *ret_value = "b" (into opt). */
int vmc_option_split(const char *opt, char **ret_key, const char **ret_value) {
        const char *eq = strchr(opt, '=');
        char *k;

        if (!eq)
                return -EINVAL;
        k = strndup(opt, (size_t) (eq - opt));
        if (!k)
                return -ENOMEM;
        *ret_key = k;
        *ret_value = eq + 1;
        return 0;
}

/* Splits "first,opt=v,opt=v" strictly: no empty fields. */
int vmc_option_list_split(const char *value, char ***ret, char **reason) {
        char qb[QUOTE_BUF];
        size_t l = strlen(value);
        int r;

        if (l == 0 || value[0] == ',' || value[l - 1] == ',' || strstr(value, ",,"))
                return vmc_reason_set(reason, "empty element in %s", vmc_quote(value, qb));
        r = strv_split(value, ",", ret);
        return r < 0 ? r : 0;
}

static bool is_template_name(const char *s) {
        size_t l = strlen(s);

        if (l < 1 || l > 63)
                return false;
        if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789", s[0]))
                return false;
        return s[strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-")] == '\0';
}

/* ---- key parsers ---------------------------------------------------------------- */


static int parse_name(const char *value, unsigned idx, VmConfig *c, char **reason) {
        char qb[QUOTE_BUF];

        if (!string_is_safe_name(value))
                return vmc_reason_set(reason, "must match [A-Za-z0-9][A-Za-z0-9._-]{0,62} without \"..\" (got %s)",
                                  vmc_quote(value, qb));
        return vmc_set_string(&c->name, value);
}

static int parse_memory(const char *value, unsigned idx, VmConfig *c, char **reason) {
        return parse_range(value, VM_MEMORY_MIN_MIB, VM_MEMORY_MAX_MIB, " MiB", &c->memory_mib, reason);
}

static int parse_balloon(const char *value, unsigned idx, VmConfig *c, char **reason) {
        /* The floor against memory is a cross-key rule, checked once all
         * keys are known (vm_config_parse()). */
        return parse_range(value, 0, VM_MEMORY_MAX_MIB, " MiB", &c->balloon_mib, reason);
}

static int parse_cores(const char *value, unsigned idx, VmConfig *c, char **reason) {
        uint64_t v = 0;
        int r;

        r = parse_range(value, 1, VM_CORES_MAX, "", &v, reason);
        if (r < 0)
                return r;
        c->cores = (unsigned) v;
        return 0;
}

static int parse_kernel(const char *value, unsigned idx, VmConfig *c, char **reason) {
        int r = check_path(value, reason);
        return r < 0 ? r : vmc_set_string(&c->kernel, value);
}

static int parse_initrd(const char *value, unsigned idx, VmConfig *c, char **reason) {
        int r = check_path(value, reason);
        return r < 0 ? r : vmc_set_string(&c->initrd, value);
}

/* A model store name, resolved to its image when the VM starts. Image
 * paths are refused: zvmd would open whatever file a member of group zvm
 * names, with its own rights. */
static int parse_model(const char *value, unsigned idx, VmConfig *c, char **reason) {
        char qb[QUOTE_BUF];

        if (value[0] == '/')
                return vmc_reason_set(reason, "must be a model name from the store, not a path (got %s); "
                                          "add the file with \"zvm model add FILE.gguf --name NAME\"",
                                  vmc_quote(value, qb));
        if (!string_is_safe_name(value))
                return vmc_reason_set(reason, "must be a model name [A-Za-z0-9][A-Za-z0-9._-]{0,62} (got %s)",
                                  vmc_quote(value, qb));
        return vmc_set_string(&c->model, value);
}

/* "threads=N,ctx=N,parallel=N,batch=N", any subset, each once; the bounds
 * are those of the agent's llm-start (api/agent-protocol.md). */
static int parse_inference(const char *value, unsigned idx, VmConfig *c, char **reason) {
        static const struct {
                const char *name;
                unsigned min, max;
                size_t offset;
        } fields[] = {
                { "threads",  1,  VM_INFERENCE_THREADS_MAX,  offsetof(VmInference, threads) },
                { "ctx",      64, VM_INFERENCE_CTX_MAX,      offsetof(VmInference, ctx) },
                { "parallel", 1,  VM_INFERENCE_PARALLEL_MAX, offsetof(VmInference, parallel) },
                { "batch",    1,  VM_INFERENCE_BATCH_MAX,    offsetof(VmInference, batch) },
        };
        _cleanup_strv_free_ char **parts = NULL;
        VmInference inf = {};
        char qb[QUOTE_BUF];
        int r;

        r = vmc_option_list_split(value, &parts, reason);
        if (r < 0)
                return r;
        STRV_FOREACH(o, parts) {
                _cleanup_free_ char *k = NULL;
                const char *v = NULL;
                size_t i;

                r = vmc_option_split(*o, &k, &v);
                if (r == -ENOMEM)
                        return r;
                for (i = 0; r >= 0 && i < ELEMENTSOF(fields); i++)
                        if (streq(k, fields[i].name))
                                break;
                if (r < 0 || i >= ELEMENTSOF(fields))
                        return vmc_reason_set(reason, "unknown option %s (threads=, ctx=, parallel=, batch=)",
                                          vmc_quote(*o, qb));

                unsigned *field = (unsigned *) ((uint8_t *) &inf + fields[i].offset);
                uint64_t n;

                if (*field != 0)
                        return vmc_reason_set(reason, "%s= given twice", fields[i].name);
                if (safe_atou64(v, &n) < 0 || n < fields[i].min || n > fields[i].max)
                        return vmc_reason_set(reason, "%s= must be an integer between %u and %u (got %s)",
                                          fields[i].name, fields[i].min, fields[i].max, vmc_quote(v, qb));
                *field = (unsigned) n;
        }
        c->inference = inf;
        return 0;
}

/* A QEMU CPU model name: a bounded word, so that nothing can be appended
 * to -cpu (no ',' options). Whether QEMU knows it shows at start; "host"
 * needs KVM, checked when the accelerator is known (qemu-argv). */
static int parse_cpu(const char *value, unsigned idx, VmConfig *c, char **reason) {
        char qb[QUOTE_BUF];
        size_t l = strlen(value);

        if (l < 1 || l > VM_CPU_MODEL_MAX || !isalnum((unsigned char) value[0]) ||
            value[strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")] != '\0')
                return vmc_reason_set(reason,
                                  "must be a QEMU CPU model name [A-Za-z0-9][A-Za-z0-9_.-]{0,%u} such as qemu64, "
                                  "Haswell, max or host (got %s)", VM_CPU_MODEL_MAX - 1, vmc_quote(value, qb));
        return vmc_set_string(&c->cpu, value);
}

/* Kernel parameters zvm sets itself; a second copy from the user would
 * override them (the kernel and the initrd take the last one). */
static const char *const cmdline_reserved[] = {
        "root", "zvm.overlay", "zvm.upper", "zvm.models", "console",
};

static int parse_cmdline(const char *value, unsigned idx, VmConfig *c, char **reason) {
        _cleanup_strv_free_ char **words = NULL;
        char qb[QUOTE_BUF];
        int r;

        for (const char *p = value; *p; p++)
                if (*p < ' ' || *p >= 0x7f)
                        return vmc_reason_set(reason, "must be printable ASCII (got %s)", vmc_quote(value, qb));
        /* The kernel strips quotes ("root=x" is root=x) and keeps quoted
         * spaces inside one parameter: refuse quotes, so that splitting at
         * spaces below sees the parameters the kernel will see. */
        if (strchr(value, '"'))
                return vmc_reason_set(reason, "must not contain '\"'");

        r = strv_split(value, " ", &words);
        if (r < 0)
                return r;
        STRV_FOREACH(w, words) {
                size_t n = strcspn(*w, "=");

                for (size_t i = 0; i < ELEMENTSOF(cmdline_reserved); i++)
                        if (n == strlen(cmdline_reserved[i]) && strneq(*w, cmdline_reserved[i], n))
                                return vmc_reason_set(reason, "must not set %s=, zvm sets it itself",
                                                  cmdline_reserved[i]);
        }

        return vmc_set_string(&c->cmdline, isempty(value) ? NULL : value);
}

static int parse_rootfs(const char *value, unsigned idx, VmConfig *c, char **reason) {
        _cleanup_strv_free_ char **parts = NULL;
        char qb[QUOTE_BUF];
        uint64_t size = VM_ROOTFS_SIZE_DEFAULT;
        bool have_size = false, path;
        int r;

        r = vmc_option_list_split(value, &parts, reason);
        if (r < 0)
                return r;

        path = parts[0][0] == '/';
        if (path) {
                r = check_path(parts[0], reason);
                if (r < 0)
                        return r;
        } else if (!is_template_name(parts[0]))
                return vmc_reason_set(reason,
                                  "must be a template name ([a-z0-9][a-z0-9_-]{0,62}) or an absolute image path (got %s)",
                                  vmc_quote(parts[0], qb));

        for (char **o = parts + 1; *o; o++) {
                _cleanup_free_ char *k = NULL;
                const char *v = NULL;

                r = vmc_option_split(*o, &k, &v);
                if (r == -ENOMEM)
                        return r;
                if (r < 0 || !streq(k, "size"))
                        return vmc_reason_set(reason, "unknown option %s (only size=)", vmc_quote(*o, qb));
                if (have_size)
                        return vmc_reason_set(reason, "size= given twice");
                have_size = true;
                if (parse_size(v, &size) < 0 || size < VM_ROOTFS_SIZE_MIN || size > VM_ROOTFS_SIZE_MAX)
                        return vmc_reason_set(reason, "size= must be a size between 64M and 16T (got %s)",
                                          vmc_quote(v, qb));
        }
        if (path && have_size)
                return vmc_reason_set(reason,
                                  "size= applies to the writable layer of a template; an image path is used as is");

        r = vmc_set_string(&c->rootfs_template, path ? NULL : parts[0]);
        if (r < 0)
                return r;
        r = vmc_set_string(&c->rootfs_path, path ? parts[0] : NULL);
        if (r < 0)
                return r;
        c->rootfs_size = size;
        return 0;
}

static int parse_disk(const char *value, unsigned idx, VmConfig *c, char **reason) {
        _cleanup_strv_free_ char **parts = NULL;
        char qb[QUOTE_BUF];
        bool have_ro = false, have_bus = false, ro = false, scsi = false;
        int r;

        r = vmc_option_list_split(value, &parts, reason);
        if (r < 0)
                return r;
        r = check_path(parts[0], reason);
        if (r < 0)
                return r;

        for (char **o = parts + 1; *o; o++) {
                _cleanup_free_ char *k = NULL;
                const char *v = NULL;

                r = vmc_option_split(*o, &k, &v);
                if (r == -ENOMEM)
                        return r;
                if (r >= 0 && streq(k, "ro")) {
                        if (have_ro)
                                return vmc_reason_set(reason, "ro= given twice");
                        have_ro = true;
                        if (!streq(v, "0") && !streq(v, "1"))
                                return vmc_reason_set(reason, "ro= must be 0 or 1 (got %s)", vmc_quote(v, qb));
                        ro = v[0] == '1';
                } else if (r >= 0 && streq(k, "bus")) {
                        if (have_bus)
                                return vmc_reason_set(reason, "bus= given twice");
                        have_bus = true;
                        if (!streq(v, "blk") && !streq(v, "scsi"))
                                return vmc_reason_set(reason, "bus= must be blk or scsi (got %s)", vmc_quote(v, qb));
                        scsi = streq(v, "scsi");
                } else
                        return vmc_reason_set(reason, "unknown option %s (ro=, bus=)", vmc_quote(*o, qb));
        }

        r = vmc_set_string(&c->disks[idx].path, parts[0]);
        if (r < 0)
                return r;
        c->disks[idx].readonly = ro;
        c->disks[idx].scsi = scsi;
        return 0;
}

static int parse_vsock(const char *value, unsigned idx, VmConfig *c, char **reason) {
        char qb[QUOTE_BUF];
        const char *n = startswith(value, "cid=");
        uint64_t v;

        if (!n || safe_atou64(n, &v) < 0 || v < VM_CID_MIN || v > VM_CID_MAX)
                return vmc_reason_set(reason, "must be cid=N with N between %u and %u (got %s)", VM_CID_MIN, VM_CID_MAX,
                                  vmc_quote(value, qb));
        c->cid = (uint32_t) v;
        return 0;
}

static int parse_agent(const char *value, unsigned idx, VmConfig *c, char **reason) {
        return parse_bool01(value, &c->agent, reason);
}

static int parse_onboot(const char *value, unsigned idx, VmConfig *c, char **reason) {
        return parse_bool01(value, &c->onboot, reason);
}

static int parse_pcie(const char *value, unsigned idx, VmConfig *c, char **reason) {
        return parse_bool01(value, &c->pcie, reason);
}

static int parse_tags(const char *value, unsigned idx, VmConfig *c, char **reason) {
        _cleanup_strv_free_ char **tags = NULL;
        char qb[QUOTE_BUF];
        size_t l = strlen(value);
        int r;

        if (l > 0 && (value[0] == ';' || value[l - 1] == ';' || strstr(value, ";;")))
                return vmc_reason_set(reason, "empty tag in %s", vmc_quote(value, qb));
        r = strv_split(value, ";", &tags);
        if (r < 0)
                return r;
        if ((size_t) r > VM_TAGS_MAX)
                return vmc_reason_set(reason, "too many tags (%d, at most %u)", r, VM_TAGS_MAX);
        for (size_t i = 0; tags[i]; i++) {
                const char *t = tags[i];

                if (strlen(t) > VM_TAG_LEN_MAX ||
                    t[strspn(t, "abcdefghijklmnopqrstuvwxyz0123456789_-")] != '\0')
                        return vmc_reason_set(reason, "tag %s must match [a-z0-9_-]{1,32}", vmc_quote(t, qb));
                for (size_t j = 0; j < i; j++)
                        if (streq(tags[j], t))
                                return vmc_reason_set(reason, "tag %s given twice", vmc_quote(t, qb));
        }

        strv_free(c->tags);
        c->tags = TAKE_PTR(tags);
        return 0;
}

static int parse_description(const char *value, unsigned idx, VmConfig *c, char **reason) {
        /* Length, single line, no control characters, valid UTF-8: checked
         * for every value by vm_key_parse(). */
        return vmc_set_string(&c->description, isempty(value) ? NULL : value);
}

/* OpenSSH public keys for the guest's root, percent-encoded as Proxmox's
 * sshkeys (api/ssh-key.h). Installed by the agent at every boot. */
static int parse_sshkeys(const char *value, unsigned idx, VmConfig *c, char **reason) {
        _cleanup_free_ char *why = NULL;
        char **keys = NULL;
        int r;

        r = ssh_keys_decode(value, &keys, &why);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return vmc_reason_set(reason, "%s", why);
        strv_free(c->sshkeys);
        c->sshkeys = keys;
        return 0;
}

static int parse_accel(const char *value, unsigned idx, VmConfig *c, char **reason) {
        char qb[QUOTE_BUF];
        VmAccel a = vm_accel_from_string(value);

        if (a < 0)
                return vmc_reason_set(reason, "must be auto, kvm or tcg (got %s)", vmc_quote(value, qb));
        c->accel = a;
        return 0;
}

/* ---- the key table -------------------------------------------------------------- */

static const VmKey vm_keys[] = {
        /* name           n   parser              default  restart json_int max_len */
        { "name",         0,  parse_name,         NULL,    false,  false,   0 },
        { "memory",       0,  parse_memory,       "256",   true,   true,    0 },
        /* The balloon floor only bounds the next balloon target. Its
         * default is half of memory, filled in after parsing. */
        { "balloon",      0,  parse_balloon,      NULL,    false,  true,    0 },
        { "cores",        0,  parse_cores,        "1",     true,   true,    0 },
        { "kernel",       0,  parse_kernel,       NULL,    true,   false,   VM_PATH_MAX },
        { "initrd",       0,  parse_initrd,       NULL,    true,   false,   VM_PATH_MAX },
        { "cmdline",      0,  parse_cmdline,      NULL,    true,   false,   VM_CMDLINE_MAX },
        { "rootfs",       0,  parse_rootfs,       VM_ROOTFS_DEFAULT, true, false, 0 },
        { "disk",         VM_DISKS_MAX, parse_disk, NULL,  true,   false,   0 },
        { "net",          VM_NETS_MAX,  vm_config_parse_net,  NULL,  true,   false,   0 },
        { "vsock",        0,  parse_vsock,        NULL,    true,   false,   0 },
        { "model",        0,  parse_model,        NULL,    true,   false,   63 },
        { "inference",    0,  parse_inference,    NULL,    true,   false,   0 },
        { "cpu",          0,  parse_cpu,          NULL,    true,   false,   VM_CPU_MODEL_MAX },
        { "agent",        0,  parse_agent,        "1",     true,   true,    0 },
        { "onboot",       0,  parse_onboot,       "0",     false,  true,    0 },
        { "tags",         0,  parse_tags,         "",      false,  false,   0 },
        { "description",  0,  parse_description,  NULL,    false,  false,   VM_DESCRIPTION_MAX },
        { "accel",        0,  parse_accel,        "auto",  true,   false,   0 },
        { "pcie",         0,  parse_pcie,         "0",     true,   true,    0 },
        { "sshkeys",      0,  parse_sshkeys,      "",      false,  false,   0 },
};

const VmKey *vm_key_find(const char *key, unsigned *ret_idx) {
        if (!key)
                return NULL;

        for (size_t i = 0; i < ELEMENTSOF(vm_keys); i++) {
                const VmKey *k = &vm_keys[i];
                const char *rest;

                if (k->n_indexed == 0) {
                        if (streq(key, k->name)) {
                                if (ret_idx)
                                        *ret_idx = 0;
                                return k;
                        }
                        continue;
                }

                /* name0 .. name<n-1>, one digit, no leading zeros or signs. */
                rest = startswith(key, k->name);
                if (rest && rest[0] >= '0' && rest[0] <= '9' && rest[1] == '\0' &&
                    (unsigned) (rest[0] - '0') < k->n_indexed) {
                        if (ret_idx)
                                *ret_idx = (unsigned) (rest[0] - '0');
                        return k;
                }
        }
        return NULL;
}

bool vm_config_key_known(const char *key) {
        return vm_key_find(key, NULL);
}

bool vm_config_key_needs_restart(const char *key) {
        const VmKey *k = vm_key_find(key, NULL);
        return k && k->needs_restart;
}

const char *vm_config_key_default(const char *key) {
        const VmKey *k = vm_key_find(key, NULL);
        return k ? k->default_value : NULL;
}

bool vm_config_key_differs(const ConfigFile *a, const ConfigFile *b, const char *key) {
        const char *va = config_file_get(a, NULL, key), *vb = config_file_get(b, NULL, key);

        return vm_config_key_needs_restart(key) &&
               !streq_ptr(va ?: vm_config_key_default(key), vb ?: vm_config_key_default(key));
}

static bool keys_match(const ConfigFile *a, const ConfigFile *b, const char *except) {
        const char *key, *value;

        CONFIG_FILE_FOREACH(a, NULL, key, value)
                if (!streq_ptr(key, except) && vm_config_key_differs(a, b, key))
                        return false;
        return true;
}

bool vm_config_same_run(const ConfigFile *a, const ConfigFile *b, const char *except) {
        return keys_match(a, b, except) && keys_match(b, a, except);
}

int vmc_unknown_key(const char *key, char **ret_error) {
        if (streq_ptr(key, "vmid"))
                return vmc_error_for_key(-ENOKEY, key,
                                     "not a config key (the VMID is the file name, given at creation)", ret_error);
        return vmc_error_for_key(-ENOKEY, key, "unknown key", ret_error);
}

/* Checks that hold for every value (they would otherwise corrupt the file
 * or the QEMU command line), then runs the key's parser. The length check
 * comes first so that nothing below ever walks a huge value twice. */
static int vm_key_parse(const VmKey *k, unsigned idx, const char *value, VmConfig *c, char **reason) {
        /* "key: value" must fit in one line of the file; the key's own
         * bound may be lower. (Indexed keys have one digit after the name.) */
        size_t l = strlen(value), max = CONFIG_LINE_MAX - strlen(k->name) - (k->n_indexed > 0) - 2;

        if (k->max_len > 0)
                max = MIN(max, k->max_len);
        if (l > max)
                return vmc_reason_set(reason, "too long (%zu bytes, at most %zu)", l, max);
        if (strchr(value, '\n'))
                return vmc_reason_set(reason, "must be a single line (contains a newline)");
        for (size_t i = 0; i < l; i++)
                if ((unsigned char) value[i] < 0x20 || value[i] == 0x7f)
                        return vmc_reason_set(reason, "must not contain control characters");
        if (!utf8_is_valid_n(value, l))
                return vmc_reason_set(reason, "must be valid UTF-8");
        if (l > 0 && (value[0] == ' ' || value[l - 1] == ' '))
                return vmc_reason_set(reason, "must not start or end with a space");

        return k->parse(value, idx, c, reason);
}

/* ---- VmConfig ------------------------------------------------------------------- */

VmConfig *vm_config_free(VmConfig *c) {
        if (!c)
                return NULL;

        free(c->name);
        free(c->kernel);
        free(c->initrd);
        free(c->cmdline);
        free(c->rootfs_template);
        free(c->rootfs_path);
        for (size_t i = 0; i < VM_DISKS_MAX; i++)
                free(c->disks[i].path);
        for (size_t i = 0; i < VM_NETS_MAX; i++)
                free(c->nets[i].ifname);
        free(c->model);
        free(c->cpu);
        strv_free(c->tags);
        strv_free(c->sshkeys);
        free(c->description);
        return mfree(c);
}

/* The typed view, without the check of vmid (vm_config_apply_json()
 * validates files of VMs that do not have a VMID yet). ret_bad_key
 * (optional) gets the key an error is about. */
int vm_config_parse(const ConfigFile *cf, uint32_t vmid, VmConfig **ret, char **ret_error,
                           char **ret_bad_key) {
        _cleanup_vm_config_free_ VmConfig *c = NULL;
        _cleanup_free_ char *reason = NULL;
        const char *key, *value, *bad = NULL;
        char fwd_key[8];
        int r;

        c = calloc(1, sizeof(VmConfig));
        if (!c)
                return -ENOMEM;
        c->vmid = vmid;

        /* Defaults first, through the same parsers, then the file. */
        for (size_t i = 0; i < ELEMENTSOF(vm_keys); i++)
                if (vm_keys[i].default_value) {
                        r = vm_keys[i].parse(vm_keys[i].default_value, 0, c, &reason);
                        if (r < 0)
                                return r == -EINVAL ? -EIO : r;        /* a broken table */
                }
        c->balloon_mib = UINT64_MAX;    /* "not set" */

        CONFIG_FILE_FOREACH(cf, NULL, key, value) {
                const VmKey *k;
                unsigned idx;

                k = vm_key_find(key, &idx);
                if (!k) {
                        r = vmc_unknown_key(key, ret_error);
                        bad = key;
                        r = r == -ENOMEM ? r : -EINVAL;
                        goto fail;
                }
                r = vm_key_parse(k, idx, value, c, &reason);
                if (r < 0) {
                        bad = key;
                        if (r == -EINVAL)
                                r = vmc_error_for_key(r, key, reason, ret_error);
                        goto fail;
                }
        }

        if (!c->name) {
                bad = "name";
                r = vmc_error_set(-EINVAL, ret_error, "name: missing (every VM needs a name)");
                goto fail;
        }

        /* As Proxmox: the balloon device is there and set-memory works
         * without first lowering a floor; half the memory keeps a guest
         * from being squeezed below what it booted with by accident. */
        if (c->balloon_mib == UINT64_MAX)
                c->balloon_mib = MAX(c->memory_mib / 2, (uint64_t) 1);
        else if (c->balloon_mib > c->memory_mib) {
                bad = "balloon";
                r = vmc_error_set(-EINVAL, ret_error, "balloon: %" PRIu64 " exceeds memory (%" PRIu64 ")",
                              c->balloon_mib, c->memory_mib);
                goto fail;
        }

        r = vm_config_check_hostfwd_unique(c, fwd_key, ret_error);
        if (r < 0) {
                bad = fwd_key;
                goto fail;
        }

        *ret = TAKE_PTR(c);
        return 0;

fail:
        if (ret_bad_key && bad) {
                char *s = strdup(bad);
                if (!s)
                        return -ENOMEM;
                free(*ret_bad_key);
                *ret_bad_key = s;
        }
        return r;
}

int vm_config_from_file(const ConfigFile *cf, uint32_t vmid, VmConfig **ret, char **ret_error) {
        assert_return(cf, -EINVAL);
        assert_return(ret, -EINVAL);

        if (vmid < ZVM_VMID_MIN || vmid > ZVM_VMID_MAX)
                return vmc_error_set(-EINVAL, ret_error, "vmid: %" PRIu32 " is not between %u and %u", vmid,
                                 ZVM_VMID_MIN, ZVM_VMID_MAX);
        return vm_config_parse(cf, vmid, ret, ret_error, NULL);
}

/* Validates value for key, alone. */
int vm_config_check(const char *key, const char *value, char **ret_error) {
        _cleanup_vm_config_free_ VmConfig *scratch = NULL;
        _cleanup_free_ char *reason = NULL;
        const VmKey *k;
        unsigned idx;
        int r;

        k = vm_key_find(key, &idx);
        if (!k)
                return vmc_unknown_key(key, ret_error);

        scratch = calloc(1, sizeof(VmConfig));
        if (!scratch)
                return -ENOMEM;

        r = vm_key_parse(k, idx, value, scratch, &reason);
        if (r == -EINVAL)
                return vmc_error_for_key(r, key, reason, ret_error);
        return r;
}

/* config_file_set() with errors explained. */
int vm_config_store(ConfigFile *cf, const char *key, const char *value, char **ret_error) {
        int r;

        r = config_file_set(cf, NULL, key, value);
        if (r == -E2BIG)
                return vmc_error_for_key(-EINVAL, key, "the config file would exceed its size bounds", ret_error);
        if (r == -EINVAL)
                return vmc_error_for_key(-EINVAL, key, "cannot be stored in the config file", ret_error);
        return r;
}

int vm_config_set(ConfigFile *cf, const char *key, const char *value, char **ret_error) {
        int r;

        assert_return(cf, -EINVAL);
        assert_return(key, -EINVAL);
        assert_return(value, -EINVAL);

        r = vm_config_check(key, value, ret_error);
        if (r < 0)
                return r;
        return vm_config_store(cf, key, value, ret_error);
}

int vm_config_unset(ConfigFile *cf, const char *key, char **ret_error) {
        assert_return(cf, -EINVAL);
        assert_return(key, -EINVAL);

        if (!vm_config_key_known(key))
                return vmc_unknown_key(key, ret_error);
        if (streq(key, "name"))
                return vmc_error_for_key(-EINVAL, key, "cannot be removed (every VM needs a name)", ret_error);
        return config_file_unset(cf, NULL, key);
}

/* ---- small things --------------------------------------------------------------- */

static const char *const vm_accel_table[_VM_ACCEL_MAX] = {
        [VM_ACCEL_AUTO] = "auto",
        [VM_ACCEL_KVM] = "kvm",
        [VM_ACCEL_TCG] = "tcg",
};

const char *vm_accel_to_string(VmAccel a) {
        if (a < 0 || a >= _VM_ACCEL_MAX)
                return NULL;
        return vm_accel_table[a];
}

VmAccel vm_accel_from_string(const char *s) {
        if (!s)
                return _VM_ACCEL_INVALID;
        for (size_t i = 0; i < ELEMENTSOF(vm_accel_table); i++)
                if (streq(s, vm_accel_table[i]))
                        return (VmAccel) i;
        return _VM_ACCEL_INVALID;
}
