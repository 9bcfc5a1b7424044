/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "fd-util.h"
#include "fileio.h"
#include "string-util.h"
#include "tap.h"

static char tmpdir[] = "/tmp/test-fileio.XXXXXX";

static char *tmp_path(const char *name) {
        char *p = strjoin(tmpdir, "/", name);
        assert_se(p);
        return p;
}

/* Number of leftover ".#*" temporary files in dir. */
static unsigned count_temp_files(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;
        unsigned n = 0;

        assert_se(d);
        while ((de = readdir(d)))
                if (startswith(de->d_name, ".#"))
                        n++;
        closedir(d);
        return n;
}

static bool file_has_content(const char *path, const char *content) {
        _cleanup_free_ char *buf = NULL;
        size_t size;

        if (read_full_file(path, &buf, &size, 0) < 0)
                return false;
        return size == strlen(content) && memcmp(buf, content, size) == 0;
}

static void test_basic(void) {
        _cleanup_free_ char *p = tmp_path("state.json");
        struct stat st1, st2;

        is_int(write_file_atomic(tmpdir, "state.json", "{\"a\":1}\n", 8, 0640), 0, "create a new file");
        ok(file_has_content(p, "{\"a\":1}\n"), "new file has the content");
        assert_se(stat(p, &st1) == 0);
        is_int(st1.st_mode & 07777, 0640, "mode applied (umask 022)");

        is_int(write_file_atomic(tmpdir, "state.json", "{}", 2, 0600), 0, "replace with shorter content");
        ok(file_has_content(p, "{}"), "content replaced, no stale tail");
        assert_se(stat(p, &st2) == 0);
        ok(st1.st_ino != st2.st_ino, "replaced by rename (new inode)");
        is_int(st2.st_mode & 07777, 0600, "new mode applied");

        is_int(write_file_atomic(tmpdir, "state.json", NULL, 0, 0600), 0, "empty content");
        ok(file_has_content(p, ""), "file is empty");

        is_int(count_temp_files(tmpdir), 0, "no temporary files left behind");
}

static void test_at(void) {
        _cleanup_close_ int dfd = open(tmpdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ char *p = tmp_path("at"), *cwd = get_current_dir_name();

        assert_se(dfd >= 0 && cwd);
        is_int(write_file_atomic_at(dfd, "at", "x", 1, 0644), 0, "write_file_atomic_at with an O_PATH dirfd");
        ok(file_has_content(p, "x"), "content");

        assert_se(chdir(tmpdir) == 0);
        is_int(write_file_atomic(NULL, "at", "yy", 2, 0644), 0, "dir NULL is the current directory");
        is_int(write_file_atomic_at(AT_FDCWD, "at2", "z", 1, 0644), 0, "AT_FDCWD");
        assert_se(chdir(cwd) == 0);
        ok(file_has_content(p, "yy"), "content via cwd");

        static const char *const bad[] = { "", ".", "..", "a/b", "/abs" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                is_int(write_file_atomic(tmpdir, bad[i], "x", 1, 0644), -EINVAL, "name \"%s\" rejected", bad[i]);
        is_int(write_file_atomic(tmpdir, NULL, "x", 1, 0644), -EINVAL, "NULL name rejected");
        is_int(write_file_atomic("/nonexistent-dir", "x", "x", 1, 0644), -ENOENT, "missing directory");
        is_int(write_file_atomic_at(-5, "x", "x", 1, 0644), -EBADF, "bad dirfd");
        is_int(count_temp_files(tmpdir), 0, "no temporary files left behind");
}

static void test_full(void) {
        _cleanup_close_ int dfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ char *p = tmp_path("full");
        mode_t old = umask(022);
        struct stat st;

        assert_se(dfd >= 0);
        is_int(write_file_atomic_at_full(dfd, "full", "abc", 3, 0777, (uid_t) -1, (gid_t) -1), 0,
               "write_file_atomic_at_full");
        ok(stat(p, &st) == 0 && (st.st_mode & 07777) == 0777 && file_has_content(p, "abc"),
           "...mode 0777 exactly, the umask does not apply");
        is_int(write_file_atomic_at_full(dfd, "full", "", 0, 0600, getuid(), getgid()), 0, "...with an owner");
        ok(stat(p, &st) == 0 && (st.st_mode & 07777) == 0600 && st.st_uid == getuid() && st.st_size == 0,
           "...replaced: mode 0600, owner, empty");
        is_int(write_file_atomic_at_full(dfd, "a/b", "x", 1, 0600, (uid_t) -1, (gid_t) -1), -EINVAL, "...bad name");
        is_int(count_temp_files(tmpdir), 0, "...no temporary files left behind");
        umask(old);
}

static void test_fail_directory_in_the_way(void) {
        _cleanup_free_ char *d = tmp_path("isdir"), *inner = tmp_path("isdir/keep");

        assert_se(mkdir(d, 0755) == 0);
        assert_se(write_file_atomic(d, "keep", "old", 3, 0644) == 0);

        is_int(write_file_atomic(tmpdir, "isdir", "new", 3, 0644), -EISDIR, "a directory at the name is -EISDIR");
        ok(file_has_content(inner, "old"), "directory and its content untouched");
        is_int(count_temp_files(tmpdir), 0, "temporary file removed after failure");

        (void) unlink(inner);
        (void) rmdir(d);
}

/* The write itself fails half-way (file size limit), after the temporary
 * file was created: the temporary file must go and the old file stay. */
static void test_fail_write(void) {
        _cleanup_free_ char *p = tmp_path("limited"), *big = malloc(1024 * 1024);
        struct sigaction sa = { .sa_handler = SIG_IGN }, old_sa;
        struct rlimit old_rl, rl;
        int r;

        assert_se(big);
        memset(big, 'N', 1024 * 1024);
        assert_se(write_file_atomic(tmpdir, "limited", "old content", 11, 0644) == 0);

        assert_se(getrlimit(RLIMIT_FSIZE, &old_rl) == 0);
        rl = (struct rlimit) { .rlim_cur = 4096, .rlim_max = old_rl.rlim_max };
        assert_se(sigaction(SIGXFSZ, &sa, &old_sa) == 0);
        assert_se(setrlimit(RLIMIT_FSIZE, &rl) == 0);
        r = write_file_atomic(tmpdir, "limited", big, 1024 * 1024, 0644);
        assert_se(setrlimit(RLIMIT_FSIZE, &old_rl) == 0);
        assert_se(sigaction(SIGXFSZ, &old_sa, NULL) == 0);

        is_int(r, -EFBIG, "failing write returns its error");
        ok(file_has_content(p, "old content"), "old file untouched after a failed write");
        is_int(count_temp_files(tmpdir), 0, "temporary file removed after failed write");
}

/* The directory is not writable for the caller. As root, permissions do not
 * apply, so the check runs in a child that drops to nobody. */
static void test_fail_unwritable_dir(void) {
        _cleanup_free_ char *d = tmp_path("ro"), *p = tmp_path("ro/f");
        int status;
        pid_t pid;

        assert_se(mkdir(d, 0755) == 0);
        assert_se(write_file_atomic(d, "f", "old", 3, 0644) == 0);
        assert_se(chmod(tmpdir, 0755) == 0); /* let nobody reach d */

        pid = fork();
        assert_se(pid >= 0);
        if (pid == 0) {
                if (geteuid() == 0) {
                        if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
                                _exit(200);
                } else if (chmod(d, 0555) < 0)
                        _exit(201);
                _exit(-write_file_atomic(d, "f", "new", 3, 0644));
        }
        assert_se(waitpid(pid, &status, 0) == pid);
        ok(WIFEXITED(status) && WEXITSTATUS(status) == EACCES, "unwritable directory is -EACCES (exit %d)",
           WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        ok(file_has_content(p, "old"), "old file untouched");
        is_int(count_temp_files(d), 0, "no temporary file in the directory");

        (void) chmod(d, 0755);
        (void) unlink(p);
        (void) rmdir(d);
        (void) chmod(tmpdir, 0700);
}

/* Readers must only ever see one complete version. */
static void test_readers_see_whole_files(void) {
        _cleanup_free_ char *p = tmp_path("flip"), *a = malloc(65536), *b = malloc(65536);
        unsigned reads = 0, torn = 0;
        int status;
        pid_t pid;

        assert_se(a && b);
        memset(a, 'A', 65536);
        memset(b, 'B', 65536);
        assert_se(write_file_atomic(tmpdir, "flip", a, 65536, 0644) == 0);

        pid = fork();
        assert_se(pid >= 0);
        if (pid == 0) {
                for (unsigned i = 0; i < 40; i++)
                        if (write_file_atomic(tmpdir, "flip", i % 2 ? a : b, 65536, 0644) < 0)
                                _exit(EXIT_FAILURE);
                _exit(EXIT_SUCCESS);
        }

        while (waitpid(pid, &status, WNOHANG) == 0) {
                _cleanup_free_ char *buf = NULL;
                size_t size;

                assert_se(read_full_file(p, &buf, &size, 0) == 0);
                reads++;
                if (size != 65536 || (memcmp(buf, a, size) != 0 && memcmp(buf, b, size) != 0))
                        torn++;
        }
        ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer succeeded");
        is_int(torn, 0, "no torn reads in %u reads during 40 replacements", reads);
        is_int(count_temp_files(tmpdir), 0, "no temporary files left behind");
}

static void test_mkdir_p(void) {
        _cleanup_free_ char *abc = tmp_path("m/a/b/c"), *slashes = tmp_path("m//x///y/"),
                            *file = tmp_path("m/file"), *under = tmp_path("m/file/sub"),
                            *link = tmp_path("m/link"), *vialink = tmp_path("m/link/z");
        struct stat st;

        is_int(mkdir_p(abc, 0755), 0, "mkdir_p nested");
        ok(stat(abc, &st) == 0 && S_ISDIR(st.st_mode), "directory exists");
        is_int(mkdir_p(abc, 0755), 0, "mkdir_p of an existing directory");
        is_int(mkdir_p(slashes, 0755), 0, "mkdir_p with repeated and trailing slashes");
        ok(stat(slashes, &st) == 0 && S_ISDIR(st.st_mode), "directory exists");

        assert_se(write_file_atomic(NULL, file, "x", 1, 0644) == -EINVAL); /* a path is not a name */
        {
                _cleanup_free_ char *m = tmp_path("m");
                assert_se(write_file_atomic(m, "file", "x", 1, 0644) == 0);
        }
        is_int(mkdir_p(under, 0755), -ENOTDIR, "a file in the way is -ENOTDIR");
        is_int(mkdir_p(file, 0755), -ENOTDIR, "a file at the path is -ENOTDIR");

        assert_se(symlink("a", link) == 0);
        is_int(mkdir_p(vialink, 0755), 0, "mkdir_p through a symlink to a directory");
        is_int(mkdir_p("", 0755), -EINVAL, "empty path");
        is_int(mkdir_p("/", 0755), 0, "\"/\" exists");
}

static int rm_rf(const char *path) {
        _cleanup_free_ char *cmd = strjoin("rm -rf -- '", path, "'");

        assert_se(cmd);
        return system(cmd);
}

static bool keep_b(int dir_fd, const char *name, void *userdata) {
        (*(unsigned *) userdata)++;
        return !strstr(name, "b.conf");
}

/* What a writer killed between its open and its rename leaves: removed,
 * and nothing else (the file itself, a symlink such as emacs's ".#" lock,
 * what the filter keeps). */
static void test_unlink_temporaries(void) {
        _cleanup_free_ char *dir = tmp_path("sweep"), *a = NULL, *b = NULL, *c = NULL, *lnk = NULL;
        _cleanup_close_ int dfd = -EBADF;
        unsigned asked = 0;

        assert_se(mkdir(dir, 0700) == 0);
        a = strjoin(dir, "/.#a.conf.abcdef");
        b = strjoin(dir, "/.#b.conf.abcdef");
        c = strjoin(dir, "/a.conf");
        lnk = strjoin(dir, "/.#editor-lock");
        assert_se(a && b && c && lnk);
        assert_se(write_file_atomic(dir, "a.conf", "whole\n", 6, 0644) == 0);
        assert_se(close(open(a, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) == 0);
        assert_se(close(open(b, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) == 0);
        assert_se(symlink("user@host.1234", lnk) == 0);
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_se(dfd >= 0);
        is_int(unlink_temporaries_at(dfd, keep_b, &asked), 1, "one temporary removed, the filtered one kept");
        is_int((int) asked, 2, "the filter was asked about the two temporaries only");
        ok(access(a, F_OK) < 0 && access(b, F_OK) == 0 && access(c, F_OK) == 0, "a.conf kept, its temporary gone");
        ok(faccessat(AT_FDCWD, lnk, F_OK, AT_SYMLINK_NOFOLLOW) == 0, "a \".#\" symlink is not a temporary");
        is_int(unlink_temporaries_at(dfd, NULL, NULL), 1, "without a filter the other one goes too");
        is_int(unlink_temporaries_at(dfd, NULL, NULL), 0, "nothing left to remove");
}

/* The hook gets a descriptor of the new file and one of its directory,
 * after the rename; one that refuses them has them fsync()ed inline. */
static unsigned hook_calls;
static int hook_answer;
static struct stat hook_file_st, hook_dir_st;

static int test_hook(int fd, int dir_fd, void *userdata) {
        hook_calls++;
        if (hook_answer < 0)
                return hook_answer;
        assert_se(fd < 0 || fstat(fd, &hook_file_st) == 0);
        assert_se(fstat(dir_fd, &hook_dir_st) == 0);
        safe_close(fd);
        safe_close(dir_fd);
        return 0;
}

static void test_sync_hook(void) {
        _cleanup_free_ char *dir = tmp_path("hook"), *f = NULL;
        _cleanup_close_ int dfd = -EBADF;
        struct stat st, dst;

        assert_se(mkdir(dir, 0700) == 0);
        f = strjoin(dir, "/a.conf");
        assert_se(f);
        fileio_set_sync_hook(test_hook, NULL);
        is_int(write_file_atomic(dir, "a.conf", "one\n", 4, 0644), 0, "hook: the write succeeds");
        ok(file_has_content(f, "one\n") && stat(f, &st) == 0 && stat(dir, &dst) == 0, "hook: the file is in place");
        is_int((int) hook_calls, 1, "hook: called once per write");
        ok(hook_file_st.st_ino == st.st_ino && hook_dir_st.st_ino == dst.st_ino,
           "hook: given the new file (not the temporary) and its directory");
        is_int(write_file_replace(dir, "a.conf", "two\n", 4, 0644), 0, "hook: write_file_replace works");
        is_int((int) hook_calls, 1, "hook: not called for a write without fsync");
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_se(dfd >= 0);
        is_int(fileio_sync_dir(dfd), 0, "hook: fileio_sync_dir");
        ok(hook_calls == 2 && hook_dir_st.st_ino == dst.st_ino && fcntl(dfd, F_GETFD) >= 0,
           "hook: fileio_sync_dir hands over a copy, the caller's fd stays");
        hook_answer = -EAGAIN;
        is_int(write_file_atomic(dir, "a.conf", "three\n", 6, 0644), 0, "hook refuses: fsync()ed inline");
        ok(hook_calls == 3 && file_has_content(f, "three\n") && count_temp_files(dir) == 0,
           "hook refuses: the file is written all the same");
        fileio_set_sync_hook(NULL, NULL);
        hook_answer = 0;
        is_int(write_file_atomic(dir, "a.conf", "four\n", 5, 0644), 0, "no hook: inline again");
        is_int((int) hook_calls, 3, "no hook: not called");
}

static void test_rm_rf_at(void) {
        _cleanup_free_ char *dir = tmp_path("rmrf"), *keep = tmp_path("rmrf-keep"), *p = NULL;
        _cleanup_close_ int dfd = -EBADF;
        char deep[512] = "deep";

        assert_se(mkdir(dir, 0700) == 0 && mkdir(keep, 0700) == 0);
        assert_se(write_file_atomic(keep, "precious", "x", 1, 0644) == 0);
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_se(dfd >= 0);
        assert_se(mkdirat(dfd, "t", 0700) == 0 && mkdirat(dfd, "t/sub", 0700) == 0);
        assert_se(write_file_atomic(dir, "file", "x", 1, 0644) == 0);
        p = strjoin(dir, "/t/sub/f");
        assert_se(p && close(open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) == 0);
        free(p);
        p = strjoin(dir, "/t/link");
        assert_se(p && symlink(keep, p) == 0);
        is_int(rm_rf_at(dfd, "t"), 0, "rm_rf_at: a tree");
        ok(faccessat(dfd, "t", F_OK, AT_SYMLINK_NOFOLLOW) < 0, "rm_rf_at: the tree is gone");
        ok(access(keep, F_OK) == 0, "rm_rf_at: a symlink's target survives");
        is_int(rm_rf_at(dfd, "file"), 0, "rm_rf_at: a file");
        is_int(rm_rf_at(dfd, "file"), 0, "rm_rf_at: a name already gone is fine");
        is_int(rm_rf_at(dfd, "../rmrf-keep"), -EINVAL, "rm_rf_at: one path component only");
        for (unsigned i = 0; i < 20; i++) {
                assert_se(mkdirat(dfd, deep, 0700) == 0);
                strcat(deep, "/d");
        }
        is_int(rm_rf_at(dfd, "deep"), -ELOOP, "rm_rf_at: more than 16 levels is refused");
        ok(faccessat(dfd, "deep", F_OK, 0) == 0, "rm_rf_at: the too-deep part stays");
}

int main(void) {
        umask(022);
        assert_se(mkdtemp(tmpdir));

        test_basic();
        test_at();
        test_full();
        test_fail_directory_in_the_way();
        test_fail_write();
        test_fail_unwritable_dir();
        test_readers_see_whole_files();
        test_mkdir_p();
        test_unlink_temporaries();
        test_sync_hook();
        test_rm_rf_at();

        ok(rm_rf(tmpdir) == 0, "cleaned up");
        return done_testing();
}
