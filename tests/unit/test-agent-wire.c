/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The host's bounds on what a guest agent sends (api/agent-wire.h) and the
 * check of the ssh host keys its READY carries (api/ssh-key.h).
 */
#include <errno.h>
#include <json-c/json.h>
#include <string.h>

#include "agent-wire.h"
#include "macro.h"
#include "ssh-key.h"
#include "tap.h"

#define ED25519 "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINyb+HhEWW5rVsZDoJ38sGvJrQgv2XNL9LI4hYW5thDD"
#define ECDSA "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPfljqvD5B3HJZ8GyYySczxGmjA7vG5iko51rZXI0Wd437X/gc0JRwESlGplZJAsP0wLIlpX/zo3NZNV/9GKy1w="

static size_t answer_max_of(const char *request) {
        json_object *o = json_tokener_parse(request);
        size_t n;

        assert_se(o);
        n = agent_answer_max(o);
        json_object_put(o);
        return n;
}

static void test_answer_max(void) {
        static const struct {
                const char *request;
                size_t want;
                const char *what;
        } cases[] = {
                { "{\"op\":\"ping\"}", 64 * 1024, "ping: small" },
                { "{\"op\":\"info\"}", 64 * 1024, "info: small" },
                { "{\"op\":\"shutdown\"}", 64 * 1024, "shutdown: small" },
                { "{\"op\":\"set-authorized-keys\",\"keys\":[]}", 64 * 1024, "set-authorized-keys: small" },
                { "{\"op\":\"file-write\",\"data\":\"AAAA\"}", 64 * 1024, "file-write: small (the data goes out, not back)" },
                { "{}", 64 * 1024, "no op: small" },
                { "{\"op\":7}", 64 * 1024, "op of the wrong type: small" },
                /* exec: two streams of max_output, base64 (4/3, rounded up to 4). */
                { "{\"op\":\"exec\",\"argv\":[\"true\"]}", 64 * 1024 + 2 * 1398104, "exec: 2 x base64(1 MiB default)" },
                { "{\"op\":\"exec\",\"max_output\":3}", 64 * 1024 + 2 * 4, "exec: 2 x base64(3 bytes)" },
                { "{\"op\":\"exec\",\"max_output\":0}", 64 * 1024, "exec: max_output 0" },
                { "{\"op\":\"exec\",\"max_output\":-5}", 64 * 1024, "exec: negative max_output (refused by the agent)" },
                { "{\"op\":\"exec\",\"max_output\":99999999999}", 64 * 1024 + 2 * 11184812,
                  "exec: max_output over 8 MiB clamped to what the agent sends at most" },
                { "{\"op\":\"exec\",\"max_output\":\"lots\"}", 64 * 1024 + 2 * 1398104,
                  "exec: max_output not an integer: the default" },
                { "{\"op\":\"file-read\",\"path\":\"/x\",\"max_bytes\":1048576}", 64 * 1024 + 1398104,
                  "file-read: base64(max_bytes)" },
                { "{\"op\":\"file-read\",\"path\":\"/x\"}", 64 * 1024 + 11184812, "file-read: default 8 MiB" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                is_int(answer_max_of(cases[i].request), cases[i].want, "%s", cases[i].what);
}

static void test_secret(void) {
        static const char s[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

        ok(agent_secret_equal(s, s), "same secret matches");
        ok(!agent_secret_equal(s, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdee"),
           "last byte differs: no match");
        ok(!agent_secret_equal("", ""), "empty expected and given: no match");
        ok(!agent_secret_equal("", s), "empty expected (agent off or not running): no match");
        ok(!agent_secret_equal(s, ""), "empty given: no match");
        ok(!agent_secret_equal(NULL, NULL), "NULL: no match");
        ok(!agent_secret_equal(s, "0123456789abcdef"), "prefix: no match");
        ok(!agent_secret_equal("0123456789abcdef", s), "longer given: no match");
}

static void test_host_keys(void) {
        char longkey[SSH_HOST_KEY_LINE_MAX + 16];
        const char *reason = NULL;

        is_int(ssh_host_key_check(ED25519, &reason), 0, "ed25519 TYPE BASE64 accepted");
        is_int(ssh_host_key_check(ECDSA, &reason), 0, "ecdsa TYPE BASE64 accepted");

        static const struct {
                const char *line;
                const char *what;
        } bad[] = {
                { ED25519 " root@guest", "a comment" },
                { ED25519 "\n", "a trailing newline" },
                { ED25519 "\nevil.zvm " ED25519, "a second known_hosts line" },
                { "cert-authority " ED25519, "options in front" },
                { "no-pty,command=\"sh\" " ED25519, "authorized_keys options" },
                { "ssh-ed25519  AAAAC3NzaC1lZDI1NTE5AAAAINyb+HhEWW5rVsZDoJ38sGvJrQgv2XNL9LI4hYW5thDD", "two blanks" },
                { "ssh-ed25519\tAAAAC3NzaC1lZDI1NTE5AAAAINyb+HhEWW5rVsZDoJ38sGvJrQgv2XNL9LI4hYW5thDD", "a tab" },
                { " " ED25519, "a leading blank" },
                { "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAINyb+HhEWW5rVsZDoJ38sGvJrQgv2XNL9LI4hYW5thDD", "blob of another type" },
                { "ssh-ed25519-cert-v01@openssh.com AAAAC3NzaC1lZDI1NTE5AAAAINyb+HhEWW5rVsZDoJ38sGvJrQgv2XNL9LI4hYW5thDD",
                  "a certificate type" },
                { "ssh-dss AAAAB3NzaC1kc3M=", "an unknown type" },
                { "ssh-ed25519 AAAA!!!!", "non-base64 data" },
                { "ssh-ed25519 ", "no data" },
                { "ssh-ed25519", "a type alone" },
                { "", "nothing" },
                { "@revoked * " ED25519, "a marker" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                reason = NULL;
                ok(ssh_host_key_check(bad[i].line, &reason) == -EINVAL && reason, "refused: %s (%s)", bad[i].what,
                   reason ?: "no reason");
        }

        strcpy(longkey, "ssh-ed25519 ");
        memset(longkey + strlen(longkey), 'A', sizeof(longkey) - strlen(longkey) - 1);
        longkey[sizeof(longkey) - 1] = '\0';
        is_int(ssh_host_key_check(longkey, &reason), -EINVAL, "over 4 KiB refused (%s)", reason);
}

#define L(s) s, strlen(s)

static void test_answer_parse(void) {
        json_object *o = NULL;
        const char *code = NULL, *message = NULL;

        is_int(agent_answer_parse(L("{\"ok\":true,\"result\":{\"pong\":true}}"), &o, &code, &message), 1, "ok answer: 1");
        ok(o && json_object_object_get_ex(o, "result", NULL) && !code && !message, "its object, no code/message");
        json_object_put(o);
        o = NULL;
        is_int(agent_answer_parse(L("{\"ok\":false,\"error\":{\"code\":\"EACCES\",\"message\":\"no\"}}"), &o, &code,
                                  &message), 0, "error answer: 0");
        ok(streq_ptr(code, "EACCES") && streq_ptr(message, "no"), "the guest's code and message");
        json_object_put(o);
        o = NULL;
        is_int(agent_answer_parse(L("{\"ok\":false,\"error\":{\"code\":null,\"message\":7}}"), &o, &code, &message), 0,
               "error with non-string code and message: 0");
        ok(streq_ptr(code, "EPROTO") && streq_ptr(message, "malformed answer from the agent"), "the defaults instead");
        json_object_put(o);
        o = NULL;
        code = message = NULL;
        is_int(agent_answer_parse(L("[{\"ok\":true}]"), &o, &code, &message), -EBADMSG, "an array: -EBADMSG");
        is_int(agent_answer_parse(L("{\"result\":1}"), &o, &code, &message), -EBADMSG, "no \"ok\": -EBADMSG");
        is_int(agent_answer_parse(L("{\"ok\":[[[[[[[[[[1]]]]]]]]]]}"), &o, &code, &message), -EBADMSG, "too deep: -EBADMSG");
        ok(!o && !code && !message, "nothing set on -EBADMSG");
}

static void test_ready_parse(void) {
        const char *s = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        char line[256];
        json_object *info = NULL;

        snprintf(line, sizeof(line), "{\"op\":\"ready\",\"secret\":\"%s\",\"agent_version\":\"1\"}", s);
        is_int(agent_ready_parse(L(line), s, &info), 0, "READY with the VM's secret: taken");
        ok(info && json_object_object_length(info) == 1 && json_object_object_get_ex(info, "agent_version", NULL),
           "info keeps the rest, without op and secret");
        json_object_put(info);
        info = NULL;
        is_int(agent_ready_parse(L(line), "", &info), -EBADMSG, "a VM without a secret takes no READY");
        is_int(agent_ready_parse(L(line), NULL, &info), -EBADMSG, "nor with a NULL secret");
        snprintf(line, sizeof(line), "{\"op\":\"ping\",\"secret\":\"%s\"}", s);
        is_int(agent_ready_parse(L(line), s, &info), -EBADMSG, "another op: refused");
        is_int(agent_ready_parse(L("{\"op\":\"ready\",\"secret\":1}"), "1", &info), -EBADMSG, "a numeric secret: refused");
        ok(!info, "nothing set when refused");
}

int main(void) {
        test_answer_max();
        test_answer_parse();
        test_ready_parse();
        test_secret();
        test_host_keys();
        return done_testing();
}
