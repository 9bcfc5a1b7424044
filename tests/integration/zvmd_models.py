"""The models scenario of test-zvmd.py: the model store through zvm and the
REST API of a real zvmd, with real files, real zvm-mkmodel jobs and a real
tiny guest that mounts the model disk."""
import json
import os
import struct
import subprocess
import time

import zvmtest as zt

MKMODEL = os.path.join(zt.BUILD, "daemon", "tools", "zvm-mkmodel")


def store_files(d):
    """Every file and directory under <data>/models, relative, sorted."""
    top = os.path.join(d.root, "var", "lib", "zvm", "models")
    out = []
    for base, dirs, files in os.walk(top):
        for n in dirs + files:
            out.append(os.path.relpath(os.path.join(base, n), top))
    return sorted(out)


def images(d):
    return [f for f in store_files(d) if f.startswith("images/") and f.endswith(".img")]


def wait_model(d, name, timeout=120):
    """GET /models/NAME until it is no longer being added (bounded)."""
    deadline = time.monotonic() + timeout
    m = {}
    while time.monotonic() < deadline:
        status, m = d.request("GET", f"/models/{name}")
        if status != 200 or m.get("state") != "adding":
            return m
        time.sleep(0.2)
    return m


def bad_ggufs(tmp, good):
    """(file, what zvm must say) for files that are not usable GGUFs."""
    data = open(good, "rb").read()
    cases = []

    def put(name, content, reason):
        path = os.path.join(tmp, name)
        with open(path, "wb") as f:
            f.write(content)
        cases.append((path, reason))
    put("notgguf.gguf", b"PK\x03\x04" + os.urandom(4096), "not a GGUF file")
    put("truncated.gguf", data[:100], "truncated")
    put("version.gguf", data[:4] + struct.pack("<I", 7) + data[8:], "unsupported GGUF version 7")
    # The header and directory are intact, the tensor data is cut short: the
    # directory's sizes lie about the file.
    put("short.gguf", data[:len(data) - 4096], "past the file's end")
    return cases


def scenario_models(t, d):
    """Generate, add twice (one image), list/show, bad GGUFs refused with the
    reason and nothing left, a VM with model: NAME sees /models/model.gguf,
    rm refused while a VM's config uses it, allowed once it does not, a
    cancelled add and a zvmd restart leave nothing behind."""
    r = d.zvm("model", "generate", "tiny", "--shape", "tiny", "--quant", "q8_0", timeout=180)
    t.ok(r.returncode == 0 and "Model tiny is ready" in r.stdout, "zvm model generate tiny --shape tiny",
         r.stdout + r.stderr)
    status, m = d.request("GET", "/models/tiny")
    t.ok(status == 200 and m.get("state") == "ready" and m.get("generated") is True and m.get("shape") == "tiny"
         and m.get("architecture") == "llama" and len(m.get("sha256", "")) == 64,
         "GET /models/tiny: ready, generated, llama, a sha256", m)

    gguf = os.path.join(d.tmp, "file.gguf")
    g = subprocess.run([MKMODEL, "generate", "--shape", "tiny", "--seed", "7", gguf], capture_output=True,
                       text=True, timeout=60)
    t.ok(g.returncode == 0, "a GGUF file made outside zvmd", g.stderr)
    for name in ("first", "second"):
        r = d.zvm("model", "add", gguf, "--name", name, timeout=180)
        t.ok(r.returncode == 0 and f"Model {name} is ready" in r.stdout, f"zvm model add FILE --name {name}",
             r.stdout + r.stderr)
    _, first = d.request("GET", "/models/first")
    _, second = d.request("GET", "/models/second")
    t.ok(first.get("sha256") and first.get("sha256") == second.get("sha256") and first.get("sha256") != m.get("sha256"),
         "the same file under two names: one sha256, another than the generated model's", (first, second))
    t.ok(len(images(d)) == 2, f"two distinct files, two images in the store: {images(d)}", store_files(d))
    r = d.zvm("model", "add", gguf, "--name", "first")
    t.ok(r.returncode == 4 and "exists" in r.stderr, "adding a taken name is refused (exit 4)", r.stderr)
    # curl waits for "100 Continue" (as zvm does): the refusal comes first.
    c = subprocess.run(["curl", "-sS", "--unix-socket", d.sock, "-o", "/dev/null", "-w", "%{http_code} %{size_upload}",
                        "-H", "Expect: 100-continue", "-T", gguf, "http://zvm/api/v1/models/first"],
                       capture_output=True, text=True, timeout=60)
    t.ok(c.stdout.split()[:2] == ["409", "0"], f"… before its body is sent (HTTP, bytes sent: {c.stdout})",
         c.stdout + c.stderr)

    r = d.zvm("model", "list")
    lines = r.stdout.splitlines()
    t.ok(r.returncode == 0 and lines and lines[0].split()[:4] == ["NAME", "STATE", "ARCH", "PARAMS"]
         and any(ln.split()[0] == "tiny" and "llama" in ln and "Q8_0" in ln and m["sha256"][:12] in ln
                 for ln in lines[1:]),
         "zvm model list: a table with name, arch, quant, sha256", r.stdout)
    r = d.zvm("model", "show", "first", "--json")
    shown = json.loads(r.stdout) if r.returncode == 0 else {}
    t.ok(shown.get("name") == "first" and shown.get("context_length") == 2048 and shown.get("vms") == [],
         "zvm model show --json", r.stdout + r.stderr)

    before = store_files(d)
    for path, reason in bad_ggufs(d.tmp, gguf):
        r = d.zvm("model", "add", path, "--name", "bad", timeout=120)
        why = (r.stderr.strip().splitlines() or [""])[-1]
        t.ok(r.returncode != 0 and reason in r.stderr, f"{os.path.basename(path)} refused: {why}",
             r.stdout + r.stderr)
        t.ok(store_files(d) == before, "… and nothing of it is left in the store", store_files(d))
        d.zvm("model", "rm", "bad")
    status, body = d.request("PUT", "/models/empty", raw=b"", headers={"Content-Type": "application/octet-stream"})
    t.ok(status == 400, "an empty upload is refused", body)
    status, body = d.request("PUT", "/models/x%2Fy", raw=b"GGUF", headers={"Content-Type": "application/octet-stream"})
    t.ok(status == 400 and store_files(d) == before, "a name with '/' is refused, nothing kept", body)

    # Cancelled while zvm-mkmodel runs: nothing is left.
    status, body = d.request("POST", "/models", {"name": "big", "shape": "qwen2.5-0.5b", "quant": "q4_0"})
    t.ok(status == 202 and body.get("state") == "adding", "POST /models generate qwen2.5-0.5b: 202 adding", body)
    time.sleep(1)
    status, body = d.request("DELETE", "/models/big")
    t.ok(status == 200, "DELETE /models/big while it is being generated cancels it", body)
    t.ok(d.request("GET", "/models/big")[0] == 404 and store_files(d) == before,
         "the cancelled add leaves nothing", store_files(d))

    # A VM uses it by name.
    r = d.zvm("create", "mv", "--memory", "256", "--no-ssh-keys", "--set", "model=nope")
    t.ok(r.returncode == 2 and 'model: "nope" is not in the model store' in r.stderr,
         "model: an unknown name is refused when set, naming it", r.stderr)
    r = d.zvm("create", "mv", "--memory", "256", "--no-ssh-keys", "--set", "model=tiny")
    t.ok(r.returncode == 0, "create a tiny VM with model: tiny", r.stderr)
    d.request("POST", "/vms/mv/start")
    st = {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and st.get("agent") != "ready":
        st = d.request("GET", "/vms/mv/status")[1]
        time.sleep(0.3)
    t.ok(st.get("agent") == "ready", "the VM with the model disk boots to agent READY", st)
    r = d.zvm("exec", "mv", "--", "sh", "-c", "ls -ln /models; grep ' /models ' /proc/mounts", timeout=60)
    t.ok(r.returncode == 0 and f" {m['size']} " in r.stdout and "model.gguf" in r.stdout and " ro," in r.stdout,
         "the guest sees /models/model.gguf at its size, mounted read-only", r.stdout + r.stderr)

    r = d.zvm("model", "rm", "tiny")
    t.ok(r.returncode == 4 and "mv" in r.stderr, "zvm model rm of a model in use is refused, naming the VM: "
         + (r.stderr.strip().splitlines() or [""])[-1], r.stderr)
    _, lst = d.request("GET", "/models")
    t.ok([x.get("vms") for x in lst if x.get("name") == "tiny"] == [["mv"]], "GET /models names the VM using it", lst)
    d.zvm("stop", "mv")
    d.wait_state("mv", ["stopped"])
    r = d.zvm("config", "unset", "mv", "model")
    t.ok(r.returncode == 0, "detach: config unset model", r.stderr)
    r = d.zvm("model", "rm", "tiny")
    t.ok(r.returncode == 0 and d.request("GET", "/models/tiny")[0] == 404, "rm after detach works", r.stderr)
    t.ok(len(images(d)) == 1, "its image went with it; the shared one stays", store_files(d))
    d.zvm("model", "rm", "first")
    t.ok(len(images(d)) == 1, "an image two names share stays while one is left", store_files(d))
    d.zvm("model", "rm", "second")
    t.ok(images(d) == [], "… and goes with the last", store_files(d))

    # What a killed zvmd could leave is swept at start; records stay.
    r = d.zvm("model", "add", gguf, "--name", "keep", timeout=180)
    top = os.path.join(d.root, "var", "lib", "zvm", "models")
    for rel in ("tmp/keep.9.gguf", "names/.#x.json.tmp", "images/" + "0" * 64 + ".img", "images/.x.img.tmp"):
        open(os.path.join(top, rel), "w").close()
    os.makedirs(os.path.join(top, "images", ".staging-1"))
    open(os.path.join(top, "images", ".staging-1", "model.gguf"), "w").close()
    d.terminate()
    d.start()
    left = store_files(d)
    t.ok(left == ["images", "images/" + first["sha256"] + ".img", "names", "names/keep.json", "tmp"],
         "a restarted zvmd sweeps leftovers, keeps the model", left)
    t.ok(wait_model(d, "keep").get("state") == "ready", "the model is still ready after the restart")
