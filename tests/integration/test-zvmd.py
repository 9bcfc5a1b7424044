#!/usr/bin/env python3
"""Integration tests for zvmd and zvm: a real zvmd under a temporary root,
real QEMU microVMs, real HTTP over the unix socket, the real CLI.
One scenario per invocation: test-zvmd.py SCENARIO."""
import hashlib
import json
import os
import resource
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zvmtest as zt  # noqa: E402
from zvmd import ZVMD, Zvmd, create, require_daemon, wait_agent  # noqa: E402
from zvmd_console import CONSOLE_CAP, scenario_console_flood  # noqa: E402,F401
from zvmd_cli import scenario_cli_first_hour  # noqa: E402,F401
from zvmd_firsthour import scenario_first_hour  # noqa: E402,F401
from zvmd_tls import scenario_tls_listener, scenario_tls_roles, scenario_tls_slowloris, scenario_unix_peer  # noqa: E402,F401
from zvmd_tls import https  # noqa: E402
import zvmd_llm  # noqa: E402
from zvmd_models import scenario_models  # noqa: E402,F401
from zvmd_policy import scenario_policy  # noqa: E402,F401  (issue 10 item 2)
import zvmd_serve  # noqa: E402
from zvmd_infer_cli import scenario_chat_native, scenario_chat_zvmd  # noqa: E402,F401  (issue 9: zvm chat/bench/run)
from zvmd_chaos import Chaos, scenario_stop_inflight_early  # noqa: E402,F401
from zvmd_crash import Trials as CrashTrials, crash_paths  # noqa: E402
from zvmd_exhaust import (scenario_data_full, scenario_fd_limit, scenario_fd_start_sweep,  # noqa: E402,F401
                          scenario_memory_limit, scenario_timer_fail,
                          scenario_full_disk)
import zvmd_net  # noqa: E402
from zvmd_net import scenario_user_net  # noqa: E402,F401
from zvmd_density import scenario_autoballoon, scenario_host_memory  # noqa: E402,F401
import zvmd_pool  # noqa: E402
from zvmd_pool import scenario_pool, scenario_pool_ssh  # noqa: E402,F401
from zvmd_sandbox import scenario_sandbox  # noqa: E402,F401  (issue 10: a VM's own uid)
from zvmd_templates import build_template, scenario_template_adopt, scenario_templates, slow_tiny_builder  # noqa: E402,F401

HERE = os.path.dirname(os.path.abspath(__file__))
OPENAPI = os.path.join(HERE, "..", "..", "api", "openapi.yaml")


pid_gone = zt.pid_gone
procs_with = zt.procs_with


proc_status = zt.proc_status


def check_confined(t, pid, what, seccomp=True):
    """What issue 10 asks of every process that faces a guest, as far as zvm
    does it today: QEMU's own seccomp filter with NO_NEW_PRIVS, and none of
    zvmd's environment (the test's zvmd runs with ZVM_* variables and
    NOTIFY_SOCKET may be set)."""
    if not pid:
        return
    with open(f"/proc/{pid}/environ", "rb") as f:
        env = [e.decode(errors="replace").partition("=")[0] for e in f.read().split(b"\0") if e]
    t.ok(set(env) <= {"PATH", "LC_ALL"}, f"{what} gets only PATH and LC_ALL from zvmd's environment", env)
    if seccomp:
        st = proc_status(pid)
        t.ok(st.get("NoNewPrivs") == "1" and st.get("Seccomp") == "2",
             f"{what} runs under its seccomp sandbox (NoNewPrivs {st.get('NoNewPrivs')}, "
             f"Seccomp {st.get('Seccomp')})", st)


def scenario_user_net_passt(t, d):
    zvmd_net.scenario_user_net_passt(t, d, check_confined)


def scenario_lifecycle(t, d):
    """create → start → running → shutdown → stopped → delete, via zvm and via HTTP."""
    r = d.zvm("create", "web", "--memory", "128", "--cores", "1")
    t.ok(r.returncode == 0 and re.fullmatch(r"\d+\n", r.stdout), f"zvm create prints the vmid ({r.stdout!r})",
         r.stderr)
    vmid = r.stdout.strip()
    status, vm = d.request("GET", "/vms/web")
    t.ok(status == 200 and str(vm["vmid"]) == vmid and vm["state"] == "stopped", "GET /vms/web: stopped", vm)
    t.ok(vm["config"].get("memory") == 128 and vm["config"].get("name") == "web",
         "config keys come back under 'config'", vm)
    t.ok(isinstance(vm.get("cid"), int) and vm["cid"] >= 3, f"a vsock CID was allocated ({vm.get('cid')})", vm)
    conf = open(os.path.join(d.root, "etc", "zvm", "vms", f"{vmid}.conf")).read()
    t.ok("name: web" in conf and "memory: 128" in conf and f"vsock: cid={vm['cid']}" in conf,
         "config file is Proxmox style", conf)

    r = d.zvm("start", "web")
    t.ok(r.returncode == 0, "zvm start web", r.stderr + d.log_text())
    st = d.wait_state("web", ["running"], timeout=10)
    t.ok(st and st["state"] == "running" and st.get("pid", 0) > 0, "status: running with a pid", st)
    t.ok(st and st.get("accel") in ("tcg", "kvm") and st.get("rss_bytes", 0) > 0, "status reports accel and RSS", st)
    check_confined(t, st["pid"], "QEMU")
    check_confined(t, st.get("helper_pid", 0), "the vsock helper", seccomp=False)
    t.ok(d.wait_console("web", "zvm-tiny: ready", timeout=60), "guest booted (console log)",
         d.request("GET", "/vms/web/console/log")[1])
    r = d.zvm("console", "web", input="echo console-$((6*7))\n", timeout=30)
    t.ok(r.returncode == 0 and "console-42" in r.stdout, "zvm console reaches the guest's shell (stdin piped)",
         f"{r.returncode} {r.stdout[-500:]!r} {r.stderr!r}")
    status, _ = d.request("POST", "/vms/web/start")
    t.ok(status == 409, f"start of a running VM: 409 ({status})")
    status, body = d.request("DELETE", "/vms/web")
    t.ok(status == 409 and body["error"] == "InvalidState", "delete of a running VM refused without force", body)

    t0 = time.monotonic()
    r = d.zvm("shutdown", "web", "--timeout", "60")
    took = time.monotonic() - t0
    t.ok(r.returncode == 0, f"zvm shutdown web ({took:.1f}s)", r.stderr)
    st = d.wait_state("web", ["stopped", "crashed"], timeout=5)
    t.ok(st and st["state"] == "stopped", "after ACPI shutdown: stopped (not crashed)", st)
    t.ok(took < 55, "the guest powered off by itself (not killed at the timeout)")

    r = d.zvm("delete", "web")
    t.ok(r.returncode == 0, "zvm delete web", r.stderr)
    status, _ = d.request("GET", f"/vms/{vmid}")
    t.ok(status == 404, "deleted VM is gone (404)")
    t.ok(not os.path.exists(os.path.join(d.root, "etc", "zvm", "vms", f"{vmid}.conf")) and
         not os.path.exists(os.path.join(d.root, "var", "lib", "zvm", "vms", vmid)),
         "config and writable layer removed")


def scenario_concurrent(t, d):
    """8 VMs started concurrently get 8 distinct CIDs and all reach running."""
    names = [f"vm{i}" for i in range(8)]
    for n in names:
        create(t, d, n, balloon=0)
    results = {}

    def start(n):
        results[n] = d.request("POST", f"/vms/{n}/start")

    threads = [threading.Thread(target=start, args=(n,)) for n in names]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    t.ok(all(results.get(n, (0,))[0] == 200 for n in names), "8 concurrent starts answered 200",
         {n: results.get(n) for n in names})
    states = {n: d.wait_state(n, ["running"], timeout=30) for n in names}
    t.ok(all(s and s["state"] == "running" for s in states.values()), "all 8 running",
         {n: s and s["state"] for n, s in states.items()})
    cids = [s["cid"] for s in states.values() if s]
    t.ok(len(set(cids)) == 8, f"8 distinct CIDs {sorted(cids)}")
    pids = [s.get("pid") for s in states.values() if s]
    t.ok(len(set(pids)) == 8, "8 distinct QEMU processes")
    for n in names:
        d.request("POST", f"/vms/{n}/stop")
    t.ok(all((d.wait_state(n, ["stopped"], timeout=30) or {}).get("state") == "stopped" for n in names),
         "all 8 stopped by hard stop")


def scenario_readopt(t, d):
    """kill -9 zvmd with VMs running; a new zvmd re-adopts all of them."""
    for n in ("a", "b"):
        create(t, d, n, balloon=64)
        d.request("POST", f"/vms/{n}/start")
    before = {n: d.wait_state(n, ["running"], timeout=30) for n in ("a", "b")}
    t.ok(all(s and s["state"] == "running" for s in before.values()), "two VMs running", before)
    started = {n: zt.proc_starttime(before[n]["pid"]) for n in before}
    recorded = {n: d.run_state(before[n]["vmid"]) for n in before}
    t.ok(all(started[n] and recorded[n].get("starttime") == started[n] for n in before),
         "zvmd recorded each QEMU's pid with its start time", f"{started} {recorded}")
    d.wait_console("b", "zvm-tiny: ready", timeout=60)
    d.kill9()
    for n in ("a", "b"):
        pid = before[n]["pid"]
        t.ok(zt.proc_starttime(pid) == started[n], f"QEMU of {n} survives kill -9 of zvmd (same pid, same start time)",
             f"pid {pid}: start time {zt.proc_starttime(pid)}, was {started[n]}")
    d.start()
    after = {n: d.wait_state(n, ["running"], timeout=10) for n in ("a", "b")}
    t.ok(all(after[n] and after[n]["state"] == "running" and after[n]["pid"] == before[n]["pid"] for n in after),
         "the new zvmd re-adopted both VMs (same pids, running)", after)
    # A clean stop (SIGTERM: systemctl restart, every package upgrade) must
    # leave the running VMs' agent secret and socket in place too.
    st = wait_agent(d, "b", timeout=60)
    d.terminate()
    d.start()
    st = wait_agent(d, "b", timeout=60)
    r = d.zvm("exec", "b", "--", "true")
    t.ok(r.returncode == 0 and st and st.get("pid") == before["b"]["pid"],
         "after a clean zvmd restart (SIGTERM) the re-adopted VM's agent still answers", f"{st} {r.stderr}")
    status, _ = d.request("PUT", "/vms/a/memory", {"target": 100})
    t.ok(status == 200, f"re-adopted VM answers QMP (balloon target set, {status})")
    status, _ = d.request("POST", "/vms/a/stop")
    st = d.wait_state("a", ["stopped", "crashed"], timeout=30)
    t.ok(status == 200 and st["state"] == "stopped", "re-adopted VM a stops cleanly via the API", st)
    t.ok(pid_gone(before["a"]["pid"], started["a"]), "its QEMU is gone")
    status, _ = d.request("POST", "/vms/b/shutdown?timeout=60")
    st = d.wait_state("b", ["stopped", "crashed"], timeout=60)
    t.ok(st and st["state"] == "stopped", "re-adopted VM b shuts down via ACPI", st)


def scenario_crash(t, d):
    """kill -9 of one QEMU: that VM is crashed with the signal, the other runs on."""
    for n in ("victim", "bystander"):
        create(t, d, n)
        d.request("POST", f"/vms/{n}/start")
    victim = d.wait_state("victim", ["running"], timeout=30)
    d.wait_state("bystander", ["running"], timeout=30)
    # QEMU says nothing when SIGKILL ends it, so give its stderr (fd 2, the
    # file zvmd tails) last lines of known text: zvmd must report them.
    markers = [f"zvm-test: stderr line {i} of QEMU {victim['pid']}" for i in (1, 2, 3)]
    with open(f"/proc/{victim['pid']}/fd/2", "a") as f:
        f.write("".join(m + "\n" for m in markers))
    os.kill(victim["pid"], signal.SIGKILL)
    st = d.wait_state("victim", ["crashed"], timeout=5)
    t.ok(st and st["state"] == "crashed", "victim: crashed within 5 s (pidfd, not polling)", st)
    t.ok(st and st.get("exit", {}).get("signal") == "KILL", "crash reports signal KILL", st)
    lines = (st or {}).get("exit", {}).get("stderr")
    t.ok(isinstance(lines, list) and lines[-3:] == markers, "crash carries QEMU's last output lines", st)
    by = d.wait_state("bystander", ["running"], timeout=2)
    t.ok(by and by["state"] == "running", "bystander still running", by)
    r = d.zvm("status", "victim")
    t.ok(r.returncode == 0 and "crashed" in r.stdout, "zvm status shows crashed", r.stdout + r.stderr)
    status, _ = d.request("POST", "/vms/victim/start")
    t.ok(status == 200 and d.wait_state("victim", ["running"], timeout=30)["state"] == "running",
         "a crashed VM can be started again")


def scenario_bad_input(t, d):
    """Malformed requests get clear 4xx and change nothing on disk."""
    create(t, d, "keep", memory=256)
    before = d.etc_checksum()
    cases = [
        ("POST", "/vms", None, "{not json", 400, "InvalidJson"),
        ("POST", "/vms", None, "[1,2]", 400, "InvalidJson"),
        ("POST", "/vms", {"name": "x", "bogus": 1}, None, 400, "UnknownKey"),
        ("POST", "/vms", {"name": "x", "memory": -5}, None, 400, "InvalidValue"),
        ("POST", "/vms", {"name": "x", "memory": 10 ** 15}, None, 400, "InvalidValue"),
        ("POST", "/vms", {"name": "x", "memory": "12abc"}, None, 400, "InvalidValue"),
        ("POST", "/vms", {"name": "x", "memory": 128, "balloon": 512}, None, 400, "InvalidValue"),
        ("POST", "/vms", {"name": "x", "cores": 0}, None, 400, "InvalidValue"),
        ("POST", "/vms", {"name": "keep"}, None, 409, "NameTaken"),
        ("POST", "/vms", {"name": "a/b"}, None, 400, "InvalidValue"),
        ("POST", "/vms", {"name": ".."}, None, 400, "InvalidValue"),
        ("POST", "/vms", {"name": "x", "description": "a\nmemory: 1"}, None, 400, "InvalidValue"),
        ("POST", "/vms", {"name": "x", "vmid": 5}, None, 400, "InvalidValue"),
        ("POST", "/vms", {"memory": 128}, None, 400, "InvalidValue"),
        ("PATCH", "/vms/keep", {"memory": "lots"}, None, 400, "InvalidValue"),
        ("PATCH", "/vms/keep", {"nope": 1}, None, 400, "UnknownKey"),
        ("PATCH", "/vms/keep", {"name": "x/../y"}, None, 400, "InvalidValue"),
        ("PATCH", "/vms/keep", {"memory": 64, "balloon": 128}, None, 400, "InvalidValue"),
        # vmid is refused before the config copy exists: this used to jump
        # over a _cleanup_ declaration and kill zvmd with a segfault.
        ("PATCH", "/vms/keep", {"vmid": "5"}, None, 400, "InvalidValue"),
        ("PATCH", "/vms/keep", {"vmid": 5}, None, 400, "InvalidValue"),
        ("GET", "/vms/nosuchvm", None, None, 404, "NotFound"),
        ("GET", "/vms/999999", None, None, 404, "NotFound"),
        ("POST", "/vms/nosuchvm/start", None, None, 404, "NotFound"),
        ("GET", "/nosuchroute", None, None, 404, "NotFound"),
        ("DELETE", "/host", None, None, 405, "MethodNotAllowed"),
        ("PUT", "/vms/keep/memory", {"target": 1}, None, 409, "InvalidState"),
        ("POST", "/vms/keep/stop", None, None, 409, "InvalidState"),
        # Request bodies of templates and models (core's *_request_parse()).
        ("POST", "/templates", {"name": "t", "profile": "tiny", "mirror": "x"}, None, 400, "UnknownKey"),
        ("POST", "/templates", {"name": "T", "profile": "tiny"}, None, 400, "InvalidValue"),
        ("POST", "/templates", {"name": "t", "profile": "huge"}, None, 400, "InvalidValue"),
        ("POST", "/templates", {"name": "t", "profile": "tiny", "suite": "sid"}, None, 400, "InvalidValue"),
        ("POST", "/templates", {"name": "t", "profile": "standard", "include": ["ok", "-x"]}, None, 400,
         "InvalidValue"),
        ("POST", "/templates", {"name": "t", "profile": "standard", "include": 5}, None, 400, "InvalidValue"),
        ("POST", "/models", {"name": "m", "shape": "tiny", "path": "/etc/shadow"}, None, 400, "UnknownKey"),
        ("POST", "/models", {"name": "..", "shape": "tiny"}, None, 400, "InvalidValue"),
        ("POST", "/models", {"name": "m", "shape": "-rf"}, None, 400, "InvalidValue"),
        ("POST", "/models", {"name": "m", "shape": "tiny", "quant": "f16"}, None, 400, "InvalidValue"),
    ]
    for method, path, body, raw, want, err in cases:
        status, resp = d.request(method, path, body=body, raw=raw)
        good = status == want and isinstance(resp, dict) and resp.get("error") == err and resp.get("message")
        t.ok(good, f"{method} {path} {raw or json.dumps(body)[:50]} → {want} {err}", f"got {status} {resp}")
    t.ok(d.etc_checksum() == before, "no file under etc/zvm changed")
    r = d.zvm("config", "set", "keep", "vmid=5")
    t.ok(r.returncode != 0 and "vmid" in r.stderr, "zvm config set keep vmid=5 fails with a message about vmid",
         f"rc {r.returncode} {r.stdout!r} {r.stderr!r}")
    status, vm = d.request("GET", "/vms/keep")
    t.ok(d.proc.poll() is None and status == 200 and vm.get("name") == "keep",
         "zvmd still runs and answers after the vmid PATCHes", f"{status} {vm} {d.log_text()[-2000:]}")
    # The server answers 413 from the headers alone and may close before
    # the body is sent, so speak HTTP by hand and never send the body.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(d.sock)
    s.sendall(b"POST /api/v1/vms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 2097152\r\n\r\n")
    head = s.recv(4096)
    s.close()
    t.ok(head.startswith(b"HTTP/1.1 413"), f"2 MiB body → 413 ({head[:40]!r})")
    t.ok(d.etc_checksum() == before, "still no file changed")


def scenario_tcp_token(t, d):
    """The TCP listener refuses requests without a valid bearer token."""
    port = d.tcp_port
    r = d.zvm("token", "create", "--comment", "ci")
    t.ok(r.returncode == 0 and r.stdout.strip(), "zvm token create prints a token", r.stderr)
    token = r.stdout.strip().splitlines()[-1].split()[-1]
    tokens_file = open(os.path.join(d.root, "etc", "zvm", "tokens.conf")).read()
    t.ok(token.split(".")[-1] not in tokens_file, "the secret is not stored in clear")

    def get(headers):
        status, body = https(d, "GET", "/vms", token=(headers.get("Authorization") or "")[7:] or None)
        return status, json.dumps(body).encode()

    status, body = get({})
    t.ok(status == 401 and b"Unauthorized" in body, f"no token → 401 ({status})")
    # Well-formed, so that the server gets as far as comparing hashes: the
    # real id with another secret of the right length, and an unknown id.
    m = re.fullmatch(r"zvm-([0-9a-f]{8})\.([0-9a-f]{64})", token)
    t.ok(m is not None, f"the token is zvm-<8 hex>.<64 hex> ({token[:13]}…)")
    if m:
        secret = m.group(2)
        wrong_secret = secret[:-1] + ("0" if secret[-1] != "0" else "1")
        status, _ = get({"Authorization": f"Bearer zvm-{m.group(1)}.{wrong_secret}"})
        t.ok(status == 401, f"right id, wrong secret → 401 ({status})")
        other_id = "%08x" % ((int(m.group(1), 16) + 1) % (1 << 32))
        status, _ = get({"Authorization": f"Bearer zvm-{other_id}.{secret}"})
        t.ok(status == 401, f"unknown id, well-formed → 401 ({status})")
    status, _ = get({"Authorization": "Bearer zvm-00000000.deadbeef"})
    t.ok(status == 401, f"malformed token → 401 ({status})")
    status, _ = get({"Authorization": f"Bearer {token}"})
    t.ok(status == 200, f"valid token → 200 ({status})")
    r = d.zvm("--url", f"https://127.0.0.1:{port}", "--token", token, "list",
              env=dict(os.environ, ZVM_KNOWN_HOSTS=os.path.join(d.tmp, "known_hosts")))
    t.ok(r.returncode == 0, "zvm --url --token list works over TCP (TLS, key pinned)", r.stderr)


def scenario_balloon(t, d):
    """set-memory moves the balloon target within [balloon, memory]; QEMU reports the actual size."""
    create(t, d, "bal", memory=256, balloon=128)
    d.request("POST", "/vms/bal/start")
    d.wait_state("bal", ["running"], timeout=30)
    t.ok(d.wait_console("bal", "zvm-tiny: ready", timeout=60), "guest up (balloon driver loaded)")
    r = d.zvm("set-memory", "bal", "160M")
    t.ok(r.returncode == 0, "zvm set-memory bal 160M", r.stderr)
    deadline = time.monotonic() + 30
    st = None
    while time.monotonic() < deadline:
        st = d.request("GET", "/vms/bal/status")[1]
        if st.get("balloon_actual_mib") == 160:
            break
        time.sleep(0.2)
    t.ok(st.get("balloon_target_mib") == 160, "status: target 160 MiB", st)
    t.ok(st.get("balloon_actual_mib") == 160, "status: QEMU reports actual 160 MiB", st)
    for bad in (64, 512):
        status, body = d.request("PUT", "/vms/bal/memory", {"target": bad})
        t.ok(status == 400 and body.get("error") == "InvalidValue", f"target {bad} outside [128,256] → 400", body)
    d.request("POST", "/vms/bal/stop")


def scenario_onboot_events(t, d):
    """onboot VMs start with the daemon; /events streams state changes."""
    create(t, d, "boot1", onboot=1)
    create(t, d, "manual")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(d.sock)
    s.sendall(b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
    d.request("POST", "/vms/manual/start")
    buf = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and b'"state":"running"' not in buf:
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            break
        if not chunk:
            break
        buf += chunk
    s.close()
    t.ok(b"text/event-stream" in buf, "events: an SSE stream", buf[:300])
    t.ok(b'"name":"manual","state":"starting"' in buf and b'"state":"running"' in buf,
         "events: starting then running for the started VM", buf[-600:])
    d.request("POST", "/vms/manual/stop")
    d.wait_state("manual", ["stopped"], timeout=30)
    d.terminate()
    log_before = len(d.log_text_all())
    d.start()
    st = d.wait_state("boot1", ["running"], timeout=30)
    t.ok(st and st["state"] == "running", "onboot: 1 VM started when zvmd started", st)
    # READY=1 (logged as "Listening on") comes first: systemd and its
    # watchdog never wait for onboot VMs.
    log = d.log_text_all()[log_before:]
    ready_at = log.find("Listening on")
    spawn_at = log.find(" -M microvm")
    t.ok(0 <= ready_at < spawn_at, "onboot VMs start after READY=1", (ready_at, spawn_at))
    st = d.request("GET", "/vms/manual/status")[1]
    t.ok(st["state"] == "stopped", "the other VM stayed stopped", st)


def scenario_config(t, d):
    """zvm config show/set/unset; restart-needed keys are reported."""
    create(t, d, "cfg")
    r = d.zvm("config", "set", "cfg", "cores=2", "description=web server", "tags=prod;web")
    t.ok(r.returncode == 0, "zvm config set", r.stderr)
    r = d.zvm("config", "show", "cfg")
    t.ok(r.returncode == 0 and "cores: 2" in r.stdout and "tags: prod;web" in r.stdout, "zvm config show",
         r.stdout + r.stderr)
    r = d.zvm("config", "unset", "cfg", "description")
    t.ok(r.returncode == 0 and "description" not in d.zvm("config", "show", "cfg").stdout, "zvm config unset",
         r.stderr)
    r = d.zvm("config", "set", "cfg", "memory=-1")
    t.ok(r.returncode != 0 and "memory" in r.stderr, "bad value: non-zero exit naming the key", r.stderr)
    d.request("POST", "/vms/cfg/start")
    d.wait_state("cfg", ["running"], timeout=30)
    status, vm = d.request("PATCH", "/vms/cfg", {"memory": 192, "description": "x"})
    t.ok(status == 200 and vm["pending_restart"] == ["memory"], "running VM: memory pending restart, description not",
         vm)
    r = d.zvm("list")
    t.ok(r.returncode == 0 and "cfg" in r.stdout and "running" in r.stdout, "zvm list table", r.stdout)
    r = d.zvm("list", "--json")
    t.ok(r.returncode == 0 and json.loads(r.stdout)[0]["name"] == "cfg", "zvm list --json", r.stdout)
    d.request("POST", "/vms/cfg/kill")
    st = d.wait_state("cfg", ["stopped", "crashed"], timeout=10)
    t.ok(st["state"] == "stopped", "kill via API: stopped (asked for), not crashed", st)


def scenario_bootloop(t, d):
    """A guest whose kernel panics on every boot is stopped as crashed, not
    left resetting forever (panic=-1 and no -no-reboot)."""
    create(t, d, "loop", cmdline="rdinit=/nope init=/nope")
    status, _ = d.request("POST", "/vms/loop/start")
    t.ok(status == 200, f"start: 200 ({status})")
    st = d.wait_state("loop", ["crashed"], timeout=90)
    t.ok(st and st["state"] == "crashed", "the boot loop ends as crashed", st)
    t.ok(st and "boot loop" in st.get("exit", {}).get("reason", ""), "the crash names the boot loop", st)
    log = d.request("GET", "/vms/loop/console/log")[1]
    t.ok("Kernel panic" in log, "the console log shows the panic", log[-500:])


def scenario_pcie(t, d):
    """pcie: 1 runs virtio over PCIe (non-transitional) and boots, its
    devices on the guest's PCI bus; an MMIO machine (pcie: 0) boots without
    the kernel's "PCI: Fatal: No config space access function found"."""
    create(t, d, "pci", pcie=1)
    status, _ = d.request("POST", "/vms/pci/start")
    t.ok(status == 200, f"start: 200 ({status})")
    t.ok(d.wait_console("pci", "zvm-tiny: ready", timeout=90), "a pcie guest boots to its shell",
         d.request("GET", "/vms/pci/console/log")[1][-1500:])
    r = d.zvm("exec", "pci", "--", "sh", "-c", "cat /sys/bus/pci/devices/*/vendor")
    t.ok(r.returncode == 0 and r.stdout.split().count("0x1af4") >= 3,
         "the pcie guest sees its virtio devices on PCI (vendor 0x1af4: rng, balloon, blk, vsock)",
         r.stdout + r.stderr)
    d.request("POST", "/vms/pci/stop")
    create(t, d, "mmio")
    status, _ = d.request("POST", "/vms/mmio/start")
    t.ok(status == 200 and d.wait_console("mmio", "zvm-tiny: ready", timeout=90), "an MMIO guest boots to its shell")
    log = d.request("GET", "/vms/mmio/console/log")[1]
    # Under `quiet` the kernel writes only warnings and errors: this one
    # was the first line of every MMIO guest's log.
    t.ok("zvm-tiny: ready" in log and "PCI" not in log, "its console log has no PCI line (no PCI: Fatal)",
         log[-3000:])
    d.request("POST", "/vms/mmio/stop")


def scenario_bridge(t, d):
    """net0: bridge=BR[,tag=N]: zvmd makes the tap, enslaves it to the
    bridge (with the VLAN where the bridge filters VLANs), the guest boots;
    stop removes the tap. The bridge is the test's own, with no uplink."""
    br = f"zvmtb{os.getpid() % 100000}"
    if subprocess.run(["ip", "link", "add", "name", br, "type", "bridge"], capture_output=True).returncode != 0:
        raise zt.Skip("cannot create a bridge here (not root?)")
    try:
        subprocess.run(["ip", "link", "set", br, "up"], check=True)
        vm = create(t, d, "br", net0=f"bridge={br}")
        tap = f"zvm{vm['vmid']}i0"
        status, body = d.request("POST", "/vms/br/start")
        t.ok(status == 200, f"start with a bridged NIC: 200 ({status})", body)
        master = os.path.realpath(f"/sys/class/net/{tap}/master") if os.path.exists(f"/sys/class/net/{tap}") else ""
        t.ok(master.endswith("/" + br), f"tap {tap} is enslaved to {br}", master)
        t.ok(d.wait_console("br", "zvm-tiny: ready", timeout=90), "guest booted")
        d.request("POST", "/vms/br/stop")
        d.wait_state("br", ["stopped"], timeout=30)
        t.ok(not os.path.exists(f"/sys/class/net/{tap}"), "stop removed the tap")

        d.request("PATCH", "/vms/br", {"net0": f"bridge={br},tag=42"})
        filtering = subprocess.run(["ip", "link", "set", br, "type", "bridge", "vlan_filtering", "1"],
                                   capture_output=True).returncode == 0
        status, body = d.request("POST", "/vms/br/start")
        if filtering:
            vlans = subprocess.run(["bridge", "vlan", "show", "dev", tap], capture_output=True, text=True).stdout
            t.ok(status == 200 and re.search(r"\b42\b.*PVID", vlans) is not None, "tap carries VLAN 42 as PVID",
                 f"{status} {body} {vlans}")
            d.request("POST", "/vms/br/stop")
            d.wait_state("br", ["stopped"], timeout=30)
        else:
            t.ok(status == 400 and "VLAN 42" in body.get("message", ""),
                 f"this host's bridges cannot filter VLANs: tag=42 is refused clearly ({status})", body)
            t.ok(not os.path.exists(f"/sys/class/net/{tap}"), "and no tap is left behind")
        d.request("PATCH", "/vms/br", {"net0": "bridge=nosuchbr0"})
        status, body = d.request("POST", "/vms/br/start")
        t.ok(status == 400 and "does not exist" in body.get("message", ""),
             f"a missing bridge is a clear error ({status})", body)
    finally:
        subprocess.run(["ip", "link", "del", br], capture_output=True)


def scenario_agent(t, d):
    """The agent: READY with boot timings, exec, cp, auth, shutdown, health."""
    create(t, d, "ag")
    d.request("POST", "/vms/ag/start")
    st = wait_agent(d, "ag")
    t.ok(st and st.get("agent") == "ready", "status: agent ready", st)
    boot = (st or {}).get("boot", {})
    t.ok(isinstance(boot.get("initrd_timing"), dict) and "switch" in boot["initrd_timing"],
         "READY carried the initrd's stage timings", boot)
    t.ok(boot.get("ready_seconds", 0) > 0, f"start → READY measured ({boot.get('ready_seconds')} s)", boot)

    r = d.zvm("exec", "ag", "--", "sh", "-c", "kill -SEGV $$")
    t.ok(r.returncode == 128 + signal.SIGSEGV and "killed by SIGSEGV" in r.stderr and "SIGSIG" not in r.stderr,
         "zvm exec: a command killed by SIGSEGV exits 139, the signal named once", f"{r.returncode} {r.stderr!r}")
    r = d.zvm("exec", "ag", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    t.ok(r.returncode == 3 and r.stdout == "out\n" and r.stderr == "err\n",
         "zvm exec: exit code 3, stdout and stderr separated", f"{r.returncode} {r.stdout!r} {r.stderr!r}")
    r = d.zvm("exec", "ag", "--", "cat", input="hello stdin\n")
    t.ok(r.returncode == 0 and r.stdout == "hello stdin\n", "zvm exec passes stdin", r)
    r = d.zvm("exec", "--env", "FOO=bar", "--cwd", "/etc", "ag", "--", "sh", "-c", "echo $FOO $(pwd)")
    t.ok(r.stdout == "bar /etc\n", "zvm exec --env --cwd", r)
    t0 = time.monotonic()
    r = d.zvm("exec", "--timeout", "2", "ag", "--", "sleep", "60")
    t.ok(r.returncode == 124 and time.monotonic() - t0 < 20, f"a command past --timeout is killed: 124 "
         f"({r.returncode}, {time.monotonic() - t0:.1f}s)", r.stderr)

    local = os.path.join(d.tmp, "blob")
    data = os.urandom(300 * 1024)
    open(local, "wb").write(data)
    r1 = d.zvm("cp", local, "ag:/tmp/blob")
    back = os.path.join(d.tmp, "back")
    r2 = d.zvm("cp", "ag:/tmp/blob", back)
    t.ok(r1.returncode == 0 and r2.returncode == 0 and open(back, "rb").read() == data,
         "zvm cp in and out: 300 KiB of random bytes round-trip", r1.stderr + r2.stderr)
    # Over one request's 1 MiB the CLI goes in chunks (issue 12): the whole
    # file, byte for byte, never a cut copy.
    d.zvm("exec", "ag", "--", "sh", "-c", "head -c 1500000 /dev/urandom > /tmp/big")
    sum_guest = d.zvm("exec", "ag", "--", "md5sum", "/tmp/big").stdout.split()[:1]
    big = os.path.join(d.tmp, "big")
    r = d.zvm("cp", "ag:/tmp/big", big, timeout=300)
    got = open(big, "rb").read() if os.path.exists(big) else b""
    t.ok(r.returncode == 0 and len(got) == 1500000 and [hashlib.md5(got).hexdigest()] == sum_guest,
         "zvm cp of a file over one request's 1 MiB: streamed whole (md5 matches the guest's)",
         f"{r.returncode} {len(got)} {r.stderr!r}")
    status, body = d.request("GET", "/vms/ag/files?path=/no/such/file")
    t.ok(status == 404, f"reading a missing guest file: 404 ({status})", body)

    secret = open(os.path.join(d.root, "run", "zvm", "vms", str(st["vmid"]), "agent.secret")).read().strip()
    cmdline = open(f"/proc/{st['pid']}/cmdline", "rb").read()
    t.ok(len(secret) == 64 and secret.encode() not in cmdline, "the secret is not on QEMU's command line")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(os.path.join(d.root, "run", "zvm", "vms", str(st["vmid"]), "vsock.sock"))
    s.sendall(b"CONNECT 1024\n")
    ok = s.recv(64)
    s.sendall(b'{"op":"ping"}\n')
    reply = b""
    try:
        while not reply.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
        rest = s.recv(4096)
    except socket.timeout:
        rest = b"(timeout)"
    s.close()
    t.ok(ok.startswith(b"OK") and b'"ok":false' in reply.replace(b" ", b"") and b"EACCES" in reply and rest == b"",
         "a connection without the secret is refused and closed", f"{ok!r} {reply!r} {rest!r}")

    r = d.zvm("vsock-proxy", "ag.zvm", "1024", timeout=30,
              input=f'{{"op":"auth","secret":"{secret}"}}\n{{"id":7,"op":"ping"}}\n')
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
    t.ok(r.returncode == 0 and len(lines) == 2 and lines[0].get("ok") and lines[1].get("pong") is True
         and lines[1].get("id") == 7, "zvm vsock-proxy NAME.zvm 1024 carries a whole agent session and ends after EOF",
         f"{r.returncode} {r.stdout!r} {r.stderr!r}")

    t0 = time.monotonic()
    r = d.zvm("shutdown", "ag")
    took = time.monotonic() - t0
    st = d.wait_state("ag", ["stopped", "crashed"], timeout=10)
    t.ok(r.returncode == 0 and st["state"] == "stopped" and "asked the agent to shut down" in d.log_text(),
         f"zvm shutdown goes through the agent ({took:.1f}s)", d.log_text()[-1500:])


def scenario_agent_health(t, d):
    """The health check marks an agent that stops answering."""
    create(t, d, "hc")
    d.request("POST", "/vms/hc/start")
    t.ok((wait_agent(d, "hc") or {}).get("agent") == "ready", "agent ready")
    # Freeze the listening agent (the parent of the process serving this exec).
    r = d.zvm("exec", "hc", "--", "sh", "-c", "kill -STOP $(cut -d' ' -f4 /proc/$PPID/stat)")
    t.ok(r.returncode == 0, "froze the agent", r.stderr)
    st = wait_agent(d, "hc", "unresponsive", timeout=30)
    t.ok(st and st.get("agent") == "unresponsive", "status: agent unresponsive", st)
    d.request("POST", "/vms/hc/stop")


def scenario_readopt_clean(t, d):
    """A clean zvmd restart (SIGTERM, as systemctl restart sends) and a kill -9
    both keep a running VM's agent: the next zvmd reaches it, exec works.
    A VM that stops loses its secret."""
    create(t, d, "ra")
    d.request("POST", "/vms/ra/start")
    st = wait_agent(d, "ra")
    t.ok(st and st.get("agent") == "ready", "agent ready", st)
    vmid, pid = st["vmid"], st["pid"]
    secret = os.path.join(d.root, "run", "zvm", "vms", str(vmid), "agent.secret")
    for how, stop in (("SIGTERM", d.terminate), ("kill -9", d.kill9)):
        stop()
        t.ok(os.path.exists(f"/proc/{pid}") and os.path.exists(secret),
             f"after {how} of zvmd: QEMU runs on and agent.secret is kept")
        d.start()
        st = wait_agent(d, "ra", timeout=30)
        t.ok(st and st.get("agent") == "ready" and st.get("pid") == pid,
             f"after {how}: the new zvmd re-adopted the VM and reached its agent", st)
        r = d.zvm("exec", "ra", "--", "echo", "hi")
        t.ok(r.returncode == 0 and r.stdout == "hi\n", f"after {how}: zvm exec works",
             f"{r.returncode} {r.stdout!r} {r.stderr!r}")
    # The answer cap of exec fits the largest answer the agent sends by
    # default: both streams at max_output (1 MiB), base64.
    r = d.zvm("exec", "ra", "--", "sh", "-c", "head -c 3000000 /dev/zero; head -c 3000000 /dev/zero >&2")
    t.ok(r.returncode == 0 and len(r.stdout) == 1024 * 1024 and "truncated" in r.stderr,
         "exec with both streams over 1 MiB: answered, each cut at max_output",
         f"{r.returncode} {len(r.stdout)} {r.stderr[-300:]!r}")
    d.request("POST", "/vms/ra/stop")
    st = d.wait_state("ra", ["stopped", "crashed"], timeout=30)
    t.ok(st and st["state"] == "stopped" and not os.path.exists(secret), "a stopped VM's agent.secret is gone", st)


def scenario_running(t, d):
    """A running VM keeps the config it was started with: a PATCH of vsock,
    agent and net0 while it runs only makes them pending; the agent, the
    status, the CID rules and the stop use the running config, across a
    kill -9 of zvmd (running.conf); a key set back is no longer pending."""
    br = f"zvmrb{os.getpid() % 100000}"
    bridged = subprocess.run(["ip", "link", "add", "name", br, "type", "bridge"], capture_output=True).returncode == 0
    try:
        if bridged:
            subprocess.run(["ip", "link", "set", br, "up"], check=True)
        vm = create(t, d, "rn", **({"net0": f"bridge={br}"} if bridged else {}))
        vmid, tap = vm["vmid"], f"zvm{vm['vmid']}i0"
        running_conf = os.path.join(d.root, "run", "zvm", "vms", str(vmid), "running.conf")
        d.request("POST", "/vms/rn/start")
        st = wait_agent(d, "rn")
        t.ok(st and st.get("agent") == "ready", "agent ready", st)
        cid = st["cid"]
        t.ok(os.path.exists(running_conf) and f"vsock: cid={cid}" in open(running_conf).read(),
             "running.conf holds the config the VM started with", running_conf)
        new_cid = cid + 1000
        change = {"vsock": f"cid={new_cid}", "agent": 0, "description": "d"}
        if bridged:
            change["net0"] = None
        status, body = d.request("PATCH", "/vms/rn", change)
        want = ["vsock", "agent"] + (["net0"] if bridged else [])
        t.ok(status == 200 and sorted(body.get("pending_restart", [])) == sorted(want)
             and body["config"].get("agent") == 0 and body["config"].get("vsock") == f"cid={new_cid}",
             "PATCH while running: config shows the new values, vsock/agent/net0 pending", body)
        status, other = d.request("POST", "/vms", {"name": "other", "memory": 128, "vsock": f"cid={cid}"})
        t.ok(status == 409, f"the running CID stays taken: another VM cannot have it ({status})", other)

        for when in ("after the PATCH", "after kill -9 of zvmd"):
            st = wait_agent(d, "rn", timeout=30)
            run = (st or {}).get("running", {})
            t.ok(st and st.get("cid") == cid and run.get("agent", 1) == 1 and run.get("vsock") == f"cid={cid}",
                 f"{when}: status shows the running CID {cid} and running config (agent on)", st)
            r = d.zvm("exec", "rn", "--", "echo", "hi")
            t.ok(r.returncode == 0 and r.stdout == "hi\n", f"{when}: zvm exec reaches the running guest",
                 f"{r.returncode} {r.stdout!r} {r.stderr!r}")
            status, body = d.request("GET", "/vms/rn")
            t.ok(sorted(body.get("pending_restart", [])) == sorted(want), f"{when}: still pending", body)
            if when == "after the PATCH":
                d.kill9()
                d.start()

        back = {"vsock": f"cid={cid}", "agent": 1}
        if bridged:
            back["net0"] = f"bridge={br}"
        status, body = d.request("PATCH", "/vms/rn", back)
        t.ok(status == 200 and body.get("pending_restart") == [], "keys set back to their running values: nothing pending",
             body)
        d.request("PATCH", "/vms/rn", change)
        if bridged:
            t.ok(os.path.exists(f"/sys/class/net/{tap}"), f"tap {tap} of the run exists while it runs")
        d.request("POST", "/vms/rn/stop")
        st = d.wait_state("rn", ["stopped", "crashed"], timeout=30)
        t.ok(st and st["state"] == "stopped" and st.get("cid") == new_cid and "running" not in st
             and not os.path.exists(running_conf),
             "stopped: status shows the config's CID, running.conf is gone", st)
        if bridged:
            t.ok(not os.path.exists(f"/sys/class/net/{tap}"), "stop removed the tap although net0 was unset")
        status, other = d.request("POST", "/vms", {"name": "other", "memory": 128, "vsock": f"cid={cid}"})
        t.ok(status == 201, f"the old running CID is free again ({status})", other)
    finally:
        if bridged:
            subprocess.run(["ip", "link", "del", br], capture_output=True)


def zvmd_fds(d):
    return len(os.listdir(f"/proc/{d.proc.pid}/fd"))


def ready_conn(path, line=None, timeout=5):
    """Connects to a hybrid READY listener (<uds>_1025) as the guest's agent
    would and sends line; returns whether zvmd closed the connection within
    timeout (EOF), after reading what it got."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        if line is not None:
            s.sendall(line)
        return s.recv(4096) == b""
    except socket.timeout:
        return False
    except OSError:
        return True
    finally:
        s.close()


def ready_flood(t, d, listener, held, state):
    """300 connections to the READY listener, as fast as zvmd accepts them,
    all kept open by the "guest": zvmd may hold `held` of them."""
    base = zvmd_fds(d)
    socks = []
    t0 = time.monotonic()
    deadline = t0 + 20
    while len(socks) < 300 and time.monotonic() < deadline:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(listener)
            socks.append(s)
        except BlockingIOError:
            s.close()       # the listen backlog is full: zvmd has not accepted yet
            time.sleep(0.001)
    during = zvmd_fds(d)
    t1 = time.monotonic()
    status, _ = d.request("GET", "/vms", timeout=10)
    api_s = time.monotonic() - t1
    t.ok(len(socks) == 300, f"agent {state}: the flood opened {len(socks)} READY connections in {t1 - t0:.1f} s")
    t.ok(during <= base + held + 2, f"agent {state}: zvmd holds at most {held} of them: {during} fds during the "
         f"flood, {base} before")
    t.ok(status == 200 and api_s < 2, f"agent {state}: the API answers during the flood ({api_s * 1000:.0f} ms)")
    for s in socks:
        s.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and zvmd_fds(d) > base:
        time.sleep(0.1)
    t.ok(zvmd_fds(d) <= base, f"agent {state}: the held ones are let go when the guest closes them "
         f"({zvmd_fds(d)} fds)")


def scenario_ready_guard(t, d):
    """READY is taken only while the VM's agent waits, from at most 2
    connections at a time, and only with the VM's non-empty secret; a flood
    of READY connections costs zvmd no fds; host keys must be TYPE BASE64."""
    create(t, d, "rg")
    d.request("POST", "/vms/rg/start")
    st = wait_agent(d, "rg")
    t.ok(st and st.get("agent") == "ready", "agent ready", st)
    vmid = st["vmid"]
    run = os.path.join(d.root, "run", "zvm", "vms", str(vmid))
    listener = os.path.join(run, "vsock.sock_1025")

    # Not waiting: a READY connection is closed at once, not held for 5 s.
    t0 = time.monotonic()
    closed = ready_conn(listener, timeout=3)
    t.ok(closed and time.monotonic() - t0 < 1.5,
         f"agent ready: a new READY connection is closed at once ({time.monotonic() - t0:.2f} s)")
    ready_flood(t, d, listener, 0, "ready")

    # Keep the agent from answering, then restart zvmd: its re-adoption
    # ping goes unanswered and the agent stays "waiting" for READY.
    r = d.zvm("exec", "rg", "--", "sh", "-c", "kill -STOP $(cut -d' ' -f4 /proc/$PPID/stat)")
    t.ok(r.returncode == 0, "froze the guest's agent", r.stderr)
    d.terminate()
    d.start()
    st = d.request("GET", "/vms/rg/status")[1]
    t.ok(st.get("agent") == "waiting", "after a zvmd restart the agent is waiting", st)

    # A flood while waiting: every connection beyond 2 is closed at once.
    ready_flood(t, d, listener, 2, "waiting")

    secret = open(os.path.join(run, "agent.secret")).read().strip()
    own = f'"op":"ready","secret":"{secret}"'.encode()
    for what, line in (("an empty secret", b'{"op":"ready","secret":""}\n'),
                       ("no secret", b'{"op":"ready"}\n'),
                       ("a wrong secret", b'{"op":"ready","secret":"' + b"0" * 64 + b'"}\n'),
                       # With the VM's secret, but JSON over the bounds:
                       ("20 levels of nesting", b"{" + own + b',"x":' + b"[" * 20 + b"]" * 20 + b"}\n"),
                       ("20000 values", b"{" + own + b',"x":[' + b"0," * 19999 + b"0]}\n"),
                       ("a line over 64 KiB", b"{" + own + b',"x":"' + b"a" * 70000 + b'"}\n')):
        closed = ready_conn(listener, line)
        st = d.request("GET", "/vms/rg/status")[1]
        t.ok(closed and st.get("agent") == "waiting", f"READY with {what}: refused, still waiting", st)

    # The VM's own secret makes it ready: the refusals above were the
    # checks, not a dead listener. Only the well-formed host key is kept.
    good = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINyb+HhEWW5rVsZDoJ38sGvJrQgv2XNL9LI4hYW5thDD"
    keys = [good, good + " comment", "cert-authority " + good, good + "\nevil.zvm " + good]
    line = json.dumps({"op": "ready", "secret": secret, "agent_version": "x", "ssh_host_keys": keys}).encode() + b"\n"
    ready_conn(listener, line)
    st = wait_agent(d, "rg", timeout=10)
    t.ok(st and st.get("agent") == "ready", "READY with the VM's secret: ready", st)
    known = open(os.path.join(d.root, "var", "lib", "zvm", "ssh_known_hosts")).read()
    entries = [x for x in known.splitlines() if x and not x.startswith("#")]
    t.ok(entries == [f"rg.zvm {good}"], "known_hosts holds only the TYPE BASE64 key", known)
    d.request("POST", "/vms/rg/stop")
    d.wait_state("rg", ["stopped", "crashed"], timeout=30)


class FakeDevice:
    """Stands in for a VM's vhost-device-vsock on its unix socket (the real
    one is moved aside), playing a hostile guest behind it, one mode after
    the other: "huge" completes the handshake and auth and answers the
    request with `huge` bytes of [0,0,...]; "nullcode" refuses the auth with
    an error whose code and message are JSON nulls; "stall" reads CONNECT
    and never answers."""

    def __init__(self, path, huge):
        self.path, self.huge, self.mode = path, huge, "huge"
        self.nullcode_sent = False
        self.conns, self.request = [], b""
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.lsock.bind(path)
        self.lsock.listen(64)
        self.lsock.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def readline(self, c):
        buf = b""
        while not buf.endswith(b"\n") and len(buf) < 4096:
            chunk = c.recv(1)
            if not chunk:
                break
            buf += chunk
        return buf

    def serve(self, c):
        c.settimeout(10)
        try:
            if not self.readline(c).startswith(b"CONNECT "):
                return
            if self.mode == "stall":
                return          # keep it open, say nothing
            c.sendall(b"OK 1024\n")
            self.readline(c)    # auth
            if self.mode == "nullcode":
                self.mode = "stall"
                c.sendall(b'{"ok":false,"error":{"code":null,"message":null}}\n')
                self.nullcode_sent = True
                return
            c.sendall(b'{"ok":true}\n')
            self.request = self.readline(c)
            self.mode = "nullcode"  # one huge answer is enough
            c.sendall(b"[" + b"0," * (self.huge // 2) + b"0]\n")
        except OSError:
            pass

    def run(self):
        while not self.stopping:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                continue
            self.conns.append(c)
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def close(self):
        self.stopping = True
        self.thread.join(timeout=5)
        for c in self.conns:
            c.close()
        self.lsock.close()
        os.unlink(self.path)


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(x for x in f if x.startswith("VmHWM:")).split()[1])


def scenario_agent_bounds(t, d):
    """A hostile guest behind the vsock device: an 8 MiB [0,0,...] answer to
    the health ping is cut at the ping's 64 KiB cap (zvmd's peak memory does
    not grow by the hundreds of MiB json-c would take), and a handshake that
    never completes does not stall the event loop."""
    create(t, d, "hb")
    d.request("POST", "/vms/hb/start")
    st = wait_agent(d, "hb")
    t.ok(st and st.get("agent") == "ready", "agent ready", st)
    # The socket zvmd connects to: the helper's own, in the VM's vsock dir
    # (run/vms/ID/vsock.sock is a symlink to it, for clients; zvmd does not
    # follow symlinks in a dir the VM's uid owns).
    uds = os.path.join(d.root, "run", "zvm", "vms", str(st["vmid"]), "vsock", "vsock.sock")
    os.rename(uds, uds + ".real")
    hwm0 = vm_hwm_kib(d.proc.pid)
    fake = FakeDevice(uds, 8 * 1024 * 1024)
    try:
        st = wait_agent(d, "hb", "unresponsive", timeout=20)
        t.ok(st and st.get("agent") == "unresponsive", "a huge answer to the health ping fails the ping", st)
        grew = vm_hwm_kib(d.proc.pid) - hwm0
        t.ok(b'"ping"' in fake.request, f"zvmd's health ping reached the fake guest ({fake.request!r})")
        t.ok("larger than the 65536 bytes" in d.log_text(), "zvmd cut it at the ping's 64 KiB cap",
             d.log_text()[-1500:])
        t.ok(grew < 32 * 1024, f"zvmd's peak memory grew by {grew} KiB (json-c on it: hundreds of MiB)")
        deadline = time.monotonic() + 20
        while not fake.nullcode_sent and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        t.ok(fake.nullcode_sent and d.proc.poll() is None and d.request("GET", "/host")[0] == 200,
             "an error answer whose code and message are JSON nulls is survived (it was strdup(NULL))")

        # Now every ping's handshake stalls (pings every second, 10 s
        # deadline each): the API must stay fast all along.
        worst = 0.0
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            status, _ = d.request("GET", "/vms/hb/status", timeout=30)
            worst = max(worst, time.monotonic() - t0)
            time.sleep(0.05)
        stalled = len(fake.conns)
        t.ok(stalled >= 3, f"pings kept connecting into the stalled handshake ({stalled} connections)")
        t.ok(worst < 0.5, f"the API stayed responsive meanwhile (worst {worst * 1000:.0f} ms; a blocking "
             "connect held the loop up to 3 s per ping)")
    finally:
        fake.close()
        os.rename(uds + ".real", uds)
    st = wait_agent(d, "hb", "ready", timeout=30)
    t.ok(st and st.get("agent") == "ready", "with the real device back, the next ping finds the agent ready", st)

    # The VM's uid owns the vsock dir: a symlink it puts there in place of
    # the socket must not send zvmd (root) to another socket.
    decoy = FakeDevice(os.path.join(d.tmp, "decoy.sock"), 1024)
    os.rename(uds, uds + ".real")
    os.symlink(decoy.path, uds)
    try:
        st = wait_agent(d, "hb", "unresponsive", timeout=20)
        t.ok(st and st.get("agent") == "unresponsive" and not decoy.conns,
             f"zvmd does not follow a symlink in the VM's vsock dir ({len(decoy.conns)} connections to the decoy)",
             st)
    finally:
        decoy.close()
        os.unlink(uds)
        os.rename(uds + ".real", uds)
    d.request("POST", "/vms/hb/stop")
    d.wait_state("hb", ["stopped", "crashed"], timeout=30)


def scenario_notify(t, d):
    """sd_notify: READY=1 once the API answers, then WATCHDOG=1 pings at half
    the interval systemd asks for, on a NOTIFY_SOCKET of the test's own."""
    path = os.path.join(d.tmp, "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(5)
    os.environ["NOTIFY_SOCKET"] = path
    os.environ["WATCHDOG_USEC"] = "600000"
    # zvmd inherits a soft fd limit of 1024 (as from a login shell) and
    # must raise it to the hard limit itself.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
    try:
        d.start()
    finally:
        del os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"]
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    limits = open(f"/proc/{d.proc.pid}/limits").read()
    nofile = next((line.split()[3:5] for line in limits.splitlines() if line.startswith("Max open files")), None)
    t.ok(nofile is not None and nofile[0] == nofile[1] and hard > 1024 and int(nofile[0]) == hard,
         "zvmd raised its soft RLIMIT_NOFILE to the hard limit", nofile)
    msgs = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and sum(m.count("WATCHDOG=1") for m in msgs) < 3:
        try:
            msgs.append(s.recv(4096).decode())
        except socket.timeout:
            break
    s.close()
    t.ok(any("READY=1" in m for m in msgs), "READY=1 sent", msgs)
    t.ok(sum(m.count("WATCHDOG=1") for m in msgs) >= 3, "WATCHDOG=1 sent repeatedly (every 0.3 s)", msgs)
    t.ok(any("STATUS=" in m for m in msgs), "a STATUS= line says what it serves", msgs)


def scenario_openapi(t, d):
    """api/openapi.yaml and zvmd's route table agree."""
    import yaml
    with open(OPENAPI) as f:
        spec = yaml.safe_load(f)
    # A path with its own servers (the OpenAI-compatible /v1/…) is served at
    # the root; the spec's "/" (the index) is the route /api/v1.
    spec_routes = {(m.upper(), (("" if "servers" in ops else "/api/v1") + p).rstrip("/"))
                   for p, ops in spec["paths"].items() for m in ops if m in ("get", "post", "put", "patch", "delete")}
    out = subprocess.run([ZVMD, "--dump-routes"], capture_output=True, text=True, check=True).stdout
    code_routes = {tuple(line.split(" ", 1)) for line in out.splitlines() if line}
    t.ok(code_routes == spec_routes, "every route is in the spec and every spec path is routed",
         f"only in code: {sorted(code_routes - spec_routes)}\nonly in spec: {sorted(spec_routes - code_routes)}")
    t.ok(len(code_routes) >= 15, f"{len(code_routes)} routes")


def check_systemd_running(t, d, vm):
    """systemd in a Debian guest finished booting with no failed unit."""
    r = d.zvm("exec", vm, "--", "systemctl", "is-system-running", "--wait", timeout=180)
    t.ok(r.stdout.strip() == "running", f"systemd reports {vm} running, no failed unit",
         f"{r.stdout!r} {d.zvm('exec', vm, '--', 'systemctl', '--failed', '--no-legend').stdout!r}")


def ssh_keypair(d, name):
    path = os.path.join(d.tmp, name)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path], check=True)
    return path


def console_root_shell(t, d, vm):
    """issue 12 item 1: the serial console of a standard guest is a root
    shell (agetty --autologin root), not a password prompt."""
    vmid = d.request("GET", f"/vms/{vm}/status")[1]["vmid"]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1)
    out = b""
    try:
        s.connect(os.path.join(d.root, "run", "zvm", "vms", str(vmid), "console.sock"))
        deadline = time.monotonic() + 90
        sent = 0.0
        while time.monotonic() < deadline and not re.search(rb"zvm-console-42 uid=\d+\r?\n", out):
            if time.monotonic() - sent > 5:     # until the getty has logged in
                s.sendall(b"\recho zvm-console-$((6*7)) uid=$(id -u)\r")
                sent = time.monotonic()
            try:
                out += s.recv(65536)
            except socket.timeout:
                pass
    finally:
        s.close()
    text = out.decode(errors="replace")
    t.ok("zvm-console-42 uid=0" in text and "Password:" not in text,
         "the standard guest's serial console is a root shell (autologin), no password prompt", text[-1500:])


def scenario_ssh(t, d):
    """A standard (Debian) template: OpenSSH over vsock with a verified host
    key, scp both ways, a wrong key and a wrong host key refused."""
    if not build_template(t, d, "std", "standard"):
        return
    good, wrong = ssh_keypair(d, "good"), ssh_keypair(d, "wrong")
    r = d.zvm("create", "sv", "--template", "std", "--memory", "512", "--ssh-key", good + ".pub")
    t.ok(r.returncode == 0, "create with --ssh-key", r.stderr)
    t0 = time.monotonic()
    d.request("POST", "/vms/sv/start")
    st = wait_agent(d, "sv", timeout=240)
    t.ok(st and st.get("agent") == "ready", f"the standard guest's agent is READY ({time.monotonic() - t0:.1f} s "
         "after start)", st)

    console_root_shell(t, d, "sv")

    ssh_opts = ["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=60"]
    t0 = time.monotonic()
    r = d.zvm("ssh", "-i", good, *ssh_opts, "sv", "--", "uname", "-r", timeout=180)
    took = time.monotonic() - t0
    ex = d.zvm("exec", "sv", "--", "uname", "-r")
    t.ok(r.returncode == 0 and r.stdout.strip() and r.stdout == ex.stdout,
         f"zvm ssh sv -- uname -r: a real OpenSSH login over vsock ({took:.1f} s) prints the guest kernel "
         f"{r.stdout.strip()!r}", f"{r.returncode} {r.stdout!r} {r.stderr!r}")

    check_systemd_running(t, d, "sv")
    known = open(os.path.join(d.root, "var", "lib", "zvm", "ssh_known_hosts")).read()
    hostkey = d.zvm("exec", "sv", "--", "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()
    t.ok(len(hostkey) >= 2 and f"sv.zvm {hostkey[0]} {hostkey[1]}\n" in known,
         "the zvm-managed known_hosts holds the guest's own ed25519 host key", known)

    cfg = os.path.join(d.tmp, "ssh_config")
    r = d.zvm("ssh-config")
    t.ok(r.returncode == 0 and "Host *.zvm" in r.stdout and "vsock-proxy %h 22" in r.stdout
         and "StrictHostKeyChecking yes" in r.stdout, "zvm ssh-config prints a Host *.zvm block", r.stdout)
    with open(cfg, "w") as f:
        f.write(r.stdout + f"    IdentityFile {good}\n    IdentitiesOnly yes\n    BatchMode yes\n")
    local = os.path.join(d.tmp, "up.bin")
    data = os.urandom(1024 * 1024 + 123)
    open(local, "wb").write(data)
    t0 = time.monotonic()
    r1 = subprocess.run(["scp", "-F", cfg, local, "root@sv.zvm:/root/up.bin"], capture_output=True, text=True,
                        timeout=180)
    up = time.monotonic() - t0
    remote = d.zvm("exec", "sv", "--", "sha256sum", "/root/up.bin").stdout.split()
    t.ok(r1.returncode == 0 and remote and remote[0] == hashlib.sha256(data).hexdigest(),
         f"scp -F <ssh-config> into root@sv.zvm: 1 MiB intact ({up:.1f} s)", f"{r1.returncode} {r1.stderr!r}")
    back = os.path.join(d.tmp, "down.bin")
    t0 = time.monotonic()
    r2 = subprocess.run(["scp", "-F", cfg, "root@sv.zvm:/root/up.bin", back], capture_output=True, text=True,
                        timeout=180)
    down = time.monotonic() - t0
    t.ok(r2.returncode == 0 and os.path.exists(back) and open(back, "rb").read() == data,
         f"scp out of the guest: 1 MiB intact ({down:.1f} s)", f"{r2.returncode} {r2.stderr!r}")

    r = d.zvm("ssh", "-i", wrong, *ssh_opts, "sv", "--", "true", timeout=120)
    t.ok(r.returncode == 255 and "Permission denied" in r.stderr, "a key not in sshkeys is refused (255)",
         f"{r.returncode} {r.stderr!r}")

    liar = os.path.join(d.tmp, "liar_known_hosts")
    other = open(wrong + ".pub").read().split()
    with open(liar, "w") as f:
        f.write(f"sv.zvm {other[0]} {other[1]}\n")
    r = subprocess.run(["ssh", "-F", cfg, "-o", f"UserKnownHostsFile={liar}", "-o", "HostKeyAlgorithms=ssh-ed25519",
                        "root@sv.zvm", "true"], capture_output=True, text=True, timeout=120)
    t.ok(r.returncode == 255 and ("verification failed" in r.stderr or "IDENTIFICATION HAS CHANGED" in r.stderr),
         "a host key other than the recorded one is refused", f"{r.returncode} {r.stderr[-600:]!r}")

    # sshkeys changed while running: pushed at once, the old key stops working.
    pub = open(wrong + ".pub").read().strip()
    enc = "".join(c if c.isalnum() or c in "._~@+/=-" else "%%%02X" % ord(c) for c in pub)
    r = d.zvm("config", "set", "sv", f"sshkeys={enc}")
    time.sleep(2)
    ok_new = d.zvm("ssh", "-i", wrong, *ssh_opts, "sv", "--", "true", timeout=120)
    old = d.zvm("ssh", "-i", good, *ssh_opts, "sv", "--", "true", timeout=120)
    t.ok(r.returncode == 0 and ok_new.returncode == 0 and old.returncode == 255,
         "config set sshkeys on a running VM takes effect at once",
         f"{r.stderr!r} {ok_new.returncode} {ok_new.stderr!r} {old.returncode}")

    r = d.zvm("ssh", "nosuchvm", "--", "true")
    t.ok(r.returncode == 3, "zvm ssh of an unknown VM: exit 3", r.stderr)
    d.zvm("stop", "sv")
    first_contact(t, d, ssh_opts)


def first_contact(t, d, ssh_opts):
    """A user with no ~/.ssh/*.pub: zvm create makes zvm's own key (once, and
    says so), zvm ssh logs in with it; a VM with no key is refused at once
    with the fix named, and that fix works."""
    home = os.path.join(d.tmp, "home")
    os.makedirs(home)
    env = dict(os.environ, HOME=home)
    env.pop("XDG_DATA_HOME", None)
    key = os.path.join(home, ".local", "share", "zvm", "ssh", "id_ed25519")
    r = d.zvm("create", "fc", "--template", "std", "--memory", "512", env=env)
    t.ok(r.returncode == 0 and os.path.exists(key) and "made an ssh key" in r.stderr,
         f"zvm create without ~/.ssh/*.pub makes zvm's own key and says so: {r.stderr.strip()!r}", r.stderr)
    r = d.zvm("create", "nk", "--template", "std", "--no-ssh-keys", env=env)
    t.ok(r.returncode == 0 and "made an ssh key" not in r.stderr, "the key is made once", r.stderr)
    t0 = time.monotonic()
    d.request("POST", "/vms/fc/start")
    st = wait_agent(d, "fc", timeout=240)
    t.ok(st and st.get("agent") == "ready", f"the VM boots ({time.monotonic() - t0:.1f} s)", st)
    r = d.zvm("ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=60", "fc", "--", "cat", "/root/.ssh/authorized_keys",
              timeout=180, env=env)
    t.ok(r.returncode == 0 and open(key + ".pub").read().split()[1] in r.stdout,
         "zvm ssh with no -i logs in with zvm's own key", f"{r.returncode} {r.stdout!r} {r.stderr!r}")
    r = d.zvm("ssh", "nk", "--", "true", env=env)
    t.ok(r.returncode != 0 and f"zvm config set nk --ssh-key {key}.pub" in r.stderr,
         f"zvm ssh of a VM without keys fails at once and names the fix: {r.stderr.strip()!r}", r.stderr)
    r = d.zvm("config", "set", "nk", "--ssh-key", key + ".pub", env=env)
    show = d.zvm("config", "show", "nk").stdout
    t.ok(r.returncode == 0 and "sshkeys: ssh-ed25519" in show, "that fix sets the key", r.stderr + show)
    d.zvm("stop", "fc")


def scenario_llm_template(t, d):
    """The llm profile: Debian sid with llama.cpp-tools; llama-server runs
    in a booted guest."""
    if not build_template(t, d, "llm", "llm"):
        return
    status, tp = d.request("GET", "/templates/llm")
    t.ok(status == 200 and tp.get("profile") == "llm" and tp.get("suite") is None and tp.get("state") == "ready",
         "the template records its profile", tp)
    r = d.zvm("create", "lv", "--template", "llm", "--memory", "512", "--no-ssh-keys")
    d.request("POST", "/vms/lv/start")
    st = wait_agent(d, "lv", timeout=300)
    t.ok(st and st.get("agent") == "ready", "an llm guest boots to agent READY", st)
    r = d.zvm("exec", "lv", "--", "llama-server", "--version", timeout=120)
    out = r.stdout + r.stderr
    t.ok(r.returncode == 0 and "version" in out, f"llama-server runs in the guest: {out.strip().splitlines()[:1]}",
         f"{r.returncode} {out!r}")
    check_systemd_running(t, d, "lv")
    d.zvm("stop", "lv")

# Runs inside an llm guest: llama-server on the model disk, on a unix socket
# (as the agent will run it), asked over that socket with perl (perl-base is
# in every Debian guest; there is no curl): /health until ready, then a
# completion. Prints READY <ms>, the /completion answer, and the log on
# failure. Every wait is bounded.
LLM_GUEST_SCRIPT = r"""
set -u
ls -ln /models
cat > /tmp/req.pl <<'EOF'
use IO::Socket::UNIX;
my ($m, $u, $b) = @ARGV;
my $s = IO::Socket::UNIX->new(Peer => "/tmp/llm.sock") or exit 7;
print $s "$m $u HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n" .
         "Content-Type: application/json\r\nContent-Length: " . length($b) . "\r\n\r\n$b";
local $/; my $r = <$s>; print $r;
EOF
t0=$(date +%s%N)
llama-server -m /models/model.gguf --host /tmp/llm.sock -c 512 -t 2 --parallel 1 >/tmp/llama.log 2>&1 &
pid=$!
i=0
until perl /tmp/req.pl GET /health "" 2>/dev/null | grep -q '"ok"'; do
    i=$((i + 1))
    if [ $i -gt 900 ] || ! kill -0 $pid 2>/dev/null; then
        echo "NOT READY after $i tries"; tail -40 /tmp/llama.log; kill $pid 2>/dev/null; exit 1
    fi
    sleep 0.2
done
echo "READY $(( ($(date +%s%N) - t0) / 1000000 )) ms"
perl /tmp/req.pl POST /completion '{"prompt":"Hello from zvm","n_predict":8,"temperature":0,"ignore_eos":true}'
echo
kill $pid; wait $pid 2>/dev/null
exit 0
"""


def llm_answer(out):
    """The JSON body of the /completion answer in the guest script's output."""
    # zvm's text-mode output has turned the HTTP CRLFs into LFs.
    head = out.find("HTTP/1.1 200")
    start = out.find("\n{", head) + 1 if head >= 0 else 0
    if start <= 0:
        return {}
    try:
        return json.JSONDecoder().raw_decode(out[start:])[0]
    except ValueError:
        return {}


def model_disk(t, d):
    """A generated tiny model in zvmd's model store (zvm model generate): its JSON ({} on failure)."""
    t0 = time.monotonic()
    r = d.zvm("model", "generate", "tiny", "--shape", "tiny", "--quant", "q8_0", timeout=180)
    status, disk = d.request("GET", "/models/tiny")
    t.ok(r.returncode == 0 and status == 200 and disk.get("state") == "ready",
         f"zvm model generate tiny: {disk.get('image_size')} byte image in {time.monotonic() - t0:.2f} s",
         r.stdout + r.stderr)
    return disk if status == 200 and disk.get("state") == "ready" else {}


def start_llm_vm(t, d, name, disk):
    """Creates and starts an llm VM with the model disk; its status once the agent is READY (or None)."""
    r = d.zvm("create", name, "--template", "llm", "--memory", "1024", "--cores", "2", "--no-ssh-keys",
              "--set", f"model={disk['name']}")
    t.ok(r.returncode == 0, "create an llm VM with model: NAME", r.stderr)
    t0 = time.monotonic()
    d.request("POST", f"/vms/{name}/start")
    st = wait_agent(d, name, timeout=300)
    t.ok(st and st.get("agent") == "ready", f"the llm guest with the model disk is READY ({time.monotonic() - t0:.1f} s)",
         st)
    return st if st and st.get("agent") == "ready" else None


def scenario_llm_model(t, d):
    """A generated tiny model from the model store, attached to an llm guest
    (model: NAME): the real llama-server loads it from
    /models and generates tokens."""
    if not build_template(t, d, "llm", "llm"):
        return
    disk = model_disk(t, d)
    if not disk or not start_llm_vm(t, d, "lm", disk):
        return
    t0 = time.monotonic()
    r = d.zvm("exec", "--timeout", "400", "lm", "--", "sh", "-s", input=LLM_GUEST_SCRIPT, timeout=420)
    took = time.monotonic() - t0
    out = r.stdout
    t.ok(f" {disk['size']} " in out and "model.gguf" in out, "the guest sees /models/model.gguf at its size", out[:600])
    ready = re.search(r"READY (\d+) ms", out)
    answer = llm_answer(out)
    timings = answer.get("timings", {})
    t.ok(ready is not None, f"llama-server loads the generated model ({ready.group(1) if ready else '?'} ms "
         "from start to /health ok)", out[-3000:] + r.stderr[-1000:])
    t.ok(answer.get("tokens_predicted") == 8 and timings.get("predicted_n") == 8,
         f"it generates 8 tokens: {answer.get('content')!r}, {timings.get('prompt_per_second', 0):.1f} prompt tok/s, "
         f"{timings.get('predicted_per_second', 0):.1f} generated tok/s; whole exec {took:.1f} s",
         out[-3000:] + r.stderr[-1000:])
    d.zvm("stop", "lm")

# ---- hostile guest ----------------------------------------------------------------------

HOSTILE_HELPER = os.path.join(zt.BUILD, "tests", "helpers", "hostile-guest")
MKROOTFS_TINY = os.path.join(HERE, "..", "..", "initrd", "mkrootfs-tiny")
HOSTILE_CONTROL_PORT = 7000
# What the host may spend on one hostile guest. The console cap is the one
# this scenario gives zvmd (ZVM_CONSOLE_LOG_MAX, 256 KiB instead of 4 MiB so
# that the guest's slow serial console, ~50 KB/s under TCG on a loaded host,
# overruns it in seconds); a capped log rotated once holds at most twice
# the cap (issue 8). A zvmd without the cap ignores the variable. The run
# dir also holds the well-behaved VM's few KiB, hence the 1 MiB of slack. The RSS bound is
# ~8x what an idle zvmd with two VMs uses here (8.2-8.5 MiB, measured with
# this scenario): room for bounded READY buffers and agent answers (a legal
# exec answer is up to ~22 MiB), none for parsing a guest's 16 MiB array
# (~1.1 GiB). 400 held READY buffers reach only 34 MiB: the fd bound is
# what catches those. An ASan build idles at ~20 MiB and keeps up to
# 256 MiB of freed memory in quarantine (ASan's default), so there the bound
# is 384 MiB: it still catches the GiB-scale parse.
HOSTILE_CONSOLE_CAP = 256 << 10
HOSTILE_RUN_MAX = 2 * HOSTILE_CONSOLE_CAP + (1 << 20)
HOSTILE_RSS_MAX = 64 << 20
HOSTILE_RSS_MAX_ASAN = 384 << 20
HOSTILE_FDS_MAX = 100
# GET /vms p99 during the attack: under 10 ms (the issue's bound), or, where
# the host itself is noisier than that (TCG guests on 2 shared cores), no
# worse than 3x the idle phase's p99 measured side by side in the same run.
HOSTILE_P99_MAX_MS = 10.0
# Phases of the hostile guest (tests/helpers/hostile-guest.c): name, seconds.
# The flood runs until the guest has written 2 MiB more than the run dir may
# hold, or for 120 s.
HOSTILE_PHASES = (("idle", 5), ("ready-bad", 6), ("ready-flood", 15), ("ready", 3), ("agent-nested", 10),
                  ("agent-huge", 20), ("agent-stall", 15), ("flood", 120))
HOSTILE_FLOOD_ENOUGH = HOSTILE_RUN_MAX + (2 << 20)


def proc_rss(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def proc_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def tree_bytes(path):
    """Bytes of the regular files under path (console logs, state, secrets)."""
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))] if v else float("nan")


class HostileMonitor:
    """Watches zvmd while the hostile guest runs: GET /api/v1/vms latency,
    zvmd's RSS and fds, the run dir's size (every 0.3 s), and `zvm exec` on
    the well-behaved VM (back to back), each tagged with the current phase."""

    def __init__(self, d, good):
        self.d, self.good = d, good
        self.phase = "boot"
        self.latencies = []     # (phase, ms, status)
        self.samples = []       # (phase, rss, fds, run bytes)
        self.execs = []         # (phase, ok, seconds, detail)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.sample, daemon=True),
                        threading.Thread(target=self.exec_good, daemon=True)]

    def start(self):
        for th in self.threads:
            th.start()

    def finish(self):
        self.stop.set()
        for th in self.threads:
            th.join(timeout=90)

    def sample(self):
        run = os.path.join(self.d.root, "run")
        while not self.stop.wait(0.3):
            phase = self.phase
            t0 = time.perf_counter()
            try:
                status, _ = self.d.request("GET", "/vms", timeout=30)
            except OSError as e:
                status = f"{type(e).__name__}"
            self.latencies.append((phase, (time.perf_counter() - t0) * 1000.0, status))
            pid = self.d.proc.pid
            self.samples.append((phase, proc_rss(pid), proc_fds(pid), tree_bytes(run)))

    def exec_good(self):
        i = 0
        while not self.stop.is_set():
            phase = self.phase
            t0 = time.monotonic()
            try:
                r = self.d.zvm("exec", self.good, "--", "echo", f"good-{i}", timeout=60)
                ok = r.returncode == 0 and r.stdout == f"good-{i}\n"
                detail = f"{r.returncode} {r.stdout[-200:]!r} {r.stderr[-300:]!r}"
            except subprocess.TimeoutExpired:
                ok, detail = False, "zvm exec did not return within 60 s"
            self.execs.append((phase, ok, time.monotonic() - t0, detail))
            i += 1
            self.stop.wait(0.5)


def hostile_connect(d, vm, timeout):
    """A stream to the hostile guest's control port (hybrid: through the VM's
    vhost-device-vsock socket; kernel vsock: AF_VSOCK to its CID), retried
    until the guest listens or timeout."""
    st = d.request("GET", f"/vms/{vm}/status")[1]
    uds = os.path.join(d.root, "run", "zvm", "vms", str(st["vmid"]), "vsock.sock")
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if os.path.exists(uds):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(10)
                s.connect(uds)
                s.sendall(f"CONNECT {HOSTILE_CONTROL_PORT}\n".encode())
                reply = b""
                while not reply.endswith(b"\n"):
                    chunk = s.recv(1)
                    if not chunk:
                        break
                    reply += chunk
                if reply.startswith(b"OK"):
                    return s
                last = reply
                s.close()
            else:
                s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
                s.settimeout(10)
                s.connect((st["cid"], HOSTILE_CONTROL_PORT))
                return s
        except OSError as e:
            last = e
        time.sleep(0.5)
    raise RuntimeError(f"the hostile guest's control port did not answer within {timeout} s: {last!r}")


def hostile_phase(d, vm, name, seconds, connect_timeout=20, enough=None, started=None):
    """Runs one phase of the hostile guest and returns once it has ended
    (bounded by its length plus slack), with the guest's answer lines.
    started() is called once the guest says the phase began. For a phase
    that reports "progress BYTES", enough(BYTES) returning True ends it
    early (closing the control connection stops the phase)."""
    s = hostile_connect(d, vm, connect_timeout)
    s.settimeout(seconds + 30)
    buf = b""
    try:
        s.sendall(f"{name}:{seconds}\n".encode())
        while b"done" not in buf and b"error" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            if started and b"started" not in buf and b"started" in buf + chunk:
                started()
            buf += chunk
            progress = re.findall(rb"progress (\d+)\n", buf)
            if enough and progress and enough(int(progress[-1])):
                buf += b"(ended by the test)"
                break
    except socket.timeout:
        buf += b"(timeout)"
    finally:
        s.close()
    return buf.decode(errors="replace")


def last_progress(answer):
    found = re.findall(r"progress (\d+)", answer)
    return int(found[-1]) if found else 0


def scenario_hostile(t, d):
    """A hostile guest (tests/helpers/hostile-guest) runs its attacks in
    phases next to a well-behaved VM; the host's costs stay bounded and the
    good VM keeps working."""
    if not os.access(HOSTILE_HELPER, os.X_OK):
        t.ok(False, f"{HOSTILE_HELPER} is built (needs musl-gcc)")
        return
    img = os.path.join(d.tmp, "hostile.img")
    r = subprocess.run([MKROOTFS_TINY, "--agent", HOSTILE_HELPER, img], capture_output=True, text=True, timeout=120)
    if not t.ok(r.returncode == 0, "a tiny image with the hostile guest as its agent", r.stderr):
        return
    create(t, d, "good")
    create(t, d, "hv", rootfs=img)
    for vm in ("good", "hv"):
        status, body = d.request("POST", f"/vms/{vm}/start")
        t.ok(status == 200, f"start {vm}: 200 ({status})", body)
    st = wait_agent(d, "good", timeout=120)
    if not t.ok(st and st.get("agent") == "ready", "the good VM's agent is ready", st):
        return
    asan = "libasan" in open(f"/proc/{d.proc.pid}/maps").read()
    rss_max = HOSTILE_RSS_MAX_ASAN if asan else HOSTILE_RSS_MAX
    rss_idle = proc_rss(d.proc.pid)

    mon = HostileMonitor(d, "good")
    mon.start()
    hostile_exec = {}
    notes = {}
    try:
        for name, seconds in HOSTILE_PHASES:
            mon.phase = name
            exec_thread = None
            if name.startswith("agent-"):
                # zvmd's own calls to the hostile agent: health pings (every
                # second here) and an exec a user runs on it, sent once the
                # guest's phase has had a second to listen.
                def run_exec(phase=name):
                    time.sleep(1)
                    t0 = time.monotonic()
                    try:
                        r = d.zvm("exec", "--timeout", "5", "hv", "--", "true", timeout=120)
                        hostile_exec[phase] = (r.returncode, time.monotonic() - t0, r.stderr.strip()[-200:])
                    except subprocess.TimeoutExpired:
                        hostile_exec[phase] = (None, time.monotonic() - t0, "no answer within 120 s")
                exec_thread = threading.Thread(target=run_exec, daemon=True)
            # The guest boots while the first phase waits for its control port.
            answer = hostile_phase(d, "hv", name, seconds, connect_timeout=120 if name == "idle" else 20,
                                   enough=lambda n: n >= HOSTILE_FLOOD_ENOUGH,
                                   started=exec_thread.start if exec_thread else None)
            notes[name] = re.sub(r"(progress \d+\n)+", lambda m: m.group(0).splitlines()[-1] + " | ",
                                 answer).strip().replace("\n", " | ")
            if exec_thread and exec_thread.ident:
                exec_thread.join(timeout=130)
            state = (d.request("GET", "/vms/hv/status")[1] or {}).get("agent")
            if name in ("ready-bad", "ready-flood"):
                t.ok(state == "waiting", f"after {name}: the hostile VM's agent is still waiting (not ready)",
                     f"agent={state} guest said {answer!r}")
            elif name == "ready":
                st = wait_agent(d, "hv", timeout=10)
                for _ in range(2):      # a READY lost to a busy host: send it again
                    if (st or {}).get("agent") == "ready":
                        break
                    hostile_phase(d, "hv", name, seconds)
                    st = wait_agent(d, "hv", timeout=10)
                t.ok((st or {}).get("agent") == "ready", "a READY with the real secret is accepted", st)
    finally:
        mon.phase = "after"
        time.sleep(1)
        mon.finish()

    # -- what the host paid -------------------------------------------------------------
    phases = [n for n, _ in HOSTILE_PHASES]
    for name in phases:
        lat = [ms for p, ms, _ in mon.latencies if p == name]
        smp = [x for x in mon.samples if x[0] == name]
        exs = [x for x in mon.execs if x[0] == name]
        t.diag(f"phase {name}: GET /vms n={len(lat)} p50={percentile(lat, 50):.1f} ms "
               f"p99={percentile(lat, 99):.1f} ms max={max(lat, default=float('nan')):.1f} ms; "
               f"rss_max={max((x[1] for x in smp), default=0) / 2**20:.1f} MiB "
               f"fds_max={max((x[2] for x in smp), default=0)} "
               f"run_max={max((x[3] for x in smp), default=0) / 2**20:.2f} MiB; "
               f"good exec {sum(1 for x in exs if x[1])}/{len(exs)} ok, "
               f"slowest {max((x[2] for x in exs), default=0):.1f} s"
               + (f"; hostile exec rc={hostile_exec[name][0]} in {hostile_exec[name][1]:.1f} s "
                  f"({hostile_exec[name][2]})" if name in hostile_exec else ""))
        t.diag(f"  guest: {notes.get(name, '')[:300]}")
    attack = [n for n in phases if n != "idle"]
    lat = [ms for p, ms, _ in mon.latencies if p in attack]
    bad_status = [(p, st) for p, _, st in mon.latencies if st != 200 and p in attack]
    p99 = percentile(lat, 99)
    rss = max((x[1] for x in mon.samples if x[0] in attack), default=0)
    fds = max((x[2] for x in mon.samples if x[0] in attack), default=0)
    run = max((x[3] for x in mon.samples), default=0)
    t.diag(f"p99={p99:.1f} ms (n={len(lat)}, max {max(lat, default=float('nan')):.1f} ms)")
    t.diag(f"rss_max={rss / 2**20:.1f} MiB (idle before the attack {rss_idle / 2**20:.1f} MiB, asan={asan})")
    t.diag(f"fds_max={fds}")
    t.diag(f"run_max={run / 2**20:.2f} MiB")

    failed = [x for x in mon.execs if not x[1]]
    t.ok(len(mon.execs) >= 10 and not failed,
         f"zvm exec on the good VM succeeded every time ({len(mon.execs) - len(failed)}/{len(mon.execs)})",
         "\n".join(f"{p}: {s:.1f} s {det}" for p, _, s, det in failed[:10]))
    t.ok(len(lat) >= 150 and not bad_status, f"GET /api/v1/vms answered 200 every time ({len(lat)} requests)",
         bad_status[:20])
    idle_lat = [ms for p, ms, _ in mon.latencies if p == "idle"]
    p99_idle = percentile(idle_lat, 99)
    p99_bound = max(HOSTILE_P99_MAX_MS, 3 * p99_idle)
    t.ok(p99 < p99_bound, f"GET /api/v1/vms p99 {p99:.1f} ms under attack < {p99_bound:.1f} ms "
         f"(10 ms, or 3x the idle p99 of {p99_idle:.1f} ms on a noisy host)")
    t.ok(0 < rss < rss_max, f"zvmd's RSS stayed under {rss_max >> 20} MiB (max {rss / 2**20:.1f} MiB)")
    t.ok(0 < fds < HOSTILE_FDS_MAX, f"zvmd's open fds stayed under {HOSTILE_FDS_MAX} (max {fds})")
    flooded = last_progress(notes.get("flood", ""))
    t.ok(flooded > HOSTILE_RUN_MAX, f"the console flood wrote more than the run dir may hold "
         f"({flooded / 2**20:.1f} MiB > {HOSTILE_RUN_MAX / 2**20:.1f} MiB), so the next check means something")
    t.ok(run < HOSTILE_RUN_MAX, f"the run dir stayed under {HOSTILE_RUN_MAX / 2**20:.1f} MiB "
         f"(twice the {HOSTILE_CONSOLE_CAP >> 10} KiB console cap, + 1 MiB) (max {run / 2**20:.2f} MiB)")
    # --timeout 5 plus zvmd's slack for the call and the transfer: a host
    # that bounds each agent answer is done well within 30 s, and says why
    # it failed (a bogus answer passed on as a result makes zvm exit 137
    # without a word).
    t.ok(len(hostile_exec) == 3 and all(x[0] not in (None, 0) and x[2] and x[1] < 30 for x in hostile_exec.values()),
         "zvm exec --timeout 5 on the hostile VM fails with an error within 30 s in every agent phase", hostile_exec)

    known = ""
    try:
        known = open(os.path.join(d.root, "var", "lib", "zvm", "ssh_known_hosts")).read()
    except OSError:
        pass
    entries = [x for x in known.splitlines() if x and not x.startswith("#")]
    poisoned = [x for x in entries if not re.fullmatch(r"[a-z0-9_-]+\.zvm (ssh-[a-z0-9-]+|ecdsa-[a-z0-9-]+) "
                                                           r"[A-Za-z0-9+/]+=*", x) or "Injected" in x]
    t.ok(not poisoned, "the hostile READY's host keys put no CA marker, option or extra host in known_hosts",
         poisoned)
    status, host = d.request("GET", "/host", timeout=30)
    t.ok(status == 200 and d.proc.poll() is None, "zvmd is alive and answers after the attack", d.log_text()[-2000:])
    st = d.request("GET", "/vms/good/status")[1]
    t.ok(st.get("state") == "running" and st.get("agent") == "ready", "the good VM still runs with its agent", st)
    for vm in ("hv", "good"):
        d.request("POST", f"/vms/{vm}/stop")


def scenario_llm_serve(t, d):
    """The agent's llm supervisor in an llm guest with a model disk:
    llm-start, ready in info, the OpenAI endpoints through the vsock
    bridge (streamed and not), a killed llama-server restarted, llm-stop."""
    if not build_template(t, d, "llm", "llm"):
        return
    disk = model_disk(t, d)
    st = start_llm_vm(t, d, "ls", disk) if disk else None
    if st:
        zvmd_llm.serve(t, d, "ls", st["vmid"])
    d.zvm("stop", "ls")


def scenario_llm_api(t, d):
    """zvmd serves inference by itself: two llm VMs sharing one model disk,
    the OpenAI-compatible API on zvmd's socket (zvmd_serve.py)."""
    if not build_template(t, d, "llm", "llm"):
        return
    model = "tiny"
    if not zvmd_serve.store_model(t, d, model):
        return

    def create_vm(name):
        # Small and quick under TCG: a short context, one slot, two threads.
        r = d.zvm("create", name, "--template", "llm", "--memory", "768", "--cores", "2", "--no-ssh-keys",
                  "--set", f"model={model}", "--set", "inference=threads=2,ctx=2048,parallel=1,batch=64")
        t.ok(r.returncode == 0, f"create {name}, an llm VM with model: {model}", r.stderr)

    zvmd_serve.serve_api(t, d, create_vm, model)


SLOW_SECONDS = 3


def slow_path_dir():
    """A directory to put first in zvmd's PATH: mkfs.ext4 and
    vhost-device-vsock that sleep SLOW_SECONDS, then exec the real program
    (a helper exits 1 at once while the file 'fail-helper' exists there)."""
    wrap = tempfile.mkdtemp(prefix="zvm-slow-")
    os.chmod(wrap, 0o755)       # the helper runs as the VM's own uid (issue 10): it must reach its wrapper
    for prog in ("mkfs.ext4", "vhost-device-vsock"):
        real = shutil.which(prog)
        if not real:
            raise zt.Skip(f"{prog} is not installed")
        fail = (f'[ -e {wrap}/fail-helper ] && {{ echo "refusing on purpose" >&2; exit 1; }}\n'
                if prog == "vhost-device-vsock" else "")
        path = os.path.join(wrap, prog)
        with open(path, "w") as f:
            f.write(f"#!/bin/sh\n{fail}sleep {SLOW_SECONDS}\nexec {real} \"$@\"\n")
        os.chmod(path, 0o755)
    return wrap


def orphans(d):
    """Processes other than zvmd whose command line names the test's root."""
    mine = {d.proc.pid} if d.proc and d.proc.poll() is None else set()
    return [p for p in procs_with(d.root) if p not in mine and p != os.getpid()]


def in_thread(fn):
    """Runs fn in a thread; a zvmd killed under it is no error of the test."""
    out = {}

    def run():
        try:
            out["result"] = fn()
        except OSError as e:
            out["error"] = e
    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th, out


def start_in_thread(d, vm):
    out = {"t0": time.monotonic()}

    def run():
        out["status"], out["body"] = d.request("POST", f"/vms/{vm}/start")
        out["took"] = time.monotonic() - out["t0"]
    th, _ = in_thread(run)
    return th, out


def scenario_slow_start(t, d):
    """The loop keeps answering while a start waits on a slow mkfs.ext4 and
    a slow vsock helper (PATH wrappers that sleep, then run the real
    programs); the VM still reaches running. A helper that fails is undone:
    the start answers the error, the VM is stopped, nothing is left."""
    create(t, d, "slow")
    th, out = start_in_thread(d, "slow")
    worst, n, states = 0.0, 0, set()
    while th.is_alive() and n < 2000:
        t0 = time.monotonic()
        status, vms = d.request("GET", "/vms", timeout=10)
        worst = max(worst, time.monotonic() - t0)
        n += 1
        if status == 200:
            states.update(v["state"] for v in vms if v["name"] == "slow")
        time.sleep(0.02)
    th.join(timeout=120)
    t.ok(out.get("status") == 200 and out.get("took", 0) >= 2 * SLOW_SECONDS,
         f"start waited for the slow mkfs and helper and answered 200 ({out.get('took', 0):.1f}s)", out)
    t.ok("starting" in states, f"GET /vms showed the VM starting meanwhile ({sorted(states)})")
    # Seen from here, a request also waits for this process and for CPU
    # (two cores, TCG guests of scenarios beside it: 137 ms seen with zvmd's
    # own worst iteration at 47 ms wall). zvmd's loop itself is held to 150
    # ms by check_loop(); this bound catches a loop that waits on the
    # wrappers' sleeps (SLOW_SECONDS each).
    t.ok(n >= 20 and worst < 0.5, f"GET /vms answered throughout the start, worst {worst * 1000:.0f} ms over {n}")
    t.ok(d.wait_console("slow", "zvm-tiny: ready", timeout=90), "the guest booted")
    d.request("POST", "/vms/slow/stop")
    st = d.wait_state("slow", ["stopped", "crashed"], timeout=30)
    t.ok(st and st["state"] == "stopped", "stopped", st)

    open(os.path.join(d.slow_dir, "fail-helper"), "w").close()
    status, body = d.request("POST", "/vms/slow/start")
    st = d.wait_state("slow", ["stopped", "crashed"], timeout=10)
    t.ok(status == 500 and "vhost-device-vsock did not come up" in body.get("message", "")
         and "refusing on purpose" in body.get("message", ""), f"a helper that fails: the start says why ({status})",
         body)
    t.ok(st and st["state"] == "stopped" and not orphans(d) and not d.run_state(st["vmid"]),
         "and the VM is stopped, with no process and no state.json left", f"{st} {orphans(d)}")
    os.unlink(os.path.join(d.slow_dir, "fail-helper"))

    # A step that fails in the sandboxed child, after the fork (nothing
    # waits for it on the loop): the VM's uid may not reach the helper.
    os.chmod(d.slow_dir, 0o700)
    try:
        status, body = d.request("POST", "/vms/slow/start")
        st = d.wait_state("slow", ["stopped", "crashed"], timeout=10)
    finally:
        os.chmod(d.slow_dir, 0o755)
    msg = body.get("message", "") if isinstance(body, dict) else str(body)
    t.ok(status == 500 and "vhost-device-vsock did not come up (it exited)" in msg
         and f"zvmd: cannot run {d.slow_dir}/vhost-device-vsock: execve: Permission denied" in msg,
         f"a helper its uid cannot run: the start names the failed step ({status})", body)
    t.ok(st and st["state"] == "stopped" and not orphans(d) and not d.run_state(st["vmid"]),
         "  and the VM is stopped, with nothing left", f"{st} {orphans(d)}")

    th, out = start_in_thread(d, "slow")
    time.sleep(0.5)
    status, _ = d.request("POST", "/vms/slow/stop")
    th.join(timeout=30)
    st = d.wait_state("slow", ["stopped", "crashed"], timeout=10)
    t.ok(status == 200 and out.get("status") == 500 and "cancelled" in out.get("body", {}).get("message", ""),
         f"stop during the preparation cancels the start ({status}, {out.get('status')})", out)
    t.ok(st and st["state"] == "stopped" and not orphans(d), "nothing of it is left", f"{st} {orphans(d)}")


def wait_for(pred, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    return None


def scenario_start_kill9(t, d):
    """kill -9 of zvmd at any point of a start or a stop: state.json (written
    before the helper and QEMU are spawned) lets the next zvmd adopt the
    QEMU or end the helper that has none, and carry a stop on to stopped."""
    vm = create(t, d, "k9")
    vmid = vm.get("vmid")
    # 1. Killed while the helper is being spawned: no QEMU yet.
    th, out = start_in_thread(d, "k9")
    rs = wait_for(lambda: d.run_state(vmid).get("helper_pid") and d.run_state(vmid), 30)
    t.ok(rs and rs.get("starting") and not rs.get("pid"), "state.json names the helper before QEMU exists", rs)
    d.kill9()
    th.join(timeout=30)
    helper = (rs or {}).get("helper_pid")
    t.ok(helper and pid_gone(helper, rs.get("helper_starttime")) is False,
         "the helper outlived zvmd", f"{helper}")
    d.start()
    st = d.wait_state("k9", ["stopped", "crashed", "running"], timeout=10)
    gone = wait_for(lambda: pid_gone(helper, rs.get("helper_starttime")), 10) if helper else False
    t.ok(st and st["state"] == "stopped" and gone and wait_for(lambda: not orphans(d), 10) is not None,
         "the new zvmd ended the orphaned helper; the VM is stopped", f"{st} {orphans(d)}")
    # 2. Killed right after the start answered: QEMU is re-adopted.
    status, body = d.request("POST", "/vms/k9/start")
    t.ok(status == 200, f"start again ({status})", body)
    pid = body.get("pid") or (d.wait_state("k9", ["running"], timeout=10) or {}).get("pid")
    d.kill9()
    d.start()
    st = wait_agent(d, "k9", timeout=120)
    t.ok(st and st["state"] == "running" and st.get("pid") == pid, f"re-adopted with the same QEMU pid ({pid})", st)
    r = d.zvm("exec", "k9", "--", "echo", "hi")
    t.ok(r.returncode == 0 and r.stdout == "hi\n", "zvm exec works", f"{r.returncode} {r.stdout!r} {r.stderr!r}")
    # 3. Killed with a stop in flight: the next zvmd ends it stopped.
    th, _ = in_thread(lambda: d.request("POST", "/vms/k9/shutdown?timeout=20"))
    rs = wait_for(lambda: d.run_state(vmid).get("stop_requested") and d.run_state(vmid), 10)
    t.ok(rs and rs.get("stop_requested"), "state.json records the stop in flight", rs)
    d.kill9()
    d.start()
    st = d.wait_state("k9", ["stopped", "crashed"], timeout=60)
    t.ok(st and st["state"] == "stopped", "the stop in flight ends as stopped, not crashed", st)
    t.ok(wait_for(lambda: not orphans(d), 10) is not None and pid_gone(pid),
         "no QEMU or helper of the test is left", f"{orphans(d)}")


def scenario_chaos(t, d):
    """The short chaos run of issue 14 (bench/chaos does 100 kills): zvmd
    killed with SIGKILL at random moments while two client threads create,
    start, reconfigure, stop and delete VMs; every invariant of
    zvmd_chaos.Chaos.check() after each restart and at the end."""
    kills = int(os.environ.get("ZVM_CHAOS_KILLS", "6"))
    seed = int(os.environ.get("ZVM_CHAOS_SEED", str(int(time.time()))))
    t.diag(f"chaos: {kills} kills, seed {seed} (ZVM_CHAOS_SEED={seed} replays the same schedule)")
    c = Chaos(d, seed=seed, log=t.diag)
    took = c.run(kills)
    t.diag(f"chaos: {took:.0f} s, client calls {c.ops}, {c.checks} invariant checks")
    t.ok(c.checks == kills + 1, f"invariants checked after each of {kills} restarts and at the end ({c.checks})")
    t.ok(c.ops["ok"] >= kills, f"the client loop made progress between kills ({c.ops})")
    t.ok(not c.failures, "no invariant broken: VMs re-adopted, no orphan, no duplicate, configs intact, "
         "acknowledged calls on disk, no leaked file", "\n".join(c.failures[:20]))


def scenario_delete_after_kill(t, d):
    """Found by bench/chaos: zvmd killed during a start's mkfs.ext4 (a slow
    one here) leaves .upper.img.tmp, agent.secret and the READY socket; the
    next zvmd ends the start, and a delete then removes the VM's run and
    data dirs whole."""
    vm = create(t, d, "dk")
    vmid = vm.get("vmid")
    data = os.path.join(d.root, "var", "lib", "zvm", "vms", str(vmid))
    run = os.path.join(d.root, "run", "zvm", "vms", str(vmid))
    th, _ = start_in_thread(d, "dk")
    tmp = wait_for(lambda: os.path.exists(os.path.join(data, ".upper.img.tmp")), 30)
    t.ok(tmp, "the start is in its mkfs.ext4 (.upper.img.tmp exists)")
    d.kill9()
    th.join(timeout=30)
    d.start()
    st = d.wait_state("dk", ["stopped", "crashed"], timeout=30)
    t.ok(st and st["state"] in ("stopped", "crashed"), "the new zvmd ended the cut start", st)
    # The cut start's half-made layer is not truncated on the loop: it goes
    # aside (".#deleted-upper.*") to the disk worker, and the start goes on.
    t.ok(os.path.exists(os.path.join(data, ".upper.img.tmp")), "the cut start left .upper.img.tmp")
    status, body = d.request("POST", "/vms/dk/start")
    t.ok(status == 200 and body.get("state") == "running", f"a new start runs ({status})", body)
    left = [n for n in os.listdir(data) if n != "upper.img"] if os.path.exists(data) else ["(no data dir)"]
    t.ok(not left and os.path.exists(os.path.join(data, "upper.img")),
         "its layer is made anew; nothing of the cut one is left (the worker removed it)", left)
    status, _ = d.request("POST", "/vms/dk/stop")
    t.ok(status == 200, f"stop ({status})")
    status, _ = d.request("DELETE", "/vms/dk")
    t.ok(status in (200, 204), f"delete ({status})")
    t.ok(not os.path.exists(data) and not os.path.exists(run), "no run or data dir outlives the VM",
         f"{os.listdir(data) if os.path.exists(data) else ''} {os.listdir(run) if os.path.exists(run) else ''}")

    # A file zvm did not make in a VM's data dir is never removed with it.
    vm = create(t, d, "mine")
    data = os.path.join(d.root, "var", "lib", "zvm", "vms", str(vm.get("vmid")))
    os.makedirs(data, exist_ok=True)
    with open(os.path.join(data, "mine.img"), "w") as f:
        f.write("the user's\n")
    status, _ = d.request("DELETE", "/vms/mine")
    t.ok(status in (200, 204) and os.path.exists(os.path.join(data, "mine.img")),
         f"delete keeps a file the user put in the VM's data dir ({status})")

    # What the worker had not removed when zvmd was killed goes at start.
    aside = [os.path.join(d.root, "run", "zvm", "vms", ".#deleted-4242-1"),
             os.path.join(d.root, "var", "lib", "zvm", "vms", ".#deleted-4242-1")]
    for a in aside:
        os.makedirs(os.path.join(a, "vsock"))
        with open(os.path.join(a, "upper.img"), "w") as f:
            f.write("x")
    d.kill9()
    d.start()
    t.ok(not any(os.path.exists(a) for a in aside), "a restarted zvmd removes the .#deleted-* dirs left behind")


def scenario_crash_writes(t, d):
    """Crash-consistency (issue 14): zvmd killed at every step of the atomic
    writes of a VM config (create, PATCH), tokens.conf, a start's
    state.json/running.conf/agent.secret, known_hosts and a model record:
    each file old or new, never torn;
    the next zvmd starts, loads every config, leaves no temporary and no
    orphan. ZVM_CRASH_ROUNDS repeats every trial (bench/crash: ~1000)."""
    rounds = int(os.environ.get("ZVM_CRASH_ROUNDS", "1"))
    base = create(t, d, "base")
    vmid = base.get("vmid")
    c = CrashTrials(d, log=t.diag)
    for _ in range(rounds):
        crash_paths(c, d, vmid, f"run/zvm/vms/{vmid}")
    t.diag(f"crash_writes: {c.trials} trials, steps per path {c.per_path}")
    t.ok(len(c.per_path) == 6 and c.trials >= 6 * 6 * rounds,
         f"every path was tried at each of its steps ({c.trials} trials)", c.broken)
    t.ok(not c.torn, f"no torn file in {c.trials} trials: each is the old or the new version",
         "\n".join(str(x) for x in c.torn[:10]))
    t.ok(not c.broken, "after every crash zvmd starts, loads every config, leaves no temporary and no orphan",
         "\n".join(c.broken[:20]))


SCENARIOS = {name[len("scenario_"):]: fn for name, fn in globals().items() if name.startswith("scenario_")}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in SCENARIOS:
        print(f"usage: {sys.argv[0]} {{{','.join(SCENARIOS)}}}", file=sys.stderr)
        sys.exit(2)
    require_daemon()
    t = zt.Tap()
    name = sys.argv[1]
    extra = []
    port = None
    if name in ("tcp_token", "llm_api", "policy") or name.startswith("tls_"):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        extra = ["--listen", f"127.0.0.1:{port}"]
        if name == "llm_api":
            extra.append("--plain-http")
    if name == "console_flood":
        extra = ["--console-log-max", str(CONSOLE_CAP)]
    if name in ("agent_health", "agent_bounds", "hostile"):
        os.environ["ZVM_AGENT_HEALTH_SECONDS"] = "1"
    if name == "pool":
        os.environ["ZVM_POOL"] = zvmd_pool.POOL_SPEC
    if name == "user_net_passt":
        os.environ["ZVM_USER_NET"] = "passt"
    if name == "hostile":
        os.environ["ZVM_CONSOLE_LOG_MAX"] = str(HOSTILE_CONSOLE_CAP)
    cache_tmp = None
    if name == "template_adopt":
        cache_tmp = tempfile.mkdtemp(prefix="zvm-slow-")
        os.environ["ZVM_MKROOTFS_TINY"] = slow_tiny_builder(cache_tmp)
    if name == "templates":
        # Its builds must really run (fail, be cancelled): a cache of its own.
        cache_tmp = tempfile.mkdtemp(prefix="zvm-cache-")
        os.environ["ZVM_CACHE_DIR"] = cache_tmp
    slow_dir = None
    if name in ("slow_start", "start_kill9", "delete_after_kill"):
        slow_dir = slow_path_dir()
        os.environ["PATH"] = slow_dir + ":" + os.environ.get("PATH", "")
    d = Zvmd(t, extra_args=extra)
    d.tcp_port = port
    d.slow_dir = slow_dir
    try:
        # policy: zvm.conf and group zvm come first, the scenario starts zvmd.
        if name not in ("openapi", "notify", "policy"):
            d.start()
        SCENARIOS[name](t, d)
    except zt.Skip as e:  # the host lacks something: the Tap reports it once, at done()
        t.skip(str(e))
    except Exception as e:  # a crash of the test is a failure, with the daemon's log
        t.ok(False, f"scenario raised {type(e).__name__}: {e}", d.log_text())
    finally:
        d.terminate()
        d.check_loop(t)
        report = d.sanitizer_report() if d.proc else ""
        # A clean log is not worth a test of its own when nothing else ran:
        # the scenario is then reported as skipped as a whole.
        if d.proc and (report or not t.skipped or t.n):
            t.ok(not report, "zvmd's log has no sanitizer report (ASan/UBSan/LSan builds report there)", report)
        if t.failed:
            t.diag("zvmd log:\n" + d.log_text())
        d.cleanup()
        if cache_tmp:
            shutil.rmtree(cache_tmp, ignore_errors=True)
        if slow_dir:
            shutil.rmtree(slow_dir, ignore_errors=True)
    t.done()


if __name__ == "__main__":
    main()
