/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The llm supervisor: runs llama-server on a model, on a unix socket, as a
 * child in its own process group; keeps its output in a ring; restarts it
 * with back-off when it dies; says when it is ready (GET /health = 200);
 * owns the vsock bridge to it. It lives in the agent's main process (or,
 * with --stdio, in a process of its own) inside the main poll loop; the
 * connection processes drive it with fixed-size messages over a
 * SOCK_SEQPACKET socketpair (LlmCtlRequest → LlmCtlReply).
 */

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent-bridge.h"
#include "agent-poll.h"

#define LLM_DEFAULT_SERVER "llama-server"
#define LLM_DEFAULT_DIR "/run/zvm-llm"
#define LLM_SOCKET_NAME "llama.sock"    /* llama-server takes a unix socket when --host ends in .sock */
#define LLM_PID_NAME "llama.pid"      /* the running server, for a restarted agent */
#define LLM_LOG_MAX ((size_t) 64 << 10)
#define LLM_TAIL_MAX 4096               /* the last lines passed on in info */
#define LLM_BACKOFF_MIN_MS 1000U
#define LLM_BACKOFF_MAX_MS 30000U
#define LLM_STABLE_MS 60000U            /* ready this long: a later death restarts the back-off */
#define LLM_FAIL_AFTER 5                /* deaths in a row without being stable: failed */
#define LLM_PROBE_INTERVAL_MS 500U
#define LLM_PROBE_TIMEOUT_MS 2000U
#define LLM_STOP_GRACE_MS 10000U        /* SIGTERM, then SIGKILL to the group */

typedef enum LlmState {
        LLM_STOPPED,
        LLM_LOADING,            /* started (or waiting to restart), /health not yet 200 */
        LLM_READY,
        LLM_FAILED,             /* died LLM_FAIL_AFTER times quickly: not restarted until llm-start */
        LLM_STOPPING,           /* llm-stop: waiting for the process group to exit */
} LlmState;

const char *llm_state_name(LlmState s);

#define LLM_ALIAS_MAX 64U

typedef struct LlmConfig {
        char model[PATH_MAX];
        char alias[LLM_ALIAS_MAX + 1];  /* the name answers carry as "model" (--alias); "": the file's path */
        uint32_t threads, ctx, parallel, batch;
        uint32_t port;          /* vsock port of the bridge; 0: none */
} LlmConfig;

typedef struct LlmStatus {
        int32_t state;          /* LlmState */
        int32_t pid;            /* 0: none */
        uint32_t restarts;      /* restarts after a death since llm-start */
        int32_t last_exit_code; /* -1: none */
        int32_t last_signal;    /* 0: none */
        uint64_t ready_ms;      /* start → ready of the current process; 0: not ready */
        uint64_t state_ms;      /* in this state for */
        uint64_t restart_in_ms; /* waiting to restart: in; else 0 */
        uint32_t connections;   /* bridged connections open */
        bool have_config;
        LlmConfig config;
        char log_tail[LLM_TAIL_MAX];    /* the last lines of its output, NUL-terminated */
} LlmStatus;

typedef enum LlmCtlOp {
        LLM_CTL_STATUS = 1,
        LLM_CTL_START,
        LLM_CTL_STOP,
} LlmCtlOp;

typedef struct LlmCtlRequest {
        uint32_t op;
        LlmConfig config;
} LlmCtlRequest;

typedef struct LlmCtlReply {
        int32_t err;            /* 0 or errno */
        char message[256];
        LlmStatus status;
} LlmCtlReply;

typedef struct LlmLog {
        char *data;             /* LLM_LOG_MAX ring, allocated at the first byte */
        size_t start, len;
} LlmLog;

typedef struct Llm {
        const char *server;     /* argv[0], looked up in PATH */
        const char *dir;        /* holds the socket; created 0700 */
        char sock[PATH_MAX];
        LlmConfig config;
        bool wanted, have_config, respawn_now;
        LlmState state;
        pid_t pid;
        int log_fd, probe_fd;
        char probe_buf[256];
        size_t probe_len;
        bool probe_sent;
        LlmLog log;
        uint64_t started_at, ready_at, state_since, restart_at, probe_at, probe_deadline, kill_at;
        unsigned backoff_ms, quick_deaths, restarts;
        int last_exit_code, last_signal;
        Bridge bridge;
        int i_log, i_probe;
} Llm;

void llm_init(Llm *l, const char *server, const char *dir);
/* In a forked child that is not the supervisor: drop our fds, touch nothing. */
void llm_forget(Llm *l);
/* Whether pid was llama-server (then it is handled). */
bool llm_reaped(Llm *l, pid_t pid, int status);
void llm_poll_add(Llm *l, PollSet *ps);
void llm_poll_dispatch(Llm *l, const PollSet *ps);
/* Serves the control messages waiting on fd; < 0: close it (EOF, error). */
int llm_ctl_serve(Llm *l, int fd);
/* Stop, for the supervisor's own exit (--stdio): true once nothing runs. */
bool llm_stop(Llm *l);
