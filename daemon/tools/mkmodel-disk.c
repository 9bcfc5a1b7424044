/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * zvm-mkmodel disk FILE STORE_DIR: a content-addressed, read-only ext4 model
 * disk STORE_DIR/<sha256>.img holding FILE as /model.gguf.
 *
 * The file is staged in STORE_DIR/.staging-XXXXXX: hard-linked (same
 * filesystem; the link is made from the open descriptor, so it is the inode
 * we validated) or else copied while hashing. The sha256 is of the staged
 * bytes: for a link, the inode's ctime is checked unchanged from before
 * hashing until the image is complete (a write or a utimes() in between
 * fails the build); a copy is our own file, hashed twice (source, then while
 * copying) and refused when the hashes differ. mkfs.ext4 -d writes the image
 * (no mounts) into a preallocated temporary file, so a full disk fails at
 * once; debugfs makes /model.gguf root-owned 0444 and marks the filesystem
 * read-only; the image appears by rename only.
 */

#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "fd-util.h"
#include "fileio.h"
#include "gguf.h"
#include "log.h"
#include "macro.h"
#include "mkmodel.h"
#include "string-util.h"

#define OUTPUT_TAIL 2048

extern char **environ;

typedef struct Disk {
        const char *path;
        char *store;            /* absolute: the JSON's "image" is a path anyone can use */
        int fd;                 /* the source file */
        bool linked;
        struct stat st;         /* source after linking, for the change check */
        char sha[2 * 32 + 1];
        char *image;            /* STORE/<sha>.img */
        uint64_t image_size;
        bool reused;
        Progress p;
        Leftovers l;
        GgufInfo *info;         /* of the staged file */
} Disk;

static void disk_done(Disk *d) {
        leftovers_remove(&d->l);
        safe_close(d->fd);
        free(d->image);
        free(d->store);
        gguf_info_free(d->info);
}

static void hex(const unsigned char *md, char out[static 65]) {
        for (unsigned i = 0; i < 32; i++)
                (void) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* sha256 of the whole of src; with dst >= 0 also copies it there. */
static int hash_copy(Disk *d, int src, int dst, char out[static 65]) {
        _cleanup_free_ uint8_t *buf = malloc(CHUNK);
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned md_len = 0;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        uint64_t done = 0;
        int r = 0;

        if (!buf || !ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
                EVP_MD_CTX_free(ctx);
                return -ENOMEM;
        }
        for (;;) {
                ssize_t n = pread(src, buf, CHUNK, (off_t) done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = log_error_errno(-errno, "Failed to read %s: %m", d->path);
                        break;
                }
                if (n == 0)
                        break;
                if (EVP_DigestUpdate(ctx, buf, (size_t) n) != 1) {
                        r = -ENOMEM;
                        break;
                }
                if (dst >= 0) {
                        r = loop_write(dst, buf, (size_t) n, false);
                        if (r < 0) {
                                log_error_errno(r, "Failed to copy %s into %s: %m", d->path, d->store);
                                break;
                        }
                }
                done += (uint64_t) n;
                r = progress_update(&d->p, done);
                if (r < 0)
                        break;
        }
        if (r >= 0 && EVP_DigestFinal_ex(ctx, md, &md_len) != 1)
                r = -ENOMEM;
        EVP_MD_CTX_free(ctx);
        if (r < 0)
                return r;
        hex(md, out);
        return 0;
}

/* Hard link of the open source into a fresh staging directory, when the
 * store is on the same filesystem; else an empty staging directory. */
static int stage(Disk *d) {
        _cleanup_free_ char *proc = NULL;

        if (asprintf(&d->l.staging_dir, "%s/.staging-XXXXXX", d->store) < 0)
                return log_oom();
        if (!mkdtemp(d->l.staging_dir)) {
                d->l.staging_dir = mfree(d->l.staging_dir);
                return log_error_errno(-errno, "Failed to create a staging directory in %s: %m", d->store);
        }
        if (asprintf(&d->l.staged_file, "%s/" MODEL_NAME, d->l.staging_dir) < 0 ||
            asprintf(&proc, "/proc/self/fd/%d", d->fd) < 0)
                return log_oom();
        d->linked = linkat(AT_FDCWD, proc, AT_FDCWD, d->l.staged_file, AT_SYMLINK_FOLLOW) == 0;
        if (!d->linked)
                log_debug_errno(-errno, "Cannot hard-link %s into %s (%m), copying it.", d->path, d->store);
        if (d->linked && fstat(d->fd, &d->st) < 0)
                return log_error_errno(-errno, "Failed to stat %s: %m", d->path);
        return 0;
}

static int copy_in(Disk *d) {
        _cleanup_close_ int dst = -EBADF;
        char sha2[65];
        int r;

        dst = open(d->l.staged_file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0444);
        if (dst < 0)
                return log_error_errno(-errno, "Failed to create %s: %m", d->l.staged_file);
        progress_phase(&d->p, d->info->file_size, 33, 33, "copying");
        r = hash_copy(d, d->fd, dst, sha2);
        if (r < 0)
                return r;
        if (!streq(sha2, d->sha))
                return log_error_errno(SYNTHETIC_ERRNO(EBUSY), "%s changed while it was being added.", d->path);
        return 0;
}

static bool same_stat(const struct stat *a, const struct stat *b) {
        return a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
               a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
               a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Bytes the child has written so far (its /proc/PID/io wchar), for progress. */
static uint64_t child_written(pid_t pid) {
        char path[64], buf[512], *p;
        _cleanup_close_ int fd = -EBADF;
        ssize_t n;

        (void) snprintf(path, sizeof(path), "/proc/%d/io", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || (n = read(fd, buf, sizeof(buf) - 1)) <= 0)
                return 0;
        buf[n] = 0;
        p = strstr(buf, "wchar: ");
        return p ? strtoull(p + 7, NULL, 10) : 0;
}

/* Waits for pid, printing progress and honouring signals (the child is
 * killed and reaped). Returns its wait status or -errno/-EINTR/-ETIMEDOUT. */
static int wait_child(Disk *d, pid_t pid) {
        _cleanup_close_ int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        struct timespec start, now;
        int status, r = 0;

        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                struct pollfd fds[2] = { { .fd = pidfd, .events = POLLIN }, { .fd = -1, .events = POLLIN } };
                pid_t w = waitpid(pid, &status, WNOHANG);
                if (w == pid) {
                        (void) progress_update(&d->p, d->p.total);
                        return status;
                }
                if (w < 0)
                        return -errno;
                r = progress_update(&d->p, child_written(pid));
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (r >= 0 && (now.tv_sec - start.tv_sec) * 1000 > CHILD_TIMEOUT_MS)
                        r = -ETIMEDOUT;
                if (r < 0)
                        break;
                /* The signalfd wakes us for a signal; without a pidfd (old
                 * kernel) the 500 ms timeout bounds the exit latency. */
                fds[1].fd = sig_fd_get();
                if (poll(fds, 2, 500) < 0 && errno != EINTR) {
                        r = -errno;
                        break;
                }
        }
        (void) kill(pid, SIGKILL);
        (void) waitpid(pid, &status, 0);
        return r;
}

/* Runs argv (stdin from in_fd or /dev/null, stdout+stderr kept in a memfd);
 * 0 when it exited 0, else logged -EIO with the end of its output. */
static int run(Disk *d, const char *const *argv, int in_fd) {
        _cleanup_close_ int out = memfd_create("mkmodel-child", MFD_CLOEXEC);
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t none, deflt;
        char tail[OUTPUT_TAIL + 1];
        off_t end;
        ssize_t n;
        pid_t pid;
        int r;

        if (out < 0)
                return log_error_errno(-errno, "memfd_create: %m");
        sigemptyset(&none);
        sigemptyset(&deflt);
        sigaddset(&deflt, SIGINT);
        sigaddset(&deflt, SIGTERM);
        sigaddset(&deflt, SIGHUP);
        posix_spawn_file_actions_init(&fa);
        posix_spawnattr_init(&attr);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setsigdefault(&attr, &deflt);
        if (in_fd >= 0)
                posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
        else
                posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, out, 1);
        posix_spawn_file_actions_adddup2(&fa, out, 2);
        r = posix_spawn(&pid, argv[0], &fa, &attr, (char *const *) argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (r != 0)
                return log_error_errno(-r, "Failed to run %s: %m", argv[0]);
        r = wait_child(d, pid);
        if (r < 0)
                return r == -EINTR ? r : log_error_errno(r, "Waiting for %s failed: %m", argv[0]);

        end = lseek(out, 0, SEEK_END);
        n = pread(out, tail, OUTPUT_TAIL, MAX(end - OUTPUT_TAIL, (off_t) 0));
        tail[MAX(n, (ssize_t) 0)] = 0;
        if (!WIFEXITED(r) || WEXITSTATUS(r) != 0)
                return log_error_errno(strstr(tail, "No space left") ? -ENOSPC : -EIO,
                                       "%s failed (status 0x%x): %s", argv[0], (unsigned) r, strstrip(tail));
        /* debugfs reports a failed command on its output and still exits 0:
         * only its echo of each command ("debugfs: …") and the feature
         * list that "feature" prints may be there. */
        if (in_fd >= 0)
                for (char *line = strtok(tail, "\n"); line; line = strtok(NULL, "\n"))
                        if (!startswith(line, "debugfs") && !startswith(line, "Filesystem features:"))
                                return log_error_errno(SYNTHETIC_ERRNO(EIO), "%s: %s", argv[0], line);
        return 0;
}

static int build_image(Disk *d, const char *tmp, int tmp_fd) {
        static const char fixup[] = "sif /" MODEL_NAME " mode 0100444\n"
                                    "sif /" MODEL_NAME " uid 0\n"
                                    "sif /" MODEL_NAME " gid 0\n"
                                    "feature read-only\n";
        _cleanup_free_ char *mkfs = find_executable("mkfs.ext4"), *debugfs = find_executable("debugfs");
        _cleanup_close_ int cmds = memfd_create("mkmodel-debugfs", MFD_CLOEXEC);
        int r;

        if (!mkfs || !debugfs)
                return log_error_errno(SYNTHETIC_ERRNO(ENOENT), "mkfs.ext4 and debugfs (e2fsprogs) are needed.");
        /* Preallocated: a full disk fails here, not halfway through mkfs. */
        r = posix_fallocate(tmp_fd, 0, (off_t) d->image_size);
        if (r == EOPNOTSUPP || r == EINVAL)
                r = ftruncate(tmp_fd, (off_t) d->image_size) < 0 ? errno : 0;
        if (r != 0)
                return log_error_errno(-r, "Failed to allocate %llu bytes for the image in %s: %m",
                                       (unsigned long long) d->image_size, d->store);
        progress_phase(&d->p, d->info->file_size, d->linked ? 50 : 66, d->linked ? 50 : 34, "writing image");
        r = run(d, (const char *const[]) { mkfs, "-q", "-F", "-L", IMAGE_LABEL,
                                     "-m", "0", "-N", "16", "-b",
                                     "4096", "-O", "^has_journal,^resize_inode",
                                     "-E", "root_owner=0:0,nodiscard", "-d",
                                     d->l.staging_dir, tmp, NULL }, -EBADF);
        if (r < 0)
                return r;
        if (cmds < 0 || loop_write(cmds, fixup, strlen(fixup), false) < 0 || lseek(cmds, 0, SEEK_SET) < 0)
                return log_error_errno(-errno, "Failed to prepare the debugfs commands: %m");
        r = run(d, (const char *const[]) { debugfs, "-w", "-f", "-", tmp, NULL }, cmds);
        if (r < 0)
                return r;
        if (fchmod(tmp_fd, 0444) < 0 || fsync(tmp_fd) < 0)
                return log_error_errno(-errno, "Failed to write %s: %m", tmp);
        return 0;
}

static int make_image(Disk *d) {
        _cleanup_close_ int tmp_fd = -EBADF, staged = -EBADF;
        _cleanup_free_ char *why = NULL, *base = NULL;
        struct stat st;
        int r;

        staged = open(d->l.staged_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (staged < 0)
                return log_error_errno(-errno, "Failed to open %s: %m", d->l.staged_file);
        d->info = gguf_info_free(d->info);
        r = gguf_read_fd(staged, &d->info, &why);
        if (r < 0)
                return log_error_errno(SYNTHETIC_ERRNO(EBUSY), "%s changed while it was being added: %s",
                                       d->path, why ?: "unreadable");
        d->image_size = (d->info->file_size + d->info->file_size / 128 + 4 * 1024 * 1024 + 4095) / 4096 * 4096;
        r = check_space(d->store, d->image_size);
        if (r < 0)
                return r;
        if (asprintf(&base, "%s.img", d->sha) < 0)
                return log_oom();
        r = make_tmp(d->store, base, &d->l.tmp_file, &tmp_fd);
        if (r < 0)
                return log_error_errno(r, "Failed to create a temporary image in %s: %m", d->store);
        r = build_image(d, d->l.tmp_file, tmp_fd);
        if (r < 0)
                return r;
        if (d->linked && (fstat(d->fd, &st) < 0 || !same_stat(&st, &d->st)))
                return log_error_errno(SYNTHETIC_ERRNO(EBUSY), "%s changed while it was being added.", d->path);
        r = check_signal();
        if (r < 0)
                return r;
        if (renameat2(AT_FDCWD, d->l.tmp_file, AT_FDCWD, d->image, RENAME_NOREPLACE) < 0) {
                if (errno != EEXIST)
                        return log_error_errno(-errno, "Failed to rename the image to %s: %m", d->image);
                d->reused = true;   /* a concurrent run made the same image first */
        } else
                d->l.tmp_file = mfree(d->l.tmp_file);
        r = fsync_dir_of(d->image);
        if (r < 0)
                log_warning_errno(r, "Failed to sync %s, ignoring: %m", d->store);
        return 0;
}

static int disk_output(Disk *d) {
        json_object *o = NULL;
        struct stat st;
        int r;

        if (stat(d->image, &st) < 0)
                return log_error_errno(-errno, "%s: %m", d->image);
        r = info_to_json(d->info, &o);
        if (r >= 0)
                r = json_add_str(o, "sha256", d->sha);
        if (r >= 0)
                r = json_add_str(o, "image", d->image);
        if (r >= 0)
                r = json_add_u64(o, "image_size", (uint64_t) st.st_size);
        if (r >= 0)
                r = json_add(o, "reused", json_object_new_boolean(d->reused));
        if (r < 0) {
                json_object_put(o);
                return log_oom();
        }
        r = print_json(o);
        json_object_put(o);
        return r;
}

static int disk(Disk *d) {
        struct stat st;
        char *resolved;
        int r;

        r = mkdir_p(d->store, 0755);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", d->store);
        resolved = realpath(d->store, NULL);
        if (!resolved)
                return log_error_errno(-errno, "%s: %m", d->store);
        free(d->store);
        d->store = resolved;
        r = stage(d);
        if (r < 0)
                return r;
        progress_phase(&d->p, d->info->file_size, 0, d->linked ? 50 : 33, "hashing");
        r = hash_copy(d, d->fd, -EBADF, d->sha);
        if (r < 0)
                return r;
        if (asprintf(&d->image, "%s/%s.img", d->store, d->sha) < 0)
                return log_oom();
        if (stat(d->image, &st) == 0 && S_ISREG(st.st_mode)) {
                d->reused = true;
                leftovers_remove(&d->l);
                return disk_output(d);
        }
        if (!d->linked) {
                r = copy_in(d);
                if (r < 0)
                        return r;
        }
        r = make_image(d);
        if (r < 0)
                return r;
        leftovers_remove(&d->l);
        return disk_output(d);
}

int verb_disk(int argc, char **argv) {
        Disk d = { .fd = -EBADF, .p.last = -1 };
        int r;

        if (argc != 3) {
                log_error("usage: zvm-mkmodel disk FILE STORE_DIR");
                return EXIT_USAGE;
        }
        d.path = argv[1];
        d.store = strdup(argv[2]);
        if (!d.store)
                return log_oom(), EXIT_SYSTEM;
        r = open_model(d.path, &d.fd, &d.info);
        if (r != 0)
                return r;
        r = disk(&d);
        disk_done(&d);
        if (r == -EBUSY)
                return EXIT_BAD_INPUT;
        return r < 0 ? exit_status(r) : EXIT_OK;
}
