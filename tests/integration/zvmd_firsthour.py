"""The first_hour scenario of test-zvmd.py: what a Proxmox `qm` user expects
of the running and the pending config (zvm pending, reboot applying what is
pending, config set naming what it changed), of checks at set time, units,
the balloon floor, exec and cp right after a start, and the guest's name.
Real zvmd, real tiny guests."""
import fcntl
import hashlib
import json
import os
import pty
import re
import select
import shutil
import signal
import struct
import tempfile
import termios
import time

from zvmd_cli import wait_agent_ready


def md5(path):
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def pending_rows(text):
    """zvm pending's table as {key: [value, pending]}."""
    rows = {}
    for line in text.splitlines()[1:]:
        cells = re.split(r"  +", line.strip())
        rows[cells[0]] = (cells[1:] + ["", ""])[:2]
    return rows


def check_stopped(t, d):
    r = d.zvm("config", "unset", "p2", "rootfs")
    t.ok(r.returncode == 0 and r.stdout == "", "config unset on a stopped VM: no 'needs restart' lines", r.stdout)
    r = d.zvm("pending", "p2")
    rows = pending_rows(r.stdout)
    t.ok(r.returncode == 0 and rows.get("memory", [None])[0] == "128" and
         all(v[1] == "" for v in rows.values()), "pending of a stopped VM: its config, nothing pending", r.stdout)


def check_set_time(t, d):
    r = d.zvm("config", "set", "p1", "disk0=/nonexistent.img")
    t.ok(r.returncode == 2 and "/nonexistent.img" in r.stderr, "config set disk0=/nonexistent.img refused at set time",
         r.stderr)
    r = d.zvm("config", "set", "p1", "disk0=/tmp")
    t.ok(r.returncode == 2 and "directory" in r.stderr, "config set disk0=<a directory> refused", r.stderr)
    r = d.zvm("config", "set", "p1", "rootfs=nosuchtemplate")
    t.ok(r.returncode == 2 and "nosuchtemplate" in r.stderr and "not found" in r.stderr,
         "config set rootfs=nosuchtemplate refused at set time", r.stderr)
    status, body = d.request("PATCH", "/vms/p1", {"disk1": "/nonexistent.img"})
    t.ok(status == 400 and body.get("key") == "disk1", "PATCH disk1 to a missing file: 400 naming the key", body)
    st = d.request("GET", "/vms/p1")[1]
    t.ok("disk0" not in st.get("config", {}) and "disk1" not in st.get("config", {}), "the refused keys changed nothing",
         st)


def check_pending(t, d):
    r = d.zvm("config", "set", "p1", "memory=256M")
    t.ok(r.returncode == 0 and r.stdout == "memory: needs restart\n", "config set memory=256M: units, one line", r.stdout
         + r.stderr)
    r = d.zvm("config", "set", "p1", "tags=web")
    t.ok(r.returncode == 0 and r.stdout == "", "config set of a live key does not repeat what is pending", r.stdout)
    r = d.zvm("status", "p1")
    t.ok(re.search(r"^memory: +128M$", r.stdout, re.M), "status: the memory the VM runs with", r.stdout)
    r = d.zvm("list")
    rows = {line.split()[1]: line.split() for line in r.stdout.splitlines()[1:]}
    t.ok(rows.get("p1", [None] * 5)[4] == "128M", "list: the memory the VM runs with", r.stdout)
    r = d.zvm("pending", "p1")
    rows = pending_rows(r.stdout)
    t.ok(r.returncode == 0 and rows.get("memory") == ["128", "256"] and rows.get("tags") == ["web", ""],
         "zvm pending: running value beside the pending one", r.stdout + r.stderr)
    status, entries = d.request("GET", "/vms/p1/pending")
    mem = [e for e in entries if e.get("key") == "memory"] if status == 200 else []
    t.ok(mem == [{"key": "memory", "value": 128, "pending": 256}], "GET /vms/p1/pending: memory 128 → 256", entries)
    d.zvm("config", "set", "p1", "memory=128")
    r = d.zvm("pending", "p1")
    t.ok(pending_rows(r.stdout).get("memory") == ["128", ""], "a key set back to its running value is not pending",
         r.stdout)
    r = d.zvm("config", "set", "p1", "memory=256", "cores=2")
    t.ok(r.stdout == "memory: needs restart\ncores: needs restart\n", "config set names the keys it changed", r.stdout)
    r = d.zvm("--json", "config", "show", "p1")
    cfg = json.loads(r.stdout) if r.returncode == 0 else {}
    t.ok(cfg.get("memory") == 256 and "state" not in cfg and "config" not in cfg,
         "config show --json: the config alone", r.stdout)


def check_balloon(t, d):
    r = d.zvm("set-memory", "p1", "64M")
    t.ok(r.returncode == 0, "set-memory 64M works with the default floor (half of 128)", r.stderr)
    r = d.zvm("set-memory", "p1", "40")
    t.ok(r.returncode == 2 and "balloon" in r.stderr and "lower" in r.stderr,
         "set-memory below the floor says how to lower it", r.stderr)


def check_reboot(t, d):
    before = d.request("GET", "/vms/p1/status")[1]
    time.sleep(2)
    r = d.zvm("reboot", "p1")
    t.ok(r.returncode == 0, "zvm reboot", r.stderr)
    st = wait_agent_ready(d, "p1")
    t.ok(st.get("memory_mib") == 256 and st.get("pid") != before.get("pid"),
         "reboot applies the pending memory (a new QEMU)", st)
    t.ok(st.get("uptime", 1e9) < before.get("uptime", 0) + 2 and st.get("boot", {}).get("ready_seconds", 0) > 0,
         "after reboot: uptime starts over, ready_seconds is the new boot's", st)
    status, entries = d.request("GET", "/vms/p1/pending")
    t.ok(status == 200 and not [e for e in entries if "pending" in e or "delete" in e],
         "nothing pending after the reboot", entries)


def check_reboot_timeout(t, d):
    """reboot --timeout S: a guest that cannot answer (its QEMU frozen by
    SIGSTOP) is killed after S seconds and started again, not after 60."""
    r = d.zvm("reboot", "p1", "--timeout", "3601")
    t.ok(r.returncode == 2 and "--timeout" in r.stderr, "reboot --timeout 3601 refused", r.stderr)
    before = d.request("GET", "/vms/p1/status")[1]
    os.kill(before["pid"], signal.SIGSTOP)
    t0 = time.monotonic()
    r = d.zvm("reboot", "p1", "--timeout", "3")
    took = time.monotonic() - t0
    st = d.request("GET", "/vms/p1/status")[1]
    t.ok(r.returncode == 0 and st.get("pid") != before["pid"] and 3 <= took < 45,
         f"reboot --timeout 3 of a frozen guest: killed after 3 s and started again ({took:.1f} s)",
         r.stderr + json.dumps(st))
    wait_agent_ready(d, "p1")


def pty_read_until(fd, pattern, timeout=30):
    """What the terminal shows until pattern (a regex) matches, or timeout."""
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:         # EIO: the other side is closed
            break
        if not chunk:
            break
        out += chunk
        if re.search(pattern, out):
            break
    return out.decode(errors="replace")


def set_winsize(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def check_exec_tty(t, d):
    """zvm exec -it: a real terminal in the guest, driven through a pty as
    a user's terminal would be; window size at start and on SIGWINCH, the
    exit status at the end, the local terminal restored."""
    from zvmd import ZVM
    r = d.zvm("exec", "-i", "p1", "--", "sh")
    t.ok(r.returncode == 2 and "-t" in r.stderr, "exec -i without -t is refused, naming -t", r.stderr)
    r = d.zvm("--url", "https://127.0.0.1:9", "--token", "zvm-x", "exec", "-it", "p1", "--", "sh")
    t.ok(r.returncode == 2 and "unix socket" in r.stderr, "exec -it over --url: refused, it needs the VM's host",
         r.stderr)
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(ZVM, [ZVM, "--root", d.root, "exec", "-it", "p1", "--", "sh"])
    status = None
    try:
        set_winsize(fd, 31, 97)
        before = termios.tcgetattr(fd)
        # busybox ash asks the terminal where its cursor is (ESC [6n) and
        # reads the answer from its input: answer as a terminal does.
        out = pty_read_until(fd, rb"\x1b\[6n|# $")
        if "\x1b[6n" in out:
            os.write(fd, b"\x1b[1;1R")
            pty_read_until(fd, rb"# $", timeout=5)
        os.write(fd, b"tty; echo TTY-DONE\n")
        out = pty_read_until(fd, rb"/dev/pts/\d+.*\r?\n.*TTY-DONE\r?\n")
        t.ok(re.search(r"^/dev/pts/\d+\r?$", out, re.M) is not None, "exec -it: tty says /dev/pts/N", out)
        os.write(fd, b"stty size; echo SIZE-DONE\n")
        out = pty_read_until(fd, rb"\d+ \d+\r?\n.*SIZE-DONE\r?\n")
        t.ok(re.search(r"^31 97\r?$", out, re.M) is not None, "stty size: the window size at the start (31 97)", out)
        set_winsize(fd, 40, 132)        # the kernel sends zvm SIGWINCH
        time.sleep(0.5)
        os.write(fd, b"stty size; echo SIZE2-DONE\n")
        out = pty_read_until(fd, rb"\d+ \d+\r?\n.*SIZE2-DONE\r?\n")
        t.ok(re.search(r"^40 132\r?$", out, re.M) is not None, "stty size after a resize: 40 132 (SIGWINCH relayed)",
             out)
        os.write(fd, b"exit 7\n")
        pty_read_until(fd, rb"$^", timeout=20)
        deadline = time.monotonic() + 20
        while status is None and time.monotonic() < deadline:
            w, st = os.waitpid(pid, os.WNOHANG)
            if w == pid:
                status = st
            else:
                time.sleep(0.1)
        t.ok(status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 7,
             "exit 7 in the guest: zvm exec -it exits 7", status)
        t.ok(termios.tcgetattr(fd)[3] == before[3], "the terminal's modes are restored", termios.tcgetattr(fd))
    finally:
        if status is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    r = d.zvm("exec", "-it", "p1", "--", "no-such-command")
    t.ok(r.returncode == 127 and "no-such-command" in r.stderr, "exec -it of a missing command exits 127", r.stderr)


def check_raw_floats(t, d):
    """zvmd's own JSON (not only the CLI's rendering) has times as plain
    decimals, never json-c's %.17g artefacts."""
    from zvmd import UnixHTTPConnection
    conn = UnixHTTPConnection(d.sock, timeout=30)
    conn.request("GET", "/api/v1/vms/p1/status")
    text = conn.getresponse().read().decode()
    conn.close()
    t.ok('"uptime":' in text and '"ready_seconds":' in text and not re.search(r"\.\d*(0{6,}|9{6,})\d", text),
         "GET status: uptime, cpu_seconds, ready_seconds without float artefacts", text)


def check_cp(t, d):
    tmp = tempfile.mkdtemp(prefix="zvm-cp-")
    try:
        r = d.zvm("cp", "p1:/etc/passwd", tmp)
        t.ok(r.returncode == 0 and os.path.getsize(os.path.join(tmp, "passwd")) > 0,
             "cp VM:/etc/passwd DIR: the file lands in DIR", r.stderr)
        big = os.path.join(tmp, "big.bin")
        with open(big, "wb") as f:
            f.write(os.urandom(2 * 1024 * 1024 + 12345))
        r = d.zvm("cp", big, "p1:/tmp/")
        t.ok(r.returncode == 0, "cp of a 2 MiB file into VM:/tmp/", r.stderr)
        r = d.zvm("exec", "p1", "--", "md5sum", "/tmp/big.bin")
        t.ok(r.stdout.split(" ")[0] == md5(big), "the guest's copy is the same bytes", r.stdout + r.stderr)
        os.mkdir(os.path.join(tmp, "back"))
        r = d.zvm("cp", "p1:/tmp/big.bin", os.path.join(tmp, "back"))
        back = os.path.join(tmp, "back", "big.bin")
        t.ok(r.returncode == 0 and os.path.exists(back) and md5(back) == md5(big),
             "cp of a 2 MiB file out of the VM into a directory", r.stderr)
        t.ok(os.listdir(os.path.join(tmp, "back")) == ["big.bin"], "no temporary file left behind",
             os.listdir(os.path.join(tmp, "back")))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_host_naming(t, d):
    r = d.zvm("host")
    labels = [line.split(":")[0] for line in r.stdout.splitlines() if not line.startswith(" ")]
    t.ok(r.returncode == 0 and "vsock-mode" in labels and "qemu-binary" in labels and
         not [x for x in labels if "_" in x], "host: one naming style in its labels (vsock-mode, qemu-binary)",
         r.stdout)


def check_bad_json(t, d):
    status, body = d.request("POST", "/vms", raw="notjson")
    msg = (body or {}).get("message", "")
    t.ok(status == 400 and body.get("error") == "InvalidJson" and "not valid JSON" in msg and "expected" not in msg,
         "a body of notjson: our message with where, not json-c's 'null expected'", body)


def check_api_index(t, d):
    """GET /api/v1 and /api/v1/: an index, as Proxmox's /api2/json/; a
    trailing slash elsewhere stays malformed."""
    from zvmd import UnixHTTPConnection
    for path in ("/api/v1", "/api/v1/"):
        conn = UnixHTTPConnection(d.sock, timeout=30)
        conn.request("GET", path)
        resp = conn.getresponse()
        body = json.loads(resp.read() or b"null")
        conn.close()
        links = (body or {}).get("links", {})
        t.ok(resp.status == 200 and body.get("api_version") == "v1" and body.get("version") and
             all(links.get(k) == f"/api/v1/{k}" for k in ("vms", "templates", "models", "host", "tokens", "events")),
             f"GET {path}: 200, the API version and links to the collections", body)
        if links.get("vms"):
            status, vms = d.request("GET", links["vms"][len("/api/v1"):])
            t.ok(status == 200 and isinstance(vms, list), f"the index's vms link from {path} answers", vms)
    status, body = d.request("GET", "/vms/")
    t.ok(status == 400, "GET /api/v1/vms/ is still a malformed path", body)


def scenario_first_hour(t, d):
    check_api_index(t, d)
    check_host_naming(t, d)
    check_bad_json(t, d)
    for name in ("p1", "p2"):
        status, vm = d.request("POST", "/vms", {"name": name, "memory": 128})
        t.ok(status == 201, f"create {name}", vm)
    check_stopped(t, d)
    r = d.zvm("start", "p1")
    t.ok(r.returncode == 0, "start p1", r.stderr)
    # Right after the start the agent is still booting: exec waits for it.
    r = d.zvm("exec", "p1", "--", "hostname")
    t.ok(r.returncode == 0 and r.stdout == "p1\n", "exec right after start works; the guest is called p1",
         r.stdout + r.stderr)
    r = d.zvm("exec", "p1", "--", "no-such-command")
    t.ok(r.returncode == 127 and "no-such-command" in r.stderr, "exec of a missing command exits 127", r.stderr)
    check_exec_tty(t, d)
    check_set_time(t, d)
    check_pending(t, d)
    check_balloon(t, d)
    check_reboot(t, d)
    check_reboot_timeout(t, d)
    check_raw_floats(t, d)
    check_cp(t, d)
