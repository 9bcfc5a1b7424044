/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli-sshkeys.h"
#include "fd-util.h"
#include "fileio.h"
#include "log.h"
#include "ssh-key.h"
#include "string-util.h"

extern char **environ;

int cli_sshkeys_add_file(const char *file, bool explicit, char **text) {
        _cleanup_free_ char *data = NULL;
        char *line, *save = NULL;
        int r;

        r = read_full_file(file, &data, NULL, 64 * 1024);
        if (r < 0)
                return explicit ? log_error_errno(r, "--ssh-key %s: %m", file) : 0;
        for (line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                const char *reason = NULL;
                char *t;

                line = strstrip(line);
                if (isempty(line) || line[0] == '#')
                        continue;
                if (ssh_pubkey_check(line, &reason) < 0) {
                        if (explicit)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "--ssh-key %s: %s", file, reason);
                        log_notice("Skipping %s: %s", file, reason);
                        continue;
                }
                t = strjoin(strempty(*text), line, "\n");
                if (!t)
                        return log_oom();
                free(*text);
                *text = t;
        }
        return 0;
}

/* ~/.ssh/ *.pub, sorted (glob's order). */
static int user_key_files(glob_t *g) {
        _cleanup_free_ char *pattern = NULL;
        const char *home = getenv("HOME");

        *g = (glob_t) {};
        if (isempty(home))
                return 0;
        pattern = strjoin(home, "/.ssh/*.pub");
        if (!pattern)
                return log_oom();
        (void) glob(pattern, 0, NULL, g);
        return 0;
}

int cli_sshkeys_own_path(char **ret) {
        const char *data = getenv("XDG_DATA_HOME"), *home = getenv("HOME");

        if (!isempty(data) && data[0] == '/')
                *ret = strjoin(data, "/zvm/ssh/id_ed25519");
        else if (!isempty(home))
                *ret = strjoin(home, "/.local/share/zvm/ssh/id_ed25519");
        else
                return log_error_errno(SYNTHETIC_ERRNO(ENOENT), "HOME is not set: no place for zvm's ssh key");
        return *ret ? 0 : log_oom();
}

/* Runs ssh-keygen for a passphrase-less ed25519 key at path. */
static int own_key_make(const char *path) {
        _cleanup_free_ char *dir = strdup(path);
        char host[256] = "host", *slash;
        const char *user = getenv("USER");
        _cleanup_free_ char *comment = NULL;
        posix_spawn_file_actions_t fa;
        pid_t pid;
        int r, status;

        if (!dir)
                return log_oom();
        slash = strrchr(dir, '/');
        *slash = '\0';
        r = mkdir_p(dir, 0700);
        if (r < 0)
                return log_error_errno(r, "Cannot create %s: %m", dir);
        (void) gethostname(host, sizeof(host) - 1);
        comment = strjoin("zvm key of ", isempty(user) ? "user" : user, "@", host);
        if (!comment)
                return log_oom();

        const char *argv[] = { "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path, NULL };
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        r = posix_spawnp(&pid, "ssh-keygen", &fa, NULL, (char *const *) argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return log_error_errno(-r, "Cannot run ssh-keygen to make zvm's ssh key: %m (install openssh-client)");
        /* ssh-keygen makes an ed25519 key in milliseconds and never prompts
         * here (-N "" -q, stdin closed): waiting for it is bounded. */
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return log_error_errno(-errno, "waitpid: %m");
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return log_error_errno(SYNTHETIC_ERRNO(EIO), "ssh-keygen failed to make %s", path);
        log_notice("No ~/.ssh/*.pub: made an ssh key for your VMs, %s; zvm ssh uses it", path);
        return 0;
}

/* The public half of zvm's own key, made first if needed. */
static int own_key_public(char **ret) {
        _cleanup_free_ char *path = NULL, *pub = NULL;
        int r;

        r = cli_sshkeys_own_path(&path);
        if (r < 0)
                return r;
        pub = strjoin(path, ".pub");
        if (!pub)
                return log_oom();
        if (access(path, F_OK) < 0 || access(pub, F_OK) < 0) {
                if (access(path, F_OK) == 0 || access(pub, F_OK) == 0)
                        return log_error_errno(SYNTHETIC_ERRNO(EEXIST), "%s or %s is missing; remove the other "
                                               "to make a new key, or give one with --ssh-key", path, pub);
                r = own_key_make(path);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(pub);
        return 0;
}

int cli_sshkeys_add_default(char **text) {
        _cleanup_free_ char *own = NULL;
        glob_t g;
        int r;

        r = user_key_files(&g);
        for (size_t i = 0; r >= 0 && i < g.gl_pathc; i++)
                r = cli_sshkeys_add_file(g.gl_pathv[i], false, text);
        globfree(&g);
        if (r < 0 || *text || isempty(getenv("HOME")))
                return r;
        r = own_key_public(&own);
        if (r < 0)
                return r;
        return cli_sshkeys_add_file(own, true, text);
}

int cli_sshkeys_default_file(char **ret) {
        glob_t g;
        int r;

        r = user_key_files(&g);
        if (r >= 0 && g.gl_pathc > 0) {
                *ret = strdup(g.gl_pathv[0]);
                globfree(&g);
                return *ret ? 0 : log_oom();
        }
        globfree(&g);
        if (r < 0)
                return r;
        return own_key_public(ret);
}
