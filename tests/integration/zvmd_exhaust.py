"""Resource exhaustion (issue 14): zvmd on a full filesystem and at its
file descriptor limit gives clear errors, changes nothing, and keeps
serving; once the resource is back, the same calls succeed."""
import os
import resource
import socket
import subprocess
import time

import zvmtest as zt


def _fill(path):
    """Fills the filesystem of path with one file; returns its path."""
    filler = os.path.join(path, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        for size in (64 * 1024, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def _temporaries(d):
    found = []
    for top in ("etc/zvm", "run/zvm", "var/lib/zvm"):
        for dirpath, _, files in os.walk(os.path.join(d.root, top)):
            found += [os.path.join(dirpath, f) for f in files if f.startswith(".#")]
    return found


def _etc(d):
    """Every file under /etc/zvm and its bytes, but the per-VM lock files
    (empty; vm_save_config creates one before its first write)."""
    files = {}
    for dirpath, _, names in os.walk(os.path.join(d.root, "etc", "zvm")):
        for n in names:
            if not (n.startswith(".") and n.endswith(".lock")):
                with open(os.path.join(dirpath, n), "rb") as f:
                    files[os.path.join(dirpath, n)] = f.read()
    return files


def _refused(t, d, what, method, path, body):
    before = _etc(d)
    status, reply = d.request(method, path, body)
    msg = reply.get("message", "") if isinstance(reply, dict) else str(reply)
    t.ok(status >= 400 and "No space left" in msg, f"full disk: {what} refused with a clear error ({status})", reply)
    t.ok(_etc(d) == before and not _temporaries(d), f"full disk: the refused {what} changed nothing on disk",
         _temporaries(d))


def scenario_full_disk(t, d):
    """/etc/zvm on a small tmpfs filled to the last byte: creating a VM,
    PATCHing one and creating a token fail with "No space left on device",
    /etc/zvm is byte-identical and holds no temporary, zvmd keeps serving;
    with room again the same calls succeed."""
    etc = os.path.join(d.root, "etc", "zvm")
    d.terminate()
    os.makedirs(etc, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "zvm-test-full", etc],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise zt.Skip(f"cannot mount a tmpfs (needs root): {r.stderr.strip()}")
    try:
        d.start()
        status, vm = d.request("POST", "/vms", {"name": "a", "memory": 128})
        t.ok(status == 201, f"create a before the disk is full ({status})", vm)
        status, tok = d.request("POST", "/tokens", {"comment": "first"})
        t.ok(status in (200, 201), f"a token before the disk is full ({status})", tok)
        filler = _fill(etc)
        _refused(t, d, "create", "POST", "/vms", {"name": "b", "memory": 128})
        _refused(t, d, "PATCH", "PATCH", "/vms/a", {"description": "more"})
        _refused(t, d, "token create", "POST", "/tokens", {"comment": "second"})
        status, vms = d.request("GET", "/vms")
        t.ok(status == 200 and [v["name"] for v in vms] == ["a"] and d.proc.poll() is None,
             "zvmd keeps serving on a full disk; only a exists", vms)
        status, a = d.request("GET", "/vms/a")
        t.ok(status == 200 and "description" not in a.get("config", {}), "a's config is what it was", a)
        os.unlink(filler)
        status, vm = d.request("POST", "/vms", {"name": "b", "memory": 128})
        t.ok(status == 201, f"with room again, the create succeeds ({status})", vm)
        status, a = d.request("PATCH", "/vms/a", {"description": "more"})
        t.ok(status == 200, f"with room again, the PATCH succeeds ({status})", a)
        d.terminate()
        d.start()
        status, vms = d.request("GET", "/vms")
        t.ok(status == 200 and sorted(v["name"] for v in vms) == ["a", "b"],
             "a restarted zvmd loads both configs", vms)
    finally:
        d.terminate()
        subprocess.run(["umount", etc], capture_output=True)


def _connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    return s


def _fds(d):
    return len(os.listdir(f"/proc/{d.proc.pid}/fd"))


def _cpu_s(d):
    fields = open(f"/proc/{d.proc.pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _hold(d, n):
    """n connections zvmd has accepted (each holds one of its fds)."""
    conns, target = [], _fds(d) + n
    for _ in range(n):
        try:
            conns.append(_connect(d.sock))
        except OSError:
            break
    deadline = time.monotonic() + 10
    while _fds(d) < target and time.monotonic() < deadline:
        time.sleep(0.05)
    return conns


def scenario_fd_limit(t, d):
    """zvmd at RLIMIT_NOFILE 64: 200 client connections do not crash it or
    make it spin; a start that cannot get its fds fails with a clear error
    and leaves the VM stopped (no half-started VM, no orphan); with fds back
    it serves and starts the VM."""
    status, vm = d.request("POST", "/vms", {"name": "f", "memory": 128})
    t.ok(status == 201, f"create f ({status})", vm)
    limit = 64
    # The soft limit only: lowering the hard one needs no privilege, but
    # raising it back would (CAP_SYS_RESOURCE).
    soft, hard = resource.prlimit(d.proc.pid, resource.RLIMIT_NOFILE)
    resource.prlimit(d.proc.pid, resource.RLIMIT_NOFILE, (limit, hard))
    # 1. A flood past the limit.
    conns = _hold(d, 200)
    cpu0 = _cpu_s(d)
    time.sleep(3)
    cpu = _cpu_s(d) - cpu0
    t.ok(d.proc.poll() is None, f"zvmd survives {len(conns)} connections at RLIMIT_NOFILE {limit}")
    t.ok(cpu < 1.5, f"and does not spin on EMFILE ({cpu:.2f} s CPU in 3 s)")
    for s in conns:
        s.close()
    deadline = time.monotonic() + 15
    ok = False
    while time.monotonic() < deadline and not ok:
        try:
            ok = d.request("GET", "/host", timeout=5)[0] == 200
        except OSError:
            time.sleep(0.2)
    t.ok(ok, "with the connections closed, zvmd answers again")
    # 2. A start with 3 fds to spare (one goes to the request itself).
    conns = _hold(d, limit - _fds(d) - 3)
    try:
        # Bounded by zvmd's own start deadline (QMP: 30 s).
        status, body = d.request("POST", "/vms/f/start", timeout=90)
    except OSError as e:
        status, body = 0, f"no answer: {e}"
    finally:
        for s in conns:
            s.close()
    st = d.wait_state("f", ["stopped", "crashed", "running"], timeout=30)
    msg = body.get("message", "") if isinstance(body, dict) else str(body)
    t.ok(status >= 400 and "open files" in msg, f"a start without fds fails with a clear error ({status})", body)
    t.ok(st and st["state"] in ("stopped", "crashed") and st.get("pid") is None, "f is not left half-started", st)
    resource.prlimit(d.proc.pid, resource.RLIMIT_NOFILE, (soft, hard))
    status, body = d.request("POST", "/vms/f/start")
    t.ok(status == 200, f"with fds back, the start succeeds ({status})", body)
    d.request("POST", "/vms/f/stop")
    st = d.wait_state("f", ["stopped"], timeout=30)
    t.ok(st and st["state"] == "stopped", "f stops", st)


def _root_processes(d, within=10):
    """Processes other than zvmd whose command line names the test root
    (a VM's QEMU or helper), once the exits under way are done."""
    deadline = time.monotonic() + within
    while True:
        found = []
        for p in os.listdir("/proc"):
            try:
                if p.isdigit() and int(p) != d.proc.pid and \
                        d.root in open(f"/proc/{p}/cmdline", "rb").read().decode(errors="replace"):
                    found.append(int(p))
            except OSError:
                pass
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def _answers(d, within=10):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if d.request("GET", "/host", timeout=5)[0] == 200:
                return True
        except OSError:
            time.sleep(0.2)
    return False


def scenario_fd_start_sweep(t, d):
    """A start at every fd budget: zvmd at RLIMIT_NOFILE 64 with 3, 4, ...
    fds to spare until a start succeeds. Each start either succeeds or
    fails with its reason within zvmd's own deadlines; zvmd keeps answering
    (a QEMU it could not watch, for lack of an fd for /proc or its pidfd,
    once made zvmd wait for QEMU's exit in the loop: for ever) and no QEMU
    outlives a failed start."""
    status, vm = d.request("POST", "/vms", {"name": "s", "memory": 128})
    t.ok(status == 201, f"create s ({status})", vm)
    limit = 64
    soft, hard = resource.prlimit(d.proc.pid, resource.RLIMIT_NOFILE)
    resource.prlimit(d.proc.pid, resource.RLIMIT_NOFILE, (limit, hard))
    reasons, hung, left, started = {}, [], [], None
    for spare in range(3, 40):
        conns = _hold(d, max(0, limit - _fds(d) - spare))
        try:
            status, body = d.request("POST", "/vms/s/start", timeout=60)
        except OSError as e:
            status, body = 0, f"no answer: {e}"
        finally:
            for s in conns:
                s.close()
        if not _answers(d):
            hung.append(spare)
            break
        st = d.wait_state("s", ["stopped", "crashed", "running"], timeout=40) or {}
        if status == 200 and st.get("state") == "running":
            started = spare
            break
        msg = body.get("message", "") if isinstance(body, dict) else str(body)
        reasons[spare] = (status, msg[:120])
        procs = _root_processes(d)
        if st.get("pid") is not None or procs:
            left.append((spare, st, procs))
    resource.prlimit(d.proc.pid, resource.RLIMIT_NOFILE, (soft, hard))
    t.diag(f"fd budgets tried: {reasons}; first start with {started} spare fds")
    t.ok(not hung, f"zvmd answers after a start at every fd budget (hung at {hung})")
    t.ok(all(s >= 400 and m for s, m in reasons.values()),
         "each failed start says why", reasons)
    t.ok(not left, "no failed start leaves QEMU or its helper running", left)
    t.ok(started is not None, f"with enough fds the start succeeds ({started} spare)")
    if started is not None:
        d.request("POST", "/vms/s/stop")
        st = d.wait_state("s", ["stopped"], timeout=30)
        t.ok(st and st["state"] == "stopped", "s stops", st)
