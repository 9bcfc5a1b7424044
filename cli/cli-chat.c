/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "cli-chat.h"
#include "cli-output.h"
#include "cli-vm.h"
#include "log.h"
#include "string-util.h"

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig) {
        (void) sig;
        stop_requested = 1;
}

const volatile sig_atomic_t *cli_stop_on_signals(void) {
        struct sigaction sa = { .sa_handler = on_stop_signal };     /* no SA_RESTART */

        (void) sigemptyset(&sa.sa_mask);
        (void) sigaction(SIGINT, &sa, NULL);
        (void) sigaction(SIGTERM, &sa, NULL);
        (void) sigaction(SIGHUP, &sa, NULL);
        return &stop_requested;
}

int cli_chat_option(Cli *cli, int c, ChatOptions *o) {
        int r;

        switch (c) {
        case 'p':
                o->prompt = optarg;
                return 1;
        case ARG_CHAT_SYSTEM:
                o->system = optarg;
                return 1;
        case ARG_CHAT_MAX_TOKENS:
                r = verb_parse_uint(optarg, "--max-tokens", 1, 1U << 20, &o->max_tokens);
                return r < 0 ? r : 1;
        case ARG_CHAT_TIMEOUT:
                r = verb_parse_uint(optarg, "--timeout", 1, 86400, &cli->timeout_sec);
                return r < 0 ? r : 1;
        default:
                return 0;
        }
}

int cli_stop_result(Cli *cli, int r) {
        if (r != -ECANCELED)
                return r;
        cli->exit_status = 130;
        return 0;
}

/* Tokens straight to the terminal as they come. Text from a guest must
 * not drive the terminal: on a tty, control characters but newline and
 * tab become '?' (a chunk at a time, so no escape sequence survives). */
static void chat_on_text(OaiRequest *req, const char *text, size_t size, void *userdata) {
        bool tty = *(const bool *) userdata;

        (void) req;
        for (size_t i = 0; i < size; i++) {
                unsigned char c = (unsigned char) text[i];

                if (tty && ((c < ' ' && c != '\n' && c != '\t') || c == 0x7f))
                        c = '?';
                (void) fputc(c, stdout);
        }
        (void) fflush(stdout);
}

static int messages_add(json_object *messages, const char *role, const char *content) {
        json_object *m = json_object_new_object();

        if (!m || json_object_object_add(m, "role", json_object_new_string(role)) < 0 ||
            json_object_object_add(m, "content", json_object_new_string(content)) < 0 ||
            json_object_array_add(messages, m) < 0) {
                json_object_put(m);
                return log_oom();
        }
        return 0;
}

/* Drops the oldest turns past CHAT_HISTORY_MAX bytes of content; the
 * system message (first, when given) and the newest message stay. */
static void messages_trim(json_object *messages, bool has_system) {
        size_t first = has_system ? 1 : 0, total = 0, n = json_object_array_length(messages);
        json_object *c;

        for (size_t i = 0; i < n; i++)
                if (json_object_object_get_ex(json_object_array_get_idx(messages, i), "content", &c))
                        total += (size_t) json_object_get_string_len(c);
        while (total > CHAT_HISTORY_MAX && json_object_array_length(messages) > first + 1) {
                if (json_object_object_get_ex(json_object_array_get_idx(messages, first), "content", &c))
                        total -= (size_t) json_object_get_string_len(c);
                (void) json_object_array_del_idx(messages, first, 1);
        }
}

/* Asks for one answer to messages; prints it; adds it to messages. */
static int chat_turn(const Cli *cli, const OaiTarget *t, const ChatOptions *o, json_object *messages,
                     const volatile sig_atomic_t *stop) {
        _cleanup_(json_object_putp) json_object *body = json_object_new_object();
        _cleanup_(oai_request_freep) OaiRequest *req = NULL;
        bool tty = isatty(STDOUT_FILENO);
        int r;

        if (!body || json_object_object_add(body, "model", json_object_new_string(t->model)) < 0 ||
            json_object_object_add(body, "messages", json_object_get(messages)) < 0 ||
            json_object_object_add(body, "stream", json_object_new_boolean(!cli->json)) < 0)
                return log_oom();
        if (!cli->json) {
                json_object *so = json_object_new_object();

                if (!so || json_object_object_add(so, "include_usage", json_object_new_boolean(true)) < 0 ||
                    json_object_object_add(body, "stream_options", so) < 0)
                        return log_oom();
        }
        if (o->max_tokens > 0 &&
            json_object_object_add(body, "max_tokens", json_object_new_int64(o->max_tokens)) < 0)
                return log_oom();

        r = oai_request_new(cli, t, "/v1/chat/completions", body, cli->json ? NULL : chat_on_text, &tty, &req);
        if (r < 0)
                return r;
        r = oai_run(&req, 1, 1, stop);
        if (r < 0)
                return r;
        if (!cli->json && req->content_size > 0)
                (void) fputc('\n', stdout);
        if (*stop)
                return -ECANCELED;
        r = oai_request_check(cli, req);
        if (r < 0)
                return r;

        log_debug("answer: %.0f prompt + %.0f generated tokens, %.1f generated tok/s, finish %s",
                  oai_request_number(req, "usage", "prompt_tokens"),
                  oai_request_number(req, "usage", "completion_tokens"),
                  oai_request_number(req, "timings", "predicted_per_second"), strnull(req->finish_reason));
        if (cli->json) {
                r = cli_print(cli, req->answer, NULL);
                if (r < 0)
                        return r;
        }
        (void) fflush(stdout);
        return messages_add(messages, "assistant", strempty(req->content));
}

/* One line of stdin, bounded: 1 with a line in buf, 0 at its end,
 * -ECANCELED on a stop signal, -E2BIG for a longer line (skipped). */
static int chat_read_line(char *buf, size_t size, const volatile sig_atomic_t *stop) {
        size_t l;

        for (;;) {
                if (*stop)
                        return -ECANCELED;
                errno = 0;
                if (fgets(buf, (int) size, stdin))
                        break;
                if (ferror(stdin) && errno == EINTR) {
                        clearerr(stdin);
                        continue;
                }
                return 0;
        }
        l = strlen(buf);
        if (l > 0 && buf[l - 1] == '\n') {
                buf[--l] = '\0';
                return 1;
        }
        if (feof(stdin))
                return 1;
        /* Too long: swallow the rest of it. */
        for (int c; (c = getchar()) != EOF && c != '\n';)
                ;
        return -E2BIG;
}

int cli_chat(const Cli *cli, const OaiTarget *target, const ChatOptions *o, const volatile sig_atomic_t *stop) {
        _cleanup_(json_object_putp) json_object *messages = json_object_new_array();
        _cleanup_free_ char *line = malloc(CHAT_LINE_MAX + 2);
        bool tty = isatty(STDIN_FILENO);
        int r;

        if (!messages || !line)
                return log_oom();
        if (o->system) {
                r = messages_add(messages, "system", o->system);
                if (r < 0)
                        return r;
        }
        if (o->prompt) {
                r = messages_add(messages, "user", o->prompt);
                if (r < 0)
                        return r;
                return chat_turn(cli, target, o, messages, stop);
        }

        if (tty)
                fprintf(stderr, "Chatting with %s %s; Ctrl-D or Ctrl-C ends.\n", target->vm ? "VM" : "model",
                        target->model);
        for (;;) {
                if (tty) {
                        fputs("> ", stderr);
                        fflush(stderr);
                }
                r = chat_read_line(line, CHAT_LINE_MAX + 2, stop);
                if (r == -E2BIG) {
                        log_error("that line is longer than %u KiB, skipped", CHAT_LINE_MAX / 1024);
                        continue;
                }
                if (r <= 0) {
                        if (tty && r == 0)
                                fputc('\n', stderr);
                        return r;
                }
                if (isempty(line))
                        continue;
                r = messages_add(messages, "user", line);
                if (r < 0)
                        return r;
                messages_trim(messages, o->system);
                r = chat_turn(cli, target, o, messages, stop);
                if (r == -ECANCELED)
                        return r;
                if (r < 0 && !tty)
                        return r;
                if (r < 0)      /* said; the conversation goes on without that question */
                        (void) json_object_array_del_idx(messages, json_object_array_length(messages) - 1, 1);
        }
}
