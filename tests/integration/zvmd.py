"""A private zvmd for integration tests: started under a temporary --root,
driven over its real unix socket with http.client and with the real `zvm`
CLI. Stdlib only."""
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import zvmtest as zt

ZVMD = os.path.join(zt.BUILD, "daemon", "zvmd")
ZVM = os.path.join(zt.BUILD, "cli", "zvm")
START_TIMEOUT = 30.0
# The slowest event-loop iteration (GET /host loop_worst_ms) a scenario may
# cause: 150 ms (zvmd logs iterations over 50 ms as slow; the margin is for
# CI noise, scripts/check.sh allows more for its ASan build).
# zvmd charges an iteration its wall time minus the time it sat runnable
# waiting for a CPU, so the number does not depend on how busy the host is:
# here (2 cores shared with TCG guests and other test runs, load ~13) an
# iteration's wall time was up to ~1.4x its own time, and every iteration
# that did not wait for a child or a socket stayed under 50 ms of own time.
# What is left over 50 ms is the loop waiting for something: mkfs.ext4,
# ip/bridge, the vsock helper's start, an agent connect, a D-Bus call, or
# parsing a guest's oversized answer. ZVM_LOOP_MAX_MS overrides it.
LOOP_MAX_MS = float(os.environ.get("ZVM_LOOP_MAX_MS", "150"))


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


class Zvmd:
    def __init__(self, tap=None, extra_args=()):
        self.tmp = tempfile.mkdtemp(prefix="zvmd-test-")
        self.root = self.tmp
        # <root>/run on a tmpfs, as /run is wherever zvmd is installed: its
        # sockets and per-VM records cost the loop nothing there, while on
        # a busy disk (CI's) each create or rename in them can wait 20-100
        # ms for the journal. The configs and data stay on the disk, where
        # they are in production too.
        self.run_tmp = None
        if os.path.isdir("/dev/shm") and os.environ.get("ZVM_TEST_RUN_ON_DISK") != "1":
            self.run_tmp = tempfile.mkdtemp(prefix="zvmd-test-run-", dir="/dev/shm")
            os.chmod(self.run_tmp, 0o755)
            os.symlink(self.run_tmp, os.path.join(self.root, "run"))
        self.sock = os.path.join(self.root, "run", "zvm", "api.sock")
        self.log_path = os.path.join(self.tmp, "zvmd.log")
        self.extra_args = list(extra_args)
        self.proc = None
        self.tap = tap
        self.loop_samples = []          # (worst_ms, what, slow iterations) per zvmd that ran
        self.started = False

    # -- process ---------------------------------------------------------
    def start(self, env_extra=None):
        """Starts zvmd; env_extra: variables for this zvmd only (an
        LD_PRELOAD shim and its settings)."""
        self.started = True
        env = dict(os.environ, ZVM_GUEST_DIR=zt.GUEST, ZVM_LOG_LEVEL="debug", **(env_extra or {}))
        # Template builds share the developer's (and CI's) content cache,
        # like the kernel: a private root must not mean a cold Debian build.
        env.setdefault("ZVM_CACHE_DIR", os.path.join(os.environ.get("XDG_CACHE_HOME") or
                                                      os.path.expanduser("~/.cache"), "zvm"))
        # The accelerator probe's answer is cached per root; tests share
        # the one in the build tree's guest dir when present.
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([ZVMD, "--root", self.root] + self.extra_args, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log, env=env)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"zvmd exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                status, _ = self.request("GET", "/host", timeout=2)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"zvmd did not answer within {START_TIMEOUT}s:\n{self.log_text()}")

    def kill9(self):
        self.sample_loop()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self):
        if self.proc and self.proc.poll() is None:
            self.sample_loop()
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def sample_loop(self):
        """Records the running zvmd's worst event-loop iteration (GET /host),
        as each zvmd of a scenario is stopped: its figures die with it."""
        if not self.proc or self.proc.poll() is not None:
            return
        try:
            status, host = self.request("GET", "/host", timeout=10)
        except OSError:
            return
        if status == 200 and isinstance(host, dict) and "loop_worst_ms" in host:
            self.loop_samples.append((float(host["loop_worst_ms"]), host.get("loop_worst_what", ""),
                                      host.get("loop_slow_iterations"), host.get("loop_worst_wall_ms")))

    def check_loop(self, tap, max_ms=None):
        """A TAP test: no zvmd of the scenario blocked its event loop longer
        than LOOP_MAX_MS (or max_ms). Call after the last terminate()."""
        limit = max(LOOP_MAX_MS, max_ms or 0)
        if not self.started:
            return
        if not self.loop_samples:
            tap.ok(False, "GET /host reported zvmd's worst event-loop iteration (zvmd died or did not answer)")
            return
        worst = max(self.loop_samples)
        tap.diag(f"loop_worst_ms={worst[0]:.1f} what={worst[1]!r} slow_iterations="
                 f"{'+'.join(str(x[2]) for x in self.loop_samples)} "
                 f"worst_wall_ms={max(float(x[3] or 0) for x in self.loop_samples):.1f}")
        tap.ok(worst[0] <= limit, f"zvmd's event loop never blocked over {limit:.0f} ms "
               f"(worst {worst[0]:.1f} ms: {worst[1]})")

    def sanitizer_report(self):
        """What ASan/UBSan/LSan said in zvmd's log (an ASan build of zvmd
        reports there, and leaks at exit): empty when clean."""
        text = self.log_text_all()
        hits = [m for m in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer") if m in text]
        return text[text.index(hits[0]):][:4000] if hits else ""

    def log_text_all(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def cleanup(self):
        """Stops zvmd and every QEMU / helper it left running. A pid in a
        state file may long since name another process: the pidfd pins the
        process, and its start time must be the one zvmd recorded."""
        self.terminate()
        for pid, starttime in self.vm_processes():
            try:
                fd = os.pidfd_open(pid)
            except OSError:
                continue
            try:
                if starttime and zt.proc_starttime(pid) == starttime:
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
            except ProcessLookupError:
                pass
            finally:
                os.close(fd)
        if os.environ.get("ZVM_KEEP_TEST_ROOT") != "1":
            shutil.rmtree(self.tmp, ignore_errors=True)
            if self.run_tmp:
                shutil.rmtree(self.run_tmp, ignore_errors=True)

    def run_state(self, vmid):
        """The run/zvm/vms/VMID/state.json zvmd keeps for re-adoption ({} if none)."""
        try:
            with open(os.path.join(self.root, "run", "zvm", "vms", str(vmid), "state.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def vm_processes(self):
        """(pid, start time) of every QEMU and helper the state files name."""
        procs = []
        run = os.path.join(self.root, "run", "zvm", "vms")
        for d in os.listdir(run) if os.path.isdir(run) else []:
            s = self.run_state(d)
            procs += [(s[k], s.get(k.replace("pid", "starttime"))) for k in ("pid", "helper_pid", "passt_pid") if s.get(k)]
        return procs

    def root_processes(self, exclude=()):
        """Pids of the processes other than zvmd that belong to this root
        (zt.proc_of_root: a VM's QEMU or helper, a builder)."""
        found = []
        for p in os.listdir("/proc"):
            try:
                if p.isdigit() and int(p) not in exclude and int(p) != self.proc.pid and \
                        zt.proc_of_root(int(p), self.root):
                    found.append(int(p))
            except OSError:
                pass
        return found

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-6000:]
        except OSError:
            return ""

    # -- API -------------------------------------------------------------
    def request(self, method, path, body=None, raw=None, timeout=120, headers=None):
        conn = UnixHTTPConnection(self.sock, timeout=timeout)
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        hdrs = {"Content-Type": "application/json"} if data is not None else {}
        hdrs.update(headers or {})
        conn.request(method, "/api/v1" + path, body=data, headers=hdrs)
        resp = conn.getresponse()
        text = resp.read().decode(errors="replace")
        conn.close()
        try:
            return resp.status, json.loads(text) if text else None
        except ValueError:
            return resp.status, text

    def zvm(self, *args, timeout=120, input=None, env=None):
        return subprocess.run([ZVM, "--root", self.root] + list(args), capture_output=True, text=True, errors="replace",
                              timeout=timeout, input=input, env=env)

    def wait_state(self, vm, states, timeout=60):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            status, body = self.request("GET", f"/vms/{vm}/status")
            if status == 200:
                last = body
                if body.get("state") in states:
                    return body
            time.sleep(0.1)
        return last

    def wait_console(self, vm, text, timeout=60):
        deadline = time.monotonic() + timeout
        log = ""
        while time.monotonic() < deadline:
            status, log = self.request("GET", f"/vms/{vm}/console/log")
            if status == 200 and isinstance(log, str) and text in log:
                return True
            time.sleep(0.2)
        return False

    def etc_checksum(self):
        """A hash over every file under <root>/etc/zvm, to show a refused
        request changed nothing on disk."""
        h = hashlib.sha256()
        etc = os.path.join(self.root, "etc", "zvm")
        for dirpath, dirnames, filenames in sorted(os.walk(etc)):
            dirnames.sort()
            for name in sorted(filenames):
                p = os.path.join(dirpath, name)
                h.update(p.encode())
                with open(p, "rb") as f:
                    h.update(f.read())
        return h.hexdigest()


def require_daemon():
    zt.guest_artifacts()
    for exe in (ZVMD, ZVM):
        if not os.access(exe, os.X_OK):
            zt.skip_all(f"{exe} not built")


def create(t, d, name, **keys):
    """POST /vms of a 128 MiB VM (plus keys), checked 201; the VM or {}."""
    body = {"name": name, "memory": 128}
    body.update(keys)
    status, vm = d.request("POST", "/vms", body)
    t.ok(status == 201, f"create {name}: 201", f"{status} {vm}")
    return vm if status == 201 else {}


def wait_agent(d, vm, want="ready", timeout=90):
    """The VM's status once its agent is `want`, else the last one seen."""
    deadline = time.monotonic() + timeout
    st = None
    while time.monotonic() < deadline:
        st = d.request("GET", f"/vms/{vm}/status")[1]
        if st.get("agent") == want:
            return st
        time.sleep(0.2)
    return st
