/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/fs.h>
#include <linux/openat2.h>

#include "config-check.h"
#include "fd-util.h"
#include "string-util.h"

/* path relative to dir_fd, with nothing on the way a symlink and no ".."
 * climbing out: openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS). Returns the fd or -errno: -ELOOP (a symlink),
 * -EXDEV (an escape), -ENOSYS (a kernel before 5.6: refused, never resolved
 * less strictly). (Not in lib/: lib/ also builds against musl, whose
 * headers lack openat2.) */
static int open_beneath(int dir_fd, const char *path, int flags) {
        /* openat2() refuses flags that mean nothing to O_PATH. */
        struct open_how how = {
                .flags = (uint64_t) (flags | O_CLOEXEC | (flags & O_PATH ? 0 : O_NOCTTY)),
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        long fd;

        /* glibc 2.36 has no openat2() wrapper. */
        fd = syscall(SYS_openat2, dir_fd, path, &how, sizeof(how));
        return fd < 0 ? -errno : (int) fd;
}

int config_open_path(const Policy *pol, const char *key, const char *path, bool root, int flags, int *ret_fd,
                     char **ret_error) {
        _cleanup_close_ int dir_fd = -EBADF;
        PolicyPath pp;
        int r, fd;

        r = policy_check_path(pol, key, path, root, &pp, ret_error);
        if (r < 0)
                return r;
        if (pp.kind == POLICY_PATH_RAW) {
                fd = open(path, flags | O_CLOEXEC | (flags & O_PATH ? 0 : O_NOCTTY));
                if (fd < 0)
                        return r = -errno, set_error(ret_error, "%s: %s: %s", key, path, errno_str(r)), r;
                *ret_fd = fd;
                return 0;
        }
        /* The storage directory itself was declared by root: following a
         * symlink up to it is fine. Below it, nothing may be one. */
        dir_fd = open(pp.storage->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return r = -errno,
                       set_error(ret_error, "%s: storage %s (%s): %s", key, pp.storage->name, pp.storage->path,
                                 errno_str(r)),
                       r;
        fd = open_beneath(dir_fd, pp.relative, flags);
        if (fd == -ELOOP || fd == -EXDEV)
                return set_error(ret_error, "%s: %s is or passes through a symlink, refused in storage %s=%s", key, path,
                                 pp.storage->name, pp.storage->path),
                       -EACCES;
        if (fd < 0)
                return set_error(ret_error, "%s: %s: %s", key, path, errno_str(fd)), fd;
        *ret_fd = fd;
        return 0;
}

/* A block device's size, from the O_PATH fd (which cannot ioctl). */
static int block_size(int fd, uint64_t *ret) {
        _cleanup_close_ int rd = -EBADF;
        char p[64];

        snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
        rd = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (rd < 0)
                return -errno;
        return ioctl(rd, BLKGETSIZE64, ret) < 0 ? -errno : 0;
}

/* A disk or root image is a regular file or a block device; a kernel or an
 * initrd a regular file. Opened as the policy says (O_PATH: nothing is
 * read, no device is touched), then checked on the fd, so the file checked
 * is the one that was resolved. */
static int check_file(const Policy *pol, const PolicyPathKey *k, bool root, char **ret_error) {
        _cleanup_close_ int fd = -EBADF;
        uint64_t size;
        struct stat st;
        int r;

        r = config_open_path(pol, k->key, k->path, root, O_PATH, &fd, ret_error);
        if (r < 0)
                return r;
        if (fstat(fd, &st) < 0)
                return r = -errno, set_error(ret_error, "%s: %s: %s", k->key, k->path, errno_str(r)), r;
        if (!S_ISREG(st.st_mode) && !(k->block_ok && S_ISBLK(st.st_mode)))
                return set_error(ret_error, "%s: %s is %s, not %s", k->key, k->path,
                                 S_ISDIR(st.st_mode) ? "a directory" : "a special file",
                                 k->block_ok ? "an image file or a block device" : "a regular file"),
                       S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
        if (!k->sized || root || pol->max_disk_size == 0)
                return 0;
        size = (uint64_t) st.st_size;
        if (S_ISBLK(st.st_mode)) {
                r = block_size(fd, &size);
                if (r < 0)
                        return set_error(ret_error, "%s: %s: cannot read its size: %s", k->key, k->path, errno_str(r)), r;
        }
        return policy_check_disk_size(pol, k->key, k->path, size, root, ret_error);
}

int config_check_host(const Paths *p, const Policy *pol, const VmConfig *c, json_object *keys, bool root,
                      char **ret_error, char **ret_key) {
        PolicyPathKey paths[POLICY_PATH_KEYS_MAX];
        size_t n;
        int r;

        /* The policy first: a refused path is not even looked at. */
        r = policy_check_config(pol, c, keys, root, ret_error, ret_key);
        if (r < 0)
                return r;
        if (c->rootfs_template && (!keys || json_object_object_get_ex(keys, "rootfs", NULL))) {
                _cleanup_free_ char *image = NULL;

                r = paths_template_image(p, c->rootfs_template, &image);
                if (r < 0)
                        return set_error(ret_error, "rootfs: template '%s' not found (zvm template list shows them)",
                                         c->rootfs_template),
                               set_error(ret_key, "rootfs"), r;
        }
        n = policy_config_paths(c, paths);
        for (size_t i = 0; i < n; i++) {
                if (keys && !json_object_object_get_ex(keys, paths[i].key, NULL))
                        continue;
                r = check_file(pol, &paths[i], root, ret_error);
                if (r < 0)
                        return set_error(ret_key, "%s", paths[i].key), r;
        }
        return 0;
}
