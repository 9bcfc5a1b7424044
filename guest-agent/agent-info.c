/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "agent-contract.h"
#include "agent-info.h"
#include "agent-llm-ops.h"
#include "fd-util.h"

double info_uptime(void) {
        char buf[128];
        struct timespec ts;

        if (read_file_to_buffer("/proc/uptime", buf, sizeof(buf)) > 0)
                return strtod(buf, NULL);
        clock_gettime(CLOCK_BOOTTIME, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* /run/zvm/initrd-timing is one line "stage=ms stage=ms ..." written by the
 * initrd (initrd/init.c); we pass it on as an object, or null. */
void info_put_initrd_timing(Buf *b) {
        char buf[1024], *p, *save = NULL;
        bool any = false;

        if (read_file_to_buffer(AGENT_INITRD_TIMING_FILE, buf, sizeof(buf)) <= 0) {
                buf_puts(b, "null");
                return;
        }
        for (p = strtok_r(buf, " \t\n", &save); p; p = strtok_r(NULL, " \t\n", &save)) {
                char *eq = strchr(p, '='), *end;
                unsigned long long ms;
                bool name_ok = eq && eq != p && eq - p <= 32;

                for (char *c = p; name_ok && c < eq; c++)
                        name_ok = isalnum((unsigned char) *c) || *c == '-' || *c == '_';
                if (!name_ok || !isdigit((unsigned char) eq[1]))
                        continue;
                errno = 0;
                ms = strtoull(eq + 1, &end, 10);
                if (errno || *end)
                        continue;
                buf_putc(b, any ? ',' : '{');
                json_put_string(b, p, (size_t) (eq - p));
                buf_printf(b, ":%llu", ms);
                any = true;
        }
        buf_puts(b, any ? "}" : "null");
}

/* The guest's ssh host public keys, as an array of "TYPE BASE64" strings
 * (comments dropped): the host records them in its known_hosts, so the
 * first ssh connection to the guest is verified. Only well-formed lines of
 * printable ASCII are passed on; no keys (no sshd in this guest) is []. */
void info_put_ssh_host_keys(Buf *b) {
        static const char *const files[] = {
                "/etc/ssh/ssh_host_ed25519_key.pub",
                "/etc/ssh/ssh_host_ecdsa_key.pub",
                "/etc/ssh/ssh_host_rsa_key.pub",
        };
        bool any = false;

        buf_putc(b, '[');
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                static const char allowed[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=@.-";
                char buf[4096], line[4096], *type, *key, *save = NULL;

                if (read_file_to_buffer(files[i], buf, sizeof(buf)) <= 0)
                        continue;
                type = strtok_r(buf, " \t\n", &save);
                key = type ? strtok_r(NULL, " \t\n", &save) : NULL;
                if (!key || strlen(type) > 64 || type[strspn(type, allowed)] || key[strspn(key, allowed)])
                        continue;
                snprintf(line, sizeof(line), "%s %s", type, key);
                if (any)
                        buf_putc(b, ',');
                json_put_cstring(b, line);
                any = true;
        }
        buf_putc(b, ']');
}


/* A warm-pool guest takes the name of the VM that claimed it (zvmd's
 * core/manager-pool.c), as a cold boot takes systemd.hostname=. */
int op_set_hostname(Request *rq, Buf *out) {
        const char *name;
        size_t len;
        int r;

        r = request_get_string(rq, "hostname", true, &name);
        if (r < 0)
                return r;
        len = strlen(name);
        if (len == 0 || len > 64 || name[0] == '-' || name[0] == '.' ||
            strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != len)
                return request_fail(rq, EINVAL, "'hostname' must be 1 to 64 of [A-Za-z0-9._-], not starting with '-' or '.'");
        if (sethostname(name, len) < 0)
                return request_fail(rq, errno, "sethostname(%s) failed: %s", name, strerror(errno));
        json_put_key(out, "hostname");
        json_put_string(out, name, len);
        return 0;
}

int op_ping(Request *rq, Buf *out) {
        json_put_key(out, "pong");
        buf_puts(out, "true");
        return 0;
}

static void info_put_memory(Buf *b) {
        static const char *const fields[] = { "MemTotal:", "MemAvailable:", "MemFree:" };
        static const char *const keys[] = { "total_kib", "available_kib", "free_kib" };
        unsigned long long v[3] = {};
        bool have[3] = {};
        char buf[8192];

        if (read_file_to_buffer("/proc/meminfo", buf, sizeof(buf)) > 0)
                for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
                        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                                if (strncmp(line, fields[i], strlen(fields[i])) == 0) {
                                        v[i] = strtoull(line + strlen(fields[i]), NULL, 10);
                                        have[i] = true;
                                }
        buf_putc(b, '{');
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                if (i > 0)
                        buf_putc(b, ',');
                json_put_cstring(b, keys[i]);
                if (have[i])
                        buf_printf(b, ":%llu", v[i]);
                else
                        buf_puts(b, ":null");
        }
        buf_putc(b, '}');
}

int op_info(Request *rq, Buf *out) {
        struct utsname u;
        struct sysinfo si;
        char buf[256];

        if (uname(&u) < 0)
                memset(&u, 0, sizeof(u));
        json_put_key(out, "agent_version");
        json_put_cstring(out, ZVM_AGENT_VERSION);
        json_put_key(out, "hostname");
        json_put_cstring(out, u.nodename);
        json_put_key(out, "kernel");
        json_put_cstring(out, u.release);
        json_put_key(out, "uptime");
        json_put_double(out, info_uptime(), 3);
        json_put_key(out, "initrd_timing");
        info_put_initrd_timing(out);
        json_put_key(out, "ssh_host_keys");
        info_put_ssh_host_keys(out);
        json_put_key(out, "memory");
        info_put_memory(out);
        json_put_key(out, "llm");
        llm_put_info(rq->conn, out);
        json_put_key(out, "load");
        if (read_file_to_buffer("/proc/loadavg", buf, sizeof(buf)) > 0) {
                double l[3];

                if (sscanf(buf, "%lf %lf %lf", &l[0], &l[1], &l[2]) == 3) {
                        buf_putc(out, '[');
                        for (int i = 0; i < 3; i++) {
                                if (i)
                                        buf_putc(out, ',');
                                json_put_double(out, l[i], 2);
                        }
                        buf_putc(out, ']');
                        return 0;
                }
        }
        if (sysinfo(&si) == 0)
                buf_printf(out, "[%.2f,%.2f,%.2f]", si.loads[0] / 65536.0, si.loads[1] / 65536.0,
                           si.loads[2] / 65536.0);
        else
                buf_puts(out, "null");
        return 0;
}

