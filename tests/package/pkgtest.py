"""Helpers of the package tests: build (or reuse) the .deb of the working
tree, make (or reuse) a Debian 12 root for it, boot that root with systemd as
PID 1 under systemd-nspawn, or keep it as a chroot sandbox without systemd,
and run commands inside. Stdlib only; every wait is bounded."""
import glob
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
import zvmtest as zt  # noqa: E402  (Tap, skip_all)

BUILD = os.environ.get("ZVM_BUILD_DIR") or os.path.join(SRC, "build")
CACHE = os.environ.get("ZVM_CACHE_DIR") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "zvm")
MIRROR = os.environ.get("ZVM_DEBIAN_MIRROR", "http://deb.debian.org/debian")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def run(cmd, timeout, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=timeout, **kw)


def require_tools():
    missing = [p for p in ("dpkg-buildpackage", "lintian", "mmdebstrap", "systemd-nspawn", "nsenter", "unshare",
                           "systemd-analyze") if not shutil.which(p)]
    if os.geteuid() != 0:
        missing.append("root")
    if missing:
        zt.skip_all(f"needs {', '.join(missing)} (scripts/install-deps)")


# -- the package ------------------------------------------------------------

def tree_key():
    """A hash of what build-deb copies (tracked and new files, by content),
    so an unchanged tree is not built again."""
    names = run(["git", "-C", SRC, "ls-files", "-z", "-co", "--exclude-standard"], 60).stdout.split("\0")
    h = hashlib.sha256()
    # The package tests' own code does not change the package; build-deb does.
    keep = [n for n in names if n and (not n.startswith("tests/package/") or n == "tests/package/build-deb")]
    for name in sorted(keep):
        p = os.path.join(SRC, name)
        h.update(name.encode() + b"\0")
        if os.path.islink(p):
            h.update(os.readlink(p).encode())
        elif os.path.isfile(p):
            with open(p, "rb") as f:
                h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()[:16]


def ensure_debs(t):
    """(deb, upgrade deb, seconds the build took or None when reused).
    Built once per tree content into BUILD/package/<key>."""
    top = os.path.join(BUILD, "package")
    out = os.path.join(top, tree_key())
    debs = glob.glob(os.path.join(out, "zvm_*_amd64.deb"))
    took = None
    if not debs:
        for old in glob.glob(os.path.join(top, "*")):
            shutil.rmtree(old, ignore_errors=True)
        t0 = time.monotonic()
        r = run([os.path.join(HERE, "build-deb"), out], 3600)
        took = time.monotonic() - t0
        if not t.ok(r.returncode == 0, f"dpkg-buildpackage -us -uc -b builds the package ({took:.0f} s)",
                    r.stdout + r.stderr):
            t.done()
        debs = glob.glob(os.path.join(out, "zvm_*_amd64.deb"))
    up = glob.glob(os.path.join(out, "upgrade", "zvm_*_amd64.deb"))
    return debs[0], up[0], took


def deb_field(deb, field):
    return run(["dpkg-deb", "-f", deb, field], 60).stdout.strip()


def first_alternatives(relations):
    """'a (>= 1), b | c' → ['a', 'b']."""
    out = []
    for rel in relations.split(","):
        name = rel.split("|")[0].split("(")[0].strip()
        if name and not name.startswith("$"):
            out.append(name)
    return out


# -- the Debian 12 root -------------------------------------------------------

ROOT_RECIPE = 3     # bump when make_root() changes in a way the key misses


def root_packages(deb):
    """systemd as PID 1, plus what zvm needs and recommends, so installing the
    package in the root needs no network."""
    pkgs = {"systemd", "systemd-sysv", "dbus", "procps"}
    pkgs.update(first_alternatives(deb_field(deb, "Depends")))
    pkgs.update(first_alternatives(deb_field(deb, "Recommends")))
    return sorted(pkgs)


def make_root(t, deb):
    """A bookworm root tarball with root_packages(), cached by content under
    CACHE/package-root/<key>.tar. vhost-device-vsock (Recommends; hybrid
    vsock, without which no VM starts where /dev/vhost-vsock is missing, as in
    a container) only exists in sid: it comes from a sid source that lives
    only during the build, pinned below bookworm."""
    pkgs = root_packages(deb)
    mm = run(["mmdebstrap", "--version"], 30).stdout.strip()
    key = hashlib.sha256(json.dumps([pkgs, mm, MIRROR, ROOT_RECIPE]).encode()).hexdigest()[:16]
    d = os.path.join(CACHE, "package-root")
    tar = os.path.join(d, key + ".tar")
    if os.path.exists(tar):
        return tar, None
    os.makedirs(d, exist_ok=True)
    for old in glob.glob(os.path.join(d, "*.tar")):
        os.unlink(old)
    tmp = tar + ".tmp.tar"
    include = ",".join(p + "/sid" if p == "vhost-device-vsock" else p for p in pkgs)
    cmd = ["mmdebstrap", "--variant=minbase", "--mode=root", "--format=tar", "--include=" + include,
           "--aptopt=Acquire::Check-Valid-Until \"false\"", "--aptopt=APT::Default-Release \"bookworm\"",
           "--aptopt=APT::Install-Recommends \"false\"",
           # The root's own apt sees bookworm only, as a plain host would.
           f"--customize-hook=echo 'deb {MIRROR} bookworm main' >\"$1/etc/apt/sources.list\"",
           "--customize-hook=rm -f \"$1/etc/apt/apt.conf.d/99mmdebstrap\"",
           "--customize-hook=chroot \"$1\" apt-get -qq update",
           "--customize-hook=echo zvm-test >\"$1/etc/hostname\"",
           "bookworm", tmp, f"deb {MIRROR} bookworm main", f"deb [check-valid-until=no] {MIRROR} sid main"]
    t0 = time.monotonic()
    r = run(cmd, 1800)
    took = time.monotonic() - t0
    if not t.ok(r.returncode == 0 and os.path.exists(tmp), f"mmdebstrap makes a bookworm root ({took:.0f} s, "
                f"{len(pkgs)} packages asked for; cached as {tar})", r.stderr[-3000:]):
        t.done()
    os.replace(tmp, tar)
    return tar, took


def unpack_root(tar, parent):
    root = os.path.join(parent, "root")
    os.makedirs(root)
    r = run(["tar", "-xf", tar, "-C", root, "--numeric-owner"], 600)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return root


def remove_tree(path):
    """rm -rf that never leaves the file system it starts on."""
    run(["rm", "-rf", "--one-file-system", path], 600)


# -- running inside -----------------------------------------------------------

class Sandbox:
    """Processes in a root, entered with nsenter through a leader process:
    systemd (nspawn --boot) or a sleeping chroot (no systemd)."""

    def __init__(self, root, log_path):
        self.root = root
        self.log_path = log_path
        self.proc = None
        self.leader = None

    def sh(self, cmd, timeout=120, user=None, env=None):
        e = ["env", "-i", f"PATH={PATH}", "LANG=C.UTF-8", "DEBIAN_FRONTEND=noninteractive", "HOME=/root"]
        e += [f"{k}={v}" for k, v in (env or {}).items()]
        inner = ["sh", "-c", cmd] if user is None else ["runuser", "-l", user, "-c", cmd]
        ns = ["nsenter", "-t", str(self.leader), "-m", "-u", "-i", "-n", "-p", "-r", "-w"]
        return run(ns + e + inner, timeout)

    def out(self, cmd, **kw):
        return self.sh(cmd, **kw).stdout.strip()

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def _find_child(self, timeout, comm=None):
        """The leader: our child process (named comm, if given: nspawn has a
        short-lived intermediate child before the container's init)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return None
            for stat in glob.glob("/proc/[0-9]*/stat"):
                try:
                    with open(stat) as f:
                        text = f.read()
                except OSError:
                    continue
                name, fields = text[text.index("(") + 1:text.rindex(")")], text.rsplit(")", 1)[1].split()
                if int(fields[1]) == self.proc.pid and (comm is None or name == comm):
                    return int(stat.split("/")[2])
            time.sleep(0.1)
        return None

    def stop(self, timeout=60):
        """Ends the leader and with it every process inside (pid namespace)."""
        if not self.proc or self.proc.poll() is not None:
            return True
        self.proc.send_signal(signal.SIGTERM)
        return self._reap(timeout)

    def _reap(self, timeout):
        """Waits for our child; kills it if it takes longer than timeout."""
        try:
            self.proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
            return False


class Container(Sandbox):
    """The root booted by systemd-nspawn with systemd as PID 1. --register=no
    and --keep-unit: this host has no machined and no system bus."""

    def boot(self, timeout=120):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["systemd-nspawn", "--register=no", "--keep-unit", "--quiet",
                                      "--console=read-only", "-D", self.root, "--boot"],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        t0 = time.monotonic()
        self.leader = self._find_child(30, comm="systemd")
        if not self.leader:
            return None
        state = ""
        while time.monotonic() - t0 < timeout and self.proc.poll() is None:
            r = self.sh("systemctl is-system-running", timeout=30)
            state = r.stdout.strip()
            if state in ("running", "degraded"):
                return time.monotonic() - t0
            time.sleep(0.3)
        return None

    def poweroff(self, timeout=90):
        """A clean poweroff: nspawn turns SIGTERM into SIGRTMIN+3 for systemd."""
        return self.stop(timeout)


class Chroot(Sandbox):
    """The root as a chroot with its own mount and pid namespaces: /proc,
    /sys, /dev and a tmpfs /run inside, nothing visible on the host, and
    every process killed when the leader ends. No systemd runs: this is how
    the package meets a host whose PID 1 is not systemd."""

    def start(self):
        r = self.root
        script = (f"mount -t proc proc {r}/proc && mount -t sysfs sys {r}/sys && mount --rbind /dev {r}/dev && "
                  f"mount -t tmpfs -o mode=755 tmpfs {r}/run && mount -t tmpfs -o mode=1777 tmpfs {r}/tmp && "
                  f"exec chroot {r} /bin/sleep 3600")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation=private", "--pid", "--fork",
                                      "--kill-child", "sh", "-c", script],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self.leader = self._find_child(30)
        # The leader is sh until it execs chroot → sleep: wait for that.
        deadline = time.monotonic() + 30
        while self.leader and time.monotonic() < deadline:
            try:
                if os.readlink(f"/proc/{self.leader}/root") != "/":
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def stop(self, timeout=60):
        """SIGKILL to the namespace's PID 1 kills every process in it (zvmd,
        QEMU, helpers); unshare, which ignores SIGTERM, then exits."""
        if not self.proc or self.proc.poll() is not None:
            return True
        if self.leader:
            try:
                os.kill(self.leader, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return self._reap(timeout)


def files(sb):
    """Every path on the root's file system, less the places a running
    system writes anyway (logs, apt and dpkg state, the users' homes)."""
    skip = ["/proc", "/sys", "/dev", "/run", "/tmp", "/var/log", "/var/lib/apt", "/var/lib/dpkg", "/var/cache/apt",
            "/var/cache/debconf", "/var/cache/ldconfig", "/var/lib/systemd", "/var/tmp", "/home", "/root"]
    prune = " -o ".join(f"-path {p}" for p in skip)
    out = sb.out(f"find / -xdev \\( {prune} \\) -prune -o -print", timeout=120)
    return set(out.splitlines())


def vm_status(sb, name, user=None):
    r = sb.sh(f"zvm --json status {name}", user=user, timeout=60)
    try:
        return json.loads(r.stdout)
    except ValueError:
        return {"error": r.stdout + r.stderr}


def wait_agent(sb, name, timeout=90):
    """Until the VM's agent said READY (it needs the guest booted)."""
    deadline = time.monotonic() + timeout
    st = {}
    while time.monotonic() < deadline:
        st = vm_status(sb, name)
        if st.get("agent") == "ready":
            return st
        time.sleep(0.5)
    return st


def wait_vm(sb, name, states, timeout=120):
    deadline = time.monotonic() + timeout
    st = {}
    while time.monotonic() < deadline:
        st = vm_status(sb, name)
        if st.get("state") in states:
            return st
        time.sleep(0.5)
    return st
