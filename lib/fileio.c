/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fd-util.h"
#include "fileio.h"
#include "string-util.h"

static bool filename_is_valid(const char *name) {
        if (isempty(name) || streq(name, ".") || streq(name, ".."))
                return false;
        if (strchr(name, '/'))
                return false;
        return strlen(name) <= NAME_MAX;
}

/* Six characters for the temporary name. They only need to make collisions
 * unlikely (O_EXCL makes them harmless), so when the kernel has no entropy
 * yet we fall back to mixing time, pid and a counter. */
static void random_suffix(char s[static 7]) {
        static const char chars[] =
                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        static unsigned counter;
        uint8_t b[6];

        if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t) sizeof(b)) {
                struct timespec ts = {};
                uint64_t x;

                (void) clock_gettime(CLOCK_MONOTONIC, &ts);
                x = (uint64_t) ts.tv_nsec ^ ((uint64_t) ts.tv_sec << 20) ^
                    ((uint64_t) getpid() << 40) ^ ((uint64_t) ++counter * 0x9E3779B97F4A7C15ULL);
                for (size_t i = 0; i < sizeof(b); i++, x >>= 8)
                        b[i] = (uint8_t) x;
        }

        for (size_t i = 0; i < sizeof(b); i++)
                s[i] = chars[b[i] % (sizeof(chars) - 1)];
        s[6] = '\0';
}

static fileio_sync_hook_fn sync_hook;
static void *sync_hook_userdata;

void fileio_set_sync_hook(fileio_sync_hook_fn fn, void *userdata) {
        sync_hook = fn;
        sync_hook_userdata = userdata;
}

/* Takes fd and dir_fd (either may be negative): to the hook, or fsync()ed
 * here if there is none or it refuses. */
static int sync_fds(int fd, int dir_fd) {
        int r = 0;

        if (sync_hook && sync_hook(fd, dir_fd, sync_hook_userdata) >= 0)
                return 0;
        if (fd >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && dir_fd >= 0 && fsync(dir_fd) < 0)
                r = -errno;
        safe_close(fd);
        safe_close(dir_fd);
        return r;
}

int fileio_sync_dir(int dir_fd) {
        int fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);

        if (fd < 0)
                return -errno;
        return sync_fds(-EBADF, fd);
}

/* exact: fchmod to mode (and chown to uid:gid unless uid is -1); else the
 * file keeps mode minus the umask, as open() made it. */
static int write_file_atomic_internal(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                                      bool exact, uid_t uid, gid_t gid, bool sync) {
        _cleanup_close_ int dfd = -EBADF, fd = -EBADF, sync_fd = -EBADF;
        _cleanup_free_ char *tmp = NULL;
        int r = 0;

        assert_return(dirfd >= 0 || dirfd == AT_FDCWD, -EBADF);
        assert_return(filename_is_valid(name), -EINVAL);
        assert_return(data || len == 0, -EINVAL);

        /* Our own descriptor for the directory: dirfd may be O_PATH, which
         * cannot be fsync()ed, and AT_FDCWD must be opened anyway. */
        dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;

        for (unsigned attempt = 0;; attempt++) {
                char suffix[7];

                random_suffix(suffix);
                free(tmp);
                tmp = strjoin(".#", name, ".", suffix);
                if (!tmp)
                        return -ENOMEM;

                fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY,
                            exact ? 0600 : mode);
                if (fd >= 0)
                        break;
                if (errno != EEXIST || attempt >= 64)
                        return -errno;
        }

        r = loop_write(fd, data, len, /* do_poll= */ false);
        /* chown before chmod: chown clears set-id bits. */
        if (r >= 0 && exact && uid != (uid_t) -1 && fchown(fd, uid, gid) < 0)
                r = -errno;
        if (r >= 0 && exact && fchmod(fd, mode) < 0)
                r = -errno;
        /* With a hook, the fsyncs come after the rename, on its thread;
         * it gets its own descriptor of the file. */
        if (r >= 0 && sync && sync_hook) {
                sync_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
                if (sync_fd < 0)
                        r = -errno;
        }
        if (r >= 0 && sync && !sync_hook && fsync(fd) < 0)
                r = -errno;
        /* Delayed write errors (NFS, quota) can surface only at close(). */
        if (r >= 0 && close(TAKE_FD(fd)) < 0)
                r = -errno;
        if (r >= 0 && renameat(dfd, tmp, dfd, name) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlinkat(dfd, tmp, 0);
                return r;
        }

        if (!sync)
                return 0;
        /* Make the rename (and, with a hook, the data) durable. */
        return sync_fds(TAKE_FD(sync_fd), TAKE_FD(dfd));
}

int write_file_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode) {
        return write_file_atomic_internal(dirfd, name, data, len, mode, false, (uid_t) -1, (gid_t) -1, true);
}

int write_file_atomic_at_full(int dirfd, const char *name, const void *data, size_t len, mode_t mode, uid_t uid,
                              gid_t gid) {
        /* Created 0600 so that nobody else can open it before the fchmod. */
        return write_file_atomic_internal(dirfd, name, data, len, mode, true, uid, gid, true);
}

int write_file_atomic(const char *dir, const char *name, const void *data, size_t len, mode_t mode) {
        _cleanup_close_ int dfd = -EBADF;

        if (!dir)
                return write_file_atomic_at(AT_FDCWD, name, data, len, mode);

        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;

        return write_file_atomic_at(dfd, name, data, len, mode);
}

int write_file_replace(const char *dir, const char *name, const void *data, size_t len, mode_t mode) {
        _cleanup_close_ int dfd = -EBADF;

        assert_return(dir, -EINVAL);
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;

        return write_file_atomic_internal(dfd, name, data, len, mode, false, (uid_t) -1, (gid_t) -1, false);
}

int unlink_temporaries_at(int dir_fd, bool (*may_remove)(int dir_fd, const char *name, void *userdata),
                          void *userdata) {
        struct dirent *de;
        DIR *d;
        int fd, n = 0, r = 0;

        fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d) {
                r = -errno;
                safe_close(fd);
                return r;
        }
        while ((de = readdir(d))) {
                struct stat st;

                /* Not a symlink: emacs's ".#file" locks are ones. */
                if (!startswith(de->d_name, ".#") ||
                    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                        continue;
                if (may_remove && !may_remove(dirfd(d), de->d_name, userdata))
                        continue;
                if (unlinkat(dirfd(d), de->d_name, 0) < 0) {
                        if (errno != ENOENT)
                                r = -errno;
                        continue;
                }
                n++;
        }
        closedir(d);
        return r < 0 ? r : n;
}

#define RM_RF_DEPTH_MAX 16U

static int rm_rf_dir(int parent_fd, const char *name, dev_t dev, unsigned depth);

static int rm_rf_children(int fd, dev_t dev, unsigned depth) {
        struct dirent *de;
        DIR *d;
        int r = 0;

        d = fdopendir(fd);
        if (!d) {
                r = -errno;
                safe_close(fd);
                return r;
        }
        while ((de = readdir(d))) {
                int q;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (unlinkat(dirfd(d), de->d_name, 0) >= 0 || errno == ENOENT)
                        continue;
                q = errno == EISDIR ? rm_rf_dir(dirfd(d), de->d_name, dev, depth + 1) : -errno;
                if (q < 0 && r >= 0)
                        r = q;
        }
        closedir(d);
        return r;
}

static int rm_rf_dir(int parent_fd, const char *name, dev_t dev, unsigned depth) {
        struct stat st;
        int fd, r;

        if (depth > RM_RF_DEPTH_MAX)
                return -ELOOP;
        fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        if (fstat(fd, &st) < 0 || st.st_dev != dev) {
                r = st.st_dev != dev ? -EXDEV : -errno;
                safe_close(fd);
                return r;
        }
        r = rm_rf_children(fd, dev, depth);
        if (unlinkat(parent_fd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && r >= 0)
                r = -errno;
        return r;
}

int rm_rf_at(int dir_fd, const char *name) {
        struct stat st;

        assert_return(filename_is_valid(name), -EINVAL);
        if (unlinkat(dir_fd, name, 0) >= 0)
                return 0;
        if (errno != EISDIR)
                return errno == ENOENT ? 0 : -errno;
        if (fstat(dir_fd, &st) < 0)
                return -errno;
        return rm_rf_dir(dir_fd, name, st.st_dev, 0);
}

static int mkdir_one(const char *path, mode_t mode) {
        struct stat st;

        if (mkdir(path, mode) >= 0)
                return 0;
        if (errno != EEXIST)
                return -errno;

        /* Something exists; fine if it is (or points to) a directory. */
        if (stat(path, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        return 0;
}

int mkdir_p(const char *path, mode_t mode) {
        _cleanup_free_ char *p = NULL;
        int r;

        assert_return(!isempty(path), -EINVAL);

        p = strdup(path);
        if (!p)
                return -ENOMEM;

        /* Walk the path, temporarily cutting it after each component. The
         * first character is skipped so that "/" itself is never created;
         * empty components ("a//b", trailing "/") are skipped too. */
        for (char *s = p + 1;; s++) {
                char c = *s;

                if (c != '/' && c != '\0')
                        continue;

                if (s[-1] != '/') {
                        *s = '\0';
                        r = mkdir_one(p, mode);
                        *s = c;
                        if (r < 0)
                                return r;
                }

                if (c == '\0')
                        break;
        }

        return 0;
}

char *find_executable(const char *name) {
        _cleanup_strv_free_ char **dirs = NULL;
        _cleanup_free_ char *path = NULL;

        if (strchr(name, '/'))
                return access(name, X_OK) == 0 ? strdup(name) : NULL;
        path = strjoin(getenv("PATH") ?: "/usr/local/bin:/usr/bin:/bin", ":/usr/sbin:/sbin");
        if (!path || strv_split(path, ":", &dirs) < 0)
                return NULL;
        STRV_FOREACH(d, dirs) {
                _cleanup_free_ char *p = strjoin(*d, "/", name);

                if (p && access(p, X_OK) == 0)
                        return TAKE_PTR(p);
        }
        return NULL;
}
