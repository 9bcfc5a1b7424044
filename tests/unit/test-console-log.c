/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The capped, once-rotated console log (daemon/console-log.h) on a real
 * directory: the cap holds for every write size, what is kept is the newest
 * output in order, and the tail reader joins the two parts. */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <unistd.h>

#include "console-log.h"
#include "fd-util.h"
#include "string-util.h"
#include "tap.h"

static char tmpdir[] = "/tmp/test-console-log.XXXXXX";

static char *tmp_path(const char *name) {
        char *p = strjoin(tmpdir, "/", name);

        assert_se(p);
        return p;
}

static uint64_t size_of(const char *path) {
        struct stat st;

        return stat(path, &st) == 0 ? (uint64_t) st.st_size : 0;
}

static void write_file(const char *path, const char *data, size_t n) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);

        assert_se(fd >= 0 && loop_write(fd, data, n, false) == 0);
}

/* The byte at stream position i: a pattern that tells any reordering. */
static char pattern(uint64_t i) {
        return (char) ('a' + (i * 7 + i / 26) % 26);
}

static void test_cap_and_rotation(void) {
        _cleanup_free_ char *path = tmp_path("a.log"), *old = tmp_path("a.log.1");
        _cleanup_(console_log_freep) ConsoleLog *l = NULL;
        const uint64_t max = 1000;
        uint64_t written = 0;
        bool capped = true;
        char buf[4096];

        is_int(console_log_open(path, max, &l), 0, "open creates the log");
        ok(access(path, F_OK) == 0 && size_of(path) == 0, "an empty console.log exists");
        /* Write sizes below, at and far above the cap. */
        static const size_t sizes[] = { 1, 7, 999, 1000, 1001, 333, 4096, 2, 2500, 64 };
        for (size_t round = 0; round < 5; round++)
                for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                        for (size_t j = 0; j < sizes[i]; j++)
                                buf[j] = pattern(written + j);
                        if (console_log_write(l, buf, sizes[i]) < 0)
                                capped = false;
                        written += sizes[i];
                        if (size_of(path) > max || size_of(old) > max)
                                capped = false;
                }
        ok(capped, "every write succeeded and neither part ever exceeded the cap (%" PRIu64 " bytes written)",
           written);
        is_int(size_of(path), (long long) (written % max == 0 ? max : written % max), "current part: the remainder");
        is_int(size_of(old), (long long) max, "rotated part: full");
        is_int(console_log_size(l), (long long) size_of(path), "size tracks the file");

        /* The two parts together are the newest bytes, in order. */
        _cleanup_free_ char *all = NULL;
        size_t n = 0;
        bool in_order = true;

        is_int(console_log_read_tail(path, 1ULL << 20, &all, &n), 0, "read the whole log");
        is_int(n, (long long) (size_of(path) + size_of(old)), "tail covers both parts");
        for (size_t i = 0; i < n; i++)
                if (all[i] != pattern(written - n + i))
                        in_order = false;
        ok(in_order, "the log holds the last %zu bytes of the stream, in order", n);
        ok(all[n] == 0, "NUL-terminated");
}

static void test_tail(void) {
        _cleanup_free_ char *path = tmp_path("t.log"), *old = tmp_path("t.log.1");
        _cleanup_free_ char *got = NULL, *missing = tmp_path("none.log");
        size_t n = 99;

        write_file(old, "0123456789", 10);
        write_file(path, "abcdef", 6);
        is_int(console_log_read_tail(path, 4, &got, &n), 0, "tail 4");
        ok(n == 4 && streq(got, "cdef"), "tail within the current part: \"%s\"", got);
        got = mfree(got);
        is_int(console_log_read_tail(path, 9, &got, &n), 0, "tail 9");
        ok(n == 9 && streq(got, "789abcdef"), "tail reaching into the rotated part: \"%s\"", got);
        got = mfree(got);
        is_int(console_log_read_tail(path, 1000, &got, &n), 0, "tail larger than both");
        ok(n == 16 && streq(got, "0123456789abcdef"), "both parts, old first: \"%s\"", got);
        got = mfree(got);
        is_int(console_log_read_tail(path, 0, &got, &n), 0, "tail 0");
        ok(n == 0 && streq(got, ""), "tail 0 is empty");
        got = mfree(got);
        is_int(console_log_read_tail(missing, 100, &got, &n), 0, "a missing log");
        ok(n == 0 && streq(got, ""), "reads as empty");
        got = mfree(got);
        (void) unlink(path);
        is_int(console_log_read_tail(path, 5, &got, &n), 0, "only the rotated part left");
        ok(n == 5 && streq(got, "56789"), "its tail: \"%s\"", got);
        (void) unlink(old);
}

/* A log left larger than the cap (QEMU's old logfile, a lowered cap): the
 * bound holds from the first write on. */
static void test_oversized_at_open(void) {
        _cleanup_free_ char *path = tmp_path("big.log"), *old = tmp_path("big.log.1");
        _cleanup_(console_log_freep) ConsoleLog *l = NULL;
        char big[5000];

        memset(big, 'x', sizeof(big));
        write_file(path, big, sizeof(big));
        is_int(console_log_open(path, 1000, &l), 0, "open a log of 5000 bytes with a cap of 1000");
        is_int(size_of(path), 0, "it was rotated away");
        is_int(size_of(old), 1000, "and the rotated part cut to the cap");
        is_int(console_log_write(l, "hello", 5), 0, "write");
        is_int(size_of(path), 5, "the new part grows");

        /* Appending across opens, as after a zvmd restart. */
        l = console_log_free(l);
        is_int(console_log_open(path, 1000, &l), 0, "reopen");
        is_int(console_log_size(l), 5, "size read back from the file");
        is_int(console_log_write(l, " world", 6), 0, "append");
        _cleanup_free_ char *got = NULL;
        size_t n;
        is_int(console_log_read_tail(path, 11, &got, &n), 0, "tail");
        ok(streq_ptr(got, "hello world"), "appended, not truncated: \"%s\"", strnull(got));
        (void) unlink(path);
        (void) unlink(old);
}

/* Rotation by rename fails (here: <path>.1 is a non-empty directory): the
 * writer drops the current part instead of growing past the cap. */
static void test_rotate_fallback(void) {
        _cleanup_free_ char *path = tmp_path("f.log"), *old = tmp_path("f.log.1"), *inner = tmp_path("f.log.1/x");
        _cleanup_(console_log_freep) ConsoleLog *l = NULL;
        char buf[300];
        bool capped = true;

        assert_se(mkdir(old, 0755) == 0);
        write_file(inner, "x", 1);
        memset(buf, 'y', sizeof(buf));
        is_int(console_log_open(path, 1000, &l), 0, "open");
        for (int i = 0; i < 20; i++)
                if (console_log_write(l, buf, sizeof(buf)) < 0 || size_of(path) > 1000)
                        capped = false;
        ok(capped, "rename impossible: still within the cap (%" PRIu64 " bytes)", size_of(path));
        (void) unlink(inner);
        (void) rmdir(old);
        (void) unlink(path);
}

static void test_errors(void) {
        ConsoleLog *l = (ConsoleLog *) 0x1;
        _cleanup_free_ char *nodir = tmp_path("nodir/x.log");

        is_int(console_log_open(nodir, 1000, &l), -ENOENT, "a missing directory: -ENOENT");
        ok(l == (ConsoleLog *) 0x1, "ret untouched on failure");
        is_int(console_log_open(nodir, 0, &l), -EINVAL, "a cap of 0 is refused");
}

int main(void) {
        assert_se(mkdtemp(tmpdir));
        test_cap_and_rotation();
        test_tail();
        test_oversized_at_open();
        test_rotate_fallback();
        test_errors();
        {
                _cleanup_free_ char *a = tmp_path("a.log"), *b = tmp_path("a.log.1");

                (void) unlink(a);
                (void) unlink(b);
        }
        ok(rmdir(tmpdir) == 0, "temporary directory empty and removed");
        return done_testing();
}
