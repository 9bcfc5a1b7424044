"""The sandbox scenario of test-zvmd.py (issue 10, item 1): each VM's QEMU
and vsock helper run as the VM's own unprivileged uid, without
capabilities, with NO_NEW_PRIVS (QEMU also under its seccomp filter),
limits, in a mount namespace where only their vsock dir is writable and
where home, data, log, cache and spool dirs are empty tmpfs, and with only
the fds zvmd gave them; that uid reaches no host file and nothing of
another VM."""
import os
import subprocess
import time

import zvmtest as zt

VM_UID_BASE = 0x71000000        # daemon/core/vm-sandbox.c
VM_NOFILE = 1024
VM_NPROC = 512


def _limits(pid):
    """{"Max open files": (soft, hard), ...} from /proc/PID/limits."""
    out = {}
    with open(f"/proc/{pid}/limits") as f:
        next(f)
        for line in f:
            name, rest = line[:26].strip(), line[26:].split()
            out[name] = (rest[0], rest[1])
    return out


def _fds(pid):
    """{fd: target} of a process."""
    d = f"/proc/{pid}/fd"
    out = {}
    for n in os.listdir(d):
        try:
            out[int(n)] = os.readlink(os.path.join(d, n))
        except OSError:
            pass
    return out


def _acc_mode(pid, fd):
    with open(f"/proc/{pid}/fdinfo/{fd}") as f:
        for line in f:
            if line.startswith("flags:"):
                return int(line.split()[1], 8) & 3
    return None


def _anonymous(target):
    return target.startswith(("socket:", "pipe:", "anon_inode:", "/memfd:"))


def _as_uid(uid, *argv):
    return subprocess.run(["setpriv", "--reuid", str(uid), "--regid", str(uid), "--clear-groups", "--"] + list(argv),
                          capture_output=True, text=True, timeout=30)


def _check_creds(t, pid, uid, what, seccomp):
    st = zt.proc_status(pid)
    t.ok(st["Uid"].split() == [str(uid)] * 4 and st["Gid"].split() == [str(uid)] * 4,
         f"{what} runs as the VM's own uid and gid {uid} (Uid: {st['Uid']}, Gid: {st['Gid']})", st)
    t.ok(st.get("Groups", "") == "", f"{what} has no supplementary group", st.get("Groups"))
    caps = {k: st.get(k) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
    t.ok(all(v == "0000000000000000" for v in caps.values()), f"{what} has no capability, bounding set empty", caps)
    t.ok(st.get("NoNewPrivs") == "1", f"{what}: NoNewPrivs: 1", st.get("NoNewPrivs"))
    if seccomp:
        t.ok(st.get("Seccomp") == "2", f"{what}: Seccomp: 2 (QEMU's -sandbox filter)", st.get("Seccomp"))
    lim = _limits(pid)
    t.ok(lim.get("Max open files") == (str(VM_NOFILE), str(VM_NOFILE))
         and lim.get("Max processes") == (str(VM_NPROC), str(VM_NPROC))
         and lim.get("Max core file size") == ("0", "0"),
         f"{what}: fds, tasks and core dumps are limited", lim)
    return st


def scenario_sandbox(t, d):
    """Two VMs: their QEMUs' and helpers' credentials, limits and fds, the
    modes of their dirs, and what their uid can open."""
    guest = os.path.realpath(os.environ.get("ZVM_GUEST_DIR") or os.path.join(os.environ["ZVM_BUILD_DIR"], "guest"))
    vms = {}
    for name in ("sba", "sbb"):
        status, vm = d.request("POST", "/vms", {"name": name, "memory": 128})
        t.ok(status == 201, f"create {name}", vm)
        status, body = d.request("POST", f"/vms/{name}/start")
        t.ok(status < 300, f"start {name}", body)
        vms[name] = vm["vmid"]
    sts = {n: d.wait_state(n, ["running"], timeout=30) for n in vms}
    for n, st in sts.items():
        t.ok(st and st["state"] == "running" and st.get("pid"), f"{n} runs", st)
    # The agent answers over the helper's sockets in the uid's vsock dir.
    st = None
    for _ in range(450):
        st = d.request("GET", "/vms/sba/status")[1]
        if st.get("agent") == "ready":
            break
        time.sleep(0.2)
    t.ok(st and st.get("agent") == "ready", "the agent of sba is READY (hybrid vsock through the vsock dir)", st)
    r = d.zvm("exec", "sba", "--", "echo", "inside")
    t.ok(r.returncode == 0 and r.stdout == "inside\n", "exec in the guest works", r.stderr)

    uids = {}
    for n, vmid in vms.items():
        uid = VM_UID_BASE + vmid
        uids[n] = uid
        st = sts[n]
        run = os.path.realpath(os.path.join(d.root, "run", "zvm", "vms", str(vmid)))
        data = os.path.realpath(os.path.join(d.root, "var", "lib", "zvm", "vms", str(vmid)))
        qemu = st["pid"]
        s = _check_creds(t, qemu, uid, f"{n}'s QEMU", seccomp=True)
        print(f"# {n} QEMU /proc/{qemu}/status: " +
              "; ".join(f"{k}: {s.get(k)}" for k in ("Uid", "Gid", "Groups", "NoNewPrivs", "Seccomp", "CapInh",
                                                      "CapPrm", "CapEff", "CapBnd", "CapAmb")))
        helper = d.run_state(vmid).get("helper_pid")
        if helper:
            _check_creds(t, helper, uid, f"{n}'s vsock helper", seccomp=False)
        t.ok(os.readlink(f"/proc/{qemu}/cwd") == run, f"{n}'s QEMU runs in its run dir", os.readlink(f"/proc/{qemu}/cwd"))

        # QEMU's fds: 0 /dev/null, 1-2 qemu.log, and what zvmd gave it;
        # everything else anonymous (its sockets, eventfds, memfds...), or
        # opened by QEMU itself by design (-object rng-random).
        given = {
            "/dev/null", os.path.join(run, "qemu.log"), os.path.join(run, "vsock"),
            os.path.join(guest, "vmlinux"), os.path.join(guest, "initrd.img"),
            os.path.join(guest, "rootfs-tiny.img"), os.path.join(data, "upper.img"),
        }
        fds = _fds(qemu)
        paths = {fd: p for fd, p in fds.items() if not _anonymous(p)}
        t.ok(fds.get(0) == "/dev/null" and fds.get(1) == fds.get(2) == os.path.join(run, "qemu.log"),
             f"{n}'s QEMU: stdin /dev/null, output qemu.log", fds)
        stray = {fd: p for fd, p in paths.items() if p not in given | {"/dev/urandom"}}
        t.ok(not stray, f"{n}'s QEMU holds no fd but those it was given ({len(paths)} paths, "
             f"{len(fds) - len(paths)} anonymous)", f"stray {stray}; all {sorted(fds.items())}")
        t.ok(given - {os.path.join(guest, "initrd.img")} <= set(paths.values()),
             f"{n}'s QEMU holds the disk, kernel and vsock dir fds it was given", sorted(paths.values()))
        modes = {_acc_mode(qemu, fd) for fd, p in paths.items() if p == os.path.join(data, "upper.img")}
        t.ok(modes == {os.O_RDWR, os.O_RDONLY}, f"{n}'s writable layer came as an O_RDWR and an O_RDONLY fd "
             "(QEMU reopens it read-only until its device writes)", modes)
        modes = {_acc_mode(qemu, fd) for fd, p in paths.items() if p == os.path.join(guest, "rootfs-tiny.img")}
        t.ok(modes == {os.O_RDONLY}, f"{n}'s shared template came read-only only", modes)
        secret = [p for p in fds.values() if p.startswith("/memfd:zvm-agent-secret")]
        t.ok(len(secret) == 1, f"{n}'s agent secret came as a memfd", sorted(fds.values()))
        if helper:
            hp = {p for p in _fds(helper).values() if not _anonymous(p)}
            t.ok(hp <= {"/dev/null", os.path.join(run, "vsock-helper.log"), os.path.join(run, "vsock")},
                 f"{n}'s helper holds no fd but its log and its vsock dir", hp)

        # Modes: only the vsock dir is the uid's, and nobody else's.
        rst, vst = os.stat(run), os.stat(os.path.join(run, "vsock"))
        t.ok(rst.st_uid == 0 and rst.st_mode & 0o007 == 0, f"{n}'s run dir is root's, closed to others "
             f"({oct(rst.st_mode & 0o777)})")
        t.ok(vst.st_uid == uid and vst.st_mode & 0o777 == 0o700, f"{n}'s vsock dir is its uid's, 0700 "
             f"({vst.st_uid}, {oct(vst.st_mode & 0o777)})")

    t.ok(uids["sba"] != uids["sbb"], f"two VMs, two uids ({uids})")

    # Its own mount namespace, read-only but for its vsock dir.
    qemu = sts["sba"]["pid"]
    a_vsock = os.path.realpath(os.path.join(d.root, "run", "zvm", "vms", str(vms["sba"]), "vsock"))
    t.ok(os.readlink(f"/proc/{qemu}/ns/mnt") != os.readlink("/proc/self/ns/mnt"),
         "sba's QEMU has a mount namespace of its own")
    nsenter = ["nsenter", "-t", str(qemu), "-m", "--", "setpriv", "--reuid", str(uids["sba"]), "--regid",
               str(uids["sba"]), "--clear-groups", "--"]
    for where in ("/tmp", "/var/tmp", "/dev/shm"):
        r = subprocess.run(nsenter + ["touch", os.path.join(where, "zvm-sandbox-probe")], capture_output=True,
                           text=True, timeout=30)
        t.ok(r.returncode != 0 and "Read-only file system" in r.stderr,
             f"in sba's mount namespace its uid cannot write {where}", r.stderr)
    # What it never needs by path is hidden under an empty tmpfs; what it
    # needs is there (its root as the namespace shows it: /proc/PID/root).
    root = f"/proc/{qemu}/root"
    for where in ("/home", "/root", "/srv", "/var/lib", "/var/log", "/var/cache"):
        if not os.path.isdir(where) or any(p == where or p.startswith(where + "/") for p in (a_vsock, d.root)):
            continue
        host = os.listdir(where)
        inside = os.listdir(root + where)
        fs = subprocess.run(["nsenter", "-t", str(qemu), "-m", "--", "findmnt", "-no", "FSTYPE,OPTIONS", where],
                            capture_output=True, text=True, timeout=30).stdout.split()
        t.ok(inside == [] and fs[:1] == ["tmpfs"] and fs[1:2] and fs[1].startswith("ro,"),
             f"in sba's mount namespace {where} is an empty read-only tmpfs (the host's has {len(host)} "
             "entries)", f"{inside[:5]} {fs}")
    t.ok(os.listdir("/var/lib") and os.listdir(root + "/var/lib") == [],
         "the host's /var/lib (zvm's data in production) cannot be listed there", os.listdir(root + "/var/lib"))
    helper = d.run_state(vms["sba"]).get("helper_pid")
    if helper:
        t.ok(os.listdir(f"/proc/{helper}/root/var/lib") == [] and os.listdir(f"/proc/{helper}/root" + a_vsock),
             "so does its vsock helper's, which still reaches its vsock dir")
    a_run = os.path.realpath(os.path.join(d.root, "run", "zvm", "vms", str(vms["sba"])))
    vms_dir = os.path.dirname(a_run)
    t.ok(len(os.listdir(vms_dir)) >= 2 and os.listdir(root + vms_dir) == [str(vms["sba"])],
         "there the other VMs' run dirs are gone: only its own is left", os.listdir(root + vms_dir))
    t.ok(sorted(os.listdir(root + a_run)) == sorted(os.listdir(a_run)) and os.readlink(f"/proc/{qemu}/cwd") == a_run,
         "its own run dir, bound back, is whole and still its cwd", os.listdir(root + a_run))
    qbin = os.readlink(f"/proc/{qemu}/exe")
    t.ok(os.path.exists(root + qbin) and os.path.isdir(root + "/usr/lib") and os.path.isfile(root + "/etc/ld.so.cache"),
         f"while its binary ({qbin}), /usr/lib and /etc/ld.so.cache are there")
    t.ok(sorted(os.listdir(root + a_vsock)) == sorted(os.listdir(a_vsock)) and os.listdir(a_vsock),
         "and its vsock dir, with the helper's sockets", os.listdir(a_vsock))
    probe = os.path.join(a_vsock, "probe")
    # As QEMU reaches it: through its fd (no path above it is open to the uid).
    dirfd = [fd for fd, p in _fds(qemu).items() if p == a_vsock]
    r = subprocess.run(nsenter + ["touch", f"/proc/{qemu}/fd/{dirfd[0] if dirfd else 0}/probe"],
                       capture_output=True, text=True, timeout=30)
    t.ok(r.returncode == 0 and os.path.exists(probe), "but it can write its vsock dir (the helper's sockets)",
         r.stderr)
    if os.path.exists(probe):
        os.unlink(probe)

    # What the uid of sba can reach as a process of its own.
    a = uids["sba"]
    a_run = os.path.join(d.root, "run", "zvm", "vms", str(vms["sba"]))
    b_run = os.path.join(d.root, "run", "zvm", "vms", str(vms["sbb"]))
    b_upper = os.path.join(d.root, "var", "lib", "zvm", "vms", str(vms["sbb"]), "upper.img")
    a_upper = os.path.join(d.root, "var", "lib", "zvm", "vms", str(vms["sba"]), "upper.img")
    r = _as_uid(a, "cat", "/etc/shadow")
    t.ok(r.returncode != 0 and "Permission denied" in r.stderr, "sba's uid cannot read /etc/shadow", r.stderr)
    for what, path in (("sbb's writable layer", b_upper), ("its own writable layer by path", a_upper),
                       ("sbb's QMP socket", os.path.join(b_run, "qmp.sock")),
                       ("sbb's agent secret", os.path.join(b_run, "agent.secret")),
                       ("its own agent secret", os.path.join(a_run, "agent.secret"))):
        r = _as_uid(a, "dd", f"if={path}", "of=/dev/null", "count=1", "status=none")
        t.ok(r.returncode != 0 and "Permission denied" in r.stderr, f"sba's uid cannot open {what}", r.stderr)
    r = _as_uid(a, "touch", os.path.join(b_run, "vsock", "x"))
    t.ok(r.returncode != 0, "sba's uid cannot write into sbb's vsock dir", r.stderr)
    r = _as_uid(a, "ls", os.path.join(d.root, "etc", "zvm", "vms"))
    t.ok(r.returncode != 0, "sba's uid cannot list the VM configs", r.stdout)

    for n in vms:
        d.request("POST", f"/vms/{n}/stop")
    for n in vms:
        st = d.wait_state(n, ["stopped"], timeout=60)
        t.ok(st and st["state"] == "stopped", f"{n} stops", st)
