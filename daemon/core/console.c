/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A VM's serial console, relayed by zvmd (see console.h): guest → log and
 * clients, clients → guest, every buffer and every step bounded.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "console-log.h"
#include "console.h"
#include "fd-util.h"
#include "log.h"
#include "macro.h"
#include "socket-util.h"
#include "string-util.h"

/* Below the API, QMP and pidfds: a guest that floods its console is served
 * only when nothing else is pending, and waits (QEMU stops its UART while
 * the socket is full) rather than delaying anyone. */
#define CONSOLE_PRIORITY (SD_EVENT_PRIORITY_NORMAL + 10)
#define CONSOLE_RECONNECT_USEC (1000ULL * 1000ULL)
/* QEMU's UART writes one byte per send(), and a unix socket holds only
 * ~270 such one-byte packets (each costs ~770 bytes of the sender's
 * buffer): a guest printing flat out wakes zvmd for every few hundred
 * bytes. After a read that large zvmd stops reading that VM for a while;
 * QEMU stalls the guest's UART meanwhile. This bounds a flooding VM to
 * 1 / CONSOLE_PAUSE_USEC wakeups a second (~27 KB/s, still above a
 * 115200-baud line); typing and its echo (small reads) are never paused. */
#define CONSOLE_PAUSE_AFTER 128U
#define CONSOLE_PAUSE_USEC (10ULL * 1000ULL)

/* A byte queue of fixed capacity; the buffer is allocated on first use. */
typedef struct Ring {
        uint8_t *buf;
        size_t cap, head, len;
} Ring;

typedef struct ConsoleClient {
        VmConsole *console;
        int fd;
        sd_event_source *source;
        bool input_closed;              /* it shut down its sending side: output only */
        Ring out;
} ConsoleClient;

struct VmConsole {
        sd_event *event;
        uint32_t vmid;                  /* for logs */
        const char *run_dir;            /* the VM's, borrowed */
        ConsoleLog *log;
        bool log_failing;               /* warned once; again after a write worked */
        int serial_fd;                  /* to QEMU's serial chardev, or -EBADF */
        sd_event_source *serial_source;
        sd_event_source *reconnect_source;
        sd_event_source *pause_source;  /* armed: not reading the guest until it fires */
        int listen_fd;                  /* console.sock */
        sd_event_source *listen_source;
        ConsoleClient *clients[CONSOLE_CLIENTS_MAX];
        size_t n_clients;
        Ring input;                     /* typed by clients, not yet taken by QEMU */
};

/* ---- ring --------------------------------------------------------------- */

/* All of p, or -ENOBUFS and nothing. */
static int ring_push(Ring *r, const void *p, size_t n) {
        size_t tail, first;

        if (n > r->cap - r->len)
                return -ENOBUFS;
        if (n == 0)
                return 0;
        if (!r->buf) {
                r->buf = malloc(r->cap);
                if (!r->buf)
                        return -ENOMEM;
        }
        tail = (r->head + r->len) % r->cap;
        first = MIN(n, r->cap - tail);
        memcpy(r->buf + tail, p, first);
        memcpy(r->buf, (const uint8_t *) p + first, n - first);
        r->len += n;
        return 0;
}

/* Sends what the ring holds without waiting. Returns 0 (also when the
 * socket is full) or -errno. */
static int ring_send(Ring *r, int fd) {
        struct iovec iov[2];
        struct msghdr mh = { .msg_iov = iov };
        ssize_t n;

        if (r->len == 0)
                return 0;
        iov[0] = (struct iovec) { r->buf + r->head, MIN(r->len, r->cap - r->head) };
        iov[1] = (struct iovec) { r->buf, r->len - iov[0].iov_len };
        mh.msg_iovlen = iov[1].iov_len > 0 ? 2 : 1;
        n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        r->head = (r->head + (size_t) n) % r->cap;
        r->len -= (size_t) n;
        return 0;
}

/* ---- clients -------------------------------------------------------------- */

static void console_update_events(VmConsole *c);

static ConsoleClient *console_client_free(ConsoleClient *cl) {
        if (!cl)
                return NULL;
        sd_event_source_disable_unref(cl->source);
        safe_close(cl->fd);
        free(cl->out.buf);
        return mfree(cl);
}

static void console_client_drop(ConsoleClient *cl, const char *why) {
        VmConsole *c = cl->console;

        for (size_t i = 0; i < c->n_clients; i++)
                if (c->clients[i] == cl) {
                        c->clients[i] = c->clients[--c->n_clients];
                        break;
                }
        log_debug("VM %u: console client %s", c->vmid, why);
        console_client_free(cl);
}

/* Guest output for one client: straight to its socket when nothing is
 * queued, the rest queued; a client that cannot keep up is dropped. */
static void console_client_feed(ConsoleClient *cl, const uint8_t *p, size_t n) {
        ssize_t w = 0;

        if (cl->out.len == 0) {
                w = send(cl->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (w < 0 && errno != EAGAIN && errno != EINTR) {
                        console_client_drop(cl, "went away");
                        return;
                }
                w = MAX(w, (ssize_t) 0);
        }
        if (ring_push(&cl->out, p + w, n - (size_t) w) < 0) {
                log_info("VM %u: a console client fell %u KiB behind, disconnecting it", cl->console->vmid,
                         CONSOLE_CLIENT_QUEUE_MAX / 1024U);
                console_client_drop(cl, "too slow");
        }
}

/* Typed input to QEMU, as much as it takes now; then every source's
 * events are brought up to date. */
static int console_input_flush(VmConsole *c) {
        int r = c->serial_fd >= 0 ? ring_send(&c->input, c->serial_fd) : 0;

        console_update_events(c);
        return r;
}

static int on_client_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        ConsoleClient *cl = userdata;
        VmConsole *c = cl->console;
        size_t room = c->input.cap - c->input.len;

        /* Input first: a client that types and hangs up at once still
         * gets its bytes to the guest. */
        if ((revents & EPOLLIN) && room > 0 && !cl->input_closed) {
                uint8_t b[CONSOLE_INPUT_MAX];
                ssize_t n = read(cl->fd, b, MIN(room, sizeof(b)));

                if (n == 0)
                        cl->input_closed = true;
                else if (n > 0)
                        (void) ring_push(&c->input, b, (size_t) n);    /* fits: read at most room */
                else if (errno != EAGAIN && errno != EINTR)
                        revents |= EPOLLERR;
        }
        if (revents & (EPOLLHUP | EPOLLERR))
                console_client_drop(cl, "hung up");
        else if ((revents & EPOLLOUT) && ring_send(&cl->out, cl->fd) < 0)
                console_client_drop(cl, "went away");
        (void) console_input_flush(c);          /* and updates every client's events */
        return 0;
}

static int on_client_connect(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        static const char busy[] = "zvmd: this console already has its maximum of clients\r\n";
        VmConsole *c = userdata;
        ConsoleClient *cl;
        int cfd, r;

        cfd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0)
                return 0;               /* EAGAIN, or the client already left */
        if (c->n_clients >= CONSOLE_CLIENTS_MAX) {
                (void) send(cfd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
                safe_close(cfd);
                return 0;
        }
        cl = calloc(1, sizeof(*cl));
        if (!cl) {
                safe_close(cfd);
                return 0;
        }
        *cl = (ConsoleClient) { .console = c, .fd = cfd, .out.cap = CONSOLE_CLIENT_QUEUE_MAX };
        r = sd_event_add_io(c->event, &cl->source, cfd, EPOLLIN, on_client_io, cl);
        if (r < 0) {
                console_client_free(cl);
                return 0;
        }
        (void) sd_event_source_set_priority(cl->source, CONSOLE_PRIORITY);
        (void) sd_event_source_set_description(cl->source, "console-client");
        c->clients[c->n_clients++] = cl;
        console_update_events(c);
        log_debug("VM %u: console client attached (%zu of %u)", c->vmid, c->n_clients, CONSOLE_CLIENTS_MAX);
        return 0;
}

/* ---- the guest side ---------------------------------------------------------- */

static int console_connect_serial(VmConsole *c);

static int on_reconnect(sd_event_source *s, uint64_t usec, void *userdata) {
        VmConsole *c = userdata;

        c->reconnect_source = sd_event_source_disable_unref(c->reconnect_source);
        (void) console_connect_serial(c);
        return 0;
}

static void console_schedule_reconnect(VmConsole *c) {
        c->reconnect_source = sd_event_source_disable_unref(c->reconnect_source);
        (void) sd_event_add_time_relative(c->event, &c->reconnect_source, CLOCK_MONOTONIC,
                                          CONSOLE_RECONNECT_USEC, 0, on_reconnect, c);
}

static void console_serial_lost(VmConsole *c, int error) {
        log_debug_errno(error, "VM %u: serial console connection lost, reconnecting: %m", c->vmid);
        c->serial_source = sd_event_source_disable_unref(c->serial_source);
        c->serial_fd = safe_close(c->serial_fd);
        /* QEMU is exiting (its pidfd tells the VM, which closes us) or
         * dropped us: try again shortly, as long as the VM runs. */
        console_schedule_reconnect(c);
}

static int on_pause_end(sd_event_source *s, uint64_t usec, void *userdata) {
        VmConsole *c = userdata;

        c->pause_source = sd_event_source_disable_unref(c->pause_source);
        console_update_events(c);
        return 0;
}

static void console_pause(VmConsole *c) {
        if (c->pause_source)
                return;
        /* If the timer cannot be made, reading simply goes on. */
        (void) sd_event_add_time_relative(c->event, &c->pause_source, CLOCK_MONOTONIC,
                                          CONSOLE_PAUSE_USEC, 1000 /* µs; 0 would mean 250 ms */, on_pause_end, c);
}

static void console_log_output(VmConsole *c, const uint8_t *p, size_t n) {
        int r;

        if (!c->log)
                return;
        r = console_log_write(c->log, p, n);
        if (r < 0 && !c->log_failing)
                log_warning_errno(r, "VM %u: cannot write the console log, dropping output: %m", c->vmid);
        c->log_failing = r < 0;
}

static int on_serial_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        /* One buffer for every VM: what is read is written out or queued
         * before this returns. */
        static uint8_t buf[CONSOLE_READ_MAX];
        VmConsole *c = userdata;
        ssize_t n;

        if (revents & EPOLLOUT)
                (void) console_input_flush(c);
        if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                return 0;
        /* One bounded read per wakeup: a flooding guest gets the loop back
         * in turn with everyone else. */
        n = recv(c->serial_fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0) {
                console_serial_lost(c, n < 0 ? -errno : -ECONNRESET);
                return 0;
        }
        console_log_output(c, buf, (size_t) n);
        for (size_t i = c->n_clients; i > 0; i--)   /* backwards: feed may drop clients[i - 1] */
                console_client_feed(c->clients[i - 1], buf, (size_t) n);
        if ((size_t) n >= CONSOLE_PAUSE_AFTER)
                console_pause(c);
        console_update_events(c);
        return 0;
}

static int console_attach_serial(VmConsole *c, int fd) {
        int r;

        r = sd_event_add_io(c->event, &c->serial_source, fd, EPOLLIN, on_serial_io, c);
        if (r < 0) {
                safe_close(fd);
                return r;
        }
        (void) sd_event_source_set_priority(c->serial_source, CONSOLE_PRIORITY);
        (void) sd_event_source_set_description(c->serial_source, "console-serial");
        c->serial_fd = fd;
        console_update_events(c);
        return 0;
}

/* Connects to QEMU's serial chardev, without waiting: the connection
 * waits in the listener's backlog until QEMU accepts it. A refusal (the
 * backlog still holds the connection of a zvmd that died) is retried by
 * timer. */
static int console_connect_serial(VmConsole *c) {
        _cleanup_free_ char *path = strjoin(c->run_dir, "/serial.sock");
        int fd = -EBADF, r;

        if (!path)
                return -ENOMEM;
        r = socket_connect_unix(path, true, &fd);
        if (r >= 0)
                r = console_attach_serial(c, fd);
        if (r < 0) {
                log_debug_errno(r, "VM %u: cannot connect to the serial console yet, retrying: %m", c->vmid);
                console_schedule_reconnect(c);
        }
        return r;
}

/* Who wants what next: QEMU takes input when there is some; clients are
 * read while the input queue has room and written while theirs holds
 * output. */
static void console_update_events(VmConsole *c) {
        bool room = c->input.len < c->input.cap;

        if (c->serial_source)
                (void) sd_event_source_set_io_events(c->serial_source, (c->pause_source ? 0 : EPOLLIN) |
                                                                               (c->input.len > 0 ? EPOLLOUT : 0));
        for (size_t i = 0; i < c->n_clients; i++) {
                ConsoleClient *cl = c->clients[i];

                (void) sd_event_source_set_io_events(cl->source, (room && !cl->input_closed ? EPOLLIN : 0) |
                                                                         (cl->out.len > 0 ? EPOLLOUT : 0));
        }
}

/* ---- API ------------------------------------------------------------------------ */

int console_open(sd_event *event, uint32_t vmid, const char *run_dir, uint64_t log_max, VmConsole **console) {
        _cleanup_free_ char *log_path = strjoin(run_dir, "/console.log");
        _cleanup_free_ char *sock = strjoin(run_dir, "/console.sock");
        _cleanup_free_ char *serial = strjoin(run_dir, "/serial.sock");
        struct stat st;
        VmConsole *c;
        int r;

        if (!log_path || !sock || !serial)
                return -ENOMEM;
        /* A QEMU started by a zvmd from before console.c listens on
         * console.sock and writes console.log itself: leave both to it
         * until it restarts. */
        if (stat(serial, &st) < 0 || !S_ISSOCK(st.st_mode))
                return -ENOENT;
        console_close(console);
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (VmConsole) { .event = event, .vmid = vmid, .run_dir = run_dir, .serial_fd = -EBADF,
                           .listen_fd = -EBADF, .input.cap = CONSOLE_INPUT_MAX };
        *console = c;
        /* Whatever else fails, zvmd must still connect to QEMU: a QEMU
         * just spawned waits for that before it runs the guest. */
        r = console_log_open(log_path, log_max, &c->log);
        if (r < 0)
                log_warning_errno(r, "VM %u: cannot open %s, the console is not logged: %m", vmid, log_path);
        r = socket_listen_unix(sock, 0600, 4, &c->listen_fd);
        if (r >= 0)
                r = sd_event_add_io(event, &c->listen_source, c->listen_fd, EPOLLIN, on_client_connect, c);
        if (r < 0)
                log_warning_errno(r, "VM %u: cannot listen on %s, `zvm console` will not work: %m", vmid, sock);
        else
                (void) sd_event_source_set_description(c->listen_source, "console-listen");
        (void) console_connect_serial(c);       /* retried by timer */
        return 0;
}

int console_listen_serial(const char *run_dir, int *ret_fd) {
        _cleanup_free_ char *path = strjoin(run_dir, "/serial.sock");

        if (!path)
                return -ENOMEM;
        /* Backlog 1: zvmd is QEMU's only client. */
        return socket_listen_unix(path, 0600, 1, ret_fd);
}

void console_close(VmConsole **console) {
        VmConsole *c = *console;

        if (!c)
                return;
        while (c->n_clients > 0)
                console_client_free(c->clients[--c->n_clients]);
        sd_event_source_disable_unref(c->listen_source);
        safe_close(c->listen_fd);
        sd_event_source_disable_unref(c->serial_source);
        sd_event_source_disable_unref(c->reconnect_source);
        sd_event_source_disable_unref(c->pause_source);
        safe_close(c->serial_fd);
        console_log_free(c->log);
        free(c->input.buf);
        *console = mfree(c);
}
