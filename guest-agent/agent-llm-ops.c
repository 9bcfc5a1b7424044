/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent-exec.h"
#include "agent-llm-ops.h"
#include "agent-llm.h"
#include "fd-util.h"
#include "time-util.h"

/* One request to the supervisor and its answer (into *reply). */
static int llm_ctl_call(Conn *c, uint32_t op, const LlmConfig *config, LlmCtlReply *reply) {
        LlmCtlRequest rq = { .op = op };
        struct pollfd pfd = { .fd = c->ctl_fd, .events = POLLIN };
        ssize_t k;

        if (c->ctl_fd < 0)
                return -EOPNOTSUPP;
        if (config)
                rq.config = *config;
        if (send(c->ctl_fd, &rq, sizeof(rq), MSG_NOSIGNAL) != sizeof(rq))
                return errno > 0 ? -errno : -EIO;
        for (;;) {
                int r = poll(&pfd, 1, LLM_CTL_TIMEOUT_MS);

                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        return r < 0 ? -errno : -ETIMEDOUT;
                k = recv(c->ctl_fd, reply, sizeof(*reply), 0);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k != sizeof(*reply))
                        return k < 0 ? -errno : -EIO;
                reply->message[sizeof(reply->message) - 1] = 0;
                reply->status.log_tail[sizeof(reply->status.log_tail) - 1] = 0;
                reply->status.config.model[sizeof(reply->status.config.model) - 1] = 0;
                return 0;
        }
}

static void llm_put_status(Buf *out, const LlmStatus *s) {
        char sig[16];

        buf_puts(out, "{\"state\":");
        json_put_cstring(out, llm_state_name((LlmState) s->state));
        json_put_key(out, "pid");
        if (s->pid > 0)
                buf_printf(out, "%d", s->pid);
        else
                buf_puts(out, "null");
        buf_printf(out, ",\"restarts\":%u", s->restarts);
        json_put_key(out, "model");
        if (s->have_config)
                json_put_cstring(out, s->config.model);
        else
                buf_puts(out, "null");
        if (s->have_config)
                buf_printf(out, ",\"threads\":%u,\"ctx\":%u,\"parallel\":%u,\"batch\":%u,\"port\":%u",
                           s->config.threads, s->config.ctx, s->config.parallel, s->config.batch, s->config.port);
        json_put_key(out, "ready_ms");
        if (s->ready_ms > 0)
                buf_printf(out, "%llu", (unsigned long long) s->ready_ms);
        else
                buf_puts(out, "null");
        buf_printf(out, ",\"state_ms\":%llu,\"restart_in_ms\":%llu,\"connections\":%u",
                   (unsigned long long) s->state_ms, (unsigned long long) s->restart_in_ms, s->connections);
        json_put_key(out, "last_exit_code");
        if (s->last_exit_code >= 0)
                buf_printf(out, "%d", s->last_exit_code);
        else
                buf_puts(out, "null");
        json_put_key(out, "last_signal");
        if (s->last_signal > 0)
                json_put_cstring(out, signal_name(s->last_signal, sig, sizeof(sig)));
        else
                buf_puts(out, "null");
        /* Its output only when something is wrong: loading, failed, restarting. */
        json_put_key(out, "log_tail");
        if (s->state != LLM_READY && s->state != LLM_STOPPED && s->log_tail[0])
                json_put_cstring(out, s->log_tail);
        else
                buf_puts(out, "null");
        buf_putc(out, '}');
}

void llm_put_info(Conn *c, Buf *out) {
        LlmCtlReply *reply = calloc(1, sizeof(*reply));

        if (reply && llm_ctl_call(c, LLM_CTL_STATUS, NULL, reply) >= 0)
                llm_put_status(out, &reply->status);
        else
                buf_puts(out, "null");
        free(reply);
}

/* The model must be a readable regular GGUF file: said here, clearly,
 * rather than as a llama-server that dies five times. */
static int check_model(Request *rq, const char *path) {
        _cleanup_close_ int fd = -EBADF;
        char magic[4];
        struct stat st;

        if (strstr(path, "/../") || strstr(path, "/./") || strstr(path, "//"))
                return request_fail(rq, EINVAL, "'model' must be a normalized path: '%s'", path);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return request_fail(rq, errno, "model '%s': %s", path, strerror(errno));
        if (fstat(fd, &st) < 0)
                return request_fail(rq, errno, "model '%s': %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return request_fail(rq, EINVAL, "model '%s' is not a regular file", path);
        if (read(fd, magic, sizeof(magic)) != sizeof(magic) || memcmp(magic, "GGUF", 4) != 0)
                return request_fail(rq, EINVAL, "model '%s' is not a GGUF file (no \"GGUF\" magic)", path);
        return 0;
}

int llm_parse_args(Request *rq, LlmConfig *c) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        const char *model, *alias = NULL;
        int64_t threads, ctx, parallel, batch, port;
        int r;

        if ((r = request_get_path(rq, "model", &model)) < 0 ||
            (r = request_get_int(rq, "threads", ncpu > 0 ? MIN(ncpu, LLM_MAX_THREADS) : 1, 1, LLM_MAX_THREADS,
                                 &threads)) < 0 ||
            (r = request_get_int(rq, "ctx", LLM_DEFAULT_CTX, 64, LLM_MAX_CTX, &ctx)) < 0 ||
            (r = request_get_int(rq, "parallel", 1, 1, LLM_MAX_PARALLEL, &parallel)) < 0 ||
            (r = request_get_int(rq, "batch", LLM_DEFAULT_BATCH, 1, LLM_MAX_BATCH, &batch)) < 0 ||
            (r = request_get_int(rq, "port", AGENT_LLM_PORT, 0, UINT32_MAX - 1, &port)) < 0 ||
            (r = request_get_string(rq, "alias", false, &alias)) < 0)
                return r;
        if (alias && (strlen(alias) > LLM_ALIAS_MAX || strspn(alias, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                                      "0123456789._:-") != strlen(alias)))
                return request_fail(rq, EINVAL, "'alias' must be 1-%u of [A-Za-z0-9._:-]", LLM_ALIAS_MAX);
        if (port == AGENT_PORT)
                return request_fail(rq, EINVAL, "'port' %u is the agent's own", AGENT_PORT);
        if (strlen(model) >= sizeof(c->model))
                return request_fail(rq, ENAMETOOLONG, "'model' is too long");
        strcpy(c->model, model);
        snprintf(c->alias, sizeof(c->alias), "%s", alias ? alias : "");
        c->threads = (uint32_t) threads;
        c->ctx = (uint32_t) ctx;
        c->parallel = (uint32_t) parallel;
        c->batch = (uint32_t) batch;
        c->port = (uint32_t) port;
        return 0;
}

static int llm_answer(Request *rq, Buf *out, int r, const LlmCtlReply *reply) {
        if (r == -EOPNOTSUPP)
                return request_fail(rq, EOPNOTSUPP, "this agent runs no llm supervisor");
        if (r < 0)
                return request_fail(rq, -r, "the llm supervisor does not answer: %s", strerror(-r));
        if (reply->err > 0)
                return request_fail(rq, reply->err, "%s", reply->message[0] ? reply->message : strerror(reply->err));
        json_put_key(out, "llm");
        llm_put_status(out, &reply->status);
        return 0;
}

int op_llm_start(Request *rq, Buf *out) {
        _cleanup_free_ LlmCtlReply *reply = calloc(1, sizeof(*reply));
        _cleanup_free_ LlmConfig *c = calloc(1, sizeof(*c));
        int r;

        if (!reply || !c)
                return request_fail(rq, ENOMEM, "out of memory");
        r = llm_parse_args(rq, c);
        if (r < 0)
                return r;
        r = check_model(rq, c->model);
        if (r < 0)
                return r;
        r = llm_ctl_call(rq->conn, LLM_CTL_START, c, reply);
        return llm_answer(rq, out, r, reply);
}

/* Answers once llama-server is gone (bounded by LLM_STOP_WAIT_MS). */
int op_llm_stop(Request *rq, Buf *out) {
        _cleanup_free_ LlmCtlReply *reply = calloc(1, sizeof(*reply));
        uint64_t deadline = now_msec(CLOCK_MONOTONIC) + LLM_STOP_WAIT_MS;
        int r;

        if (!reply)
                return request_fail(rq, ENOMEM, "out of memory");
        r = llm_ctl_call(rq->conn, LLM_CTL_STOP, NULL, reply);
        while (r >= 0 && reply->status.state == LLM_STOPPING && msec_until(deadline) > 0) {
                sleep_msec(100);
                r = llm_ctl_call(rq->conn, LLM_CTL_STATUS, NULL, reply);
        }
        return llm_answer(rq, out, r, reply);
}
