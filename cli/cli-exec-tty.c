/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * zvm exec -it: a command on a terminal in the guest. zvm speaks to the
 * agent itself (op pty, api/agent-protocol.md), through the VM's vsock
 * socket on this host as vsock-proxy does, with the agent secret zvmd
 * hands to local callers (GET /vms/{id}/agent-secret). The local terminal
 * is raw while the command runs and restored on every way out: signals
 * arrive on a signalfd, never in a handler.
 */
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "agent-contract.h"
#include "cli-exec-tty.h"
#include "cli-http.h"
#include "cli-vm.h"
#include "fd-util.h"
#include "log.h"
#include "string-util.h"
#include "vsock.h"

#define TTY_CONNECT_TIMEOUT_MS 5000
#define TTY_ANSWER_TIMEOUT_MS 30000
#define TTY_LINE_MAX (64U * 1024U)      /* auth and pty answers are small; errors too */

typedef struct TtyConn {
        int fd;
        unsigned char buf[TTY_LINE_MAX];
        size_t len;
} TtyConn;

/* Appends what the agent sent to t->buf (there is room: a line or a frame
 * is always shorter). Returns 0, or -ECONNRESET at EOF, or -errno. */
static int tty_fill(TtyConn *t) {
        ssize_t k = read(t->fd, t->buf + t->len, sizeof(t->buf) - t->len);

        if (k == 0)
                return -ECONNRESET;
        if (k < 0)
                return errno == EINTR || errno == EAGAIN ? 0 : -errno;
        t->len += (size_t) k;
        return 0;
}

/* Reads one answer line, leaving what follows it (the first frames) in
 * t->buf. Returns its parsed JSON. */
static int tty_read_answer(TtyConn *t, json_object **ret) {
        for (;;) {
                unsigned char *nl = memchr(t->buf, '\n', t->len);
                struct pollfd p = { .fd = t->fd, .events = POLLIN };
                ssize_t k;

                if (nl) {
                        size_t n = (size_t) (nl - t->buf);

                        *nl = 0;
                        *ret = json_tokener_parse((const char *) t->buf);
                        memmove(t->buf, nl + 1, t->len - n - 1);
                        t->len -= n + 1;
                        return *ret ? 0 : -EBADMSG;
                }
                if (t->len == sizeof(t->buf))
                        return -E2BIG;
                k = poll(&p, 1, TTY_ANSWER_TIMEOUT_MS);
                if (k == 0)
                        return -ETIMEDOUT;
                if (k < 0 && errno != EINTR)
                        return -errno;
                k = tty_fill(t);
                if (k < 0)
                        return (int) k;
        }
}

/* Sends request and reads its answer. Returns 0, or -EPROTO with the
 * agent's error code (e.g. "ENOENT") in *ret_code. */
static int tty_call(TtyConn *t, json_object *request, const char *what, char **ret_code) {
        _cleanup_(json_object_putp) json_object *answer = NULL;
        _cleanup_free_ char *line = strjoin(json_object_to_json_string_ext(request, JSON_C_TO_STRING_PLAIN), "\n");
        json_object *ok, *err, *v;
        int r;

        if (!line)
                return log_oom();
        r = loop_write(t->fd, line, strlen(line), false);
        if (r >= 0)
                r = tty_read_answer(t, &answer);
        if (r < 0)
                return log_error_errno(r, "%s: the agent did not answer: %m", what);
        if (json_object_object_get_ex(answer, "ok", &ok) && json_object_get_boolean(ok))
                return 0;
        if (json_object_object_get_ex(answer, "error", &err) && json_object_object_get_ex(err, "code", &v) && ret_code)
                *ret_code = strdup(json_object_get_string(v));
        log_error("%s: %s", what,
                  json_object_object_get_ex(err, "message", &v) ? json_object_get_string(v) : "refused by the agent");
        return -EPROTO;
}

static int tty_connect(Cli *cli, const char *name, TtyConn *t) {
        _cleanup_(json_object_putp) json_object *host = NULL, *cred = NULL, *auth = NULL;
        _cleanup_free_ char *path = NULL, *uds = NULL;
        json_object *mode = NULL, *secret = NULL, *port = NULL;
        VsockTarget target = {};
        uint32_t cid = 0;
        int r;

        r = cli_vm_path(name, "/agent-secret", &path);
        if (r >= 0)
                r = cli_http_call(cli, "GET", path, NULL, &cred);
        if (r >= 0)
                r = cli_http_call(cli, "GET", "/host", NULL, &host);
        if (r >= 0)
                r = cli_vm_runtime_path(cli, name, "vsock.sock", &uds, &cid);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(cred, "secret", &secret) || !json_object_object_get_ex(cred, "port", &port))
                return log_error_errno(SYNTHETIC_ERRNO(EPROTO), "zvmd sent no agent secret");
        if (json_object_object_get_ex(host, "vsock_mode", &mode) && streq_ptr(json_object_get_string(mode), "kernel"))
                target.cid = cid;
        else
                target.uds_path = uds;
        r = vsock_connect(&target, (unsigned) json_object_get_int(port), TTY_CONNECT_TIMEOUT_MS, &t->fd);
        if (r < 0)
                return log_error_errno(r, "cannot connect to the agent of VM %s: %m", name);
        auth = json_object_new_object();
        if (!auth)
                return log_oom();
        json_object_object_add(auth, "op", json_object_new_string("auth"));
        json_object_object_add(auth, "secret", json_object_get(secret));
        return tty_call(t, auth, "agent authentication", NULL);
}

static int tty_send(int fd, char type, const void *data, size_t len) {
        unsigned char f[PTY_FRAME_HEADER + PTY_FRAME_MAX];

        assert(len <= PTY_FRAME_MAX);
        f[0] = (unsigned char) type;
        f[1] = (unsigned char) (len >> 8);
        f[2] = (unsigned char) len;
        memcpy(f + PTY_FRAME_HEADER, data, len);
        return loop_write(fd, f, PTY_FRAME_HEADER + len, false);
}

static void tty_window(int fd, unsigned char out[4]) {
        struct winsize ws = {};

        (void) ioctl(fd, TIOCGWINSZ, &ws);
        out[0] = (unsigned char) (ws.ws_row >> 8), out[1] = (unsigned char) ws.ws_row;
        out[2] = (unsigned char) (ws.ws_col >> 8), out[3] = (unsigned char) ws.ws_col;
}

/* Takes the frames in t->buf. Returns 1 with *exit_status at the exit
 * frame, 0 if more are needed, -EBADMSG for garbage. */
static int tty_frames(TtyConn *t, int *exit_status) {
        while (t->len >= PTY_FRAME_HEADER) {
                size_t len = (size_t) t->buf[1] << 8 | t->buf[2];
                const unsigned char *p = t->buf + PTY_FRAME_HEADER;

                if (len > PTY_FRAME_MAX)
                        return -EBADMSG;
                if (t->len < PTY_FRAME_HEADER + len)
                        return 0;
                if (t->buf[0] == PTY_FRAME_OUTPUT) {
                        if (loop_write(STDOUT_FILENO, p, len, false) < 0)
                                return -EPIPE;
                } else if (t->buf[0] == PTY_FRAME_EXIT && len == 2) {
                        *exit_status = p[0] == 'e' ? p[1] : 128 + p[1];
                        return 1;
                } else
                        return -EBADMSG;
                memmove(t->buf, t->buf + PTY_FRAME_HEADER + len, t->len - PTY_FRAME_HEADER - len);
                t->len -= PTY_FRAME_HEADER + len;
        }
        return 0;
}

/* Relays until the exit frame, the agent closing, or a signal. Returns
 * the command's exit status, or -errno. */
static int tty_relay(TtyConn *t, int sigfd) {
        bool in_open = true;
        int status = -1, r;

        r = tty_frames(t, &status);
        while (r == 0) {
                struct pollfd p[3] = { { .fd = t->fd, .events = POLLIN }, { .fd = sigfd, .events = POLLIN },
                                       { .fd = in_open ? STDIN_FILENO : -1, .events = POLLIN } };
                unsigned char buf[PTY_FRAME_MAX];
                ssize_t k;

                if (poll(p, 3, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (p[1].revents) {
                        struct signalfd_siginfo si;

                        if (read(sigfd, &si, sizeof(si)) != sizeof(si))
                                continue;
                        if (si.ssi_signo != SIGWINCH)
                                return -EINTR;
                        tty_window(STDIN_FILENO, buf);
                        if (tty_send(t->fd, PTY_FRAME_WINSIZE, buf, 4) < 0)
                                return -ECONNRESET;
                }
                if (p[2].revents) {
                        k = read(STDIN_FILENO, buf, sizeof(buf));
                        if (k <= 0 && !(k < 0 && (errno == EINTR || errno == EAGAIN)))
                                in_open = false;        /* the command goes on; it sees no more input */
                        else if (k > 0 && tty_send(t->fd, PTY_FRAME_INPUT, buf, (size_t) k) < 0)
                                return -ECONNRESET;
                }
                if (p[0].revents) {
                        r = tty_fill(t);
                        if (r < 0)
                                return r;
                        r = tty_frames(t, &status);
                }
        }
        return r < 0 ? r : status;
}

int cli_exec_tty(Cli *cli, const char *name, json_object *request) {
        _cleanup_(freep) TtyConn *t = calloc(1, sizeof(TtyConn));
        _cleanup_free_ char *code = NULL;
        _cleanup_close_ int sigfd = -EBADF;
        struct sigaction sa_ignore = { .sa_handler = SIG_IGN }, sa_old;
        struct termios saved, raw;
        unsigned char size[4];
        sigset_t old_mask;
        bool tty;
        int r;

        if (!t)
                return log_oom();
        t->fd = -EBADF;
        r = tty_connect(cli, name, t);
        if (r < 0)
                goto finish_fd;

        /* Signals become events, so that every way out restores the
         * terminal; SIGWINCH becomes a window frame. */
        sigfd = cli_terminal_signals(SIGWINCH, &old_mask);
        if (sigfd < 0) {
                r = sigfd;
                goto finish_fd;
        }
        assert_se(sigaction(SIGPIPE, &sa_ignore, &sa_old) == 0);

        tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) >= 0;
        tty_window(STDIN_FILENO, size);
        json_object_object_add(request, "rows", json_object_new_int(size[0] << 8 | size[1]));
        json_object_object_add(request, "cols", json_object_new_int(size[2] << 8 | size[3]));
        r = tty_call(t, request, "exec", &code);
        if (r == -EPROTO && streq_ptr(code, "ENOENT")) {
                cli->exit_status = 127;         /* no such command, as a shell says */
                r = 0;
                goto finish;
        }
        if (r < 0)
                goto finish;
        if (tty) {
                raw = saved;
                cfmakeraw(&raw);
                if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) < 0) {
                        r = log_error_errno(-errno, "failed to put the terminal into raw mode: %m");
                        goto finish;
                }
        }
        r = tty_relay(t, sigfd);
        if (tty)
                (void) tcsetattr(STDIN_FILENO, TCSADRAIN, &saved);
        if (r == -EINTR)
                r = log_error_errno(r, "interrupted: the command in VM %s was ended", name);
        else if (r == -ECONNRESET)
                r = log_error_errno(r, "the agent of VM %s closed the session before the command ended", name);
        else if (r < 0)
                r = log_error_errno(r, "exec -t: %m");
        else {
                cli->exit_status = r;
                r = 0;
        }
finish:
        (void) sigaction(SIGPIPE, &sa_old, NULL);
        sigfd = safe_close(sigfd);
        assert_se(sigprocmask(SIG_SETMASK, &old_mask, NULL) == 0);
finish_fd:
        t->fd = safe_close(t->fd);
        return r;
}
