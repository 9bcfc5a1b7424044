/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * zvm-agent: the guest side of api/agent-protocol.md. Static (musl), one
 * file, no library beyond libc.
 *
 * The main process listens on vsock port 1024 and forks one process per
 * host connection (at most MAX_CONNECTIONS at once; further connections
 * wait in the listen backlog). A connection proves the per-VM secret on its
 * first line, then sends requests, one JSON object per line, each answered
 * by one line. At start a separate child tells the host "ready" on port 1025
 * with a bounded back-off.
 *
 * Everything a host sends is untrusted input: the JSON reader below is
 * bounded (line length, nesting depth, number of values, number length) and
 * validates UTF-8; a request it cannot read is answered with EINVAL and the
 * connection stays usable. A crash of a connection's process costs only that
 * connection; the main process never reads host data at all.
 *
 *   zvm-agent [--port N] [--ready-port N] [--secret-file PATH] [--foreground]
 *   zvm-agent --stdio [--secret-file PATH]     serve one connection on stdin/
 *                                              stdout (tests; shutdown and
 *                                              reboot are answered, not done)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "musl-vsock.h"

/* include/uapi/linux/close_range.h (Linux 5.11). */
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#define CLOSE_RANGE_CLOEXEC_FLAG (1U << 2)

#ifndef ZVM_AGENT_VERSION
#define ZVM_AGENT_VERSION "0.0.0"
#endif

#define PREFIX "zvm-agent: "
#define DEFAULT_PORT 1024U
#define DEFAULT_READY_PORT 1025U
#define DEFAULT_SECRET_FILE "/sys/firmware/qemu_fw_cfg/by_name/opt/zvm/agent-secret/raw"
#define INITRD_TIMING_FILE "/run/zvm/initrd-timing"
#define BASE_PATH "PATH=/usr/sbin:/usr/bin:/sbin:/bin"

#define SECRET_LEN 64
#define MAX_CONNECTIONS 16
#define LISTEN_BACKLOG 128

#define LINE_MAX_BYTES ((size_t) 8 << 20)       /* a longer request line: E2BIG, close */
#define AUTH_TIMEOUT_MS 30000                   /* the first line must come within this */
#define IDLE_TIMEOUT_MS (10 * 60 * 1000)        /* an idle authenticated connection is closed */
#define WRITE_TIMEOUT_MS 60000                  /* a host that reads nothing for this long is dropped */
#define LINGER_MS 1000                          /* drain after a final error, so it is not lost to a reset */

#define JSON_MAX_DEPTH 16
#define JSON_MAX_VALUES 65536
#define JSON_MAX_NUMBER_LEN 64
#define OUT_MAX ((size_t) 64 << 20)             /* the largest response line we build */

#define EXEC_MAX_ARGV 4096
#define EXEC_MAX_ENV 4096
#define EXEC_MAX_STDIN ((size_t) 1 << 20)
#define EXEC_DEFAULT_TIMEOUT_MS 30000
#define EXEC_MAX_TIMEOUT_MS 86400000
#define EXEC_DEFAULT_MAX_OUTPUT ((size_t) 1 << 20)
#define EXEC_MAX_OUTPUT ((size_t) 8 << 20)
#define EXEC_KILL_GRACE_MS 2000                 /* after SIGKILL, how long we wait for the pipes and the exit */

#define FILE_MAX ((size_t) 8 << 20)
#define KEYS_MAX 1024
#define KEY_LINE_MAX 16384

#define READY_TOTAL_MS 60000
#define READY_FIRST_DELAY_MS 100
#define READY_MAX_DELAY_MS 2000
#define POWER_GRACE_S 10

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))

extern char **environ;

static bool stdio_mode;

/* ---- logging ------------------------------------------------------------ */

/* One write() per line: under busybox init our stderr is the console, which
 * other programs write to as well. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
        char buf[1024];
        va_list ap;
        int n;

        memcpy(buf, PREFIX, sizeof(PREFIX) - 1);
        va_start(ap, fmt);
        n = vsnprintf(buf + sizeof(PREFIX) - 1, sizeof(buf) - sizeof(PREFIX), fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        n += (int) sizeof(PREFIX) - 1;
        if ((size_t) n > sizeof(buf) - 2)
                n = (int) sizeof(buf) - 2;
        /* Never let a host-provided string split the line. */
        for (int i = (int) sizeof(PREFIX) - 1; i < n; i++)
                if ((unsigned char) buf[i] < 0x20)
                        buf[i] = ' ';
        buf[n++] = '\n';
        (void) !write(STDERR_FILENO, buf, (size_t) n);
}

/* ---- small helpers ------------------------------------------------------- */

static uint64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000ULL + (uint64_t) ts.tv_nsec / 1000000ULL;
}

static void sleep_ms(unsigned ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int remaining_ms(uint64_t deadline) {
        uint64_t n = now_ms();

        if (n >= deadline)
                return 0;
        return deadline - n > INT_MAX ? INT_MAX : (int) (deadline - n);
}

static int fd_nonblock(int fd) {
        int flags = fcntl(fd, F_GETFL);

        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return -errno;
        return 0;
}

static void close_safe(int *fd) {
        if (*fd >= 0) {
                close(*fd);
                *fd = -1;
        }
}

/* Writes everything, waiting for POLLOUT on non-blocking fds, at most
 * timeout_ms without progress. Never more than VSOCK_WRITE_MAX per write():
 * a larger send() makes the guest kernel (6.12 stable, 6.16+) queue a
 * non-linear skb whose payload spans several descriptors, which
 * vhost-device-vsock (0.3.0) drops as "DescriptorLengthTooSmall" — the
 * bytes are lost and the connection stalls for lack of credit. Payloads up
 * to SKB_WITH_OVERHEAD(32 KiB) stay linear. */
#define VSOCK_WRITE_MAX ((size_t) 16 << 10)

static int write_all_timeout(int fd, const void *data, size_t len, int timeout_ms) {
        const char *p = data;

        while (len > 0) {
                ssize_t k = write(fd, p, MIN(len, VSOCK_WRITE_MAX));

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                struct pollfd pfd = { .fd = fd, .events = POLLOUT };
                                int r = poll(&pfd, 1, timeout_ms);

                                if (r < 0 && errno == EINTR)
                                        continue;
                                if (r < 0)
                                        return -errno;
                                if (r == 0)
                                        return -ETIMEDOUT;
                                continue;
                        }
                        return -errno;
                }
                p += k;
                len -= (size_t) k;
        }
        return 0;
}

/* Reads a small file whole (sysfs, procfs, the secret); -EFBIG if longer
 * than size - 1. NUL-terminated. */
static ssize_t read_small_file(const char *path, char *buf, size_t size) {
        size_t n = 0;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        while (n < size - 1) {
                ssize_t k = read(fd, buf + n, size - 1 - n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        int e = errno;

                        close(fd);
                        return -e;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        close(fd);
        buf[n] = 0;
        return (ssize_t) n;
}

static const char *errno_name(int e) {
        static const struct {
                int e;
                const char *name;
        } table[] = {
                { EPERM, "EPERM" },     { ENOENT, "ENOENT" },   { ESRCH, "ESRCH" },         { EINTR, "EINTR" },
                { EIO, "EIO" },         { ENXIO, "ENXIO" },     { E2BIG, "E2BIG" },         { ENOEXEC, "ENOEXEC" },
                { EBADF, "EBADF" },     { ECHILD, "ECHILD" },   { EAGAIN, "EAGAIN" },       { ENOMEM, "ENOMEM" },
                { EACCES, "EACCES" },   { EFAULT, "EFAULT" },   { EBUSY, "EBUSY" },         { EEXIST, "EEXIST" },
                { EXDEV, "EXDEV" },     { ENODEV, "ENODEV" },   { ENOTDIR, "ENOTDIR" },     { EISDIR, "EISDIR" },
                { EINVAL, "EINVAL" },   { ENFILE, "ENFILE" },   { EMFILE, "EMFILE" },       { ETXTBSY, "ETXTBSY" },
                { EFBIG, "EFBIG" },     { ENOSPC, "ENOSPC" },   { ESPIPE, "ESPIPE" },       { EROFS, "EROFS" },
                { EMLINK, "EMLINK" },   { EPIPE, "EPIPE" },     { ERANGE, "ERANGE" },       { ENAMETOOLONG, "ENAMETOOLONG" },
                { ENOSYS, "ENOSYS" },   { ENOTEMPTY, "ENOTEMPTY" }, { ELOOP, "ELOOP" },     { EDQUOT, "EDQUOT" },
                { ETIMEDOUT, "ETIMEDOUT" }, { EOPNOTSUPP, "EOPNOTSUPP" }, { ECONNRESET, "ECONNRESET" },
                { ENOTSUP, "ENOTSUP" }, { EOVERFLOW, "EOVERFLOW" }, { ECANCELED, "ECANCELED" },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (table[i].e == e)
                        return table[i].name;
        return "EIO";
}

static const char *signal_name(int sig, char *buf, size_t size) {
        static const char *const names[] = {
                [SIGHUP] = "SIGHUP",   [SIGINT] = "SIGINT",       [SIGQUIT] = "SIGQUIT", [SIGILL] = "SIGILL",
                [SIGTRAP] = "SIGTRAP", [SIGABRT] = "SIGABRT",     [SIGBUS] = "SIGBUS",   [SIGFPE] = "SIGFPE",
                [SIGKILL] = "SIGKILL", [SIGUSR1] = "SIGUSR1",     [SIGSEGV] = "SIGSEGV", [SIGUSR2] = "SIGUSR2",
                [SIGPIPE] = "SIGPIPE", [SIGALRM] = "SIGALRM",     [SIGTERM] = "SIGTERM", [SIGCHLD] = "SIGCHLD",
                [SIGCONT] = "SIGCONT", [SIGSTOP] = "SIGSTOP",     [SIGTSTP] = "SIGTSTP", [SIGTTIN] = "SIGTTIN",
                [SIGTTOU] = "SIGTTOU", [SIGURG] = "SIGURG",       [SIGXCPU] = "SIGXCPU", [SIGXFSZ] = "SIGXFSZ",
                [SIGVTALRM] = "SIGVTALRM", [SIGPROF] = "SIGPROF", [SIGWINCH] = "SIGWINCH", [SIGIO] = "SIGIO",
                [SIGPWR] = "SIGPWR",   [SIGSYS] = "SIGSYS",
        };

        if (sig > 0 && (size_t) sig < ELEMENTSOF(names) && names[sig])
                return names[sig];
        snprintf(buf, size, "SIG%d", sig);
        return buf;
}

/* ---- output buffer ------------------------------------------------------- */

/* A growable byte buffer that remembers running out of memory or past
 * OUT_MAX instead of failing every call. */
typedef struct Buf {
        char *data;
        size_t len, cap;
        bool failed;
} Buf;

static bool buf_reserve(Buf *b, size_t extra) {
        size_t want;
        char *p;

        if (b->failed)
                return false;
        if (extra > OUT_MAX || b->len > OUT_MAX - extra) {
                b->failed = true;
                return false;
        }
        want = b->len + extra;
        if (want <= b->cap)
                return true;
        want = want < 4096 ? 4096 : want;
        if (want < b->cap * 2 && b->cap * 2 <= OUT_MAX)
                want = b->cap * 2;
        p = realloc(b->data, want);
        if (!p) {
                b->failed = true;
                return false;
        }
        b->data = p;
        b->cap = want;
        return true;
}

static void buf_put(Buf *b, const void *p, size_t n) {
        if (n == 0 || !buf_reserve(b, n))
                return;
        memcpy(b->data + b->len, p, n);
        b->len += n;
}

static void buf_putc(Buf *b, char c) {
        buf_put(b, &c, 1);
}

static void buf_puts(Buf *b, const char *s) {
        buf_put(b, s, strlen(s));
}

static void buf_printf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(Buf *b, const char *fmt, ...) {
        char tmp[256];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t) n >= sizeof(tmp)) {
                b->failed = true;
                return;
        }
        buf_put(b, tmp, (size_t) n);
}

static void buf_free(Buf *b) {
        free(b->data);
        *b = (Buf) {};
}

/* ---- arena ------------------------------------------------------------- */

/* Per-request memory for the parsed JSON: freed in one go. */
typedef struct ArenaChunk ArenaChunk;
struct ArenaChunk {
        ArenaChunk *prev;
        size_t used, size;
        max_align_t data[];
};

typedef struct Arena {
        ArenaChunk *chunk;      /* the newest; the others hang off ->prev */
} Arena;

#define ARENA_CHUNK ((size_t) 64 << 10)

static void *arena_alloc(Arena *a, size_t n) {
        ArenaChunk *c = a->chunk;
        void *p;

        if (n > (size_t) 1 << 30)
                return NULL;
        n = (n + 15) & ~(size_t) 15;
        if (!c || n > c->size - c->used) {
                size_t size = n > ARENA_CHUNK ? n : ARENA_CHUNK;

                c = malloc(sizeof(ArenaChunk) + size);
                if (!c)
                        return NULL;
                *c = (ArenaChunk) { .prev = a->chunk, .size = size };
                a->chunk = c;
        }
        p = (char *) c->data + c->used;
        c->used += n;
        return p;
}

static void arena_free(Arena *a) {
        while (a->chunk) {
                ArenaChunk *prev = a->chunk->prev;

                free(a->chunk);
                a->chunk = prev;
        }
}

/* ---- JSON --------------------------------------------------------------- */

typedef enum JsonType {
        JSON_NULL,
        JSON_BOOL,
        JSON_INT,
        JSON_REAL,
        JSON_STRING,
        JSON_ARRAY,
        JSON_OBJECT,
} JsonType;

typedef struct Json Json;
struct Json {
        JsonType type;
        bool b;
        int64_t i;
        double d;
        const char *s;          /* JSON_STRING: decoded UTF-8, NUL-terminated (may hold \u0000) */
        size_t len;
        const char *key;        /* member of an object: its name */
        size_t key_len;
        Json *first, *last;     /* array elements or object members, in order */
        Json *next;
        size_t n;
};

typedef struct JsonParser {
        const char *start, *p, *end;
        Arena *arena;
        unsigned values;
        char *error;
        size_t error_size;
} JsonParser;

static Json *json_fail(JsonParser *P, const char *what) {
        if (P->error[0] == 0)
                snprintf(P->error, P->error_size, "malformed JSON: %s at byte %zu", what, (size_t) (P->p - P->start));
        return NULL;
}

static void json_skip_ws(JsonParser *P) {
        while (P->p < P->end && (*P->p == ' ' || *P->p == '\t' || *P->p == '\r' || *P->p == '\n'))
                P->p++;
}

/* Length of the valid UTF-8 sequence at s (n bytes available), 0 if
 * invalid: no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t n) {
        unsigned char c = s[0];

        if (c < 0x80)
                return 1;
        if (c < 0xC2)
                return 0;
        if (c < 0xE0)
                return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
        if (c < 0xF0) {
                if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
                        return 0;
                if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0))
                        return 0;
                return 3;
        }
        if (c < 0xF5) {
                if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
                        return 0;
                if ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90))
                        return 0;
                return 4;
        }
        return 0;
}

static size_t utf8_put(char *out, uint32_t cp) {
        if (cp < 0x80) {
                out[0] = (char) cp;
                return 1;
        }
        if (cp < 0x800) {
                out[0] = (char) (0xC0 | (cp >> 6));
                out[1] = (char) (0x80 | (cp & 0x3F));
                return 2;
        }
        if (cp < 0x10000) {
                out[0] = (char) (0xE0 | (cp >> 12));
                out[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
                out[2] = (char) (0x80 | (cp & 0x3F));
                return 3;
        }
        out[0] = (char) (0xF0 | (cp >> 18));
        out[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char) (0x80 | (cp & 0x3F));
        return 4;
}

static int hex4(const char *s, uint32_t *ret) {
        uint32_t v = 0;

        for (int i = 0; i < 4; i++) {
                char c = s[i];

                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= (uint32_t) (c - '0');
                else if (c >= 'a' && c <= 'f')
                        v |= (uint32_t) (c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        v |= (uint32_t) (c - 'A' + 10);
                else
                        return -1;
        }
        *ret = v;
        return 0;
}

/* P->p is at the opening quote. The decoded string is never longer than its
 * escaped form, so one allocation of the source span suffices. */
static bool json_parse_string(JsonParser *P, const char **ret, size_t *ret_len) {
        const char *q = P->p + 1, *r, *stop;
        char *out, *o;

        while (q < P->end && *q != '"') {
                if (*q == '\\' && q + 1 < P->end)
                        q++;
                q++;
        }
        if (q >= P->end)
                return json_fail(P, "unterminated string"), false;
        stop = q;
        out = arena_alloc(P->arena, (size_t) (stop - P->p));
        if (!out)
                return json_fail(P, "out of memory"), false;
        o = out;
        for (r = P->p + 1; r < stop;) {
                unsigned char c = (unsigned char) *r;

                if (c == '\\') {
                        uint32_t cp, lo;

                        P->p = r;
                        switch (r[1]) {
                        case '"': *o++ = '"'; r += 2; break;
                        case '\\': *o++ = '\\'; r += 2; break;
                        case '/': *o++ = '/'; r += 2; break;
                        case 'b': *o++ = '\b'; r += 2; break;
                        case 'f': *o++ = '\f'; r += 2; break;
                        case 'n': *o++ = '\n'; r += 2; break;
                        case 'r': *o++ = '\r'; r += 2; break;
                        case 't': *o++ = '\t'; r += 2; break;
                        case 'u':
                                if (stop - r < 6 || hex4(r + 2, &cp) < 0)
                                        return json_fail(P, "bad \\u escape"), false;
                                r += 6;
                                if (cp >= 0xDC00 && cp <= 0xDFFF)
                                        return json_fail(P, "lone low surrogate"), false;
                                if (cp >= 0xD800 && cp <= 0xDBFF) {
                                        if (stop - r < 6 || r[0] != '\\' || r[1] != 'u' || hex4(r + 2, &lo) < 0 ||
                                            lo < 0xDC00 || lo > 0xDFFF)
                                                return json_fail(P, "high surrogate without its low half"), false;
                                        r += 6;
                                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                }
                                o += utf8_put(o, cp);
                                break;
                        default:
                                return json_fail(P, "bad escape"), false;
                        }
                } else if (c < 0x20) {
                        P->p = r;
                        return json_fail(P, "control character in string"), false;
                } else {
                        size_t n = utf8_len((const unsigned char *) r, (size_t) (stop - r));

                        if (n == 0) {
                                P->p = r;
                                return json_fail(P, "invalid UTF-8 in string"), false;
                        }
                        memcpy(o, r, n);
                        o += n;
                        r += n;
                }
        }
        *o = 0;
        *ret = out;
        *ret_len = (size_t) (o - out);
        P->p = stop + 1;
        return true;
}

static bool json_parse_number(JsonParser *P, Json *v) {
        const char *s = P->p, *q = P->p;
        char tmp[JSON_MAX_NUMBER_LEN + 1];
        bool real = false;
        size_t len;

        if (q < P->end && *q == '-')
                q++;
        if (q < P->end && *q == '0')
                q++;
        else if (q < P->end && *q >= '1' && *q <= '9')
                while (q < P->end && isdigit((unsigned char) *q))
                        q++;
        else
                return json_fail(P, "bad number"), false;
        if (q < P->end && *q == '.') {
                real = true;
                q++;
                if (q >= P->end || !isdigit((unsigned char) *q))
                        return json_fail(P, "bad number"), false;
                while (q < P->end && isdigit((unsigned char) *q))
                        q++;
        }
        if (q < P->end && (*q == 'e' || *q == 'E')) {
                real = true;
                q++;
                if (q < P->end && (*q == '+' || *q == '-'))
                        q++;
                if (q >= P->end || !isdigit((unsigned char) *q))
                        return json_fail(P, "bad number"), false;
                while (q < P->end && isdigit((unsigned char) *q))
                        q++;
        }
        len = (size_t) (q - s);
        if (len > JSON_MAX_NUMBER_LEN)
                return json_fail(P, "number too long"), false;
        memcpy(tmp, s, len);
        tmp[len] = 0;
        if (!real) {
                char *e;
                long long x;

                errno = 0;
                x = strtoll(tmp, &e, 10);
                if (errno == 0 && *e == 0) {
                        v->type = JSON_INT;
                        v->i = x;
                        v->d = (double) x;
                        P->p = q;
                        return true;
                }
        }
        v->type = JSON_REAL;
        v->d = strtod(tmp, NULL);
        P->p = q;
        return true;
}

static Json *json_parse_value(JsonParser *P, unsigned depth);

static Json *json_new(JsonParser *P) {
        Json *v;

        if (++P->values > JSON_MAX_VALUES)
                return json_fail(P, "too many values");
        v = arena_alloc(P->arena, sizeof(Json));
        if (!v)
                return json_fail(P, "out of memory");
        *v = (Json) {};
        return v;
}

static void json_append(Json *parent, Json *child) {
        if (parent->last)
                parent->last->next = child;
        else
                parent->first = child;
        parent->last = child;
        parent->n++;
}

static Json *json_parse_container(JsonParser *P, unsigned depth, bool object) {
        Json *v = json_new(P);
        char close = object ? '}' : ']';

        if (!v)
                return NULL;
        if (depth > JSON_MAX_DEPTH)
                return json_fail(P, "nested deeper than 16");
        v->type = object ? JSON_OBJECT : JSON_ARRAY;
        P->p++;
        json_skip_ws(P);
        if (P->p < P->end && *P->p == close) {
                P->p++;
                return v;
        }
        for (;;) {
                const char *key = NULL;
                size_t key_len = 0;
                Json *child;

                json_skip_ws(P);
                if (object) {
                        if (P->p >= P->end || *P->p != '"')
                                return json_fail(P, "expected a member name");
                        if (!json_parse_string(P, &key, &key_len))
                                return NULL;
                        json_skip_ws(P);
                        if (P->p >= P->end || *P->p != ':')
                                return json_fail(P, "expected ':'");
                        P->p++;
                }
                child = json_parse_value(P, depth);
                if (!child)
                        return NULL;
                child->key = key;
                child->key_len = key_len;
                json_append(v, child);
                json_skip_ws(P);
                if (P->p < P->end && *P->p == ',') {
                        P->p++;
                        continue;
                }
                if (P->p < P->end && *P->p == close) {
                        P->p++;
                        return v;
                }
                return json_fail(P, object ? "expected ',' or '}'" : "expected ',' or ']'");
        }
}

static bool json_literal(JsonParser *P, const char *word) {
        size_t n = strlen(word);

        if ((size_t) (P->end - P->p) < n || memcmp(P->p, word, n) != 0)
                return false;
        P->p += n;
        return true;
}

static Json *json_parse_value(JsonParser *P, unsigned depth) {
        Json *v;

        json_skip_ws(P);
        if (P->p >= P->end)
                return json_fail(P, "unexpected end");
        switch (*P->p) {
        case '{':
                return json_parse_container(P, depth + 1, true);
        case '[':
                return json_parse_container(P, depth + 1, false);
        case '"':
                v = json_new(P);
                if (!v)
                        return NULL;
                v->type = JSON_STRING;
                return json_parse_string(P, &v->s, &v->len) ? v : NULL;
        case 't':
        case 'f':
        case 'n':
                v = json_new(P);
                if (!v)
                        return NULL;
                if (json_literal(P, "true"))
                        *v = (Json) { .type = JSON_BOOL, .b = true };
                else if (json_literal(P, "false"))
                        *v = (Json) { .type = JSON_BOOL, .b = false };
                else if (json_literal(P, "null"))
                        *v = (Json) { .type = JSON_NULL };
                else
                        return json_fail(P, "unexpected word");
                return v;
        default:
                if (*P->p == '-' || isdigit((unsigned char) *P->p)) {
                        v = json_new(P);
                        if (!v)
                                return NULL;
                        return json_parse_number(P, v) ? v : NULL;
                }
                return json_fail(P, "unexpected character");
        }
}

/* Parses one complete JSON text. Returns NULL with a message in error. */
static Json *json_parse(Arena *arena, const char *text, size_t len, char *error, size_t error_size) {
        JsonParser P = {
                .start = text, .p = text, .end = text + len,
                .arena = arena, .error = error, .error_size = error_size,
        };
        Json *v;

        error[0] = 0;
        v = json_parse_value(&P, 0);
        if (!v)
                return NULL;
        json_skip_ws(&P);
        if (P.p != P.end)
                return json_fail(&P, "trailing data");
        return v;
}

static const Json *json_get(const Json *obj, const char *key) {
        size_t n = strlen(key);

        if (!obj || obj->type != JSON_OBJECT)
                return NULL;
        for (const Json *m = obj->first; m; m = m->next)
                if (m->key_len == n && memcmp(m->key, key, n) == 0)
                        return m;
        return NULL;
}

static bool json_is_cstring(const Json *v) {
        return v && v->type == JSON_STRING && strlen(v->s) == v->len;
}

/* Writes s as a JSON string. Bytes that are not valid UTF-8 (file names,
 * hostnames, messages are not ours to trust) become U+FFFD. */
static void json_put_string(Buf *b, const char *s, size_t len) {
        static const char hex[] = "0123456789abcdef";
        const unsigned char *p = (const unsigned char *) s, *end = p + len;

        if (!buf_reserve(b, len + 2))
                return;
        buf_putc(b, '"');
        while (p < end) {
                const unsigned char *run = p;
                size_t n;

                while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
                        p++;
                buf_put(b, run, (size_t) (p - run));
                if (p >= end)
                        break;
                switch (*p) {
                case '"': buf_puts(b, "\\\""); p++; continue;
                case '\\': buf_puts(b, "\\\\"); p++; continue;
                case '\n': buf_puts(b, "\\n"); p++; continue;
                case '\r': buf_puts(b, "\\r"); p++; continue;
                case '\t': buf_puts(b, "\\t"); p++; continue;
                case '\b': buf_puts(b, "\\b"); p++; continue;
                case '\f': buf_puts(b, "\\f"); p++; continue;
                default:
                        break;
                }
                if (*p < 0x20) {
                        char e[6] = { '\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15] };

                        buf_put(b, e, sizeof(e));
                        p++;
                        continue;
                }
                n = utf8_len(p, (size_t) (end - p));
                if (n == 0) {
                        buf_puts(b, "\xef\xbf\xbd");
                        p++;
                } else {
                        buf_put(b, p, n);
                        p += n;
                }
        }
        buf_putc(b, '"');
}

static void json_put_cstring(Buf *b, const char *s) {
        json_put_string(b, s, strlen(s));
}

static void json_put_double(Buf *b, double d, int decimals) {
        if (!isfinite(d))
                buf_puts(b, "null");
        else
                buf_printf(b, "%.*f", decimals, d);
}

/* Re-serializes a parsed value (the request's id, echoed). */
static void json_put_value(Buf *b, const Json *v) {
        if (!v) {
                buf_puts(b, "null");
                return;
        }
        switch (v->type) {
        case JSON_NULL:
                buf_puts(b, "null");
                break;
        case JSON_BOOL:
                buf_puts(b, v->b ? "true" : "false");
                break;
        case JSON_INT:
                buf_printf(b, "%lld", (long long) v->i);
                break;
        case JSON_REAL:
                if (isfinite(v->d)) {
                        char tmp[32];

                        /* Keep a real a real: 1.0 must not come back as 1. */
                        snprintf(tmp, sizeof(tmp), "%.17g", v->d);
                        buf_puts(b, tmp);
                        if (!strpbrk(tmp, ".eE"))
                                buf_puts(b, ".0");
                } else
                        buf_puts(b, "null");
                break;
        case JSON_STRING:
                json_put_string(b, v->s, v->len);
                break;
        case JSON_ARRAY:
        case JSON_OBJECT:
                buf_putc(b, v->type == JSON_ARRAY ? '[' : '{');
                for (const Json *c = v->first; c; c = c->next) {
                        if (c != v->first)
                                buf_putc(b, ',');
                        if (v->type == JSON_OBJECT) {
                                json_put_string(b, c->key, c->key_len);
                                buf_putc(b, ':');
                        }
                        json_put_value(b, c);
                }
                buf_putc(b, v->type == JSON_ARRAY ? ']' : '}');
                break;
        }
}

/* ---- base64 (RFC 4648, with padding) --------------------------------------- */

static void base64_put(Buf *b, const unsigned char *data, size_t len) {
        static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t out_len = (len + 2) / 3 * 4;
        char *o;

        if (!buf_reserve(b, out_len + 2))
                return;
        b->data[b->len++] = '"';
        o = b->data + b->len;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t) data[i] << 16;
                size_t rest = len - i;

                if (rest > 1)
                        v |= (uint32_t) data[i + 1] << 8;
                if (rest > 2)
                        v |= data[i + 2];
                *o++ = alphabet[(v >> 18) & 63];
                *o++ = alphabet[(v >> 12) & 63];
                *o++ = rest > 1 ? alphabet[(v >> 6) & 63] : '=';
                *o++ = rest > 2 ? alphabet[v & 63] : '=';
        }
        b->len += out_len;
        b->data[b->len++] = '"';
}

static int base64_value(unsigned char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

static size_t base64_decoded_len(size_t len) {
        return len / 4 * 3;
}

/* Strict: a multiple of 4, only the alphabet, '=' only as the last one or
 * two characters. out must hold base64_decoded_len(len) bytes. Returns the
 * decoded length or -EINVAL. */
static ssize_t base64_decode(const char *s, size_t len, unsigned char *out) {
        size_t o = 0, pad = 0;

        if (len % 4 != 0)
                return -EINVAL;
        if (len >= 1 && s[len - 1] == '=')
                pad = len >= 2 && s[len - 2] == '=' ? 2 : 1;
        for (size_t i = 0; i < len; i += 4) {
                int v[4];
                bool last = i + 4 == len;

                for (int k = 0; k < 4; k++) {
                        if (last && k >= 4 - (int) pad) {
                                v[k] = 0;
                                continue;
                        }
                        v[k] = base64_value((unsigned char) s[i + (size_t) k]);
                        if (v[k] < 0)
                                return -EINVAL;
                }
                out[o++] = (unsigned char) (v[0] << 2 | v[1] >> 4);
                if (!last || pad < 2)
                        out[o++] = (unsigned char) ((v[1] & 15) << 4 | v[2] >> 2);
                if (!last || pad < 1)
                        out[o++] = (unsigned char) ((v[2] & 3) << 6 | v[3]);
        }
        return (ssize_t) o;
}

/* ---- the secret ------------------------------------------------------------- */

static char secret[SECRET_LEN + 1];
static const char *secret_file = DEFAULT_SECRET_FILE;
static char secret_problem[256] = "not loaded";

static bool secret_load(void) {
        char buf[512];
        ssize_t n;

        n = read_small_file(secret_file, buf, sizeof(buf));
        if (n < 0) {
                snprintf(secret_problem, sizeof(secret_problem), "cannot read %s: %s", secret_file,
                         strerror((int) -n));
                return false;
        }
        while (n > 0 && isspace((unsigned char) buf[n - 1]))
                buf[--n] = 0;
        if (n != SECRET_LEN) {
                snprintf(secret_problem, sizeof(secret_problem), "%s holds %zd bytes, not %d hex digits",
                         secret_file, n, SECRET_LEN);
                return false;
        }
        for (ssize_t i = 0; i < n; i++)
                if (!isxdigit((unsigned char) buf[i])) {
                        snprintf(secret_problem, sizeof(secret_problem), "%s is not hex", secret_file);
                        return false;
                }
        memcpy(secret, buf, SECRET_LEN + 1);
        explicit_bzero(buf, sizeof(buf));
        return true;
}

static bool secret_loaded(void) {
        return secret[0] != 0;
}

/* Constant time in the content; the length is no secret. */
static bool secret_matches(const char *s, size_t len) {
        volatile unsigned char d = 0;

        if (!secret_loaded() || len != SECRET_LEN)
                return false;
        for (size_t i = 0; i < SECRET_LEN; i++)
                d |= (unsigned char) s[i] ^ (unsigned char) secret[i];
        return d == 0;
}

/* ---- guest facts ------------------------------------------------------------ */

static double uptime_seconds(void) {
        char buf[128];
        struct timespec ts;

        if (read_small_file("/proc/uptime", buf, sizeof(buf)) > 0)
                return strtod(buf, NULL);
        clock_gettime(CLOCK_BOOTTIME, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* /run/zvm/initrd-timing is one line "stage=ms stage=ms ..." written by the
 * initrd (initrd/init.c); we pass it on as an object, or null. */
static void put_initrd_timing(Buf *b) {
        char buf[1024], *p, *save = NULL;
        bool any = false;

        if (read_small_file(INITRD_TIMING_FILE, buf, sizeof(buf)) <= 0) {
                buf_puts(b, "null");
                return;
        }
        for (p = strtok_r(buf, " \t\n", &save); p; p = strtok_r(NULL, " \t\n", &save)) {
                char *eq = strchr(p, '='), *end;
                unsigned long long ms;
                bool name_ok = eq && eq != p && eq - p <= 32;

                for (char *c = p; name_ok && c < eq; c++)
                        name_ok = isalnum((unsigned char) *c) || *c == '-' || *c == '_';
                if (!name_ok || !isdigit((unsigned char) eq[1]))
                        continue;
                errno = 0;
                ms = strtoull(eq + 1, &end, 10);
                if (errno || *end)
                        continue;
                buf_putc(b, any ? ',' : '{');
                json_put_string(b, p, (size_t) (eq - p));
                buf_printf(b, ":%llu", ms);
                any = true;
        }
        buf_puts(b, any ? "}" : "null");
}

/* The guest's ssh host public keys, as an array of "TYPE BASE64" strings
 * (comments dropped): the host records them in its known_hosts, so the
 * first ssh connection to the guest is verified. Only well-formed lines of
 * printable ASCII are passed on; no keys (no sshd in this guest) is []. */
static void put_ssh_host_keys(Buf *b) {
        static const char *const files[] = {
                "/etc/ssh/ssh_host_ed25519_key.pub",
                "/etc/ssh/ssh_host_ecdsa_key.pub",
                "/etc/ssh/ssh_host_rsa_key.pub",
        };
        bool any = false;

        buf_putc(b, '[');
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                static const char allowed[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=@.-";
                char buf[4096], line[4096], *type, *key, *save = NULL;

                if (read_small_file(files[i], buf, sizeof(buf)) <= 0)
                        continue;
                type = strtok_r(buf, " \t\n", &save);
                key = type ? strtok_r(NULL, " \t\n", &save) : NULL;
                if (!key || strlen(type) > 64 || type[strspn(type, allowed)] || key[strspn(key, allowed)])
                        continue;
                snprintf(line, sizeof(line), "%s %s", type, key);
                if (any)
                        buf_putc(b, ',');
                json_put_cstring(b, line);
                any = true;
        }
        buf_putc(b, ']');
}

/* ---- a connection ----------------------------------------------------------- */

typedef enum After {
        AFTER_NOTHING,
        AFTER_POWEROFF,
        AFTER_REBOOT,
} After;

typedef struct Conn {
        int in_fd, out_fd;
        int sigfd;              /* SIGCHLD, for exec */
        char *buf;              /* received bytes not yet consumed */
        size_t len, cap, scanned;
        size_t consumed;        /* bytes of buf belonging to the line handed out last */
        After after;
} Conn;

typedef struct Request {
        Conn *conn;
        const Json *args;
        Arena *arena;
        char *error;            /* message for an error answer */
        size_t error_size;
} Request;

static int request_fail(Request *rq, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int request_fail(Request *rq, int err, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(rq->error, rq->error_size, fmt, ap);
        va_end(ap);
        return -err;
}

/* Returns 1 with a line (NUL-terminated in place, without its '\n'), 0 at
 * EOF, -ETIMEDOUT, -E2BIG for a line over LINE_MAX_BYTES, or -errno. */
static int conn_read_line(Conn *c, int timeout_ms, char **ret_line, size_t *ret_len) {
        uint64_t deadline = now_ms() + (uint64_t) timeout_ms;

        /* Drop the line handed out last time. */
        if (c->consumed > 0) {
                memmove(c->buf, c->buf + c->consumed, c->len - c->consumed);
                c->len -= c->consumed;
                c->consumed = 0;
                c->scanned = 0;
        }
        for (;;) {
                char *nl = c->scanned < c->len ? memchr(c->buf + c->scanned, '\n', c->len - c->scanned) : NULL;
                struct pollfd pfd = { .fd = c->in_fd, .events = POLLIN };
                ssize_t k;
                int r;

                if (nl) {
                        size_t n = (size_t) (nl - c->buf);

                        if (n > LINE_MAX_BYTES)
                                return -E2BIG;
                        *nl = 0;
                        c->consumed = n + 1;
                        *ret_line = c->buf;
                        *ret_len = n;
                        return 1;
                }
                c->scanned = c->len;
                if (c->len > LINE_MAX_BYTES)
                        return -E2BIG;
                if (c->cap - c->len < 65536) {
                        size_t want = c->cap ? c->cap * 2 : 131072;
                        char *p;

                        if (want > LINE_MAX_BYTES + 131072)
                                want = LINE_MAX_BYTES + 131072;
                        p = want > c->cap ? realloc(c->buf, want) : NULL;
                        if (!p)
                                return -ENOMEM;
                        c->buf = p;
                        c->cap = want;
                }
                r = poll(&pfd, 1, remaining_ms(deadline));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        return -ETIMEDOUT;
                k = read(c->in_fd, c->buf + c->len, c->cap - c->len - 1);
                if (k < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return 0;
                c->len += (size_t) k;
        }
}

static int conn_send(Conn *c, Buf *b) {
        if (b->failed)
                return -ENOMEM;
        return write_all_timeout(c->out_fd, b->data, b->len, WRITE_TIMEOUT_MS);
}

static int conn_send_error(Conn *c, const Json *id, int err, const char *message) {
        Buf b = {};
        int r;

        buf_puts(&b, "{\"id\":");
        json_put_value(&b, id);
        buf_puts(&b, ",\"ok\":false,\"error\":{\"code\":");
        json_put_cstring(&b, errno_name(err));
        buf_puts(&b, ",\"message\":");
        json_put_cstring(&b, message);
        buf_puts(&b, "}}\n");
        r = conn_send(c, &b);
        buf_free(&b);
        return r;
}

/* Before closing on an error the host may still be sending (an over-long
 * line): stop writing, then read and drop for a moment, so that closing
 * with unread data does not reset the connection before the host has read
 * our answer. */
static void conn_linger(Conn *c) {
        uint64_t deadline = now_ms() + LINGER_MS;
        char buf[65536];

        (void) shutdown(c->out_fd, SHUT_WR);
        for (;;) {
                struct pollfd pfd = { .fd = c->in_fd, .events = POLLIN };
                int ms = remaining_ms(deadline);

                ssize_t k;

                if (ms == 0 || poll(&pfd, 1, ms) <= 0)
                        return;
                k = read(c->in_fd, buf, sizeof(buf));
                if (k == 0 || (k < 0 && errno != EINTR && errno != EAGAIN))
                        return;
        }
}

/* ---- argument helpers ------------------------------------------------------- */

static int arg_string(Request *rq, const char *key, bool required, const char **ret) {
        const Json *v = json_get(rq->args, key);

        *ret = NULL;
        if (!v || v->type == JSON_NULL) {
                if (required)
                        return request_fail(rq, EINVAL, "'%s' is required", key);
                return 0;
        }
        if (v->type != JSON_STRING)
                return request_fail(rq, EINVAL, "'%s' must be a string", key);
        if (!json_is_cstring(v))
                return request_fail(rq, EINVAL, "'%s' must not contain NUL characters", key);
        *ret = v->s;
        return 0;
}

static int arg_int(Request *rq, const char *key, int64_t dflt, int64_t min, int64_t max, int64_t *ret) {
        const Json *v = json_get(rq->args, key);

        *ret = dflt;
        if (!v || v->type == JSON_NULL)
                return 0;
        if (v->type != JSON_INT)
                return request_fail(rq, EINVAL, "'%s' must be an integer", key);
        if (v->i < min || v->i > max)
                return request_fail(rq, EINVAL, "'%s' must be between %lld and %lld", key, (long long) min,
                                    (long long) max);
        *ret = v->i;
        return 0;
}

static int arg_absolute_path(Request *rq, const char *key, const char **ret) {
        int r = arg_string(rq, key, true, ret);

        if (r < 0)
                return r;
        if ((*ret)[0] != '/')
                return request_fail(rq, EINVAL, "'%s' must be an absolute path", key);
        if (strlen(*ret) >= PATH_MAX)
                return request_fail(rq, ENAMETOOLONG, "'%s' is too long", key);
        return 0;
}

/* A base64 argument, decoded into the request's arena. */
static int arg_base64(Request *rq, const char *key, size_t max, unsigned char **ret, size_t *ret_len) {
        const Json *v = json_get(rq->args, key);
        unsigned char *out;
        ssize_t n;

        *ret = NULL;
        *ret_len = 0;
        if (!v || v->type == JSON_NULL)
                return 0;
        if (v->type != JSON_STRING)
                return request_fail(rq, EINVAL, "'%s' must be a base64 string", key);
        if (base64_decoded_len(v->len) > max + 2)
                return request_fail(rq, EINVAL, "'%s' is larger than %zu bytes", key, max);
        out = arena_alloc(rq->arena, base64_decoded_len(v->len) + 1);
        if (!out)
                return request_fail(rq, ENOMEM, "out of memory");
        n = base64_decode(v->s, v->len, out);
        if (n < 0)
                return request_fail(rq, EINVAL, "'%s' is not valid base64 (RFC 4648, with padding)", key);
        if ((size_t) n > max)
                return request_fail(rq, EINVAL, "'%s' is larger than %zu bytes", key, max);
        *ret = out;
        *ret_len = (size_t) n;
        return 0;
}

/* An array of strings as a NULL-terminated vector in the arena. */
static int arg_string_array(Request *rq, const char *key, bool required, size_t max, char ***ret, size_t *ret_n) {
        const Json *v = json_get(rq->args, key);
        char **vec;
        size_t i = 0;

        *ret = NULL;
        *ret_n = 0;
        if (!v || v->type == JSON_NULL) {
                if (required)
                        return request_fail(rq, EINVAL, "'%s' is required", key);
                return 0;
        }
        if (v->type != JSON_ARRAY)
                return request_fail(rq, EINVAL, "'%s' must be an array of strings", key);
        if (v->n > max)
                return request_fail(rq, EINVAL, "'%s' has more than %zu entries", key, max);
        vec = arena_alloc(rq->arena, (v->n + 1) * sizeof(char *));
        if (!vec)
                return request_fail(rq, ENOMEM, "out of memory");
        for (const Json *e = v->first; e; e = e->next) {
                if (e->type != JSON_STRING)
                        return request_fail(rq, EINVAL, "'%s' must be an array of strings", key);
                if (!json_is_cstring(e))
                        return request_fail(rq, EINVAL, "'%s' entries must not contain NUL characters", key);
                vec[i++] = (char *) e->s;
        }
        vec[i] = NULL;
        *ret = vec;
        *ret_n = i;
        return 0;
}

/* ---- ops: ping, info ---------------------------------------------------------- */

static void put_key(Buf *b, const char *key) {
        buf_putc(b, ',');
        json_put_cstring(b, key);
        buf_putc(b, ':');
}

static int op_ping(Request *rq, Buf *out) {
        put_key(out, "pong");
        buf_puts(out, "true");
        return 0;
}

static void put_memory(Buf *b) {
        static const char *const fields[] = { "MemTotal:", "MemAvailable:", "MemFree:" };
        static const char *const keys[] = { "total_kib", "available_kib", "free_kib" };
        unsigned long long v[3] = {};
        bool have[3] = {};
        char buf[8192];

        if (read_small_file("/proc/meminfo", buf, sizeof(buf)) > 0)
                for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
                        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                                if (strncmp(line, fields[i], strlen(fields[i])) == 0) {
                                        v[i] = strtoull(line + strlen(fields[i]), NULL, 10);
                                        have[i] = true;
                                }
        buf_putc(b, '{');
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                if (i > 0)
                        buf_putc(b, ',');
                json_put_cstring(b, keys[i]);
                if (have[i])
                        buf_printf(b, ":%llu", v[i]);
                else
                        buf_puts(b, ":null");
        }
        buf_putc(b, '}');
}

static int op_info(Request *rq, Buf *out) {
        struct utsname u;
        struct sysinfo si;
        char buf[256];

        if (uname(&u) < 0)
                memset(&u, 0, sizeof(u));
        put_key(out, "agent_version");
        json_put_cstring(out, ZVM_AGENT_VERSION);
        put_key(out, "hostname");
        json_put_cstring(out, u.nodename);
        put_key(out, "kernel");
        json_put_cstring(out, u.release);
        put_key(out, "uptime");
        json_put_double(out, uptime_seconds(), 3);
        put_key(out, "initrd_timing");
        put_initrd_timing(out);
        put_key(out, "ssh_host_keys");
        put_ssh_host_keys(out);
        put_key(out, "memory");
        put_memory(out);
        put_key(out, "load");
        if (read_small_file("/proc/loadavg", buf, sizeof(buf)) > 0) {
                double l[3];

                if (sscanf(buf, "%lf %lf %lf", &l[0], &l[1], &l[2]) == 3) {
                        buf_putc(out, '[');
                        for (int i = 0; i < 3; i++) {
                                if (i)
                                        buf_putc(out, ',');
                                json_put_double(out, l[i], 2);
                        }
                        buf_putc(out, ']');
                        return 0;
                }
        }
        if (sysinfo(&si) == 0)
                buf_printf(out, "[%.2f,%.2f,%.2f]", si.loads[0] / 65536.0, si.loads[1] / 65536.0,
                           si.loads[2] / 65536.0);
        else
                buf_puts(out, "null");
        return 0;
}

/* ---- op: exec ------------------------------------------------------------------ */

typedef struct Stream {
        int fd;
        unsigned char *data;
        size_t len, cap, max;
        bool truncated;
} Stream;

/* Reads what is there; keeps up to max bytes and drops the rest, so the
 * command never blocks on a full pipe. Returns false at EOF or error. */
static bool stream_drain(Stream *s) {
        unsigned char buf[65536];

        for (;;) {
                ssize_t k = read(s->fd, buf, sizeof(buf));
                size_t keep;

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN)
                        return true;
                if (k <= 0)
                        return false;
                keep = MIN((size_t) k, s->max - s->len);
                if (keep < (size_t) k)
                        s->truncated = true;
                if (keep > 0) {
                        if (s->cap - s->len < keep) {
                                size_t want = s->cap ? s->cap : 65536;
                                unsigned char *p;

                                while (want - s->len < keep)
                                        want *= 2;
                                want = MIN(want, s->max);
                                p = realloc(s->data, want);
                                if (!p) {
                                        /* Out of memory: keep what we have and flag it. */
                                        s->max = s->len;
                                        s->truncated = true;
                                        continue;
                                }
                                s->data = p;
                                s->cap = want;
                        }
                        memcpy(s->data + s->len, buf, keep);
                        s->len += keep;
                }
        }
}

/* Builds the command's environment: the minimal PATH, then env entries; a
 * later entry replaces an earlier one with the same name. */
static char **exec_environment(Request *rq, char **env, size_t n_env) {
        char **envp = arena_alloc(rq->arena, (n_env + 2) * sizeof(char *));
        size_t n = 0;

        if (!envp)
                return NULL;
        envp[n++] = (char *) BASE_PATH;
        for (size_t i = 0; i < n_env; i++) {
                size_t klen = (size_t) (strchr(env[i], '=') - env[i]) + 1;
                size_t j;

                for (j = 0; j < n; j++)
                        if (strncmp(envp[j], env[i], klen) == 0)
                                break;
                envp[j] = env[i];
                if (j == n)
                        n++;
        }
        envp[n] = NULL;
        return envp;
}

static void close_other_fds(void) {
        DIR *d;
        struct dirent *de;

        if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC_FLAG) == 0)
                return;
        /* Before Linux 5.11: mark each open fd close-on-exec. */
        d = opendir("/proc/self/fd");
        if (!d)
                return;
        while ((de = readdir(d))) {
                int fd = atoi(de->d_name);

                if (fd > 2 && fd != dirfd(d))
                        (void) fcntl(fd, F_SETFD, FD_CLOEXEC);
        }
        closedir(d);
}

typedef struct ExecFailure {
        int stage;              /* 1: chdir, 2: exec */
        int err;
} ExecFailure;

static __attribute__((noreturn)) void exec_child(char **argv, char **envp, const char *cwd, int fd_in, int fd_out,
                                                  int fd_err, int fd_status) {
        ExecFailure f = {};
        sigset_t none;

        /* Our own session and process group: the timeout kills the group,
         * and nothing the command does reaches the agent's terminal. */
        (void) setsid();
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        (void) signal(SIGPIPE, SIG_DFL);
        if (dup2(fd_in, STDIN_FILENO) < 0 || dup2(fd_out, STDOUT_FILENO) < 0 || dup2(fd_err, STDERR_FILENO) < 0) {
                f = (ExecFailure) { 2, errno };
                goto fail;
        }
        close_other_fds();
        if (chdir(cwd) < 0) {
                f = (ExecFailure) { 1, errno };
                goto fail;
        }
        environ = envp;
        execvp(argv[0], argv);
        f = (ExecFailure) { 2, errno };
fail:
        (void) !write(fd_status, &f, sizeof(f));
        _exit(127);
}

/* Reaps pid if it has exited. */
static bool exec_reap(pid_t pid, int *status, uint64_t *end) {
        pid_t w;

        do
                w = waitpid(pid, status, WNOHANG);
        while (w < 0 && errno == EINTR);
        if (w == pid) {
                *end = now_ms();
                return true;
        }
        return false;
}

/* SIGKILL for the command's process group. The group outlives its leader
 * while members remain, and the kernel does not hand out an id still in use
 * as a group id, so -pid is safe; pid alone only while not yet reaped (the
 * command may have left its group with setsid()). */
static void exec_kill(pid_t pid, bool reaped) {
        (void) kill(-pid, SIGKILL);
        if (!reaped)
                (void) kill(pid, SIGKILL);
}

static int op_exec(Request *rq, Buf *out) {
        Conn *c = rq->conn;
        char **argv, **env, **envp;
        size_t n_argv, n_env, stdin_len, stdin_off = 0;
        unsigned char *stdin_data;
        const char *cwd;
        int64_t timeout_ms, max_output;
        int p_in[2] = { -1, -1 }, p_out[2] = { -1, -1 }, p_err[2] = { -1, -1 }, p_status[2] = { -1, -1 };
        Stream so = { .fd = -1 }, se = { .fd = -1 };
        ExecFailure failure = {};
        size_t failure_got = 0;
        bool reaped = false, killed = false, timed_out = false, hangup = false;
        uint64_t start, end = 0, deadline, kill_deadline = 0;
        char signame[16];
        int status = 0, r;
        pid_t pid;

        if ((r = arg_string_array(rq, "argv", true, EXEC_MAX_ARGV, &argv, &n_argv)) < 0 ||
            (r = arg_string_array(rq, "env", false, EXEC_MAX_ENV, &env, &n_env)) < 0 ||
            (r = arg_string(rq, "cwd", false, &cwd)) < 0 ||
            (r = arg_base64(rq, "stdin", EXEC_MAX_STDIN, &stdin_data, &stdin_len)) < 0 ||
            (r = arg_int(rq, "timeout_ms", EXEC_DEFAULT_TIMEOUT_MS, 1, EXEC_MAX_TIMEOUT_MS, &timeout_ms)) < 0 ||
            (r = arg_int(rq, "max_output", (int64_t) EXEC_DEFAULT_MAX_OUTPUT, 0, (int64_t) EXEC_MAX_OUTPUT,
                         &max_output)) < 0)
                return r;
        if (n_argv == 0 || argv[0][0] == 0)
                return request_fail(rq, EINVAL, "'argv' must name a command");
        for (size_t i = 0; i < n_env; i++)
                if (!strchr(env[i], '=') || env[i][0] == '=')
                        return request_fail(rq, EINVAL, "'env' entries must be \"NAME=value\"");
        if (!cwd)
                cwd = "/";
        envp = exec_environment(rq, env, n_env);
        if (!envp)
                return request_fail(rq, ENOMEM, "out of memory");

        if (pipe2(p_in, O_CLOEXEC) < 0 || pipe2(p_out, O_CLOEXEC) < 0 || pipe2(p_err, O_CLOEXEC) < 0 ||
            pipe2(p_status, O_CLOEXEC) < 0) {
                r = request_fail(rq, errno, "cannot create pipes: %s", strerror(errno));
                goto finish;
        }
        start = now_ms();
        pid = fork();
        if (pid < 0) {
                r = request_fail(rq, errno, "cannot fork: %s", strerror(errno));
                goto finish;
        }
        if (pid == 0)
                exec_child(argv, envp, cwd, p_in[0], p_out[1], p_err[1], p_status[1]);

        close_safe(&p_in[0]);
        close_safe(&p_out[1]);
        close_safe(&p_err[1]);
        close_safe(&p_status[1]);
        so = (Stream) { .fd = p_out[0], .max = (size_t) max_output };
        se = (Stream) { .fd = p_err[0], .max = (size_t) max_output };
        p_out[0] = p_err[0] = -1;
        (void) fd_nonblock(p_in[1]);
        (void) fd_nonblock(so.fd);
        (void) fd_nonblock(se.fd);
        if (stdin_len == 0)
                close_safe(&p_in[1]);
        deadline = start + (uint64_t) timeout_ms;

        /* Until the command has exited and both pipes are at EOF (output
         * from a background child that keeps them open counts as the
         * command's), or the timeout: then SIGKILL the whole group and
         * give it EXEC_KILL_GRACE_MS to go. */
        for (;;) {
                struct pollfd pfd[6];
                int n = 0, i_sig, i_in = -1, i_out = -1, i_err = -1, i_status = -1, i_conn, ms;

                if (!reaped)
                        reaped = exec_reap(pid, &status, &end);
                if (reaped && so.fd < 0 && se.fd < 0)
                        break;
                ms = remaining_ms(killed ? kill_deadline : deadline);
                if (ms == 0) {
                        if (killed)
                                break;          /* something outside the group holds the pipes */
                        exec_kill(pid, reaped);
                        killed = timed_out = true;
                        kill_deadline = now_ms() + EXEC_KILL_GRACE_MS;
                        continue;
                }
                i_sig = n;
                pfd[n++] = (struct pollfd) { .fd = c->sigfd, .events = POLLIN };
                if (p_in[1] >= 0) {
                        i_in = n;
                        pfd[n++] = (struct pollfd) { .fd = p_in[1], .events = POLLOUT };
                }
                if (so.fd >= 0) {
                        i_out = n;
                        pfd[n++] = (struct pollfd) { .fd = so.fd, .events = POLLIN };
                }
                if (se.fd >= 0) {
                        i_err = n;
                        pfd[n++] = (struct pollfd) { .fd = se.fd, .events = POLLIN };
                }
                if (p_status[0] >= 0) {
                        i_status = n;
                        pfd[n++] = (struct pollfd) { .fd = p_status[0], .events = POLLIN };
                }
                /* The host hanging up (it gave up on us) ends the command. */
                i_conn = n;
                pfd[n++] = (struct pollfd) { .fd = c->in_fd, .events = 0 };

                if (poll(pfd, (nfds_t) n, ms) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (pfd[i_sig].revents) {
                        struct signalfd_siginfo si;

                        while (read(c->sigfd, &si, sizeof(si)) > 0)
                                ;
                }
                if (i_in >= 0 && pfd[i_in].revents) {
                        ssize_t k = write(p_in[1], stdin_data + stdin_off, MIN(stdin_len - stdin_off, (size_t) 65536));

                        if (k > 0)
                                stdin_off += (size_t) k;
                        if ((k < 0 && errno != EAGAIN && errno != EINTR) || stdin_off == stdin_len)
                                close_safe(&p_in[1]);   /* done, or the command closed its stdin */
                }
                if (i_out >= 0 && pfd[i_out].revents && !stream_drain(&so))
                        close_safe(&so.fd);
                if (i_err >= 0 && pfd[i_err].revents && !stream_drain(&se))
                        close_safe(&se.fd);
                if (i_status >= 0 && pfd[i_status].revents) {
                        ssize_t k = read(p_status[0], (char *) &failure + failure_got, sizeof(failure) - failure_got);

                        if (k > 0)
                                failure_got += (size_t) k;
                        else if (k == 0 || (errno != EINTR && errno != EAGAIN))
                                close_safe(&p_status[0]);
                }
                if ((pfd[i_conn].revents & (POLLHUP | POLLERR)) && !killed) {
                        exec_kill(pid, reaped);
                        killed = hangup = true;
                        kill_deadline = now_ms() + EXEC_KILL_GRACE_MS;
                }
        }
        if (!reaped)
                end = now_ms();
        /* A failed exec() reported itself before the command could run. */
        if (p_status[0] >= 0 && failure_got < sizeof(failure)) {
                ssize_t k = read(p_status[0], (char *) &failure + failure_got, sizeof(failure) - failure_got);

                if (k > 0)
                        failure_got += (size_t) k;
        }
        if (hangup)
                say("exec %s: the host hung up, killed the command", argv[0]);
        if (failure_got == sizeof(failure) && failure.err > 0) {
                if (failure.stage == 1)
                        r = request_fail(rq, failure.err, "cannot change to directory '%s': %s", cwd,
                                         strerror(failure.err));
                else
                        r = request_fail(rq, failure.err, "cannot execute '%s': %s", argv[0], strerror(failure.err));
                goto finish;
        }

        put_key(out, "exit_code");
        if (reaped && WIFEXITED(status))
                buf_printf(out, "%d", WEXITSTATUS(status));
        else
                buf_puts(out, "null");
        put_key(out, "signal");
        if (reaped && WIFSIGNALED(status))
                json_put_cstring(out, signal_name(WTERMSIG(status), signame, sizeof(signame)));
        else
                buf_puts(out, "null");
        put_key(out, "timed_out");
        buf_puts(out, timed_out ? "true" : "false");
        put_key(out, "stdout");
        base64_put(out, so.data, so.len);
        put_key(out, "stderr");
        base64_put(out, se.data, se.len);
        put_key(out, "stdout_truncated");
        buf_puts(out, so.truncated ? "true" : "false");
        put_key(out, "stderr_truncated");
        buf_puts(out, se.truncated ? "true" : "false");
        put_key(out, "duration_ms");
        buf_printf(out, "%llu", (unsigned long long) (end - start));
        r = 0;
finish:
        close_safe(&p_in[0]);
        close_safe(&p_in[1]);
        close_safe(&p_out[0]);
        close_safe(&p_out[1]);
        close_safe(&p_err[0]);
        close_safe(&p_err[1]);
        close_safe(&p_status[0]);
        close_safe(&p_status[1]);
        close_safe(&so.fd);
        close_safe(&se.fd);
        free(so.data);
        free(se.data);
        return r;
}

/* ---- files --------------------------------------------------------------------- */

static int op_file_read(Request *rq, Buf *out) {
        const char *path;
        int64_t max_bytes;
        unsigned char *data = NULL;
        size_t len = 0, cap, total;
        struct stat st;
        bool truncated;
        int fd, r;

        if ((r = arg_absolute_path(rq, "path", &path)) < 0 ||
            (r = arg_int(rq, "max_bytes", (int64_t) FILE_MAX, 0, (int64_t) FILE_MAX, &max_bytes)) < 0)
                return r;
        /* O_NONBLOCK: opening a FIFO must not wait for a writer, and
         * /proc/kmsg-like files must not wait for data. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return request_fail(rq, errno, "cannot open '%s': %s", path, strerror(errno));
        if (fstat(fd, &st) < 0) {
                r = request_fail(rq, errno, "cannot stat '%s': %s", path, strerror(errno));
                goto finish;
        }
        if (S_ISDIR(st.st_mode)) {
                r = request_fail(rq, EISDIR, "'%s' is a directory", path);
                goto finish;
        }
        if (!S_ISREG(st.st_mode)) {
                r = request_fail(rq, EINVAL, "'%s' is not a regular file", path);
                goto finish;
        }
        /* One byte more than wanted tells us whether there is more. */
        cap = (size_t) max_bytes + 1;
        if (st.st_size >= 0 && (uint64_t) st.st_size < cap && st.st_size > 0)
                cap = (size_t) st.st_size + 1;
        data = malloc(cap);
        if (!data) {
                r = request_fail(rq, ENOMEM, "out of memory");
                goto finish;
        }
        for (;;) {
                ssize_t k;

                if (len == cap) {
                        size_t want = MIN(cap * 2, (size_t) max_bytes + 1);
                        unsigned char *p;

                        if (want <= cap)
                                break;
                        p = realloc(data, want);
                        if (!p) {
                                r = request_fail(rq, ENOMEM, "out of memory");
                                goto finish;
                        }
                        data = p;
                        cap = want;
                }
                k = read(fd, data + len, cap - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN)
                        break;
                if (k < 0) {
                        r = request_fail(rq, errno, "cannot read '%s': %s", path, strerror(errno));
                        goto finish;
                }
                if (k == 0)
                        break;
                len += (size_t) k;
        }
        truncated = len > (size_t) max_bytes;
        total = len;
        if (truncated) {
                len = (size_t) max_bytes;
                /* Files whose size stat() does not know (procfs): count the
                 * rest, bounded. */
                if (st.st_size <= 0) {
                        unsigned char tmp[65536];

                        while (total < ((size_t) 256 << 20)) {
                                ssize_t k = read(fd, tmp, sizeof(tmp));

                                if (k < 0 && errno == EINTR)
                                        continue;
                                if (k <= 0)
                                        break;
                                total += (size_t) k;
                        }
                }
        }
        if (st.st_size > 0 && (uint64_t) st.st_size > total)
                total = (size_t) st.st_size;
        put_key(out, "data");
        base64_put(out, data, len);
        put_key(out, "size");
        buf_printf(out, "%llu", (unsigned long long) total);
        put_key(out, "mode");
        buf_printf(out, "%u", (unsigned) (st.st_mode & 07777));
        put_key(out, "truncated");
        buf_puts(out, truncated ? "true" : "false");
        r = 0;
finish:
        free(data);
        close(fd);
        return r;
}

/* Replaces dirfd/name with data: a temporary file in the same directory,
 * written, chowned and chmodded, fsynced, renamed over name, and the
 * directory fsynced, so that after a crash name holds the old or the new
 * content, never a part. uid/gid (uid_t) -1: leave as created (root). */
static int write_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode, uid_t uid,
                           gid_t gid) {
        static unsigned counter;
        char tmp[64];
        int fd = -1, r;

        for (int attempt = 0;; attempt++) {
                snprintf(tmp, sizeof(tmp), ".zvm-agent.%ld.%u.%llx", (long) getpid(), counter++,
                         (unsigned long long) now_ms());
                fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
                if (fd >= 0)
                        break;
                if (errno != EEXIST || attempt >= 16)
                        return -errno;
        }
        r = write_all_timeout(fd, data, len, -1);
        /* chown before chmod: chown clears set-id bits. */
        if (r >= 0 && uid != (uid_t) -1 && fchown(fd, uid, gid) < 0)
                r = -errno;
        if (r >= 0 && fchmod(fd, mode) < 0)
                r = -errno;
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        if (r >= 0 && renameat(dirfd, tmp, dirfd, name) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlinkat(dirfd, tmp, 0);
                return r;
        }
        (void) fsync(dirfd);
        return 0;
}

static int op_file_write(Request *rq, Buf *out) {
        const char *path, *slash, *name;
        unsigned char *data;
        size_t len;
        int64_t mode;
        char dir[PATH_MAX];
        int dfd, r;

        if ((r = arg_absolute_path(rq, "path", &path)) < 0 ||
            (r = arg_base64(rq, "data", FILE_MAX, &data, &len)) < 0 ||
            (r = arg_int(rq, "mode", 0644, 0, 07777, &mode)) < 0)
                return r;
        if (!json_get(rq->args, "data"))
                return request_fail(rq, EINVAL, "'data' is required");
        slash = strrchr(path, '/');
        name = slash + 1;
        if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                return request_fail(rq, EINVAL, "'path' must name a file");
        if (slash == path)
                strcpy(dir, "/");
        else {
                memcpy(dir, path, (size_t) (slash - path));
                dir[slash - path] = 0;
        }
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return request_fail(rq, errno, "cannot open directory '%s': %s", dir, strerror(errno));
        r = write_atomic_at(dfd, name, data ? (const void *) data : "", len, (mode_t) mode, (uid_t) -1, (gid_t) -1);
        close(dfd);
        if (r < 0)
                return request_fail(rq, -r, "cannot write '%s': %s", path, strerror(-r));
        put_key(out, "size");
        buf_printf(out, "%zu", len);
        return 0;
}

/* ---- ssh keys ---------------------------------------------------------------------- */

static int op_set_authorized_keys(Request *rq, Buf *out) {
        const char *user;
        char **keys, path[PATH_MAX];
        size_t n_keys;
        struct passwd *pw;
        Buf content = {};
        int home = -1, ssh = -1, r;
        bool created;

        if ((r = arg_string(rq, "user", false, &user)) < 0 ||
            (r = arg_string_array(rq, "keys", true, KEYS_MAX, &keys, &n_keys)) < 0)
                return r;
        if (!user)
                user = "root";
        for (size_t i = 0; i < n_keys; i++) {
                size_t len = strlen(keys[i]);

                if (len == 0 || len > KEY_LINE_MAX)
                        return request_fail(rq, EINVAL, "'keys' entries must be 1 to %d bytes", KEY_LINE_MAX);
                for (size_t k = 0; k < len; k++)
                        if ((unsigned char) keys[i][k] < 0x20 && keys[i][k] != '\t')
                                return request_fail(rq, EINVAL, "'keys' entries must be single lines");
                buf_put(&content, keys[i], len);
                buf_putc(&content, '\n');
        }
        errno = 0;
        pw = getpwnam(user);
        if (!pw) {
                r = request_fail(rq, errno && errno != ENOENT ? errno : ENOENT, "no user '%s'", user);
                goto finish;
        }
        if (content.failed) {
                r = request_fail(rq, ENOMEM, "out of memory");
                goto finish;
        }
        if (snprintf(path, sizeof(path), "%s%s.ssh/authorized_keys", pw->pw_dir,
                     pw->pw_dir[0] && pw->pw_dir[strlen(pw->pw_dir) - 1] == '/' ? "" : "/") >= (int) sizeof(path)) {
                r = request_fail(rq, ENAMETOOLONG, "home directory of '%s' is too long", user);
                goto finish;
        }
        home = open(pw->pw_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (home < 0) {
                r = request_fail(rq, errno, "cannot open the home directory '%s': %s", pw->pw_dir, strerror(errno));
                goto finish;
        }
        created = mkdirat(home, ".ssh", 0700) == 0;
        if (!created && errno != EEXIST) {
                r = request_fail(rq, errno, "cannot create %s/.ssh: %s", pw->pw_dir, strerror(errno));
                goto finish;
        }
        /* O_NOFOLLOW: a user's ~/.ssh symlink must not make us write
         * elsewhere as root. */
        ssh = openat(home, ".ssh", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (ssh < 0) {
                r = request_fail(rq, errno, "cannot open %s/.ssh: %s", pw->pw_dir, strerror(errno));
                goto finish;
        }
        if (created && (fchown(ssh, pw->pw_uid, pw->pw_gid) < 0 || fchmod(ssh, 0700) < 0)) {
                r = request_fail(rq, errno, "cannot give %s/.ssh to '%s': %s", pw->pw_dir, user, strerror(errno));
                goto finish;
        }
        r = write_atomic_at(ssh, "authorized_keys", content.data ? content.data : "", content.len, 0600,
                            pw->pw_uid, pw->pw_gid);
        if (r < 0) {
                r = request_fail(rq, -r, "cannot write %s: %s", path, strerror(-r));
                goto finish;
        }
        put_key(out, "path");
        json_put_cstring(out, path);
        r = 0;
finish:
        if (home >= 0)
                close(home);
        if (ssh >= 0)
                close(ssh);
        buf_free(&content);
        return r;
}

/* ---- shutdown / reboot --------------------------------------------------------- */

static int op_shutdown(Request *rq, Buf *out) {
        rq->conn->after = AFTER_POWEROFF;
        return 0;
}

static int op_reboot(Request *rq, Buf *out) {
        rq->conn->after = AFTER_REBOOT;
        return 0;
}

/* After the answer went out: ask init (busybox init, systemd: both provide
 * poweroff/reboot commands), and if it has not acted within POWER_GRACE_S —
 * during a real shutdown init kills us long before — do it ourselves. */
static __attribute__((noreturn)) void power_action(After what) {
        const char *cmd = what == AFTER_REBOOT ? "reboot" : "poweroff";
        pid_t pid;

        if (stdio_mode) {
                say("%s requested (not done in --stdio mode)", cmd);
                _exit(EXIT_SUCCESS);
        }
        say("%s requested by the host", cmd);
        pid = fork();
        if (pid == 0) {
                static char *const envp[] = { (char *) BASE_PATH, NULL };
                char *argv[] = { (char *) cmd, NULL };
                sigset_t none;

                (void) setsid();
                sigemptyset(&none);
                (void) sigprocmask(SIG_SETMASK, &none, NULL);
                (void) signal(SIGPIPE, SIG_DFL);
                environ = (char **) envp;
                execvp(cmd, argv);
                say("cannot execute %s: %s", cmd, strerror(errno));
                _exit(127);
        }
        if (pid < 0)
                say("cannot fork for %s: %s", cmd, strerror(errno));
        sleep_ms(POWER_GRACE_S * 1000);
        say("init did not %s within %d s, calling reboot(2)", what == AFTER_REBOOT ? "reboot" : "power off",
            POWER_GRACE_S);
        sync();
        (void) reboot(what == AFTER_REBOOT ? RB_AUTOBOOT : RB_POWER_OFF);
        say("reboot(2) failed: %s", strerror(errno));
        _exit(EXIT_FAILURE);
}

/* ---- request dispatch ------------------------------------------------------------ */

typedef int (*OpHandler)(Request *rq, Buf *out);

static const struct {
        const char *name;
        OpHandler handler;
} op_table[] = {
        { "ping", op_ping },
        { "info", op_info },
        { "exec", op_exec },
        { "file-read", op_file_read },
        { "file-write", op_file_write },
        { "shutdown", op_shutdown },
        { "reboot", op_reboot },
        { "set-authorized-keys", op_set_authorized_keys },
};

/* Answers one request line. Returns < 0 if the connection must close. */
static int conn_handle(Conn *c, const char *line, size_t len) {
        Arena arena = {};
        char error[512] = "";
        Request rq = { .conn = c, .arena = &arena, .error = error, .error_size = sizeof(error) };
        const Json *root, *id = NULL, *op;
        OpHandler handler = NULL;
        Buf out = {};
        int r;

        root = json_parse(&arena, line, len, error, sizeof(error));
        if (!root) {
                r = conn_send_error(c, NULL, EINVAL, error);
                goto finish;
        }
        if (root->type != JSON_OBJECT) {
                r = conn_send_error(c, NULL, EINVAL, "a request must be a JSON object");
                goto finish;
        }
        rq.args = root;
        id = json_get(root, "id");
        op = json_get(root, "op");
        if (!op) {
                r = conn_send_error(c, id, EINVAL, "'op' is required");
                goto finish;
        }
        if (!json_is_cstring(op)) {
                r = conn_send_error(c, id, EINVAL, "'op' must be a string");
                goto finish;
        }
        if (strcmp(op->s, "auth") == 0) {
                /* Again, after the first line: harmless if right. */
                const Json *s = json_get(root, "secret");

                if (!s || s->type != JSON_STRING || !secret_matches(s->s, s->len)) {
                        (void) conn_send_error(c, id, EACCES, "wrong secret");
                        r = -EACCES;
                        goto finish;
                }
                buf_puts(&out, "{\"id\":");
                json_put_value(&out, id);
                buf_puts(&out, ",\"ok\":true}\n");
                r = conn_send(c, &out);
                goto finish;
        }
        for (size_t i = 0; i < ELEMENTSOF(op_table); i++)
                if (strcmp(op->s, op_table[i].name) == 0)
                        handler = op_table[i].handler;
        if (!handler) {
                char msg[128];

                snprintf(msg, sizeof(msg), "unknown op '%.64s'", op->s);
                r = conn_send_error(c, id, ENOSYS, msg);
                goto finish;
        }

        buf_puts(&out, "{\"id\":");
        json_put_value(&out, id);
        buf_puts(&out, ",\"ok\":true");
        r = handler(&rq, &out);
        if (r < 0) {
                c->after = AFTER_NOTHING;
                r = conn_send_error(c, id, -r, error[0] ? error : strerror(-r));
                goto finish;
        }
        buf_puts(&out, "}\n");
        if (out.failed) {
                c->after = AFTER_NOTHING;
                r = conn_send_error(c, id, ENOMEM, "the answer does not fit in memory");
                goto finish;
        }
        r = conn_send(c, &out);
finish:
        buf_free(&out);
        arena_free(&arena);
        return r;
}

/* The first line: {"op":"auth","secret":"<64 hex>"} and nothing else. */
static bool conn_authenticate(Conn *c) {
        static const char ok[] = "{\"ok\":true}\n";
        char *line = NULL, error[256];
        const char *why = NULL;
        Arena arena = {};
        const Json *root, *op, *s;
        size_t len = 0;
        int r;

        r = conn_read_line(c, AUTH_TIMEOUT_MS, &line, &len);
        if (r == 0 || r == -ECONNRESET)
                return false;
        if (r == -ETIMEDOUT)
                why = "no authentication within 30 s";
        else if (r == -E2BIG)
                why = "the first line must be {\"op\":\"auth\",\"secret\":...}";
        else if (r < 0) {
                say("connection: %s", strerror(-r));
                return false;
        } else if (!secret_loaded())
                why = secret_problem;
        else {
                root = json_parse(&arena, line, len, error, sizeof(error));
                op = json_get(root, "op");
                s = json_get(root, "secret");
                if (!root || !op || op->type != JSON_STRING || strcmp(op->s, "auth") != 0)
                        why = "authentication required: the first line must be {\"op\":\"auth\",\"secret\":...}";
                else if (!s || s->type != JSON_STRING || !secret_matches(s->s, s->len))
                        why = "wrong secret";
                arena_free(&arena);
        }
        if (why) {
                Buf b = {};

                say("refused a connection: %s", why);
                buf_puts(&b, "{\"ok\":false,\"error\":{\"code\":\"EACCES\",\"message\":");
                json_put_cstring(&b, secret_loaded() ? why : "the agent has no secret, it refuses every connection");
                buf_puts(&b, "}}\n");
                (void) conn_send(c, &b);
                buf_free(&b);
                conn_linger(c);
                return false;
        }
        return write_all_timeout(c->out_fd, ok, sizeof(ok) - 1, WRITE_TIMEOUT_MS) >= 0;
}

static void conn_serve(Conn *c) {
        if (!conn_authenticate(c))
                return;
        for (;;) {
                char *line = NULL;
                size_t len = 0;
                int r;

                r = conn_read_line(c, IDLE_TIMEOUT_MS, &line, &len);
                if (r == -E2BIG) {
                        (void) conn_send_error(c, NULL, E2BIG, "request line longer than 8 MiB");
                        conn_linger(c);
                        return;
                }
                if (r <= 0)
                        return;
                if (conn_handle(c, line, len) < 0)
                        return;
                if (c->after != AFTER_NOTHING) {
                        (void) shutdown(c->out_fd, SHUT_RDWR);
                        close(c->in_fd);
                        if (c->out_fd != c->in_fd)
                                close(c->out_fd);
                        power_action(c->after);
                }
        }
}

/* ---- READY -------------------------------------------------------------------- */

static void ready_message(Buf *b) {
        buf_puts(b, "{\"op\":\"ready\",\"secret\":");
        json_put_cstring(b, secret);
        buf_puts(b, ",\"agent_version\":");
        json_put_cstring(b, ZVM_AGENT_VERSION);
        buf_puts(b, ",\"uptime\":");
        json_put_double(b, uptime_seconds(), 3);
        buf_puts(b, ",\"initrd_timing\":");
        put_initrd_timing(b);
        buf_puts(b, ",\"ssh_host_keys\":");
        put_ssh_host_keys(b);
        buf_puts(b, "}\n");
}

/* Runs in a child of the main process: tells the host we are up, with a
 * bounded back-off while it is not listening (yet). */
static __attribute__((noreturn)) void ready_run(unsigned port) {
        uint64_t start = now_ms();
        unsigned delay = READY_FIRST_DELAY_MS, attempt = 0;
        int last_err = 0;

        for (;;) {
                struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_port = port, .svm_cid = VMADDR_CID_HOST };
                int fd, r;

                attempt++;
                fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        r = -errno;
                else if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                        r = -errno;
                else {
                        Buf b = {};

                        ready_message(&b);
                        r = b.failed ? -ENOMEM : 0;
                        if (r >= 0 && fd_nonblock(fd) >= 0)
                                r = write_all_timeout(fd, b.data, b.len, 5000);
                        buf_free(&b);
                        if (r >= 0) {
                                (void) shutdown(fd, SHUT_WR);
                                close(fd);
                                say("told the host we are ready (port %u, attempt %u, %.2f s after kernel start)",
                                    port, attempt, uptime_seconds());
                                _exit(EXIT_SUCCESS);
                        }
                }
                if (fd >= 0)
                        close(fd);
                if (-r != last_err)
                        say("ready: cannot reach host port %u: %s; retrying", port, strerror(-r));
                last_err = -r;
                if (now_ms() + delay > start + READY_TOTAL_MS) {
                        say("ready: giving up after %u attempts in %d s; restart the agent to try again", attempt,
                            READY_TOTAL_MS / 1000);
                        _exit(EXIT_FAILURE);
                }
                sleep_ms(delay);                /* the back-off itself, not a wait for an event */
                delay = MIN(delay * 2, (unsigned) READY_MAX_DELAY_MS);
        }
}

/* ---- main ---------------------------------------------------------------------- */

static int listen_vsock(unsigned port) {
        struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_port = port, .svm_cid = VMADDR_CID_ANY };
        int fd;

        fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
                int e = errno;

                close(fd);
                return -e;
        }
        return fd;
}

static bool parse_port(const char *s, unsigned *ret) {
        char *end;
        unsigned long v;

        if (!s || !isdigit((unsigned char) *s))
                return false;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || v > 0xffffffffUL)
                return false;
        *ret = (unsigned) v;
        return true;
}

static void usage(FILE *f) {
        fprintf(f,
                "usage: zvm-agent [--port N] [--ready-port N] [--secret-file PATH] [--foreground]\n"
                "       zvm-agent --stdio [--secret-file PATH]\n"
                "  --port N          vsock port to serve (default %u)\n"
                "  --ready-port N    host port to say READY on (default %u, 0: do not)\n"
                "  --secret-file P   the per-VM secret (default %s)\n"
                "  --foreground      keep the caller's session and stdin (for a shell)\n"
                "  --stdio           serve one connection on stdin/stdout (tests)\n",
                DEFAULT_PORT, DEFAULT_READY_PORT, DEFAULT_SECRET_FILE);
}

static void ensure_std_fds(void) {
        for (int fd = 0; fd < 3; fd++)
                if (fcntl(fd, F_GETFD) < 0) {
                        int n = open("/dev/null", O_RDWR);

                        if (n >= 0 && n != fd) {
                                dup2(n, fd);
                                close(n);
                        }
                }
}

int main(int argc, char **argv) {
        unsigned port = DEFAULT_PORT, ready_port = DEFAULT_READY_PORT, n_active = 0;
        pid_t active[MAX_CONNECTIONS] = {}, ready_pid = 0;
        bool foreground = false;
        uint64_t listen_start;
        sigset_t mask;
        int sigfd, lfd = -1;

        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

                if (strcmp(a, "--port") == 0 && parse_port(v, &port) && port > 0)
                        i++;
                else if (strcmp(a, "--ready-port") == 0 && parse_port(v, &ready_port))
                        i++;
                else if (strcmp(a, "--secret-file") == 0 && v && *v) {
                        secret_file = v;
                        i++;
                } else if (strcmp(a, "--foreground") == 0)
                        foreground = true;
                else if (strcmp(a, "--stdio") == 0)
                        stdio_mode = true;
                else if (strcmp(a, "--version") == 0) {
                        printf("zvm-agent %s\n", ZVM_AGENT_VERSION);
                        return EXIT_SUCCESS;
                } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
                        usage(stdout);
                        return EXIT_SUCCESS;
                } else {
                        say("bad argument '%s'", a);
                        usage(stderr);
                        return 2;
                }
        }

        ensure_std_fds();
        (void) signal(SIGPIPE, SIG_IGN);
        /* SIGCHLD only through a signalfd: blocked, so no exit is missed
         * between a waitpid() and the next poll(). */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
            (sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
                say("cannot set up signal handling: %s", strerror(errno));
                return EXIT_FAILURE;
        }
        if (!secret_load() && !stdio_mode)
                say("no secret (%s): refusing every connection", secret_problem);

        if (stdio_mode) {
                Conn c = { .in_fd = STDIN_FILENO, .out_fd = STDOUT_FILENO, .sigfd = sigfd };

                (void) fd_nonblock(STDIN_FILENO);
                conn_serve(&c);
                free(c.buf);
                return EXIT_SUCCESS;
        }
        if (!foreground) {
                /* Away from the console's session: a ^C or hangup on the
                 * console shell must not reach us. */
                int n = open("/dev/null", O_RDONLY | O_CLOEXEC);

                (void) setsid();
                if (n >= 0) {
                        dup2(n, STDIN_FILENO);
                        close(n);
                }
        }

        /* A guest without a vsock device never gets one (no hotplug on
         * microvm), so retry slowly and quietly rather than exit and be
         * respawned in a loop by init. */
        listen_start = now_ms();
        for (unsigned delay = 1000, failures = 0;; failures++) {
                lfd = listen_vsock(port);
                if (lfd >= 0)
                        break;
                if (failures == 0 || failures % 64 == 0)
                        say("cannot listen on vsock port %u: %s; retrying", port, strerror(-lfd));
                sleep_ms(delay);
                delay = MIN(delay * 2, 30000U);
        }
        say("listening on vsock port %u (agent %s, %.2f s after kernel start%s)", port, ZVM_AGENT_VERSION,
            uptime_seconds(), now_ms() - listen_start > 1000 ? ", after retries" : "");
        if (ready_port > 0 && secret_loaded()) {
                ready_pid = fork();
                if (ready_pid == 0) {
                        close(lfd);
                        close(sigfd);
                        ready_run(ready_port);
                }
                if (ready_pid < 0) {
                        say("cannot fork to say READY: %s", strerror(errno));
                        ready_pid = 0;
                }
        } else if (ready_port > 0)
                say("not saying READY: no secret");

        for (;;) {
                struct pollfd pfd[2] = {
                        { .fd = sigfd, .events = POLLIN },
                        { .fd = lfd, .events = POLLIN },
                };
                nfds_t n = n_active < MAX_CONNECTIONS ? 2 : 1;  /* full: the rest wait in the backlog */
                pid_t pid;
                int cfd;

                if (poll(pfd, n, -1) < 0) {
                        if (errno != EINTR)
                                say("poll: %s", strerror(errno));
                        continue;
                }
                if (pfd[0].revents) {
                        struct signalfd_siginfo si;
                        int status;

                        while (read(sigfd, &si, sizeof(si)) > 0)
                                ;
                        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
                                if (pid == ready_pid) {
                                        ready_pid = 0;
                                        continue;
                                }
                                for (unsigned i = 0; i < MAX_CONNECTIONS; i++)
                                        if (active[i] == pid) {
                                                active[i] = 0;
                                                n_active--;
                                                if (WIFSIGNALED(status))
                                                        say("connection process %d killed by %s", (int) pid,
                                                            signal_name(WTERMSIG(status), (char[16]) {}, 16));
                                        }
                        }
                }
                if (n < 2 || !(pfd[1].revents & POLLIN))
                        continue;
                cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS) {
                                say("accept: %s", strerror(errno));
                                sleep_ms(100);  /* would spin on a listen fd that stays readable */
                        }
                        continue;
                }
                if (!secret_loaded())
                        (void) secret_load();   /* maybe it was just late */
                pid = fork();
                if (pid == 0) {
                        Conn c = { .in_fd = cfd, .out_fd = cfd, .sigfd = sigfd };

                        close(lfd);
                        (void) fd_nonblock(cfd);
                        conn_serve(&c);
                        _exit(EXIT_SUCCESS);
                }
                if (pid < 0)
                        say("cannot fork for a connection: %s", strerror(errno));
                else
                        for (unsigned i = 0; i < MAX_CONNECTIONS; i++)
                                if (active[i] == 0) {
                                        active[i] = pid;
                                        n_active++;
                                        break;
                                }
                close(cfd);
        }
}
