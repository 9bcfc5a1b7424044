/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"
#include "paths.h"
#include "string-util.h"
#include "zvm-config.h"

static bool running_from_build_tree(void) {
        _cleanup_free_ char *exe = realpath("/proc/self/exe", NULL);
        _cleanup_free_ char *build = realpath(ZVM_BUILD_ROOT, NULL);
        size_t n;

        if (!exe || !build)
                return false;
        n = strlen(build);
        return strneq(exe, build, n) && exe[n] == '/';
}

int paths_init(Paths *p, const char *root) {
        const char *r = root ? root : "";
        _cleanup_free_ char *build_guest = NULL;

        *p = (Paths) {};
        p->root = strdup(r);
        p->etc = strjoin(r, "/etc/zvm");
        p->run = strjoin(r, "/run/zvm");
        p->data = strjoin(r, "/var/lib/zvm");
        p->cache = strjoin(r, "/var/cache/zvm");
        if (!p->root || !p->etc || !p->run || !p->data || !p->cache)
                return -ENOMEM;
        p->vms_dir = strjoin(p->etc, "/vms");
        p->tokens = strjoin(p->etc, "/tokens.conf");
        p->zvm_conf = strjoin(p->etc, "/zvm.conf");
        p->run_vms = strjoin(p->run, "/vms");
        p->api_socket = strjoin(p->run, "/api.sock");
        p->lock = strjoin(p->run, "/zvmd.lock");
        p->data_vms = strjoin(p->data, "/vms");
        p->templates = strjoin(p->data, "/templates");
        p->images = strjoin(p->data, "/images");
        p->models = strjoin(p->data, "/models");
        p->ssh_known_hosts = strjoin(p->data, "/ssh_known_hosts");

        if (running_from_build_tree()) {
                p->mktemplate = strdup(getenv("ZVM_MKTEMPLATE") ?: ZVM_SOURCE_ROOT "/templates/zvm-mktemplate");
                p->agent_binary = strdup(getenv("ZVM_AGENT") ?: ZVM_BUILD_ROOT "/guest-agent/zvm-agent");
                p->mkmodel = strdup(getenv("ZVM_MKMODEL") ?: ZVM_BUILD_ROOT "/daemon/tools/zvm-mkmodel");
        } else {
                p->mktemplate = strdup(getenv("ZVM_MKTEMPLATE") ?: ZVM_LIBEXECDIR "/zvm-mktemplate");
                p->agent_binary = strdup(getenv("ZVM_AGENT") ?: ZVM_LIBEXECDIR "/zvm-agent");
                p->mkmodel = strdup(getenv("ZVM_MKMODEL") ?: ZVM_LIBEXECDIR "/zvm-mkmodel");
        }
        if (!p->mktemplate || !p->agent_binary || !p->mkmodel)
                return -ENOMEM;

        build_guest = strjoin(ZVM_BUILD_ROOT, "/guest");
        if (getenv("ZVM_GUEST_DIR"))
                p->guest_dir = strdup(getenv("ZVM_GUEST_DIR"));
        else if (running_from_build_tree())
                p->guest_dir = TAKE_PTR(build_guest);
        else
                p->guest_dir = strdup(ZVM_DATADIR);
        if (!p->vms_dir || !p->tokens || !p->run_vms || !p->api_socket || !p->lock || !p->data_vms ||
            !p->templates || !p->images || !p->zvm_conf || !p->models || !p->ssh_known_hosts || !p->guest_dir)
                return -ENOMEM;
        p->default_kernel = strjoin(p->guest_dir, "/vmlinux");
        p->default_initrd = strjoin(p->guest_dir, "/initrd.img");
        if (!p->default_kernel || !p->default_initrd)
                return -ENOMEM;
        return 0;
}

void paths_done(Paths *p) {
        char **all[] = { &p->root, &p->etc, &p->vms_dir, &p->run, &p->run_vms, &p->api_socket, &p->lock,
                         &p->data, &p->data_vms, &p->templates, &p->images, &p->models, &p->ssh_known_hosts, &p->cache, &p->tokens, &p->zvm_conf, &p->guest_dir,
                         &p->default_kernel, &p->default_initrd, &p->mktemplate, &p->agent_binary, &p->mkmodel };

        for (size_t i = 0; i < ELEMENTSOF(all); i++)
                *all[i] = mfree(*all[i]);
}

int paths_mkdirs(const Paths *p) {
        const char *dirs[] = { p->vms_dir, p->run_vms, p->data_vms, p->templates, p->images, p->models, p->cache };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                r = mkdir_p(dirs[i], 0755);
                if (r < 0)
                        return r;
        }
        /* Config and tokens are readable by root only: tokens.conf holds
         * hashes, VM configs may name private disks. */
        (void) chmod(p->etc, 0750);
        return 0;
}

int paths_template_image(const Paths *p, const char *name, char **ret) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;

        a = strjoin(p->templates, "/", name, ".img");
        b = strjoin(p->guest_dir, "/rootfs-", name, ".img");
        c = strjoin(p->guest_dir, "/templates/", name, ".img");
        if (!a || !b || !c)
                return -ENOMEM;
        if (access(a, R_OK) == 0)
                *ret = TAKE_PTR(a);
        else if (access(b, R_OK) == 0)
                *ret = TAKE_PTR(b);
        else if (access(c, R_OK) == 0)
                *ret = TAKE_PTR(c);
        else
                return -ENOENT;
        return 0;
}

char *paths_vm_run_dir(const Paths *p, uint32_t vmid) {
        char buf[16];

        snprintf(buf, sizeof(buf), "%u", vmid);
        return strjoin(p->run_vms, "/", buf);
}

char *paths_vm_data_dir(const Paths *p, uint32_t vmid) {
        char buf[16];

        snprintf(buf, sizeof(buf), "%u", vmid);
        return strjoin(p->data_vms, "/", buf);
}

/* ".#<vmid>.conf.XXXXXX" whose ".<vmid>.lock" nobody holds (a tool that
 * writes configs holds it for the whole write). */
static bool config_temporary_unlocked(int dfd, const char *name, void *userdata) {
        _cleanup_close_ int fd = -EBADF;
        char lock[32];
        unsigned vmid;
        int n = 0;

        if (sscanf(name, ".#%u.conf.%n", &vmid, &n) != 1 || n == 0)
                return false;
        snprintf(lock, sizeof(lock), ".%u.lock", vmid);
        fd = openat(dfd, lock, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return errno == ENOENT;
        return flock(fd, LOCK_EX | LOCK_NB) >= 0;      /* released by the close */
}

/* The temporaries in dir itself, then in each of its subdirectories. */
static int sweep_dir(const char *dir, bool subdirs) {
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct dirent *de;
        DIR *d;
        int n = 0, r;

        if (dfd < 0)
                return errno == ENOENT ? 0 : -errno;
        r = unlink_temporaries_at(dfd, NULL, NULL);
        if (r > 0)
                n += r;
        if (!subdirs)
                return n;
        d = opendir(dir);
        if (!d)
                return n;
        while ((de = readdir(d))) {
                _cleanup_close_ int sub = -EBADF;

                /* A deleted VM's files the fsync worker had not removed
                 * yet (core/vm.c, vm_remove_dir_aside()). */
                if (startswith(de->d_name, ".#deleted-")) {
                        if (rm_rf_at(dirfd(d), de->d_name) >= 0)
                                n++;
                        continue;
                }
                if (de->d_name[0] == '.')
                        continue;
                sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub >= 0 && (r = unlink_temporaries_at(sub, NULL, NULL)) > 0)
                        n += r;
        }
        closedir(d);
        return n;
}

int paths_sweep_temporaries(const Paths *p) {
        _cleanup_close_ int vms = open(p->vms_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int n = 0, r;

        if (vms >= 0 && (r = unlink_temporaries_at(vms, config_temporary_unlocked, NULL)) > 0)
                n += r;
        n += MAX(sweep_dir(p->etc, false), 0);
        n += MAX(sweep_dir(p->data, false), 0);
        n += MAX(sweep_dir(p->run_vms, true), 0);
        n += MAX(sweep_dir(p->data_vms, true), 0);
        return n;
}
