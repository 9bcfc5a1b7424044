"""Resource exhaustion (issue 14): zvmd on a full filesystem and at its
file descriptor limit gives clear errors, changes nothing, and keeps
serving; once the resource is back, the same calls succeed."""
import json
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


def _small_fs(d, rel, size):
    """Stops zvmd and mounts a tmpfs of size at root/rel (unmounted by the
    caller); its path."""
    path = os.path.join(d.root, rel)
    d.terminate()
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "zvm-test-full", path],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise zt.Skip(f"cannot mount a tmpfs (needs root): {r.stderr.strip()}")
    return path


def scenario_full_disk(t, d):
    """/etc/zvm on a small tmpfs filled to the last byte: creating a VM,
    PATCHing one and creating a token fail with "No space left on device",
    /etc/zvm is byte-identical and holds no temporary, zvmd keeps serving;
    with room again the same calls succeed."""
    etc = _small_fs(d, os.path.join("etc", "zvm"), "1m")
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


def _start_with_spare(d, vm, limit, spare):
    """POST start of vm while zvmd has only `spare` fds left below limit
    (connections hold the rest); (status, body), status 0 if no answer.
    Bounded by zvmd's own start deadline (QMP: 30 s)."""
    conns = _hold(d, max(0, limit - _fds(d) - spare))
    try:
        return d.request("POST", f"/vms/{vm}/start", timeout=90)
    except OSError as e:
        return 0, f"no answer: {e}"
    finally:
        for s in conns:
            s.close()


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
    status, body = _start_with_spare(d, "f", limit, 3)
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
        found = d.root_processes()
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
        status, body = _start_with_spare(d, "s", limit, spare)
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


def _data(d):
    """Every file under the data dir and its bytes, but the filler."""
    files = {}
    top = os.path.join(d.root, "var", "lib", "zvm")
    for dirpath, _, names in os.walk(top):
        for n in names:
            p = os.path.join(dirpath, n)
            if p != os.path.join(top, "filler") and not os.path.islink(p):
                with open(p, "rb") as f:
                    files[p] = f.read()
    return files


def _wait_async(d, path, busy, timeout=120):
    """GET path until its state is no longer one of busy (bounded)."""
    deadline = time.monotonic() + timeout
    body = {}
    while time.monotonic() < deadline:
        status, body = d.request("GET", path)
        if status != 200 or body.get("state") not in busy:
            return body
        time.sleep(0.3)
    return body


def scenario_data_full(t, d):
    """The data dir (/var/lib/zvm: VM disks, models, templates,
    known_hosts) on a small tmpfs filled to the last byte: adding a model
    (generated, or uploaded: 507 before its body is stored), building a
    template and starting a VM (its writable layer) fail with a reason that
    says space; the data dir and /etc/zvm are as they were, no temporary;
    zvmd keeps serving; with room again the same calls succeed."""
    data = _small_fs(d, os.path.join("var", "lib", "zvm"), "16m")
    gguf = os.path.join(d.tmp, "up.gguf")
    g = subprocess.run([os.path.join(zt.BUILD, "daemon", "tools", "zvm-mkmodel"), "generate", "--shape", "tiny",
                        "--seed", "3", gguf], capture_output=True, text=True, timeout=120)
    t.ok(g.returncode == 0, "a GGUF file to upload", g.stderr)
    upload = open(gguf, "rb").read() if g.returncode == 0 else b"GGUF"
    try:
        d.start()
        status, vm = d.request("POST", "/vms", {"name": "a", "memory": 128})
        t.ok(status == 201, f"create a before the disk is full ({status})", vm)
        filler = _fill(data)
        etc, before = _etc(d), _data(d)

        def unchanged(what):
            t.ok(_etc(d) == etc and _data(d) == before and not _temporaries(d),
                 f"full data dir: the failed {what} changed nothing on disk",
                 (sorted(set(_data(d)) ^ set(before)), _temporaries(d)))

        status, body = d.request("POST", "/models", {"name": "gen", "shape": "tiny"})
        m = _wait_async(d, "/models/gen", ("adding",)) if status == 202 else body
        why = m.get("error") or m.get("message") or ""
        t.ok(m.get("state") == "failed" and "space" in why.lower(),
             f"full data dir: a generated model fails with a clear error ({status}: {why[:60]}...)", m)
        unchanged("model generate")

        # zvmd refuses from the headers alone and may close before the body
        # is sent (zvm waits for "100 Continue"): speak HTTP by hand.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(d.sock)
        s.sendall(b"PUT /api/v1/models/up HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                  b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(upload))
        answer = b""
        while b"}" not in answer:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
        if answer.startswith(b"HTTP/1.1 100"):
            s.sendall(upload)
            answer += s.recv(4096)
        s.close()
        t.ok(answer.startswith(b"HTTP/1.1 507") and b"space" in answer.lower(),
             f"full data dir: an upload is refused from its headers with a clear error ({answer[:30]!r})", answer)
        unchanged("model upload")

        status, body = d.request("POST", "/templates", {"name": "full", "profile": "tiny"})
        b = _wait_async(d, "/templates/full", ("building",), timeout=300) if status == 202 else body
        why = json.dumps(b)
        t.ok(status == 202 and b.get("state") != "ready" and "No space left" in why,
             f"full data dir: a template build fails with a clear error ({status})", b)
        d.request("DELETE", "/templates/full")      # forget the failed build
        unchanged("template build")

        status, body = d.request("POST", "/vms/a/start", timeout=90)
        st = d.wait_state("a", ["stopped", "crashed", "running"], timeout=30) or {}
        msg = body.get("message", "") if isinstance(body, dict) else str(body)
        t.ok(status >= 400 and "No space" in msg and st.get("state") in ("stopped", "crashed"),
             f"full data dir: a start (its writable layer) fails with a clear error ({status})", (body, st))
        unchanged("start")
        t.ok(d.proc.poll() is None and d.request("GET", "/vms")[0] == 200, "zvmd keeps serving on a full data dir")

        os.unlink(filler)
        status, body = d.request("POST", "/models", {"name": "gen", "shape": "tiny"})
        m = _wait_async(d, "/models/gen", ("adding",)) if status == 202 else body
        t.ok(m.get("state") == "ready", f"with room again, the model is generated ({status})", m)
    finally:
        d.terminate()
        for pid in _root_processes(d, within=5):
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        subprocess.run(["umount", data], capture_output=True)


def _vm_size(d):
    for line in open(f"/proc/{d.proc.pid}/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def _call(d, method, path, body=None, **kw):
    """(status, body), or (0, why) if the connection broke."""
    try:
        return d.request(method, path, body, **kw)
    except OSError as e:
        return 0, f"connection broken: {e}"


def scenario_memory_limit(t, d):
    """zvmd under memory pressure: its address space capped (RLIMIT_AS) at
    4 MiB, then 1 MiB, 256, 64 and 16 KiB above what it maps. Creates, big
    bodies, listings, tokens, a model add and a start (children inherit the
    cap) each succeed or fail with an HTTP error that says why, or, when
    libmicrohttpd cannot allocate a connection's memory at all, the
    connection is closed unanswered (zvmd logs it: nothing to answer with);
    zvmd never crashes, a refused create leaves no VM, a start leaves no
    half-started VM, and with the cap lifted everything works again."""
    status, vm = d.request("POST", "/vms", {"name": "m0", "memory": 128})
    t.ok(status == 201, f"create m0 ({status})", vm)
    soft, hard = resource.prlimit(d.proc.pid, resource.RLIMIT_AS)
    results = []
    i = 0
    try:
        for headroom in (4096, 1024, 256, 64, 16):
            cap = _vm_size(d) + headroom * 1024
            resource.prlimit(d.proc.pid, resource.RLIMIT_AS, (cap, hard))
            for _ in range(6):
                i += 1
                results.append((f"create m{i}", _call(d, "POST", "/vms", {"name": f"m{i}", "memory": 128,
                                                                         "description": "x" * 8000})))
            results.append(("list", _call(d, "GET", "/vms")))
            results.append(("token", _call(d, "POST", "/tokens", {"comment": f"mem{i}"})))
            results.append(("body", _call(d, "PATCH", "/vms/m0", {"description": "y" * 8000})))
        status, body = _call(d, "POST", "/models", {"name": "memgen", "shape": "tiny"})
        if status == 202:
            body = _wait_async(d, "/models/memgen", ("adding",))
            status = 200 if body.get("state") == "ready" else 500
        results.append(("model generate", (status, body)))
        results.append(("start", _call(d, "POST", "/vms/m0/start", timeout=90)))
    finally:
        alive = d.proc.poll() is None
        if alive:
            resource.prlimit(d.proc.pid, resource.RLIMIT_AS, (soft, hard))
    summary = [(what, s) for what, (s, _) in results]
    t.diag(f"RLIMIT_AS down to {cap >> 10} KiB (16 KiB headroom): {summary}")
    t.ok(alive, "zvmd survives its memory cap", d.log_text()[-2000:] if not alive else "")
    refused = [(what, s) for what, (s, _) in results if s >= 400]
    t.ok(refused, f"the cap was tight enough to refuse calls ({len(refused)} of {len(results)})", summary)
    bad = [(what, s, b) for what, (s, b) in results
           if s >= 400 and not (isinstance(b, dict) and (b.get("message") or b.get("error")))]
    t.ok(not bad, "every refusal says why", bad)
    dropped = [what for what, (s, _) in results if s == 0]
    oom_lines = d.log_text().count("Cannot allocate memory")
    t.ok(len(dropped) <= oom_lines, f"a call left unanswered ({len(dropped)}) is one zvmd could not allocate "
         f"a connection for ({oom_lines} logged)", dropped)
    st = d.wait_state("m0", ["stopped", "crashed", "running"], timeout=60) or {}
    t.ok(st.get("state") in ("running", "stopped", "crashed") and
         (st.get("state") == "running" or not _root_processes(d)),
         f"the start under the cap ran or ended, nothing half-started ({st.get('state')})", st)
    if st.get("state") == "running":
        d.request("POST", "/vms/m0/stop")
        d.wait_state("m0", ["stopped"], timeout=30)
    # The cap lifted: the same calls succeed, and the registry is what
    # the answers said.
    status, vm = d.request("POST", "/vms", {"name": "after", "memory": 128, "description": "x" * 8000})
    t.ok(status == 201, f"with the cap lifted, a create succeeds ({status})", vm)
    status, body = d.request("POST", "/vms/m0/start", timeout=90)
    t.ok(status == 200, f"with the cap lifted, m0 starts ({status})", body)
    d.request("POST", "/vms/m0/stop")
    st = d.wait_state("m0", ["stopped"], timeout=30)
    t.ok(st and st["state"] == "stopped", "m0 stops", st)
    status, vms = d.request("GET", "/vms")
    names = {v["name"] for v in vms} if status == 200 else set()
    made = {what.split()[1] for what, (s, _) in results if what.startswith("create") and s == 201}
    refused_creates = {what.split()[1] for what, (s, _) in results if what.startswith("create") and s >= 400}
    t.ok(made <= names and not (refused_creates & names) and "after" in names,
         f"every acknowledged create is there ({len(made)}), no refused one ({len(refused_creates)})",
         (sorted(made - names), sorted(refused_creates & names)))


FAILTIMER = os.path.join(zt.BUILD, "tests", "helpers", "failtimer.so")


def scenario_timer_fail(t, d):
    """A deadline zvmd cannot arm (issue 14: sd_event_add_time_relative()
    failing, as out of memory, through tests/helpers/failtimer.so while a
    flag file exists). A stop or shutdown whose backstop cannot be armed
    kills the VM at once instead of leaving it "stopping" for ever; a start
    that cannot arm one of its deadlines fails with a clear error and leaves
    nothing running; with timers back, the same VM starts and stops."""
    flag = os.path.join(d.tmp, "fail-timers")
    d.terminate()
    d.start(env_extra={"LD_PRELOAD": FAILTIMER, "ZVM_FAIL_TIMER_FLAG": flag})

    status, vm = d.request("POST", "/vms", {"name": "tf", "memory": 128})
    t.ok(status == 201, f"create tf ({status})", vm)
    for how in ("shutdown?timeout=60", "stop"):
        status, body = d.request("POST", "/vms/tf/start", timeout=90)
        t.ok(status == 200 and body.get("state") == "running", f"tf runs ({status})", body)
        before = d.log_text_all().count("cannot arm the stop deadline, killing it now")
        open(flag, "w").close()
        t0 = time.monotonic()
        try:
            status, body = _call(d, "POST", f"/vms/tf/{how}", timeout=30)
        finally:
            os.unlink(flag)
        took = time.monotonic() - t0
        t.ok(status == 200 and body.get("state") == "stopped",
             f"{how.split('?')[0]} without a deadline: the VM is stopped ({status}, {took:.1f} s)", body)
        t.ok(d.log_text_all().count("cannot arm the stop deadline, killing it now") == before + 1,
             f"{how.split('?')[0]}: zvmd says it killed the VM because it could not arm the deadline")

    open(flag, "w").close()
    try:
        status, body = _call(d, "POST", "/vms/tf/start", timeout=60)
    finally:
        os.unlink(flag)
    t.diag(f"the start without timers: {status} {body}")
    t.ok(status >= 400 and isinstance(body, dict) and body.get("message"),
         f"a start that cannot arm its deadlines fails and says why ({status})", body)
    st = d.wait_state("tf", ["stopped", "crashed"], timeout=30)
    t.ok(st and st["state"] in ("stopped", "crashed"), "and the VM is down, not left starting", st)
    left = _root_processes(d)
    t.ok(not left, "nothing of that start is left running", left)

    status, body = d.request("POST", "/vms/tf/start", timeout=90)
    t.ok(status == 200 and body.get("state") == "running", f"with timers back, tf starts ({status})", body)
    status, body = d.request("POST", "/vms/tf/stop", timeout=60)
    t.ok(status == 200 and body.get("state") == "stopped", f"and stops ({status})", body)
