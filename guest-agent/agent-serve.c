/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent-auth.h"
#include "agent-exec.h"
#include "agent-files.h"
#include "agent-info.h"
#include "agent-keys.h"
#include "agent-llm-ops.h"
#include "agent-power.h"
#include "agent-pty.h"
#include "agent-serve.h"

static const struct {
        const char *name;
        OpHandler handler;
} op_table[] = {
        { "ping", op_ping },
        { "info", op_info },
        { "set-hostname", op_set_hostname },
        { "exec", op_exec },
        { "file-read", op_file_read },
        { "file-write", op_file_write },
        { "shutdown", op_shutdown },
        { "reboot", op_reboot },
        { "set-authorized-keys", op_set_authorized_keys },
        { "llm-start", op_llm_start },
        { "llm-stop", op_llm_stop },
};

int serve_parse_request(Arena *arena, const char *line, size_t len, char *error, size_t error_size,
                        const Json **ret_root, const Json **ret_id, const Json **ret_op) {
        const Json *root, *op;

        *ret_id = NULL;
        root = json_parse(arena, line, len, error, error_size);
        if (!root)
                return -EINVAL;
        if (root->type != JSON_OBJECT) {
                snprintf(error, error_size, "a request must be a JSON object");
                return -EINVAL;
        }
        *ret_id = json_get(root, "id");
        op = json_get(root, "op");
        if (!op) {
                snprintf(error, error_size, "'op' is required");
                return -EINVAL;
        }
        if (!json_is_cstring(op)) {
                snprintf(error, error_size, "'op' must be a string");
                return -EINVAL;
        }
        *ret_root = root;
        *ret_op = op;
        return 0;
}

/* Answers one request line. Returns < 0 if the connection must close. */
static int serve_request(Conn *c, const char *line, size_t len) {
        Arena arena = {};
        char error[512] = "";
        Request rq = { .conn = c, .arena = &arena, .error = error, .error_size = sizeof(error) };
        const Json *root, *id = NULL, *op;
        OpHandler handler = NULL;
        Buf out = {};
        int r;

        r = serve_parse_request(&arena, line, len, error, sizeof(error), &root, &id, &op);
        if (r < 0) {
                r = conn_send_error(c, id, -r, error);
                goto finish;
        }
        rq.args = root;
        if (strcmp(op->s, "auth") == 0) {
                /* Again, after the first line: harmless if right. */
                const Json *s = json_get(root, "secret");

                if (!s || s->type != JSON_STRING || !secret_matches(s->s, s->len)) {
                        (void) conn_send_error(c, id, EACCES, "wrong secret");
                        r = -EACCES;
                        goto finish;
                }
                buf_puts(&out, "{\"id\":");
                json_put_value(&out, id);
                buf_puts(&out, ",\"ok\":true}\n");
                r = conn_send(c, &out);
                goto finish;
        }
        if (strcmp(op->s, "pty") == 0) {
                /* It answers itself and owns the connection until the
                 * command ends; then the connection closes. */
                r = op_pty(&rq, id);
                if (r < 0)
                        r = conn_send_error(c, id, -r, error[0] ? error : strerror(-r));
                else
                        r = -ESHUTDOWN;
                goto finish;
        }
        for (size_t i = 0; i < ELEMENTSOF(op_table); i++)
                if (strcmp(op->s, op_table[i].name) == 0)
                        handler = op_table[i].handler;
        if (!handler) {
                char msg[128];

                snprintf(msg, sizeof(msg), "unknown op '%.64s'", op->s);
                r = conn_send_error(c, id, ENOSYS, msg);
                goto finish;
        }

        buf_puts(&out, "{\"id\":");
        json_put_value(&out, id);
        buf_puts(&out, ",\"ok\":true");
        r = handler(&rq, &out);
        if (r < 0) {
                c->after = AFTER_NOTHING;
                r = conn_send_error(c, id, -r, error[0] ? error : strerror(-r));
                goto finish;
        }
        buf_puts(&out, "}\n");
        if (out.failed) {
                c->after = AFTER_NOTHING;
                r = conn_send_error(c, id, ENOMEM, "the answer does not fit in memory");
                goto finish;
        }
        r = conn_send(c, &out);
finish:
        buf_free(&out);
        arena_free(&arena);
        return r;
}


void serve_connection(Conn *c) {
        if (!auth_connection(c))
                return;
        for (;;) {
                char *line = NULL;
                size_t len = 0;
                int r;

                r = conn_read_line(c, IDLE_TIMEOUT_MS, &line, &len);
                if (r == -E2BIG) {
                        (void) conn_send_error(c, NULL, E2BIG, "request line longer than 8 MiB");
                        conn_linger(c);
                        return;
                }
                if (r <= 0)
                        return;
                if (serve_request(c, line, len) < 0)
                        return;
                if (c->after != AFTER_NOTHING) {
                        (void) shutdown(c->out_fd, SHUT_RDWR);
                        close(c->in_fd);
                        if (c->out_fd != c->in_fd)
                                close(c->out_fd);
                        power_action(c->after);
                }
        }
}

