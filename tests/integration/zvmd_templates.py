"""zvmd's template scenarios: zvm template build/list/rm, a failed and a
cancelled Debian build leave nothing, a build survives zvmd's kill -9 and is
adopted; build_template() for the scenarios that boot a Debian template."""
import fcntl
import json
import os
import pwd
import shutil
import signal
import tempfile
import time

import zvmtest as zt
from zvmd import create, wait_agent
from zvmtest import comm_of, in_child_pid_namespace, pid_gone, procs_with, running, session_of, sessions_members, stat_field

HERE = os.path.dirname(os.path.abspath(__file__))


def template_files(d, name):
    tdir = os.path.join(d.root, "var", "lib", "zvm", "templates")
    return sorted(f for f in os.listdir(tdir) if name in f) if os.path.isdir(tdir) else []


def fake_work_dir():
    """A work dir as zvm-mktemplate leaves it (the builder's, with .lock and
    out/data), under its default ZVM_BUILD_TMPDIR."""
    path = tempfile.mkdtemp(prefix="zvm-mktemplate.zvmtest", dir="/var/tmp")
    os.makedirs(os.path.join(path, "out"))
    for f in (".lock", os.path.join("out", "data")):
        open(os.path.join(path, f), "w").close()
    builder = pwd.getpwnam(os.environ.get("ZVM_BUILD_USER", "zvm-build"))
    for root, dirs, files in os.walk(path):
        for n in [root] + [os.path.join(root, f) for f in dirs + files]:
            os.chown(n, builder.pw_uid, builder.pw_gid)
    return path


def scenario_templates(t, d):
    """zvm template build/list/rm: a tiny build boots, rm is refused while a
    VM uses it, a failed or cancelled Debian build leaves nothing."""
    r = d.zvm("template", "build", "mini", "--profile", "tiny", timeout=300)
    t.ok(r.returncode == 0 and "zvm-mktemplate:" in r.stdout and "ready" in r.stdout,
         "zvm template build --profile tiny: progress lines, then ready", f"{r.returncode} {r.stdout!r} {r.stderr!r}")
    status, lst = d.request("GET", "/templates")
    mini = [x for x in lst if x.get("name") == "mini"] if status == 200 else []
    t.ok(mini and mini[0].get("state") == "ready" and mini[0].get("builtin") is False
         and mini[0].get("profile") == "tiny" and mini[0].get("size", 0) > 0, "GET /templates lists it", lst)
    t.ok(any(x.get("name") == "tiny" and x.get("builtin") for x in lst or []), "the built-in tiny is listed too", lst)

    create(t, d, "tv", rootfs="mini")
    d.request("POST", "/vms/tv/start")
    st = wait_agent(d, "tv")
    t.ok(st and st.get("agent") == "ready", "a VM boots the new template to agent READY", st)
    r = d.zvm("template", "rm", "mini")
    t.ok(r.returncode == 4 and "used by" in r.stderr and "tv" in r.stderr and template_files(d, "mini"),
         "template rm is refused while a VM uses it (exit 4)", f"{r.returncode} {r.stderr!r}")
    d.zvm("stop", "tv")
    d.zvm("delete", "tv")
    r = d.zvm("template", "rm", "mini")
    t.ok(r.returncode == 0 and template_files(d, "mini") == [], "template rm removes image and metadata",
         f"{r.returncode} {r.stderr!r} {template_files(d, 'mini')}")

    # Bad input: every refusal is a clear usage error and changes nothing.
    for args, code, what in ((["../x", "--profile", "tiny"], 2, "a name with '/'"),
                             (["ok", "--profile", "huge"], 2, "an unknown profile"),
                             (["ok", "--profile", "standard", "--include", "Bad;rm"], 2, "a package name with ';'"),
                             (["ok", "--profile", "tiny", "--suite", "sid"], 2, "a suite for tiny"),
                             (["tiny", "--profile", "tiny"], 4, "the name of an existing template")):
        r = d.zvm("template", "build", *args)
        t.ok(r.returncode == code and r.stderr.strip(), f"build refuses {what} (exit {code})",
             f"{r.returncode} {r.stderr!r}")
    r = d.zvm("template", "rm", "tiny")
    t.ok(r.returncode == 4 and "built in" in r.stderr, "the built-in template cannot be removed", r.stderr)
    r = d.zvm("template", "rm", "nosuch")
    t.ok(r.returncode == 3, "rm of an unknown template: exit 3", r.stderr)

    # Work dirs of earlier builds: one killed outright (its lock free) is
    # swept by the next build, one whose build still runs (lock held) is not.
    stale, live = fake_work_dir(), fake_work_dir()
    live_lock = open(os.path.join(live, ".lock"))
    fcntl.flock(live_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)

    # A package that does not exist: mmdebstrap fails, nothing is left.
    t0 = time.monotonic()
    r = d.zvm("template", "build", "bad", "--profile", "standard", "--include", "no-such-package-zvm", timeout=900)
    took = time.monotonic() - t0
    t.ok(not os.path.exists(stale) and os.path.exists(os.path.join(live, "out", "data")),
         "a build removes the work dir of a killed build (lock free), not that of a live one",
         f"stale={os.path.exists(stale)} live={os.listdir(live) if os.path.exists(live) else None}")
    live_lock.close()
    shutil.rmtree(live, ignore_errors=True)
    shutil.rmtree(stale, ignore_errors=True)
    status, bad = d.request("GET", "/templates/bad")
    t.ok(r.returncode == 1 and "no-such-package-zvm" in r.stderr, f"a bad package fails the build ({took:.0f} s), "
         "naming the package", f"{r.returncode} {r.stdout[-800:]!r} {r.stderr[-1500:]!r}")
    t.ok(status == 200 and bad.get("state") == "failed" and "path" not in bad and template_files(d, "bad") == [],
         "the failed build left no template and no temporary file", f"{bad} {template_files(d, 'bad')}")
    r = d.zvm("create", "uses-bad", "--template", "bad", "--no-ssh-keys")
    r2 = d.zvm("start", "uses-bad")
    t.ok(r2.returncode != 0, "a VM cannot start from the failed template", f"{r.stderr!r} {r2.stderr!r}")
    d.zvm("delete", "uses-bad")

    # Cancel: DELETE during a build kills it and leaves nothing.
    r = d.zvm("template", "build", "cx", "--profile", "standard", "--include", "less", "--detach")
    t.ok(r.returncode == 0, "build --detach returns at once", r.stderr)
    time.sleep(3)
    status, cx = d.request("GET", "/templates/cx")
    t.ok(status == 200 and cx.get("state") == "building", "GET /templates/NAME shows it building", cx)
    r = d.zvm("template", "rm", "cx")
    t0 = time.monotonic()
    deadline = t0 + 30
    while time.monotonic() < deadline:
        status, cx = d.request("GET", "/templates/cx")
        if cx.get("build", {}).get("state") not in ("building", "cancelling"):
            break
        time.sleep(0.3)
    t.ok(r.returncode == 0 and cx.get("state") == "cancelled" and template_files(d, "cx") == []
         and not procs_with(os.path.join(d.root, "var", "lib", "zvm", "templates", "cx")),
         f"rm cancels a build in progress: nothing left ({time.monotonic() - t0:.1f} s)",
         f"{cx} {template_files(d, 'cx')}")

    # A cancel that the build's processes do not act on: mmdebstrap ignores
    # TERM and waits for its PID namespace's init, which the kernel shields
    # from a TERM sent from outside; between two of its commands, the build
    # went on (a cancel took the whole build, CI's failure). Stopped
    # processes keep a TERM pending for ever: the builder must end them by
    # KILL, bounded, and still leave nothing. mmdebstrap itself runs on and
    # removes its temporary tree once its namespace is gone.
    r = d.zvm("template", "build", "cy", "--profile", "standard", "--include", "less", "--detach")
    cy_dir = os.path.join(d.root, "var", "lib", "zvm", "templates", "cy")
    deadline = time.monotonic() + 60
    session = []
    while time.monotonic() < deadline and not session:
        builder = [p for p in procs_with(cy_dir) if session_of(p) == p]
        session = [p for p in sessions_members(builder[0]) if in_child_pid_namespace(p)] if builder else []
        time.sleep(0.2)
    stopped = [p for p in sessions_members(builder[0])
               if p != builder[0] and not (stat_field(p, 1) == str(builder[0]) and comm_of(p) == "mmdebstrap")] \
        if session else []
    for p in stopped:
        try:
            os.kill(p, signal.SIGSTOP)
        except ProcessLookupError:
            pass
    r = d.zvm("template", "rm", "cy")
    t0 = time.monotonic()
    while time.monotonic() < t0 + 30:
        status, cy = d.request("GET", "/templates/cy")
        if cy.get("build", {}).get("state") not in ("building", "cancelling"):
            break
        time.sleep(0.3)
    took = time.monotonic() - t0
    left = [p for p in stopped if running(p)]
    for p in left:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    t.ok(session and r.returncode == 0 and cy.get("state") == "cancelled" and took < 15 and not left
         and template_files(d, "cy") == [] and not procs_with(cy_dir),
         f"rm ends a build whose {len(stopped)} processes are stopped (TERM pending): cancelled in {took:.1f} s, "
         "nothing left", f"{cy} stopped={stopped} left={left} {template_files(d, 'cy')}")


SLOW_TINY_SECONDS = 8


def slow_tiny_builder(directory):
    """A tiny-profile builder that first holds a tmp file for a while (as a
    Debian build does) and fails if anything removed it meanwhile."""
    real = os.path.abspath(os.path.join(HERE, "..", "..", "initrd", "mkrootfs-tiny"))
    path = os.path.join(directory, "slow-mkrootfs-tiny")
    with open(path, "w") as f:
        f.write(f"""#!/bin/bash
out=$3
echo partial > "$out.tmp.$$"
sleep {SLOW_TINY_SECONDS}
[ -f "$out.tmp.$$" ] || {{ echo "error: $out.tmp.$$ was removed while the build ran" >&2; exit 1; }}
rm -f "$out.tmp.$$"
exec {real} "$@"
""")
    os.chmod(path, 0o755)
    return path


def scenario_template_adopt(t, d):
    """kill -9 of zvmd during a template build: the builder (own session)
    runs on; the next zvmd adopts it (shown building, its tmp file not
    swept, a stale one is), and the build ends ready with nothing left."""
    tdir = os.path.join(d.root, "var", "lib", "zvm", "templates")
    record = os.path.join(d.root, "run", "zvm", "template-builds", "slow.json")
    status, body = d.request("POST", "/templates", {"name": "slow", "profile": "tiny"})
    t.ok(status == 202, f"build started ({status})", body)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(".img.tmp." in f for f in template_files(d, "slow")):
        time.sleep(0.1)
    rec = json.load(open(record)) if os.path.exists(record) else {}
    pid = rec.get("pid", 0)
    t.ok(pid > 0 and rec.get("starttime") == zt.proc_starttime(pid) and rec.get("profile") == "tiny",
         "the build is recorded in the run dir with its pid and start time", rec)
    d.kill9()
    t.ok(pid and not pid_gone(pid, rec.get("starttime")), "the builder survives kill -9 of zvmd")
    stale = os.path.join(tdir, "gone.img.tmp.999999")
    open(stale, "w").write("left by a dead build")
    d.start()
    status, tpl = d.request("GET", "/templates/slow")
    t.ok(status == 200 and tpl.get("state") == "building" and tpl.get("build", {}).get("state") == "building",
         "the new zvmd adopted the running build", tpl)
    t.ok(any(".img.tmp." in f for f in template_files(d, "slow")) and not os.path.exists(stale),
         "the sweep kept the live builder's tmp file and removed the stale one", os.listdir(tdir))
    deadline = time.monotonic() + SLOW_TINY_SECONDS + 120
    while time.monotonic() < deadline:
        status, tpl = d.request("GET", "/templates/slow")
        if tpl.get("state") != "building":
            break
        time.sleep(0.5)
    t.ok(tpl.get("state") == "ready" and tpl.get("profile") == "tiny" and tpl.get("size", 0) > 0,
         "the adopted build ended ready (judged by its image), with its metadata", tpl)
    t.ok(template_files(d, "slow") == [".slow.json", "slow.img"] and not os.path.exists(record)
         and pid_gone(pid, rec.get("starttime")), "nothing is left behind: no tmp file, no record, no builder",
         f"{template_files(d, 'slow')} record={os.path.exists(record)}")


def build_template(t, d, name, profile):
    """zvm template build (a copy when the content cache has it); whether it worked.
    Scenarios that run at once and build the same profile take turns (a lock
    in the cache dir), so the second one copies what the first built."""
    t0 = time.monotonic()
    cache = os.environ.get("ZVM_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "zvm")
    os.makedirs(cache, exist_ok=True)
    with open(os.path.join(cache, f".test-build-{profile}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        r = d.zvm("template", "build", name, "--profile", profile, timeout=2400)
    t.ok(r.returncode == 0, f"zvm template build --profile {profile} ({time.monotonic() - t0:.0f} s; cached by content)",
         f"{r.stdout[-1500:]} {r.stderr[-1500:]}")
    return r.returncode == 0
