/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Where zvmd keeps things. Everything hangs off one optional root so a
 * private instance (tests, a user's experiment) can run next to the system
 * one: --root DIR gives DIR/etc/zvm, DIR/run/zvm, DIR/var/lib/zvm and
 * DIR/var/cache/zvm. */
typedef struct Paths {
        char *root;             /* "" for the system instance */
        char *etc;              /* /etc/zvm */
        char *vms_dir;          /* /etc/zvm/vms: <vmid>.conf */
        char *run;              /* /run/zvm */
        char *run_vms;          /* /run/zvm/vms/<vmid>/ */
        char *api_socket;       /* /run/zvm/api.sock */
        char *lock;             /* /run/zvm/zvmd.lock */
        char *data;             /* /var/lib/zvm */
        char *data_vms;         /* /var/lib/zvm/vms/<vmid>/ (writable layers) */
        char *templates;        /* /var/lib/zvm/templates/<name>.img */
        char *images;           /* /var/lib/zvm/images: the storage "local" (pure/policy.h) */
        char *models;           /* /var/lib/zvm/models (core/model-store.h) */
        char *ssh_known_hosts;  /* /var/lib/zvm/ssh_known_hosts (daemon/ssh.h) */
        char *cache;            /* /var/cache/zvm */
        char *tokens;           /* /etc/zvm/tokens.conf */
        char *zvm_conf;         /* /etc/zvm/zvm.conf: the service's settings and the storage policy */
        /* The guest artifacts: the build tree's build/guest when zvmd runs
         * from its build tree, else the installed /usr/share/zvm. */
        char *guest_dir;
        char *default_kernel;
        char *default_initrd;
        /* The template builder and the agent it puts into Debian templates:
         * from the source and build trees when zvmd runs from its build tree,
         * else installed; $ZVM_MKTEMPLATE and $ZVM_AGENT override. */
        char *mktemplate;
        char *agent_binary;
        /* zvm-mkmodel (daemon/tools), likewise; $ZVM_MKMODEL overrides. */
        char *mkmodel;
} Paths;

int paths_init(Paths *p, const char *root);
void paths_done(Paths *p);
int paths_mkdirs(const Paths *p);

/* Resolves a template name to its image: <data>/templates/<name>.img, then
 * the guest dir's rootfs-<name>.img (build tree) or templates/<name>.img
 * (installed). -ENOENT if none exists. */
int paths_template_image(const Paths *p, const char *name, char **ret);

/* Removes what writers killed mid-write left (lib/fileio's ".#" temporaries)
 * in zvmd's own files: etc (tokens.conf), each VM's run and data dir, the
 * data dir (ssh_known_hosts), and the VM configs whose per-VM lock
 * (<etc>/vms/.<vmid>.lock, vm_save_config) no other tool holds. Call with
 * zvmd's lock held, before anything is loaded. Returns how many. */
int paths_sweep_temporaries(const Paths *p);
char *paths_vm_run_dir(const Paths *p, uint32_t vmid);
char *paths_vm_data_dir(const Paths *p, uint32_t vmid);
