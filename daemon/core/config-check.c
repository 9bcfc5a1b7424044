/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "config-check.h"
#include "string-util.h"

/* A disk or root image is a regular file or a block device; a kernel or an
 * initrd a regular file. (model: names a store model; rest/ checks it.) */
static int check_file(const char *key, const char *path, bool block_ok, char **ret_error, char **ret_key) {
        struct stat st;

        if (stat(path, &st) < 0) {
                int r = -errno;

                return set_error(ret_error, "%s: %s: %s", key, path, errno_str(r)), set_error(ret_key, "%s", key), r;
        }
        if (S_ISREG(st.st_mode) || (block_ok && S_ISBLK(st.st_mode)))
                return 0;
        return set_error(ret_error, "%s: %s is %s, not %s", key, path, S_ISDIR(st.st_mode) ? "a directory" : "a special file",
                         block_ok ? "an image file or a block device" : "a regular file"),
               set_error(ret_key, "%s", key), S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
}

int config_check_host(const Paths *p, const VmConfig *c, json_object *body, char **ret_error, char **ret_key) {
        int r;

        if (json_object_object_get_ex(body, "rootfs", NULL)) {
                if (c->rootfs_template) {
                        _cleanup_free_ char *image = NULL;

                        r = paths_template_image(p, c->rootfs_template, &image);
                        if (r < 0)
                                return set_error(ret_error, "rootfs: template '%s' not found (zvm template list shows them)",
                                                 c->rootfs_template),
                                       set_error(ret_key, "rootfs"), r;
                } else if (c->rootfs_path) {
                        r = check_file("rootfs", c->rootfs_path, true, ret_error, ret_key);
                        if (r < 0)
                                return r;
                }
        }
        for (unsigned i = 0; i < VM_DISKS_MAX; i++) {
                char key[16];

                snprintf(key, sizeof(key), "disk%u", i);
                if (c->disks[i].path && json_object_object_get_ex(body, key, NULL)) {
                        r = check_file(key, c->disks[i].path, true, ret_error, ret_key);
                        if (r < 0)
                                return r;
                }
        }
        const char *const files[][2] = { { "kernel", c->kernel }, { "initrd", c->initrd } };

        for (size_t i = 0; i < ELEMENTSOF(files); i++)
                if (files[i][1] && json_object_object_get_ex(body, files[i][0], NULL)) {
                        r = check_file(files[i][0], files[i][1], false, ret_error, ret_key);
                        if (r < 0)
                                return r;
                }
        return 0;
}
