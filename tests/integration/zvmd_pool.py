"""Issue 13 (start time): the warm pool. zvmd keeps booted, unclaimed
guests (ZVM_POOL=size=2,memory=128 for these scenarios); the first start of
a VM of that shape claims one instead of booting. The claimed guest must be
the VM's own (hostname, CID, secret, writable layer, pid), never handed to
two VMs, also across a zvmd kill -9."""
import json
import os
import signal
import time

import zvmtest as zt
from zvmd import create, wait_agent

POOL_SPEC = "size=2,memory=128"
CRASH_SHIM = os.path.join(zt.BUILD, "tests", "helpers", "crashpoint.so")
# Two TCG guests booting one after another on a loaded 2-core host.
POOL_READY_TIMEOUT = 240.0


def _pool(d):
    status, host = d.request("GET", "/host")
    return host.get("pool", {}) if status == 200 and isinstance(host, dict) else {}


def wait_pool_ready(t, d, n, what):
    deadline = time.monotonic() + POOL_READY_TIMEOUT
    p = _pool(d)
    while time.monotonic() < deadline and p.get("ready", 0) < n:
        time.sleep(0.5)
        p = _pool(d)
    t.ok(p.get("ready", 0) >= n, f"{what}: {n} pool guest(s) ready", p)
    return p


def pool_guest_pids(d):
    """QEMU pids named by the pool's slot run dirs (VMIDs from 251526144)."""
    base = os.path.join(d.root, "run", "zvm", "vms")
    pids = {}
    for name in os.listdir(base) if os.path.isdir(base) else []:
        if name.isdigit() and int(name) >= 251526144:
            pid = d.run_state(int(name)).get("pid")
            if pid:
                pids[int(name)] = pid
    return pids


def _secret(d, vmid):
    try:
        with open(os.path.join(d.root, "run", "zvm", "vms", str(vmid), "agent.secret")) as f:
            return f.read()
    except OSError:
        return None


def _start(t, d, name):
    t0 = time.monotonic()
    status, body = d.request("POST", f"/vms/{name}/start")
    took = time.monotonic() - t0
    st = d.request("GET", f"/vms/{name}/status")[1]
    return status, st, took


def _record(path):
    """A VM's state.json, {} when there is none (yet)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _uid(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("Uid:"))
    except (OSError, StopIteration, ValueError):
        return None


def _exec(d, name, *argv):
    r = d.zvm("exec", name, "--", *argv)
    return r.returncode, r.stdout.strip()


def scenario_pool(t, d):
    """Two starts claim two pool guests: each VM gets its own identity and
    layer; a VM of another shape, or a second start, boots cold; kill -9 of
    zvmd loses no claim and hands no guest out twice."""
    p = _pool(d)
    t.ok(p.get("size") == 2 and p.get("memory") == 128, "GET /host shows the pool's setting", p)
    wait_pool_ready(t, d, 2, "at start")
    status, body = d.request("POST", "/vms", {"vmid": 251526144, "name": "slot", "memory": 128})
    t.ok(status == 400 and "reserved for the warm pool" in json.dumps(body),
         "a VM cannot be created with a pool slot's VMID", (status, body))
    a, b = create(t, d, "pa"), create(t, d, "pb", sshkeys="")
    c = create(t, d, "pc", memory=256)
    z = create(t, d, "pz")
    if not (a and b and c and z):
        return
    guests = pool_guest_pids(d)
    t.ok(len(guests) == 2, "two guests run in the pool's slots", guests)

    status, st_a, took = _start(t, d, "pa")
    t.ok(status == 200 and st_a.get("state") == "running" and st_a.get("start_path") == "pool",
         f"pa starts from the pool ({took:.2f} s)", st_a)
    t.ok(st_a.get("pid") in guests.values(), "pa runs a QEMU that was a pool guest", (st_a, guests))
    status, st_b, took = _start(t, d, "pb")
    t.ok(status == 200 and st_b.get("start_path") == "pool", f"pb starts from the pool ({took:.2f} s)", st_b)
    t.ok(st_b.get("pid") in guests.values() and st_b.get("pid") != st_a.get("pid"),
         "pb runs the other pool guest, not pa's", (st_a, st_b, guests))
    # Both guests are taken and the pool waits 1 s before it boots a
    # replacement: pz, of the pool's shape, finds none ready.
    status, st_z, _ = _start(t, d, "pz")
    t.ok(status == 200 and st_z.get("start_path") == "cold", "pz, of the pool's shape, starts cold: none ready", st_z)
    d.request("POST", "/vms/pz/stop")
    wait_agent(d, "pa")
    wait_agent(d, "pb")
    t.ok(_exec(d, "pa", "hostname") == (0, "pa"), "pa's guest is called pa", _exec(d, "pa", "hostname"))
    r = d.zvm("status", "pa")
    t.ok(r.returncode == 0 and "start-path:     pool" in r.stdout, "zvm status pa says it started from the pool",
         r.stdout + r.stderr)
    r = d.zvm("host")
    t.ok(r.returncode == 0 and "template tiny, 128M, 1 core(s)); 2 claimed" in r.stdout,
         "zvm host shows the pool and its claims", r.stdout + r.stderr)
    t.ok(_exec(d, "pb", "hostname") == (0, "pb"), "pb's guest is called pb", _exec(d, "pb", "hostname"))
    # Identity: CID (config and running), secret, writable layer.
    va, vb = d.request("GET", "/vms/pa")[1], d.request("GET", "/vms/pb")[1]
    cid_a, cid_b = va.get("config", {}).get("vsock"), vb.get("config", {}).get("vsock")
    t.ok(cid_a and cid_b and cid_a != cid_b and not va.get("pending") and not vb.get("pending"),
         f"own CIDs ({cid_a}, {cid_b}) in the configs, nothing pending", (va, vb))
    sa, sb = _secret(d, a["vmid"]), _secret(d, b["vmid"])
    t.ok(sa and sb and sa != sb, "own agent secrets in their own run dirs", (sa, sb))
    la = os.path.join(d.root, "var", "lib", "zvm", "vms", str(a["vmid"]), "upper.img")
    lb = os.path.join(d.root, "var", "lib", "zvm", "vms", str(b["vmid"]), "upper.img")
    t.ok(os.path.exists(la) and os.path.exists(lb) and os.stat(la).st_ino != os.stat(lb).st_ino,
         "each VM's writable layer is in its own data dir", (la, lb))
    rc, _ = _exec(d, "pa", "sh", "-c", "echo mine > /root/marker && sync")
    t.ok(rc == 0 and _exec(d, "pb", "cat", "/root/marker")[0] != 0,
         "a file pa writes is not in pb's layer", _exec(d, "pb", "cat", "/root/marker"))

    # Another shape starts cold; so does a start with a layer of its own.
    status, st_c, took = _start(t, d, "pc")
    t.ok(status == 200 and st_c.get("start_path") == "cold", f"pc (256 MiB) starts cold ({took:.2f} s)", st_c)

    # The pool refills: two new guests, neither a VM's.
    p = wait_pool_ready(t, d, 2, "after two claims")
    refill = pool_guest_pids(d)
    taken = {st_a.get("pid"), st_b.get("pid"), st_c.get("pid")}
    t.ok(len(refill) == 2 and not taken & set(refill.values()), "the refilled guests are new processes",
         (refill, taken))
    t.ok(p.get("claims") == 2 and p.get("misses") == 2 and p.get("empty") == 1,
         "GET /host counts 2 claims, 2 cold starts (pz and pc), 1 of them for want of a ready guest (pz)", p)
    uids = {pid: _uid(pid) for pid in list(refill.values()) + [st_a.get("pid"), st_b.get("pid")]}
    t.ok(None not in uids.values() and len(set(uids.values())) == 4,
         "no two QEMUs share a uid: a claimed VM keeps its slot's, the new guests get others", uids)

    # kill -9: the VMs stay theirs, the pool stays the pool's.
    d.kill9()
    d.start()
    sa2 = d.request("GET", "/vms/pa/status")[1]
    sb2 = d.request("GET", "/vms/pb/status")[1]
    t.ok(sa2.get("pid") == st_a.get("pid") and sb2.get("pid") == st_b.get("pid") and
         sa2.get("start_path") == "pool", "after kill -9 zvmd re-adopts pa and pb (same pids, from the pool)",
         (sa2, sb2))
    p = wait_pool_ready(t, d, 2, "after kill -9")
    again = pool_guest_pids(d)
    t.ok(set(again.values()) == set(refill.values()), "the same two guests are the pool's again", (again, refill))
    create(t, d, "pe")
    status, st_e, _ = _start(t, d, "pe")
    t.ok(status == 200 and st_e.get("start_path") == "pool" and st_e.get("pid") in refill.values() and
         st_e.get("pid") not in taken, "a claim after the restart takes a pool guest, never a VM's", st_e)
    wait_agent(d, "pe")
    t.ok(_exec(d, "pe", "hostname") == (0, "pe"), "pe's guest is called pe", _exec(d, "pe", "hostname"))

    # A reboot of a claimed VM is a shutdown and a cold start on its layer.
    status, body = d.request("POST", "/vms/pe/reboot", timeout=180)
    st = d.request("GET", "/vms/pe/status")[1]
    t.ok(status == 200 and st.get("state") == "running" and st.get("start_path") == "cold",
         "pe reboots: a cold start on its own layer", (status, body, st))

    # zvmd killed in the middle of a claim: after the run dir and the
    # layer moved, at the write of pf's config with the guest's CID. The
    # next zvmd finishes the claim (CID, running config, hostname).
    f = create(t, d, "pf")
    wait_pool_ready(t, d, 2, "before the interrupted claim")
    before = pool_guest_pids(d)
    d.terminate()
    crash_log = os.path.join(d.tmp, "crash.log")
    d.start(env_extra={"LD_PRELOAD": CRASH_SHIM, "ZVM_CRASH_MATCH": f".#{f.get('vmid')}.conf", "ZVM_CRASH_AT": "1",
                       "ZVM_CRASH_LOG": crash_log,
                       # An ASan zvmd refuses a preload ahead of its runtime.
                       "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"})
    wait_pool_ready(t, d, 2, "re-adopted, their agents answer")
    try:
        d.request("POST", "/vms/pf/start", timeout=30)
    except OSError:
        pass
    try:
        d.proc.wait(timeout=30)
    except Exception:
        pass
    t.ok(d.proc.poll() == -9, "zvmd was killed during pf's claim", d.proc.poll())
    d.start()
    st_f = d.request("GET", "/vms/pf/status")[1]
    t.ok(st_f.get("state") in ("starting", "running") and st_f.get("start_path") == "pool" and
         st_f.get("pid") in before.values(), "the next zvmd finishes pf's claim: it runs the pool guest", (st_f, before))
    wait_agent(d, "pf")
    vf = d.request("GET", "/vms/pf")[1]
    t.ok(_exec(d, "pf", "hostname") == (0, "pf") and not vf.get("pending"),
         "pf is called pf, its config has the guest's CID, nothing pending", (_exec(d, "pf", "hostname"), vf))
    p = wait_pool_ready(t, d, 2, "after the interrupted claim")
    t.ok(st_f.get("pid") not in pool_guest_pids(d).values(), "the pool does not hold pf's guest any more",
         (st_f, pool_guest_pids(d)))

    # zvmd killed after a claim is complete, before the guest took the
    # VM's name and keys: the pool guests' vsock helpers are stopped
    # (SIGSTOP), so set-hostname cannot reach the agent. state.json says
    # so, and the next zvmd gives the name and keys once they run again.
    g = create(t, d, "pg")
    wait_pool_ready(t, d, 2, "before the claim left unnamed")
    frozen = {slot: d.run_state(slot).get("helper_pid") for slot in pool_guest_pids(d)}
    t.ok(all(frozen.values()), "the pool guests' vsock helpers", frozen)
    for pid in frozen.values():
        os.kill(pid, signal.SIGSTOP)
    try:
        d.request("POST", "/vms/pg/start", timeout=3)
    except OSError:
        pass
    record = os.path.join(d.root, "run", "zvm", "vms", str(g.get("vmid")), "state.json")
    rec_g = _record(record)
    t.ok(rec_g.get("from_pool") and rec_g.get("naming"),
         "a claim whose guest cannot answer: state.json says from_pool and naming", rec_g)
    d.kill9()
    for pid in frozen.values():
        os.kill(pid, signal.SIGCONT)
    d.start()
    wait_agent(d, "pg")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _record(record).get("naming"):
        time.sleep(0.2)
    st_g = d.request("GET", "/vms/pg/status")[1]
    t.ok(_exec(d, "pg", "hostname") == (0, "pg") and not _record(record).get("naming") and
         st_g.get("state") == "running" and st_g.get("start_path") == "pool",
         "the next zvmd names it: pg is called pg, running from the pool, naming gone from state.json",
         (_exec(d, "pg", "hostname"), _record(record), st_g))

    # Stop and start again: cold, on its own layer, which kept the file.
    d.request("POST", "/vms/pa/stop")
    status, st_a3, _ = _start(t, d, "pa")
    t.ok(status == 200 and st_a3.get("start_path") == "cold", "pa's second start boots cold", st_a3)
    wait_agent(d, "pa")
    t.ok(_exec(d, "pa", "cat", "/root/marker") == (0, "mine"), "pa's layer kept its file across the claim",
         _exec(d, "pa", "cat", "/root/marker"))
    for name in ("pa", "pb", "pc", "pe", "pf", "pg"):
        d.request("POST", f"/vms/{name}/stop")
    pids = [pid for pid in taken | {st_e.get("pid"), st_a3.get("pid"), st_f.get("pid"), st_g.get("pid")} if pid]
    deadline = time.monotonic() + 15   # a re-adopted QEMU's zombie is init's to reap
    while time.monotonic() < deadline and not all(zt.pid_gone(pid) or zt.stat_field(pid, 0) == "Z" for pid in pids):
        time.sleep(0.2)
    t.ok(all(zt.pid_gone(pid) or zt.stat_field(pid, 0) == "Z" for pid in pids), "the VMs' QEMUs are gone after stop",
         pids)

    # Turned off: the next zvmd stops the guests the pool had and removes
    # their dirs; the VMs are not touched.
    guests = pool_guest_pids(d)
    d.terminate()
    d.start(env_extra={"ZVM_POOL": "off"})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (pool_guest_pids(d) or _pool(d).get("guests")):
        time.sleep(0.2)
    slots = [n for n in os.listdir(os.path.join(d.root, "run", "zvm", "vms")) if n.isdigit() and int(n) >= 251526144]
    t.ok(not slots and _pool(d).get("guests") == 0 and guests and
         all(zt.pid_gone(pid) or zt.stat_field(pid, 0) == "Z" for pid in guests.values()),
         "--pool off: the next zvmd stops the pool's guests and removes their run dirs", (slots, guests, _pool(d)))


def scenario_pool_ssh(t, d):
    """A pool of the standard (Debian, OpenSSH) template: two claimed VMs
    have their own ssh host keys in zvm's known_hosts under their names, and
    `zvm ssh` logs into each with the key its config names."""
    import subprocess
    from zvmd_templates import build_template
    if not build_template(t, d, "std", "standard"):
        return
    # The template exists now: a zvmd with a pool of it fills at once.
    d.terminate()
    d.start(env_extra={"ZVM_POOL": "size=2,template=std,memory=512"})
    key = os.path.join(d.tmp, "poolkey")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pool", "-f", key], check=True)
    wait_pool_ready(t, d, 2, "standard guests")
    names = ("s1", "s2")
    for name in names:
        r = d.zvm("create", name, "--template", "std", "--memory", "512", "--ssh-key", key + ".pub")
        t.ok(r.returncode == 0, f"create {name} with --ssh-key", r.stderr)
        status, st, took = _start(t, d, name)
        t.ok(status == 200 and st.get("start_path") == "pool", f"{name} starts from the pool ({took:.2f} s)", st)
    known = open(os.path.join(d.root, "var", "lib", "zvm", "ssh_known_hosts")).read()
    keys = {}
    for name in names:
        hostkey = d.zvm("exec", name, "--", "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()
        keys[name] = " ".join(hostkey[:2])
        t.ok(len(hostkey) >= 2 and f"{name}.zvm {hostkey[0]} {hostkey[1]}\n" in known,
             f"known_hosts holds {name}'s own ed25519 host key under its name", (hostkey, known))
    t.ok(keys["s1"] and keys["s1"] != keys["s2"], "the two guests' host keys differ", keys)
    opts = ["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=60"]
    for name in names:
        r = d.zvm("ssh", "-i", key, *opts, name, "--", "hostname", timeout=180)
        t.ok(r.returncode == 0 and r.stdout.strip() == name,
             f"zvm ssh {name} -- hostname: a verified login into the claimed guest, called {name}",
             f"{r.returncode} {r.stdout!r} {r.stderr[-800:]!r}")
    for name in names:
        d.request("POST", f"/vms/{name}/stop")
