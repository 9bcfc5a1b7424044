/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* netN: a NIC's bridge, tap, user networking and its hostfwd= forwards,
 * MAC addresses. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "string-util.h"
#include "vm-config.h"
#include "vm-config-internal.h"

bool vm_ifname_is_valid(const char *s) {
        size_t l = strlen(s);

        if (l < 1 || l > VM_IFNAME_MAX || streq(s, ".") || streq(s, ".."))
                return false;
        return s[strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")] == '\0';
}

/* "xx:xx:xx:xx:xx:xx", unicast, not all zero; stored lower case. */
static int parse_mac(const char *s, char ret[static 18], char **reason) {
        char qb[QUOTE_BUF];
        bool nonzero = false;

        if (strlen(s) != 17)
                goto bad;
        for (size_t i = 0; i < 17; i++) {
                if (i % 3 == 2) {
                        if (s[i] != ':')
                                goto bad;
                } else if (!isxdigit((unsigned char) s[i]))
                        goto bad;
                else if (s[i] != '0')
                        nonzero = true;
        }
        if (!nonzero)
                return vmc_reason_set(reason, "mac: %s is not a usable address (all zero)", vmc_quote(s, qb));
        /* The group bit is the lowest bit of the first octet, i.e. of its
         * second hex digit. */
        if (strchr("13579bBdDfF", s[1]))
                return vmc_reason_set(reason, "mac: %s is a multicast address, must be unicast", vmc_quote(s, qb));
        for (size_t i = 0; i < 17; i++)
                ret[i] = (char) tolower((unsigned char) s[i]);
        ret[17] = '\0';
        return 0;
bad:
        return vmc_reason_set(reason, "mac: must look like 52:54:00:12:34:56 (got %s)", vmc_quote(s, qb));
}

static int parse_port(const char *s, uint16_t *ret) {
        uint32_t v;

        if (safe_atou32(s, &v) < 0 || v < 1 || v > 65535)
                return -EINVAL;
        *ret = (uint16_t) v;
        return 0;
}

/* hostfwd=tcp|udp:[ADDR:]HOSTPORT-[:]GUESTPORT, QEMU's form without the
 * guest address; ADDR is an IPv4 address, 127.0.0.1 when left out (QEMU's
 * default would be every address). */
static int parse_hostfwd(const char *v, VmHostfwd *ret, char **reason) {
        _cleanup_free_ char *copy = strdup(v);
        char qb[QUOTE_BUF], *rest, *dash, *colon, *host_port;
        struct in_addr a;
        VmHostfwd f = { .addr = "127.0.0.1" };

        if (!copy)
                return -ENOMEM;
        rest = startswith(copy, "tcp:");
        if (!rest) {
                rest = startswith(copy, "udp:");
                f.udp = true;
        }
        dash = rest ? strchr(rest, '-') : NULL;
        if (!dash)
                return vmc_reason_set(reason, "hostfwd= must be tcp|udp:[ADDR:]HOSTPORT-GUESTPORT (got %s)", vmc_quote(v, qb));
        *dash = '\0';
        colon = strrchr(rest, ':');
        host_port = colon ? colon + 1 : rest;
        if (colon) {
                *colon = '\0';
                if (rest[0]) {
                        if (inet_pton(AF_INET, rest, &a) != 1)
                                return vmc_reason_set(reason, "hostfwd= host address must be an IPv4 address (got %s)",
                                                  vmc_quote(rest, qb));
                        (void) inet_ntop(AF_INET, &a, f.addr, sizeof(f.addr));
                }
        }
        if (parse_port(host_port, &f.host_port) < 0)
                return vmc_reason_set(reason, "hostfwd= host port must be 1-65535 (got %s)", vmc_quote(host_port, qb));
        if (parse_port(dash[1] == ':' ? dash + 2 : dash + 1, &f.guest_port) < 0)
                return vmc_reason_set(reason, "hostfwd= guest port must be 1-65535 (got %s)", vmc_quote(dash + 1, qb));
        *ret = f;
        return 0;
}

int vm_config_parse_net(const char *value, unsigned idx, VmConfig *c, char **reason) {
        _cleanup_strv_free_ char **parts = NULL;
        char qb[QUOTE_BUF], mac[18] = "";
        const char *bridge = NULL;
        bool user = false, have_tag = false;
        VmHostfwd fwd[VM_HOSTFWD_MAX];
        unsigned n_fwd = 0;
        uint64_t tag = 0;
        int r;

        r = vmc_option_list_split(value, &parts, reason);
        if (r < 0)
                return r;

        STRV_FOREACH(o, parts) {
                _cleanup_free_ char *k = NULL;
                const char *v = NULL;

                if (streq(*o, "user")) {
                        if (o != parts)
                                return vmc_reason_set(reason, "\"user\" must come first");
                        user = true;
                        continue;
                }
                r = vmc_option_split(*o, &k, &v);
                if (r == -ENOMEM)
                        return r;
                if (r >= 0 && streq(k, "bridge")) {
                        if (bridge)
                                return vmc_reason_set(reason, "bridge= given twice");
                        if (!vm_ifname_is_valid(v))
                                return vmc_reason_set(reason,
                                                  "bridge= must be an interface name of 1-15 characters [A-Za-z0-9_.-] (got %s)",
                                                  vmc_quote(v, qb));
                        bridge = v;
                } else if (r >= 0 && streq(k, "tag")) {
                        if (have_tag)
                                return vmc_reason_set(reason, "tag= given twice");
                        have_tag = true;
                        if (safe_atou64(v, &tag) < 0 || tag < 1 || tag > 4094)
                                return vmc_reason_set(reason, "tag= must be a VLAN id between 1 and 4094 (got %s)",
                                                  vmc_quote(v, qb));
                } else if (r >= 0 && streq(k, "mac")) {
                        if (mac[0])
                                return vmc_reason_set(reason, "mac= given twice");
                        r = parse_mac(v, mac, reason);
                        if (r < 0)
                                return r;
                } else if (r >= 0 && streq(k, "hostfwd")) {
                        if (n_fwd >= VM_HOSTFWD_MAX)
                                return vmc_reason_set(reason, "more than %u hostfwd=", VM_HOSTFWD_MAX);
                        r = parse_hostfwd(v, &fwd[n_fwd], reason);
                        if (r < 0)
                                return r;
                        for (unsigned j = 0; j < n_fwd; j++)
                                if (fwd[j].udp == fwd[n_fwd].udp && fwd[j].host_port == fwd[n_fwd].host_port)
                                        return vmc_reason_set(reason, "hostfwd= %s port %u given twice",
                                                          fwd[j].udp ? "udp" : "tcp", fwd[j].host_port);
                        n_fwd++;
                } else
                        return vmc_reason_set(reason, "unknown option %s (user, bridge=, tag=, mac=, hostfwd=)",
                                          vmc_quote(*o, qb));
        }

        if (user == !!bridge)
                return vmc_reason_set(reason, "must be user[,mac=..][,hostfwd=..] or bridge=<ifname>[,tag=N][,mac=..] (got %s)",
                                  vmc_quote(value, qb));
        if (user && have_tag)
                return vmc_reason_set(reason, "tag= needs bridge=");
        if (bridge && n_fwd > 0)
                return vmc_reason_set(reason, "hostfwd= needs user (a bridged NIC is reached directly)");

        r = vmc_set_string(&c->nets[idx].ifname, bridge);
        if (r < 0)
                return r;
        c->nets[idx].present = true;
        c->nets[idx].bridge = !!bridge;
        c->nets[idx].tag = (unsigned) tag;
        memcpy(c->nets[idx].mac, mac, sizeof(mac));
        memcpy(c->nets[idx].hostfwd, fwd, n_fwd * sizeof(fwd[0]));
        c->nets[idx].n_hostfwd = n_fwd;
        return 0;
}

/* Two NICs forwarding one host port: QEMU would refuse the second at start. */
int vm_config_check_hostfwd_unique(const VmConfig *c, char ret_key[static 8], char **ret_error) {
        for (unsigned i = 0; i < VM_NETS_MAX; i++)
                for (unsigned j = 0; j < i; j++)
                        for (unsigned a = 0; a < c->nets[i].n_hostfwd; a++)
                                for (unsigned b = 0; b < c->nets[j].n_hostfwd; b++) {
                                        const VmHostfwd *x = &c->nets[i].hostfwd[a], *y = &c->nets[j].hostfwd[b];

                                        if (x->udp != y->udp || x->host_port != y->host_port)
                                                continue;
                                        (void) snprintf(ret_key, 8, "net%u", i);
                                        return vmc_error_set(-EINVAL, ret_error,
                                                         "net%u: hostfwd= %s port %u is net%u's already", i,
                                                         x->udp ? "udp" : "tcp", x->host_port, j);
                                }
        return 0;
}

void vm_net_derive_mac(uint32_t vmid, unsigned idx, char ret[static 18]) {
        uint32_t v = (uint32_t) (((uint64_t) vmid * 8 + idx) & 0xFFFFFF);

        (void) snprintf(ret, 18, "52:54:00:%02x:%02x:%02x", (v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF);
}
