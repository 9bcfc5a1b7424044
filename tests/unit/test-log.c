/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "fd-util.h"
#include "log.h"
#include "tap.h"

/* Log output is captured by pointing fd 2 at a memfd for the duration of a
 * test; TAP output goes to stdout and is not affected. */
static int capture_fd = -EBADF, saved_stderr = -EBADF;

static void capture_begin(void) {
        capture_fd = memfd_create("log-capture", MFD_CLOEXEC);
        assert_se(capture_fd >= 0);
        saved_stderr = dup(STDERR_FILENO);
        assert_se(saved_stderr >= 0);
        assert_se(dup2(capture_fd, STDERR_FILENO) == STDERR_FILENO);
}

/* Returns what was logged since capture_begin(); the caller frees it. */
static char *capture_end(void) {
        char *buf = NULL;

        assert_se(dup2(saved_stderr, STDERR_FILENO) == STDERR_FILENO);
        saved_stderr = safe_close(saved_stderr);
        assert_se(lseek(capture_fd, 0, SEEK_SET) == 0);
        assert_se(read_full_fd(capture_fd, &buf, NULL, 0) >= 0);
        capture_fd = safe_close(capture_fd);
        return buf;
}

static void test_parse_level(void) {
        static const struct {
                const char *s;
                int level;
        } t[] = {
                { "emerg", LOG_EMERG },  { "alert", LOG_ALERT },  { "crit", LOG_CRIT },
                { "err", LOG_ERR },      { "error", LOG_ERR },    { "warning", LOG_WARNING },
                { "warn", LOG_WARNING }, { "notice", LOG_NOTICE }, { "info", LOG_INFO },
                { "debug", LOG_DEBUG },  { "0", 0 },              { "7", 7 },
                { "8", -EINVAL },        { "-1", -EINVAL },       { "", -EINVAL },
                { "DEBUG", -EINVAL },    { "info ", -EINVAL },    { "verbose", -EINVAL },
        };

        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                is_int(log_parse_level(t[i].s), t[i].level, "log_parse_level(\"%s\")", t[i].s);
        is_int(log_parse_level(NULL), -EINVAL, "log_parse_level(NULL)");
        is_str(log_level_to_string(LOG_WARNING), "warning", "log_level_to_string");
        ok(log_level_to_string(8) == NULL, "log_level_to_string out of range");
}

static void test_output_plain(void) {
        _cleanup_free_ char *out = NULL;
        int r1, r2, r3, r4;

        unsetenv("JOURNAL_STREAM");
        assert_se(log_setup_from_env() == 0);
        log_set_max_level(LOG_INFO);

        capture_begin();
        ok(!log_stderr_is_journal(), "a memfd is not the journal");
        log_info("hello %s", "world");
        r1 = log_error_errno(-ENOENT, "Failed to open %s: %m", "/x");
        r2 = log_warning_errno(EACCES, "positive errno: %m");
        r3 = log_error_errno(SYNTHETIC_ERRNO(EINVAL), "synthetic: %m");
        errno = EBUSY;
        r4 = log_debug_errno(-EIO, "not shown %m");
        is_int(errno, EBUSY, "errno preserved across a suppressed log call");
        log_notice("trailing newline is not doubled\n");
        out = capture_end();

        is_int(r1, -ENOENT, "log_error_errno returns the negative errno");
        is_int(r2, -EACCES, "a positive errno is returned negated");
        is_int(r3, -EINVAL, "SYNTHETIC_ERRNO is stripped from the return value");
        is_int(r4, -EIO, "a suppressed message still returns the errno");
        is_str(out,
               "test-log: hello world\n"
               "test-log: Failed to open /x: No such file or directory\n"
               "test-log: positive errno: Permission denied\n"
               "test-log: synthetic: Invalid argument\n"
               "test-log: trailing newline is not doubled\n",
               "plain stderr format with %%m");
}

static void test_errno_preserved(void) {
        _cleanup_free_ char *out = NULL;

        capture_begin();
        errno = ENOSPC;
        (void) log_error_errno(-EPERM, "x: %m");
        is_int(errno, ENOSPC, "errno preserved across a printed log call");
        out = capture_end();
        is_str(out, "test-log: x: Operation not permitted\n", "%%m uses the given error, not errno");
}

static void test_max_level(void) {
        _cleanup_free_ char *out = NULL;

        capture_begin();
        log_set_max_level(LOG_WARNING);
        log_info("hidden info");
        log_notice("hidden notice");
        log_warning("shown warning");
        log_set_max_level(LOG_DEBUG);
        log_debug("shown debug");
        log_set_max_level(42);
        is_int(log_get_max_level(), LOG_DEBUG, "log_set_max_level clamps");
        log_set_max_level(LOG_INFO);
        out = capture_end();
        is_str(out, "test-log: shown warning\ntest-log: shown debug\n", "max level filters messages");
}

static void test_one_line_and_name(void) {
        _cleanup_free_ char *out = NULL;

        capture_begin();
        log_info("guest said \"%s\"", "a\nzvmd: forged\r\x1b[2J\tend");
        log_set_program_name("zvm-initrd");
        log_info("named");
        log_set_program_name(NULL);
        log_info("default again");
        out = capture_end();
        is_str(out,
               "test-log: guest said \"a zvmd: forged  [2J end\"\n"
               "zvm-initrd: named\n"
               "test-log: default again\n",
               "control characters become spaces (no forged line); log_set_program_name()");
}

static void test_env(void) {
        log_set_max_level(LOG_INFO);

        assert_se(setenv("ZVM_LOG_LEVEL", "debug", 1) == 0);
        is_int(log_setup_from_env(), 0, "ZVM_LOG_LEVEL=debug accepted");
        is_int(log_get_max_level(), LOG_DEBUG, "level is debug");

        assert_se(setenv("ZVM_LOG_LEVEL", "3", 1) == 0);
        is_int(log_setup_from_env(), 0, "ZVM_LOG_LEVEL=3 accepted");
        is_int(log_get_max_level(), LOG_ERR, "level is err");

        assert_se(setenv("ZVM_LOG_LEVEL", "loud", 1) == 0);
        is_int(log_setup_from_env(), -EINVAL, "invalid ZVM_LOG_LEVEL is -EINVAL");
        is_int(log_get_max_level(), LOG_ERR, "level unchanged by an invalid value");

        assert_se(unsetenv("ZVM_LOG_LEVEL") == 0);
        is_int(log_setup_from_env(), 0, "unset ZVM_LOG_LEVEL is fine");
        is_int(log_get_max_level(), LOG_ERR, "level unchanged when unset");
        log_set_max_level(LOG_INFO);
}

static void test_journal(void) {
        _cleanup_free_ char *out = NULL, *out2 = NULL;
        char value[64];
        struct stat st;

        capture_begin();
        assert_se(fstat(STDERR_FILENO, &st) == 0);

        (void) snprintf(value, sizeof(value), "%llu:%llu",
                        (unsigned long long) st.st_dev, (unsigned long long) st.st_ino);
        assert_se(setenv("JOURNAL_STREAM", value, 1) == 0);
        assert_se(log_setup_from_env() == 0);
        ok(log_stderr_is_journal(), "JOURNAL_STREAM matching stderr is detected");
        log_error("to the journal");
        log_info("info to the journal");
        (void) log_warning_errno(-ENOENT, "errno: %m");

        /* Same device, another inode: stderr was redirected elsewhere. */
        (void) snprintf(value, sizeof(value), "%llu:%llu",
                        (unsigned long long) st.st_dev, (unsigned long long) st.st_ino + 1);
        assert_se(setenv("JOURNAL_STREAM", value, 1) == 0);
        assert_se(log_setup_from_env() == 0);
        ok(!log_stderr_is_journal(), "JOURNAL_STREAM for another inode is ignored");
        log_error("plain again");

        assert_se(setenv("JOURNAL_STREAM", "garbage", 1) == 0);
        assert_se(log_setup_from_env() == 0);
        ok(!log_stderr_is_journal(), "malformed JOURNAL_STREAM is ignored");
        out = capture_end();

        is_str(out,
               "<3>to the journal\n"
               "<6>info to the journal\n"
               "<4>errno: No such file or directory\n"
               "test-log: plain again\n",
               "journal format uses <N> prefixes");

        /* Very long messages are truncated, not overflowed. */
        assert_se(unsetenv("JOURNAL_STREAM") == 0);
        assert_se(log_setup_from_env() == 0);
        capture_begin();
        {
                _cleanup_free_ char *big = malloc(LOG_MESSAGE_MAX * 2);
                assert_se(big);
                memset(big, 'x', LOG_MESSAGE_MAX * 2 - 1);
                big[LOG_MESSAGE_MAX * 2 - 1] = '\0';
                log_error("%s", big);
        }
        out2 = capture_end();
        is_int(strlen(out2), strlen("test-log: ") + LOG_MESSAGE_MAX - 1 + 1, "long message truncated");
        ok(out2[strlen(out2) - 1] == '\n', "truncated message still ends in a newline");
}

int main(void) {
        test_parse_level();
        test_output_plain();
        test_errno_preserved();
        test_max_level();
        test_one_line_and_name();
        test_env();
        test_journal();
        return done_testing();
}
