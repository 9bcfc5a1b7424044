/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A stand-in for libFuzzer's main() in builds without clang: runs the
 * harness once over each file given, or each file in each directory given
 * (one level), so that every corpus is replayed by the normal and the
 * ASan build's test suite. Exits non-zero if a file cannot be read; a
 * violated property aborts as under libFuzzer.
 */
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

#include "fd-util.h"
#include "fuzz.h"

/* Corpus files are small; libFuzzer's default -max_len is 4096 and we keep
 * some seeds bigger than that, but never near this. */
#define REPLAY_FILE_MAX (64U * 1024U * 1024U)

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv) {
        return 0;
}

static int replay_file(const char *path) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        int r;

        r = read_full_file(path, &buf, &size, REPLAY_FILE_MAX);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(-r));
                return r;
        }
        (void) LLVMFuzzerTestOneInput((const uint8_t *) buf, size);
        return 0;
}

static int replay_dir(const char *path, unsigned *count) {
        struct dirent **names = NULL;
        int n, r = 0;

        /* Sorted, so that a failure names the same file every time. */
        n = scandir(path, &names, NULL, alphasort);
        if (n < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -errno;
        }
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *p = NULL;
                struct stat st;

                if (names[i]->d_name[0] != '.' && asprintf(&p, "%s/%s", path, names[i]->d_name) >= 0 &&
                    stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
                        if (replay_file(p) < 0)
                                r = -EIO;
                        (*count)++;
                }
                free(names[i]);
        }
        free(names);
        return r;
}

int main(int argc, char *argv[]) {
        unsigned count = 0;
        int r = 0;

        (void) LLVMFuzzerInitialize(&argc, &argv);
        for (int i = 1; i < argc; i++) {
                struct stat st;

                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
                        r = -ENOENT;
                } else if (S_ISDIR(st.st_mode)) {
                        if (replay_dir(argv[i], &count) < 0)
                                r = -EIO;
                } else {
                        if (replay_file(argv[i]) < 0)
                                r = -EIO;
                        count++;
                }
        }
        printf("replayed %u input(s)\n", count);
        if (count == 0) {
                fprintf(stderr, "no inputs: an empty corpus tests nothing\n");
                return EXIT_FAILURE;
        }
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
