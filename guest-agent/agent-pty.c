/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Op pty: a command on a pseudo-terminal, its bytes relayed both ways on
 * the connection in frames (api/agent-protocol.md "pty"). The connection
 * process is this session's alone: blocking on a slow host only holds up
 * this command, whose output then waits in the pty.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "agent-exec.h"
#include "agent-pty.h"
#include "fd-util.h"
#include "log.h"
#include "time-util.h"

#define PTY_MAX_ARGV 4096
#define PTY_MAX_ENV 4096
#define PTY_HANGUP_GRACE_MS 2000        /* SIGHUP, then SIGKILL this much later */
#define PTY_EXEC_WAIT_MS 10000          /* for the child to exec() or say why not */

extern char **environ;

/* A guest whose init mounted no devpts (the tiny template) still gets
 * terminals: /dev/ptmx finds its instance at /dev/pts. */
static int pty_open_master(void) {
        int fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);

        if (fd < 0 && (errno == ENODEV || errno == ENOENT)) {
                (void) mkdir("/dev/pts", 0755);
                if (mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=620,ptmxmode=666") < 0 &&
                    errno != EBUSY)
                        return -errno;
                fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        }
        if (fd < 0)
                return -errno;
        if (grantpt(fd) < 0 || unlockpt(fd) < 0) {
                int r = -errno;

                close(fd);
                return r;
        }
        return fd;
}

_noreturn_ static void pty_child(char **argv, char **envp, const char *cwd, const char *slave, int fd_status) {
        int fd;

        /* A session of its own whose controlling terminal is the pty: job
         * control, ^C and SIGWINCH reach the command as on any terminal. */
        exec_child_begin();
        fd = open(slave, O_RDWR);
        if (fd < 0 || ioctl(fd, TIOCSCTTY, 0) < 0)
                exec_child_fail(fd_status, EXEC_STAGE_TERMINAL, errno);
        exec_child_run(argv, envp, cwd, fd, fd, fd, fd_status);
}

typedef struct PtySession {
        int master;
        pid_t pid;
        bool reaped, master_eof, hangup;
        int status;
        uint64_t kill_at;               /* after a hang-up: SIGKILL then */
        unsigned char in[PTY_FRAME_HEADER + PTY_FRAME_MAX];     /* host → us: part of a frame */
        size_t in_len;
        size_t frame;                           /* length of the input frame at s->in being written */
        size_t pending_off, pending_len;        /* of its bytes, those the pty has not taken yet */
} PtySession;

static void pty_set_size(int master, const unsigned char *p) {
        struct winsize ws = { .ws_row = (unsigned short) (p[0] << 8 | p[1]),
                              .ws_col = (unsigned short) (p[2] << 8 | p[3]) };

        if (ws.ws_row > 0 && ws.ws_col > 0)
                (void) ioctl(master, TIOCSWINSZ, &ws);
}

/* Sends one frame (header + at most PTY_FRAME_MAX bytes), bounded like any
 * answer (WRITE_TIMEOUT_MS without progress). */
static int pty_send(Conn *c, char type, const void *data, size_t len) {
        unsigned char f[PTY_FRAME_HEADER + PTY_FRAME_MAX];

        f[0] = (unsigned char) type;
        f[1] = (unsigned char) (len >> 8);
        f[2] = (unsigned char) len;
        memcpy(f + PTY_FRAME_HEADER, data, len);
        return loop_write_full(c->out_fd, f, PTY_FRAME_HEADER + len, VSOCK_WRITE_MAX, WRITE_TIMEOUT_MS);
}

/* Writes what the pty takes of the pending input; true when all is in. */
static bool pty_flush_input(PtySession *s) {
        while (s->pending_len > 0) {
                ssize_t k = write(s->master, s->in + PTY_FRAME_HEADER + s->pending_off, s->pending_len);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN)
                        return false;
                if (k <= 0) {           /* the terminal is gone: drop it */
                        s->pending_len = 0;
                        break;
                }
                s->pending_off += (size_t) k;
                s->pending_len -= (size_t) k;
        }
        return true;
}

/* Drops the frame at the start of s->in. */
static void pty_consume(PtySession *s, size_t len) {
        memmove(s->in, s->in + PTY_FRAME_HEADER + len, s->in_len - PTY_FRAME_HEADER - len);
        s->in_len -= PTY_FRAME_HEADER + len;
}

/* Takes the complete frame at the start of s->in, if there is one. Returns
 * 1 if one was taken, 0 if more bytes are needed (or the pty has not taken
 * all of an input frame yet: it stays at s->in), -EBADMSG for garbage. */
static int pty_take_frame(PtySession *s) {
        size_t len;

        if (s->in_len < PTY_FRAME_HEADER)
                return 0;
        len = (size_t) s->in[1] << 8 | s->in[2];
        if (len > PTY_FRAME_MAX)
                return -EBADMSG;
        if (s->in_len < PTY_FRAME_HEADER + len)
                return 0;
        switch (s->in[0]) {
        case PTY_FRAME_INPUT:
                s->frame = len;
                s->pending_off = 0;
                s->pending_len = len;
                if (!pty_flush_input(s))
                        return 0;
                break;
        case PTY_FRAME_WINSIZE:
                if (len != 4)
                        return -EBADMSG;
                pty_set_size(s->master, s->in + PTY_FRAME_HEADER);
                break;
        default:
                return -EBADMSG;
        }
        pty_consume(s, len);
        return 1;
}

static void pty_hangup(PtySession *s);

/* Every complete frame received, until the pty is full. */
static void pty_take_frames(PtySession *s) {
        int r;

        while ((r = pty_take_frame(s)) > 0)
                ;
        if (r < 0) {
                log_warning("pty: malformed frame from the host, hanging up");
                pty_hangup(s);
        }
}

static void pty_hangup(PtySession *s) {
        if (s->hangup)
                return;
        s->hangup = true;
        (void) kill(-s->pid, SIGHUP);
        s->kill_at = now_msec(CLOCK_MONOTONIC) + PTY_HANGUP_GRACE_MS;
}

/* One poll() round. Returns false when the session is over: the command
 * exited and its terminal is closed, or the host went away. */
static bool pty_poll(PtySession *s, Conn *c) {
        struct pollfd p[3] = {
                { .fd = c->sigfd, .events = POLLIN },
                { .fd = s->master_eof ? -1 : s->master,
                  .events = (short) (POLLIN | (s->pending_len > 0 ? POLLOUT : 0)) },
                /* Input waits while the pty has not taken the last frame;
                 * after a hang-up the socket is not looked at (its POLLHUP
                 * would wake every round). */
                { .fd = s->hangup ? -1 : c->in_fd, .events = s->pending_len > 0 ? 0 : POLLIN },
        };
        int ms = s->hangup ? msec_until(s->kill_at) : -1;

        if (!s->reaped) {
                pid_t w = waitpid(s->pid, &s->status, WNOHANG);

                s->reaped = w == s->pid;
        }
        if (s->reaped && (s->master_eof || s->hangup))
                return false;
        if (s->hangup && ms == 0) {
                (void) kill(-s->pid, SIGKILL);
                if (!s->reaped)
                        (void) kill(s->pid, SIGKILL);
                return false;
        }
        if (poll(p, 3, ms) < 0)
                return errno == EINTR;
        if (p[0].revents) {
                struct signalfd_siginfo si;

                while (read(c->sigfd, &si, sizeof(si)) > 0)
                        ;
        }
        if (p[1].revents & POLLOUT && pty_flush_input(s)) {
                pty_consume(s, s->frame);
                pty_take_frames(s);
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
                unsigned char buf[PTY_FRAME_MAX];
                ssize_t k = read(s->master, buf, sizeof(buf));

                /* EIO: every holder of the terminal has closed it. */
                if (k < 0 && errno != EINTR && errno != EAGAIN)
                        s->master_eof = true;
                else if (k == 0)
                        s->master_eof = true;
                else if (k > 0 && pty_send(c, PTY_FRAME_OUTPUT, buf, (size_t) k) < 0)
                        pty_hangup(s);
        }
        if (p[2].revents) {
                ssize_t k = read(c->in_fd, s->in + s->in_len, sizeof(s->in) - s->in_len);

                if (k == 0 || (k < 0 && errno != EINTR && errno != EAGAIN))
                        pty_hangup(s);
                else if (k > 0) {
                        s->in_len += (size_t) k;
                        pty_take_frames(s);
                }
        }
        return true;
}

static int pty_parse(Request *rq, char ***argv, char ***envp, const char **cwd, unsigned char size[4]) {
        char **env;
        size_t n_argv, n_env;
        int64_t rows, cols;
        int r;

        if ((r = request_get_strv(rq, "argv", true, PTY_MAX_ARGV, argv, &n_argv)) < 0 ||
            (r = request_get_strv(rq, "env", false, PTY_MAX_ENV, &env, &n_env)) < 0 ||
            (r = request_get_string(rq, "cwd", false, cwd)) < 0 ||
            (r = request_get_int(rq, "rows", 0, 0, 65535, &rows)) < 0 ||
            (r = request_get_int(rq, "cols", 0, 0, 65535, &cols)) < 0)
                return r;
        if (n_argv == 0 || (*argv)[0][0] == 0)
                return request_fail(rq, EINVAL, "'argv' must name a command");
        for (size_t i = 0; i < n_env; i++)
                if (!strchr(env[i], '=') || env[i][0] == '=')
                        return request_fail(rq, EINVAL, "'env' entries must be \"NAME=value\"");
        if (!*cwd)
                *cwd = "/";
        *envp = exec_environment(rq->arena, env, n_env);
        if (!*envp)
                return request_fail(rq, ENOMEM, "out of memory");
        size[0] = (unsigned char) (rows >> 8), size[1] = (unsigned char) rows;
        size[2] = (unsigned char) (cols >> 8), size[3] = (unsigned char) cols;
        return 0;
}

/* Forks the command on a new pty and waits until it has exec()ed (or says
 * why it could not). */
static int pty_start(Request *rq, char **argv, char **envp, const char *cwd, const unsigned char size[4],
                     PtySession *s) {
        int p_status[2] = { -1, -1 }, r = 0;
        ExecFailure f = {};
        size_t got = 0;
        char slave[64];

        s->master = pty_open_master();
        if (s->master < 0)
                return request_fail(rq, -s->master, "cannot open a pseudo-terminal: %s", strerror(-s->master));
        if (ptsname_r(s->master, slave, sizeof(slave)) != 0)
                return request_fail(rq, errno ?: EIO, "cannot name the pseudo-terminal");
        pty_set_size(s->master, size);
        if (pipe2(p_status, O_CLOEXEC) < 0)
                return request_fail(rq, errno, "cannot create a pipe: %s", strerror(errno));
        s->pid = fork();
        if (s->pid < 0) {
                r = request_fail(rq, errno, "cannot fork: %s", strerror(errno));
                goto finish;
        }
        if (s->pid == 0)
                pty_child(argv, envp, cwd, slave, p_status[1]);
        p_status[1] = safe_close(p_status[1]);
        /* EOF once exec() worked (the pipe is close-on-exec). */
        while (got < sizeof(f)) {
                struct pollfd p = { .fd = p_status[0], .events = POLLIN };
                ssize_t k;

                if (poll(&p, 1, PTY_EXEC_WAIT_MS) <= 0)
                        break;
                k = read(p_status[0], (char *) &f + got, sizeof(f) - got);
                if (k <= 0 && !(k < 0 && errno == EINTR))
                        break;
                got += k > 0 ? (size_t) k : 0;
        }
        if (got == sizeof(f) && f.err > 0) {
                (void) waitpid(s->pid, NULL, 0);
                s->reaped = true;
                r = exec_failure_reply(rq, &f, cwd, argv[0]);
        }
finish:
        close_many(p_status, 2);
        return r;
}

int op_pty(Request *rq, const Json *id) {
        PtySession s = { .master = -EBADF };
        unsigned char size[4] = {}, status[2];
        char **argv, **envp;
        const char *cwd;
        Buf ok = {};
        int r;

        r = pty_parse(rq, &argv, &envp, &cwd, size);
        if (r >= 0)
                r = pty_start(rq, argv, envp, cwd, size, &s);
        if (r < 0)
                goto finish;
        buf_puts(&ok, "{\"id\":");
        json_put_value(&ok, id);
        buf_puts(&ok, ",\"ok\":true}\n");
        r = conn_send(rq->conn, &ok);
        buf_free(&ok);
        if (r < 0) {
                pty_hangup(&s);
                s.kill_at = 0;
        }
        (void) fd_nonblock(s.master, true);
        /* Bytes the host sent after the request line, before our answer. */
        s.in_len = MIN(rq->conn->len - rq->conn->consumed, sizeof(s.in));
        memcpy(s.in, rq->conn->buf + rq->conn->consumed, s.in_len);
        rq->conn->consumed = rq->conn->len;
        pty_take_frames(&s);
        while (pty_poll(&s, rq->conn))
                ;
        if (!s.reaped && waitpid(s.pid, &s.status, WNOHANG) == s.pid)
                s.reaped = true;
        if (s.hangup) {
                /* What is left of its group had SIGHUP and its grace. */
                (void) kill(-s.pid, SIGKILL);
                log_info("pty %s: the host hung up, ended the command", argv[0]);
        }
        else if (s.reaped) {
                status[0] = WIFEXITED(s.status) ? 'e' : 's';
                status[1] = (unsigned char) (WIFEXITED(s.status) ? WEXITSTATUS(s.status) : WTERMSIG(s.status));
                (void) pty_send(rq->conn, PTY_FRAME_EXIT, status, sizeof(status));
        }
        r = 1;
finish:
        if (!s.reaped && s.pid > 0) {
                (void) kill(-s.pid, SIGKILL);
                (void) kill(s.pid, SIGKILL);
                (void) waitpid(s.pid, NULL, 0);
        }
        safe_close(s.master);
        return r;
}
