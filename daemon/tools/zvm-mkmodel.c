/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * zvm-mkmodel: GGUF model files and model disks, for people and for zvmd
 * (which runs it as an asynchronous child for POST /models).
 *
 *   zvm-mkmodel generate --shape S --quant q8_0|q4_0 [--seed N] OUT.gguf
 *   zvm-mkmodel inspect FILE
 *   zvm-mkmodel disk FILE STORE_DIR
 *
 * The contract with a caller (README.md): one JSON object on stdout on
 * success and nothing else there; "progress N% PHASE" lines and, on failure,
 * one "zvm-mkmodel: reason" line on stderr; the exit status says whose fault
 * it was (EXIT_* below). SIGINT/SIGTERM/SIGHUP are blocked and read from a
 * signalfd between chunks of work, so every temporary file and child is
 * cleaned up before the process exits with 128+signal.
 */

#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "fd-util.h"
#include "fileio.h"
#include "gguf-gen.h"
#include "gguf.h"
#include "log.h"
#include "macro.h"
#include "mkmodel.h"
#include "string-util.h"

extern char **environ;

static int sig_fd = -EBADF;
int caught_signal;

/* ---- signals, progress, exit codes -------------------------------------- */

static int signals_block(void) {
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &ss, NULL) < 0)
                return -errno;
        sig_fd = signalfd(-1, &ss, SFD_CLOEXEC | SFD_NONBLOCK);
        return sig_fd < 0 ? -errno : 0;
}

int sig_fd_get(void) {
        return sig_fd;
}

/* -EINTR once a terminating signal arrived (remembered in caught_signal). */
int check_signal(void) {
        struct signalfd_siginfo si;
        if (caught_signal)
                return -EINTR;
        if (read(sig_fd, &si, sizeof(si)) == (ssize_t) sizeof(si)) {
                caught_signal = (int) si.ssi_signo;
                return -EINTR;
        }
        return 0;
}

/* A new phase is announced at once, so a caller sees it start. */
void progress_phase(Progress *p, uint64_t total, unsigned base, unsigned span, const char *phase) {
        *p = (Progress) { .total = total, .base = base, .span = span, .phase = phase, .last = MAX(p->last, (int) base) };
        if (total >= PROGRESS_MIN) {
                fprintf(stderr, "progress %d%% %s\n", p->last, phase);
                fflush(stderr);
        }
}

int progress_update(Progress *p, uint64_t done) {
        if (p->total >= PROGRESS_MIN) {
                int pct = (int) (p->base + p->span * MIN(done, p->total) / p->total);
                if (pct > p->last) {
                        fprintf(stderr, "progress %d%% %s\n", pct, p->phase);
                        fflush(stderr);
                        p->last = pct;
                }
        }
        return check_signal();
}

static int progress_cb(uint64_t done, uint64_t total, void *userdata) {
        return progress_update(userdata, done);
}

int exit_status(int r) {
        if (caught_signal)
                return 128 + caught_signal;
        if (r == -ENOSPC || r == -EDQUOT)
                return EXIT_NO_SPACE;
        return EXIT_SYSTEM;
}

/* ---- JSON ---------------------------------------------------------------- */

int json_add(json_object *o, const char *key, json_object *v) {
        if (!v || json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

int json_add_str(json_object *o, const char *key, const char *s) {
        return json_add(o, key, s ? json_object_new_string(s) : json_object_new_null());
}

int json_add_u64(json_object *o, const char *key, uint64_t v) {
        return json_add(o, key, json_object_new_uint64(v));
}

int info_to_json(const GgufInfo *info, json_object **ret) {
        json_object *o = json_object_new_object();
        int r = 0;

        if (!o)
                return -ENOMEM;
        r |= json_add_str(o, "architecture", info->architecture);
        r |= json_add_str(o, "name", info->name);
        r |= json_add_u64(o, "params", info->n_params);
        r |= json_add_str(o, "quant", info->quant);
        r |= json_add(o, "file_type", json_object_new_int64(info->file_type));
        r |= json_add_u64(o, "context_length", info->context_length);
        r |= json_add_u64(o, "vocab_size", info->vocab_size);
        r |= json_add_u64(o, "embedding_length", info->embedding_length);
        r |= json_add_u64(o, "block_count", info->block_count);
        r |= json_add_u64(o, "feed_forward_length", info->feed_forward_length);
        r |= json_add_u64(o, "head_count", info->head_count);
        r |= json_add_u64(o, "head_count_kv", info->head_count_kv);
        r |= json_add_str(o, "tokenizer", info->tokenizer);
        r |= json_add_u64(o, "tensors", info->n_tensors);
        r |= json_add_u64(o, "gguf_version", info->version);
        r |= json_add_u64(o, "size", info->file_size);
        r |= json_add(o, "generated", json_object_new_boolean(info->generated));
        if (info->generated) {
                r |= json_add_str(o, "shape", info->generated_shape);
                r |= json_add_u64(o, "seed", info->generated_seed);
        }
        if (r != 0) {
                json_object_put(o);
                return -ENOMEM;
        }
        *ret = o;
        return 0;
}

int print_json(json_object *o) {
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
                return log_oom();
        if (printf("%s\n", s) < 0 || fflush(stdout) != 0)
                return log_error_errno(-EIO, "Failed to write to stdout: %m");
        return 0;
}

/* Opens and validates a GGUF: 0, or (logged) EXIT_BAD_INPUT / EXIT_SYSTEM. */
int open_model(const char *path, int *ret_fd, GgufInfo **ret_info) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *why = NULL;
        GgufInfo *info = NULL;
        int r;

        /* O_NONBLOCK: a FIFO or device must not hang us; gguf_read_fd() refuses them. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                log_error_errno(-errno, "%s: %m", path);
                return errno == ENOENT || errno == EACCES ? EXIT_BAD_INPUT : EXIT_SYSTEM;
        }
        r = gguf_read_fd(fd, &info, &why);
        if (r == -ENOMEM)
                return log_oom(), EXIT_SYSTEM;
        if (r < 0) {
                if (why)
                        log_error("%s: %s", path, why);
                else
                        log_error_errno(r, "%s: %m", path);
                return EXIT_BAD_INPUT;
        }
        if (ret_fd)
                *ret_fd = TAKE_FD(fd);
        *ret_info = info;
        return 0;
}

/* ---- inspect ------------------------------------------------------------- */

/* Validates path and prints its metadata: an exit status. */
static int print_model(const char *path) {
        _cleanup_gguf_info_free_ GgufInfo *info = NULL;
        json_object *o = NULL;
        int r;

        r = open_model(path, NULL, &info);
        if (r != 0)
                return r;
        if (info_to_json(info, &o) < 0)
                return log_oom(), EXIT_SYSTEM;
        r = print_json(o);
        json_object_put(o);
        return r < 0 ? EXIT_SYSTEM : EXIT_OK;
}

static int verb_inspect(int argc, char **argv) {
        if (argc != 2) {
                log_error("usage: zvm-mkmodel inspect FILE");
                return EXIT_USAGE;
        }
        return print_model(argv[1]);
}

/* ---- files that must not outlive a failure ------------------------------ */

void leftovers_remove(Leftovers *l) {
        if (l->tmp_file)
                (void) unlink(l->tmp_file);
        if (l->staged_file)
                (void) unlink(l->staged_file);
        if (l->staging_dir)
                (void) rmdir(l->staging_dir);
        l->tmp_file = mfree(l->tmp_file);
        l->staged_file = mfree(l->staged_file);
        l->staging_dir = mfree(l->staging_dir);
}

int fsync_dir_of(const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        _cleanup_close_ int fd = -EBADF;
        if (!copy)
                return -ENOMEM;
        fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0)
                return -errno;
        return 0;
}

/* mkostemp() for "<dir of path>/.<base of path><suffix>.XXXXXX". */
int make_tmp(const char *dir, const char *base, char **ret_path, int *ret_fd) {
        _cleanup_free_ char *p = NULL;
        int fd;

        if (asprintf(&p, "%s/.%s.XXXXXX", dir, base) < 0)
                return -ENOMEM;
        fd = mkostemp(p, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        *ret_fd = fd;
        *ret_path = TAKE_PTR(p);
        return 0;
}

int check_space(const char *dir, uint64_t need) {
        struct statvfs sv;
        if (statvfs(dir, &sv) < 0)
                return -errno;
        if ((uint64_t) sv.f_bavail * sv.f_frsize < need)
                return log_error_errno(SYNTHETIC_ERRNO(ENOSPC), "Not enough space in %s: %llu bytes needed, %llu free.",
                                       dir, (unsigned long long) need,
                                       (unsigned long long) sv.f_bavail * sv.f_frsize);
        return 0;
}

/* ---- generate ------------------------------------------------------------ */

static int generate(const char *out, const GgufShape *shape, GgufQuant quant, uint64_t seed, Leftovers *l) {
        _cleanup_free_ char *dcopy = strdup(out), *bcopy = strdup(out);
        _cleanup_close_ int fd = -EBADF;
        Progress p = { .last = -1 };
        const char *dir, *base;
        uint64_t size;
        int r;

        if (!dcopy || !bcopy)
                return log_oom();
        dir = dirname(dcopy);
        base = basename(bcopy);
        r = gguf_generate_size(shape, quant, &size);
        if (r < 0)
                return log_error_errno(r, "Failed to plan the model: %m");
        r = check_space(dir, size);
        if (r < 0)
                return r;
        r = make_tmp(dir, base, &l->tmp_file, &fd);
        if (r < 0)
                return log_error_errno(r, "Failed to create a temporary file next to %s: %m", out);
        progress_phase(&p, size, 0, 100, "writing");
        r = gguf_generate_fd(fd, shape, quant, seed, progress_cb, &p);
        if (r == -EINTR)
                return r;
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", out);
        if (fchmod(fd, 0644) < 0 || fsync(fd) < 0)
                return log_error_errno(-errno, "Failed to write %s: %m", out);
        r = check_signal();
        if (r < 0)
                return r;
        if (rename(l->tmp_file, out) < 0)
                return log_error_errno(-errno, "Failed to rename to %s: %m", out);
        l->tmp_file = mfree(l->tmp_file);
        r = fsync_dir_of(out);
        if (r < 0)
                log_warning_errno(r, "Failed to sync the directory of %s, ignoring: %m", out);
        return 0;
}

static int verb_generate(int argc, char **argv) {
        static const struct option options[] = {
                { "shape", required_argument, NULL, 's' },
                { "quant", required_argument, NULL, 'q' },
                { "seed", required_argument, NULL, 'S' },
                {}
        };
        _cleanup_free_ char *why = NULL;
        const char *shape_arg = NULL, *quant_arg = "q8_0";
        Leftovers l = {};
        GgufShape shape;
        GgufQuant quant;
        uint64_t seed = 0;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 's': shape_arg = optarg; break;
                case 'q': quant_arg = optarg; break;
                case 'S':
                        if (safe_atou64(optarg, &seed) < 0) {
                                log_error("--seed: '%s' is not a number", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                default: return EXIT_USAGE;
                }
        if (!shape_arg || optind != argc - 1) {
                log_error("usage: zvm-mkmodel generate --shape S [--quant q8_0|q4_0] [--seed N] OUT.gguf");
                return EXIT_USAGE;
        }
        if (gguf_shape_parse(shape_arg, &shape, &why) < 0) {
                log_error("%s", why ?: "invalid shape");
                return EXIT_BAD_INPUT;
        }
        quant = gguf_quant_from_string(quant_arg);
        if (quant < 0) {
                log_error("--quant: '%s' is neither q8_0 nor q4_0", quant_arg);
                return EXIT_BAD_INPUT;
        }
        r = generate(argv[optind], &shape, quant, seed, &l);
        leftovers_remove(&l);
        if (r < 0)
                return exit_status(r);
        /* Read back through the validating reader: what we print is what
         * the store will see (a refusal here is our bug, not the input's). */
        r = print_model(argv[optind]);
        return r == EXIT_OK ? r : EXIT_SYSTEM;
}

typedef struct Verb {
        const char *name;
        int (*run)(int argc, char **argv);
} Verb;

static const Verb verbs[] = {
        { "generate", verb_generate },
        { "inspect", verb_inspect },
        { "disk", verb_disk },
};

int main(int argc, char **argv) {
        int r;

        log_setup_from_env();
        if (argc < 2 || streq(argv[1], "--help") || streq(argv[1], "-h")) {
                fprintf(argc < 2 ? stderr : stdout,
                        "usage: zvm-mkmodel generate --shape S [--quant q8_0|q4_0] [--seed N] OUT.gguf\n"
                        "       zvm-mkmodel inspect FILE\n"
                        "       zvm-mkmodel disk FILE STORE_DIR\n"
                        "shapes: tiny, qwen2.5-0.5b, qwen2.5-1.5b, llama3.2-1b,\n"
                        "        custom:vocab=N,embd=N,layers=N,heads=N,kv_heads=N,ffn=N[,ctx=N][,tied=0|1]\n");
                return argc < 2 ? EXIT_USAGE : EXIT_OK;
        }
        r = signals_block();
        if (r < 0) {
                log_error_errno(r, "Failed to set up signal handling: %m");
                return EXIT_SYSTEM;
        }
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(argv[1], verbs[i].name))
                        return verbs[i].run(argc - 1, argv + 1);
        log_error("unknown verb '%s' (generate, inspect, disk)", argv[1]);
        return EXIT_USAGE;
}
