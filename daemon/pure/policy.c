/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "string-util.h"

Policy *policy_free(Policy *p) {
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_storages; i++) {
                free(p->storages[i].name);
                free(p->storages[i].path);
        }
        strv_free(p->raw_paths);
        strv_free(p->bridges);
        free(p);
        return NULL;
}

/* Absolute, printable, and plain: no ".", ".." or empty component, so that
 * a prefix comparison means "beneath". A trailing '/' is not allowed here
 * (the parser strips it). */
static bool path_is_clean(const char *s) {
        if (s[0] != '/' || strlen(s) > VM_PATH_MAX)
                return false;
        for (const char *c = s; *c; c++)
                if (*c <= ' ' || *c >= 0x7f || *c == ',')
                        return false;
        for (const char *c = s; *c == '/';) {
                size_t n = strcspn(c + 1, "/");

                if (n == 0 || (n == 1 && c[1] == '.') || (n == 2 && c[1] == '.' && c[2] == '.'))
                        return false;
                c += 1 + n;
        }
        return true;
}

int policy_add_storage(Policy *p, const char *name, const char *path) {
        _cleanup_free_ char *n = NULL, *d = NULL;

        if (!string_is_safe_name(name) || !path_is_clean(path))
                return -EINVAL;
        for (size_t i = 0; i < p->n_storages; i++)
                if (streq(p->storages[i].name, name))
                        return -EEXIST;
        if (p->n_storages >= POLICY_STORAGES_MAX)
                return -E2BIG;
        n = strdup(name);
        d = strdup(path);
        if (!n || !d)
                return -ENOMEM;
        p->storages[p->n_storages].name = TAKE_PTR(n);
        p->storages[p->n_storages++].path = TAKE_PTR(d);
        return 0;
}

char *policy_storage_list(const Policy *p) {
        _cleanup_strv_free_ char **l = NULL;

        if (p->n_storages == 0)
                return strdup("none");
        for (size_t i = 0; i < p->n_storages; i++) {
                char *s = strjoin(p->storages[i].name, "=", p->storages[i].path);

                if (!s || strv_push(&l, s) < 0)
                        return free(s), NULL;
        }
        return strv_join(l, " ");
}

/* ---- zvm.conf ------------------------------------------------------------ */

static int line_error(char **ret_error, unsigned line, const char *fmt, ...) _printf_(3, 4);
static int line_error(char **ret_error, unsigned line, const char *fmt, ...) {
        _cleanup_free_ char *m = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&m, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        return set_error(ret_error, "zvm.conf line %u: %s", line, m), -EINVAL;
}

static int parse_storages(Policy *p, char **words, unsigned line, char **ret_error) {
        STRV_FOREACH(w, words) {
                _cleanup_free_ char *name = NULL;
                char *eq = strchr(*w, '='), *dir;
                int r;

                if (!eq)
                        return line_error(ret_error, line, "ZVM_STORAGE: '%s' is not NAME=DIR", *w);
                name = strndup(*w, (size_t) (eq - *w));
                if (!name)
                        return -ENOMEM;
                dir = eq + 1;
                for (size_t l = strlen(dir); l > 1 && dir[l - 1] == '/'; l--)
                        dir[l - 1] = '\0';
                if (streq(dir, "/"))
                        return line_error(ret_error, line, "ZVM_STORAGE: %s=/ would be the whole host", name);
                r = policy_add_storage(p, name, dir);
                if (r == -EEXIST && streq(name, "local") && p->n_storages > 0 && streq(p->storages[0].name, "local"))
                        return line_error(ret_error, line, "ZVM_STORAGE: the name local is zvm's own (%s)",
                                          p->storages[0].path);
                if (r == -EEXIST)
                        return line_error(ret_error, line, "ZVM_STORAGE: storage %s given twice", name);
                if (r == -E2BIG)
                        return line_error(ret_error, line, "ZVM_STORAGE: more than %u storages", POLICY_STORAGES_MAX);
                if (r < 0 && r != -ENOMEM)
                        return line_error(ret_error, line,
                                          "ZVM_STORAGE: '%s' needs a name [A-Za-z0-9._-] and an absolute directory "
                                          "without '.', '..', '//', whitespace or ','", *w);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_paths(char ***list, char **words, unsigned line, char **ret_error) {
        STRV_FOREACH(w, words) {
                if (!path_is_clean(*w))
                        return line_error(ret_error, line,
                                          "ZVM_RAW_PATHS: '%s' is not an absolute path without '.', '..', '//', "
                                          "whitespace or ','", *w);
                if (strv_length(*list) >= POLICY_RAW_PATHS_MAX)
                        return line_error(ret_error, line, "ZVM_RAW_PATHS: more than %u paths", POLICY_RAW_PATHS_MAX);
                if (strv_extend(list, *w) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int parse_bridges(char ***list, char **words, unsigned line, char **ret_error) {
        STRV_FOREACH(w, words) {
                if (!vm_ifname_is_valid(*w))
                        return line_error(ret_error, line, "ZVM_BRIDGES: '%s' is not an interface name", *w);
                if (strv_length(*list) >= POLICY_BRIDGES_MAX)
                        return line_error(ret_error, line, "ZVM_BRIDGES: more than %u bridges", POLICY_BRIDGES_MAX);
                if (strv_extend(list, *w) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* N or N-M words into a bitmap: ZVM_VLANS, ZVM_HOSTFWD_PORTS. */
static int parse_ranges(const char *key, const char *what, uint8_t *set, bool *any, uint32_t min, uint32_t max,
                        char **words, unsigned line, char **ret_error) {
        STRV_FOREACH(w, words) {
                char *dash = strchr(*w, '-');
                uint32_t lo, hi;

                if (dash)
                        *dash = '\0';
                if (safe_atou32(*w, &lo) < 0 || (dash ? safe_atou32(dash + 1, &hi) : (hi = lo, 0)) < 0 || lo < min ||
                    hi > max || lo > hi)
                        return line_error(ret_error, line, "%s: '%s%s%s' is not %s or range within %u-%u",
                                          key, *w, dash ? "-" : "", dash ? dash + 1 : "", what, min, max);
                for (uint32_t v = lo; v <= hi; v++)
                        set[v / 8] |= (uint8_t) (1U << (v % 8));
                *any = true;
        }
        return 0;
}

static int parse_quota(Policy *p, const char *key, const char *value, unsigned line, char **ret_error) {
        uint64_t v;

        if (streq(key, "ZVM_MAX_CORES")) {
                uint32_t n;

                if (safe_atou32(value, &n) < 0 || n < 1 || n > VM_CORES_MAX)
                        return line_error(ret_error, line, "ZVM_MAX_CORES: '%s' is not a number from 1 to %u", value,
                                          VM_CORES_MAX);
                p->max_cores = n;
        } else if (streq(key, "ZVM_MAX_MEMORY")) {
                /* A bare number is MiB, as the memory key; else a size. */
                if (safe_atou64(value, &v) >= 0)
                        v = v > UINT64_MAX >> 20 ? 0 : v << 20;
                else if (parse_size(value, &v) < 0)
                        v = 0;
                if (v < VM_MEMORY_MIN_MIB << 20)
                        return line_error(ret_error, line, "ZVM_MAX_MEMORY: '%s' is not a size of at least %llu MiB",
                                          value, VM_MEMORY_MIN_MIB);
                p->max_memory_mib = v >> 20;
        } else {
                if (parse_size(value, &v) < 0 || v == 0)
                        return line_error(ret_error, line, "ZVM_MAX_DISK_SIZE: '%s' is not a size such as 64G", value);
                p->max_disk_size = v;
        }
        return 0;
}

static const char *const policy_keys[] = {
        "ZVM_STORAGE", "ZVM_RAW_PATHS", "ZVM_BRIDGES", "ZVM_VLANS", "ZVM_MAX_MEMORY", "ZVM_MAX_CORES", "ZVM_MAX_DISK_SIZE",
        "ZVM_HOSTFWD_PORTS",
};

static int parse_assignment(Policy *p, char *key, char *value, unsigned line, bool seen[], char **ret_error) {
        _cleanup_strv_free_ char **words = NULL;
        size_t l = strlen(value), k;
        int r;

        for (k = 0; k < ELEMENTSOF(policy_keys); k++)
                if (streq(key, policy_keys[k]))
                        break;
        if (k == ELEMENTSOF(policy_keys))
                return 0;       /* the service's (ZVMD_ARGS, ZVM_LOG_LEVEL, ...) */
        if (seen[k])
                return line_error(ret_error, line, "%s given twice: give all its values on one line", key);
        seen[k] = true;
        if (l >= 2 && (value[0] == '"' || value[0] == '\'') && value[l - 1] == value[0]) {
                value[l - 1] = '\0';
                value++;
        }
        r = strv_split(value, streq(key, "ZVM_VLANS") || streq(key, "ZVM_HOSTFWD_PORTS") ? " \t," : " \t", &words);
        if (r < 0)
                return r;
        switch (k) {
        case 0:
                return parse_storages(p, words, line, ret_error);
        case 1:
                return parse_paths(&p->raw_paths, words, line, ret_error);
        case 2:
                return parse_bridges(&p->bridges, words, line, ret_error);
        case 3:
                return parse_ranges(key, "a VLAN id", p->vlans, &p->any_vlan, 1, POLICY_VLAN_MAX, words, line, ret_error);
        case 7:
                /* Ports below 1024 are root's on the host, and stay so. */
                return parse_ranges(key, "a port", p->hostfwd_ports, &p->any_hostfwd_port, 1024, 65535, words, line,
                                    ret_error);
        default:
                if (strv_length(words) != 1)
                        return line_error(ret_error, line, "%s takes one value", key);
                return parse_quota(p, key, words[0], line, ret_error);
        }
}

int policy_parse(const char *text, size_t size, const char *local, Policy **ret, char **ret_error) {
        _cleanup_(policy_freep) Policy *p = calloc(1, sizeof(Policy));
        _cleanup_free_ char *copy = NULL;
        bool seen[ELEMENTSOF(policy_keys)] = {};
        unsigned line = 0;
        char *next;
        int r;

        if (!p)
                return -ENOMEM;
        p->raw_paths = calloc(1, sizeof(char *));
        p->bridges = calloc(1, sizeof(char *));
        copy = strndup(text ?: "", text ? size : 0);
        if (!copy || !p->raw_paths || !p->bridges)
                return -ENOMEM;
        if (strlen(copy) != (text ? size : 0))
                return set_error(ret_error, "zvm.conf: contains a NUL byte"), -EINVAL;
        r = local ? policy_add_storage(p, "local", local) : 0;
        if (r < 0)
                return set_error(ret_error, "zvm's own storage %s: %s", local, errno_str(r)), r;
        for (char *s = copy; s; s = next) {
                char *eq;

                next = strchr(s, '\n');
                if (next)
                        *next++ = '\0';
                line++;
                s = strstrip(s);
                if (s[0] == '\0' || s[0] == '#' || s[0] == ';')
                        continue;
                eq = strchr(s, '=');
                if (!eq)
                        return line_error(ret_error, line, "expected KEY=VALUE");
                *eq = '\0';
                r = parse_assignment(p, strstrip(s), strstrip(eq + 1), line, seen, ret_error);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(p);
        return 0;
}

/* ---- decisions ----------------------------------------------------------- */

size_t policy_config_paths(const VmConfig *c, PolicyPathKey ret[static POLICY_PATH_KEYS_MAX]) {
        size_t n = 0;

        if (c->rootfs_path)
                ret[n++] = (PolicyPathKey) { .key = "rootfs", .path = c->rootfs_path, .block_ok = true, .sized = true };
        for (unsigned i = 0; i < VM_DISKS_MAX; i++)
                if (c->disks[i].path) {
                        ret[n] = (PolicyPathKey) { .path = c->disks[i].path, .block_ok = true, .sized = true };
                        snprintf(ret[n++].key, sizeof(ret[0].key), "disk%u", i);
                }
        if (c->kernel)
                ret[n++] = (PolicyPathKey) { .key = "kernel", .path = c->kernel };
        if (c->initrd)
                ret[n++] = (PolicyPathKey) { .key = "initrd", .path = c->initrd };
        return n;
}

int policy_check_path(const Policy *p, const char *key, const char *path, bool root, PolicyPath *ret,
                      char **ret_error) {
        _cleanup_free_ char *list = NULL;

        if (root || strv_contains(p->raw_paths, path)) {
                *ret = (PolicyPath) { .kind = POLICY_PATH_RAW };
                return 0;
        }
        if (!path_is_clean(path))
                return set_error(ret_error, "%s: %s has a '.', '..' or empty component; a path in storage must be plain",
                                 key, path),
                       -EACCES;
        for (size_t i = 0; i < p->n_storages; i++) {
                const char *rest = startswith(path, p->storages[i].path);

                if (rest && rest[0] == '/' && rest[1]) {
                        *ret = (PolicyPath) { .kind = POLICY_PATH_STORAGE, .storage = &p->storages[i], .relative = rest + 1 };
                        return 0;
                }
        }
        list = policy_storage_list(p);
        return set_error(ret_error,
                         "%s: %s is outside the declared storage (storage: %s); raw paths need root or ZVM_RAW_PATHS "
                         "in zvm.conf",
                         key, path, strnull(list)),
               -EACCES;
}

int policy_check_disk_size(const Policy *p, const char *key, const char *path, uint64_t size, bool root,
                           char **ret_error) {
        if (root || p->max_disk_size == 0 || size <= p->max_disk_size)
                return 0;
        return set_error(ret_error, "%s: %s is %" PRIu64 " MiB, over the quota of %" PRIu64 " MiB per disk "
                                    "(ZVM_MAX_DISK_SIZE in zvm.conf)",
                         key, path, size >> 20, p->max_disk_size >> 20),
               -EACCES;
}

static bool key_selected(json_object *keys, const char *key) {
        return !keys || json_object_object_get_ex(keys, key, NULL);
}

/* A forward opens a port on the host to the guest: only on loopback (other
 * local users may reach it, the network may not) and only from the ports
 * the administrator set aside, so that a VM cannot take a port a host
 * service is meant to get. */
static int check_hostfwd(const Policy *p, const VmNet *n, const char *key, char **ret_error) {
        for (unsigned j = 0; j < n->n_hostfwd; j++) {
                const VmHostfwd *f = &n->hostfwd[j];

                if (!startswith(f->addr, "127."))
                        return set_error(ret_error, "%s: hostfwd= address %s is not a loopback address; other "
                                                    "addresses need root",
                                         key, f->addr),
                               -EACCES;
                if (!(p->hostfwd_ports[f->host_port / 8] & (1U << (f->host_port % 8))))
                        return set_error(ret_error, "%s: hostfwd= host port %u is not declared%s; other ports need "
                                                    "root or ZVM_HOSTFWD_PORTS in zvm.conf",
                                         key, f->host_port, p->any_hostfwd_port ? "" : " (no ports are)"),
                               -EACCES;
        }
        return 0;
}

static int check_nets(const Policy *p, const VmConfig *c, json_object *keys, char **ret_error, char **ret_key) {
        int r;

        for (unsigned i = 0; i < VM_NETS_MAX; i++) {
                const VmNet *n = &c->nets[i];
                char key[16];

                snprintf(key, sizeof(key), "net%u", i);
                if (!n->present || !key_selected(keys, key))
                        continue;
                r = check_hostfwd(p, n, key, ret_error);
                if (r < 0)
                        return set_error(ret_key, "%s", key), r;
                if (!n->bridge)
                        continue;
                if (!strv_contains(p->bridges, n->ifname)) {
                        _cleanup_free_ char *list = strv_join(p->bridges, " ");

                        return set_error(ret_error, "%s: bridge %s is not declared (bridges: %s); other bridges need "
                                                    "root or ZVM_BRIDGES in zvm.conf",
                                         key, n->ifname, isempty(list) ? "none" : list),
                               set_error(ret_key, "%s", key), -EACCES;
                }
                if (n->tag > 0 && !(p->vlans[n->tag / 8] & (1U << (n->tag % 8))))
                        return set_error(ret_error, "%s: VLAN %u is not declared%s; other VLANs need root or ZVM_VLANS "
                                                    "in zvm.conf",
                                         key, n->tag, p->any_vlan ? "" : " (no VLANs are)"),
                               set_error(ret_key, "%s", key), -EACCES;
        }
        return 0;
}

static int check_quotas(const Policy *p, const VmConfig *c, json_object *keys, char **ret_error, char **ret_key) {
        if (p->max_memory_mib > 0 && c->memory_mib > p->max_memory_mib && key_selected(keys, "memory"))
                return set_error(ret_error, "memory: %" PRIu64 " MiB is over the quota of %" PRIu64 " MiB per VM "
                                            "(ZVM_MAX_MEMORY in zvm.conf)",
                                 c->memory_mib, p->max_memory_mib),
                       set_error(ret_key, "memory"), -EACCES;
        if (p->max_cores > 0 && c->cores > p->max_cores && key_selected(keys, "cores"))
                return set_error(ret_error, "cores: %u is over the quota of %u per VM (ZVM_MAX_CORES in zvm.conf)",
                                 c->cores, p->max_cores),
                       set_error(ret_key, "cores"), -EACCES;
        if (p->max_disk_size > 0 && c->rootfs_template && c->rootfs_size > p->max_disk_size &&
            key_selected(keys, "rootfs"))
                return set_error(ret_error, "rootfs: size=%" PRIu64 "M is over the quota of %" PRIu64 " MiB per disk "
                                            "(ZVM_MAX_DISK_SIZE in zvm.conf)",
                                 c->rootfs_size >> 20, p->max_disk_size >> 20),
                       set_error(ret_key, "rootfs"), -EACCES;
        return 0;
}

int policy_check_config(const Policy *p, const VmConfig *c, json_object *keys, bool root, char **ret_error,
                        char **ret_key) {
        PolicyPathKey paths[POLICY_PATH_KEYS_MAX];
        size_t n;
        int r;

        if (root)
                return 0;
        r = check_quotas(p, c, keys, ret_error, ret_key);
        if (r < 0)
                return r;
        r = check_nets(p, c, keys, ret_error, ret_key);
        if (r < 0)
                return r;
        n = policy_config_paths(c, paths);
        for (size_t i = 0; i < n; i++) {
                PolicyPath pp;

                if (!key_selected(keys, paths[i].key))
                        continue;
                r = policy_check_path(p, paths[i].key, paths[i].path, false, &pp, ret_error);
                if (r < 0)
                        return set_error(ret_key, "%s", paths[i].key), r;
        }
        return 0;
}
