"""Chaos (issue 14): zvmd killed with SIGKILL at random moments while client
threads create, start, reconfigure, stop and delete VMs; restarted each
time. After each restart and at the end every invariant is checked:

  - every VM whose start was acknowledged (and no stop since) is running,
    re-adopted with the same QEMU pid;
  - no QEMU or helper is orphaned: every process naming the test's root is
    zvmd, or the QEMU/helper of a VM zvmd reports running;
  - no VM appears twice (names, vmids), every CID is unique;
  - every config parses (one VM per <vmid>.conf, no file zvmd refused);
  - every acknowledged call is on disk (created/deleted VMs, the last
    description set); a call cut by the kill left the old or the new
    value, never anything else;
  - no leaked file: no ".#" temporary in the config dir, no run dir or
    state.json of a VM that is not running, no data dir without a VM.

Used by the `zvmd-chaos` scenario (a few kills) and bench/chaos (100).
"""
import http.client
import os
import random
import re
import threading
import time

import zvmtest as zt

# Errors of a request cut by the kill (or sent while zvmd is down).
CUT = (OSError, http.client.HTTPException)
SETTLE_TIMEOUT = 90.0
STABLE_STATES = ("running", "stopped", "crashed")


class Entry:
    """What the client knows of one VM from acknowledged calls. A call cut
    by a kill makes the entry uncertain: then either outcome is allowed
    (old or new), and the entry is resynchronised from zvmd."""

    def __init__(self):
        self.exists = False
        self.running = False
        self.pid = None
        self.desc = None
        self.uncertain = None           # (op, old (exists, running, desc), new ...) of a cut call


class Chaos:
    def __init__(self, d, workers=2, names_per_worker=3, seed=None, log=print):
        self.d = d
        self.rng = random.Random(seed)
        self.log = log
        self.names = [[f"c{w}x{k}" for k in range(names_per_worker)] for w in range(workers)]
        self.ledger = {n: Entry() for ns in self.names for n in ns}
        self.gate = threading.Event()
        self.gate.set()
        self.parked = [threading.Event() for _ in range(workers)]
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ops = {"ok": 0, "cut": 0, "refused": 0}
        self.failures = []
        self.checks = 0
        self.seq = 0

    # -- the client loop ---------------------------------------------------
    def _op(self, name, rng):
        e = self.ledger[name]
        d = self.d
        if not e.exists:
            op = "create"
        elif e.running:
            op = rng.choice(["patch", "stop", "stop", "patch"])
        else:
            op = rng.choice(["start", "start", "patch", "delete"])
        with self.lock:
            self.seq += 1
            desc = f"chaos {self.seq}"
        old = (e.exists, e.running, e.desc)
        new = {"create": (True, False, None), "start": (True, True, e.desc), "stop": (True, False, e.desc),
               "patch": (True, e.running, desc), "delete": (False, False, None)}[op]
        try:
            if op == "create":
                status, body = d.request("POST", "/vms", {"name": name, "memory": 128}, timeout=60)
            elif op == "patch":
                status, body = d.request("PATCH", f"/vms/{name}", {"description": desc}, timeout=60)
            elif op == "delete":
                status, body = d.request("DELETE", f"/vms/{name}", timeout=60)
            else:
                status, body = d.request("POST", f"/vms/{name}/{op}", timeout=60)
        except CUT:
            e.uncertain = (op, old, new)
            self.ops["cut"] += 1
            return False
        if status >= 500:
            e.uncertain = (op, old, new)
            self.ops["cut"] += 1
            return True
        if status >= 300:
            # Refused: the ledger was stale (e.g. a start a kill ended as
            # "zvmd exited while the VM was starting"). Resync at the check.
            e.uncertain = (op, old, old)
            self.ops["refused"] += 1
            return True
        e.exists, e.running, e.desc = new
        if op == "start":
            # The start answers once the VM runs; its QEMU pid is in the status.
            e.pid = None
            try:
                status, body = d.request("GET", f"/vms/{name}/status", timeout=60)
                if status == 200 and body.get("state") == "running":
                    e.pid = body.get("pid")
            except CUT:
                pass                    # unknown: any pid will do at the check
        elif op in ("stop", "delete"):
            e.pid = None
        self.ops["ok"] += 1
        return True

    def _worker(self, w):
        rng = random.Random(self.rng.random())
        while not self.stop.is_set():
            if not self.gate.is_set():
                self.parked[w].set()
                self.gate.wait(timeout=1)
                continue
            self.parked[w].clear()
            if not self._op(rng.choice(self.names[w]), rng):
                # Cut by the kill: wait for the check to let us go on.
                self.parked[w].set()
                while not self.stop.is_set() and self.gate.is_set():
                    time.sleep(0.01)
            time.sleep(rng.uniform(0, 0.2))
        self.parked[w].set()

    # -- invariants --------------------------------------------------------
    def fail(self, what):
        self.failures.append(what)
        self.log(f"# INVARIANT BROKEN: {what}")

    def _procs(self):
        mine = {self.d.proc.pid} if self.d.proc and self.d.proc.poll() is None else set()
        found = {}
        for p in os.listdir("/proc"):
            if not p.isdigit() or int(p) in mine or int(p) == os.getpid():
                continue
            try:
                cmd = open(f"/proc/{p}/cmdline", "rb").read().decode(errors="replace")
            except OSError:
                continue
            if zt.proc_of_root(int(p), self.d.root):
                found[int(p)] = cmd.split("\0")[0]
        return found

    def _settle(self):
        """Waits until no VM is starting or stopping (a stop carried on by
        the new zvmd). Returns zvmd's VM list."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while True:
            status, vms = self.d.request("GET", "/vms", timeout=30)
            if status == 200 and all(v.get("state") in STABLE_STATES for v in vms):
                return vms
            if time.monotonic() > deadline:
                self.fail(f"VMs did not settle within {SETTLE_TIMEOUT:.0f} s: "
                          f"{[(v.get('name'), v.get('state')) for v in vms] if status == 200 else vms}")
                return vms if status == 200 else []
            time.sleep(0.2)

    def check(self, qemu_before=()):
        """Every invariant; qemu_before: QEMU pids that ran when zvmd was
        killed (each must be re-adopted or, if its VM was stopping, gone)."""
        self.checks += 1
        d = self.d
        vms = self._settle()
        by_name = {}
        for v in vms:
            if v["name"] in by_name:
                self.fail(f"VM {v['name']} listed twice")
            by_name[v["name"]] = v
        vmids = [v["vmid"] for v in vms]
        if len(set(vmids)) != len(vmids):
            self.fail(f"a vmid listed twice: {vmids}")
        cids = [v.get("cid") for v in vms]
        if len(set(cids)) != len(cids):
            self.fail(f"a CID used twice: {cids}")
        status = {}
        for v in vms:
            code, st = d.request("GET", f"/vms/{v['name']}", timeout=30)
            if code != 200:
                self.fail(f"GET /vms/{v['name']}: {code}")
                continue
            code, run = d.request("GET", f"/vms/{v['name']}/status", timeout=30)
            if code != 200:
                self.fail(f"GET /vms/{v['name']}/status: {code}")
                continue
            st.update(state=run.get("state"), pid=run.get("pid"), crash_reason=run.get("crash_reason"))
            status[v["name"]] = st
        # Configs: one parsed VM per file, nothing half-written left over.
        etc = os.path.join(d.root, "etc", "zvm", "vms")
        files = sorted(os.listdir(etc)) if os.path.isdir(etc) else []
        confs = {f for f in files if re.fullmatch(r"\d+\.conf", f)}
        if confs != {f"{v['vmid']}.conf" for v in vms}:
            self.fail(f"config files {sorted(confs)} != VMs {sorted(vmids)} (a config zvmd did not load?)")
        # .<vmid>.lock: the per-VM config lock (vm_save_config), while the VM exists.
        locks = {f".{v['vmid']}.lock" for v in vms}
        if set(files) - confs - locks:
            self.fail(f"leaked files in {etc}: {sorted(set(files) - confs - locks)}")
        # The ledger: acknowledged calls are on disk; a cut call left old or new.
        for name, e in self.ledger.items():
            st = status.get(name)
            got = (st is not None, bool(st and st.get("state") == "running"),
                   (st or {}).get("config", {}).get("description") if st else None)
            if e.uncertain:
                op, old, new = e.uncertain
                if got not in (old, new):
                    self.fail(f"{name}: a {op} cut by the kill left {got}, neither old {old} nor new {new}")
                e.exists, e.running, e.desc = got
                e.pid = st.get("pid") if got[1] else None
                e.uncertain = None
                continue
            if got[0] != e.exists:
                self.fail(f"{name}: {'acknowledged create lost' if e.exists else 'deleted VM is back'}")
            elif e.exists and got[2] != e.desc:
                self.fail(f"{name}: description {got[2]!r}, the last acknowledged PATCH set {e.desc!r}")
            if e.running and not (got[1] and (e.pid is None or st.get("pid") == e.pid)):
                self.fail(f"{name}: was running with QEMU pid {e.pid}, now {st and st.get('state')} "
                          f"pid {st and st.get('pid')} ({st and st.get('crash_reason')})")
            if not e.running and got[1]:
                self.fail(f"{name}: acknowledged stop, yet running")
        # Processes: QEMU of a killed zvmd adopted or ended; nothing orphaned.
        running = {v["name"]: v for v in status.values() if v.get("state") == "running"}
        allowed = set()
        for v in running.values():
            allowed.add(v.get("pid"))
            allowed.add(d.run_state(v["vmid"]).get("helper_pid"))
        for pid in qemu_before:
            if pid not in allowed and zt.proc_starttime(pid) is not None:
                self.fail(f"QEMU pid {pid} of the killed zvmd runs on, not adopted")
        deadline = time.monotonic() + 10
        while True:
            orphans = {p: c for p, c in self._procs().items() if p not in allowed}
            if not orphans or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if orphans:
            self.fail(f"orphaned processes: {orphans}")
        # Run state: only running VMs have one; data only for existing VMs.
        run = os.path.join(d.root, "run", "zvm", "vms")
        known = {str(v["vmid"]) for v in vms}
        run_ids = {x for x in os.listdir(run)} if os.path.isdir(run) else set()
        for x in run_ids:
            if x not in known:
                self.fail(f"run dir of VM {x}, which does not exist")
            elif os.path.exists(os.path.join(run, x, "state.json")) and \
                    x not in {str(v["vmid"]) for v in running.values()}:
                self.fail(f"state.json of VM {x}, which is not running")
        lib = os.path.join(d.root, "var", "lib", "zvm", "vms")
        for x in os.listdir(lib) if os.path.isdir(lib) else []:
            if x not in known:
                self.fail(f"data dir {lib}/{x} of a VM that does not exist")

    def qemu_pids(self):
        return [p for p, exe in self._procs().items() if "qemu" in os.path.basename(exe)]

    # -- the run -----------------------------------------------------------
    def run(self, kills, min_gap=0.3, max_gap=4.0):
        threads = [threading.Thread(target=self._worker, args=(w,), daemon=True) for w in range(len(self.names))]
        for th in threads:
            th.start()
        t0 = time.monotonic()
        try:
            for k in range(kills):
                time.sleep(self.rng.uniform(min_gap, max_gap))
                # parked is set only by a worker that saw the gate closed.
                for p in self.parked:
                    p.clear()
                self.gate.clear()
                self.d.kill9()
                for p in self.parked:
                    if not p.wait(timeout=90):
                        self.fail("a client call hung past 90 s after the kill")
                before = self.qemu_pids()
                self.d.start()
                self.check(before)
                self.log(f"# kill {k + 1}/{kills}: {len(self.failures)} broken, ops {self.ops}, "
                         f"{len(before)} QEMU re-adopted, {time.monotonic() - t0:.0f} s")
                self.gate.set()
        finally:
            self.stop.set()
            self.gate.set()
            for th in threads:
                th.join(timeout=90)
        self.check()
        return time.monotonic() - t0


def scenario_stop_inflight_early(t, d):
    """Found by bench/chaos: zvmd killed with a stop in flight right after a
    start, while the guest still boots (it ignores ACPI then). The new zvmd
    carries the stop on (powerdown, then a kill at 30 s); QMP's first
    answer must not disarm that kill timer, or the VM stays "stopping"
    for good."""
    status, vm = d.request("POST", "/vms", {"name": "early", "memory": 128})
    t.ok(status == 201, f"create early ({status})", vm)
    status, body = d.request("POST", "/vms/early/start")
    t.ok(status == 200, f"start ({status})", body)
    out = {}

    def shutdown():
        try:
            out["r"] = d.request("POST", "/vms/early/shutdown?timeout=60", timeout=90)
        except OSError as e:
            out["e"] = e
    th = threading.Thread(target=shutdown, daemon=True)
    th.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not d.run_state(vm.get("vmid")).get("stop_requested"):
        time.sleep(0.01)
    t.ok(d.run_state(vm.get("vmid")).get("stop_requested"), "state.json records the stop in flight")
    d.kill9()
    th.join(timeout=30)
    d.start()
    st = d.wait_state("early", ["stopped", "crashed"], timeout=75)
    t.ok(st and st["state"] == "stopped", "the new zvmd ends the stop (killed at its timeout if the guest "
         "ignored the powerdown), not stuck in stopping", st)
