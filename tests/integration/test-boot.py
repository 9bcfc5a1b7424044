#!/usr/bin/env python3
"""Boot tests for the foundation: shared kernel + C initrd + tiny template
under real QEMU `-M microvm`. One scenario per invocation (meson runs them in
parallel): test-boot.py SCENARIO."""
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zvmtest as zt  # noqa: E402

TIMING_RE = re.compile(r"zvm-initrd: timing init=(\d+) mounts=(\d+) root-dev=(\d+) root-mount=(\d+)"
                       r"(?: models=(\d+))? switch=(\d+)")


def mkfs(path, label, size_mib, files=None):
    """An ext4 image made without root: mkfs.ext4 -d from a staging dir."""
    with tempfile.TemporaryDirectory() as stage:
        for name, data in (files or {}).items():
            with open(os.path.join(stage, name), "wb") as f:
                f.write(data)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-L", label, "-d", stage, path, f"{size_mib}M"],
                       check=True, stdout=subprocess.DEVNULL)


def check_reached_init(t, b, what):
    t.ok(not b.timed_out, f"{what}: QEMU exited by itself (no hang) in {b.seconds:.1f}s", b.output)
    m = TIMING_RE.search(b.output)
    t.ok(m is not None, f"{what}: initrd printed its stage timing trace", b.output)
    if m:
        stages = [int(x) for x in m.groups() if x is not None]
        t.ok(stages == sorted(stages) and stages[0] > 0,
             f"{what}: stage times are monotonic ms since kernel start ({m.group(0)})")
    t.ok(b.has("zvm-tiny: init running"), f"{what}: the root's init ran", b.output)
    t.ok(b.has("zvm-tiny: initrd timing init="), f"{what}: root's init read the timing handoff", b.output)
    t.ok(b.has("zvm-tiny: ci boot complete") and b.has("exited with status 0"),
         f"{what}: zvm.ci=1 ran init to completion and powered off", b.output)


def scenario_label(t, p, accel):
    """root=LABEL=rootfs on virtio-blk, read-only template."""
    argv = zt.microvm_argv(accel, p["vmlinux"], p["initrd.img"], "root=LABEL=rootfs ro zvm.ci=1",
                           disks=[(p["rootfs-tiny.img"], "blk", True)])
    b = zt.boot(argv)
    check_reached_init(t, b, f"LABEL= root ({accel})")
    t.ok(b.has("zvm-tiny: root is read-only"), "ro root is mounted read-only", b.output)
    t.ok(b.has("powering off") and b.rc == 0, f"guest powered off cleanly (QEMU rc={b.rc})", b.output)


def scenario_fallback(t, p, accel):
    """root=/dev/vda given, but the disk sits on virtio-scsi as /dev/sda."""
    argv = zt.microvm_argv(accel, p["vmlinux"], p["initrd.img"], "root=/dev/vda ro zvm.ci=1",
                           disks=[(p["rootfs-tiny.img"], "scsi", True)])
    b = zt.boot(argv)
    t.ok(b.has("/dev/vda not present, falling back to /dev/sda"), "initrd fell back from vda to sda",
         b.output)
    check_reached_init(t, b, "sda fallback")


def scenario_missing_root(t, p, accel):
    """A root that never appears: diagnosis and power-off within the bound."""
    argv = zt.microvm_argv(accel, p["vmlinux"], p["initrd.img"],
                           "root=LABEL=no-such-root rootwait=2 zvm.ci=1",
                           disks=[(p["rootfs-tiny.img"], "blk", True)])
    b = zt.boot(argv)
    t.ok(not b.timed_out, f"QEMU exited by itself in {b.seconds:.1f}s", b.output)
    t.ok(b.has("FATAL: root device LABEL=no-such-root did not appear within"),
         "diagnosis names the missing root", b.output)
    t.ok(b.has("block device /dev/vda:") and b.has("LABEL=rootfs"),
         "diagnosis lists the devices that do exist", b.output)
    t.ok(b.has("powering off"), "initrd powered off", b.output)
    t.ok("Kernel panic" not in b.output and not b.has("zvm-tiny: init running"),
         "no panic, no init ran", b.output)


def scenario_diag(t, p, accel):
    """zvm.diag=1 reports devices, labels and models, then powers off."""
    with tempfile.TemporaryDirectory() as tmp:
        models = os.path.join(tmp, "models.img")
        mkfs(models, "models", 8, {"tiny.gguf": b"GGUF" + b"\0" * 60, "notes.txt": b"hello"})
        argv = zt.microvm_argv(accel, p["vmlinux"], p["initrd.img"],
                               "root=LABEL=rootfs zvm.models=LABEL=models zvm.diag=1",
                               disks=[(p["rootfs-tiny.img"], "blk", True), (models, "blk", True)])
        b = zt.boot(argv)
    t.ok(not b.timed_out and b.has("diag: done"), f"diag finished in {b.seconds:.1f}s", b.output)
    t.ok(b.has("diag: root LABEL=rootfs found at /dev/vda"), "diag found the root by label", b.output)
    t.ok(b.has("LABEL=models"), "diag lists the model disk's label", b.output)
    t.ok(b.has("model tiny.gguf: 64 bytes, GGUF"), "diag recognises the GGUF model", b.output)
    t.ok(b.has("model notes.txt: 5 bytes, not GGUF"), "diag flags a non-GGUF file", b.output)
    t.ok(not b.has("zvm-tiny: init running"), "diag does not start the root's init", b.output)


def scenario_overlay(t, p, accel):
    """zvm.overlay=1 with a tmpfs upper writes nothing to the template, even
    when QEMU attaches it writable; with zvm.upper= the writes persist on the
    upper disk across boots."""
    with tempfile.TemporaryDirectory() as tmp:
        template = os.path.join(tmp, "template.img")
        with open(p["rootfs-tiny.img"], "rb") as src, open(template, "wb") as dst:
            dst.write(src.read())
        before = zt.sha256(template)
        argv = zt.microvm_argv(accel, p["vmlinux"], p["initrd.img"], "root=LABEL=rootfs zvm.overlay=1 zvm.ci=1",
                               disks=[(template, "blk", False)])
        b = zt.boot(argv)
        check_reached_init(t, b, "overlay/tmpfs")
        t.ok(b.has("zvm-tiny: root is writable"), "overlay root is writable", b.output)
        t.ok(zt.sha256(template) == before, "template image unchanged after a write-heavy boot")

        upper = os.path.join(tmp, "upper.img")
        mkfs(upper, "upper", 16)
        argv = zt.microvm_argv(accel, p["vmlinux"], p["initrd.img"],
                               "root=LABEL=rootfs zvm.overlay=1 zvm.upper=LABEL=upper zvm.ci=1",
                               disks=[(template, "blk", True), (upper, "blk", False)])
        first = zt.boot(argv)
        second = zt.boot(argv)
        t.ok(first.has("zvm-tiny: root is writable") and not first.has("previous write"),
             "first boot with an upper disk starts clean", first.output)
        t.ok(second.has("zvm-tiny: previous write: written at"),
             "second boot sees the first boot's write on the upper disk", second.output)
        t.ok(zt.sha256(template) == before, "template still unchanged after the upper-disk boots")


def scenario_models(t, p, accel):
    """zvm.models= is mounted read-only at /models in the final root."""
    with tempfile.TemporaryDirectory() as tmp:
        models = os.path.join(tmp, "models.img")
        mkfs(models, "models", 8, {"tiny.gguf": b"GGUF" + b"\0" * 60})
        before = zt.sha256(models)
        argv = zt.microvm_argv(accel, p["vmlinux"], p["initrd.img"],
                               "root=LABEL=rootfs zvm.overlay=1 zvm.models=LABEL=models zvm.ci=1",
                               disks=[(p["rootfs-tiny.img"], "blk", True), (models, "blk", False)])
        b = zt.boot(argv)
        check_reached_init(t, b, "models")
        t.ok(b.has("zvm-tiny: models: lost+found tiny.gguf"), "model disk is mounted at /models", b.output)
        t.ok(zt.sha256(models) == before, "model disk unchanged (mounted read-only)")


def scenario_bad_init(t, p, accel):
    """zvm.init= naming a missing program: diagnosis, power-off, no panic."""
    argv = zt.microvm_argv(accel, p["vmlinux"], p["initrd.img"], "root=LABEL=rootfs zvm.init=/no/such/init",
                           disks=[(p["rootfs-tiny.img"], "blk", True)])
    b = zt.boot(argv)
    t.ok(not b.timed_out, f"QEMU exited by itself in {b.seconds:.1f}s", b.output)
    t.ok(b.has("FATAL: zvm.init=/no/such/init is not an executable in the root"), "diagnosis names the init",
         b.output)
    t.ok("Kernel panic" not in b.output, "no kernel panic", b.output)


SCENARIOS = {name[len("scenario_"):]: fn for name, fn in globals().items() if name.startswith("scenario_")}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in SCENARIOS:
        print(f"usage: {sys.argv[0]} {{{','.join(SCENARIOS)}}}", file=sys.stderr)
        sys.exit(2)
    paths = zt.guest_artifacts()
    accel = zt.probe_accel(paths)
    t = zt.Tap()
    SCENARIOS[sys.argv[1]](t, paths, accel)
    t.diag(f"accelerator: {accel}")
    t.done()


if __name__ == "__main__":
    main()
