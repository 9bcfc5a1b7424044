"""Crash-consistency of zvmd's writes (issue 14): zvmd runs under the
crashpoint.so shim (tests/helpers/crashpoint.c), which kills it with SIGKILL
right before step N of lib/fileio's atomic write of a chosen file (open of
the temporary, each write, fsync, close, rename, directory fsync, and after
it). For every write path and every N past the steps zvmd makes while it
starts, one trial:

  1. the operation is sent to a zvmd that dies at step N;
  2. each file the operation writes is either the old or the new version,
     never torn (bytes equal to the old file or to the file a run without
     crash wrote; for files holding random secrets, a complete new one);
  3. a normal zvmd starts on what is left, loads every config, and leaves
     no temporary ".#" file behind (etc, run and data dirs);
  4. the root is put back as it was before the trial.

Write paths: a VM config (create, PATCH), tokens.conf, a start's
state.json/running.conf/agent.secret, known_hosts (a rename rewrites it from
the VMs' recorded host keys) and a model record (names/NAME.json, the last
write of a model add).

Used by the `zvmd-crash_writes` scenario (every step of each path, rounds
set by ZVM_CRASH_ROUNDS) and bench/crash.
"""
import json
import os
import re
import shutil
import signal
import time

import zvmtest as zt

SHIM = os.path.join(zt.BUILD, "tests", "helpers", "crashpoint.so")
CUT = (OSError, __import__("http.client").client.HTTPException)


def tmp_files(root):
    """Temporaries of lib/fileio (".#name.XXXXXX") anywhere under the root's
    etc, run and data dirs."""
    found = []
    for top in ("etc/zvm", "run/zvm", "var/lib/zvm"):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            found += [os.path.join(dirpath, f) for f in files if f.startswith(".#")]
    return found


def snapshot(root, rel):
    p = os.path.join(root, rel)
    try:
        with open(p, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


class Trials:
    def __init__(self, d, log=print):
        self.d = d
        self.log = log
        self.trials = 0
        self.torn = []                  # (path, step, file, what)
        self.broken = []                # other failures: zvmd does not start, leftovers
        self.per_path = {}

    def _broke(self, what):
        """A broken trial: kept for the summary, and said at once."""
        self.broken.append(what)
        self.log(f"# BROKEN: {what}")

    # -- zvmd under the shim ---------------------------------------------
    def _start_shimmed(self, match, at):
        logf = os.path.join(self.d.tmp, "crash-steps")
        if os.path.exists(logf):
            os.unlink(logf)
        self.d.start(env_extra={"LD_PRELOAD": SHIM, "ZVM_CRASH_MATCH": match, "ZVM_CRASH_AT": str(at),
                                "ZVM_CRASH_LOG": logf})
        return logf

    def _end(self, logf):
        """Waits for the shimmed zvmd to die (or stops it); the steps it made."""
        try:
            self.d.proc.wait(timeout=5)
        except Exception:
            self.d.terminate()
        died = self.d.proc.returncode == -signal.SIGKILL
        try:
            steps = int(open(logf).read().strip() or 0)
        except (OSError, ValueError):
            steps = 0
        return died, steps

    # -- the root before a trial -------------------------------------------
    def save_root(self):
        self.saved = os.path.join(self.d.tmp, "saved-root")
        shutil.rmtree(self.saved, ignore_errors=True)
        for top in ("etc/zvm", "var/lib/zvm"):
            src = os.path.join(self.d.root, top)
            if os.path.isdir(src):
                shutil.copytree(src, os.path.join(self.saved, top), symlinks=True)

    def restore_root(self):
        self.d.terminate()
        for pid, starttime in self.d.vm_processes():
            if starttime and zt.proc_starttime(pid) == starttime:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        # What no state.json names (a failing run must not leave its
        # processes on a shared host either).
        for p in os.listdir("/proc"):
            try:
                if p.isdigit() and int(p) != os.getpid() and zt.proc_of_root(int(p), self.d.root):
                    os.kill(int(p), signal.SIGKILL)
            except OSError:
                pass
        for pid, starttime in self.d.vm_processes():
            for _ in range(100):
                if zt.proc_starttime(pid) != starttime:
                    break
                time.sleep(0.05)
        for top in ("etc/zvm", "var/lib/zvm", "run/zvm/vms"):
            shutil.rmtree(os.path.join(self.d.root, top), ignore_errors=True)
        for top in ("etc/zvm", "var/lib/zvm"):
            src = os.path.join(self.saved, top)
            if os.path.isdir(src):
                shutil.copytree(src, os.path.join(self.d.root, top), symlinks=True)

    def _orphans(self):
        """Processes naming the root that are neither zvmd nor the QEMU or
        helper of a VM it reports running (waits up to 10 s for ends)."""
        d = self.d
        deadline = time.monotonic() + 10
        while True:
            allowed = {d.proc.pid, os.getpid()}
            for v in d.request("GET", "/vms", timeout=30)[1]:
                if v.get("state") in ("running", "starting", "stopping"):
                    allowed.add(d.request("GET", f"/vms/{v['vmid']}/status", timeout=30)[1].get("pid"))
                    allowed.add(d.run_state(v["vmid"]).get("helper_pid"))
            left = d.root_processes(exclude=allowed)
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.2)

    # -- one write path ----------------------------------------------------
    def path(self, name, match, op, files, judge=None):
        """Every step of the writes op makes to files (paths relative to the
        root) whose temporaries match `match`. judge(rel, old, new_ref, now)
        says whether `now` is an allowed state; default: old or new_ref."""
        d = self.d
        d.terminate()
        self.save_root()
        # Reference: the operation without a crash, counting its steps.
        # Steps zvmd makes while it starts (known_hosts is rewritten then)
        # are not the operation's: trials begin after them.
        logf = self._start_shimmed(match, 0)
        # The fsyncs of those startup writes run on zvmd's disk worker, after
        # it answers: their steps are done once nothing is left queued.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and d.request("GET", "/host")[1].get("sync_queued", 0) > 0:
            time.sleep(0.05)
        try:
            first = int(open(logf).read().strip() or 0)
        except (OSError, ValueError):
            first = 0
        old = {f: snapshot(d.root, f) for f in files}
        try:
            op()
        except CUT:
            pass
        d.terminate()
        _, total = self._end(logf)
        new = {f: snapshot(d.root, f) for f in files}
        self.restore_root()
        if total <= first:
            self._broke(f"{name}: the operation made no write matching {match!r}")
            return
        if all(new[f] == old[f] for f in files):
            self._broke(f"{name}: the operation changed none of {files}: its trials would prove nothing")
            return
        self.log(f"# {name}: {total - first} steps ({match})" + (f", after {first} at startup" if first else ""))
        n_trials = 0
        for at in range(first + 1, total + 1):
            n_trials += 1
            self.trials += 1
            logf = self._start_shimmed(match, at)
            try:
                op()
            except CUT:
                pass
            died, _ = self._end(logf)
            if not died:
                self._broke(f"{name}: zvmd was not killed at step {at} of {total}")
            for f in files:
                now = snapshot(d.root, f)
                ok = (judge or (lambda rel, o, n, x: x in (o, n)))(f, old[f], new[f], now)
                if not ok:
                    self.torn.append((name, at, f, now[:200] if now else now))
                    self.log(f"# TORN: {name} step {at}: {f} = {now[:200] if now else now!r}")
            try:
                d.start()
                status, vms = d.request("GET", "/vms", timeout=30)
                confs = [x for x in os.listdir(os.path.join(d.root, "etc", "zvm", "vms"))
                         if x.endswith(".conf")] if os.path.isdir(os.path.join(d.root, "etc", "zvm", "vms")) else []
                if status != 200 or len(vms) != len(confs):
                    self._broke(f"{name} step {at}: {len(confs)} configs, zvmd loaded {status} {vms}")
                orphans = self._orphans()
                if orphans:
                    self._broke(f"{name} step {at}: processes no VM accounts for: {orphans}")
                left = tmp_files(d.root)
                if left:
                    self._broke(f"{name} step {at}: temporaries left after the restart: {left}")
            except RuntimeError as e:
                self._broke(f"{name} step {at}: zvmd does not start: {str(e)[-500:]}")
            self.restore_root()
        self.per_path[name] = (total - first, n_trials)
        d.start()


def _crash_judge(rel, old, new, now):
    """Files holding random secrets, pids or times (a model record's
    "created", its sha256 of random weights): old, or a complete new one."""
    if rel.endswith("agent.secret"):
        return now in (None, old) or (new is not None and len(now) == len(new)
                                      and re.fullmatch(rb"[0-9a-f]+\n?", now) is not None)
    if rel.endswith("state.json") or "/models/names/" in rel:
        if now in (None, old):
            return True
        try:
            return set(json.loads(now)) == set(json.loads(new))
        except ValueError:
            return False
    if rel.endswith("tokens.conf"):
        return now == old or (now is not None and new is not None and len(now) == len(new)
                              and now.startswith(old or b"") and now.endswith(b"\n"))
    return now in (old, new)


# A guest's host key as its agent reports it in READY (ssh.c records it in
# the VM's data dir, from which known_hosts is made).
HOST_KEY = b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINyb+HhEWW5rVsZDoJ38sGvJrQgv2XNL9LI4hYW5thDD\n"


def seed_host_key(d, vmid):
    """Gives VM vmid recorded host keys, as a READY would have; zvmd
    writes known_hosts from them at its next start."""
    data = os.path.join(d.root, "var", "lib", "zvm", "vms", str(vmid))
    os.makedirs(data, exist_ok=True)
    with open(os.path.join(data, "ssh_host_keys"), "wb") as f:
        f.write(HOST_KEY)


def _rename(d, vmid):
    """PATCH name: known_hosts is rewritten with the new name; the name is
    put back by the trial's root restore."""
    return d.request("PATCH", f"/vms/{vmid}", {"name": "renamed"})


def _model_add(d, name):
    """POST /models (a tiny generated model), then until the add ends or
    zvmd dies (its record, names/NAME.json, is the add's last write)."""
    status, _ = d.request("POST", "/models", {"name": name, "shape": "tiny", "quant": "q8_0"})
    if status != 202:
        return
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and d.proc.poll() is None:
        status, m = d.request("GET", f"/models/{name}", timeout=30)
        if status != 200 or m.get("state") != "adding":
            return
        time.sleep(0.1)


def crash_paths(c, d, vmid, run):
    """One round of crash trials over every write path (also bench/crash)."""
    c.path("create", f"{vmid + 1}.conf.", lambda: d.request("POST", "/vms", {"name": "cw", "memory": 128}),
           [f"etc/zvm/vms/{vmid + 1}.conf"])
    c.path("patch", f"{vmid}.conf.", lambda: d.request("PATCH", f"/vms/{vmid}", {"description": "after"}),
           [f"etc/zvm/vms/{vmid}.conf"])
    c.path("token", "tokens.conf.", lambda: d.request("POST", "/tokens", {"comment": "crash"}),
           ["etc/zvm/tokens.conf"], _crash_judge)
    c.path("start", "state.json,running.conf,agent.secret", lambda: d.request("POST", f"/vms/{vmid}/start"),
           [f"{run}/state.json", f"{run}/running.conf", f"{run}/agent.secret"], _crash_judge)
    seed_host_key(d, vmid)
    c.path("known_hosts", "ssh_known_hosts.", lambda: _rename(d, vmid), ["var/lib/zvm/ssh_known_hosts"])
    c.path("model", "cm.json.", lambda: _model_add(d, "cm"), ["var/lib/zvm/models/names/cm.json"], _crash_judge)
