#!/usr/bin/env python3
"""zvm-agent --stdio, host-built (guest-agent/meson.build: zvm-agent-host):
the real agent's request handling, op argument parsing and ops, driven over
a pipe with no VM, no vsock and no fw_cfg. The secret comes from
$ZVM_AGENT_SECRET or --secret-file.

Usage: test-agent-stdio.py PATH-TO-zvm-agent-host

Every read is bounded (READ_TIMEOUT); every agent is killed on the way out."""
import base64
import json
import re
import os
import secrets
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import zvmtest as zt  # noqa: E402

READ_TIMEOUT = 15.0
LINE_MAX = 8 << 20
t = zt.Tap()
AGENT = sys.argv[1]
SECRET = secrets.token_hex(32)
procs = []


def b64(data):
    return base64.b64encode(data).decode()


def unb64(s):
    return base64.b64decode(s)


class Agent:
    """One zvm-agent --stdio process: one connection."""

    def __init__(self, args=(), secret_env=SECRET):
        env = {k: v for k, v in os.environ.items() if k != "ZVM_AGENT_SECRET"}
        if secret_env is not None:
            env["ZVM_AGENT_SECRET"] = secret_env
        self.p = subprocess.Popen([AGENT, "--stdio", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env)
        procs.append(self.p)
        self.buf = b""

    def send(self, obj_or_bytes):
        data = obj_or_bytes if isinstance(obj_or_bytes, bytes) else json.dumps(obj_or_bytes).encode()
        self.p.stdin.write(data + b"\n")
        self.p.stdin.flush()

    def read(self, timeout=READ_TIMEOUT):
        """One answer line as an object; None at EOF or timeout."""
        deadline = time.monotonic() + timeout
        fd = self.p.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def call(self, obj, timeout=READ_TIMEOUT):
        self.send(obj)
        return self.read(timeout)

    def auth(self, secret=SECRET):
        return self.call({"op": "auth", "secret": secret})

    def finish(self, timeout=10):
        """Closes stdin; returns (exit status, stderr)."""
        try:
            self.p.stdin.close()
        except BrokenPipeError:
            pass
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = None
        return rc, self.p.stderr.read().decode(errors="replace")


def error_code(r):
    return r.get("error", {}).get("code") if isinstance(r, dict) and r.get("ok") is False else None


def check_auth():
    a = Agent()
    t.ok(a.auth() == {"ok": True}, "secret from $ZVM_AGENT_SECRET: auth accepted")
    r = a.call({"id": {"n": [1, 1.0, "é"]}, "op": "ping"})
    t.ok(r == {"id": {"n": [1, 1.0, "é"]}, "ok": True, "pong": True}, "ping, with a structured id echoed", r)
    a.finish()

    with tempfile.NamedTemporaryFile("w", delete=False) as f:
        f.write(SECRET + "\n")
    try:
        a = Agent(["--secret-file", f.name], secret_env=None)
        t.ok(a.auth() == {"ok": True}, "secret from --secret-file (trailing newline ignored): auth accepted")
        a.finish()
    finally:
        os.unlink(f.name)

    a = Agent()
    r = a.auth(secrets.token_hex(32))
    rc, err = a.finish()
    t.ok(error_code(r) == "EACCES" and r["error"]["message"] == "wrong secret" and rc == 0,
         "a wrong secret is refused with EACCES and the connection ends", (r, rc))
    t.ok("refused a connection: wrong secret" in err, "...and logged", err)

    a = Agent()
    r = a.call(b"\x00garbage{")
    rc, _ = a.finish()
    t.ok(error_code(r) == "EACCES" and "authentication required" in r["error"]["message"],
         "garbage as the first line is refused", r)

    a = Agent()
    r = a.call({"op": "ping"})
    a.finish()
    t.ok(error_code(r) == "EACCES", "a request before auth is refused", r)

    a = Agent(secret_env=None)
    r = a.auth()
    rc, err = a.finish()
    t.ok(error_code(r) == "EACCES" and "no secret" in r["error"]["message"],
         "without a secret (none in env, no file; fw_cfg is never read) every connection is refused", r)

    a = Agent(secret_env="abc")
    r = a.auth("abc")
    a.finish()
    t.ok(error_code(r) == "EACCES", "a secret that is not 64 hex digits is not loaded", r)


def check_exec(a):
    r = a.call({"id": 1, "op": "exec", "argv": ["true"]})
    t.ok(r.get("ok") and r["exit_code"] == 0 and r["signal"] is None and r["timed_out"] is False,
         "exec true: exit_code 0", r)
    r = a.call({"id": 2, "op": "exec", "argv": ["false"]})
    t.ok(r.get("ok") and r["exit_code"] == 1, "exec false: exit_code 1", r)
    r = a.call({"id": 3, "op": "exec", "argv": ["sh", "-c", "cat; echo err >&2; exit 7"], "stdin": b64(b"in\x00put"),
                "env": ["A=1"], "cwd": "/"})
    t.ok(r.get("ok") and r["exit_code"] == 7 and unb64(r["stdout"]) == b"in\x00put" and unb64(r["stderr"]) == b"err\n",
         "exec with stdin, stdout, stderr and an exit code", r)
    r = a.call({"id": 4, "op": "exec", "argv": ["sh", "-c", "echo $A-$PATH"], "env": ["A=1", "A=2"]})
    t.ok(r.get("ok") and unb64(r["stdout"]) == b"2-/usr/sbin:/usr/bin:/sbin:/bin\n",
         "env: a later NAME= wins, PATH is the agent's", r)
    r = a.call({"id": 5, "op": "exec", "argv": ["sleep", "10"], "timeout_ms": 300})
    t.ok(r.get("ok") and r["timed_out"] is True and r["signal"] == "SIGKILL" and r["duration_ms"] < 5000,
         "exec past timeout_ms: killed, timed_out", r)
    r = a.call({"id": 6, "op": "exec", "argv": ["/no/such/command"]})
    t.ok(error_code(r) == "ENOENT", "exec of a missing command: ENOENT", r)
    r = a.call({"id": 8, "op": "exec", "argv": ["true"], "cwd": "/no/such/dir"})
    t.ok(error_code(r) == "ENOENT" and "cannot change to directory" in r["error"]["message"],
         "exec with a missing cwd: ENOENT from the child's chdir", r)
    r = a.call({"id": 7, "op": "exec", "argv": ["sh", "-c", "head -c 5000 /dev/zero"], "max_output": 100})
    t.ok(r.get("ok") and len(unb64(r["stdout"])) == 100 and r["stdout_truncated"] is True,
         "max_output truncates", r)


def check_hangup():
    """The host closing the connection ends a running command."""
    a = Agent()
    a.auth()
    start = time.monotonic()
    a.send({"id": 1, "op": "exec", "argv": ["sleep", "30"]})
    time.sleep(0.3)
    rc, err = a.finish(timeout=10)
    t.ok(rc == 0 and time.monotonic() - start < 8 and "exec sleep: the host hung up, killed the command" in err,
         "EOF on the connection kills a running exec", (rc, err))


def frame(kind, payload=b""):
    return kind + struct.pack(">H", len(payload)) + payload


def read_frames(a, timeout=READ_TIMEOUT, until=None):
    """Frames after a pty's ok line until the exit frame, EOF or output
    matching until: (output bytes, exit payload or None)."""
    out, deadline, fd = b"", time.monotonic() + timeout, a.p.stdout.fileno()
    while True:
        if until and re.search(until, out):
            return out, None
        while len(a.buf) >= 3 and len(a.buf) >= 3 + struct.unpack(">H", a.buf[1:3])[0]:
            n = struct.unpack(">H", a.buf[1:3])[0]
            kind, payload, a.buf = a.buf[:1], a.buf[3:3 + n], a.buf[3 + n:]
            if kind == b"x":
                return out, payload
            out += payload if kind == b"o" else b"?"
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return out, None
        chunk = os.read(fd, 65536)
        if not chunk:
            return out, None
        a.buf += chunk


def check_pty():
    """Op pty: the command on a terminal of its own, frames both ways."""
    a = Agent()
    a.auth()
    r = a.call({"id": 1, "op": "pty", "argv": ["sh", "-c", "tty; stty size; read l; stty size; echo got=$l; exit 3"],
                "rows": 12, "cols": 34})
    t.ok(r == {"id": 1, "ok": True}, "pty: ok line first", r)
    first, _ = read_frames(a, until=rb"12 34\r\n")
    a.p.stdin.write(frame(b"w", struct.pack(">HH", 50, 60)) + frame(b"i", b"hello\r"))
    a.p.stdin.flush()
    out, status = read_frames(a)
    text = (first + out).decode(errors="replace")
    t.ok(re.search(r"^/dev/pts/\d+\r$", text, re.M) and "12 34\r\n" in text and "50 60\r\n" in text
         and "got=hello" in text, "pty: a terminal, the size asked for, then resized, input relayed", text)
    t.ok(status == b"e\x03", "pty: the exit frame says exit 3", status)
    rc, _ = a.finish()
    t.ok(rc == 0, "pty: the connection ends after the session", rc)
    a = Agent()
    a.auth()
    r = a.call({"id": 2, "op": "pty", "argv": ["no-such-command-zvm"]})
    t.ok(error_code(r) == "ENOENT", "pty of a missing command: ENOENT answer", r)
    r = a.call({"id": 3, "op": "pty", "argv": ["sleep", "30"]})
    start = time.monotonic()
    a.p.stdin.write(b"Z\x00\x00")      # no such frame type: the agent hangs up
    a.p.stdin.flush()
    out, status = read_frames(a, timeout=10)
    rc, err = a.finish()
    t.ok(r.get("ok") and status is None and time.monotonic() - start < 8 and "malformed frame" in err,
         "pty: a malformed frame ends the command", (r, status, err))


def check_files(a, tmp):
    path = os.path.join(tmp, "f.bin")
    data = os.urandom(70000) + b"\0\n\xff"
    r = a.call({"id": 1, "op": "file-write", "path": path, "data": b64(data), "mode": 0o640})
    t.ok(r.get("ok") and r["size"] == len(data), "file-write", r)
    t.ok(open(path, "rb").read() == data and (os.stat(path).st_mode & 0o7777) == 0o640,
         "...the file holds the bytes, mode 0640 exactly")
    r = a.call({"id": 2, "op": "file-read", "path": path})
    t.ok(r.get("ok") and unb64(r["data"]) == data and r["size"] == len(data) and r["mode"] == 0o640
         and r["truncated"] is False, "file-read gives them back", {k: v for k, v in r.items() if k != "data"})
    r = a.call({"id": 3, "op": "file-write", "path": path, "data": b64(b"v2"), "mode": 0o777})
    t.ok(r.get("ok") and os.listdir(tmp) == ["f.bin"] and (os.stat(path).st_mode & 0o7777) == 0o777,
         "file-write replaces atomically, no temporary file left, mode not cut by the umask", os.listdir(tmp))
    r = a.call({"id": 4, "op": "file-read", "path": path, "max_bytes": 1})
    t.ok(r.get("ok") and unb64(r["data"]) == b"v" and r["truncated"] is True and r["size"] == 2,
         "file-read with max_bytes", r)
    r = a.call({"id": 8, "op": "file-read", "path": "/proc/self/status", "max_bytes": 10})
    t.ok(r.get("ok") and unb64(r["data"]) == b"Name:\tzvm-" and r["truncated"] is True and r["size"] > 100,
         "file-read of a procfs file (stat size 0): cut at max_bytes, the rest counted", r)
    r = a.call({"id": 5, "op": "file-read", "path": tmp})
    t.ok(error_code(r) == "EISDIR", "file-read of a directory: EISDIR", r)
    r = a.call({"id": 6, "op": "file-write", "path": "relative/x", "data": ""})
    t.ok(error_code(r) == "EINVAL", "a relative path: EINVAL", r)
    r = a.call({"id": 7, "op": "file-write", "path": os.path.join(tmp, "x")})
    t.ok(error_code(r) == "EINVAL" and "'data' is required" in r["error"]["message"], "file-write without data", r)


def check_bad_input(a):
    cases = [
        (b"not json", "EINVAL", "garbage"),
        (b"[1,2]", "EINVAL", "not an object"),
        (b"{\"id\":1}", "EINVAL", "no op"),
        (b"{\"id\":1,\"op\":42}", "EINVAL", "op not a string"),
        (b"{\"id\":1,\"op\":\"frobnicate\"}", "ENOSYS", "unknown op"),
        (b"{\"op\":\"exec\",\"argv\":\"true\"}", "EINVAL", "argv not an array"),
        (b"{\"op\":\"exec\",\"argv\":[]}", "EINVAL", "argv empty"),
        (b"{\"op\":\"exec\",\"argv\":[\"a\\u0000b\"]}", "EINVAL", "NUL in argv"),
        (b"{\"op\":\"exec\",\"argv\":[\"true\"],\"timeout_ms\":0}", "EINVAL", "timeout_ms 0"),
        (b"{\"op\":\"exec\",\"argv\":[\"true\"],\"env\":[\"NOEQUALS\"]}", "EINVAL", "env without '='"),
        (b"{\"op\":\"exec\",\"argv\":[\"true\"],\"stdin\":\"abc\"}", "EINVAL", "bad base64"),
        (b"{\"op\":\"file-read\",\"path\":\"/x\",\"max_bytes\":1.5}", "EINVAL", "a real for an integer"),
        (b"[" * 17 + b"]" * 17, "EINVAL", "nested 17 deep"),
        (b"{\"a\":[" + b"0," * 70000 + b"0]}", "EINVAL", "70001 values"),
        (b"{\"op\":\"ping\",\"s\":\"\xc0\x80\"}", "EINVAL", "invalid UTF-8"),
        (b"{\"op\":\"ping\"", "EINVAL", "truncated"),
        # Only refusals: a valid name would rename the host running the test.
        (b"{\"op\":\"set-hostname\"}", "EINVAL", "set-hostname without hostname"),
        (b"{\"op\":\"set-hostname\",\"hostname\":\"\"}", "EINVAL", "an empty hostname"),
        (b"{\"op\":\"set-hostname\",\"hostname\":\"-x\"}", "EINVAL", "a hostname starting with '-'"),
        (b"{\"op\":\"set-hostname\",\"hostname\":\"a b\"}", "EINVAL", "a space in the hostname"),
        (b"{\"op\":\"set-hostname\",\"hostname\":\"" + b"a" * 65 + b"\"}", "EINVAL", "a 65-byte hostname"),
    ]
    for line, code, what in cases:
        r = a.call(line)
        t.ok(error_code(r) == code, f"{what}: {code}, connection kept", r)
    r = a.call({"id": "still", "op": "ping"})
    t.ok(r == {"id": "still", "ok": True, "pong": True}, "after all that the connection still answers", r)


def check_end(a):
    r = a.call({"id": 9, "op": "shutdown"})
    rc, err = a.finish()
    t.ok(r == {"id": 9, "ok": True} and rc == 0 and "poweroff requested (not done in --stdio mode)" in err,
         "shutdown is answered, logged and not done", (r, rc, err))

    b = Agent()
    b.auth()
    b.send(b"x" * (LINE_MAX + 1))
    r = b.read()
    rc, _ = b.finish()
    t.ok(error_code(r) == "E2BIG" and rc == 0, "a line over 8 MiB: E2BIG, connection closed", r)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def wait_llm(a, pred, timeout):
    deadline = time.monotonic() + timeout
    st = {}
    while time.monotonic() < deadline:
        st = a.call({"op": "info"}).get("llm") or {}
        if pred(st):
            break
        time.sleep(0.2)
    return st


def llm_fixtures(tmp):
    """A file with the GGUF magic (llm-start checks no more; the real model
    runs in tests/integration/zvmd_llm.py), a file without it, and two real
    programs in llama-server's place: one that dies at once, one that runs
    (with a child in its group) until killed."""
    model, text = os.path.join(tmp, "m.gguf"), os.path.join(tmp, "text.gguf")
    open(model, "wb").write(b"GGUF\x03\x00\x00\x00")
    open(text, "w").write("not a model\n")
    dies, runs = os.path.join(tmp, "dies.sh"), os.path.join(tmp, "runs.sh")
    with open(dies, "w") as f:
        f.write("#!/bin/sh\necho \"dies.sh got $*\"\necho 'some error' >&2\nexit 3\n")
    with open(runs, "w") as f:
        f.write("#!/bin/sh\necho runs.sh up\nsleep 1000 &\necho $! > \"$(dirname \"$0\")/child.pid\"\nwait\n")
    os.chmod(dies, 0o755)
    os.chmod(runs, 0o755)
    return model, text, dies, runs


def check_llm_args(a, model, text, tmp):
    cases = [
        ({}, "EINVAL", "'model' is required"),
        ({"model": "models/m.gguf"}, "EINVAL", "'model' must be an absolute path"),
        ({"model": 7}, "EINVAL", "'model' must be a string"),
        ({"model": "/no/such/model.gguf"}, "ENOENT", "model '/no/such/model.gguf': No such file or directory"),
        ({"model": tmp}, "EINVAL", "is not a regular file"),
        ({"model": text}, "EINVAL", "is not a GGUF file"),
        ({"model": tmp + "/../" + os.path.basename(tmp) + "/m.gguf"}, "EINVAL", "must be a normalized path"),
        ({"model": model, "threads": 0}, "EINVAL", "'threads' must be between 1 and 256"),
        ({"model": model, "threads": 100000}, "EINVAL", "'threads' must be between 1 and 256"),
        ({"model": model, "ctx": "big"}, "EINVAL", "'ctx' must be an integer"),
        ({"model": model, "ctx": 1.5}, "EINVAL", "'ctx' must be an integer"),
        ({"model": model, "ctx": 2 ** 40}, "EINVAL", "'ctx' must be between 64 and 1048576"),
        ({"model": model, "parallel": 0}, "EINVAL", "'parallel' must be between 1 and 64"),
        ({"model": model, "batch": -1}, "EINVAL", "'batch' must be between 1 and 65536"),
        ({"model": model, "port": 1024}, "EINVAL", "'port' 1024 is the agent's own"),
        ({"model": model, "port": -5}, "EINVAL", "'port' must be between 0 and"),
    ]
    for args, code, msg in cases:
        r = a.call(dict(args, op="llm-start"))
        t.ok(error_code(r) == code and msg in r["error"]["message"], f"llm-start {args}: {code} '{msg}'", r)
    st = a.call({"op": "info"}).get("llm")
    t.ok(st and st.get("state") == "stopped" and st.get("pid") is None and st.get("model") is None,
         "after the refusals nothing runs: info.llm stopped", st)


def check_llm_backoff(a, model):
    """A server that dies at once: restarted after 1, 2, 4, 8 s, then failed."""
    t0 = time.monotonic()
    r = a.call({"op": "llm-start", "model": model, "port": 0, "threads": 1, "ctx": 256})
    t.ok(r.get("ok") and r["llm"]["state"] == "loading" and r["llm"]["threads"] == 1 and r["llm"]["parallel"] == 1,
         "llm-start: loading, defaults filled in", r)
    st = wait_llm(a, lambda s: s.get("state") == "failed", 40)
    took = time.monotonic() - t0
    tail = st.get("log_tail") or ""
    t.ok(st.get("state") == "failed" and st.get("restarts") == 4 and st.get("last_exit_code") == 3,
         f"dying at once: restarted 4 times, then failed ({took:.1f} s)", st)
    t.ok(14 <= took <= 30, f"the back-off doubles: 1+2+4+8 s before failing ({took:.1f} s)")
    t.ok("dies.sh got -m " + model + " --host " in tail and " -t 1 -c 256 -np 1 -b 512 --metrics" in tail
         and "some error" in tail and "failed, not restarted" in tail,
         "info.llm.log_tail holds its output (stdout and stderr) and why it failed", tail)
    r = a.call({"op": "llm-start", "model": model, "port": 0, "threads": 1, "ctx": 256})
    t.ok(r.get("ok") and r["llm"]["state"] == "loading" and r["llm"]["restarts"] == 0,
         "llm-start after failed starts over", r)
    r = a.call({"op": "llm-stop"})
    t.ok(r.get("ok") and r["llm"]["state"] == "stopped" and r["llm"]["pid"] is None, "llm-stop: stopped", r)


def check_llm_restart(a, model, tmp):
    """A server that keeps running: killed, it is restarted (counted);
    llm-stop ends its whole process group."""
    r = a.call({"op": "llm-start", "model": model, "port": 0})
    pid = r.get("llm", {}).get("pid")
    t.ok(r.get("ok") and pid and pid_alive(pid), "llm-start of a server that keeps running: a live pid", r)
    again = a.call({"op": "llm-start", "model": model, "port": 0})
    t.ok(again.get("llm", {}).get("pid") == pid, "llm-start again with the same config: the same process", again)
    os.kill(pid, signal.SIGKILL)
    st = wait_llm(a, lambda s: s.get("restarts") == 1 and s.get("pid"), 10)
    t.ok(st.get("restarts") == 1 and st.get("pid") not in (None, pid) and st.get("last_signal") == "SIGKILL"
         and st.get("state") == "loading", "killed: restarted after ~1 s, counted, SIGKILL recorded", st)
    new = st.get("pid")
    child = None
    for _ in range(50):
        try:
            child = int(open(os.path.join(tmp, "child.pid")).read())
            break
        except (OSError, ValueError):
            time.sleep(0.1)
    t0 = time.monotonic()
    r = a.call({"op": "llm-stop"}, timeout=20)
    t.ok(r.get("ok") and r["llm"]["state"] == "stopped" and new and not pid_alive(new)
         and child and not pid_alive(child),
         f"llm-stop ends the server and its process group ({time.monotonic() - t0:.1f} s)", (r, child))


def check_llm(tmp):
    model, text, dies, runs = llm_fixtures(tmp)
    run = os.path.join(tmp, "run")
    a = Agent(["--llm-server", dies, "--llm-dir", run])
    a.auth()
    check_llm_args(a, model, text, tmp)
    check_llm_backoff(a, model)
    a.finish()
    a = Agent(["--llm-server", runs, "--llm-dir", run])
    a.auth()
    check_llm_restart(a, model, tmp)
    r = a.call({"op": "llm-start", "model": model, "port": 0})
    pid = r.get("llm", {}).get("pid")
    rc, _ = a.finish(timeout=20)
    t.ok(rc == 0 and pid and not pid_alive(pid), "the --stdio connection ending stops its server", (rc, pid))
    t.ok(os.stat(run).st_mode & 0o777 == 0o700, "the socket's directory is private (0700)")


def main():
    if not os.access(AGENT, os.X_OK):
        print(f"Bail out! {AGENT} is not executable", flush=True)
        sys.exit(1)
    tmp = tempfile.mkdtemp(prefix="zvm-agent-stdio.")
    try:
        check_auth()
        a = Agent()
        t.ok(a.auth() == {"ok": True}, "a second connection authenticates")
        check_exec(a)
        check_hangup()
        check_pty()
        check_files(a, tmp)
        check_bad_input(a)
        check_end(a)
        check_llm(tmp)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(5)
        shutil.rmtree(tmp, ignore_errors=True)
    t.done()


main()
