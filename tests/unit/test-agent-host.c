/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * zvmd's side of the guest agent (core/agent.c) against a fake guest, with
 * no VM and no Manager: an AgentHost and a VmAgent on hybrid vsock in a
 * temporary directory. A forked child plays the vsock device and the agent
 * behind it (the CONNECT/OK handshake, auth, answers, and the hostile
 * answers a guest can give); the test itself plays the guest's READY
 * sender. What it shows: calls are answered, refused, capped and timed out
 * as agent.h says, READY is taken only with the right secret from at most
 * two connections, and the hooks report upward.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "fd-util.h"
#include "fileio.h"
#include "socket-util.h"
#include "string-util.h"
#include "tap.h"
#include "time-util.h"

static char dir[] = "/tmp/zvm-test-agent-host-XXXXXX";

typedef enum Mode {
        MODE_ANSWER,            /* auth ok, then {"ok":true,"pong":N} */
        MODE_ERROR,             /* auth ok, then an agent error */
        MODE_HUGE,              /* auth ok, then 1 MiB without a newline */
        MODE_STALL,             /* does not answer CONNECT in time */
        MODE_CLOSE,             /* handshake, then closes */
        MODE_CHECK_SECRET,      /* auth ok only with the secret on disk */
} Mode;

static const Mode script[] = { MODE_ANSWER, MODE_ERROR, MODE_HUGE, MODE_STALL, MODE_CLOSE, MODE_CHECK_SECRET };

/* ---- the fake device + agent (child) -------------------------------------------- */

static ssize_t read_line(int fd, char *buf, size_t size) {
        size_t n = 0;

        while (n + 1 < size) {
                ssize_t k = read(fd, buf + n, 1);

                if (k <= 0)
                        return -1;
                if (buf[n] == '\n') {
                        buf[n] = 0;
                        return (ssize_t) n;
                }
                n++;
        }
        return -1;
}

static void write_all(int fd, const char *s) {
        (void) !write(fd, s, strlen(s));
}

static void serve_one(int fd, Mode mode) {
        char line[4096], secret[128] = "";
        _cleanup_free_ char *path = strjoin(dir, "/agent.secret"), *on_disk = NULL;

        if (read_line(fd, line, sizeof(line)) < 0 || !streq(line, "CONNECT 1024"))
                return;
        if (mode == MODE_STALL) {
                usleep(600 * 1000);     /* past the call's 300 ms, short enough for the next */
                return;
        }
        write_all(fd, "OK 1073741824\n");
        if (mode == MODE_CLOSE)
                return;
        if (read_line(fd, line, sizeof(line)) < 0)     /* auth */
                return;
        if (mode == MODE_CHECK_SECRET) {
                (void) read_one_line_file(path, &on_disk);
                (void) sscanf(line, "{\"op\":\"auth\",\"secret\":\"%127[0-9a-f]\"}", secret);
                if (!on_disk || !streq(secret, on_disk)) {
                        write_all(fd, "{\"ok\":false,\"error\":{\"code\":\"EACCES\",\"message\":\"bad secret\"}}\n");
                        return;
                }
        }
        write_all(fd, "{\"ok\":true}\n");
        if (read_line(fd, line, sizeof(line)) < 0)     /* the request */
                return;
        switch (mode) {
        case MODE_ERROR:
                write_all(fd, "{\"ok\":false,\"error\":{\"code\":\"ENOENT\",\"message\":\"no such thing\"}}\n");
                break;
        case MODE_HUGE: {
                static char big[1024 * 1024];

                memset(big, '0', sizeof(big));
                big[0] = '[';
                for (size_t i = 1; i + 2 < sizeof(big); i += 2)
                        big[i + 1] = ',';
                (void) !write(fd, big, sizeof(big));
                sleep(1);
                break;
        }
        default:
                write_all(fd, "{\"ok\":true,\"pong\":42}\n");
        }
}

static void device(int listen_fd) {
        for (size_t i = 0; i < ELEMENTSOF(script); i++) {
                int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

                if (fd < 0)
                        _exit(1);
                serve_one(fd, script[i]);
                close(fd);
        }
        _exit(0);
}

/* ---- the host side (this process) ------------------------------------------------ */

typedef struct Result {
        bool done;
        json_object *response;
        char code[64];
        char message[256];
} Result;

static unsigned n_changed, n_ready;
static AgentState last_previous;

static void on_changed(VmAgent *a, AgentState previous, void *userdata) {
        n_changed++;
        last_previous = previous;
}

static void on_ready(VmAgent *a, void *userdata) {
        n_ready++;
}

static void on_result(VmAgent *a, json_object *response, const char *code, const char *message, void *userdata) {
        Result *r = userdata;

        r->done = true;
        r->response = json_object_get(response);
        snprintf(r->code, sizeof(r->code), "%s", strempty(code));
        snprintf(r->message, sizeof(r->message), "%s", strempty(message));
}

/* Runs the loop until *flag or 5 s passed. */
static bool run_until(sd_event *e, const bool *flag) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + 5ULL * 1000000ULL;

        while (!*flag && now_usec(CLOCK_MONOTONIC) < deadline)
                assert_se(sd_event_run(e, 50 * 1000) >= 0);
        return *flag;
}

static void run_for(sd_event *e, uint64_t usec) {
        uint64_t end = now_usec(CLOCK_MONOTONIC) + usec;

        while (now_usec(CLOCK_MONOTONIC) < end)
                assert_se(sd_event_run(e, 10 * 1000) >= 0);
}

static Result call(VmAgent *a, const char *op, uint64_t timeout_usec) {
        Result r = {};
        json_object *req = json_object_new_object();

        json_object_object_add(req, "op", json_object_new_string(op));
        if (agent_call(a, req, timeout_usec, on_result, &r, NULL) < 0) {
                r.done = true;
                snprintf(r.code, sizeof(r.code), "refused");
        } else
                (void) run_until(a->host->event, &r.done);
        return r;
}

/* A guest connection to the READY port that sends one line; returns the fd. */
static int ready_send(const char *line) {
        _cleanup_free_ char *path = strjoin(dir, "/vsock.sock_1025");
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_se(fd >= 0 && path);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                close(fd);
                return -errno;
        }
        if (line)
                write_all(fd, line);
        return fd;
}

/* Whether zvmd closed this connection (EOF within 1 s of loop). */
static bool closed_by_host(sd_event *e, int fd) {
        for (unsigned i = 0; i < 100; i++) {
                char c;
                ssize_t n;

                assert_se(sd_event_run(e, 10 * 1000) >= 0);
                n = recv(fd, &c, 1, MSG_DONTWAIT);
                if (n == 0 || (n < 0 && errno != EAGAIN))
                        return true;
        }
        return false;
}

static void test_ready(sd_event *e, VmAgent *a, const char *secret) {
        _cleanup_free_ char *good = NULL;
        int f1, f2, f3, fd;

        is_int(a->state, AGENT_WAITING, "prepared: waiting for READY");
        fd = ready_send("{\"op\":\"ready\",\"secret\":\"\"}\n");
        ok(fd >= 0 && closed_by_host(e, fd), "READY with an empty secret: closed");
        safe_close(fd);
        fd = ready_send("{\"op\":\"ready\",\"secret\":\"00000000000000000000000000000000000000000000000000000000000000ff\"}\n");
        ok(fd >= 0 && closed_by_host(e, fd), "READY with another secret: closed");
        safe_close(fd);
        fd = ready_send("not json\n");
        ok(fd >= 0 && closed_by_host(e, fd), "READY that is not JSON: closed");
        safe_close(fd);
        is_int(a->state, AGENT_WAITING, "still waiting");
        is_int(n_ready, 0, "on_ready not called");

        /* Two silent connections are let in, a third is closed at once. */
        f1 = ready_send(NULL);
        f2 = ready_send(NULL);
        run_for(e, 100 * 1000);
        f3 = ready_send(NULL);
        ok(f3 >= 0 && closed_by_host(e, f3), "a third READY connection at once: closed");
        ok(!closed_by_host(e, f1), "the first two stay open (until their 5 s deadline)");
        safe_close(f3);

        assert_se(asprintf(&good, "{\"op\":\"ready\",\"secret\":\"%s\",\"hostname\":\"g\"}\n", secret) > 0);
        write_all(f1, good);
        run_for(e, 200 * 1000);
        is_int(a->state, AGENT_READY, "READY with the secret: ready");
        is_int(n_ready, 1, "on_ready called once");
        ok(n_changed >= 1 && last_previous == AGENT_WAITING, "on_changed told waiting → ready");
        ok(a->info && !json_object_object_get_ex(a->info, "secret", NULL) &&
                   !json_object_object_get_ex(a->info, "op", NULL) &&
                   json_object_object_get_ex(a->info, "hostname", NULL),
           "info kept without secret and op");
        ok(closed_by_host(e, f2), "the other pending READY connection is dropped");
        safe_close(f1);
        safe_close(f2);
        fd = ready_send(good);
        ok(fd >= 0 && closed_by_host(e, fd), "READY again once ready: closed, still one on_ready");
        is_int(n_ready, 1, "on_ready still once");
        safe_close(fd);
}

static void test_calls(VmAgent *a) {
        Result r;
        json_object *v;

        r = call(a, "ping", 2ULL * 1000000ULL);
        ok(r.done && r.response && json_object_object_get_ex(r.response, "pong", &v) && json_object_get_int(v) == 42,
           "a call gets its answer");
        json_object_put(r.response);

        r = call(a, "ping", 2ULL * 1000000ULL);
        is_str(r.code, "ENOENT", "the agent's error code reaches the caller");
        is_str(r.message, "no such thing", "with its message");

        r = call(a, "ping", 3ULL * 1000000ULL);
        is_str(r.code, "EMSGSIZE", "an answer over the op's cap ends the call (not buffered whole)");

        r = call(a, "ping", 300ULL * 1000ULL);
        is_str(r.code, "ETIMEDOUT", "a device that stalls the handshake: timed out");
        ok(strstr(r.message, "not set up"), "as a connection not set up (%s)", r.message);

        r = call(a, "ping", 2ULL * 1000000ULL);
        is_str(r.code, "ECONNRESET", "an agent that hangs up: connection reset");

        r = call(a, "ping", 2ULL * 1000000ULL);
        ok(r.response != NULL, "auth uses the secret written by agent_prepare()");
        json_object_put(r.response);
}

int main(void) {
        _cleanup_free_ char *secret_path = NULL, *secret = NULL, *dev = NULL, *l = NULL;
        sd_event *e = NULL;
        AgentHost host = {};
        VmAgent a;
        json_object *status;
        Result r;
        int listen_fd, status_code;
        pid_t pid;

        assert_se(mkdtemp(dir));
        assert_se(sd_event_new(&e) >= 0);
        host = (AgentHost) { .event = e, .kernel_vsock = false, .on_changed = on_changed, .on_ready = on_ready };
        agent_init(&a, &host, 7, dir);

        r = call(&a, "ping", 1000000ULL);
        is_str(r.code, "refused", "no call before agent_prepare(): nothing to talk to");

        is_int(agent_prepare(&a, false, 0, &secret_path), 0, "agent off: prepare does nothing");
        ok(!secret_path && a.state == AGENT_NONE, "no secret, state none");

        is_int(agent_prepare(&a, true, 1007, &secret_path), 0, "agent on: prepared");
        ok(secret_path && read_one_line_file(secret_path, &secret) >= 0 && strlen(secret) == 64,
           "a 64-hex secret on disk");
        ok(host.agents == &a, "listed in the host (for the kernel READY listener)");

        test_ready(e, &a, secret);

        dev = strjoin(dir, "/vsock.sock");
        assert_se(socket_listen_unix(dev, 0600, 8, &listen_fd) >= 0);
        pid = fork();
        assert_se(pid >= 0);
        if (pid == 0)
                device(listen_fd);
        close(listen_fd);
        test_calls(&a);

        status = json_object_new_object();
        assert_se(agent_to_json(&a, status) >= 0);
        ok(json_object_object_get_ex(status, "boot", NULL), "status has boot (the READY info)");
        json_object_put(status);

        agent_stop(&a);
        l = strjoin(dir, "/vsock.sock_1025");
        ok(access(secret_path, F_OK) < 0 && access(l, F_OK) < 0, "stop removes the secret and the READY socket");
        ok(a.state == AGENT_NONE && !host.agents, "state none, unlisted");

        for (unsigned i = 0; i < 500 && waitpid(pid, &status_code, WNOHANG) == 0; i++)
                usleep(10 * 1000);
        if (kill(pid, SIGKILL) == 0)    /* still there after 5 s: it did not see its whole script */
                (void) waitpid(pid, &status_code, 0);
        ok(WIFEXITED(status_code) && WEXITSTATUS(status_code) == 0, "the fake device served its whole script");

        (void) unlink(dev);
        (void) rmdir(dir);
        agent_host_done(&host);
        sd_event_unref(e);
        return done_testing();
}
