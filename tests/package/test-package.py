#!/usr/bin/python3
"""zvm's Debian package end to end (meson suite 'package'):

  test-package.py build    the .deb: contents, conffiles, relations, lintian,
                           systemd-analyze verify
  test-package.py nspawn   a Debian 12 root booted with systemd as PID 1:
                           install, service, group, a VM in zvm.slice,
                           upgrade under a running VM, reboot, remove, purge
  test-package.py chroot   the same root as a chroot without systemd (as on
                           this CI host): install, zvmd from the installed
                           files, create/start/stop, purge

The .deb is built once per tree content (build/package/<hash>), the root
once per package list (~/.cache/zvm/package-root/<hash>.tar)."""
import os
import re
import sys
import tempfile
import time

import pkgtest as pt

zt = pt.zt
EXPECTED = [
    "./usr/bin/zvm", "./usr/sbin/zvmd", "./usr/lib/zvm/zvm-agent", "./usr/lib/zvm/zvm-mktemplate",
    "./usr/lib/zvm/mkrootfs-tiny", "./usr/share/zvm/vmlinux", "./usr/share/zvm/initrd.img",
    "./usr/share/zvm/rootfs-tiny.img", "./lib/systemd/system/zvmd.service", "./lib/systemd/system/zvm.slice",
    "./usr/lib/tmpfiles.d/zvm.conf", "./etc/zvm/zvm.conf", "./usr/share/bash-completion/completions/zvm",
    "./usr/share/man/man1/zvm.1.gz", "./usr/share/man/man8/zvmd.8.gz", "./usr/share/man/man5/zvm.conf.5.gz",
    "./usr/share/man/man5/zvm-vm.conf.5.gz", "./usr/share/doc/zvm/copyright",
]


def scenario_build(t, deb, updeb):
    listing = pt.run(["dpkg-deb", "-c", deb], 60).stdout
    t.diag("dpkg -c:\n" + listing) if os.environ.get("ZVM_PACKAGE_VERBOSE") else None
    paths = {line.split()[5] for line in listing.splitlines() if len(line.split()) >= 6}
    missing = [p for p in EXPECTED if p not in paths]
    t.ok(not missing, f"the package holds the binaries, guest kernel/initrd/tiny template, units, tmpfiles, "
         f"conffile, completion and 4 man pages ({len(paths)} entries)", missing)
    t.ok(any(p.startswith("./usr/share/doc/zvm/operator.md") for p in paths), "it ships docs/operator.md", "")
    mode = [line for line in listing.splitlines() if line.endswith(" ./etc/zvm/")]
    t.ok(mode and mode[0].startswith("drwxr-x---"), "/etc/zvm is 0750 (tokens, VM configs)", mode)

    conffiles = pt.run(["sh", "-c", f"dpkg-deb --ctrl-tarfile {deb} | tar -xOf - ./conffiles"], 60).stdout.split()
    t.ok(conffiles == ["/etc/zvm/zvm.conf"], "/etc/zvm/zvm.conf is the one conffile", conffiles)
    dep = pt.deb_field(deb, "Depends")
    rec = pt.deb_field(deb, "Recommends")
    t.ok(re.search(r"qemu-system-x86 \(>= 1:7\.2\)", dep) and "e2fsprogs" in dep and "adduser" in dep,
         f"Depends: {dep}", dep)
    t.ok(all(p in rec for p in ("vhost-device-vsock", "mmdebstrap", "systemd")), f"Recommends: {rec}", rec)
    t.ok(pt.deb_field(updeb, "Version") == pt.deb_field(deb, "Version") + "+up1", "the upgrade build is newer", "")

    with tempfile.TemporaryDirectory(prefix="zvm-deb-") as x:
        pt.run(["dpkg-deb", "-x", deb, x], 120)
        agent = pt.run(["file", "-L", os.path.join(x, "usr/lib/zvm/zvm-agent")], 30).stdout
        t.ok("statically linked" in agent, "zvm-agent is static (it runs inside any guest)", agent)
        units = [os.path.join(x, "lib/systemd/system", u) for u in ("zvmd.service", "zvm.slice")]
        # systemd-analyze verify needs the rest of a system (sysinit.target,
        # ...): it runs in the nspawn scenario, on the installed units.
        unit = open(units[0]).read()
        t.ok(all(k in unit for k in ("Type=notify", "WatchdogSec=", "KillMode=process", "RuntimeDirectoryPreserve=yes")),
             "zvmd.service: Type=notify, a watchdog, KillMode=process, runtime directory preserved", unit)

    changes = deb[:-len("_amd64.deb")] + "_amd64.changes"
    # --fail-on none: the verdict is ours (no E: or W: line); lintian's exit
    # status also counts overridden tags once --show-overrides shows them.
    r = pt.run(["lintian", "--display-info", "--show-overrides", "--fail-on", "none", "--tag-display-limit", "0",
                changes], 900)
    out = (r.stdout + r.stderr).strip()
    t.diag("lintian:\n" + (out or "(no output)"))
    bad = [line for line in out.splitlines() if re.match(r"^[EW]: ", line)]
    t.ok(r.returncode == 0 and not bad, "lintian: no error or warning (every override carries its reason)",
         "\n".join(bad))


def install(t, sb, deb, what):
    t0 = time.monotonic()
    r = sb.sh(f"apt-get install -y --no-install-recommends {deb}", timeout=300)
    return t.ok(r.returncode == 0, f"apt-get install {what} ({time.monotonic() - t0:.1f} s)",
                (r.stdout + r.stderr)[-3000:])


def copy_debs(root, deb, updeb):
    d = os.path.join(root, "root", "debs")
    os.makedirs(d, exist_ok=True)
    for p in (deb, updeb):
        pt.run(["cp", p, d], 60)
    return "/root/debs/" + os.path.basename(deb), "/root/debs/" + os.path.basename(updeb)


def scenario_nspawn(t, deb, updeb, root):
    c = pt.Container(root, os.path.join(os.path.dirname(root), "nspawn.log"))
    ideb, iup = copy_debs(root, deb, updeb)
    try:
        took = c.boot()
        if not t.ok(took is not None, f"systemd-nspawn --boot: systemd is PID 1 and the root is up ({took or 0:.1f} s)",
                    c.log_text()):
            return
        before = pt.files(c)
        if not install(t, c, ideb, "zvm into a running systemd system"):
            return
        t.ok(c.out("systemctl is-active zvmd") == "active", "postinst enabled and started zvmd.service",
             c.out("systemctl status zvmd; journalctl -u zvmd --no-pager | tail -20"))
        show = c.out("systemctl show zvmd -p Type -p WatchdogUSec -p KillMode -p NotifyAccess")
        t.ok("Type=notify" in show and "KillMode=process" in show and "WatchdogUSec=30s" in show,
             "zvmd.service runs as Type=notify with a 30 s watchdog and KillMode=process",
             show)
        r = c.sh("zvm host")
        t.ok(r.returncode == 0 and "tcg" in r.stdout, "zvm host answers on /run/zvm/api.sock (accel tcg)",
             r.stdout + r.stderr)
        t.ok(c.out("stat -c '%a %U:%G' /run/zvm/api.sock") == "660 root:zvm", "the socket is 0660 root:zvm",
             c.out("ls -la /run/zvm"))
        r = c.sh("useradd -m -G zvm alice && useradd -m bob")
        ra = c.sh("zvm host", user="alice")
        rb = c.sh("zvm host", user="bob")
        t.ok(ra.returncode == 0, "alice (group zvm) can use zvm", ra.stderr)
        t.ok(rb.returncode == 5 and "Permission denied" in rb.stderr and "group zvm" in rb.stderr,
             f"bob (not in group zvm) cannot, and is told why: {rb.stderr.strip()}", rb.stderr)

        r = c.sh("zvm create web --set onboot=1", user="alice")
        key = "/home/alice/.local/share/zvm/ssh/id_ed25519"
        t.ok(r.returncode == 0 and "made an ssh key" in r.stderr and c.sh(f"test -s {key}").returncode == 0,
             f"zvm create by a user without ~/.ssh makes zvm's own key, once, and says so: {r.stderr.strip()}",
             r.stdout + r.stderr)
        vmid = r.stdout.strip()
        r = c.sh("zvm create web2", user="alice")
        t.ok(r.returncode == 0 and "made an ssh key" not in r.stderr, "a second create reuses that key silently",
             r.stderr)
        c.sh("zvm delete web2", user="alice")
        t0 = time.monotonic()
        r = c.sh("zvm start web", user="alice", timeout=180)
        st = pt.wait_vm(c, "web", ("running",), timeout=60)
        pid = st.get("pid")
        if not t.ok(r.returncode == 0 and pid, f"a tiny VM starts under TCG ({time.monotonic() - t0:.1f} s)",
                    f"{r.stderr} {st} {c.out('journalctl -u zvmd --no-pager | tail -30')}"):
            return
        scope = f"zvm-{vmid}.scope"
        # /proc/PID/cgroup names the host's path (nsenter stays in our
        # cgroup namespace): compare its end with the unit's ControlGroup.
        cg = [line[3:] for line in c.out(f"cat /proc/{pid}/cgroup").splitlines() if line.startswith("0::")]
        unit_cg = c.out(f"systemctl show -p ControlGroup --value {scope}")
        t.ok(unit_cg == f"/zvm.slice/{scope}" and cg and cg[0].endswith(unit_cg)
             and c.out(f"systemctl is-active {scope}") == "active",
             f"its QEMU runs in {scope} under zvm.slice", f"{unit_cg} {cg}")
        t0 = time.monotonic()
        st = pt.wait_agent(c, "web")
        r = c.sh("zvm exec web -- cat /proc/version", timeout=120)
        t.ok(r.returncode == 0 and "Linux" in r.stdout,
             f"the guest agent is READY after {time.monotonic() - t0:.1f} s and answers (hybrid vsock)",
             f"{st} {r.stdout} {r.stderr}")

        zvmd_pid = c.out("systemctl show -p MainPID --value zvmd")
        t0 = time.monotonic()
        if install(t, c, iup, "the newer build over the running one"):
            new_pid = c.out("systemctl show -p MainPID --value zvmd")
            vm_after = pt.vm_status(c, "web")
            t.ok(c.out("systemctl is-active zvmd") == "active" and new_pid != zvmd_pid,
                 f"the upgrade restarted zvmd (pid {zvmd_pid} → {new_pid})", c.out("systemctl status zvmd"))
            t.ok(vm_after.get("state") == "running" and vm_after.get("pid") == pid
                 and c.sh(f"test -d /proc/{pid}").returncode == 0,
                 f"the VM kept running through the upgrade and was re-adopted (same QEMU pid {pid})", vm_after)
            st = pt.wait_agent(c, "web", timeout=60)
            r = c.sh("zvm exec web -- true", timeout=120)
            t.ok(r.returncode == 0, "the re-adopted VM's agent still answers", f"{st} {r.stderr}")
            journal = c.out("journalctl -u zvmd --no-pager -b")
            t.ok(f"re-adopted QEMU pid {pid}" in journal, "zvmd's journal records the re-adoption", journal[-2000:])
        # --man=no: the root has no man-db to resolve Documentation=man:...
        r = c.sh("systemd-analyze verify --man=no /lib/systemd/system/zvmd.service /lib/systemd/system/zvm.slice")
        t.ok(r.returncode == 0 and not (r.stdout + r.stderr).strip(),
             "systemd-analyze verify inside the installed system: no complaint", r.stdout + r.stderr)

        # A reboot: zvmd.service comes up at boot and starts the onboot VM.
        t.ok(c.poweroff(), "the container powers off cleanly", c.log_text())
        took = c.boot()
        t.ok(took is not None and c.out("systemctl is-active zvmd") == "active",
             f"after a reboot zvmd.service is active ({took or 0:.1f} s to boot)", c.log_text())
        st = pt.wait_vm(c, "web", ("running",), timeout=90)
        t.ok(st.get("state") == "running", "the onboot VM was started by zvmd at boot", st)
        pid = st.get("pid")

        r = c.sh("apt-get remove -y zvm", timeout=300)
        kept = c.sh(f"test -f /etc/zvm/vms/{vmid}.conf && test -f /var/lib/zvm/vms/{vmid}/upper.img && "
                    "test -f /etc/zvm/zvm.conf && ! test -e /usr/sbin/zvmd")
        t.ok(r.returncode == 0 and kept.returncode == 0,
             "apt remove: binaries gone; VM config, disk and zvm.conf kept", r.stdout[-1500:] + r.stderr)
        t.ok(c.sh(f"test -d /proc/{pid}").returncode == 0,
             "apt remove leaves a running VM running (documented; a reinstall re-adopts it)", "")
        r = c.sh("apt-get purge -y zvm", timeout=300)
        gone = c.sh("! test -e /etc/zvm && ! test -e /var/lib/zvm && ! test -e /var/cache/zvm && ! test -e /run/zvm")
        t.ok(r.returncode == 0 and gone.returncode == 0 and "zvm: purge" in r.stdout + r.stderr,
             "apt purge says what it deletes, then deletes /etc/zvm, /var/lib/zvm, /var/cache/zvm, /run/zvm",
             r.stdout[-1500:] + r.stderr)
        t.ok(c.sh(f"test -d /proc/{pid}").returncode != 0 and not c.out("systemctl list-units --no-legend 'zvm-*'"),
             "purge stopped the VM: no QEMU, no zvm scope left", c.out("systemctl list-units 'zvm*'"))
        after = pt.files(c)
        # addgroup and useradd keep backups of what they edit (the group zvm
        # stays on purge, as Debian does with system groups).
        allowed = {"/etc/group-", "/etc/gshadow-", "/etc/passwd-", "/etc/shadow-", "/etc/subuid", "/etc/subgid",
                   "/etc/subuid-", "/etc/subgid-"}
        left = sorted(after - before - allowed)
        t.ok(not left, f"nothing is left behind after purge ({len(before)} paths compared)", left)
        t.diag("group zvm after purge (kept on purpose): " + c.out("getent group zvm"))
    finally:
        c.stop()


def scenario_chroot(t, deb, updeb, root):
    sb = pt.Chroot(root, os.path.join(os.path.dirname(root), "chroot.log"))
    ideb, _ = copy_debs(root, deb, updeb)
    try:
        if not t.ok(sb.start(), "a chroot with its own mount and pid namespaces, no systemd", sb.log_text()):
            return
        if not install(t, sb, ideb, "zvm where systemd is not PID 1"):
            return
        t.ok(sb.sh("pgrep -x zvmd").returncode != 0, "postinst started nothing (no systemd)",
             sb.out("ps ax"))
        t.ok(sb.sh("getent group zvm && test -d /run/zvm && test -d /var/lib/zvm && test -d /var/cache/zvm")
             .returncode == 0, "postinst made the group zvm and, by tmpfiles, zvm's directories", sb.out("ls -la /run"))
        env = {"ZVM_ACCEL": "tcg"}   # /dev is the host's: /dev/kvm exists but cannot run guests here
        t0 = time.monotonic()
        r = sb.sh("setsid /usr/sbin/zvmd </dev/null >/var/log/zvmd.log 2>&1 & zvm host", env=env, timeout=60)
        took = time.monotonic() - t0
        t.ok(r.returncode == 0 and "version:" in r.stdout and "/usr/share/zvm/vmlinux" in r.stdout,
             f"zvm run right after starting zvmd from the installed files waits for it and answers ({took:.2f} s)",
             r.stdout + r.stderr + sb.out("cat /var/log/zvmd.log"))
        r = sb.sh("zvm create c1 && zvm start c1", timeout=180)
        st = pt.wait_vm(sb, "c1", ("running",), timeout=60)
        t.ok(r.returncode == 0 and st.get("state") == "running",
             "zvm create + start: a tiny VM runs from /usr/share/zvm's kernel, initrd and template",
             f"{r.stderr} {st} {sb.out('tail -20 /var/log/zvmd.log')}")
        st = pt.wait_agent(sb, "c1")
        r = sb.sh("zvm exec c1 -- uname -r", timeout=120)
        t.ok(r.returncode == 0 and r.stdout.strip(), f"its agent answers: guest kernel {r.stdout.strip()}",
             f"{st} {r.stderr}")
        r = sb.sh("zvm stop c1 && zvm status c1", timeout=120)
        t.ok(r.returncode == 0 and "stopped" in r.stdout, "zvm stop", r.stdout + r.stderr)
        sb.sh("kill $(pgrep -x zvmd)")
        r = sb.sh("apt-get purge -y zvm", timeout=300)
        gone = sb.sh("! test -e /etc/zvm && ! test -e /var/lib/zvm && ! test -e /var/cache/zvm && ! test -e /run/zvm")
        t.ok(r.returncode == 0 and gone.returncode == 0, "apt purge without systemd removes config and data",
             r.stdout[-1500:] + r.stderr)
    finally:
        t.ok(sb.stop(), "the chroot's processes all end with it; nothing of it is visible on the host", "")


SCENARIOS = {"build": scenario_build, "nspawn": scenario_nspawn, "chroot": scenario_chroot}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in SCENARIOS:
        print(f"usage: {sys.argv[0]} {{{','.join(SCENARIOS)}}}", file=sys.stderr)
        sys.exit(2)
    name = sys.argv[1]
    pt.require_tools()
    t = zt.Tap()
    t0 = time.monotonic()
    deb, updeb, built = pt.ensure_debs(t)
    t.diag(f"package: {deb} ({'built' if built else 'reused'})")
    if name == "build":
        scenario_build(t, deb, updeb)
    else:
        tar, made = pt.make_root(t, deb)
        work = tempfile.mkdtemp(prefix=f"zvm-pkg-{name}-")
        try:
            t1 = time.monotonic()
            root = pt.unpack_root(tar, work)
            t.diag(f"root {tar} ({'made' if made else 'reused'}), unpacked in {time.monotonic() - t1:.1f} s")
            SCENARIOS[name](t, deb, updeb, root)
        finally:
            if os.environ.get("ZVM_KEEP_TEST_ROOT") != "1":
                pt.remove_tree(work)
    t.diag(f"scenario {name}: {time.monotonic() - t0:.0f} s")
    t.done()


if __name__ == "__main__":
    main()
