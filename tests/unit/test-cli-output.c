/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* zvm's pure parts: formatting of sizes and durations, tables, the
 * renderers of zvmd's JSON, argument parsing and the exit-status mapping. */

#include <errno.h>
#include <math.h>
#include <string.h>

#include "cli-output.h"
#include "cli-text.h"
#include "cli-util.h"
#include "macro.h"
#include "tap.h"

static void test_format_duration(void) {
        static const struct {
                double seconds;
                const char *expected;
        } table[] = {
                { 0, "0s" },
                { 0.9, "0s" },
                { 45, "45s" },
                { 59.99, "59s" },
                { 60, "1m00s" },
                { 192, "3m12s" },
                { 3599, "59m59s" },
                { 3600, "1h00m" },
                { 3900, "1h05m" },
                { 86399, "23h59m" },
                { 86400, "1d00h" },
                { 2 * 86400 + 3 * 3600 + 59, "2d03h" },
                { -1, "-" },
                { NAN, "-" },
        };
        char buf[CLI_FORMAT_MAX];

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                is_str(cli_format_duration(buf, sizeof(buf), table[i].seconds), table[i].expected,
                       "duration %g → %s", table[i].seconds, table[i].expected);

        is_str(cli_format_cpu(buf, sizeof(buf), 0.5249), "0.52s", "cpu below a minute has decimals");
        is_str(cli_format_cpu(buf, sizeof(buf), 125.7), "2m05s", "cpu above a minute is a duration");
}

static void test_format_bytes(void) {
        static const struct {
                uint64_t bytes;
                const char *expected;
        } table[] = {
                { 0, "0B" },
                { 512, "512B" },
                { 1023, "1023B" },
                { 1024, "1K" },
                { 1536, "1.5K" },
                { 256ULL << 20, "256M" },
                { 1ULL << 30, "1G" },
                { 1536ULL << 20, "1.5G" },
                { 233832448, "223M" },          /* 222.998 MiB */
                { (10ULL << 30) + 1, "10G" },
                { 3ULL << 40, "3T" },
                { UINT64_MAX, "16E" },
        };
        char buf[CLI_FORMAT_MAX];

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                is_str(cli_format_bytes(buf, sizeof(buf), table[i].bytes), table[i].expected,
                       "bytes %llu → %s", (unsigned long long) table[i].bytes, table[i].expected);

        is_str(cli_format_mib(buf, sizeof(buf), 256), "256M", "mib 256");
        is_str(cli_format_mib(buf, sizeof(buf), 2048), "2G", "mib 2048");
        is_str(cli_format_mib(buf, sizeof(buf), 1536), "1.5G", "mib 1536");
        is_str(cli_format_timestamp(buf, sizeof(buf), 1714564800), "2024-05-01T12:00:00Z", "timestamp is UTC");
}

static void test_parse_mib(void) {
        static const struct {
                const char *s;
                int r;
                uint64_t mib;
        } table[] = {
                { "512", 0, 512 },
                { "0", 0, 0 },
                { "512M", 0, 512 },
                { "512m", 0, 512 },
                { "512MiB", 0, 512 },
                { "1G", 0, 1024 },
                { "2g", 0, 2048 },
                { "1T", 0, 1048576 },
                { "1048576K", 0, 1024 },
                { "1536K", -EINVAL, 0 },        /* not a whole MiB */
                { "1048576B", 0, 1 },
                { "100B", -EINVAL, 0 },
                { "", -EINVAL, 0 },
                { "M", -EINVAL, 0 },
                { "-1", -EINVAL, 0 },
                { "1.5G", -EINVAL, 0 },
                { " 512", -EINVAL, 0 },
                { "512 M", -EINVAL, 0 },
                { "1X", -EINVAL, 0 },
                { "4294967296", -ERANGE, 0 },
                { "99999999999999999999", -ERANGE, 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                uint64_t v = 4242;
                int r = cli_parse_mib(table[i].s, &v);

                is_int(r, table[i].r, "parse_mib '%s' returns %d", table[i].s, table[i].r);
                is_int(v, table[i].r == 0 ? table[i].mib : 4242, "parse_mib '%s' value", table[i].s);
        }
}

static void test_parse_assignment(void) {
        static const struct {
                const char *s;
                int r;
                const char *key, *value;
        } table[] = {
                { "memory=512", 0, "memory", "512" },
                { "cmdline=console=ttyS0 quiet", 0, "cmdline", "console=ttyS0 quiet" },
                { "description=", 0, "description", "" },
                { "net0=bridge=vmbr0,tag=5", 0, "net0", "bridge=vmbr0,tag=5" },
                { "balloon_x=1", 0, "balloon_x", "1" },
                { "memory", -EINVAL, NULL, NULL },
                { "=512", -EINVAL, NULL, NULL },
                { "Memory=512", -EINVAL, NULL, NULL },
                { "0net=1", -EINVAL, NULL, NULL },
                { "mem ory=1", -EINVAL, NULL, NULL },
                { "mem-ory=1", -EINVAL, NULL, NULL },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                _cleanup_free_ char *key = NULL;
                const char *value = NULL;
                int r = cli_parse_assignment(table[i].s, &key, &value);

                is_int(r, table[i].r, "assignment '%s' returns %d", table[i].s, table[i].r);
                is_str(key, table[i].key, "assignment '%s' key", table[i].s);
                is_str(value, table[i].value, "assignment '%s' value", table[i].s);
        }

        ok(cli_config_key_is_valid("disk7"), "disk7 is a key");
        ok(!cli_config_key_is_valid("a234567890123456789012345678901234567890123456789012345678901234"),
           "64-character key is too long");
}

static void test_body_add(void) {
        json_object *body = json_object_new_object();

        is_int(cli_body_add(body, "memory", json_object_new_string("512")), 0, "body: add memory");
        is_int(cli_body_add(body, "cores", NULL), 0, "body: add null (unset)");
        is_int(cli_body_add(body, "memory", json_object_new_int(1)), -EEXIST, "body: duplicate key refused");
        is_str(json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN), "{\"memory\":\"512\",\"cores\":null}",
               "body: resulting JSON");
        json_object_put(body);
}

static void test_exit_status(void) {
        static const struct {
                long status;
                CliExit exit;
        } table[] = {
                { 200, CLI_EXIT_SUCCESS },
                { 201, CLI_EXIT_SUCCESS },
                { 400, CLI_EXIT_USAGE },
                { 401, CLI_EXIT_FAILURE },
                { 404, CLI_EXIT_NOT_FOUND },
                { 405, CLI_EXIT_FAILURE },
                { 409, CLI_EXIT_CONFLICT },
                { 413, CLI_EXIT_FAILURE },
                { 418, CLI_EXIT_USAGE },
                { 500, CLI_EXIT_FAILURE },
                { 503, CLI_EXIT_FAILURE },
                { 302, CLI_EXIT_FAILURE },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                is_int(cli_exit_from_errno(cli_errno_from_http_status(table[i].status)), table[i].exit,
                       "HTTP %ld → exit %d", table[i].status, table[i].exit);

        is_int(cli_exit_from_errno(-EHOSTUNREACH), CLI_EXIT_UNREACHABLE, "unreachable → 5");
        is_int(cli_exit_from_errno(-ETIMEDOUT), CLI_EXIT_UNREACHABLE, "timeout → 5");
        is_int(cli_exit_from_errno(-SYNTHETIC_ERRNO(EINVAL)), CLI_EXIT_USAGE, "synthetic EINVAL → 2");
        is_int(cli_exit_from_errno(-ENOMEM), CLI_EXIT_FAILURE, "ENOMEM → 1");
        is_int(cli_exit_from_errno(0), CLI_EXIT_SUCCESS, "0 → 0");
}

static void test_table(void) {
        static const char *const header[] = { ">ID", "NAME", ">N", "LAST" };
        static const char *const cells[] = {
                "1", "a", "10", "x",
                "100", "long-name", "2", "",
                "7", "\xc3\xa9t\xc3\xa9", NULL, "esc\x1b[2J",
        };
        _cleanup_table_ CliTable *t = cli_table_new(ELEMENTSOF(header), header);
        _cleanup_free_ char *text = NULL;

        for (size_t i = 0; i < ELEMENTSOF(cells); i++)
                assert_se(cli_table_add(t, cells[i]) == 0);
        is_int(cli_table_format(t, &text), 0, "table formats");
        is_str(text,
               " ID  NAME        N  LAST\n"
               "  1  a          10  x\n"
               "100  long-name   2\n"
               "  7  \xc3\xa9t\xc3\xa9         -  esc?[2J\n",
               "table: right/left alignment, UTF-8 width, no trailing blanks, control characters masked");

        assert_se(cli_table_add(t, "partial") == 0);
        text = mfree(text);
        is_int(cli_table_format(t, &text), -EINVAL, "incomplete row refused");
}

/* Renders json with f and compares with expected. */
static void check_render(int (*f)(json_object *, char **), const char *json, int expected_r,
                         const char *expected, const char *name) {
        json_object *o = json_tokener_parse(json);
        _cleanup_free_ char *text = NULL;

        if (!ok(o, "%s: test JSON parses", name))
                return;
        is_int(f(o, &text), expected_r, "%s: returns %d", name, expected_r);
        is_str(text, expected, "%s: output", name);
        json_object_put(o);
}

static void test_renderers(void) {
        static const struct {
                int (*f)(json_object *, char **);
                const char *name, *json;
                int r;
                const char *expected;
        } table[] = {
                {
                        cli_output_vm_list, "vm list",
                        "[{\"vmid\":100,\"name\":\"web\",\"state\":\"running\",\"cid\":3,"
                        "  \"config\":{\"name\":\"web\",\"memory\":\"512\",\"cores\":\"2\"},"
                        "  \"status\":{\"uptime\":192.4}},"
                        " {\"vmid\":101,\"name\":\"db-primary\",\"state\":\"stopped\",\"cid\":4,"
                        "  \"config\":{\"memory\":2048,\"cores\":1},\"status\":{\"uptime\":7}},"
                        " {\"vmid\":1000,\"name\":\"x\",\"state\":\"crashed\",\"config\":{}}]",
                        0,
                        "VMID  NAME        STATE    CID  MEMORY  CORES  UPTIME\n"
                        " 100  web         running    3    512M      2   3m12s\n"
                        " 101  db-primary  stopped    4      2G      1       -\n"
                        "1000  x           crashed    -       -      1       -\n",
                },
                {
                        cli_output_vm_list, "empty vm list", "[]", 0,
                        "VMID  NAME  STATE  CID  MEMORY  CORES  UPTIME\n",
                },
                { cli_output_vm_list, "vm list of a non-array", "{}", -EBADMSG, NULL },
                {
                        /* A running VM with pending memory and cores: the list shows what runs. */
                        cli_output_vm_list, "vm list: running values",
                        "[{\"vmid\":100,\"name\":\"web\",\"state\":\"running\",\"cid\":3,"
                        "  \"config\":{\"memory\":512,\"cores\":2},"
                        "  \"status\":{\"uptime\":5,\"memory_mib\":128,\"running\":{\"memory\":128}}}]",
                        0,
                        "VMID  NAME  STATE    CID  MEMORY  CORES  UPTIME\n"
                        " 100  web   running    3    128M      1      5s\n",
                },
                {
                        cli_output_vm_status, "status of a running VM",
                        "{\"vmid\":100,\"name\":\"web\",\"state\":\"running\",\"pid\":4242,\"uptime\":3900,"
                        " \"cpu_seconds\":1.234,\"rss_bytes\":233832448,\"cid\":3,\"accel\":\"tcg\","
                        " \"memory_mib\":512,\"balloon_target_mib\":384,\"balloon_actual_mib\":400}",
                        0,
                        "vmid:           100\n"
                        "name:           web\n"
                        "state:          running\n"
                        "pid:            4242\n"
                        "uptime:         1h05m\n"
                        "cpu:            1.23s\n"
                        "rss:            223M\n"
                        "cid:            3\n"
                        "accel:          tcg\n"
                        "memory:         512M\n"
                        "balloon-target: 384M\n"
                        "balloon-actual: 400M\n",
                },
                {
                        /* issue 13: where the host memory goes, on one line; yes/no for a flag. */
                        cli_output_vm_status, "status: host memory, helper pid, automatic balloon",
                        "{\"vmid\":100,\"name\":\"web\",\"state\":\"running\",\"pid\":4242,\"helper_pid\":4240,"
                        " \"rss_bytes\":1048576,\"host_memory\":{\"pss_mib\":73.8,\"guest_ram_mib\":36.3,"
                        "  \"tcg_cache_mib\":16,\"qemu_private_mib\":13.1,\"files_mib\":7.7,\"helper_mib\":0.6},"
                        " \"balloon_target_mib\":128,\"balloon_auto\":true}",
                        0,
                        "vmid:           100\n"
                        "name:           web\n"
                        "state:          running\n"
                        "pid:            4242\n"
                        "rss:            1M\n"
                        "helper-pid:     4240\n"
                        "host-memory:    73.8M (guest RAM 36.3M, TCG cache 16.0M, QEMU 13.1M, files 7.7M, helpers 0.6M)\n"
                        "balloon-target: 128M\n"
                        "balloon-auto:   yes\n",
                },
                {
                        cli_output_vm_status, "status of a crashed VM, with an unknown key",
                        "{\"vmid\":100,\"name\":\"web\",\"state\":\"crashed\",\"pid\":null,"
                        " \"exit\":{\"code\":1,\"signal\":\"SIGABRT\",\"reason\":\"QEMU exited\","
                        "  \"stderr\":[\"qemu: oops\",\"bye\\u001b\"]},"
                        " \"boot_ms\":650}",
                        0,
                        "vmid:        100\n"
                        "name:        web\n"
                        "state:       crashed\n"
                        "exit-code:   1\n"
                        "exit-signal: SIGABRT\n"
                        "exit-reason: QEMU exited\n"
                        "boot_ms:     650\n"
                        "stderr:\n"
                        "  qemu: oops\n"
                        "  bye?\n",
                },
                {
                        cli_output_vm_status, "status of a crashed VM: QEMU's command line is not its error",
                        "{\"vmid\":100,\"name\":\"web\",\"state\":\"crashed\","
                        " \"exit\":{\"code\":1,\"reason\":\"QEMU exited with status 1\","
                        "  \"stderr\":[\"qemu-system-x86_64 -name guest=web,process=zvm-100 -machine microvm\","
                        "   \"qemu-system-x86_64: -drive file=/nonexistent.img: Could not open\"]}}",
                        0,
                        "vmid:        100\n"
                        "name:        web\n"
                        "state:       crashed\n"
                        "exit-code:   1\n"
                        "exit-reason: QEMU exited with status 1\n"
                        "stderr:\n"
                        "  qemu-system-x86_64: -drive file=/nonexistent.img: Could not open\n",
                },
                {
                        cli_output_vm_status, "status with the agent's boot object: lines, plain decimals",
                        "{\"vmid\":100,\"name\":\"s1\",\"state\":\"running\",\"uptime\":16.487279000000001,"
                        " \"agent\":\"ready\",\"boot\":{\"agent_version\":\"0.1.0\",\"uptime\":1.2100000000000002,"
                        "  \"initrd_timing\":{\"mount\":120,\"switch_root\":310},\"ready_seconds\":2.5},"
                        " \"tags\":[], \"ratio\":0.30000000000000004}",
                        0,
                        "vmid:   100\n"
                        "name:   s1\n"
                        "state:  running\n"
                        "uptime: 16s\n"
                        "agent:  ready\n"
                        "tags:   -\n"
                        "ratio:  0.3\n"
                        "boot:\n"
                        "  agent_version: 0.1.0\n"
                        "  uptime:        1.21\n"
                        "  ready_seconds: 2.5\n"
                        "  initrd_timing:\n"
                        "    mount:       120\n"
                        "    switch_root: 310\n",
                },
                {
                        cli_output_json, "JSON: plain decimals, empty arrays and objects on one line",
                        "{\"uptime\":16.487279000000001,\"n\":3.0,\"sum\":0.30000000000000004,\"tags\":[],\"o\":{},\"s\":\"[\\n]\"}", 0,
                        "{\n"
                        "  \"uptime\": 16.487279,\n"
                        "  \"n\": 3.0,\n"
                        "  \"sum\": 0.30000000000000004,\n"
                        "  \"tags\": [],\n"
                        "  \"o\": {},\n"
                        "  \"s\": \"[\\n]\"\n"
                        "}\n",
                },
                {
                        cli_output_vm_config, "config show",
                        "{\"vmid\":100,\"config\":{\"name\":\"web\",\"memory\":\"512\",\"cores\":2,"
                        " \"agent\":true,\"cmdline\":\"console=ttyS0 quiet\",\"vsock\":\"cid=3\"}}",
                        0,
                        "name: web\n"
                        "memory: 512\n"
                        "cores: 2\n"
                        "agent: 1\n"
                        "cmdline: console=ttyS0 quiet\n"
                        "vsock: cid=3\n",
                },
                { cli_output_vm_config, "config show without config", "{\"vmid\":100}", -EBADMSG, NULL },
                {
                        cli_output_vm_show, "show",
                        "{\"vmid\":100,\"name\":\"web\",\"state\":\"running\",\"cid\":3,"
                        " \"pending_restart\":[\"memory\",\"cores\"],\"status\":{\"uptime\":45},"
                        " \"config\":{\"name\":\"web\",\"memory\":\"1024\"}}",
                        0,
                        "vmid:            100\n"
                        "name:            web\n"
                        "state:           running\n"
                        "cid:             3\n"
                        "uptime:          45s\n"
                        "pending-restart: memory, cores\n"
                        "config:\n"
                        "  name: web\n"
                        "  memory: 1024\n",
                },
                {
                        cli_output_vm_show, "show of a stopped VM, nothing pending",
                        "{\"vmid\":101,\"name\":\"db\",\"state\":\"stopped\",\"pending_restart\":[],"
                        " \"config\":{}}",
                        0,
                        "vmid:  101\n"
                        "name:  db\n"
                        "state: stopped\n"
                        "config:\n",
                },
                {
                        cli_output_pending_restart, "pending restart",
                        "{\"vmid\":100,\"pending_restart\":[\"memory\",\"cores\"]}", 0,
                        "memory: needs restart\n"
                        "cores: needs restart\n",
                },
                { cli_output_pending_restart, "nothing pending", "{\"vmid\":100,\"pending_restart\":[]}", 0, "" },
                { cli_output_pending_restart, "no pending list", "{\"vmid\":100}", 0, "" },
                {
                        /* The golden text of zvm pending: running beside pending, a key the run
                         * lacks, a removed key, long values cut, a control character shown as '?'. */
                        cli_output_vm_pending, "pending",
                        "[{\"key\":\"memory\",\"value\":128,\"pending\":256},"
                        " {\"key\":\"name\",\"value\":\"web\x01\"},"
                        " {\"key\":\"cores\",\"pending\":2},"
                        " {\"key\":\"cmdline\",\"value\":\"quiet loglevel=3 systemd.unit=rescue.target zvm.x=1234567890\"},"
                        " {\"key\":\"disk0\",\"value\":\"/srv/a.img\",\"delete\":true}]",
                        0,
                        "KEY      VALUE                                             PENDING\n"
                        "memory   128                                               256\n"
                        "name     web?\n"
                        "cores    (unset)                                           2\n"
                        "cmdline  quiet loglevel=3 systemd.unit=rescue.target z...\n"
                        "disk0    /srv/a.img                                        (unset)\n",
                },
                { cli_output_vm_pending, "pending: nothing", "[]", 0, "KEY  VALUE  PENDING\n" },
                { cli_output_vm_pending, "pending: not an array", "{}", -EBADMSG, NULL },
                {
                        cli_output_host, "host",
                        "{\"version\":\"0.1.0\",\"qemu\":\"7.2.0\",\"accel\":\"tcg\","
                        " \"accel_reason\":\"KVM probe timed out\",\"vsock_mode\":\"hybrid\","
                        " \"kernel\":\"/usr/share/zvm/vmlinux\",\"cpus\":2,\"memory_mib\":24576,"
                        " \"vms\":3,\"running\":1,\"autoballoon\":{\"enabled\":true,\"high_pct\":80,\"low_pct\":70,"
                        "  \"used_pct\":83,\"mode\":\"shrink\"}}",
                        0,
                        "version:      0.1.0\n"
                        "qemu:         7.2.0\n"
                        "accel:        tcg\n"
                        "accel-reason: KVM probe timed out\n"
                        "vsock-mode:   hybrid\n"
                        "kernel:       /usr/share/zvm/vmlinux\n"
                        "cpus:         2\n"
                        "memory:       24G\n"
                        "vms:          3\n"
                        "running:      1\n"
                        "autoballoon:  shrink (host 83% used; shrinks balloons at 80%, grows them below 70%)\n",
                },
                {
                        cli_output_host, "host: the disk worker",
                        "{\"version\":\"0.1.0\",\"sync_handovers\":12,\"sync_failures\":0,\"sync_queued\":1,"
                        " \"sync_worst_ms\":3.5}", 0,
                        "version:        0.1.0\n"
                        "sync-handovers: 12\n"
                        "sync-failures:  0\n"
                        "sync-queued:    1\n"
                        "sync-worst-ms:  3.5\n",
                },
                {
                        cli_output_host, "host: the warm pool",
                        "{\"version\":\"0.1.0\",\"pool\":{\"size\":4,\"template\":\"tiny\",\"memory\":128,\"cores\":1,"
                        " \"guests\":4,\"ready\":3,\"claims\":7,\"misses\":2,\"empty\":1}}", 0,
                        "version: 0.1.0\n"
                        "pool:    3 of 4 ready (template tiny, 128M, 1 core(s)); 7 claimed, 2 cold start(s), 1 with none ready\n",
                },
                {
                        cli_output_host, "host: no warm pool",
                        "{\"version\":\"0.1.0\",\"pool\":{\"size\":0,\"guests\":0}}", 0,
                        "version: 0.1.0\n"
                        "pool:    off\n",
                },
                {
                        cli_output_host, "host: automatic ballooning off",
                        "{\"version\":\"0.1.0\",\"autoballoon\":{\"enabled\":false}}", 0,
                        "version:     0.1.0\n"
                        "autoballoon: off\n",
                },
                {
                        cli_output_token_list, "tokens",
                        "[{\"id\":\"a1b2\",\"created\":1714564800,\"comment\":\"ci\",\"role\":\"read-only\","
                        "\"expires\":1714651200},"
                        " {\"id\":\"c3d4e5\",\"created\":0,\"role\":\"operator\",\"expires\":null}]",
                        0,
                        "ID      ROLE       CREATED               EXPIRES               COMMENT\n"
                        "a1b2    read-only  2024-05-01T12:00:00Z  2024-05-02T12:00:00Z  ci\n"
                        "c3d4e5  operator   1970-01-01T00:00:00Z  never\n",
                },
                {
                        cli_output_template_list, "templates",
                        "[{\"name\":\"std\",\"state\":\"ready\",\"profile\":\"standard\",\"size\":290455552,"
                        "\"disk_usage\":107720704,\"created\":1714564800,\"builtin\":false,\"used_by\":[\"web\",\"db\"]},"
                        " {\"name\":\"tiny\",\"state\":\"ready\",\"profile\":\"tiny\",\"size\":33554432,"
                        "\"disk_usage\":6713344,\"created\":0,\"builtin\":true,\"used_by\":[]},"
                        " {\"name\":\"bad\",\"state\":\"failed\",\"profile\":\"standard\",\"used_by\":[]}]",
                        0,
                        "NAME  PROFILE          STATE   SIZE  DISK  CREATED               USED BY\n"
                        "std   standard         ready   277M  103M  2024-05-01T12:00:00Z  web,db\n"
                        "tiny  tiny (built in)  ready    32M  6.4M  1970-01-01T00:00:00Z\n"
                        "bad   standard         failed     -     -  -\n",
                },
                { cli_output_vmid, "vmid of a new VM", "{\"vmid\":104,\"name\":\"x\"}", 0, "104\n" },
                { cli_output_vmid, "vmid missing", "{\"name\":\"x\"}", -EBADMSG, NULL },
                { cli_output_vmid, "vmid negative", "{\"vmid\":-1}", -EBADMSG, NULL },
                { cli_output_token_secret, "token secret", "{\"id\":\"t1\",\"secret\":\"zvm_abc\"}", 0, "zvm_abc\n" },
                { cli_output_token_secret, "token without secret", "{\"id\":\"t1\"}", -EBADMSG, NULL },
                {
                        cli_output_json, "pretty JSON",
                        "{\"vmid\":100,\"tags\":[\"a/b\"]}", 0,
                        "{\n"
                        "  \"vmid\": 100,\n"
                        "  \"tags\": [\n"
                        "    \"a/b\"\n"
                        "  ]\n"
                        "}\n",
                },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                check_render(table[i].f, table[i].json, table[i].r, table[i].expected, table[i].name);
}


static void test_decimal(void) {
        char buf[64];

        is_str(cli_format_decimal(buf, sizeof(buf), 16.487279000000001), "16.487279", "decimal: no binary artefact");
        is_str(cli_format_decimal(buf, sizeof(buf), 0.1 + 0.2), "0.3", "decimal: 15 digits for people");
        is_str(cli_format_decimal(buf, sizeof(buf), 3), "3", "decimal: whole number");
        is_str(cli_format_decimal(buf, sizeof(buf), 2.5), "2.5", "decimal: 2.5");
}

static void test_did_you_mean(void) {
        static const char *const verbs[] = { "create", "list", "start", "stop", "status", "logs", "exec" };

        is_int(cli_edit_distance("strat", "start"), 1, "distance: transposition is one edit");
        is_int(cli_edit_distance("", "abc"), 3, "distance: insertions");
        is_int(cli_edit_distance("kitten", "sitting"), 3, "distance: kitten/sitting");
        is_str(cli_closest_word("strat", verbs, ELEMENTSOF(verbs)), "start", "strat → start");
        is_str(cli_closest_word("lsit", verbs, ELEMENTSOF(verbs)), "list", "lsit → list");
        is_str(cli_closest_word("statsu", verbs, ELEMENTSOF(verbs)), "status", "statsu → status");
        ok(!cli_closest_word("frobnicate", verbs, ELEMENTSOF(verbs)), "no suggestion for an unrelated word");
        ok(!cli_closest_word("ab", verbs, ELEMENTSOF(verbs)), "no suggestion for a short unrelated word");
}

static void test_message_for_user(void) {
        static const struct {
                const char *message, *typed, *expected;
        } table[] = {
                { "VM 100 is running: stop it first, or delete with force", "t1",
                  "VM 't1' is running: stop it first, or delete with --force" },
                { "cannot reach the agent of VM 100: refused", "t1", "cannot reach the agent of VM 't1': refused" },
                { "vsock CID 3 is already used by VM 101", "t1", "vsock CID 3 is already used by VM 101" },
                { "VM 100 is stopped", "100", "VM 100 is stopped" },
                { "VM 100 is stopped", NULL, "VM 100 is stopped" },
                { "VM 1000x", "t1", "VM 1000x" },
                { "with forceful", "t1", "with forceful" },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                _cleanup_free_ char *m = cli_message_for_user(table[i].message, table[i].typed);

                is_str(m, table[i].expected, "message: '%s' as typed '%s'", table[i].message, strnull(table[i].typed));
        }
}

static void test_log_text(void) {
        char s[] = "login: \033[6nroot\033]0;title\a ok\r\n\033(Bbell\a\033[";
        size_t size = sizeof(s) - 1;
        const char *log = "one\ntwo\nthree\n";

        cli_strip_terminal_escapes(s, &size);
        s[size] = '\0';
        is_str(s, "login: root ok\r\nbell", "escapes stripped, an incomplete one at the end too");

        is_int(cli_last_lines(log, strlen(log), 2), 4, "last 2 lines start at 'two'");
        is_int(cli_last_lines(log, strlen(log), 5), 0, "more lines than there are: all");
        is_int(cli_last_lines(log, strlen(log), 0), strlen(log), "0 lines: nothing");
        is_int(cli_last_lines("a\nb", 3, 1), 2, "a last line without newline is a line");

        is_int(cli_log_new_offset("one\n", 4, log, strlen(log)), 4, "follow: the log grew");
        is_int(cli_log_new_offset(log, strlen(log), log, strlen(log)), strlen(log), "follow: nothing new");
        {
                char prev[3000], cur[3000];

                for (size_t i = 0; i < 2000; i++)
                        prev[i] = (char) ('a' + (i * 7 + i / 26) % 26);
                memcpy(cur, prev + 500, 1500);
                memcpy(cur + 1500, "new\n", 4);
                is_int(cli_log_new_offset(prev, 2000, cur, 1504), 1500, "follow: the tail slid, new text found");
        }
        is_int(cli_log_new_offset("zzz", 3, log, strlen(log)), 0, "follow: started over");

        ok(cli_line_is_qemu_argv("qemu-system-x86_64 -name guest=web"), "qemu argv line");
        ok(cli_line_is_qemu_argv("/usr/bin/qemu-system-aarch64 -machine virt"), "qemu argv line with a path");
        ok(!cli_line_is_qemu_argv("qemu-system-x86_64: -drive x: Could not open"), "qemu's message is not argv");
        ok(!cli_line_is_qemu_argv("something else"), "other text is not argv");
}

static void test_list_filter(void) {
        json_object *vms = json_tokener_parse(
                "[{\"vmid\":100,\"name\":\"a\",\"state\":\"running\",\"config\":{\"tags\":\"web;prod\"}},"
                " {\"vmid\":101,\"name\":\"b\",\"state\":\"stopped\",\"config\":{\"tags\":\"webby\"}},"
                " {\"vmid\":102,\"name\":\"c\",\"state\":\"running\",\"config\":{}}]");
        json_object *out = NULL;

        assert_se(vms);
        is_int(cli_vm_list_filter(vms, "running", NULL, &out), 0, "filter by state");
        is_int(json_object_array_length(out), 2, "two running");
        json_object_put(out);
        is_int(cli_vm_list_filter(vms, NULL, "web", &out), 0, "filter by tag");
        is_int(json_object_array_length(out), 1, "one tagged web (webby is another tag)");
        json_object_put(out);
        is_int(cli_vm_list_filter(vms, "stopped", "prod", &out), 0, "both filters");
        is_int(json_object_array_length(out), 0, "none stopped and prod");
        json_object_put(out);
        is_int(cli_vm_list_filter(NULL, NULL, NULL, &out), -EINVAL, "not an array");
        json_object_put(vms);
}

int main(void) {
        test_format_duration();
        test_format_bytes();
        test_parse_mib();
        test_parse_assignment();
        test_body_add();
        test_exit_status();
        test_table();
        test_renderers();
        test_decimal();
        test_did_you_mean();
        test_message_for_user();
        test_log_text();
        test_list_filter();
        return done_testing();
}
