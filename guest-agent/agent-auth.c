/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent-auth.h"
#include "agent-contract.h"
#include "fd-util.h"
#include "log.h"

static char secret[AGENT_SECRET_HEX_LEN + 1];
static char problem[256] = "not loaded";

/* Takes buf (n bytes, NUL-terminated, from source) as the secret if it is
 * 64 hex digits after trailing whitespace. */
static bool secret_take(char *buf, size_t n, const char *source) {
        while (n > 0 && isspace((unsigned char) buf[n - 1]))
                buf[--n] = 0;
        if (n != AGENT_SECRET_HEX_LEN) {
                snprintf(problem, sizeof(problem), "%s holds %zu bytes, not %d hex digits", source, n,
                         AGENT_SECRET_HEX_LEN);
                return false;
        }
        for (size_t i = 0; i < n; i++)
                if (!isxdigit((unsigned char) buf[i])) {
                        snprintf(problem, sizeof(problem), "%s is not hex", source);
                        return false;
                }
        memcpy(secret, buf, AGENT_SECRET_HEX_LEN + 1);
        return true;
}

bool secret_load(const char *path) {
        char buf[512];
        ssize_t n;
        bool ok;

        n = read_file_to_buffer(path, buf, sizeof(buf));
        if (n < 0) {
                snprintf(problem, sizeof(problem), "cannot read %s: %s", path, strerror((int) -n));
                return false;
        }
        ok = secret_take(buf, (size_t) n, path);
        explicit_bzero(buf, sizeof(buf));
        return ok;
}

bool secret_set(const char *value, const char *source) {
        char buf[512];
        size_t n = strlen(value);
        bool ok;

        if (n >= sizeof(buf)) {
                snprintf(problem, sizeof(problem), "%s holds %zu bytes, not %d hex digits", source, n,
                         AGENT_SECRET_HEX_LEN);
                return false;
        }
        memcpy(buf, value, n + 1);
        ok = secret_take(buf, n, source);
        explicit_bzero(buf, sizeof(buf));
        return ok;
}

bool secret_loaded(void) {
        return secret[0] != 0;
}

const char *secret_problem(void) {
        return problem;
}

const char *secret_value(void) {
        return secret;
}

bool secret_matches(const char *s, size_t len) {
        volatile unsigned char d = 0;

        if (!secret_loaded() || len != AGENT_SECRET_HEX_LEN)
                return false;
        for (size_t i = 0; i < AGENT_SECRET_HEX_LEN; i++)
                d |= (unsigned char) s[i] ^ (unsigned char) secret[i];
        return d == 0;
}

/* The first line: {"op":"auth","secret":"<64 hex>"} and nothing else. */
bool auth_connection(Conn *c) {
        static const char ok[] = "{\"ok\":true}\n";
        char *line = NULL, error[256];
        const char *why = NULL;
        Arena arena = {};
        const Json *root, *op, *s;
        size_t len = 0;
        int r;

        r = conn_read_line(c, AUTH_TIMEOUT_MS, &line, &len);
        if (r == 0 || r == -ECONNRESET)
                return false;
        if (r == -ETIMEDOUT)
                why = "no authentication within 30 s";
        else if (r == -E2BIG)
                why = "the first line must be {\"op\":\"auth\",\"secret\":...}";
        else if (r < 0) {
                log_info("connection: %s", strerror(-r));
                return false;
        } else if (!secret_loaded())
                why = secret_problem();
        else {
                root = json_parse(&arena, line, len, error, sizeof(error));
                op = json_get(root, "op");
                s = json_get(root, "secret");
                if (!root || !op || op->type != JSON_STRING || strcmp(op->s, "auth") != 0)
                        why = "authentication required: the first line must be {\"op\":\"auth\",\"secret\":...}";
                else if (!s || s->type != JSON_STRING || !secret_matches(s->s, s->len))
                        why = "wrong secret";
                arena_free(&arena);
        }
        if (why) {
                Buf b = {};

                log_info("refused a connection: %s", why);
                buf_puts(&b, "{\"ok\":false,\"error\":{\"code\":\"EACCES\",\"message\":");
                json_put_cstring(&b, secret_loaded() ? why : "the agent has no secret, it refuses every connection");
                buf_puts(&b, "}}\n");
                (void) conn_send(c, &b);
                buf_free(&b);
                conn_linger(c);
                return false;
        }
        return loop_write_full(c->out_fd, ok, sizeof(ok) - 1, VSOCK_WRITE_MAX, WRITE_TIMEOUT_MS) >= 0;
}

