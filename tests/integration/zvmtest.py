"""Shared helpers for zvm's integration tests: TAP output, locating the guest
artifacts, probing the accelerator, building microVM command lines and
booting them with a hard time bound.

Stdlib only: tests run on a bare Debian host after scripts/install-deps.
"""
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time

BUILD = os.environ.get("ZVM_BUILD_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build")
# The guest artifacts; an ASan build dir borrows the normal build's.
GUEST = os.environ.get("ZVM_GUEST_DIR") or os.path.join(BUILD, "guest")
MUST_BOOT = os.environ.get("ZVM_MUST_BOOT") == "1"
QEMU = os.environ.get("ZVM_QEMU", "qemu-system-x86_64")
QBOOT = "/usr/share/qemu/qboot.rom"
# A TCG boot of the tiny template takes ~2 s wall here; a guest that has not
# finished in this time never will.
BOOT_TIMEOUT = float(os.environ.get("ZVM_BOOT_TIMEOUT", "45"))


class Skip(Exception):
    """Raised inside a test that has begun (its Tap may have printed tests)
    when the host lacks what the rest needs; the runner catches it and calls
    Tap.skip(). Before any output, skip_all() is simpler."""


class Tap:
    """A minimal TAP producer. The plan is printed once, at the end (TAP
    allows that), so it always matches what ran. Exits non-zero if any test
    failed or none ran and nothing was skipped."""

    def __init__(self):
        self.n = 0
        self.failed = 0
        self.skipped = None

    def ok(self, cond, name, detail=None):
        self.n += 1
        if not cond:
            self.failed += 1
        print(f"{'ok' if cond else 'not ok'} {self.n} - {name}", flush=True)
        if not cond and detail:
            self.diag(detail)
        if not cond:
            # meson's --print-errorlogs shows stderr, not the TAP stream: the
            # failure and its detail reach CI's output this way.
            print(f"FAILED {self.n} - {name}", file=sys.stderr)
            for line in str(detail if detail is not None else "").splitlines()[-30:]:
                print(f"  {line[:400]}", file=sys.stderr)
            sys.stderr.flush()
        return cond

    def diag(self, text):
        for line in str(text).splitlines()[-60:]:
            print(f"# {line}", flush=True)

    def skip(self, reason):
        """The rest cannot run on this host. Under ZVM_MUST_BOOT=1 that is a
        failure; else done() reports it: the plan "1..0 # SKIP" if no test
        ran, or one skipped test after those that did."""
        if MUST_BOOT:
            self.ok(False, f"cannot run here (ZVM_MUST_BOOT=1): {reason}")
        else:
            self.skipped = reason

    def done(self):
        if self.skipped and self.n == 0:
            print(f"1..0 # SKIP {self.skipped}", flush=True)
            sys.exit(0)
        if self.skipped:
            self.n += 1
            print(f"ok {self.n} # SKIP {self.skipped}", flush=True)
        print(f"1..{self.n}", flush=True)
        sys.exit(1 if self.failed or self.n == 0 else 0)


def skip_all(reason):
    """Skip the whole file, unless CI demands that VMs really boot. Only
    before any TAP output: once a Tap has printed, raise Skip instead."""
    if MUST_BOOT:
        print("1..1")
        print(f"not ok 1 - cannot boot a VM (ZVM_MUST_BOOT=1): {reason}")
        sys.exit(1)
    print(f"1..0 # SKIP {reason}")
    sys.exit(0)


def proc_status(pid):
    """/proc/PID/status as {field: value}."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return fields


def proc_of_root(pid, root):
    """Whether process pid belongs to the zvm under root: its command line
    names root, or it runs in a directory under it (a VM's QEMU and helper
    run in the VM's run dir and are given fds, not paths: issue 10). False
    if it is gone."""
    try:
        if root in open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace"):
            return True
        return os.readlink(f"/proc/{pid}/cwd").startswith(root.rstrip("/") + "/")
    except OSError:
        return False


def proc_starttime(pid):
    """Field 22 of /proc/PID/stat, the start time in clock ticks after boot:
    with the pid it names one process, never a later one that got the pid
    again. None if no such process runs (none, or a zombie nobody reaped: a
    re-adopted QEMU is not zvmd's child; its reaper is the host's PID 1)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # fields[0] is field 3
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else int(fields[22 - 3])


def pid_gone(pid, starttime=None):
    """Exited: not running, or (with starttime) the pid now names another process."""
    now = proc_starttime(pid)
    return now is None or (starttime is not None and now != starttime)


def procs_with(text):
    """PIDs whose command line contains text, or that run under it
    (proc_of_root)."""
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and proc_of_root(int(p), text)]


def stat_field(pid, i):
    """Field i of /proc/PID/stat after the command (0 state, 1 ppid, 2 pgrp,
    3 session); "" if pid is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[i]
    except (OSError, IndexError):
        return ""


def running(pid):
    """Whether pid exists and is not a zombie (where systemd is not PID 1,
    a reparented zombie can wait seconds for its reaper)."""
    return stat_field(pid, 0) not in ("", "Z")


def session_of(pid):
    return int(stat_field(pid, 3) or 0)


def sessions_members(sid):
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and session_of(int(p)) == sid]


def in_child_pid_namespace(pid):
    """Whether pid runs in a PID namespace below ours (NSpid has two ids)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return any(line.startswith("NSpid:") and len(line.split()) > 2 for line in f)
    except OSError:
        return False


def comm_of(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def hybrid_connect(uds, port, timeout=15.0):
    """CONNECT <port> on vhost-device-vsock's socket; returns the stream."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(uds)
        s.sendall(f"CONNECT {port}\n".encode())
        line = b""
        while not line.endswith(b"\n") and len(line) < 64:
            c = s.recv(1)           # byte by byte: nothing after the reply may be eaten
            if not c:
                break
            line += c
        if not line.startswith(b"OK "):
            raise ConnectionRefusedError(f"hybrid vsock refused port {port}: {line!r}")
    except BaseException:
        s.close()
        raise
    return s


def guest_artifacts():
    paths = {name: os.path.join(GUEST, name)
             for name in ("vmlinux", "initrd.img", "rootfs-tiny.img")}
    missing = [p for p in paths.values() if not os.path.exists(p)]
    if missing:
        skip_all(f"guest artifacts missing ({', '.join(missing)}); run scripts/build-guest")
    if not shutil.which(QEMU):
        skip_all(f"{QEMU} not installed; run scripts/install-deps")
    return paths


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_tsc_khz = None


def host_tsc_khz():
    """The host TSC frequency, measured by tests/helpers/host-tsc-khz (0 if
    the host has no invariant TSC)."""
    global _tsc_khz
    if _tsc_khz is None:
        r = subprocess.run([os.path.join(BUILD, "tests", "helpers", "host-tsc-khz")],
                           capture_output=True, text=True)
        _tsc_khz = int(r.stdout) if r.returncode == 0 else 0
    return _tsc_khz


def microvm_argv(accel, kernel, initrd, append, disks=(), memory=256, cpus=1, extra=(), machine_extra=""):
    """The command line for a zvm-style microVM. disks: list of
    (path, bus, readonly) where bus is 'blk' or 'scsi'. machine_extra is
    appended to the -M option (e.g. ",memory-backend=mem" for
    vhost-user devices)."""
    # Under TCG the kernel hangs calibrating the TSC without the PIT and
    # userspace timers stall without the PIC; under KVM kvmclock makes both
    # unnecessary.
    machine = "microvm,x-option-roms=off,rtc=on"
    if accel == "kvm":
        machine += ",pit=off,pic=off"
    machine += machine_extra
    # Under TCG the guest TSC ticks at the host's rate; calibrating it against
    # the emulated PIT fails when the host is busy and the boot then hangs,
    # so tell the kernel the rate (see lib/tsc.c).
    if accel == "tcg" and host_tsc_khz():
        append = f"tsc_early_khz={host_tsc_khz()} " + append
    argv = [QEMU, "-M", machine, "-accel", accel, "-cpu", "host" if accel == "kvm" else "max",
            "-m", str(memory), "-smp", str(cpus), "-nodefaults", "-no-user-config",
            "-display", "none", "-no-reboot", "-bios", QBOOT,
            "-chardev", "stdio,id=con0", "-serial", "chardev:con0",
            "-kernel", kernel, "-initrd", initrd,
            "-append", "console=ttyS0 panic=-1 " + append]
    scsi = False
    for i, (path, bus, readonly) in enumerate(disks):
        ro = ",readonly=on" if readonly else ""
        argv += ["-drive", f"id=d{i},file={path},format=raw,if=none,cache=unsafe{ro}"]
        if bus == "scsi":
            if not scsi:
                argv += ["-device", "virtio-scsi-device,id=scsi0"]
                scsi = True
            argv += ["-device", f"scsi-hd,drive=d{i},bus=scsi0.0"]
        else:
            argv += ["-device", f"virtio-blk-device,drive=d{i}"]
    return argv + list(extra)


class Boot:
    def __init__(self, rc, output, seconds, timed_out):
        self.rc, self.output, self.seconds, self.timed_out = rc, output, seconds, timed_out

    def has(self, text):
        return text in self.output


def boot(argv, timeout=BOOT_TIMEOUT, until=None):
    """Runs QEMU with the serial console on stdout. Returns when QEMU exits,
    when `until` appears on the console (QEMU is then killed), or after
    timeout seconds (QEMU is killed, timed_out=True)."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    os.set_blocking(proc.stdout.fileno(), False)
    out = b""
    timed_out = False
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    while True:
        left = timeout - (time.monotonic() - start)
        if left <= 0:
            timed_out = True
            break
        if sel.select(left):
            chunk = proc.stdout.read() or b""
            out += chunk
            if not chunk and proc.poll() is not None:
                break
            if until and until.encode() in out:
                break
        elif proc.poll() is not None:
            break
    if proc.poll() is None:
        proc.kill()
    rc = proc.wait()
    rest = proc.stdout.read()
    if rest:
        out += rest
    return Boot(rc, out.decode(errors="replace"), time.monotonic() - start, timed_out)


def probe_accel(paths):
    """'kvm' if KVM can really boot our kernel here, else 'tcg'. Probed by
    booting the kernel + initrd into zvm.diag under KVM with a short bound
    (on a nested PVM host /dev/kvm exists but a standard guest hangs).
    Cached next to the kernel, keyed by kernel hash and QEMU version."""
    forced = os.environ.get("ZVM_ACCEL")
    if forced:
        return forced
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    qemu_version = subprocess.run([QEMU, "--version"], capture_output=True, text=True).stdout
    key = hashlib.sha256((sha256(paths["vmlinux"]) + qemu_version).encode()).hexdigest()
    cache = os.path.join(GUEST, "accel-probe.json")
    try:
        with open(cache) as f:
            data = json.load(f)
        if data.get("key") == key:
            return data["accel"]
    except (OSError, ValueError):
        pass
    argv = microvm_argv("kvm", paths["vmlinux"], paths["initrd.img"], "zvm.diag=1 rootwait=1")
    b = boot(argv, timeout=10, until="diag: done")
    accel = "kvm" if b.has("diag: done") else "tcg"
    with open(cache + ".tmp", "w") as f:
        json.dump({"key": key, "accel": accel, "probe_seconds": round(b.seconds, 2)}, f)
    os.replace(cache + ".tmp", cache)
    return accel


BENCH_DOC_HEAD = "# zvm benchmarks\n\nEach section is written by the script named in its title; rerun it to refresh.\n\n"


def write_bench_section(out, marker, section):
    """Replaces the section of docs/benchmarks.md (out) that starts with the
    heading `marker` by `section`, or appends it; written atomically."""
    out = os.path.abspath(out)
    text = open(out).read() if os.path.exists(out) else BENCH_DOC_HEAD
    if marker in text:
        start = text.index(marker)
        nxt = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[nxt + 1:] if nxt >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(out + ".tmp", "w") as f:
        f.write(text)
    os.replace(out + ".tmp", out)
