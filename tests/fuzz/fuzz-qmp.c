/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lib/qmp: the QMP client reading what QEMU sends (a QEMU that misbehaves,
 * or that a guest provoked into sending odd events).
 *
 * The client runs for real over a socketpair: this harness plays QEMU on the
 * other end. Before any input, three commands are invoked (held back until
 * the greeting is acknowledged); an event "STOP" makes the event handler
 * invoke one more ("cont"), so replies can match commands sent after
 * negotiation too. A command whose error desc is "free" frees the client
 * from inside its callback (the path zvmd takes when a VM goes away).
 *
 * Input: byte 0 picks the chunk size, 2^(byte % 17) = 1..65536 bytes per
 * write, then qmp_client_process(); the rest is QEMU's output. After the
 * input, QEMU hangs up. (Powers of two keep byte-by-byte feeding possible
 * without making it the common, slow case.) At most CHUNKS_MAX writes per
 * input: fed byte by byte, a 4 KiB input was 12,000 system calls, and the
 * target ran at a few hundred inputs a second; a split mid-token is reached
 * just as well by short inputs.
 *
 * Properties (qmp.h's contract):
 *   - every invoked command's callback runs exactly once, with either a
 *     result (success, no error class) or an error class, never both;
 *   - after an error from qmp_client_process() or the hang-up, every command
 *     has been answered and the client says it is disconnected;
 *   - the first thing the client writes after a greeting is
 *     qmp_capabilities.
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fd-util.h"
#include "fuzz.h"
#include "qmp.h"

#define EXTRA_MAX 16U
#define CHUNKS_MAX 64U

static struct {
        QmpClient *client;
        bool freed;
        unsigned invoked, answered;
        unsigned calls[3 + EXTRA_MAX];
} st;

static void on_result(QmpClient *c, json_object *result, const char *error_class, const char *error_desc,
                      void *userdata) {
        unsigned idx = (unsigned) (uintptr_t) userdata;

        /* Also after the free: it answers what is left with "Disconnected". */
        FUZZ_CHECK(c == st.client);
        FUZZ_CHECK(idx < st.invoked);
        FUZZ_CHECK(st.calls[idx]++ == 0);
        FUZZ_CHECK(!(result && error_class));
        st.answered++;
        if (!st.freed && error_class && error_desc && streq(error_desc, "free")) {
                st.freed = true;
                qmp_client_free(c);
        }
}

static void invoke(const char *command) {
        unsigned idx = st.invoked;

        if (idx >= ELEMENTSOF(st.calls))
                return;
        if (qmp_client_invoke(st.client, command, NULL, on_result, (void *) (uintptr_t) idx) >= 0)
                st.invoked++;
}

static void on_event(QmpClient *c, const char *event, json_object *data, void *userdata) {
        FUZZ_CHECK(c == st.client && !st.freed);
        FUZZ_CHECK(event);
        if (streq(event, "STOP"))
                invoke("cont");
}

/* Reads what the client sent, so that its output never fills the socket;
 * keeps the start of it. */
static void drain(int fd, char *head, size_t head_size, size_t *head_len) {
        char buf[4096];
        ssize_t n;

        while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
                size_t k = MIN((size_t) n, head_size - 1 - *head_len);

                memcpy(head + *head_len, buf, k);
                *head_len += k;
                head[*head_len] = '\0';
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_close_ int qemu = -EBADF;
        char head[64] = "";
        size_t head_len = 0, chunk, off = 1;
        int fds[2], r = 0;

        if (size < 1)
                return 0;
        chunk = MAX((size_t) 1 << (data[0] % 17), (size - 1 + CHUNKS_MAX - 1) / CHUNKS_MAX);

        st = (typeof(st)) {};
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
                return 0;
        qemu = fds[1];
        if (qmp_client_new(fds[0], &st.client) < 0) {
                safe_close(fds[0]);
                return 0;
        }
        qmp_client_set_event_handler(st.client, on_event, NULL);
        invoke("query-status");
        invoke("stop");
        invoke("query-version");

        while (off < size && !st.freed) {
                size_t n = MIN(chunk, size - off);

                if (loop_write(qemu, data + off, n, false) < 0)
                        break;
                off += n;
                r = qmp_client_process(st.client);
                if (st.freed)
                        break;
                drain(qemu, head, sizeof(head), &head_len);
                if (r < 0)
                        break;
        }

        if (!st.freed && r >= 0) {
                (void) shutdown(qemu, SHUT_WR);
                r = qmp_client_process(st.client);
                if (!st.freed)
                        FUZZ_CHECK(r < 0);
        }
        if (!st.freed) {
                FUZZ_CHECK(r < 0);
                FUZZ_CHECK(!qmp_client_is_connected(st.client));
                FUZZ_CHECK(!qmp_client_is_ready(st.client));
                /* Disconnecting answered everything. */
                FUZZ_CHECK(st.answered == st.invoked);
                if (qmp_client_get_greeting(st.client) && head_len > 0)
                        FUZZ_CHECK(startswith(head, "{\"execute\":\"qmp_capabilities\""));
                st.client = qmp_client_free(st.client);
        }
        FUZZ_CHECK(st.answered == st.invoked);
        for (unsigned i = 0; i < st.invoked; i++)
                FUZZ_CHECK(st.calls[i] == 1);
        return 0;
}
