/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lib/vsock: the hybrid vsock handshake, as vsock_connect() really runs it.
 * A thread of this harness plays vhost-device-vsock on a unix socket: it
 * accepts, reads the request, answers with the input and hangs up.
 *
 * Input: the device's reply and whatever follows it (the guest's data).
 *
 * Properties (vsock.h's contract):
 *   - accepted exactly when the first line (before '\n', shorter than
 *     VSOCK_HYBRID_REPLY_MAX) is "OK <number>" with a 32-bit decimal
 *     number; else -ECONNREFUSED, never a hang (the call is bounded);
 *   - the request was exactly "CONNECT <port>\n";
 *   - on success the bytes after the reply's newline are all still in the
 *     socket, in order: the handshake never eats guest data.
 */
#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fd-util.h"
#include "fuzz.h"
#include "string-util.h"
#include "vsock.h"

#define PORT 5000U

static struct {
        char dir[64];
        char path[128];
        int listen_fd;
        pthread_mutex_t lock;
        const uint8_t *reply;
        size_t reply_size;
        bool request_ok;
} dev = { .listen_fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER };

/* Reads the request up to its newline (it comes in one write, but a read
 * may still split it). */
static bool read_request(int fd) {
        char buf[64];
        size_t n = 0;

        while (n < sizeof(buf) - 1) {
                ssize_t k = read(fd, buf + n, 1);

                if (k <= 0)
                        return false;
                if (buf[n++] == '\n')
                        break;
        }
        buf[n] = '\0';
        return streq(buf, "CONNECT 5000\n");
}

static void *device_thread(void *arg) {
        for (;;) {
                _cleanup_close_ int fd = accept4(dev.listen_fd, NULL, NULL, SOCK_CLOEXEC);
                bool ok;

                if (fd < 0)
                        continue;
                ok = read_request(fd);
                pthread_mutex_lock(&dev.lock);
                dev.request_ok = ok;
                /* The client may give up early (a line too long): no SIGPIPE. */
                for (size_t off = 0; off < dev.reply_size;) {
                        ssize_t k = send(fd, dev.reply + off, dev.reply_size - off, MSG_NOSIGNAL);

                        if (k <= 0)
                                break;
                        off += (size_t) k;
                }
                pthread_mutex_unlock(&dev.lock);
        }
        return NULL;
}

static void cleanup(void) {
        (void) unlink(dev.path);
        (void) rmdir(dev.dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        pthread_t t;

        strcpy(dev.dir, "/tmp/zvm-fuzz-vsock.XXXXXX");
        if (!mkdtemp(dev.dir))
                abort();
        snprintf(dev.path, sizeof(dev.path), "%s/vsock.sock", dev.dir);
        strcpy(sa.sun_path, dev.path);
        dev.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (dev.listen_fd < 0 || bind(dev.listen_fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
            listen(dev.listen_fd, 16) < 0)
                abort();
        atexit(cleanup);
        if (pthread_create(&t, NULL, device_thread, NULL) != 0)
                abort();
        return 0;
}

/* The reference: what a reply line must look like to be accepted. */
static bool reply_acceptable(const uint8_t *data, size_t size) {
        const uint8_t *nl = memchr(data, '\n', size);
        char line[VSOCK_HYBRID_REPLY_MAX];
        size_t len;
        uint32_t n;

        if (!nl)
                return false;
        len = (size_t) (nl - data);
        if (len >= sizeof(line) || memchr(data, 0, len))
                return false;
        memcpy(line, data, len);
        line[len] = '\0';
        return startswith(line, "OK ") && safe_atou32(line + 3, &n) >= 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        VsockTarget t = { .uds_path = dev.path };
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *rest = NULL;
        size_t rest_size = 0;
        const uint8_t *nl;
        int r;

        pthread_mutex_lock(&dev.lock);
        dev.reply = data;
        dev.reply_size = size;
        dev.request_ok = false;
        pthread_mutex_unlock(&dev.lock);

        r = vsock_connect(&t, PORT, 5000, &fd);
        /* Read to the device's hang-up before taking the lock: it holds the
         * lock while it sends, and may be blocked on a full socket. */
        if (r == 0)
                FUZZ_CHECK(read_full_fd(fd, &rest, &rest_size, 0) >= 0);

        /* The device thread is done with the input once it hung up. */
        pthread_mutex_lock(&dev.lock);
        FUZZ_CHECK(dev.request_ok);
        dev.reply = NULL;
        dev.reply_size = 0;
        pthread_mutex_unlock(&dev.lock);

        if (!reply_acceptable(data, size)) {
                FUZZ_CHECK(r == -ECONNREFUSED);
                return 0;
        }
        FUZZ_CHECK(r == 0);
        nl = memchr(data, '\n', size);
        FUZZ_CHECK(rest_size == size - (size_t) (nl + 1 - data));
        FUZZ_CHECK(memcmp(rest, nl + 1, rest_size) == 0);
        return 0;
}
