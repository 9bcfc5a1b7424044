#!/usr/bin/env python3
"""zvm-agent end to end (api/agent-protocol.md): boots the tiny template in a
real microVM with hybrid vsock (vhost-device-vsock) and the per-VM secret on
fw_cfg, and talks to the agent the way zvmd does.

Checks READY (secret, boot timings), authentication, ping, info, exec
(exit codes, stdin, env, cwd, signals, truncation, timeout of a whole
process group), bad input of every kind (the connection survives it), the
bound of 16 connections served at once, 8 concurrent execs, file-write /
file-read, set-authorized-keys and shutdown (QEMU exits by itself).

Every wait is bounded; a watchdog ends the run after WATCHDOG_S whatever
happens, and QEMU and vhost-device-vsock are killed on every way out."""
import base64
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zvmtest as zt  # noqa: E402

AGENT_PORT = 1024
READY_PORT = 1025
GUEST_CID = 3
WATCHDOG_S = 115
READY_TIMEOUT = 60.0            # from QEMU start; a TCG boot takes ~2-5 s
STEP_TIMEOUT = 15.0             # any single answer
LINE_MAX = 8 << 20
INITRD_STAGES = ("init", "mounts", "root-dev", "root-mount", "switch")

t = zt.Tap()
procs = []                      # (name, Popen) to kill on the way out
tmpdir = None


def cleanup():
    for _, p in procs:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
    if tmpdir and tmpdir.startswith(tempfile.gettempdir()):
        shutil.rmtree(tmpdir, ignore_errors=True)


def on_watchdog(signum, frame):
    print(f"Bail out! watchdog: test-agent took longer than {WATCHDOG_S} s", flush=True)
    console_tail()
    cleanup()
    os._exit(1)


def console_tail():
    if tmpdir:
        try:
            with open(os.path.join(tmpdir, "console.log"), errors="replace") as f:
                t.diag("console:\n" + f.read()[-4000:])
        except OSError:
            pass


# ---- hybrid vsock, host side ---------------------------------------------------

def hybrid_connect(uds, port, timeout=STEP_TIMEOUT):
    return zt.hybrid_connect(uds, port, timeout)


class Conn:
    """One connection to the agent: JSON lines, each read bounded."""

    def __init__(self, uds, secret=None, timeout=STEP_TIMEOUT):
        self.s = hybrid_connect(uds, AGENT_PORT, timeout)
        self.buf = b""
        if secret is not None:
            r = self.call({"op": "auth", "secret": secret})
            if r != {"ok": True}:
                self.close()
                raise RuntimeError(f"auth failed: {r}")

    def send(self, data):
        if isinstance(data, dict):
            data = json.dumps(data).encode() + b"\n"
        self.s.sendall(data)

    def line(self, timeout=STEP_TIMEOUT):
        """The next line, parsed; None at EOF."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from the agent")
            self.s.settimeout(left)
            try:
                d = self.s.recv(1 << 20)
            except ConnectionResetError:
                d = b""
            if not d:
                return None
            self.buf += d
        ln, self.buf = self.buf.split(b"\n", 1)
        return json.loads(ln)

    def call(self, req, timeout=STEP_TIMEOUT):
        """Sends a request; its answer (EOF instead is an error)."""
        self.send(req)
        r = self.line(timeout)
        if r is None:
            raise ConnectionError(f"the agent closed the connection instead of answering {str(req)[:80]}")
        return r

    def close(self):
        self.s.close()


def b64(data):
    return base64.b64encode(data).decode()


def unb64(s):
    return base64.b64decode(s, validate=True)


def exec_req(argv, **kw):
    return dict({"id": "x", "op": "exec", "argv": argv}, **kw)


def short(r):
    """A response without its big fields, for diagnostics."""
    if not isinstance(r, dict):
        return r
    return {k: (v if not isinstance(v, str) or len(v) < 200 else f"<{len(v)} chars>") for k, v in r.items()}


# ---- the checks -------------------------------------------------------------------

def check_ready(ready, secret, seconds):
    t.ok(ready.get("op") == "ready", f"READY arrived on <uds>_{READY_PORT} {seconds:.2f} s after QEMU start",
         short(ready))
    t.ok(isinstance(ready.get("secret"), str) and secrets.compare_digest(ready["secret"], secret),
         "READY carries the VM's secret (read from fw_cfg)")
    t.ok(isinstance(ready.get("agent_version"), str) and ready["agent_version"], "READY has agent_version",
         short(ready))
    up = ready.get("uptime")
    t.ok(isinstance(up, (int, float)) and 0 < up < READY_TIMEOUT, f"READY has the guest uptime ({up} s)")
    timing = ready.get("initrd_timing")
    ok = isinstance(timing, dict) and all(isinstance(timing.get(k), int) for k in INITRD_STAGES)
    t.ok(ok, f"READY has the initrd's stage timings ({timing})", short(ready))
    if ok:
        vals = [timing[k] for k in INITRD_STAGES]
        t.ok(vals == sorted(vals) and vals[0] > 0, "stage timings are monotonic ms since kernel start")


def check_auth(uds, secret):
    for name, first in [("no auth line", {"op": "ping", "id": 1}),
                        ("wrong secret", {"op": "auth", "secret": "0" * 64}),
                        ("secret of the wrong length", {"op": "auth", "secret": secret[:-2]}),
                        ("garbage first line", b"hello\n")]:
        c = Conn(uds)
        try:
            c.send(first)
            c.send({"op": "ping", "id": 2})
            r = c.line()
            r2 = c.line()
            t.ok(isinstance(r, dict) and r.get("ok") is False and r.get("error", {}).get("code") == "EACCES"
                 and r2 is None, f"{name}: refused with EACCES and closed", (r, r2))
        finally:
            c.close()
    c = Conn(uds)
    try:
        r = c.call({"op": "auth", "secret": secret})
        t.ok(r == {"ok": True}, "right secret: {\"ok\":true}", r)
    finally:
        c.close()


def check_basics(c):
    r = c.call({"id": {"n": [1, "two", None]}, "op": "ping"})
    t.ok(r == {"id": {"n": [1, "two", None]}, "ok": True, "pong": True}, "ping: pong, any JSON id echoed", r)
    r = c.call({"id": 5, "op": "info"})
    ok = (r.get("ok") and r.get("agent_version") and r.get("hostname") == "zvm" and r.get("kernel")
          and isinstance(r.get("uptime"), float) and isinstance(r.get("load"), list) and len(r["load"]) == 3
          and isinstance(r.get("memory"), dict) and 100000 < (r["memory"].get("total_kib") or 0) <= 262144
          and 0 < r["memory"]["available_kib"] <= r["memory"]["total_kib"]
          and isinstance(r.get("initrd_timing"), dict) and "switch" in r["initrd_timing"])
    t.ok(ok, f"info: version, hostname, kernel {r.get('kernel')}, uptime, memory, load, initrd timing", r)


def check_exec(c):
    r = c.call(exec_req(["true"]))
    t.ok(r.get("ok") and r["exit_code"] == 0 and r["signal"] is None and not r["timed_out"]
         and r["stdout"] == "" and r["stderr"] == "", "exec true: exit_code 0", r)
    r = c.call(exec_req(["sh", "-c", "echo out; echo err >&2; exit 3"]))
    t.ok(r.get("ok") and r["exit_code"] == 3 and unb64(r["stdout"]) == b"out\n" and unb64(r["stderr"]) == b"err\n",
         "exec exit 3, stdout and stderr apart", r)
    data = os.urandom(200 * 1024)
    r = c.call(exec_req(["cat"], stdin=b64(data)))
    t.ok(r.get("ok") and unb64(r["stdout"]) == data and r["exit_code"] == 0,
         "exec cat: 200 KiB of binary stdin comes back intact", short(r))
    r = c.call(exec_req(["sh", "-c", 'echo "$FOO|$PATH"; pwd'], env=["FOO=bar baz", "X=1"], cwd="/tmp"))
    t.ok(r.get("ok") and unb64(r["stdout"]) == b"bar baz|/usr/sbin:/usr/bin:/sbin:/bin\n/tmp\n",
         "exec env (on the minimal PATH) and cwd", r)
    r = c.call(exec_req(["sh", "-c", "kill -TERM $$"]))
    t.ok(r.get("ok") and r["exit_code"] is None and r["signal"] == "SIGTERM", "exec killed by a signal: its name",
         r)
    r = c.call(exec_req(["/no/such/command"]))
    t.ok(r.get("ok") is False and r["error"]["code"] == "ENOENT", "exec of a missing command: ENOENT", r)
    r = c.call(exec_req(["sh", "-c", "ls /proc/self/fd"]))
    t.ok(r.get("ok") and sorted(unb64(r["stdout"]).split()) == [b"0", b"1", b"2", b"3"],
         "exec: the command inherits only stdin/stdout/stderr (3 is ls's own)", r)

    # Far more output than max_output: kept up to the bound, flagged, and
    # the command is not blocked (it exits 0 having written it all).
    t0 = time.monotonic()
    r = c.call(exec_req(["sh", "-c", "head -c 3000000 /dev/zero; echo done >&2"], max_output=4096), timeout=60)
    t.ok(r.get("ok") and len(unb64(r["stdout"])) == 4096 and r["stdout_truncated"] and not r["stderr_truncated"]
         and unb64(r["stderr"]) == b"done\n" and r["exit_code"] == 0,
         f"3 MB of output, max_output 4096: truncated and flagged, command finished "
         f"({time.monotonic() - t0:.2f} s)", short(r))

    # The timeout kills the whole process group, a background child too.
    t0 = time.monotonic()
    r = c.call(exec_req(["sh", "-c", "sleep 300 & echo $!; sleep 300"], timeout_ms=2000), timeout=30)
    dt = time.monotonic() - t0
    t.ok(r.get("ok") and r["timed_out"] is True and r["signal"] == "SIGKILL" and r["exit_code"] is None
         and 2000 <= r["duration_ms"] < 6000,
         f"a command outliving timeout_ms=2000 is killed and flagged (duration_ms {r.get('duration_ms')}, "
         f"{dt:.2f} s)", r)
    try:
        bg = int(unb64(r["stdout"]))
    except (KeyError, ValueError):
        bg = 0
    state = "?"
    if bg:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            q = c.call(exec_req(["sh", "-c", f"sed -n 's/^State:\t//p' /proc/{bg}/status 2>/dev/null || true"]))
            state = unb64(q.get("stdout", "")).decode().strip() or "gone"
            if state == "gone" or state.startswith("Z"):
                break
            time.sleep(0.2)         # init reaps the orphan when it gets to it
    t.ok(bg > 0 and (state == "gone" or state.startswith("Z")),
         f"...and so is its background child (pid {bg}: {state})")

    r = c.call({"id": 1, "op": "exec", "argv": ["true"], "timeout_ms": 86400001})
    t.ok(r.get("ok") is False and r["error"]["code"] == "EINVAL", "timeout_ms out of bounds: EINVAL", r)


def measure_latency(uds, secret):
    """Round trips: exec of `true` on an open connection, and a whole call
    as zvmd makes it (connect, auth, ping)."""
    c = Conn(uds, secret)
    try:
        ex = []
        for _ in range(10):
            t0 = time.monotonic()
            r = c.call(exec_req(["true"]))
            ex.append((time.monotonic() - t0) * 1000)
            if not r.get("ok"):
                break
    finally:
        c.close()
    full = []
    for _ in range(10):
        t0 = time.monotonic()
        c = Conn(uds, secret)
        c.call({"op": "ping"})
        c.close()
        full.append((time.monotonic() - t0) * 1000)
    t.ok(len(ex) == 10 and len(full) == 10,
         f"latency: exec round trip median {statistics.median(ex):.1f} ms (max {max(ex):.1f}); "
         f"connect+auth+ping median {statistics.median(full):.1f} ms (max {max(full):.1f})")
    return statistics.median(ex), statistics.median(full)


def check_bad_input(uds, secret):
    c = Conn(uds, secret)
    deep = "x"
    for _ in range(16):
        deep = [deep]               # in the request object: depth 17
    bad = [
        (b"hello\n", "EINVAL", "not JSON"),
        (b"{\n", "EINVAL", "truncated JSON"),
        (b'{"op":"ping","x":\n', "EINVAL", "truncated after a colon"),
        (b"[1,2,3]\n", "EINVAL", "not an object"),
        (b"\n", "EINVAL", "empty line"),
        (b'{"op":"ping","x":"\xff\xfe"}\n', "EINVAL", "invalid UTF-8"),
        (b'{"op":"ping","x":"\xed\xa0\x80"}\n', "EINVAL", "UTF-8-encoded surrogate"),
        (b'{"op":"ping","x":"\\ud800"}\n', "EINVAL", "lone surrogate escape"),
        (b'{"op":"pi\x00ng"}\n', "EINVAL", "NUL byte"),
        (b'{"op":"ping","x":"\x01"}\n', "EINVAL", "raw control character"),
        (b'{"op":"ping","x":01}\n', "EINVAL", "bad number"),
        (json.dumps({"op": "ping", "x": deep}).encode() + b"\n", "EINVAL", "nesting depth 17"),
        (b'{"op":"ping","x":[' + b"0," * 70000 + b"0]}\n", "EINVAL", "70001 values"),
        (b'{"op":"nope"}\n', "ENOSYS", "unknown op"),
        (b'{"id":1}\n', "EINVAL", "no op"),
        (b'{"op":["exec"]}\n', "EINVAL", "op not a string"),
        (json.dumps(exec_req("ls")).encode() + b"\n", "EINVAL", "argv not an array"),
        (json.dumps(exec_req(["ls"], stdin="not base64!")).encode() + b"\n", "EINVAL", "stdin not base64"),
        (json.dumps({"op": "file-read", "path": "etc/passwd"}).encode() + b"\n", "EINVAL", "relative path"),
    ]
    try:
        for data, code, name in bad:
            c.send(data)
            r = c.line()
            t.ok(isinstance(r, dict) and r.get("ok") is False and r.get("error", {}).get("code") == code,
                 f"bad request ({name}): {code}", r)
        r = c.call({"id": "😀", "op": "ping"})
        t.ok(r == {"id": "😀", "ok": True, "pong": True}, "the same connection still answers ping", r)
        ok_deep = "x"
        for _ in range(15):
            ok_deep = [ok_deep]
        r = c.call({"id": ok_deep, "op": "ping"})
        t.ok(r.get("ok") and r.get("id") == ok_deep, "nesting depth 16 is fine", short(r))
        r = c.call({"id": 1, "op": "ping", "s": "\ud83d\ude00 \u00e9 \"q\" \\ \n \u0001"})
        t.ok(r.get("ok"), "escapes, surrogate pairs and control characters as escapes are fine", r)
    finally:
        c.close()

    # Over the 8 MiB line limit: E2BIG, then the agent closes.
    c = Conn(uds, secret, timeout=60)
    t0 = time.monotonic()
    err = []

    def sender():
        try:
            c.s.sendall(b'{"op":"ping","x":"' + b"a" * (LINE_MAX + 65536))
        except OSError as e:
            err.append(e)

    th = threading.Thread(target=sender, daemon=True)
    th.start()
    try:
        r = c.line(timeout=60)
        r2 = c.line(timeout=10)
        t.ok(isinstance(r, dict) and r.get("error", {}).get("code") == "E2BIG" and r2 is None,
             f"a request line over 8 MiB: E2BIG and closed ({time.monotonic() - t0:.1f} s)", (r, r2))
    finally:
        c.close()
        th.join(10)
    c = Conn(uds, secret)
    try:
        r = c.call({"op": "ping", "id": 1})
        t.ok(r.get("pong") is True, "the agent still answers a new connection", r)
    finally:
        c.close()


def check_connection_bound(uds, secret):
    """16 connections are served at once; the 17th waits until one ends."""
    held = []
    try:
        for _ in range(16):
            held.append(Conn(uds, secret))
        t.ok(len(held) == 16, "16 connections authenticated and held open")
        extra = Conn(uds)
        try:
            extra.send({"op": "auth", "secret": secret})
            try:
                r = extra.line(timeout=1.5)
                waited = False
            except TimeoutError:
                r, waited = None, True
            t.ok(waited, "a 17th connection is not served while 16 are", r)
            held.pop().close()
            r = extra.line(timeout=STEP_TIMEOUT)
            t.ok(r == {"ok": True}, "...and is served once one of them closes", r)
        finally:
            extra.close()
    finally:
        for c in held:
            c.close()


def check_concurrent(uds, secret, n=8):
    results = [None] * n

    def worker(i):
        try:
            c = Conn(uds, secret, timeout=60)
            try:
                results[i] = c.call(exec_req(
                    ["sh", "-c", 'sleep 2; i=0; while [ $i -lt 200 ]; do echo "conn-$N-$i"; i=$((i+1)); done'],
                    env=[f"N={i}"], id=i), timeout=60)
            finally:
                c.close()
        except Exception as e:  # reported below
            results[i] = repr(e)

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(70)
    dt = time.monotonic() - t0
    good = 0
    for i, r in enumerate(results):
        want = "".join(f"conn-{i}-{k}\n" for k in range(200)).encode()
        if isinstance(r, dict) and r.get("id") == i and r.get("exit_code") == 0 and unb64(r["stdout"]) == want:
            good += 1
        else:
            t.diag(f"connection {i}: {short(r)}")
    t.ok(good == n, f"{n} concurrent connections running exec each got their own output ({good}/{n})")
    t.ok(dt < 2 * n * 0.75, f"...and ran at the same time ({dt:.1f} s for {n} x sleep 2)")


def check_files(c):
    data = os.urandom(150 * 1024) + b"\0\n\xff"
    r = c.call({"id": 1, "op": "file-write", "path": "/root/agent-test.bin", "data": b64(data), "mode": 0o640})
    t.ok(r.get("ok") and r.get("size") == len(data), "file-write of binary data", r)
    r = c.call({"id": 2, "op": "file-read", "path": "/root/agent-test.bin"})
    t.ok(r.get("ok") and unb64(r["data"]) == data and r["size"] == len(data) and r["mode"] == 0o640
         and r["truncated"] is False, "file-read gives the same bytes back, size and mode 0640", short(r))
    r = c.call({"id": 3, "op": "file-read", "path": "/root/agent-test.bin", "max_bytes": 100})
    t.ok(r.get("ok") and unb64(r["data"]) == data[:100] and r["size"] == len(data) and r["truncated"] is True,
         "file-read with max_bytes: truncated, whole size", short(r))
    r = c.call({"id": 4, "op": "file-write", "path": "/root/agent-test.bin", "data": b64(b"v2")})
    q = c.call(exec_req(["sh", "-c", "ls -a /root; stat -c '%a' /root/agent-test.bin"]))
    out = unb64(q.get("stdout", "")).decode()
    # The temporary file is lib's ".#NAME.XXXXXX" (write_file_atomic_at_full).
    t.ok(r.get("ok") and ".#" not in out and ".zvm-agent" not in out and out.endswith("644\n"),
         "file-write replaces atomically (default mode 0644, no temporary file left)", out)
    r = c.call({"id": 5, "op": "file-read", "path": "/no/such/file"})
    t.ok(r.get("ok") is False and r["error"]["code"] == "ENOENT", "file-read of a missing file: ENOENT", r)


def check_keys(c):
    keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZ2dGVzdGtleWZvcnp2bWFnZW50dGVzdHM test@zvm",
            'from="10.0.0.1" ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 other@host']
    r = c.call({"id": 1, "op": "set-authorized-keys", "keys": keys})
    t.ok(r.get("ok") and r.get("path") == "/root/.ssh/authorized_keys", "set-authorized-keys for root", r)
    q = c.call(exec_req(["sh", "-c", "stat -c '%a %u %g %n' /root/.ssh /root/.ssh/authorized_keys; "
                                     "cat /root/.ssh/authorized_keys"]))
    want = ("700 0 0 /root/.ssh\n600 0 0 /root/.ssh/authorized_keys\n" + "".join(k + "\n" for k in keys)).encode()
    t.ok(unb64(q.get("stdout", "")) == want, "~/.ssh is 0700, authorized_keys 0600 and holds the keys",
         unb64(q.get("stdout", "")))
    r = c.call({"id": 2, "op": "set-authorized-keys", "keys": ["two\nlines"]})
    t.ok(r.get("ok") is False and r["error"]["code"] == "EINVAL", "a key with a newline: EINVAL", r)


def read_ready(listener, timeout):
    """Accepts the agent's READY connection and returns (message, seconds)."""
    t0 = time.monotonic()
    listener.settimeout(timeout)
    try:
        conn, _ = listener.accept()
    except socket.timeout:
        return None, time.monotonic() - t0
    conn.settimeout(STEP_TIMEOUT)
    data = b""
    try:
        while not data.endswith(b"\n") and len(data) < 65536:
            d = conn.recv(65536)
            if not d:
                break
            data += d
    finally:
        conn.close()
    try:
        return json.loads(data), time.monotonic() - t0
    except ValueError:
        return {"raw": data[:200].decode(errors="replace")}, time.monotonic() - t0


def check_respawn(uds, secret, ready_l):
    """busybox init keeps the agent running: kill it, it comes back and says
    READY again."""
    c = Conn(uds, secret)
    try:
        r = c.call(exec_req(["sh", "-c", "for p in $(pidof zvm-agent); do "
                                         "[ \"$(cut -d' ' -f4 /proc/$p/stat)\" = 1 ] && kill -9 $p && echo $p; done"]))
    finally:
        c.close()
    t.ok(r.get("ok") and unb64(r["stdout"]).strip().isdigit(), "killed the agent's main process (SIGKILL)", r)
    ready, dt = read_ready(ready_l, 20)
    t.ok(isinstance(ready, dict) and ready.get("op") == "ready" and ready.get("secret") == secret,
         f"init respawned it and it said READY again ({dt:.2f} s)", ready)
    c = Conn(uds, secret)
    try:
        r = c.call({"op": "ping", "id": "again"})
        t.ok(r.get("pong") is True, "the respawned agent answers", r)
    finally:
        c.close()


def main():
    global tmpdir
    signal.signal(signal.SIGALRM, on_watchdog)
    signal.alarm(WATCHDOG_S)
    p = zt.guest_artifacts()
    vhost = shutil.which("vhost-device-vsock")
    if not vhost:
        zt.skip_all("vhost-device-vsock not installed; run scripts/install-deps")
    if shutil.which("debugfs"):
        st = subprocess.run(["debugfs", "-R", "stat /sbin/zvm-agent", p["rootfs-tiny.img"]],
                            capture_output=True, text=True)
        if "Inode:" not in st.stdout:
            zt.skip_all(f"{p['rootfs-tiny.img']} has no /sbin/zvm-agent; run scripts/build-guest")
    accel = zt.probe_accel(p)

    tmpdir = tempfile.mkdtemp(prefix="zvm-agent-test.")
    uds = os.path.join(tmpdir, "vsock.sock")
    vhost_sock = os.path.join(tmpdir, "vhost.sock")
    secret = secrets.token_hex(32)
    secret_file = os.path.join(tmpdir, "agent.secret")
    fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, secret.encode())
    os.close(fd)

    # READY comes to <uds>_1025: listen before the guest can boot.
    ready_l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ready_l.bind(f"{uds}_{READY_PORT}")
    ready_l.listen(4)

    log = open(os.path.join(tmpdir, "vhost.log"), "wb")
    procs.append(("vhost-device-vsock", subprocess.Popen(
        [vhost, f"--guest-cid={GUEST_CID}", f"--socket={vhost_sock}", f"--uds-path={uds}"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)))
    deadline = time.monotonic() + 5
    while not (os.path.exists(vhost_sock) and os.path.exists(uds)) and time.monotonic() < deadline:
        if procs[-1][1].poll() is not None:
            break
        time.sleep(0.02)
    if not t.ok(os.path.exists(vhost_sock) and os.path.exists(uds), "vhost-device-vsock is up (bounded, 5 s)"):
        return

    argv = zt.microvm_argv(
        accel, p["vmlinux"], p["initrd.img"], "root=LABEL=rootfs ro zvm.overlay=1",
        disks=[(p["rootfs-tiny.img"], "blk", True)], memory=256, machine_extra=",memory-backend=mem",
        extra=["-object", "memory-backend-memfd,id=mem,size=256M,share=on",
               "-chardev", f"socket,id=vs0,path={vhost_sock}",
               "-device", "vhost-user-vsock-device,chardev=vs0",
               "-fw_cfg", f"name=opt/zvm/agent-secret,file={secret_file}"])
    console = open(os.path.join(tmpdir, "console.log"), "wb")
    t0 = time.monotonic()
    qemu = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT)
    procs.append(("qemu", qemu))

    # READY (QEMU dying early ends the wait too).
    ready = None
    while ready is None and time.monotonic() - t0 < READY_TIMEOUT and qemu.poll() is None:
        ready, _ = read_ready(ready_l, 1)
    ready_s = time.monotonic() - t0
    if not t.ok(ready is not None, f"the agent connected to <uds>_{READY_PORT} (bounded, {READY_TIMEOUT:.0f} s)"):
        return
    check_ready(ready, secret, ready_s)

    check_auth(uds, secret)
    c = Conn(uds, secret)
    try:
        check_basics(c)
        check_exec(c)
        check_files(c)
        check_keys(c)
    finally:
        c.close()
    measure_latency(uds, secret)
    check_bad_input(uds, secret)
    check_connection_bound(uds, secret)
    check_concurrent(uds, secret)

    check_respawn(uds, secret, ready_l)

    # Shutdown: answered, then the VM powers off and QEMU exits by itself.
    c = Conn(uds, secret)
    try:
        r = c.call({"id": "bye", "op": "shutdown"})
        t.ok(r == {"id": "bye", "ok": True}, "shutdown is answered first", r)
    finally:
        c.close()
    t1 = time.monotonic()
    try:
        rc = qemu.wait(30)
    except subprocess.TimeoutExpired:
        rc = None
    t.ok(rc == 0, f"the guest powered off: QEMU exited by itself in {time.monotonic() - t1:.1f} s (rc {rc})")
    with open(os.path.join(tmpdir, "console.log"), errors="replace") as f:
        out = f.read()
    t.ok("zvm-agent: poweroff requested by the host" in out and "reboot(2)" not in out,
         "the agent asked init to power off, init did it", out[-3000:])


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a failure is a test result, not a traceback
        import traceback
        t.ok(False, f"unexpected {type(e).__name__}: {e}", traceback.format_exc())
        console_tail()
    finally:
        if t.failed:
            console_tail()
        cleanup()
    t.done()
