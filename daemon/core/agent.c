/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * zvmd's side of zvm-agent (api/agent-protocol.md).
 *
 * Every call is its own vsock connection: a non-blocking connect (and, on
 * hybrid vsock, the CONNECT/OK handshake) driven by lib/vsock's state
 * machine, then the auth line and the request, then two answer lines; all of
 * it from the event loop, under one deadline per call.
 *
 * The guest is hostile (api/agent-wire.h): an answer line is capped by the
 * operation that asked for it while it is read, and pre-scanned before
 * json-c parses it; READY is taken only from the VM's own vsock address,
 * while its agent is waiting, from at most AGENT_READY_CONNS_MAX connections
 * at a time, and only with the VM's (non-empty) secret.
 */
#include <errno.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent-wire.h"
#include "agent.h"
#include "fd-util.h"
#include "fileio.h"
#include "json-util.h"
#include "log.h"
#include "loop.h"
#include "macro.h"
#include "string-util.h"
#include "time-util.h"
#include "vsock.h"

/* What the kernel may take for a pending AF_VSOCK connect; the call's own
 * deadline (its timer) usually ends it first. */
#define AGENT_CONNECT_TIMEOUT_MS 3000
#define AGENT_READY_TIMEOUT_USEC (5ULL * 1000000ULL)
/* READY connections open at once: per VM (the agent sends one; a retry may
 * overlap), and in all on the kernel vsock listener. */
#define AGENT_READY_CONNS_MAX 2U
#define AGENT_READY_CONNS_TOTAL_MAX 64U
#define AGENT_HEALTH_INTERVAL_USEC_DEFAULT (30ULL * 1000000ULL)
#define AGENT_HEALTH_TIMEOUT_USEC (10ULL * 1000000ULL)

struct AgentCall {
        VmAgent *agent;
        AgentCall *next;
        VsockConnect *connect;          /* until connected; owns the fd meanwhile */
        int fd;
        sd_event_source *io;
        sd_event_source *timer;
        char *out;
        size_t out_size, out_done;
        char *in;
        size_t in_size, in_alloc;
        size_t in_scanned;              /* bytes of in known to hold no newline */
        size_t answer_max;              /* the answer line's cap (api/agent-wire.h) */
        bool authed;
        agent_result_fn cb;
        void *userdata;
};

/* A guest connection to port 1025 that should say READY; listed in its VM. */
struct AgentReadyConn {
        VmAgent *agent;
        AgentReadyConn *next;
        bool kernel;                    /* counted in the host's total */
        int fd;
        sd_event_source *io;
        sd_event_source *timer;
        char buf[AGENT_READY_LINE_MAX + 1];
        size_t size;
};

static const char *const agent_state_table[_AGENT_STATE_MAX] = {
        [AGENT_NONE] = "none",
        [AGENT_WAITING] = "waiting",
        [AGENT_READY] = "ready",
        [AGENT_UNRESPONSIVE] = "unresponsive",
};

const char *agent_state_to_string(AgentState s) {
        return s >= 0 && s < _AGENT_STATE_MAX ? agent_state_table[s] : NULL;
}

static void agent_set_state(VmAgent *a, AgentState s) {
        if (a->state == s)
                return;
        AgentState previous = a->state;

        log_info("VM %u: agent %s → %s", a->vmid, agent_state_to_string(a->state), agent_state_to_string(s));
        a->state = s;
        if (a->host->on_changed)
                a->host->on_changed(a, previous, a->host->userdata);
}

/* ---- calls ------------------------------------------------------------------ */

static void call_unlink(AgentCall *c) {
        for (AgentCall **p = &c->agent->calls; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        break;
                }
}

static void call_free(AgentCall *c) {
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->timer);
        vsock_connect_free(c->connect);
        safe_close(c->fd);
        free(c->out);
        free(c->in);
        free(c);
}

static void call_finish(AgentCall *c, json_object *response, const char *code, const char *message) {
        agent_result_fn cb = c->cb;
        void *userdata = c->userdata;
        VmAgent *a = c->agent;

        call_unlink(c);
        call_free(c);
        if (cb)
                cb(a, response, code, message, userdata);
}

void agent_call_cancel(AgentCall *c) {
        if (!c)
                return;
        call_unlink(c);
        call_free(c);
}

void agent_calls_cancel_all(VmAgent *a) {
        while (a->calls) {
                AgentCall *c = a->calls;

                call_finish(c, NULL, "ESHUTDOWN", "the VM went down");
        }
}

/* Handles one complete line; returns true when the call is finished. */
static bool call_line(AgentCall *c, char *line, size_t len) {
        json_object *o = NULL;
        const char *code = NULL, *message = NULL;
        int r;

        /* Parsed by api/agent-wire (issue 14: fuzzed there). */
        r = agent_answer_parse(line, len, &o, &code, &message);
        if (r < 0) {
                call_finish(c, NULL, "EPROTO", "malformed answer from the agent");
                return true;
        }
        if (r == 0) {
                char buf[512];

                snprintf(buf, sizeof(buf), "%s%s", c->authed ? "" : "authentication failed: ", message);
                char *code_copy = strdup(code);
                json_object_put(o);
                call_finish(c, NULL, code_copy ? code_copy : "EPROTO", buf);
                free(code_copy);
                return true;
        }
        if (!c->authed) {
                c->authed = true;
                json_object_put(o);
                return false;
        }
        call_finish(c, o, NULL, NULL);
        json_object_put(o);
        return true;
}

/* The cap of the line being read: the auth answer is small, the answer to
 * the request has its operation's cap. */
static size_t call_line_max(const AgentCall *c) {
        return c->authed ? c->answer_max : AGENT_ANSWER_SMALL_MAX;
}

/* Room for at least 4 KiB more, growing geometrically up to the current
 * line's cap (+ newline + NUL). 0, or -EMSGSIZE when the line is over it. */
static int call_in_reserve(AgentCall *c) {
        size_t limit = call_line_max(c) + 2, na;
        char *p;

        if (c->in_alloc - c->in_size >= 4096 || c->in_alloc >= limit)
                return c->in_alloc - c->in_size > 1 ? 0 : -EMSGSIZE;
        na = MIN(MAX(c->in_alloc * 2, (size_t) 16384), limit);
        p = realloc(c->in, na);
        if (!p)
                return -ENOMEM;
        c->in = p;
        c->in_alloc = na;
        return 0;
}

/* Hands every complete line in the buffer to call_line(); true when the
 * call is finished (freed). */
static bool call_consume_lines(AgentCall *c) {
        char *nl;

        while ((nl = memchr(c->in + c->in_scanned, '\n', c->in_size - c->in_scanned))) {
                size_t len = (size_t) (nl - c->in);

                *nl = 0;
                if (call_line(c, c->in, len))
                        return true;
                memmove(c->in, c->in + len + 1, c->in_size - len - 1);
                c->in_size -= len + 1;
                c->in[c->in_size] = 0;
                c->in_scanned = 0;
        }
        c->in_scanned = c->in_size;
        if (c->in_size > call_line_max(c)) {
                char buf[128];

                snprintf(buf, sizeof(buf), "the agent's answer is larger than the %zu bytes this operation allows",
                         call_line_max(c));
                call_finish(c, NULL, "EMSGSIZE", buf);
                return true;
        }
        return false;
}

static void call_connect_failed(AgentCall *c, int r) {
        char buf[160];

        snprintf(buf, sizeof(buf), "cannot connect to the agent: %s", strerror(-r));
        call_finish(c, NULL, r == -ETIMEDOUT ? "ETIMEDOUT" : "ECONNREFUSED", buf);
}

/* Connecting: one step of lib/vsock's state machine per readiness. Returns
 * true once the call may go on with its request (or was finished). */
static bool call_connect_step(AgentCall *c) {
        int fd = -EBADF, r;

        r = vsock_connect_step(c->connect, &fd);
        if (r < 0) {
                call_connect_failed(c, r);
                return false;
        }
        if (r == 0) {
                r = sd_event_source_set_io_events(c->io, vsock_connect_events(c->connect));
                if (r < 0)
                        call_connect_failed(c, r);
                return false;
        }
        /* The same fd the io source watches, handed over to us. */
        c->connect = vsock_connect_free(c->connect);
        c->fd = fd;
        r = sd_event_source_set_io_events(c->io, EPOLLIN | EPOLLOUT);
        if (r < 0) {
                call_connect_failed(c, r);
                return false;
        }
        return true;
}

static int on_call_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        loop_note("agent call");
        AgentCall *c = userdata;
        ssize_t n;
        int r;

        if (c->connect) {
                if (!call_connect_step(c))
                        return 0;
                revents = EPOLLOUT;     /* a fresh connection has room: send at once */
        }
        if (c->out_done < c->out_size && (revents & EPOLLOUT)) {
                n = send(fd, c->out + c->out_done, c->out_size - c->out_done, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && errno != EAGAIN && errno != EINTR) {
                        call_finish(c, NULL, "ECONNRESET", "the agent closed the connection");
                        return 0;
                }
                if (n > 0)
                        c->out_done += (size_t) n;
                if (c->out_done == c->out_size)
                        (void) sd_event_source_set_io_events(s, EPOLLIN);
        }
        if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                return 0;
        for (;;) {
                r = call_in_reserve(c);
                if (r < 0) {
                        call_finish(c, NULL, r == -ENOMEM ? "ENOMEM" : "EMSGSIZE",
                                    r == -ENOMEM ? "out of memory" : "the agent's answer is too large");
                        return 0;
                }
                n = recv(fd, c->in + c->in_size, c->in_alloc - c->in_size - 1, MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        call_finish(c, NULL, "ECONNRESET", "the agent connection failed");
                        return 0;
                }
                if (n == 0) {
                        call_finish(c, NULL, "ECONNRESET", "the agent closed the connection");
                        return 0;
                }
                c->in_size += (size_t) n;
                c->in[c->in_size] = 0;
                if (call_consume_lines(c))
                        return 0;
        }
}

static int on_call_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        AgentCall *c = userdata;

        call_finish(c, NULL, "ETIMEDOUT",
                    c->connect ? "the agent's vsock connection was not set up in time" : "the agent did not answer in time");
        return 0;
}

/* The helper's uds path, to which guest→host connections come as
 * <it>_<port>: in the VM's vsock dir, where the helper (the VM's uid) can
 * reach them; in the run dir for a VM an older zvmd started (re-adopted).
 * *ret_in_vm_dir says which: the VM's uid may put anything in its own dir,
 * so a socket there is taken only if it is the socket itself (no symlink);
 * the run dir is root's. */
static char *agent_vsock_listen_base(const char *run_dir, bool *ret_in_vm_dir) {
        _cleanup_free_ char *dir = strjoin(run_dir, "/vsock");
        bool in_vm_dir;

        if (!dir)
                return NULL;
        in_vm_dir = access(dir, F_OK) >= 0;
        if (ret_in_vm_dir)
                *ret_in_vm_dir = in_vm_dir;
        return strjoin(run_dir, in_vm_dir ? "/vsock/vsock.sock" : "/vsock.sock");
}

VsockTarget agent_vsock_uds_target(const char *run_dir, char **uds) {
        bool in_vm_dir = false;

        *uds = agent_vsock_listen_base(run_dir, &in_vm_dir);
        return (VsockTarget) { .uds_path = *uds, .uds_no_follow = *uds && in_vm_dir };
}

static VsockTarget agent_vsock_target(VmAgent *a, char **uds) {
        if (a->host->kernel_vsock)
                return (VsockTarget) { .cid = a->cid };
        return agent_vsock_uds_target(a->run_dir, uds);
}

/* The auth line and the request, as they go out. */
static char *call_request_text(VmAgent *a, json_object *request) {
        char *text;

        if (asprintf(&text, "{\"op\":\"auth\",\"secret\":\"%s\"}\n%s\n", a->secret,
                     json_object_to_json_string_ext(request, JSON_C_TO_STRING_PLAIN)) < 0)
                return NULL;
        return text;
}

/* Connection failures after this returns (refused, timed out, a stalled
 * handshake) reach cb; only what fails before anything is pending (no
 * device socket, a full device backlog, OOM) is returned. */
int agent_call(VmAgent *a, json_object *request, uint64_t timeout_usec, agent_result_fn cb, void *userdata,
               AgentCall **ret) {
        _cleanup_free_ char *uds = NULL;
        VsockTarget t;
        AgentCall *c;
        int r;

        if (a->state == AGENT_NONE || !a->secret[0]) {
                json_object_put(request);
                return -ENOTCONN;
        }
        t = agent_vsock_target(a, &uds);
        c = calloc(1, sizeof(*c));
        if (!c || (!a->host->kernel_vsock && !uds)) {
                free(c);
                json_object_put(request);
                return -ENOMEM;
        }
        c->agent = a;
        c->fd = -EBADF;
        c->cb = cb;
        c->userdata = userdata;
        c->answer_max = agent_answer_max(request);
        c->out = call_request_text(a, request);
        json_object_put(request);
        if (!c->out) {
                call_free(c);
                return -ENOMEM;
        }
        c->out_size = strlen(c->out);
        r = vsock_connect_start(&t, AGENT_PORT, AGENT_CONNECT_TIMEOUT_MS, &c->connect);
        if (r >= 0)
                r = sd_event_add_io(a->host->event, &c->io, vsock_connect_fd(c->connect),
                                    vsock_connect_events(c->connect), on_call_io, c);
        if (r >= 0)
                r = sd_event_add_time_relative(a->host->event, &c->timer, CLOCK_MONOTONIC, timeout_usec, 0,
                                               on_call_timeout, c);
        if (r < 0) {
                call_free(c);
                return r;
        }
        c->next = a->calls;
        a->calls = c;
        if (ret)
                *ret = c;
        return 0;
}

/* ---- health check ------------------------------------------------------------ */

/* Every 30 s; ZVM_AGENT_HEALTH_SECONDS changes it (tests use 1). */
static uint64_t health_interval_usec(void) {
        const char *e = getenv("ZVM_AGENT_HEALTH_SECONDS");
        uint32_t s;

        if (e && safe_atou32(e, &s) >= 0 && s > 0 && s <= 3600)
                return (uint64_t) s * 1000000ULL;
        return AGENT_HEALTH_INTERVAL_USEC_DEFAULT;
}

static void on_health_ping(VmAgent *a, json_object *response, const char *code, const char *message, void *userdata) {
        if (response)
                agent_set_state(a, AGENT_READY);
        else if (a->state == AGENT_READY) {
                log_warning("VM %u: the agent stopped answering: %s", a->vmid,
                            strnull(message));
                agent_set_state(a, AGENT_UNRESPONSIVE);
        }
}

static int on_health_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        loop_note("agent health ping");
        VmAgent *a = userdata;
        json_object *req;
        int r;

        if (a->state == AGENT_READY || a->state == AGENT_UNRESPONSIVE) {
                req = json_object_new_object();
                json_object_object_add(req, "op", json_object_new_string("ping"));
                r = agent_call(a, req, AGENT_HEALTH_TIMEOUT_USEC, on_health_ping, NULL, NULL);
                if (r < 0)
                        on_health_ping(a, NULL, "ECONNREFUSED", errno_str(r), NULL);
        }
        return sd_event_source_set_time_relative(s, health_interval_usec());
}

static int agent_start_health(VmAgent *a) {
        if (a->health)
                return 0;
        return sd_event_add_time_relative(a->host->event, &a->health, CLOCK_MONOTONIC,
                                          health_interval_usec(), 0, on_health_timer, a) < 0
                       ? -EIO
                       : sd_event_source_set_enabled(a->health, SD_EVENT_ON);
}

/* ---- READY ------------------------------------------------------------------- */

static void ready_free(AgentReadyConn *rc) {
        VmAgent *a = rc->agent;

        for (AgentReadyConn **p = &a->ready_conns; *p; p = &(*p)->next)
                if (*p == rc) {
                        *p = rc->next;
                        break;
                }
        if (rc->kernel)
                a->host->ready_conns--;
        sd_event_source_disable_unref(rc->io);
        sd_event_source_disable_unref(rc->timer);
        safe_close(rc->fd);
        free(rc);
}

static void ready_free_all(VmAgent *a) {
        while (a->ready_conns)
                ready_free(a->ready_conns);
}

static size_t ready_conns_count(VmAgent *a) {
        size_t n = 0;

        for (AgentReadyConn *rc = a->ready_conns; rc; rc = rc->next)
                n++;
        return n;
}

/* The agent that waits for READY at this CID (kernel vsock), if any. */
static VmAgent *waiting_by_cid(AgentHost *h, uint32_t cid) {
        for (VmAgent *a = h->agents; a; a = a->next)
                if (a->state == AGENT_WAITING && a->cid == cid)
                        return a;
        return NULL;
}

static void host_link(VmAgent *a) {
        if (a->linked)
                return;
        a->next = a->host->agents;
        a->host->agents = a;
        a->linked = true;
}

static void host_unlink(VmAgent *a) {
        if (!a->linked)
                return;
        for (VmAgent **p = &a->host->agents; *p; p = &(*p)->next)
                if (*p == a) {
                        *p = a->next;
                        break;
                }
        a->next = NULL;
        a->linked = false;
}

/* The READY line: the VM's non-empty secret, bounded JSON. True if taken. */
static bool ready_handle(AgentReadyConn *rc, size_t len) {
        VmAgent *a = rc->agent;
        json_object *o;

        /* Validated by api/agent-wire (issue 14: fuzzed there). */
        if (agent_ready_parse(rc->buf, len, a->secret, &o) < 0) {
                log_warning("VM %u: ignoring a READY without the VM's secret", a->vmid);
                return false;
        }
        json_object_put(a->info);
        a->info = o;
        a->ready_usec = a->started_mono > 0 ? now_usec(CLOCK_MONOTONIC) - a->started_mono : 0;
        log_info("VM %u: agent ready %.2f s after start", a->vmid, (double) a->ready_usec / 1e6);
        agent_set_state(a, AGENT_READY);
        (void) agent_start_health(a);
        if (a->host->on_ready)
                a->host->on_ready(a, a->host->userdata);
        return true;
}

static int on_ready_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        loop_note("agent READY");
        AgentReadyConn *rc = userdata;
        ssize_t n;
        char *nl;

        n = recv(fd, rc->buf + rc->size, sizeof(rc->buf) - 1 - rc->size, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0) {
                ready_free(rc);
                return 0;
        }
        nl = memchr(rc->buf + rc->size, '\n', (size_t) n);
        rc->size += (size_t) n;
        rc->buf[rc->size] = 0;
        if (nl) {
                VmAgent *a = rc->agent;

                *nl = 0;
                if (ready_handle(rc, (size_t) (nl - rc->buf)))
                        ready_free_all(a);     /* no longer waiting: the others are moot */
                else
                        ready_free(rc);
        } else if (rc->size >= sizeof(rc->buf) - 1)
                ready_free(rc);
        return 0;
}

static int on_ready_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        ready_free(userdata);
        return 0;
}

/* Accepts one connection and decides at once whether it may say READY:
 * its VM must wait for READY and have fewer than AGENT_READY_CONNS_MAX
 * open, and the kernel listener fewer than AGENT_READY_CONNS_TOTAL_MAX in
 * all. Anything else is closed right away, so that a guest cannot hold fds
 * or buffers of zvmd. a is NULL on the kernel path: the peer's CID says. */
static int ready_accept(AgentHost *h, VmAgent *a, int listen_fd) {
        _cleanup_close_ int fd = -EBADF;
        bool kernel = !a;
        AgentReadyConn *rc;
        int r;

        fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
                return errno == EAGAIN ? 0 : -errno;
        if (kernel) {
                struct sockaddr_vm sa = {};
                socklen_t len = sizeof(sa);

                if (h->ready_conns >= AGENT_READY_CONNS_TOTAL_MAX)
                        return 0;
                if (getpeername(fd, (struct sockaddr *) &sa, &len) < 0 || sa.svm_family != AF_VSOCK)
                        return 0;
                a = waiting_by_cid(h, sa.svm_cid);
                if (!a)
                        return 0;
        }
        if (a->state != AGENT_WAITING || ready_conns_count(a) >= AGENT_READY_CONNS_MAX) {
                log_debug("VM %u: closing a READY connection (agent %s, %zu open)", a->vmid,
                          agent_state_to_string(a->state), ready_conns_count(a));
                return 0;
        }
        rc = calloc(1, sizeof(*rc));
        if (!rc)
                return -ENOMEM;
        rc->agent = a;
        rc->fd = TAKE_FD(fd);
        rc->kernel = kernel;
        rc->next = a->ready_conns;
        a->ready_conns = rc;
        if (kernel)
                h->ready_conns++;
        r = sd_event_add_io(h->event, &rc->io, rc->fd, EPOLLIN, on_ready_io, rc);
        if (r >= 0)
                r = sd_event_add_time_relative(h->event, &rc->timer, CLOCK_MONOTONIC, AGENT_READY_TIMEOUT_USEC, 0,
                                               on_ready_timeout, rc);
        if (r < 0)
                ready_free(rc);
        return r;
}

static int on_vm_ready_listen(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        loop_note("agent READY accept");
        VmAgent *a = userdata;

        (void) ready_accept(a->host, a, fd);
        return 0;
}

static int on_host_ready_listen(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        loop_note("agent READY accept");
        (void) ready_accept(userdata, NULL, fd);
        return 0;
}

int agent_host_listen(AgentHost *h) {
        VsockTarget t = { .cid = 0 };
        int fd, r;

        if (!h->kernel_vsock)
                return 0;               /* hybrid: one listener per VM */
        r = vsock_listen(&t, AGENT_READY_PORT, 64, &fd);
        if (r < 0)
                return log_warning_errno(r, "Cannot listen on vsock port %u for agents, READY will not arrive: %m",
                                         AGENT_READY_PORT);
        (void) fd_nonblock(fd, true);
        r = sd_event_add_io(h->event, &h->listen, fd, EPOLLIN, on_host_ready_listen, h);
        if (r < 0) {
                safe_close(fd);
                return r;
        }
        (void) sd_event_source_set_io_fd_own(h->listen, true);
        return 0;
}

void agent_host_done(AgentHost *h) {
        h->listen = sd_event_source_disable_unref(h->listen);
}

void agent_init(VmAgent *a, AgentHost *host, uint32_t vmid, const char *run_dir) {
        *a = (VmAgent) { .host = host, .vmid = vmid, .run_dir = run_dir };
}

static int agent_listen_hybrid(VmAgent *a) {
        _cleanup_free_ char *uds = agent_vsock_listen_base(a->run_dir, NULL);
        _cleanup_free_ char *path = NULL;
        VsockTarget t = { .uds_path = uds };
        int fd, r;

        if (a->host->kernel_vsock)
                return 0;
        if (!uds)
                return -ENOMEM;
        r = vsock_hybrid_listen_path(uds, AGENT_READY_PORT, &path);
        if (r < 0)
                return r;
        /* A leftover from a previous run of this VM: the VM is not running
         * (or is being re-adopted by the only zvmd for this root), so no
         * one else listens there. */
        (void) unlink(path);
        /* In the VM's vsock dir (0700, its uid's), where the helper,
         * running as that uid, must connect: the socket is made 0777
         * (umask, not a chmod by a path the uid could swap), the dir is
         * what keeps everyone else out. zvmd is single-threaded. */
        mode_t mask = umask(0);
        r = vsock_listen(&t, AGENT_READY_PORT, 8, &fd);
        (void) umask(mask);
        if (r < 0)
                return r;
        (void) fd_nonblock(fd, true);
        r = sd_event_add_io(a->host->event, &a->listen, fd, EPOLLIN, on_vm_ready_listen, a);
        if (r < 0) {
                safe_close(fd);
                return r;
        }
        (void) sd_event_source_set_io_fd_own(a->listen, true);
        return 0;
}

static int read_secret(VmAgent *a) {
        _cleanup_free_ char *path = strjoin(a->run_dir, "/agent.secret"), *s = NULL;
        int r;

        if (!path)
                return -ENOMEM;
        r = read_one_line_file(path, &s);
        if (r < 0)
                return r;
        if (strlen(s) != sizeof(a->secret) - 1)
                return -EBADMSG;
        memcpy(a->secret, s, sizeof(a->secret));
        return 0;
}

int agent_prepare(VmAgent *a, bool enabled, uint32_t cid, char **ret_secret_path) {
        uint8_t raw[32];
        _cleanup_free_ char *hex = NULL;
        int r;

        *ret_secret_path = NULL;
        agent_stop(a);
        if (!enabled)
                return 0;
        a->cid = cid;
        if (getrandom(raw, sizeof(raw), 0) != sizeof(raw))
                return -EIO;
        hex = hexencode(raw, sizeof(raw));
        explicit_bzero(raw, sizeof(raw));
        if (!hex)
                return -ENOMEM;
        r = write_file_replace(a->run_dir, "agent.secret", hex, strlen(hex), 0600);
        if (r < 0)
                return r;
        memcpy(a->secret, hex, sizeof(a->secret));
        explicit_bzero(hex, strlen(hex));
        r = agent_listen_hybrid(a);
        if (r < 0)
                return r;
        a->state = AGENT_WAITING;
        host_link(a);
        *ret_secret_path = strjoin(a->run_dir, "/agent.secret");
        return *ret_secret_path ? 0 : -ENOMEM;
}

void agent_answered(VmAgent *a) {
        if (a->state != AGENT_WAITING)
                return;
        agent_set_state(a, AGENT_READY);
        (void) agent_start_health(a);
}

static void on_readopt_ping(VmAgent *a, json_object *response, const char *code, const char *message, void *userdata) {
        if (response) {
                agent_set_state(a, AGENT_READY);
                (void) agent_start_health(a);
        } else
                log_notice("VM %u: re-adopted, agent not answering (%s); waiting for READY", a->vmid,
                           strnull(message));
}

int agent_readopt(VmAgent *a, bool enabled, uint32_t cid) {
        json_object *req;
        int r;

        if (!enabled)
                return 0;
        a->cid = cid;
        r = read_secret(a);
        if (r < 0)
                return r;
        r = agent_listen_hybrid(a);
        if (r < 0)
                return r;
        a->state = AGENT_WAITING;
        host_link(a);
        req = json_object_new_object();
        json_object_object_add(req, "op", json_object_new_string("ping"));
        r = agent_call(a, req, AGENT_HEALTH_TIMEOUT_USEC, on_readopt_ping, NULL, NULL);
        if (r < 0)
                log_notice_errno(r, "VM %u: re-adopted, agent not reachable (%m); waiting for READY", a->vmid);
        return 0;
}

void agent_detach(VmAgent *a) {
        agent_calls_cancel_all(a);
        ready_free_all(a);
        a->listen = sd_event_source_disable_unref(a->listen);
        a->health = sd_event_source_disable_unref(a->health);
        json_object_put(a->info);
        a->info = NULL;
        explicit_bzero(a->secret, sizeof(a->secret));
        a->ready_usec = 0;
        a->state = AGENT_NONE;
        host_unlink(a);
}

void agent_stop(VmAgent *a) {
        bool had_agent = a->state != AGENT_NONE;

        agent_detach(a);
        if (had_agent && a->run_dir) {
                _cleanup_free_ char *p = strjoin(a->run_dir, "/agent.secret");
                _cleanup_free_ char *u = agent_vsock_listen_base(a->run_dir, NULL);
                _cleanup_free_ char *l = u ? strjoin(u, "_1025") : NULL;

                if (p)
                        (void) unlink(p);
                if (l)
                        (void) unlink(l);
        }
}

int agent_to_json(const VmAgent *a, json_object *status) {
        json_object_object_add(status, "agent", json_object_new_string(agent_state_to_string(a->state)));
        if (a->info) {
                json_object *boot = NULL;

                (void) json_object_deep_copy(a->info, &boot, NULL);
                if (boot) {
                        json_object_object_add(boot, "ready_seconds",
                                               json_object_new_fixed((double) a->ready_usec / 1e6, 3));
                        json_object_object_add(status, "boot", boot);
                }
        }
        return 0;
}
