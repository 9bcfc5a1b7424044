/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdint.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "log.h"
#include "string-util.h"

static int log_max_level = LOG_INFO;
static const char *log_program_name;

/* -1: not checked yet; checked lazily on the first message that is printed,
 * and again by log_setup_from_env(). */
static int log_journal = -1;

static const char *const log_level_table[] = {
        [LOG_EMERG]   = "emerg",
        [LOG_ALERT]   = "alert",
        [LOG_CRIT]    = "crit",
        [LOG_ERR]     = "err",
        [LOG_WARNING] = "warning",
        [LOG_NOTICE]  = "notice",
        [LOG_INFO]    = "info",
        [LOG_DEBUG]   = "debug",
};

int log_get_max_level(void) {
        return log_max_level;
}

void log_set_max_level(int level) {
        log_max_level = MAX(LOG_EMERG, MIN(level, LOG_DEBUG));
}

void log_set_program_name(const char *name) {
        log_program_name = name;
}

const char *log_level_to_string(int level) {
        if (level < 0 || (size_t) level >= ELEMENTSOF(log_level_table))
                return NULL;
        return log_level_table[level];
}

int log_parse_level(const char *s) {
        uint32_t u;

        if (isempty(s))
                return -EINVAL;

        for (size_t i = 0; i < ELEMENTSOF(log_level_table); i++)
                if (streq(s, log_level_table[i]))
                        return (int) i;

        /* Spellings people type that are not syslog's names. */
        if (streq(s, "error"))
                return LOG_ERR;
        if (streq(s, "warn"))
                return LOG_WARNING;

        if (safe_atou32(s, &u) < 0 || u > LOG_DEBUG)
                return -EINVAL;
        return (int) u;
}

/* systemd sets JOURNAL_STREAM=<dev>:<ino> for services whose stdout/stderr
 * are connected to the journal. Comparing with fd 2 avoids using the "<N>"
 * prefix when stderr was redirected somewhere else by a child process. */
static bool journal_stream_matches_stderr(void) {
        const char *e, *colon;
        char dev_str[32];
        uint64_t dev, ino;
        struct stat st;

        e = getenv("JOURNAL_STREAM");
        if (isempty(e))
                return false;

        colon = strchr(e, ':');
        if (!colon || (size_t) (colon - e) >= sizeof(dev_str))
                return false;
        memcpy(dev_str, e, colon - e);
        dev_str[colon - e] = '\0';

        if (safe_atou64(dev_str, &dev) < 0 || safe_atou64(colon + 1, &ino) < 0)
                return false;

        if (fstat(STDERR_FILENO, &st) < 0)
                return false;

        return (uint64_t) st.st_dev == dev && (uint64_t) st.st_ino == ino;
}

bool log_stderr_is_journal(void) {
        if (log_journal < 0)
                log_journal = journal_stream_matches_stderr();
        return log_journal;
}

int log_setup_from_env(void) {
        const char *e;
        int level;

        log_journal = journal_stream_matches_stderr();

        e = getenv("ZVM_LOG_LEVEL");
        if (!e)
                return 0;

        level = log_parse_level(e);
        if (level < 0)
                return level;

        log_set_max_level(level);
        return 0;
}

int log_internalv(int level, int error, const char *file, int line, const char *func,
                  const char *format, va_list ap) {
        char msg[LOG_MESSAGE_MAX], prefix[8];
        int saved_errno = errno, e = ERRNO_VALUE(error);
        struct iovec iov[4];
        size_t n = 0, l;

        level = MAX(LOG_EMERG, MIN(level, LOG_DEBUG));
        if (level > log_max_level)
                goto finish;

        /* Make "%m" print the error we were given, like systemd does. */
        errno = e;
        (void) vsnprintf(msg, sizeof(msg), format, ap);

        /* One message is one line; the caller's trailing newline is ours to add. */
        l = strlen(msg);
        while (l > 0 && msg[l - 1] == '\n')
                msg[--l] = '\0';
        for (size_t i = 0; i < l; i++)
                if ((unsigned char) msg[i] < 0x20)
                        msg[i] = ' ';

        if (log_stderr_is_journal()) {
                (void) snprintf(prefix, sizeof(prefix), "<%i>", level);
                iov[n++] = (struct iovec) { .iov_base = prefix, .iov_len = strlen(prefix) };
        } else {
                const char *name = log_program_name ?: program_invocation_short_name;

                iov[n++] = (struct iovec) { .iov_base = (char *) name, .iov_len = strlen(name) };
                iov[n++] = (struct iovec) { .iov_base = (char *) ": ", .iov_len = 2 };
        }
        iov[n++] = (struct iovec) { .iov_base = msg, .iov_len = l };
        iov[n++] = (struct iovec) { .iov_base = (char *) "\n", .iov_len = 1 };

        /* A single writev() keeps concurrent messages from interleaving; if
         * stderr is gone there is nobody left to tell. (Tested, not cast to
         * void: with _FORTIFY_SOURCE glibc marks writev() warn_unused_result,
         * which a cast does not silence, and -Werror=unused-result is on.) */
        if (writev(STDERR_FILENO, iov, (int) n) < 0) {
        }

finish:
        errno = saved_errno;
        return -e;
}

int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = log_internalv(level, error, file, line, func, format, ap);
        va_end(ap);
        return r;
}
