/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * QMP client against a real QEMU (qemu-system-x86_64 -M none), plus a few
 * protocol edge cases (split messages, garbage, over-long messages, a peer
 * that never answers) against a peer of our own on a socketpair.
 *
 * QEMU gets its QMP socket as a pre-opened listening fd, the way zvmd
 * starts it, so the test connects before QEMU has even run.
 *
 * Skips without qemu-system-x86_64 (ZVM_QEMU overrides the binary) unless
 * ZVM_MUST_BOOT=1. Every wait is bounded.
 */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "fd-util.h"
#include "fileio.h"
#include "qmp.h"
#include "string-util.h"
#include "tap.h"
#include "test-children.h"

#define WAIT_MS 10000

extern char **environ;

static char tmpdir[] = "/tmp/test-qmp.XXXXXX";

static uint64_t now_ms(void) {
        struct timespec ts;

        assert_se(clock_gettime(CLOCK_MONOTONIC, &ts) == 0);
        return (uint64_t) ts.tv_sec * 1000ULL + (uint64_t) ts.tv_nsec / 1000000ULL;
}

static void cleanup(void) {
        test_children_cleanup(tmpdir, "/tmp/test-qmp.");
}

/* Starts "qemu -M none" with its QMP monitor on a listening unix socket we
 * create at tmpdir/name and hand over as fd 3. The socket accepts
 * connections (into its backlog) before QEMU runs at all. */
static pid_t qemu_spawn(const char *qemu, const char *name, char **ret_sock) {
        _cleanup_free_ char *sock = strjoin(tmpdir, "/", name, ".sock");
        _cleanup_free_ char *log = strjoin(tmpdir, "/", name, ".log");
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        posix_spawn_file_actions_t fa;
        _cleanup_close_ int lfd = -EBADF;
        int fd;
        pid_t pid = 0;
        char *argv[] = {
                (char *) qemu, (char *) "-M", (char *) "none", (char *) "-nodefaults",
                (char *) "-no-user-config", (char *) "-display", (char *) "none",
                (char *) "-chardev", (char *) "socket,id=qmp,fd=3,server=on,wait=off",
                (char *) "-mon", (char *) "chardev=qmp,mode=control", NULL,
        };

        assert_se(sock && log);
        assert_se(strlen(sock) < sizeof(sa.sun_path));
        strcpy(sa.sun_path, sock);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_se(fd >= 0);
        /* Above 3, so that dup2() onto 3 makes a copy without O_CLOEXEC. */
        lfd = fcntl(fd, F_DUPFD_CLOEXEC, 10);
        assert_se(lfd >= 0);
        safe_close(fd);
        assert_se(bind(lfd, (struct sockaddr *) &sa, sizeof(sa)) == 0);
        assert_se(listen(lfd, 8) == 0);

        assert_se(posix_spawn_file_actions_init(&fa) == 0);
        assert_se(posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) == 0);
        assert_se(posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0644) == 0);
        assert_se(posix_spawn_file_actions_adddup2(&fa, 1, 2) == 0);
        assert_se(posix_spawn_file_actions_adddup2(&fa, lfd, 3) == 0);
        assert_se(posix_spawn(&pid, qemu, &fa, NULL, argv, environ) == 0);
        posix_spawn_file_actions_destroy(&fa);

        test_child_track(pid);
        *ret_sock = TAKE_PTR(sock);
        return pid;
}

/* Runs the client until *flag is set, the connection fails or timeout_ms
 * passes. Returns 0, qmp_client_process()'s error or -ETIMEDOUT. Must not
 * touch c after a callback freed it: such callbacks set *flag. */
static int run_until(QmpClient *c, const bool *flag, int timeout_ms) {
        uint64_t deadline = now_ms() + (uint64_t) timeout_ms;

        while (!*flag) {
                struct pollfd p = { .fd = qmp_client_fd(c), .events = qmp_client_poll_events(c) };
                uint64_t n = now_ms();
                int r;

                if (n >= deadline)
                        return -ETIMEDOUT;
                r = poll(&p, 1, (int) (deadline - n));
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (r <= 0)
                        continue;
                r = qmp_client_process(c);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Runs until the connection drops (-ECONNRESET expected). */
static int run_until_eof(QmpClient *c, int timeout_ms) {
        static const bool never = false;

        return run_until(c, &never, timeout_ms);
}

/* ---- recording callbacks -------------------------------------------------- */

typedef struct Answer {
        bool done;
        unsigned calls;
        unsigned order;
        json_object *result;
        char *error_class;
        char *error_desc;
} Answer;

static unsigned answer_seq;

static void answer_clear(Answer *a) {
        json_object_put(a->result);
        free(a->error_class);
        free(a->error_desc);
        *a = (Answer) {};
}

static void on_answer(QmpClient *c, json_object *result, const char *error_class, const char *error_desc,
                      void *userdata) {
        Answer *a = userdata;

        a->calls++;
        a->done = true;
        a->order = ++answer_seq;
        a->result = json_object_get(result);
        a->error_class = error_class ? strdup(error_class) : NULL;
        a->error_desc = error_desc ? strdup(error_desc) : NULL;
}

typedef struct Events {
        bool stop, shutdown;
        unsigned n;
        char last[64];
} Events;

static void on_event(QmpClient *c, const char *event, json_object *data, void *userdata) {
        Events *e = userdata;

        e->n++;
        snprintf(e->last, sizeof(e->last), "%s", event);
        if (streq(event, "STOP"))
                e->stop = true;
        if (streq(event, "SHUTDOWN"))
                e->shutdown = true;
}

static const char *get_str(json_object *o, const char *key) {
        json_object *v;

        return o && json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static int64_t get_int(json_object *o, const char *k1, const char *k2) {
        json_object *v;

        if (!o || !json_object_object_get_ex(o, k1, &v))
                return -1;
        if (k2 && !json_object_object_get_ex(v, k2, &v))
                return -1;
        return json_object_get_int64(v);
}

/* ---- tests against QEMU ---------------------------------------------------- */

typedef struct Nested {
        bool done;
        int sync_r, process_r, invoke_r;
        Answer inner;
} Nested;

/* What a callback may and may not do with its client. */
static void on_answer_nested(QmpClient *c, json_object *result, const char *error_class, const char *error_desc,
                             void *userdata) {
        Nested *n = userdata;

        n->done = true;
        n->sync_r = qmp_client_call_sync(c, "query-status", NULL, 1000, NULL, NULL);
        n->process_r = qmp_client_process(c);
        n->invoke_r = qmp_client_invoke(c, "query-status", NULL, on_answer, &n->inner);
}

static void test_qemu_session(const char *qemu) {
        _cleanup_free_ char *sock = NULL, *err = NULL;
        Answer version = {}, status = {}, bogus = {}, quit = {}, after = {};
        json_object *greeting, *res = NULL, *args;
        QmpClient *c = NULL;
        Events ev = {};
        uint64_t t0;
        int fd = -EBADF, r, status_code;
        pid_t pid;

        diag("QEMU session over a pre-opened listening fd");
        pid = qemu_spawn(qemu, "qmp", &sock);
        /* Connect at once: the socket is listening already, QEMU may not be. */
        is_int(qmp_connect_unix(sock, &fd), 0, "connect to the pre-opened QMP socket right after spawning");
        is_int(qmp_client_new(fd, &c), 0, "qmp_client_new");
        ok((fcntl(fd, F_GETFL) & O_NONBLOCK) && (fcntl(fd, F_GETFD) & FD_CLOEXEC), "fd made non-blocking, O_CLOEXEC");
        is_int(qmp_client_fd(c), fd, "qmp_client_fd");
        ok(!qmp_client_is_ready(c), "not ready before the greeting");
        is_int(qmp_client_poll_events(c), POLLIN, "nothing to write before the greeting");
        qmp_client_set_event_handler(c, on_event, &ev);

        /* Three commands before readiness: held back, then answered in order. */
        answer_seq = 0;
        is_int(qmp_client_invoke(c, "query-version", NULL, on_answer, &version), 0, "invoke query-version before ready");
        is_int(qmp_client_invoke(c, "query-status", NULL, on_answer, &status), 0, "invoke query-status before ready");
        is_int(qmp_client_invoke(c, "no-such-command", NULL, on_answer, &bogus), 0, "invoke an unknown command before ready");
        is_int(qmp_client_poll_events(c), POLLIN, "held-back commands are not queued for output");

        r = run_until(c, &bogus.done, WAIT_MS);
        is_int(r, 0, "all three answered");
        ok(qmp_client_is_ready(c), "ready after greeting + capabilities");
        greeting = qmp_client_get_greeting(c);
        ok(greeting && json_object_object_get_ex(greeting, "version", NULL), "greeting kept");
        ok(version.calls == 1 && status.calls == 1 && bogus.calls == 1, "each callback called once");
        ok(version.order == 1 && status.order == 2 && bogus.order == 3, "answers in invocation order (%u %u %u)",
           version.order, status.order, bogus.order);
        ok(!version.error_class && get_int(version.result, "qemu", "major") >= 2, "query-version: major %lld",
           (long long) get_int(version.result, "qemu", "major"));
        {
                json_object *gv = NULL;

                (void) json_object_object_get_ex(greeting, "version", &gv);
                is_int(get_int(version.result, "qemu", "major"), get_int(gv, "qemu", "major"),
                       "query-version agrees with the greeting");
        }
        ok(!status.error_class && get_str(status.result, "status"), "query-status: status '%s'",
           strnull(get_str(status.result, "status")));
        is_str(bogus.error_class, "CommandNotFound", "unknown command: error class");
        ok(bogus.error_desc && strstr(bogus.error_desc, "no-such-command"), "unknown command: desc '%s'",
           strnull(bogus.error_desc));
        ok(!bogus.result, "no result with an error");

        /* Synchronous calls on a ready client. */
        r = qmp_client_call_sync(c, "query-status", NULL, WAIT_MS, &res, &err);
        is_int(r, 0, "call_sync query-status");
        is_str(get_str(res, "status"), "running", "running before stop");
        res = (json_object_put(res), NULL);

        r = qmp_client_call_sync(c, "no-such-command", NULL, WAIT_MS, &res, &err);
        is_int(r, -EREMOTEIO, "call_sync of an unknown command: -EREMOTEIO");
        ok(err && startswith(err, "CommandNotFound: "), "error string '%s'", strnull(err));
        ok(!res, "no result on error");
        err = mfree(err);

        args = json_object_new_object();
        json_object_object_add(args, "command-line", json_object_new_string("info version"));
        r = qmp_client_call_sync(c, "human-monitor-command", args, WAIT_MS, &res, NULL);
        json_object_put(args);
        is_int(r, 0, "call_sync with arguments (human-monitor-command)");
        ok(res && json_object_is_type(res, json_type_string) && strchr(json_object_get_string(res), '.'),
           "HMP 'info version' answered '%s'", res ? json_object_get_string(res) : "(null)");
        res = (json_object_put(res), NULL);

        {
                Nested n = {};

                is_int(qmp_client_invoke(c, "query-name", NULL, on_answer_nested, &n), 0, "invoke (callback nests calls)");
                is_int(run_until(c, &n.done, WAIT_MS), 0, "answered");
                is_int(n.sync_r, -EBUSY, "call_sync from a callback: -EBUSY");
                is_int(n.process_r, -EBUSY, "process from a callback: -EBUSY");
                is_int(n.invoke_r, 0, "invoke from a callback works");
                is_int(run_until(c, &n.inner.done, WAIT_MS), 0, "and is answered");
                ok(n.inner.calls == 1 && !n.inner.error_class, "nested command answered once");
                answer_clear(&n.inner);
        }

        args = json_object_new_array();
        is_int(qmp_client_invoke(c, "query-status", args, NULL, NULL), -EINVAL, "arguments must be an object");
        json_object_put(args);

        /* stop → STOP event through the handler. */
        r = qmp_client_call_sync(c, "stop", NULL, WAIT_MS, NULL, NULL);
        is_int(r, 0, "stop");
        is_int(run_until(c, &ev.stop, WAIT_MS), 0, "STOP event arrives");
        ok(ev.stop, "event handler saw STOP");
        r = qmp_client_call_sync(c, "query-status", NULL, WAIT_MS, &res, NULL);
        ok(r == 0 && streq_ptr(get_str(res, "status"), "paused"), "paused after stop ('%s')",
           strnull(get_str(res, "status")));
        res = (json_object_put(res), NULL);

        /* quit: answered, then EOF. */
        answer_seq = 0;
        is_int(qmp_client_invoke(c, "quit", NULL, on_answer, &quit), 0, "invoke quit");
        r = run_until_eof(c, WAIT_MS);
        is_int(r, -ECONNRESET, "EOF after quit: -ECONNRESET");
        ok(quit.calls == 1 && !quit.error_class, "quit answered before the EOF (%s)", strnull(quit.error_class));
        ok(ev.shutdown, "SHUTDOWN event seen");
        ok(!qmp_client_is_ready(c) && !qmp_client_is_connected(c), "not ready/connected after EOF");
        is_int(qmp_client_process(c), -ECONNRESET, "process after EOF: -ECONNRESET");
        is_int(qmp_client_invoke(c, "query-status", NULL, on_answer, &after), -ENOTCONN, "invoke after EOF: -ENOTCONN");
        is_int(qmp_client_poll_events(c), 0, "no poll events after EOF");
        is_int(qmp_client_call_sync(c, "query-status", NULL, 100, NULL, NULL), -ENOTCONN, "call_sync after EOF");
        ok(after.calls == 0, "a failed invoke never calls back");

        t0 = now_ms();
        r = (int) waitpid(pid, &status_code, 0);
        test_child_forget(pid);
        ok(r == pid && WIFEXITED(status_code) && WEXITSTATUS(status_code) == 0,
           "QEMU exited cleanly after quit (%llu ms)", (unsigned long long) (now_ms() - t0));

        c = qmp_client_free(c);
        answer_clear(&version);
        answer_clear(&status);
        answer_clear(&bogus);
        answer_clear(&quit);
}

typedef struct FreeInCallback {
        bool done;
        QmpClient *c;
} FreeInCallback;

static void on_answer_free_client(QmpClient *c, json_object *result, const char *error_class,
                                  const char *error_desc, void *userdata) {
        FreeInCallback *f = userdata;

        f->done = true;
        assert_se(c == f->c);
        qmp_client_free(c);
        /* Again, as a careless caller might: must be harmless. */
        qmp_client_free(c);
}

static void test_qemu_disconnects(const char *qemu) {
        _cleanup_free_ char *sock = NULL;
        Answer a1 = {}, a2 = {}, a3 = {};
        FreeInCallback f = {};
        QmpClient *c = NULL;
        int fd, r;
        pid_t pid;

        diag("QEMU: pending callbacks on free, free inside a callback, QEMU killed");
        pid = qemu_spawn(qemu, "qmp2", &sock);

        /* 1: free with a command pending (before the greeting even). */
        assert_se(qmp_connect_unix(sock, &fd) == 0);
        assert_se(qmp_client_new(fd, &c) == 0);
        is_int(qmp_client_invoke(c, "query-status", NULL, on_answer, &a1), 0, "invoke, then free at once");
        c = qmp_client_free(c);
        ok(a1.calls == 1, "callback called exactly once on free");
        is_str(a1.error_class, QMP_ERROR_CLASS_DISCONNECTED, "with class Disconnected");
        ok(a1.error_desc && strstr(a1.error_desc, "freed"), "desc '%s'", strnull(a1.error_desc));
        answer_clear(&a1);

        /* 2: a callback frees the client; the command after it is told. */
        assert_se(qmp_connect_unix(sock, &fd) == 0);
        assert_se(qmp_client_new(fd, &c) == 0);
        f.c = c;
        is_int(qmp_client_invoke(c, "query-status", NULL, on_answer_free_client, &f), 0, "invoke (callback frees the client)");
        is_int(qmp_client_invoke(c, "query-name", NULL, on_answer, &a2), 0, "invoke another one");
        r = run_until(c, &f.done, WAIT_MS);
        is_int(r, 0, "first answer arrived (client freed inside its callback)");
        ok(a2.calls == 1 && streq_ptr(a2.error_class, QMP_ERROR_CLASS_DISCONNECTED),
           "second command: Disconnected (%s)", strnull(a2.error_class));
        answer_clear(&a2);

        /* 3: QEMU dies with a command on the wire. SIGSTOP first, so that
         * the command cannot have been answered. */
        assert_se(qmp_connect_unix(sock, &fd) == 0);
        assert_se(qmp_client_new(fd, &c) == 0);
        is_int(qmp_client_call_sync(c, "query-status", NULL, WAIT_MS, NULL, NULL), 0, "reconnected, ready");
        assert_se(kill(pid, SIGSTOP) == 0);
        is_int(qmp_client_invoke(c, "query-status", NULL, on_answer, &a3), 0, "invoke while QEMU is stopped");
        is_int(qmp_client_poll_events(c), POLLIN | POLLOUT, "output queued");
        is_int(qmp_client_process(c), 0, "process writes it");
        is_int(qmp_client_poll_events(c), POLLIN, "output flushed");
        assert_se(kill(pid, SIGKILL) == 0);
        r = run_until_eof(c, WAIT_MS);
        is_int(r, -ECONNRESET, "QEMU killed: -ECONNRESET");
        ok(a3.calls == 1 && streq_ptr(a3.error_class, QMP_ERROR_CLASS_DISCONNECTED),
           "pending command: Disconnected (%s: %s)", strnull(a3.error_class), strnull(a3.error_desc));
        c = qmp_client_free(c);
        ok(a3.calls == 1, "not called again on free");
        answer_clear(&a3);
        (void) waitpid(pid, NULL, 0);
        test_child_forget(pid);
}

/* ---- protocol edge cases with our own peer --------------------------------- */

#define GREETING "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, \"package\": \"\"}, \"capabilities\": [\"oob\"]}}\r\n"

/* Reads one request line from the peer end (bounded) and returns it parsed. */
static json_object *peer_read_request(int fd) {
        char line[4096];
        size_t n = 0;

        while (n < sizeof(line) - 1) {
                struct pollfd p = { .fd = fd, .events = POLLIN };

                if (poll(&p, 1, WAIT_MS) <= 0 || read(fd, line + n, 1) != 1)
                        return NULL;
                if (line[n] == '\n')
                        break;
                n++;
        }
        line[n] = '\0';
        return json_tokener_parse(line);
}

static bool peer_has_data(int fd) {
        struct pollfd p = { .fd = fd, .events = POLLIN };

        return poll(&p, 1, 0) > 0;
}

static void peer_send(int fd, const char *s) {
        assert_se(loop_write(fd, s, strlen(s), true) == 0);
}

static void test_peer_protocol(void) {
        _cleanup_close_ int peer = -EBADF;
        Answer a = {}, b = {};
        json_object *req;
        QmpClient *c = NULL;
        char buf[512];
        int sv[2], r = 0;
        int64_t caps_id, id;

        diag("own peer: split messages, several per read, garbage");
        assert_se(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        peer = sv[1];
        assert_se(qmp_client_new(sv[0], &c) == 0);
        is_int(qmp_client_invoke(c, "query-status", NULL, on_answer, &a), 0, "invoke before the greeting");

        /* The greeting one byte per read. */
        for (const char *p = GREETING; *p; p++) {
                assert_se(write(peer, p, 1) == 1);
                r = qmp_client_process(c);
                if (r < 0)
                        break;
        }
        is_int(r, 0, "greeting fed byte by byte");
        req = peer_read_request(peer);
        is_str(get_str(req, "execute"), "qmp_capabilities", "client sends qmp_capabilities itself");
        caps_id = get_int(req, "id", NULL);
        json_object_put(req);
        ok(!peer_has_data(peer), "query-status held back until capabilities are acknowledged");

        /* Capabilities reply + an event + a stray reply in one read. */
        snprintf(buf, sizeof(buf),
                 "{\"return\": {}, \"id\": %lld}\r\n{\"event\": \"X\", \"data\": {}}\r\n{\"return\": 1, \"id\": 999}\r\n",
                 (long long) caps_id);
        peer_send(peer, buf);
        is_int(qmp_client_process(c), 0, "three messages in one read");
        ok(qmp_client_is_ready(c), "ready");
        req = peer_read_request(peer);
        is_str(get_str(req, "execute"), "query-status", "held-back command sent after the acknowledgement");
        id = get_int(req, "id", NULL);
        json_object_put(req);

        /* The reply split inside a string. */
        snprintf(buf, sizeof(buf), "{\"return\": {\"status\": \"run");
        peer_send(peer, buf);
        is_int(qmp_client_process(c), 0, "first half");
        ok(!a.done, "not answered on half a message");
        snprintf(buf, sizeof(buf), "ning\"}, \"id\": %lld}\r\n", (long long) id);
        peer_send(peer, buf);
        is_int(qmp_client_process(c), 0, "second half");
        ok(a.calls == 1 && streq_ptr(get_str(a.result, "status"), "running"), "answered once, result intact");

        /* An error without an id goes to the oldest command sent. */
        is_int(qmp_client_invoke(c, "x", NULL, on_answer, &b), 0, "invoke x");
        is_int(qmp_client_process(c), 0, "sent");
        json_object_put(peer_read_request(peer));
        peer_send(peer, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}\r\n");
        is_int(qmp_client_process(c), 0, "id-less error");
        is_str(b.error_class, "GenericError", "matched to the oldest command sent");
        answer_clear(&a);
        answer_clear(&b);

        /* Garbage drops the connection; pending commands are told. */
        is_int(qmp_client_invoke(c, "y", NULL, on_answer, &a), 0, "invoke y");
        peer_send(peer, "}{ nonsense\r\n");
        is_int(qmp_client_process(c), -EBADMSG, "garbage: -EBADMSG");
        ok(a.calls == 1 && streq_ptr(a.error_class, QMP_ERROR_CLASS_DISCONNECTED), "pending command: Disconnected");
        ok(!qmp_client_is_connected(c), "disconnected");
        c = qmp_client_free(c);
        answer_clear(&a);
}

static void test_peer_oversize(void) {
        QmpClient *c = NULL;
        int sv[2], r, status;
        pid_t pid;

        diag("own peer: a message over QMP_MESSAGE_MAX");
        assert_se(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        pid = fork();
        assert_se(pid >= 0);
        if (pid == 0) {
                static char chunk[65536];

                (void) signal(SIGPIPE, SIG_IGN);
                safe_close(sv[0]);
                memset(chunk, 'a', sizeof(chunk));
                if (loop_write(sv[1], GREETING "{\"event\": \"", strlen(GREETING) + 11, false) < 0)
                        _exit(EXIT_FAILURE);
                for (size_t n = 0; n <= QMP_MESSAGE_MAX + sizeof(chunk); n += sizeof(chunk))
                        if (loop_write(sv[1], chunk, sizeof(chunk), false) < 0)
                                _exit(EXIT_SUCCESS); /* the client hung up: expected */
                _exit(EXIT_SUCCESS);
        }
        safe_close(sv[1]);
        assert_se(qmp_client_new(sv[0], &c) == 0);
        r = run_until_eof(c, 30000);
        is_int(r, -EMSGSIZE, "over-long message: -EMSGSIZE");
        c = qmp_client_free(c);
        ok(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer done");
}

static void test_sync_timeout(void) {
        _cleanup_free_ char *sock = strjoin(tmpdir, "/silent.sock");
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int lfd = -EBADF, acc = -EBADF;
        QmpClient *c = NULL;
        uint64_t t0, dt;
        int fd, r;

        diag("call_sync timeouts: a listener that never accepts, a peer that never answers capabilities");
        strcpy(sa.sun_path, sock);
        lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_se(lfd >= 0);
        assert_se(bind(lfd, (struct sockaddr *) &sa, sizeof(sa)) == 0);
        assert_se(listen(lfd, 4) == 0);

        is_int(qmp_connect_unix(sock, &fd), 0, "connect to a silent listener");
        assert_se(qmp_client_new(fd, &c) == 0);
        t0 = now_ms();
        r = qmp_client_call_sync(c, "query-status", NULL, 300, NULL, NULL);
        dt = now_ms() - t0;
        is_int(r, -ETIMEDOUT, "no greeting: -ETIMEDOUT");
        ok(dt >= 300 && dt < 1500, "within the bound (%llu ms for 300 ms)", (unsigned long long) dt);
        t0 = now_ms();
        is_int(qmp_client_call_sync(c, "query-status", NULL, 0, NULL, NULL), -ETIMEDOUT, "timeout 0: -ETIMEDOUT at once");
        ok(now_ms() - t0 < 100, "at once");
        /* Both abandoned commands are completed (and their state freed:
         * ASan checks) here. */
        c = qmp_client_free(c);

        /* A peer that sends the greeting but never acknowledges. */
        is_int(qmp_connect_unix(sock, &fd), 0, "connect again");
        acc = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        acc = safe_close(acc);
        acc = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        assert_se(acc >= 0);
        peer_send(acc, GREETING);
        assert_se(qmp_client_new(fd, &c) == 0);
        t0 = now_ms();
        r = qmp_client_call_sync(c, "query-status", NULL, 300, NULL, NULL);
        dt = now_ms() - t0;
        is_int(r, -ETIMEDOUT, "greeting but no capabilities answer: -ETIMEDOUT");
        ok(dt >= 300 && dt < 1500, "within the bound (%llu ms)", (unsigned long long) dt);
        ok(!qmp_client_is_ready(c), "not ready");
        json_object *req = peer_read_request(acc);
        is_str(get_str(req, "execute"), "qmp_capabilities", "capabilities were sent");
        json_object_put(req);
        c = qmp_client_free(c);

        is_int(qmp_connect_unix("/nonexistent/qmp.sock", &fd), -ENOENT, "connect to a missing socket: -ENOENT");
        {
                char longpath[200];

                memset(longpath, 'x', sizeof(longpath) - 1);
                longpath[sizeof(longpath) - 1] = '\0';
                is_int(qmp_connect_unix(longpath, &fd), -ENAMETOOLONG, "over-long path: -ENAMETOOLONG");
        }
}

int main(void) {
        _cleanup_free_ char *qemu = NULL;
        const char *name = getenv("ZVM_QEMU") ?: "qemu-system-x86_64";
        bool must = streq_ptr(getenv("ZVM_MUST_BOOT"), "1");

        (void) signal(SIGPIPE, SIG_IGN);
        assert_se(mkdtemp(tmpdir));
        atexit(cleanup);

        qemu = find_executable(name);
        if (!qemu && !must)
                plan_skip_all("qemu-system-x86_64 not installed");

        test_peer_protocol();
        test_peer_oversize();
        test_sync_timeout();
        if (!qemu)
                ok(false, "%s not found, but ZVM_MUST_BOOT=1", name);
        else {
                test_qemu_session(qemu);
                test_qemu_disconnects(qemu);
        }
        return done_testing();
}
