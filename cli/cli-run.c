/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli-run.h"
#include "cli-http.h"
#include "cli-util.h"
#include "cli-vm.h"
#include "log.h"
#include "string-util.h"
#include "time-util.h"

static const char *json_str(json_object *o, const char *key) {
        json_object *v;

        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ?
                json_object_get_string(v) : NULL;
}

static bool has_gguf_suffix(const char *s) {
        size_t l = strlen(s);

        return l > 5 && streq(s + l - 5, ".gguf");
}

/* A path names a file to add; anything else names a model of the store. */
static bool run_model_is_file(const char *m) {
        struct stat st;

        return (strchr(m, '/') || has_gguf_suffix(m)) && stat(m, &st) >= 0 && S_ISREG(st.st_mode);
}

/* Adds FILE to the model store as `zvm model add FILE --name NAME` does,
 * by running that verb (its upload, progress and cancellation are its
 * own), with the same endpoint options. Ctrl-C reaches it too (same
 * process group): it cancels the add and exits; we wait for that. */
static int run_model_add(const Cli *cli, const char *file, const char *name) {
        const char *argv[12];
        size_t n = 0;
        int status;
        pid_t pid;

        argv[n++] = "zvm";
        argv[n++] = cli->url ? "--url" : "--socket";
        argv[n++] = cli->url ?: cli->socket_path;
        argv[n++] = "model";
        argv[n++] = "add";
        argv[n++] = file;
        argv[n++] = "--name";
        argv[n++] = name;
        argv[n] = NULL;

        pid = fork();
        if (pid < 0)
                return log_error_errno(errno, "failed to fork: %m");
        if (pid == 0) {
                /* The token, if any, stays in the environment ($ZVM_TOKEN), off the command line. */
                if (cli->token)
                        (void) setenv("ZVM_TOKEN", cli->token, 1);
                /* Its "Model … is ready" is progress for run, like the
                 * rest: stdout stays the chat's (an answer, or --json's). */
                (void) dup2(STDERR_FILENO, STDOUT_FILENO);
                execv("/proc/self/exe", (char **) argv);
                _exit(127);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return log_error_errno(errno, "failed to wait for zvm model add: %m");
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return log_error_errno(SYNTHETIC_ERRNO(EIO), "adding %s to the model store failed", file);
        return 0;
}

/* "m.gguf" → "m": a store name ([A-Za-z0-9][A-Za-z0-9._-]*). */
static int run_model_name(const char *file, char **ret) {
        const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
        char *n = strndup(base, has_gguf_suffix(base) ? strlen(base) - 5 : strlen(base));

        if (!n)
                return log_oom();
        for (char *p = n; *p; p++)
                if (!(strchr("._-", *p) && p != n) && !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                                                         (*p >= '0' && *p <= '9')))
                        *p = '-';
        *ret = n;
        return 0;
}

static int run_create(const Cli *cli, const RunOptions *o, const char *model) {
        _cleanup_(json_object_putp) json_object *body = json_object_new_object();
        char mem[32], cores[16];

        (void) snprintf(mem, sizeof(mem), "%" PRIu64, o->memory_mib);
        (void) snprintf(cores, sizeof(cores), "%u", o->cores);
        if (!body ||
            cli_body_put(body, "name", json_object_new_string(o->name)) < 0 ||
            cli_body_put(body, "rootfs", json_object_new_string(o->template_name)) < 0 ||
            cli_body_put(body, "memory", json_object_new_int64((int64_t) o->memory_mib)) < 0 ||
            cli_body_put(body, "cores", json_object_new_int64(o->cores)) < 0 ||
            cli_body_put(body, "model", json_object_new_string(model)) < 0)
                return log_oom();
        return cli_http_call(cli, "POST", "/vms", body, NULL);
}

/* Until the VM's llama-server is ready: its status, every RUN_POLL_MS,
 * at most wait_sec; a crashed VM or a failed server ends it at once. */
static int run_wait_ready(const Cli *cli, const RunOptions *o, const volatile sig_atomic_t *stop) {
        _cleanup_free_ char *path = NULL;
        uint64_t t0 = now_usec(CLOCK_MONOTONIC), deadline = t0 + (uint64_t) o->wait_sec * 1000000U;
        const char *said = NULL;
        int r;

        r = cli_vm_path(o->name, "/status", &path);
        if (r < 0)
                return r;
        while (!*stop) {
                _cleanup_(json_object_putp) json_object *st = NULL;
                json_object *inf = NULL;
                const char *state, *istate = NULL, *phase;

                r = cli_http_call(cli, "GET", path, NULL, &st);
                if (r < 0)
                        return r;
                state = strempty(json_str(st, "state"));
                if (json_object_object_get_ex(st, "inference", &inf) && inf)
                        istate = json_str(inf, "state");
                if (streq(state, "crashed") || streq(state, "stopped"))
                        return log_error_errno(SYNTHETIC_ERRNO(EIO), "VM %s %s while starting (zvm logs %s)", o->name,
                                               state, o->name);
                if (streq_ptr(istate, "ready")) {
                        log_info("ready in %.0f s", (double) (now_usec(CLOCK_MONOTONIC) - t0) / 1e6);
                        return 0;
                }
                if (streq_ptr(istate, "failed") || streq_ptr(istate, "gone"))
                        return log_error_errno(SYNTHETIC_ERRNO(EIO), "llama-server in VM %s failed: %s", o->name,
                                               strnull(json_str(inf, "error")));
                phase = !istate ? "booting" : streq(istate, "loading") ? "loading the model" : "starting llama-server";
                if (!streq_ptr(said, phase)) {
                        log_info("VM %s: %s", o->name, phase);
                        said = phase;
                }
                if (now_usec(CLOCK_MONOTONIC) >= deadline)
                        return log_error_errno(SYNTHETIC_ERRNO(ETIMEDOUT),
                                               "VM %s is not serving after %u s (--wait)", o->name, o->wait_sec);
                cli_sleep_ms(RUN_POLL_MS);
        }
        return -ECANCELED;
}

/* A VM action whose answer run does not print (even with --json). */
static int run_vm_call(const Cli *cli, const char *method, const char *vm, const char *suffix) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = cli_vm_path(vm, suffix, &path);
        if (r < 0)
                return r;
        return cli_http_call(cli, method, path, NULL, NULL);
}

/* zvm run --model FILE.gguf|NAME: a throwaway llm VM serving the model, a
 * chat with it, and the VM deleted however the chat ends (Ctrl-D, Ctrl-C,
 * SIGTERM, SIGHUP, an error). */
int cli_run(Cli *cli, RunOptions *o, const ChatOptions *c, const volatile sig_atomic_t *stop) {
        _cleanup_(oai_target_done) OaiTarget target = {};
        _cleanup_free_ char *model = NULL, *name = NULL;
        int r, q;

        if (run_model_is_file(o->model)) {
                r = run_model_name(o->model, &model);
                if (r < 0)
                        return r;
                r = run_model_add(cli, o->model, model);
                if (r < 0)
                        return r;
        } else if (!(model = strdup(o->model)))
                return log_oom();
        if (*stop)
                return -ECANCELED;

        if (!o->name) {
                if (asprintf(&name, "run-%ld", (long) getpid()) < 0)
                        return log_oom();
                o->name = name;
        }
        cli->vm_name = o->name;
        r = run_create(cli, o, model);
        if (r < 0)
                return r;
        log_info("VM %s: %s template, model %s", o->name, o->template_name, model);

        r = run_vm_call(cli, "POST", o->name, "/start");
        if (r >= 0)
                r = run_wait_ready(cli, o, stop);
        if (r >= 0)
                r = oai_target_for_vm(o->name, &target);
        if (r >= 0)
                r = cli_chat(cli, &target, c, stop);
        /* A signal may also surface as a failed request (an interrupted
         * transfer): it is still the user's Ctrl-C. */
        if (r < 0 && *stop)
                r = -ECANCELED;

        if (o->keep)
                log_info("VM %s kept (--keep): zvm delete --force %s", o->name, o->name);
        else {
                /* Whatever happened above: the VM goes. */
                q = run_vm_call(cli, "DELETE", o->name, "?force=true");
                if (q < 0)
                        log_error("VM %s is left behind: zvm delete --force %s", o->name, o->name);
                if (r >= 0)
                        r = q;
        }
        if (name)       /* about to be freed */
                cli->vm_name = o->name = NULL;
        return r;
}
