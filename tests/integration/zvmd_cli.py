"""The cli_first_hour scenario of test-zvmd.py (kept apart: that file is
long enough): what a new user of `zvm` reads, against a real zvmd and real
tiny guests. Messages name what the user typed, with one prefix; status is
text, not JSON; logs count lines, follow, and keep guest control sequences
off a terminal."""
import json
import os
import pty
import re
import select
import signal
import subprocess
import time

from zvmd import ZVM, wait_agent


def wait_agent_ready(d, vm, timeout=90):
    return wait_agent(d, vm, "ready", timeout) or {}


def to_console(d, vm, text):
    """The guest writes text on its serial console (what zvmd logs)."""
    return d.zvm("exec", vm, "--", "sh", "-c", f"printf '{text}' > /dev/ttyS0")


def wait_log(d, vm, needle, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, log = d.request("GET", f"/vms/{vm}/console/log")
        if status == 200 and needle in log:
            return log
        time.sleep(0.2)
    return None


def read_until(fd, needle, timeout):
    """Reads fd (a pipe or pty) until needle shows up: all bytes read."""
    out, deadline = b"", time.monotonic() + timeout
    while needle not in out and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


def check_messages(t, d):
    r = subprocess.run([ZVM], capture_output=True, text=True, timeout=30)
    t.ok(r.returncode == 2 and r.stdout == "" and "VERB" in r.stderr,
         f"bare zvm: usage on stderr, exit 2 ({r.returncode})", r.stdout + r.stderr)
    r = d.zvm("--bogus")
    t.ok(r.returncode == 2 and r.stderr.startswith("zvm: unrecognized option '--bogus'") and ZVM not in r.stderr,
         "an unknown global option is reported by 'zvm', not the binary's path", r.stderr)
    r = d.zvm("strat", "t1")
    t.ok(r.returncode == 2 and "did you mean 'start'" in r.stderr, "zvm strat: did you mean 'start'", r.stderr)
    r = d.zvm("config", "shw", "t1")
    t.ok(r.returncode == 2 and "'config shw'" in r.stderr and "did you mean 'config show'" in r.stderr,
         "zvm config shw names the unknown subcommand", r.stderr)


def check_list(t, d):
    r = d.zvm("list")
    rows = {line.split()[1]: line.split() for line in r.stdout.splitlines()[1:]}
    t.ok(r.returncode == 0 and rows.get("t1", [None] * 6)[5] == "1",
         "list: CORES 1 for the default, not '-'", r.stdout)
    r = d.zvm("list", "--state", "running")
    names = [line.split()[1] for line in r.stdout.splitlines()[1:]]
    t.ok(r.returncode == 0 and names == ["t1"], f"list --state running: t1 only ({names})", r.stdout + r.stderr)
    r = d.zvm("list", "--tag", "web")
    names = [line.split()[1] for line in r.stdout.splitlines()[1:]]
    t.ok(r.returncode == 0 and names == ["t2"], f"list --tag web: t2 only ({names})", r.stdout + r.stderr)
    r = d.zvm("--json", "list", "--state", "stopped", "--tag", "web")
    t.ok(r.returncode == 0 and [v["name"] for v in json.loads(r.stdout)] == ["t2"],
         "list --json with both filters", r.stdout + r.stderr)
    r = d.zvm("list", "--state", "runing")
    t.ok(r.returncode == 2 and "runing" in r.stderr, "list --state with an unknown state: usage error", r.stderr)


def check_status(t, d):
    r = d.zvm("status", "t1")
    t.ok(r.returncode == 0 and "\nboot:\n" in r.stdout and "{" not in r.stdout,
         "status: the boot object as lines, no raw JSON", r.stdout)
    t.ok(re.search(r"^  ready_seconds: +\d+(\.\d+)?$", r.stdout, re.M) and not re.search(r"\d{12,}", r.stdout),
         "status: floats as plain decimals", r.stdout)
    r = d.zvm("--json", "status", "t1")
    t.ok(r.returncode == 0 and not re.search(r"\.\d*(0{6,}|9{6,})\d\b", r.stdout),
         "status --json: no %.17g artefacts", r.stdout)
    r = d.zvm("--json", "show", "t2")
    t.ok(r.returncode == 0 and '"pending_restart": []' in r.stdout, "--json: an empty array on one line", r.stdout)


def check_exec_and_delete(t, d):
    r = d.zvm("exec", "t1", "-x", "--", "true")
    t.ok(r.returncode == 2 and "'-x'" in r.stderr and "zvm: zvm" not in r.stderr,
         "exec: an unknown option before -- is refused by name", r.stderr)
    r = d.zvm("exec", "t1", "--timeout", "10", "--", "sh", "-c", "exit 0")
    t.ok(r.returncode == 0, "exec: options after NAME still work", r.stderr)
    r = d.zvm("exec", "t1", "--timeout", "1", "--", "sleep", "30")
    t.ok(r.returncode == 124 and r.stderr.startswith("zvm: the command") and "zvm: zvm" not in r.stderr,
         "exec: one prefix", r.stderr)
    r = d.zvm("delete", "t1")
    t.ok(r.returncode == 4 and "VM 't1'" in r.stderr and "--force" in r.stderr and not re.search(r"VM \d", r.stderr),
         "delete of a running VM: the name typed and the option's name", r.stderr)


def check_logs(t, d):
    t.ok(to_console(d, "t1", "zvm-cli: one\\nzvm-cli: two\\nzvm-cli: three\\n").returncode == 0 and
         wait_log(d, "t1", "zvm-cli: three"), "the guest wrote three lines on its console")
    r = d.zvm("logs", "t1", "--tail", "2")
    t.ok(r.returncode == 0 and r.stdout.replace("\r", "") == "zvm-cli: two\nzvm-cli: three\n",
         "logs --tail 2: the last two lines, whole", repr(r.stdout[-200:]))
    r = subprocess.run([ZVM, "--root", d.root, "logs", "t1", "--tail-bytes", "16"], capture_output=True, timeout=60)
    t.ok(r.returncode == 0 and len(r.stdout) == 16 and r.stdout.endswith(b"three\r\n"),
         "logs --tail-bytes 16: the last 16 bytes", r.stdout)

    # A guest's ESC[6n asks the terminal for the cursor: never on a terminal.
    t.ok(to_console(d, "t1", "zvm-cli: esc \\033[6n end\\n").returncode == 0 and wait_log(d, "t1", "esc"),
         "the guest wrote a terminal query on its console")
    r = d.zvm("logs", "t1", "--tail", "1")
    t.ok("\x1b[6n" in r.stdout, "logs into a pipe: the guest's bytes as they are", repr(r.stdout))
    master, slave = pty.openpty()
    p = subprocess.Popen([ZVM, "--root", d.root, "logs", "t1", "--tail", "1"], stdout=slave, stderr=slave)
    os.close(slave)
    out = read_until(master, b"end", 30)
    p.wait(timeout=30)
    os.close(master)
    t.ok(b"zvm-cli: esc  end" in out and b"\x1b" not in out, "logs on a terminal: escape sequences removed", out)

    # -f: what the guest prints next shows up; deleting the VM ends it.
    p = subprocess.Popen([ZVM, "--root", d.root, "logs", "t1", "-f", "--tail", "0"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        time.sleep(1)
        to_console(d, "t1", "zvm-cli: followed\\n")
        out = read_until(p.stdout.fileno(), b"zvm-cli: followed", 30)
        t.ok(b"zvm-cli: followed" in out and b"zvm-cli: three" not in out,
             "logs -f --tail 0: prints what comes next, only that", out)
        r = d.zvm("delete", "t1", "--force")
        t.ok(r.returncode == 0, "delete --force t1", r.stderr)
        rc = p.wait(timeout=30)
        err = p.stderr.read().decode(errors="replace")
        t.ok(rc == 0 and "was deleted" in err, f"logs -f ends when the VM is deleted ({rc})", err)
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=10)


def check_crash(t, d):
    """A crashed VM's stderr: what QEMU said, not its command line."""
    d.request("POST", "/vms/t2/start")
    st = d.wait_state("t2", ["running"], timeout=30)
    pid = (st or {}).get("pid")
    t.ok(pid, "t2 runs", st)
    if not pid:
        return
    with open(f"/proc/{pid}/fd/2", "a") as f:
        f.write("zvm-test: QEMU's last words\n")
    os.kill(pid, signal.SIGKILL)
    st = d.wait_state("t2", ["crashed"], timeout=10) or {}
    lines = st.get("exit", {}).get("stderr", [])
    t.ok("zvm-test: QEMU's last words" in lines and not any(" -name " in line for line in lines),
         "zvmd's exit.stderr: QEMU's words, without the command line zvmd wrote first in qemu.log", lines)
    r = d.zvm("status", "t2")
    t.ok(r.returncode == 0 and "  zvm-test: QEMU's last words\n" in r.stdout and " -name " not in r.stdout,
         "status of a crashed VM: QEMU's words, not its command line", r.stdout)


def check_template_detach(t, d):
    r = d.zvm("template", "build", "clidetach", "--profile", "tiny", "--detach")
    t.ok(r.returncode == 0 and r.stdout == "" and "clidetach" in r.stderr and "zvm template list" in r.stderr,
         "template build --detach says what started and how to follow it", r.stdout + r.stderr)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status, tp = d.request("GET", "/templates/clidetach")
        if status != 200 or tp.get("state") not in ("building", "cancelling"):
            break
        time.sleep(1)
    d.zvm("template", "rm", "clidetach")


def scenario_cli_first_hour(t, d):
    check_messages(t, d)
    for name, keys in (("t1", {}), ("t2", {"tags": "web;db"})):
        status, vm = d.request("POST", "/vms", {"name": name, "memory": 128, **keys})
        t.ok(status == 201, f"create {name}", vm)
    d.request("POST", "/vms/t1/start")
    st = wait_agent_ready(d, "t1")
    t.ok(st.get("agent") == "ready", "t1: agent ready", st)
    check_list(t, d)
    check_status(t, d)
    check_exec_and_delete(t, d)
    check_logs(t, d)
    check_crash(t, d)
    check_template_detach(t, d)
