/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * "zvm console": connects stdin/stdout to a VM's serial console, the unix
 * socket <run>/vms/<vmid>/console.sock that QEMU listens on. On a terminal,
 * stdin is switched to raw mode (every key goes to the guest, Ctrl-C too)
 * and Ctrl-] detaches, as in telnet and virsh. The terminal is restored on
 * every way out: detach, end of the console, SIGTERM/SIGHUP.
 *
 * With stdin not a terminal ("echo root | zvm console web") bytes pass
 * through unchanged, Ctrl-] included; after stdin ends, output is relayed
 * until the console has been quiet for CONSOLE_DRAIN_MSEC.
 */

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>

#include "cli-http.h"
#include "cli-vm.h"
#include "fd-util.h"
#include "log.h"
#include "string-util.h"

#define CONSOLE_ESCAPE 0x1d             /* Ctrl-] */
#define CONSOLE_DRAIN_MSEC 1000
#define CONSOLE_BUFFER_SIZE (16U * 1024U)

/* Asks zvmd for the VM's VMID and state, and returns
 * <run>/vms/<vmid>/<name>: the runtime files are named by VMID, and a
 * stopped VM has none. */
int cli_vm_runtime_path(const Cli *cli, const char *id, const char *name, char **ret, uint32_t *ret_cid) {
        _cleanup_(json_object_putp) json_object *vm = NULL;
        _cleanup_free_ char *path = NULL;
        json_object *vmid = NULL, *state = NULL, *cid = NULL;
        const char *s;
        char buf[32];
        int r;

        r = cli_vm_get(cli, id, &vm);
        if (r < 0)
                return r;

        if (!json_object_object_get_ex(vm, "vmid", &vmid) || !json_object_is_type(vmid, json_type_int) ||
            json_object_get_int64(vmid) <= 0)
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "zvmd sent a VM without a VMID");

        s = json_object_object_get_ex(vm, "state", &state) ? json_object_get_string(state) : NULL;
        if (!streq_ptr(s, "starting") && !streq_ptr(s, "running") && !streq_ptr(s, "stopping"))
                return log_error_errno(SYNTHETIC_ERRNO(EBUSY), "VM %s is not running", id);

        if (ret_cid)
                *ret_cid = json_object_object_get_ex(vm, "cid", &cid) ? (uint32_t) json_object_get_int64(cid) : 0;
        (void) snprintf(buf, sizeof(buf), "%" PRIi64, json_object_get_int64(vmid));
        path = strjoin(cli->run_dir, "/vms/", buf, "/", name);
        if (!path)
                return log_oom();
        *ret = TAKE_PTR(path);
        return 0;
}

static int console_connect(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        return TAKE_FD(fd);
}

/* Copies stdin → sock and sock → stdout until the user detaches, either
 * side ends or a signal arrives on sigfd. Returns 1 if the console was
 * closed on the other end, 0 for the other ways out. */
static int console_relay(int sock, int sigfd, bool escape) {
        _cleanup_free_ char *buf = malloc(CONSOLE_BUFFER_SIZE);
        bool stdin_open = true;
        ssize_t n;
        int r;

        if (!buf)
                return log_oom();

        for (;;) {
                struct pollfd p[] = {
                        { .fd = stdin_open ? STDIN_FILENO : -1, .events = POLLIN },
                        { .fd = sock, .events = POLLIN },
                        { .fd = sigfd, .events = POLLIN },
                };

                r = poll(p, ELEMENTSOF(p), stdin_open ? -1 : CONSOLE_DRAIN_MSEC);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return log_error_errno(-errno, "poll() failed: %m");
                }
                if (r == 0)             /* stdin ended and the console went quiet */
                        return 0;

                if (p[2].revents != 0) {
                        struct signalfd_siginfo si;

                        if (read(sigfd, &si, sizeof(si)) == (ssize_t) sizeof(si))
                                log_debug("Got signal %" PRIu32 ", detaching.", si.ssi_signo);
                        return 0;
                }

                if (p[1].revents != 0) {
                        n = read(sock, buf, CONSOLE_BUFFER_SIZE);
                        if (n < 0 && errno != EINTR && errno != EAGAIN)
                                return log_error_errno(-errno, "failed to read from the console: %m");
                        if (n == 0)
                                return 1;
                        if (n > 0) {
                                r = loop_write(STDOUT_FILENO, buf, n, false);
                                if (r < 0) {    /* nobody is reading any more */
                                        log_debug_errno(r, "Failed to write to stdout, detaching: %m");
                                        return 0;
                                }
                        }
                }

                if (p[0].revents != 0) {
                        char *e;

                        n = read(STDIN_FILENO, buf, CONSOLE_BUFFER_SIZE);
                        if (n < 0 && errno != EINTR && errno != EAGAIN)
                                return log_error_errno(-errno, "failed to read from stdin: %m");
                        if (n == 0) {
                                stdin_open = false;
                                continue;
                        }
                        if (n < 0)
                                continue;

                        e = escape ? memchr(buf, CONSOLE_ESCAPE, n) : NULL;
                        r = loop_write(sock, buf, e ? (size_t) (e - buf) : (size_t) n, false);
                        if (r < 0)
                                return log_error_errno(r, "failed to write to the console: %m");
                        if (e)
                                return 0;
                }
        }
}

int cli_terminal_signals(int extra, sigset_t *ret_old) {
        sigset_t mask;
        int fd;

        assert_se(sigemptyset(&mask) == 0);
        assert_se(sigaddset(&mask, SIGINT) == 0);
        assert_se(sigaddset(&mask, SIGTERM) == 0);
        assert_se(sigaddset(&mask, SIGHUP) == 0);
        assert_se(sigaddset(&mask, SIGQUIT) == 0);
        if (extra > 0)
                assert_se(sigaddset(&mask, extra) == 0);
        assert_se(sigprocmask(SIG_BLOCK, &mask, ret_old) == 0);
        fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (fd < 0) {
                fd = log_error_errno(-errno, "failed to create signalfd: %m");
                assert_se(sigprocmask(SIG_SETMASK, ret_old, NULL) == 0);
        }
        return fd;
}

int cli_console_attach(const Cli *cli, const char *id) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF, sigfd = -EBADF;
        struct sigaction sa_ignore = { .sa_handler = SIG_IGN }, sa_old;
        struct termios saved, raw;
        sigset_t old_mask;
        bool tty;
        int r;

        r = cli_vm_runtime_path(cli, id, "console.sock", &path, NULL);
        if (r < 0)
                return r;

        fd = console_connect(path);
        if (fd < 0)
                return log_error_errno(fd, "cannot open the console of VM %s at %s: %m%s", id, path,
                                       fd == -ENOENT || fd == -ECONNREFUSED ? " (is the VM running on this host?)" : "");

        /* Signals become events, so that every way out restores the terminal. */
        sigfd = cli_terminal_signals(0, &old_mask);
        if (sigfd < 0)
                return sigfd;
        /* A closed console or stdout is an EPIPE to handle, not a death. */
        assert_se(sigaction(SIGPIPE, &sa_ignore, &sa_old) == 0);

        tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) >= 0;
        if (tty) {
                log_info("Connected to the console of VM %s; escape character is ^].", id);
                raw = saved;
                cfmakeraw(&raw);
                if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) < 0) {
                        r = log_error_errno(-errno, "failed to put the terminal into raw mode: %m");
                        goto finish;
                }
        }

        r = console_relay(fd, sigfd, tty);

        if (tty) {
                (void) tcsetattr(STDIN_FILENO, TCSADRAIN, &saved);
                fputc('\n', stderr);
        }
        if (r > 0) {
                log_info("The console of VM %s was closed.", id);
                r = 0;
        }
finish:
        (void) sigaction(SIGPIPE, &sa_old, NULL);
        /* The signal that ended the session was read from the signalfd; it
         * meant "stop", which we did. */
        sigfd = safe_close(sigfd);
        assert_se(sigprocmask(SIG_SETMASK, &old_mask, NULL) == 0);
        return r;
}
