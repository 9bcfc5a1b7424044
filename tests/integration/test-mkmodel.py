#!/usr/bin/env python3
"""zvm-mkmodel end to end (no VM): generate, inspect, and model disks built
with mkfs.ext4 -d and checked with debugfs/dumpe2fs (no mounts): stored once
per content, refused with the reason for bad files, and nothing left behind
by a SIGTERM or a full disk.

usage: test-mkmodel.py PATH/TO/zvm-mkmodel
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zvmtest as zt  # noqa: E402

TOOL = os.path.abspath(sys.argv[1])
# ~108 MB: big enough for progress lines and for a signal to land mid-build.
BIG = "custom:vocab=32000,embd=1024,layers=6,heads=16,kv_heads=4,ffn=2816,ctx=2048"


def mk(*args, timeout=120):
    return subprocess.run([TOOL, *args], capture_output=True, text=True, timeout=timeout)


def listing(d):
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def debugfs(img, cmd):
    return subprocess.run(["debugfs", "-R", cmd, img], capture_output=True, timeout=60)


def check_generate(t, tmp):
    tiny = os.path.join(tmp, "tiny.gguf")
    r = mk("generate", "--shape", "tiny", "--quant", "q8_0", "--seed", "5", tiny)
    meta = json.loads(r.stdout) if r.returncode == 0 else {}
    t.ok(r.returncode == 0 and meta.get("shape") == "tiny" and meta.get("generated") is True
         and meta.get("quant") == "Q8_0" and meta.get("params") == 139584 and meta.get("size") == os.path.getsize(tiny),
         f"generate --shape tiny: {os.path.getsize(tiny) if os.path.exists(tiny) else 0} bytes, metadata on stdout",
         r.stdout + r.stderr)
    r = mk("inspect", tiny)
    t.ok(r.returncode == 0 and json.loads(r.stdout) == meta, "inspect prints the same metadata", r.stdout + r.stderr)

    r = mk("generate", "--shape", "custom:vocab=1000,embd=100,layers=1,heads=4,kv_heads=2,ffn=64",
           os.path.join(tmp, "bad.gguf"))
    t.ok(r.returncode == 1 and "embd must be a multiple of 32" in r.stderr and r.stdout == ""
         and not os.path.exists(os.path.join(tmp, "bad.gguf")), "a bad custom shape: exit 1 with the reason",
         f"{r.returncode} {r.stderr!r}")
    return tiny, meta


def check_inspect_bad(t, tmp, tiny):
    data = open(tiny, "rb").read()
    cases = [("not-gguf.bin", b"PK\x03\x04" + b"\0" * 100, "not a GGUF file (magic 50 4b 03 04"),
             ("truncated.gguf", data[:len(data) - 1000], "truncated: tensor 'output.weight' ends at byte"),
             ("v7.gguf", data[:4] + b"\x07\0\0\0" + data[8:], "unsupported GGUF version 7")]
    for name, content, reason in cases:
        path = os.path.join(tmp, name)
        open(path, "wb").write(content)
        r = mk("inspect", path)
        t.ok(r.returncode == 1 and reason in r.stderr and r.stdout == "",
             f"inspect {name}: exit 1, \"{reason}\"", f"{r.returncode} {r.stderr!r}")
    return [os.path.join(tmp, c[0]) for c in cases]


def check_disk(t, tmp, tiny, meta):
    store = os.path.join(tmp, "store")
    digest = zt.sha256(tiny)
    r = mk("disk", tiny, store)
    out = json.loads(r.stdout) if r.returncode == 0 else {}
    img = os.path.join(store, digest + ".img")
    t.ok(r.returncode == 0 and out.get("sha256") == digest and out.get("image") == img and out.get("reused") is False
         and out.get("params") == meta["params"] and out.get("size") == meta["size"],
         "disk: stdout has the metadata, sha256, image path and size", r.stdout + r.stderr)
    st = os.stat(img) if os.path.exists(img) else None
    t.ok(st and oct(st.st_mode & 0o777) == "0o444" and listing(store) == [digest + ".img"],
         "the store holds only <sha256>.img, read-only", listing(store))

    r2 = mk("disk", tiny, store)
    copy = os.path.join(tmp, "again", "same-model.gguf")
    os.makedirs(os.path.dirname(copy))
    shutil.copyfile(tiny, copy)
    r3 = mk("disk", copy, store)
    t.ok(r2.returncode == 0 and json.loads(r2.stdout).get("reused") is True and r3.returncode == 0
         and json.loads(r3.stdout).get("reused") is True and listing(store) == [digest + ".img"]
         and os.stat(img).st_mtime_ns == st.st_mtime_ns,
         "the same file (twice, and a copy under another name) is stored once", f"{r2.stdout} {r3.stdout}")

    ls = debugfs(img, "ls -l /").stdout.decode()
    line = [ln for ln in ls.splitlines() if ln.strip().endswith(" model.gguf")]
    f = line[0].split() if line else []
    t.ok(len(f) >= 6 and f[1] == "100444" and f[3] == "0" and f[4] == "0" and f[5] == str(meta["size"]),
         "debugfs: /model.gguf is root-owned, 0444, of the file's size", ls)
    cat = debugfs(img, "cat /model.gguf").stdout
    t.ok(hashlib.sha256(cat).hexdigest() == digest, "debugfs: its content has the file's sha256")
    d = subprocess.run(["dumpe2fs", "-h", img], capture_output=True, text=True, timeout=60).stdout
    feats = next((ln for ln in d.splitlines() if ln.startswith("Filesystem features:")), "")
    t.ok("Filesystem volume name:   zvm-model" in d and " read-only" in feats and "has_journal" not in feats,
         "dumpe2fs: label zvm-model, read-only feature, no journal", d[:1500])
    e = subprocess.run(["e2fsck", "-fn", img], capture_output=True, text=True, timeout=60)
    t.ok(e.returncode == 0, "e2fsck -fn finds the image clean", e.stdout + e.stderr)
    return store, img, digest


def check_disk_bad(t, store, bad_paths):
    before = listing(store)
    for p in bad_paths:
        r = mk("disk", p, store)
        t.ok(r.returncode == 1 and r.stdout == "" and listing(store) == before,
             f"disk {os.path.basename(p)}: exit 1, nothing stored ({r.stderr.strip()[:100]})", r.stderr)


def check_copy_path(t, tiny, digest):
    """A store on another filesystem (tmpfs) gets a copy instead of a hard link."""
    shm = "/dev/shm"
    if not os.path.isdir(shm) or os.stat(shm).st_dev == os.stat(tiny).st_dev:
        t.ok(True, "# SKIP no second filesystem for the copy path")
        return
    store = tempfile.mkdtemp(prefix="zvm-store-", dir=shm)
    try:
        r = mk("disk", tiny, store)
        img = os.path.join(store, digest + ".img")
        cat = debugfs(img, "cat /model.gguf").stdout
        t.ok(r.returncode == 0 and listing(store) == [digest + ".img"] and hashlib.sha256(cat).hexdigest() == digest,
             "a store on another filesystem: the file is copied, same image content", r.stderr)
    finally:
        shutil.rmtree(store, ignore_errors=True)


def sigterm_when(t, argv, pattern, delay, name, dirs):
    """Runs argv, sends SIGTERM once stderr shows pattern (+delay); the
    tool must exit 143 and leave dirs as they were."""
    before = {d: listing(d) for d in dirs}
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    deadline = time.monotonic() + 120
    for line in p.stderr:
        seen.append(line)
        if pattern in line or time.monotonic() > deadline:
            break
    time.sleep(delay)
    p.send_signal(signal.SIGTERM)
    try:
        out, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    after = {d: listing(d) for d in dirs}
    t.ok(any(pattern in s for s in seen) and p.returncode == 128 + signal.SIGTERM and out == "" and after == before,
         f"SIGTERM {name}: exit {p.returncode}, nothing left behind",
         f"{''.join(seen)[-500:]} {err[-500:]} before={before} after={after}")


def check_signals(t, tmp, store):
    big = os.path.join(tmp, "big.gguf")
    sigterm_when(t, [TOOL, "generate", "--shape", BIG, big], "progress 1%", 0, "while generating", [tmp])
    t0 = time.monotonic()
    r = mk("generate", "--shape", BIG, "--quant", "q8_0", big)
    t.ok(r.returncode == 0 and "progress 100% writing" in r.stderr,
         f"a {os.path.getsize(big) >> 20 if os.path.exists(big) else 0} MiB model reports progress "
         f"({time.monotonic() - t0:.1f} s)", r.stderr[-300:])
    sigterm_when(t, [TOOL, "disk", big, store], "progress 5% hashing", 0, "while hashing", [tmp, store])
    sigterm_when(t, [TOOL, "disk", big, store], "writing image", 0, "while writing the image", [tmp, store])
    r = mk("disk", big, store, timeout=300)
    t.ok(r.returncode == 0 and "progress 100% writing image" in r.stderr and len(listing(store)) == 2,
         "after the interrupted runs the big model is stored", r.stderr[-500:])


def check_full_disk(t, tiny):
    """A store on a 2 MiB tmpfs (in a private mount namespace): exit 4, nothing left."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        t.ok(True, "# SKIP a full disk needs root and unshare for a private tmpfs")
        return
    d = tempfile.mkdtemp(prefix="zvm-full-")
    try:
        script = (f'mount -t tmpfs -o size=2m zvm-full "{d}" && "{TOOL}" disk "{tiny}" "{d}/store"; '
                  f'rc=$?; echo "rc=$rc left=$(ls -A "{d}/store" 2>/dev/null | wc -l)"')
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                           capture_output=True, text=True, timeout=60)
        t.ok("rc=4 left=0" in r.stdout and "Not enough space" in r.stderr,
             "a store without room: exit 4 with the reason, nothing left", r.stdout + r.stderr)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    t = zt.Tap()
    tmp = tempfile.mkdtemp(prefix="zvm-mkmodel-")
    try:
        tiny, meta = check_generate(t, tmp)
        bad = check_inspect_bad(t, tmp, tiny)
        store, img, digest = check_disk(t, tmp, tiny, meta)
        check_disk_bad(t, store, bad)
        check_copy_path(t, tiny, digest)
        check_full_disk(t, tiny)
        check_signals(t, tmp, store)
    except Exception as e:  # a crash of the test is a failure
        t.ok(False, f"test raised {type(e).__name__}: {e}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t.done()


if __name__ == "__main__":
    main()
