/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * guest-agent: what `zvm-agent --stdio` (and every vsock connection) does
 * with the host's bytes before an op acts: the line reader
 * (conn_read_line), authentication (auth_connection), each request line
 * (serve_parse_request: json_parse, object, "op", "id") and each op's
 * argument parsing (exec_parse_args, file_read_parse_args,
 * file_write_parse_args, keys_parse_args, llm_parse_args). Nothing is
 * run, read or written: the ops' actions are not the parser's business,
 * and a fuzzer must not run commands or write files as root.
 *
 * Input: what the host sends after a correct auth line (the harness sends
 * that one): request lines, "\n"-separated. Every line is read; the first
 * LINES_MAX are parsed and checked. Each parse takes a 64 KiB arena chunk
 * (two for a refusal), so an input of 20,000 short lines cost 20,000 of
 * them under ASan and made this target slow as its corpus grew; lines are
 * parsed one by one with nothing carried over, so later ones add nothing.
 *
 * Properties (agent-serve.h, agent-request.h, the op headers):
 *   - the authenticated connection reads lines until EOF, at most
 *     AGENT_REQUEST_LINE_MAX each;
 *   - a refused line or argument gives -EINVAL/-ENOMEM/-ENAMETOOLONG with a
 *     message, and the error answer sent for it is one JSON line with
 *     "ok": false and the code and message as strings;
 *   - an accepted request is an object whose "op" is a NUL-free string;
 *     "auth" matches iff its secret is the agent's;
 *   - accepted arguments are within the bounds: exec (argv 1..EXEC_MAX_ARGV
 *     with a non-empty command, NAME=value environment starting with
 *     PATH, cwd set, timeout, output and stdin bounds), file-read/-write
 *     (absolute path below PATH_MAX, max_bytes and data up to FILE_MAX,
 *     mode up to 07777, a file name that is neither "." nor "..", and
 *     dir + "/" + name is the path), set-authorized-keys (a user, 1 to
 *     KEYS_MAX single-line keys of 1 to KEY_LINE_MAX bytes), llm-start
 *     (ranges, an alias of [A-Za-z0-9._:-], a port other than the
 *     agent's).
 */
#include <errno.h>
#include <limits.h>
#include <sys/mman.h>
#include <unistd.h>

#include "agent-auth.h"
#include "agent-exec.h"
#include "agent-files.h"
#include "agent-keys.h"
#include "agent-llm-ops.h"
#include "agent-serve.h"
#include "fuzz.h"

#define LINES_MAX 64U

#define SECRET "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define AUTH "{\"op\":\"auth\",\"secret\":\"" SECRET "\"}\n"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        if (!secret_set(SECRET, "fuzz"))
                abort();
        return 0;
}

/* What conn_send_error() wrote since offset `from` of the answer file. */
static void check_error_answer(int out, off_t from) {
        off_t end = lseek(out, 0, SEEK_END);
        Arena arena = {};
        char error[256];
        const Json *a, *e, *code, *msg, *ok;
        char *text;
        size_t n;

        FUZZ_CHECK(end > from);
        n = (size_t) (end - from);
        text = malloc(n);
        FUZZ_CHECK(text && pread(out, text, n, from) == (ssize_t) n);
        FUZZ_CHECK(text[n - 1] == '\n' && memchr(text, '\n', n) == text + n - 1);
        a = json_parse(&arena, text, n - 1, error, sizeof(error));
        FUZZ_CHECK(a && a->type == JSON_OBJECT);
        ok = json_get(a, "ok");
        e = json_get(a, "error");
        FUZZ_CHECK(ok && ok->type == JSON_BOOL && !ok->b && e && e->type == JSON_OBJECT);
        code = json_get(e, "code");
        msg = json_get(e, "message");
        FUZZ_CHECK(code && code->type == JSON_STRING && code->len > 0 && msg && msg->type == JSON_STRING);
        arena_free(&arena);
        free(text);
}

static void check_exec(const ExecArgs *a) {
        size_t n = 0;

        FUZZ_CHECK(a->argv && a->argv[0] && a->argv[0][0] && a->cwd && a->envp);
        for (; a->argv[n]; n++)
                ;
        FUZZ_CHECK(n <= EXEC_MAX_ARGV);
        FUZZ_CHECK(a->envp[0] && strncmp(a->envp[0], "PATH=", 5) == 0);      /* the base PATH, or the one asked for */
        for (n = 0; a->envp[n]; n++)
                FUZZ_CHECK(strchr(a->envp[n], '=') && a->envp[n][0] != '=');
        FUZZ_CHECK(n <= EXEC_MAX_ENV + 1);
        FUZZ_CHECK(a->timeout_ms >= 1 && a->timeout_ms <= EXEC_MAX_TIMEOUT_MS);
        FUZZ_CHECK(a->max_output >= 0 && a->max_output <= (int64_t) EXEC_MAX_OUTPUT);
        FUZZ_CHECK(a->stdin_len <= EXEC_MAX_STDIN && (a->stdin_len == 0 || a->stdin_data));
}

static void check_path(const char *p) {
        FUZZ_CHECK(p && p[0] == '/' && strlen(p) < PATH_MAX);
}

/* One op's arguments; returns its result. */
static int check_args(Request *rq, const char *op) {
        int r = 0;

        if (streq(op, "exec")) {
                ExecArgs a = {};

                r = exec_parse_args(rq, &a);
                if (r == 0)
                        check_exec(&a);
        } else if (streq(op, "file-read")) {
                FileReadArgs a = {};

                r = file_read_parse_args(rq, &a);
                if (r == 0) {
                        check_path(a.path);
                        FUZZ_CHECK(a.max_bytes >= 0 && a.max_bytes <= (int64_t) FILE_MAX);
                }
        } else if (streq(op, "file-write")) {
                static FileWriteArgs a;
                char joined[PATH_MAX + 2];

                memset(&a, 0, sizeof(a));
                r = file_write_parse_args(rq, &a);
                if (r == 0) {
                        check_path(a.path);
                        FUZZ_CHECK(a.len <= FILE_MAX && (a.len == 0 || a.data));
                        FUZZ_CHECK(a.mode >= 0 && a.mode <= 07777);
                        FUZZ_CHECK(a.name[0] && !strchr(a.name, '/') && !streq(a.name, ".") && !streq(a.name, ".."));
                        /* "//x" is in "/" too */
                        snprintf(joined, sizeof(joined), "%s/%s", a.dir, a.name);
                        FUZZ_CHECK(streq(joined, a.path) || (streq(a.dir, "/") && streq(joined + 1, a.path)));
                }
        } else if (streq(op, "set-authorized-keys")) {
                KeysArgs a = {};

                r = keys_parse_args(rq, &a);
                if (r == 0) {
                        FUZZ_CHECK(a.user && a.n_keys <= KEYS_MAX);
                        for (size_t i = 0; i < a.n_keys; i++) {
                                size_t len = strlen(a.keys[i]);

                                FUZZ_CHECK(len >= 1 && len <= KEY_LINE_MAX && !strchr(a.keys[i], '\n'));
                        }
                }
        } else if (streq(op, "llm-start")) {
                static LlmConfig c;

                memset(&c, 0, sizeof(c));
                r = llm_parse_args(rq, &c);
                if (r == 0) {
                        check_path(c.model);
                        FUZZ_CHECK(c.threads >= 1 && c.threads <= LLM_MAX_THREADS);
                        FUZZ_CHECK(c.ctx >= 64 && c.ctx <= LLM_MAX_CTX);
                        FUZZ_CHECK(c.parallel >= 1 && c.parallel <= LLM_MAX_PARALLEL);
                        FUZZ_CHECK(c.batch >= 1 && c.batch <= LLM_MAX_BATCH);
                        FUZZ_CHECK(c.port != AGENT_PORT && strlen(c.alias) <= LLM_ALIAS_MAX);
                        FUZZ_CHECK(strspn(c.alias, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") ==
                                   strlen(c.alias));
                }
        }
        if (r < 0)
                FUZZ_CHECK(IN_SET(r, -EINVAL, -ENOMEM, -ENAMETOOLONG) && rq->error[0]);
        return r;
}

static void check_line(Conn *c, int out, const char *line, size_t len) {
        Arena arena = {};
        char error[512] = "";
        Request rq = { .conn = c, .arena = &arena, .error = error, .error_size = sizeof(error) };
        const Json *root = NULL, *id = NULL, *op = NULL, *s;
        off_t at = lseek(out, 0, SEEK_END);
        int r;

        r = serve_parse_request(&arena, line, len, error, sizeof(error), &root, &id, &op);
        FUZZ_CHECK(r == 0 || r == -EINVAL);
        if (r == 0) {
                FUZZ_CHECK(root && root->type == JSON_OBJECT && op == json_get(root, "op") && json_is_cstring(op));
                FUZZ_CHECK(id == json_get(root, "id"));
                rq.args = root;
                if (streq(op->s, "auth")) {
                        s = json_get(root, "secret");
                        if (s && s->type == JSON_STRING)
                                FUZZ_CHECK(secret_matches(s->s, s->len) ==
                                           (s->len == strlen(SECRET) && memcmp(s->s, SECRET, s->len) == 0));
                        arena_free(&arena);
                        return;
                }
                r = check_args(&rq, op->s);
        } else
                FUZZ_CHECK(error[0]);
        if (r < 0) {
                (void) conn_send_error(c, id, -r, error);
                check_error_answer(out, at);
        }
        arena_free(&arena);
}

/* The reader's buffer is kept from one input to the next, as within one
 * connection of the agent: made anew, its 128 KiB were an mmap, 32 page
 * faults and an munmap per input under ASan, most of this target's time. */
static struct {
        char *buf;
        size_t cap;
} reader;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        int in = memfd_create("agent-in", MFD_CLOEXEC), out = memfd_create("agent-out", MFD_CLOEXEC);
        Conn c = { .in_fd = in, .out_fd = out, .sigfd = -EBADF, .ctl_fd = -EBADF, .buf = reader.buf, .cap = reader.cap };
        unsigned n_lines = 0;
        char *line;
        size_t len;
        int r;

        FUZZ_CHECK(in >= 0 && out >= 0);
        FUZZ_CHECK(write(in, AUTH, strlen(AUTH)) == (ssize_t) strlen(AUTH));
        FUZZ_CHECK(size == 0 || write(in, data, size) == (ssize_t) size);
        FUZZ_CHECK(lseek(in, 0, SEEK_SET) == 0);
        FUZZ_CHECK(auth_connection(&c));
        for (;;) {
                r = conn_read_line(&c, 1000, &line, &len);
                FUZZ_CHECK(IN_SET(r, 1, 0));
                if (r == 0)
                        break;
                FUZZ_CHECK(len <= AGENT_REQUEST_LINE_MAX && strlen(line) <= len);
                if (n_lines++ < LINES_MAX)
                        check_line(&c, out, line, len);
        }
        reader.buf = c.buf;
        reader.cap = c.cap;
        close(in);
        close(out);
        return 0;
}
