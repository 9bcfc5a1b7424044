/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * zvm: the command-line client of zvmd. Global options, then a verb from
 * the table below; each verb lives in its own verb-*.c file. Scripts rely on
 * the verbs, their output and the exit statuses (cli-util.h): change them
 * only in ways that keep old uses working.
 */

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>

#include "cli-text.h"
#include "cli-util.h"
#include "fd-util.h"
#include "log.h"
#include "string-util.h"
#include "zvm-config.h"
#include "zvm.h"

#define DEFAULT_RUN_DIR "/run/zvm"

static const char create_details[] =
        "Options:\n"
        "  --vmid N          VMID (100-999999999; default: the lowest free one)\n"
        "  --memory SIZE     Memory, MiB or with a unit: 512, 512M, 2G (default 256)\n"
        "  --balloon SIZE    Balloon floor, like --memory (0: no balloon; default: memory)\n"
        "  --cores N         Virtual CPUs (default 1)\n"
        "  --template T      Root filesystem: a template name or an image path (default tiny)\n"
        "  --ssh-key FILE    OpenSSH public key(s) for root (sshkeys); repeatable.\n"
        "                    Default: your ~/.ssh/*.pub; if you have none, zvm's own key,\n"
        "                    made once in ~/.local/share/zvm/ssh/ (zvm ssh uses it)\n"
        "  --no-ssh-keys     Install no ssh keys\n"
        "  --set KEY=VALUE   Any other config key, as in \"zvm config set\"; repeatable\n"
        "\n"
        "Prints the VMID of the new VM, alone, on stdout.\n";

static const char shutdown_details[] =
        "Options:\n"
        "  --timeout S       Seconds to wait for the guest before killing it (0-3600, default 60)\n";

static const char config_set_details[] =
        "Keys are those of the VM's .conf file (memory, cores, cmdline, disk0, net0, ...).\n"
        "Sizes (memory, balloon) take units as create does: 512, 512M, 1G.\n"
        "On a running VM, prints \"KEY: needs restart\" for each key given that takes effect\n"
        "at the next start (zvm pending NAME shows them all, zvm reboot NAME applies them).\n"
        "--ssh-key FILE (repeatable) sets sshkeys to the public keys in FILE; a running VM gets them at once.\n";

static const char set_memory_details[] =
        "SIZE is MiB or has a unit: 512, 512M, 1G. It must lie between the VM's balloon\n"
        "floor (default: half its memory; zvm config set NAME balloon=SIZE lowers it)\n"
        "and its memory.\n";

static const char reboot_details[] =
        "As qm reboot: a clean shutdown (the agent, then ACPI, a kill after --timeout), then a\n"
        "start through zvmd. Pending config changes apply; uptime and boot start over.\n"
        "\n"
        "Options:\n"
        "  --timeout S       Seconds to wait for the guest before killing it (0-3600, default 60)\n";

static const char pending_details[] =
        "VALUE is what the VM runs with, PENDING what it gets at the next start (empty:\n"
        "no change; \"(unset)\": removed). A stopped VM has nothing pending.\n";

static const char console_details[] =
        "Connects to <run>/vms/<vmid>/console.sock on this host, which zvmd serves (up to\n"
        "4 clients; one that stops reading is disconnected). On a terminal, Ctrl-]\n"
        "detaches. With stdin not a terminal, bytes pass through as they are and zvm\n"
        "exits once stdin has ended and the console has been quiet for a second.\n";

static const char logs_details[] =
        "Options:\n"
        "  --tail N          Only the last N lines (counted within the last 1 MiB)\n"
        "  --tail-bytes SIZE Only the last SIZE bytes (512, 64K, 1M; zvmd sends at most 1M)\n"
        "  -f --follow       Keep printing what the guest prints (polls twice a second);\n"
        "                    Ctrl-C ends, and so does deleting the VM (exit 0)\n"
        "On a terminal, the guest's terminal control sequences are removed; into a pipe\n"
        "or file, its bytes are written as they are.\n"
        "zvmd keeps at most twice its --console-log-max (default 4M) of each console.\n";

static const char list_details[] =
        "Options:\n"
        "  --state S         Only VMs in state S: stopped, starting, running, stopping, crashed\n"
        "  --tag T           Only VMs with tag T (config key tags: \"web;prod\")\n";

static const char exec_details[] =
        "Options go before CMD, before or after NAME; an unknown one is refused (CMD's\n"
        "own options follow '--').\n"
        "stdin is passed to the command when it is not a terminal (at most 1 MiB);\n"
        "stdout and stderr come back separately. Exit status: the command's, 128+N\n"
        "when a signal killed it, 124 when it outlived --timeout (default 30 s), 127\n"
        "when the guest has no such command (or --cwd does not exist).\n"
        "Waits up to --wait seconds (default 120) for the agent of a VM that is still\n"
        "booting, as ssh does.\n"
        "  -i -t, -it        A terminal in the guest (a pty): TERM and the window size\n"
        "                    follow yours, your terminal is raw meanwhile; no --timeout.\n"
        "                    On zvmd's host only (unix socket). -i alone is refused.\n";

static const char cp_details[] =
        "  zvm cp web:/etc/hostname ./hostname     copy out of the VM\n"
        "  zvm cp ./app.conf web:/etc/app.conf     copy in (atomic, mode of the local file)\n"
        "  zvm cp web:/etc/passwd .                into a directory, as cp and scp do\n"
        "Files of any size, through the VM's agent: up to 1 MiB in one request, bigger\n"
        "ones (and stdin, '-') in 512 KiB chunks by the guest's dd, into a temporary\n"
        "file renamed once complete. Waits for the agent of a VM still booting.\n";

static const char ssh_details[] =
        "Runs the real ssh client as USER (default root) at NAME.zvm, with\n"
        "ProxyCommand 'zvm vsock-proxy %h 22': the guest's sshd answers on vsock\n"
        "port 22, no network needed. The guest's host key is checked against the\n"
        "known_hosts zvmd keeps (recorded from the guest's agent), so even the\n"
        "first connection is verified. Waits up to --wait seconds (default 120)\n"
        "for the agent of a VM that is still booting. Your keys: the VM's sshkeys\n"
        "config (zvm create puts ~/.ssh/*.pub there by default), installed by the\n"
        "agent at every boot. Needs a template with sshd (--profile standard/llm).\n";

static const char template_build_details[] =
        "Profiles:\n"
        "  tiny      busybox + zvm-agent (seconds to build, no sshd)\n"
        "  standard  Debian (--suite, default bookworm) by mmdebstrap: systemd,\n"
        "            openssh-server on vsock port 22, zvm-agent as a service\n"
        "  llm       standard on Debian sid, plus llama.cpp-tools (llama-server)\n"
        "--include adds Debian packages (comma-separated). zvmd runs the build and\n"
        "this command follows its progress; Ctrl-C cancels it. --detach leaves it\n"
        "running and says so on stderr: zvm template list shows its state, zvm\n"
        "template rm NAME cancels it. A failed build leaves no template.\n"
        "Results are cached by content: an identical build is a copy.\n";

static const char chat_details[] =
        "MODEL is a model zvmd serves (GET /v1/models; requests go to /v1/chat/completions,\n"
        "which picks a ready VM); otherwise a VM's name, whose server is reached at\n"
        "/api/v1/vms/NAME/v1/... \"model:NAME\" or \"vm:NAME\" say which without asking.\n"
        "Any OpenAI-compatible server works too: --socket PATH or --url URL before the verb.\n"
        "Options:\n"
        "  -p --prompt TEXT  Ask once, print the answer, exit\n"
        "  --system TEXT     A system message first\n"
        "  --max-tokens N    At most N generated tokens per answer\n"
        "  --timeout S       Seconds an answer may take (default 600)\n"
        "  --json            Print the server's whole answer object instead of streaming\n"
        "Without -p, each line of stdin is a message; the conversation is kept (its last\n"
        "1 MiB) and answers are streamed as they are generated. Ctrl-D ends; Ctrl-C stops\n"
        "the answer and ends (exit 130).\n";

static const char bench_details[] =
        "Sends --requests streamed completions per concurrency level: a prompt of exactly\n"
        "--isl tokens (default 128), exactly --osl generated tokens (default 32; the\n"
        "end-of-sequence token is ignored, no prompt cache). Per level: prompt and\n"
        "generated tok/s (llama-server's timings, else the stream's clock), time to first\n"
        "token and end-to-end latency (p50/p95), throughput of all tokens, failures.\n"
        "Energy (seed 004): J/token = W / tok/s of all tokens, Wh/query = J/token x\n"
        "(isl + osl) / 3600. W is the host's, measured from RAPL (/sys/class/powercap)\n"
        "where readable, else estimated: busy CPU-seconds x --cpu-watts (default 15 W).\n"
        "Options: --isl N, --osl N, --concurrency 1,2,4 (default), --requests N (default 8),\n"
        "--cpu-watts W, --timeout S (per request, default 600), --json.\n"
        "Exit status 1 when any request failed (the table still shows them).\n";

static const char run_details[] =
        "Creates a throwaway VM (default: template llm, 1536 MiB, 2 cores) whose config\n"
        "serves the model, starts it, waits (--wait S, default 600) until its llama-server\n"
        "is ready, then chats with it as 'zvm chat VM' does (-p, --system, --max-tokens,\n"
        "--timeout, --json). The VM is deleted when the chat ends: Ctrl-D, Ctrl-C,\n"
        "SIGTERM or SIGHUP, or an error (--keep leaves it). A FILE (a path, or a name\n"
        "ending in .gguf) is first added to the model store as 'zvm model add FILE' does,\n"
        "under its name without .gguf. Options: --name VM, --memory SIZE, --cores N,\n"
        "--template T.\n";

static const char model_add_details[] =
        "zvm reads FILE and sends it to zvmd (progress shown for files of 32 MiB and\n"
        "more); zvmd checks it (a clear error for a file that is not a readable GGUF:\n"
        "bad magic, truncated, unsupported version, tensors past the end) and makes\n"
        "a content-addressed read-only disk of it: the same file added twice is\n"
        "stored once. The name defaults to the file's name without .gguf. A VM uses\n"
        "it with 'model: NAME' in its config. Ctrl-C, or a failure, leaves nothing.\n";

static const Verb verbs[] = {
        { "create",       verb_create,       "NAME [--vmid N] [--memory SIZE] [--balloon SIZE] [--cores N] [--template T] [--ssh-key FILE]... [--set KEY=VALUE]...", "Create a VM and print its VMID", create_details },
        { "list",         verb_list,         "[--state S] [--tag T]",  "List the VMs: VMID NAME STATE CID MEMORY CORES UPTIME", list_details },
        { "show",         verb_show,         "NAME",                   "Show a VM and its config", NULL },
        { "status",       verb_status,       "NAME",                   "Show a VM's live status (pid, uptime, cpu, rss, balloon, agent, boot, exit)", NULL },
        { "start",        verb_action,       "NAME",                   "Start a VM", NULL },
        { "shutdown",     verb_shutdown,     "NAME [--timeout S]",     "Shut a VM down cleanly, kill it after a timeout", shutdown_details },
        { "stop",         verb_action,       "NAME",                   "Stop a VM at once (QMP quit, then SIGKILL)", NULL },
        { "reboot",       verb_shutdown,     "NAME [--timeout S]",     "Shut a VM down and start it again, with its pending config", reboot_details },
        { "kill",         verb_action,       "NAME",                   "SIGKILL a VM's QEMU", NULL },
        { "delete",       verb_delete,       "NAME [--force]",         "Delete a stopped VM (--force: stop it first)", NULL },
        { "config show",  verb_config_show,  "NAME",                   "Print a VM's config as \"key: value\" lines", NULL },
        { "config set",   verb_config_set,   "NAME [--ssh-key FILE]... [KEY=VALUE]...", "Set config keys", config_set_details },
        { "config unset", verb_config_unset, "NAME KEY...",            "Remove config keys", NULL },
        { "pending",      verb_pending,      "NAME",                   "Show a VM's config beside what it runs with (KEY VALUE PENDING)", pending_details },
        { "set-memory",   verb_set_memory,   "NAME SIZE",              "Set a running VM's balloon target", set_memory_details },
        { "console",      verb_console,      "NAME",                   "Attach to a VM's serial console (Ctrl-] detaches)", console_details },
        { "logs",         verb_logs,         "NAME [--tail N | --tail-bytes SIZE] [-f]", "Print a VM's serial console log, or follow it", logs_details },
        { "exec",         verb_exec,         "NAME [-it] [--timeout S] [--wait S] [--env K=V]... [--cwd DIR] -- CMD [ARGS...]", "Run a command in a VM through its agent; exits with its exit code", exec_details },
        { "cp",           verb_cp,           "SRC DST",                "Copy a file into or out of a VM (one side is NAME:/path; a directory target takes the name)", cp_details },
        { "ssh",          verb_ssh,          "[-l USER] [-i KEY] [-o OPT]... [--wait S] NAME [-- CMD [ARGS...]]", "Log into a VM with OpenSSH over vsock (host key verified)", ssh_details },
        { "ssh-config",   verb_ssh_config,   "",                       "Print an OpenSSH 'Host *.zvm' block for ssh/scp/rsync to NAME.zvm", NULL },
        { "vsock-proxy",  verb_vsock_proxy,  "NAME[.zvm] PORT",        "Connect stdin/stdout to a guest vsock port (an ssh ProxyCommand)", NULL },
        { "template build", verb_template_build, "NAME --profile tiny|standard|llm [--suite S] [--include PKG,...] [--detach] [--verbose]", "Build a root filesystem template", template_build_details },
        { "template list", verb_template_list, "",                     "List templates: NAME PROFILE STATE SIZE DISK CREATED USED BY", NULL },
        { "template rm",  verb_template_rm,  "NAME",                   "Remove a template (refused while a VM uses it; cancels a build)", NULL },
        { "chat",         verb_chat,         "MODEL|VM [-p TEXT] [--system TEXT] [--max-tokens N] [--timeout S]", "Chat with a model through the OpenAI-compatible API (streamed)", chat_details },
        { "bench",        verb_bench,        "MODEL|VM [--isl N] [--osl N] [--concurrency 1,2,4] [--requests N] [--cpu-watts W]", "Benchmark inference: tok/s, TTFT, latency, Wh per query", bench_details },
        { "run",          verb_run,          "--model FILE.gguf|NAME [--name VM] [--memory SIZE] [--cores N] [-p TEXT] [--keep]", "Boot a throwaway llm VM on a model and chat with it; deleted on exit", run_details },
        { "model add",    verb_model_add,    "FILE.gguf [--name N] [--detach]", "Add a GGUF model to the store (uploaded to zvmd, checked, made a read-only disk)", model_add_details },
        { "model generate", verb_model_generate, "NAME --shape tiny|qwen2.5-0.5b|qwen2.5-1.5b|llama3.2-1b|custom:... [--quant q8_0|q4_0] [--detach]", "Generate a random-weight model with a real model's shape and add it", NULL },
        { "model list",   verb_model_list,   "",                       "List models: NAME STATE ARCH PARAMS QUANT CONTEXT SIZE SHA256 VMS", NULL },
        { "model show",   verb_model_show,   "NAME",                   "Show a model's metadata, or why its add failed", NULL },
        { "model rm",     verb_model_rm,     "NAME",                   "Remove a model (refused while a VM's config uses it; cancels an add)", NULL },
        { "host",         verb_host,         "",                       "Show host facts (versions, accelerator, capacity)", NULL },
        { "token create", verb_token_create, "[--comment C] [--role R] [--expires-in D]", "Create an API token and print its secret, once",
          "--role is read-only (the default: GET only), operator (also start, stop, exec,\n"
          "files) or admin (also create, change and delete VMs and templates).\n"
          "--expires-in 90d (or h, m, s): the token is refused after that.\n" },
        { "token list",   verb_token_list,   "",                       "List API tokens", NULL },
        { "token delete", verb_token_delete, "ID",                     "Revoke an API token", NULL },
        { "help",         verb_help,         "[VERB]",                 "Show help, for all verbs or one", NULL },
};

static void help_print(FILE *f) {
        fputs("zvm [OPTIONS] VERB [ARGS...]\n\n"
              "Manage QEMU microVMs through zvmd. NAME is a VM name or VMID.\n\n"
              "Verbs:\n", f);
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                fprintf(f, "  %-14s %s\n", verbs[i].name, verbs[i].summary);
        fputs("\nOptions (before the verb):\n"
              "  --root DIR         Prefix of /run/zvm, as given to zvmd ($ZVM_ROOT)\n"
              "  --socket PATH      zvmd's unix socket (default <root>/run/zvm/api.sock);\n"
              "                     without --root, its directory is zvmd's run directory\n"
              "  --url URL          Use zvmd's TCP listener at URL instead of the socket\n"
              "                     (https://: the server's key is pinned on first contact\n"
              "                     in ~/.config/zvm/known_hosts)\n"
              "  --token-file FILE  Read the API token for --url from FILE ($ZVM_TOKEN_FILE)\n"
              "  --token TOKEN      API token for --url ($ZVM_TOKEN); visible to other users\n"
              "                     in ps: prefer --token-file or $ZVM_TOKEN\n"
              "  --ca FILE          Check zvmd's certificate against FILE's CAs, not a pin\n"
              "  --insecure         Do not check zvmd's certificate at all (testing only)\n"
              "  --json             Print zvmd's JSON instead of text (also after the verb)\n"
              "  --log-level LEVEL  err, warning, notice, info or debug ($ZVM_LOG_LEVEL)\n"
              "  -h --help          Show this help\n"
              "     --version       Show the version\n"
              "\nExit status: 0 success, 1 failure, 2 usage error or invalid request,\n"
              "3 not found, 4 conflict or wrong VM state, 5 zvmd unreachable.\n"
              "\nSee 'zvm help VERB' for the options of a verb.\n", f);
}

void verb_print_help(const Verb *verb, FILE *f) {
        fprintf(f, "zvm %s%s%s\n\n%s.\n", verb->name, isempty(verb->synopsis) ? "" : " ",
                verb->synopsis, verb->summary);
        if (verb->details)
                fprintf(f, "\n%s", verb->details);
}

int verb_common_option(Cli *cli, int c) {
        switch (c) {
        case 'h':
                verb_print_help(cli->verb, stdout);
                return 1;
        case ARG_VERB_JSON:
                cli->json = true;
                return 0;
        case '?':               /* getopt_long() said what is wrong */
                log_error("see 'zvm help %s'", cli->verb->name);
                return -EINVAL;
        default:
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "unhandled option %d", c);
        }
}

int verb_check_args(const Cli *cli, int argc, char *argv[], int min, int max) {
        int n = argc - optind;

        if (n >= min && (max < 0 || n <= max))
                return 0;
        return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "%s, usage: zvm %s %s",
                               n < min ? "missing arguments" : "too many arguments",
                               cli->verb->name, cli->verb->synopsis);
}

int verb_parse_uint(const char *arg, const char *option, unsigned min, unsigned max, unsigned *ret) {
        uint32_t v;

        if (safe_atou32(arg, &v) < 0 || v < min || v > max)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "invalid %s '%s' (expected %u-%u)", option, arg,
                                       min, max);
        *ret = v;
        return 0;
}

int verb_parse_simple(Cli *cli, int argc, char *argv[], int min, int max) {
        static const struct option options[] = {
                VERB_COMMON_OPTIONS,
                {}
        };
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                r = verb_common_option(cli, c);
                if (r != 0)
                        return r;
        }
        return verb_check_args(cli, argc, argv, min, max);
}

/* Finds the verb named by argv[0] (and argv[1] for two-word verbs);
 * *ret_words says how many words it took. */
static const Verb *verb_find(int argc, char *argv[], int *ret_words) {
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                const char *name = verbs[i].name, *space = strchr(name, ' ');

                if (!space && streq(name, argv[0])) {
                        *ret_words = 1;
                        return verbs + i;
                }
                if (space && strlen(argv[0]) == (size_t) (space - name) && strneq(name, argv[0], space - name) &&
                    argc > 1 && streq(space + 1, argv[1])) {
                        *ret_words = 2;
                        return verbs + i;
                }
        }
        return NULL;
}

/* For "zvm config" or "zvm help token": the verbs whose first word is w. */
static bool verb_is_group(const char *w, FILE *f) {
        bool found = false;

        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                const char *s = startswith(verbs[i].name, w);

                if (!s || s[0] != ' ')
                        continue;
                if (f)
                        fprintf(f, "  zvm %s %s\n", verbs[i].name, verbs[i].synopsis);
                found = true;
        }
        return found;
}

/* The word of the verb table closest to word, as " (did you mean 'x'?)",
 * or "": among the first words of the verbs, or with group ("config"),
 * among the second words of that group. New string, NULL on OOM. */
static char *verb_suggest(const char *group, const char *word) {
        _cleanup_strv_free_ char **words = NULL;
        const char *best;

        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                const char *name = verbs[i].name, *rest = group ? startswith(name, group) : name;
                char *w;

                if (!rest || (group && rest[0] != ' '))
                        continue;
                if (group)
                        rest++;
                w = strndup(rest, strcspn(rest, " "));
                if (!w || strv_push(&words, w) < 0) {
                        free(w);
                        return NULL;
                }
        }
        best = words ? cli_closest_word(word, (const char *const *) words, strv_length(words)) : NULL;
        if (!best)
                return strdup("");
        return strjoin(" (did you mean '", strempty(group), group ? " " : "", best, "'?)");
}

static int log_unknown_verb(const char *group, const char *word) {
        _cleanup_free_ char *hint = verb_suggest(group, word);

        if (!hint)
                return log_oom();
        if (group) {
                log_error("unknown verb '%s %s'%s; '%s' needs one of:", group, word, hint, group);
                (void) verb_is_group(group, stderr);
                return -EINVAL;
        }
        return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "unknown verb '%s'%s, see 'zvm --help'", word, hint);
}

int verb_help(Cli *cli, int argc, char *argv[]) {
        const Verb *verb;
        int r, words;

        r = verb_parse_simple(cli, argc, argv, 0, 2);
        if (r != 0)
                return r;

        if (optind >= argc) {
                help_print(stdout);
                return 0;
        }

        verb = verb_find(argc - optind, argv + optind, &words);
        if (verb && optind + words == argc) {
                verb_print_help(verb, stdout);
                return 0;
        }
        if (argc - optind == 1 && verb_is_group(argv[optind], stdout))
                return 0;
        if (argc - optind == 2 && verb_is_group(argv[optind], NULL))
                return log_unknown_verb(argv[optind], argv[optind + 1]);
        return log_unknown_verb(NULL, argv[optind]);
}

static int run_verb(Cli *cli, int argc, char *argv[]) {
        _cleanup_free_ char *prog = NULL;
        const Verb *verb;
        int words;

        if (argc <= 0) {
                help_print(stderr);
                return -EINVAL;
        }

        verb = verb_find(argc, argv, &words);
        if (!verb) {
                if (verb_is_group(argv[0], NULL) && argc > 1 && argv[1][0] != '-')
                        return log_unknown_verb(argv[0], argv[1]);
                if (verb_is_group(argv[0], NULL)) {
                        log_error("'%s' needs one of:", argv[0]);
                        (void) verb_is_group(argv[0], stderr);
                        return -EINVAL;
                }
                return log_unknown_verb(NULL, argv[0]);
        }

        /* getopt_long() names argv[0] in its messages: make that "zvm config set". */
        prog = strjoin("zvm ", verb->name);
        if (!prog)
                return log_oom();
        argc -= words - 1;
        argv += words - 1;
        argv[0] = prog;
        optind = 0;

        cli->verb = verb;
        return verb->run(cli, argc, argv);
}

/* Tokens go into an HTTP header: printable ASCII only, or a crafted value
 * could add headers of its own. */
static bool token_is_valid(const char *t) {
        if (isempty(t))
                return false;
        for (; *t; t++)
                if (*t <= ' ' || *t > '~')
                        return false;
        return true;
}

/* The token in a file (a line; surrounding white space dropped). */
static int cli_read_token_file(const char *path, char **ret) {
        _cleanup_free_ char *buf = NULL;
        int r;

        r = read_full_file(path, &buf, NULL, 4096);
        if (r < 0)
                return log_error_errno(r == -EFBIG ? -EINVAL : r, "cannot read the API token from %s: %m", path);
        memmove(buf, strstrip(buf), strlen(strstrip(buf)) + 1);
        *ret = TAKE_PTR(buf);
        return 0;
}

/* Returns 1 to run a verb, 0 if there is nothing more to do, or -EINVAL. */
static int parse_argv(Cli *cli, int argc, char *argv[]) {
        enum {
                ARG_ROOT = 0x100,
                ARG_SOCKET,
                ARG_URL,
                ARG_TOKEN,
                ARG_TOKEN_FILE,
                ARG_CA,
                ARG_INSECURE,
                ARG_JSON,
                ARG_LOG_LEVEL,
                ARG_VERSION,
        };
        static const struct option options[] = {
                { "root",      required_argument, NULL, ARG_ROOT },
                { "socket",    required_argument, NULL, ARG_SOCKET },
                { "url",       required_argument, NULL, ARG_URL },
                { "token",     required_argument, NULL, ARG_TOKEN },
                { "token-file", required_argument, NULL, ARG_TOKEN_FILE },
                { "ca",        required_argument, NULL, ARG_CA },
                { "insecure",  no_argument,       NULL, ARG_INSECURE },
                { "json",      no_argument,       NULL, ARG_JSON },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "help",      no_argument,       NULL, 'h' },
                { "version",   no_argument,       NULL, ARG_VERSION },
                {}
        };
        const char *root = NULL, *socket = NULL, *token_file = NULL;
        int c, level, r;

        /* "+": stop at the verb; its options are its own. */
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
                switch (c) {
                case ARG_ROOT:
                        if (isempty(optarg))
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "--root needs a directory");
                        root = optarg;
                        break;
                case ARG_SOCKET:
                        if (isempty(optarg))
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "--socket needs a path");
                        socket = optarg;
                        break;
                case ARG_URL:
                        if (!startswith(optarg, "http://") && !startswith(optarg, "https://"))
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                                       "--url needs an http:// or https:// URL, not '%s'", optarg);
                        cli->url = optarg;
                        break;
                case ARG_TOKEN:
                        cli->token = optarg;
                        break;
                case ARG_TOKEN_FILE:
                        token_file = optarg;
                        break;
                case ARG_CA:
                        cli->ca_file = optarg;
                        break;
                case ARG_INSECURE:
                        cli->insecure = true;
                        break;
                case ARG_JSON:
                        cli->json = true;
                        break;
                case ARG_LOG_LEVEL:
                        level = log_parse_level(optarg);
                        if (level < 0)
                                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "invalid log level '%s'", optarg);
                        log_set_max_level(level);
                        break;
                case 'h':
                        help_print(stdout);
                        return 0;
                case ARG_VERSION:
                        printf("zvm %s\n", ZVM_VERSION);
                        return 0;
                case '?':
                        log_error("see 'zvm --help'");
                        return -EINVAL;
                default:
                        return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "unhandled option %d", c);
                }

        if (!root && !isempty(getenv("ZVM_ROOT")))
                root = getenv("ZVM_ROOT");
        /* --token, then --token-file, then $ZVM_TOKEN, then $ZVM_TOKEN_FILE:
         * what is on the command line wins, the file's way keeps it out of
         * ps and shell history. */
        if (!cli->token && !token_file && isempty(getenv("ZVM_TOKEN")) && !isempty(getenv("ZVM_TOKEN_FILE")))
                token_file = getenv("ZVM_TOKEN_FILE");
        if (!cli->token && token_file) {
                r = cli_read_token_file(token_file, &cli->token_buf);
                if (r < 0)
                        return r;
                cli->token = cli->token_buf;
        }
        if (!cli->token && !isempty(getenv("ZVM_TOKEN")))
                cli->token = getenv("ZVM_TOKEN");
        if (cli->token && !token_is_valid(cli->token))
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "the API token contains invalid characters");
        if (socket && cli->url)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "--socket and --url exclude each other");

        /* zvmd keeps api.sock in its run directory: a --socket alone names
         * that directory too (console and vsock sockets live there). */
        if (!root && socket) {
                const char *slash = strrchr(socket, '/');

                cli->run_dir = slash ? strndup(socket, (size_t) (slash - socket)) : strdup(".");
        } else
                cli->run_dir = root ? strjoin(root, DEFAULT_RUN_DIR) : strdup(DEFAULT_RUN_DIR);
        cli->socket_path = socket ? strdup(socket) : strjoin(strempty(cli->run_dir), "/api.sock");
        if (!cli->run_dir || !cli->socket_path)
                return log_oom();
        return 1;
}

static void cli_done(Cli *cli) {
        erase_and_free(cli->token_buf);
        free(cli->run_dir);
        free(cli->socket_path);
}

int main(int argc, char *argv[]) {
        _cleanup_(cli_done) Cli cli = {
                .timeout_sec = CLI_REQUEST_TIMEOUT_SEC,
        };
        int r;

        if (log_setup_from_env() < 0)
                log_warning("ignoring invalid $ZVM_LOG_LEVEL");

        /* getopt_long() names argv[0] in its messages: "zvm", not the path
         * the shell found. */
        if (argc > 0)
                argv[0] = (char *) "zvm";

        r = parse_argv(&cli, argc, argv);
        if (r > 0) {
                if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                        r = log_error_errno(SYNTHETIC_ERRNO(EIO), "failed to initialize libcurl");
                else {
                        r = run_verb(&cli, argc - optind, argv + optind);
                        curl_global_cleanup();
                }
        }

        /* Output is what scripts read: a failed write is a failure. */
        if (fflush(stdout) != 0 || ferror(stdout)) {
                int e = errno > 0 ? -errno : -EIO;

                if (r >= 0)
                        r = log_error_errno(e, "failed to write to stdout: %m");
        }
        if (r >= 0 && cli.exit_status > 0)
                return cli.exit_status;
        return cli_exit_from_errno(r);
}
