"""zvm chat, bench and run (issue 9), the scenarios chat_native and
chat_zvmd of test-zvmd.py.

chat_native: the real llama-server of the `llm` template, run on the host
(chrooted into the template's tree, copied out with debugfs) on a generated
tiny model, on a unix socket; zvm talks to it with --socket, as to any
OpenAI-compatible server: a one-shot chat, a conversation from stdin, the
bench table and its JSON, failures counted against a dead socket, an
unknown model refused.

chat_zvmd: the same verbs through zvmd: the model route and a VM's
pass-through route, and `zvm run` (a throwaway VM on a GGUF file it adds to the store,
deleted after the answer, and after a SIGINT while it boots)."""
import glob
import json
import os
import re
import signal
import subprocess
import time

import zvmtest as zt
import zvmd_serve
from zvmd import UnixHTTPConnection

MKMODEL = os.path.join(zt.BUILD, "daemon", "tools", "zvm-mkmodel")
STEP = 300


def llm_tree(t, d):
    """The llm template's tree on the host (debugfs rdump, no mount)."""
    r = d.zvm("template", "build", "llm", "--profile", "llm", timeout=3000)
    t.ok(r.returncode == 0, "zvm template build llm (a copy from the content cache)", r.stderr[-1500:])
    images = [p for p in glob.glob(os.path.join(d.root, "**", "*.img"), recursive=True) if "llm" in os.path.basename(p)]
    if r.returncode != 0 or not images:
        raise zt.Skip("no llm template")
    root = os.path.join(d.tmp, "llmroot")
    os.makedirs(root)
    subprocess.run(["debugfs", "-R", f"rdump / {root}", images[0]], check=True, capture_output=True, timeout=600)
    for sub in ("models", "sock"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    return root


def start_native(t, d, root):
    """llama-server on a generated tiny model, as `tiny`, 2 slots; its socket."""
    subprocess.run([MKMODEL, "generate", "--shape", "tiny", os.path.join(root, "models", "tiny.gguf")], check=True,
                   capture_output=True, timeout=60)
    log = open(os.path.join(d.tmp, "llama-native.log"), "wb")
    p = subprocess.Popen(["chroot", root, "/usr/bin/llama-server", "-m", "/models/tiny.gguf", "--alias", "tiny",
                          "--host", "/sock/llama.sock", "-t", "2", "-c", "512", "-np", "2"],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    d.native_server = p
    sock = os.path.join(root, "sock", "llama.sock")
    deadline, status = time.monotonic() + 120, None
    while time.monotonic() < deadline and p.poll() is None:
        try:
            c = UnixHTTPConnection(sock, timeout=10)
            c.request("GET", "/health")
            status = c.getresponse().status
            c.close()
            if status == 200:
                break
        except OSError:
            pass
        time.sleep(0.3)
    t.ok(status == 200, "llama-server of the llm template runs natively on a unix socket", status)
    return sock


def answer_of(stdout):
    try:
        return json.loads(stdout)
    except ValueError:
        return {}


def answered(a, max_tokens):
    """A chat answer of max_tokens tokens, or fewer where the model chose to
    stop: a random-weight model samples its end-of-text token now and then
    (seen in CI: 2 of 4 tokens, finish_reason "stop")."""
    n = a.get("usage", {}).get("completion_tokens")
    choices = a.get("choices") or [{}]
    return n == max_tokens or (isinstance(n, int) and 1 <= n < max_tokens and
                               choices[0].get("finish_reason") == "stop")


def energy_ok(cells, power):
    """A level's watts and Wh/query in the table: numbers > 0, or "-" where
    the POWER column says the level was too short to estimate."""
    if "too short" in power:
        return cells == ["-", "-"]
    try:
        return all(float(c) > 0 for c in cells) and ("estimated" in power or "measured" in power)
    except ValueError:
        return False


def energy_json_ok(e):
    """The energy object: a figure > 0, measured or estimated from at least
    10 busy ticks (0.1 CPU-s at USER_HZ 100); or none, with fewer ticks."""
    few = 10 / os.sysconf("SC_CLK_TCK")
    if e.get("source") == "too-short":
        return (e.get("watts") is None and e.get("wh_per_query") is None
                and 0 <= e.get("cpu_seconds", -1) < few)
    return (e.get("source") == "measured" or e.get("source") == "estimated" and e.get("cpu_seconds", 0) >= few) \
        and e.get("watts", 0) > 0 and e.get("wh_per_query", 0) > 0


def bench_checks(t, d, zvm, target, what):
    """zvm bench --requests 3: a table of numbers > 0, and the same in JSON."""
    r = zvm("bench", target, "--requests", "3", "--isl", "16", "--osl", "4", "--concurrency", "1,2",
            timeout=STEP)
    rows = [line.split(None, 12) for line in r.stdout.splitlines() if re.match(r"\s*[12]\s+3\s+0\s", line)]
    nums = [float(x.rstrip("s")) for row in rows for x in row[3:10]]
    t.ok(r.returncode == 0 and len(rows) == 2 and nums and all(n > 0 for n in nums)
         and all(len(row) == 13 and energy_ok(row[10:12], row[12]) for row in rows),
         f"zvm bench {what} --requests 3: two levels, 3 ok, 0 failed, every number > 0 (watts: or too short "
         f"to estimate)", r.stdout + r.stderr)
    r = zvm("bench", target, "--requests", "3", "--isl", "16", "--osl", "4", "--concurrency", "2", "--json",
            timeout=STEP)
    b = answer_of(r.stdout)
    lv = (b.get("levels") or [{}])[0]
    e = lv.get("energy", {})
    t.ok(r.returncode == 0 and lv.get("ok") == 3 and lv.get("failed") == 0 and lv.get("prompt_tokens") == 16
         and lv.get("generated_tokens") == 4 and lv.get("prompt_tokens_per_sec", 0) > 0
         and lv.get("generated_tokens_per_sec", 0) > 0 and 0 < lv.get("ttft_p50_sec", 0) <= lv.get("latency_p95_sec", 0)
         and energy_json_ok(e),
         f"zvm bench {what} --json: exactly 16 prompt and 4 generated tokens, "
         f"{lv.get('generated_tokens_per_sec', 0):.1f} gen tok/s, {e.get('wh_per_query')} Wh/query "
         f"({e.get('source')}, {e.get('cpu_seconds')} CPU-s)", r.stdout + r.stderr)


def scenario_chat_native(t, d):
    root = llm_tree(t, d)
    try:
        sock = start_native(t, d, root)

        def zvm(*args, **kw):
            return d.zvm("--socket", sock, *args, **kw)

        r = zvm("chat", "tiny", "-p", "Hello", "--max-tokens", "8", "--json", timeout=STEP)
        a = answer_of(r.stdout)
        t.ok(r.returncode == 0 and a.get("usage", {}).get("completion_tokens", 0) > 0 and a.get("choices"),
             f"zvm chat -p --json: the answer object, {a.get('usage', {}).get('completion_tokens')} completion tokens",
             r.stdout + r.stderr)
        r = zvm("--log-level", "debug", "chat", "tiny", "-p", "Hello", "--max-tokens", "8", timeout=STEP)
        # The test model's weights are random per run: it may emit its end
        # token before 8 ("finish stop"); "length" means exactly 8.
        m = re.search(r"answer: (\d+) prompt \+ (\d+) generated tokens, .*finish (\w+)", r.stderr)
        t.ok(r.returncode == 0 and m and (int(m.group(2)) == 8 if m.group(3) == "length"
                                          else m.group(3) == "stop" and 0 < int(m.group(2)) <= 8),
             "zvm chat -p streams the answer (SSE, usage in the last chunk: 8 generated tokens, or fewer "
             "with finish stop)", r.stderr[-2000:])
        r = zvm("chat", "tiny", "--max-tokens", "4", "--json", input="first question\n\nsecond question\n",
                timeout=STEP)
        t.ok(r.returncode == 0 and r.stdout.count('"completion_tokens"') == 2,
             "zvm chat reads a conversation from stdin: one answer per line, blank lines skipped",
             r.stdout[-1500:] + r.stderr)
        bench_checks(t, d, zvm, "tiny", "against llama-server")

        dead = os.path.join(d.tmp, "dead.sock")
        r = d.zvm("--socket", dead, "bench", "model:tiny", "--requests", "3", "--concurrency", "1", timeout=STEP)
        t.ok(r.returncode == 1 and re.search(r"^\s*1\s+0\s+3\s", r.stdout, re.M) and "3 failed" in r.stdout
             and "cannot reach" in r.stdout, "zvm bench on a dead socket: 3 failed requests counted and shown, exit 1",
             r.stdout + r.stderr)
        r = zvm("chat", "nosuch", "-p", "hi", timeout=60)
        t.ok(r.returncode == 3 and "nosuch" in r.stderr and "tiny" in r.stderr,
             "zvm chat of an unknown model: exit 3, naming it and the models there are", r.stderr)
    finally:
        p = getattr(d, "native_server", None)
        if p:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=30)


def vm_names(d):
    """The VMs' names, or ["?"] when zvm list fails (no VM is named so)."""
    r = d.zvm("--json", "list")
    vms = answer_of(r.stdout) if r.returncode == 0 else None
    return [v.get("name") for v in vms] if isinstance(vms, list) else ["?"]


def scenario_chat_zvmd(t, d):
    if not zvmd_serve.store_model(t, d, "tiny"):
        return
    r = d.zvm("template", "build", "llm", "--profile", "llm", timeout=3000)
    if not t.ok(r.returncode == 0, "zvm template build llm", r.stderr[-1500:]):
        return

    # Ctrl-C while the throwaway VM boots: it is deleted, exit 130.
    p = subprocess.Popen([os.path.join(zt.BUILD, "cli", "zvm"), "--socket", d.sock, "run", "--model", "tiny",
                          "--name", "sigvm"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    deadline = time.monotonic() + STEP
    while time.monotonic() < deadline and "sigvm" not in vm_names(d):
        time.sleep(0.2)
    time.sleep(1)
    p.send_signal(signal.SIGINT)
    try:
        out, err = p.communicate(timeout=STEP)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    t.ok(p.returncode == 130 and "sigvm" not in vm_names(d) and "?" not in vm_names(d),
         "zvm run, SIGINT while the VM boots: the VM is deleted, exit 130", f"{p.returncode} {err[-1500:]}")

    t0 = time.monotonic()
    r = d.zvm("run", "--model", "tiny", "--name", "runvm", "-p", "Hello", "--max-tokens", "4", "--json",
              timeout=900)
    a = answer_of(r.stdout)
    t.ok(r.returncode == 0 and answered(a, 4),
         f"zvm run --model tiny -p: a throwaway llm VM answers ({time.monotonic() - t0:.0f} s)", r.stdout + r.stderr)
    names = vm_names(d)
    t.ok("runvm" not in names and "?" not in names, "zvm run deleted its VM when the chat ended", names)

    # A FILE: added to the store as zvm model add does (under its name), then served.
    gguf = os.path.join(d.tmp, "filetiny.gguf")
    subprocess.run([MKMODEL, "generate", "--shape", "tiny", "--seed", "7", gguf], check=True, capture_output=True,
                   timeout=60)
    t0 = time.monotonic()
    r = d.zvm("run", "--model", gguf, "--name", "runfile", "-p", "Hello", "--max-tokens", "4", "--json",
              timeout=900)
    a = answer_of(r.stdout)
    t.ok(r.returncode == 0 and answered(a, 4),
         f"zvm run --model FILE.gguf -p: the file added, a throwaway llm VM answers ({time.monotonic() - t0:.0f} s)",
         r.stdout + r.stderr)
    m = answer_of(d.zvm("--json", "model", "show", "filetiny").stdout)
    t.ok(m.get("name") == "filetiny" and m.get("state") == "ready",
         "zvm run added the file to the model store as 'filetiny'", m)
    names = vm_names(d)
    t.ok("runfile" not in names and "?" not in names, "zvm run deleted that VM too", names)

    r = d.zvm("create", "cv", "--template", "llm", "--memory", "1024", "--cores", "2", "--no-ssh-keys",
              "--set", "model=tiny")
    d.request("POST", "/vms/cv/start")
    inf = zvmd_serve.wait_inference(d, "cv", lambda i: i.get("state") in ("ready", "failed"))
    if not t.ok(inf.get("state") == "ready", "an llm VM serving tiny is ready", inf):
        return
    for target, what in (("tiny", "the model route (/v1/chat/completions)"),
                         ("cv", "the VM's pass-through (/api/v1/vms/cv/v1/...)")):
        r = d.zvm("chat", target, "-p", "Hello", "--max-tokens", "4", "--json", timeout=STEP)
        a = answer_of(r.stdout)
        t.ok(r.returncode == 0 and answered(a, 4),
             f"zvm chat -p through zvmd, {what}: an answer (4 tokens, or fewer ending in stop)", r.stdout + r.stderr)
    bench_checks(t, d, d.zvm, "cv", "through zvmd")
    d.zvm("delete", "--force", "cv")
