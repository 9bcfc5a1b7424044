"""The llm_api scenario of test-zvmd.py: zvmd serves inference by itself.
Two llm VMs share one model disk; zvmd starts llama-server in each once its
agent is READY, follows it to ready, and answers the OpenAI-compatible API
on its unix socket: /v1/models, /v1/chat/completions and /v1/completions,
streamed and not, routed by model over both VMs; 404 for an unknown model;
a llama-server killed mid-stream gives the client an SSE error event (never a
silently cut stream), marks the VM and comes back; stopped VMs give 503 with
Retry-After. Random-weight models answer with <pad_N> tokens: the checks
count tokens, never text."""
import http.client
import json
import os
import socket
import subprocess
import threading
import time

import zvmtest as zt
from zvmd import UnixHTTPConnection

STEP = 300              # seconds any one wait may take under TCG


def store_model(t, d, name):
    """A generated tiny model in zvmd's model store under `name`, laid out
    as core/model-store.h says: the disk zvm-mkmodel makes in
    <data>/models/images and its record in names/. (`zvm model generate`
    is the user's way; this scenario tests serving, not the store.)
    Whether it worked."""
    tool = os.path.join(zt.BUILD, "daemon", "tools", "zvm-mkmodel")
    store = os.path.join(d.root, "var", "lib", "zvm", "models")
    gguf = os.path.join(d.tmp, "tiny.gguf")
    r = subprocess.run([tool, "generate", "--shape", "tiny", "--quant", "q8_0", gguf],
                       capture_output=True, text=True, timeout=60)
    if r.returncode == 0:
        r = subprocess.run([tool, "disk", gguf, os.path.join(store, "images")], capture_output=True, text=True,
                           timeout=120)
    disk = json.loads(r.stdout) if r.returncode == 0 else {}
    t.ok(r.returncode == 0 and os.path.exists(disk.get("image", "")),
         f"a generated tiny model on a model disk in the store ({disk.get('image_size')} bytes)", r.stderr)
    if not disk:
        return False
    os.makedirs(os.path.join(store, "names"), exist_ok=True)
    with open(os.path.join(store, "names", name + ".json"), "w") as f:
        json.dump({"name": name, "sha256": disk["sha256"], "image": disk["image"]}, f)
    return True


def api(d, method, path, body=None, timeout=STEP):
    """One request on zvmd's unix socket, path as given (no /api/v1 prefix):
    (status, headers, parsed JSON or raw text)."""
    conn = UnixHTTPConnection(d.sock, timeout=timeout)
    hdrs = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=hdrs)
    r = conn.getresponse()
    text = r.read().decode(errors="replace")
    conn.close()
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = text
    return r.status, dict(r.getheaders()), data


def sse(d, path, body, on_first=None, timeout=STEP):
    """A streamed request: (status, events as (event name, data) pairs).
    on_first() runs once the first data line has arrived."""
    conn = UnixHTTPConnection(d.sock, timeout=timeout)
    conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    events, name = [], "message"
    if r.status != 200:
        events.append(("http", r.read().decode(errors="replace")))
        conn.close()
        return r.status, events
    while True:
        try:
            line = r.readline()
        except (OSError, http.client.HTTPException) as e:
            events.append(("broken", repr(e)))
            break
        if not line:
            break
        line = line.decode(errors="replace").rstrip("\r\n")
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            events.append((name, line[5:].strip()))
            name = "message"
            if on_first:
                on_first()
                on_first = None
    conn.close()
    return r.status, events


def inference(d, vm):
    status, st = d.request("GET", f"/vms/{vm}/status")
    return (st or {}).get("inference") or {} if status == 200 else {}


def wait_inference(d, vm, pred, timeout=STEP):
    deadline = time.monotonic() + timeout
    inf = {}
    while time.monotonic() < deadline:
        inf = inference(d, vm)
        if pred(inf):
            return inf
        time.sleep(0.5)
    return inf


class Events:
    """GET /api/v1/events in a thread: the inference events, bounded."""

    def __init__(self, d):
        self.lines = []
        self.conn = UnixHTTPConnection(d.sock, timeout=STEP * 4)
        self.conn.request("GET", "/api/v1/events")
        self.sock = self.conn.sock      # http.client lets go of it for a Connection: close answer
        self.resp = self.conn.getresponse()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        try:
            while len(self.lines) < 20000:
                line = self.resp.readline()
                if not line:
                    return
                self.lines.append(line.decode(errors="replace").rstrip())
        except (OSError, ValueError):
            return

    def inference(self):
        out = []
        for i, line in enumerate(self.lines[:-1]):
            if line == "event: inference" and self.lines[i + 1].startswith("data: "):
                try:
                    out.append(json.loads(self.lines[i + 1][6:]))
                except ValueError:
                    pass
        return out

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()


CHAT = {"messages": [{"role": "user", "content": "Hello from zvm"}], "max_tokens": 8, "temperature": 0,
        "ignore_eos": True}


def check_answers(t, d, model):
    status, hdrs, models = api(d, "GET", "/v1/models")
    entry = next((m for m in (models or {}).get("data", []) if m.get("id") == model), {})
    t.ok(status == 200 and models.get("object") == "list" and entry.get("object") == "model"
         and entry.get("zvm", {}).get("ready") == 2,
         "GET /v1/models: OpenAI list format, the model served by 2 ready VMs", models)

    t0 = time.monotonic()
    status, _, ans = api(d, "POST", "/v1/chat/completions", dict(CHAT, model=model))
    usage = (ans or {}).get("usage", {}) if isinstance(ans, dict) else {}
    t.ok(status == 200 and usage.get("completion_tokens") == 8 and ans.get("choices"),
         f"POST /v1/chat/completions: 8 tokens in {time.monotonic() - t0:.1f} s", f"{status} {ans}")
    t.ok(isinstance(ans, dict) and ans.get("model") == model,
         f"the answer names the model as asked ({model!r}, llama-server's --alias), not the guest's file path",
         (ans or {}).get("model") if isinstance(ans, dict) else ans)

    status, events = sse(d, "/v1/chat/completions",
                         dict(CHAT, model=model, stream=True, stream_options={"include_usage": True}))
    usage = {}
    for name, data in events:
        if data.startswith("{"):
            usage = json.loads(data).get("usage") or usage
    t.ok(status == 200 and len(events) > 2 and events[-1] == ("message", "[DONE]")
         and usage.get("completion_tokens") == 8,
         f"streamed chat completion: {len(events)} SSE events ending in data: [DONE], usage says 8 tokens",
         f"{status} {events[-4:]} {usage}")

    status, _, ans = api(d, "POST", "/v1/completions",
                         {"model": model, "prompt": "Hello from zvm", "max_tokens": 8, "temperature": 0,
                          "ignore_eos": True})
    t.ok(status == 200 and (ans or {}).get("usage", {}).get("completion_tokens") == 8,
         "POST /v1/completions: 8 tokens", f"{status} {ans}")

    status, _, err = api(d, "POST", "/v1/chat/completions", dict(CHAT, model="no-such-model"))
    e = (err or {}).get("error", {}) if isinstance(err, dict) else {}
    t.ok(status == 404 and "no-such-model" in e.get("message", "") and e.get("type") and e.get("code"),
         "an unknown model: 404 naming it, OpenAI error shape {error: {message, type, code}}", f"{status} {err}")

    status, _, err = api(d, "POST", "/v1/chat/completions", {"messages": []})
    t.ok(status == 400 and (err or {}).get("error", {}).get("code") == "model_required",
         "no model: 400 model_required", f"{status} {err}")

    status, _, ans = api(d, "POST", "/api/v1/vms/sa/v1/chat/completions", dict(CHAT, model="whatever"))
    t.ok(status == 200 and (ans or {}).get("usage", {}).get("completion_tokens") == 8,
         "per-VM pass-through /api/v1/vms/sa/v1/chat/completions (the model field does not matter there)",
         f"{status} {ans}")


# The official openai npm client, pinned to 4.x (the newest need node >= 22;
# these machines have node 20), installed once into zvm's cache.
OPENAI_NPM = "openai@4"
OPENAI_JS = r"""
const OpenAI = require("openai");
(async () => {
  const c = new OpenAI({ baseURL: process.argv[2], apiKey: process.argv[3], maxRetries: 0, timeout: 120000 });
  const out = {};
  const msg = [{ role: "user", content: "Hello from the openai npm client" }];
  const a = await c.chat.completions.create({ model: process.argv[4], messages: msg, max_tokens: 8, ignore_eos: true });
  out.completion_tokens = a.usage.completion_tokens;
  const s = await c.chat.completions.create({ model: process.argv[4], messages: msg, max_tokens: 8, ignore_eos: true,
                                               stream: true, stream_options: { include_usage: true } });
  out.chunks = 0;
  for await (const ch of s) { out.chunks++; if (ch.usage) out.stream_tokens = ch.usage.completion_tokens; }
  try { await c.chat.completions.create({ model: "no-such-model", messages: msg }); }
  catch (e) { out.unknown_status = e.status; out.unknown_code = e.code; }
  console.log(JSON.stringify(out));
})().catch((e) => { console.log(JSON.stringify({ error: String(e) })); process.exit(1); });
"""


def openai_npm():
    """The directory holding node_modules/openai, installed on first use; None if npm failed."""
    cache = os.environ.get("ZVM_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "zvm")
    prefix = os.path.join(cache, "npm", OPENAI_NPM.replace("@", "-"))
    if os.path.exists(os.path.join(prefix, "node_modules", "openai", "package.json")):
        return prefix
    os.makedirs(prefix, exist_ok=True)
    r = subprocess.run(["npm", "install", "--prefix", prefix, "--no-audit", "--no-fund", OPENAI_NPM],
                       capture_output=True, text=True, timeout=300)
    return prefix if r.returncode == 0 else None


def check_tcp(t, d, model):
    """Over TCP a bearer token is needed (an operator's: inference uses the
    VMs); with one, OpenAI's own npm client gets a completion, a stream and
    a 404 from zvmd. The listener is --plain-http here: what TLS adds is
    tested by the tls_* scenarios, and a Node client would need zvmd's
    self-signed certificate as a CA."""
    r = d.zvm("token", "create", "--role", "operator", "--comment", "openai")
    token = r.stdout.strip().splitlines()[-1].split()[-1] if r.returncode == 0 and r.stdout.strip() else ""
    conn = http.client.HTTPConnection("127.0.0.1", d.tcp_port, timeout=STEP)
    conn.request("GET", "/v1/models")
    resp = conn.getresponse()
    resp.read()
    t.ok(resp.status == 401, f"TCP without a token: GET /v1/models is 401 ({resp.status})")
    conn.request("GET", "/v1/models", headers={"Authorization": f"Bearer {token}"})
    resp = conn.getresponse()
    models = json.loads(resp.read() or b"{}")
    conn.close()
    t.ok(resp.status == 200 and any(m.get("id") == model for m in models.get("data", [])),
         "TCP with a token: GET /v1/models lists the model", f"{resp.status} {models}")
    prefix = openai_npm()
    t.ok(prefix is not None, f"npm install {OPENAI_NPM} (once, into zvm's cache)")
    if not prefix:
        return
    script = os.path.join(d.tmp, "openai-client.js")
    with open(script, "w") as f:
        f.write(OPENAI_JS)
    r = subprocess.run(["node", script, f"http://127.0.0.1:{d.tcp_port}/v1", token, model], capture_output=True,
                       text=True, timeout=STEP, env=dict(os.environ, NODE_PATH=os.path.join(prefix, "node_modules")))
    try:
        out = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        out = {}
    t.ok(r.returncode == 0 and out.get("completion_tokens") == 8,
         "the openai npm client (4.x) over TCP with a token: a chat completion of 8 tokens",
         f"{r.returncode} {r.stdout[-800:]} {r.stderr[-800:]}")
    t.ok(out.get("chunks", 0) > 2 and out.get("stream_tokens") == 8,
         f"the openai npm client streams: {out.get('chunks')} chunks, usage says 8 tokens", out)
    t.ok(out.get("unknown_status") == 404 and out.get("unknown_code") == "model_not_found",
         "the openai npm client sees an unknown model as a 404 with code model_not_found", out)


def check_spread(t, d, model):
    """Concurrent requests go to both VMs (least in flight first)."""
    before = {vm: inference(d, vm).get("requests", 0) for vm in ("sa", "sb")}
    results = []

    def one():
        results.append(api(d, "POST", "/v1/chat/completions", dict(CHAT, model=model, max_tokens=4))[0])

    threads = [threading.Thread(target=one) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(STEP)
    after = {vm: inference(d, vm).get("requests", 0) for vm in ("sa", "sb")}
    grew = {vm: after[vm] - before[vm] for vm in after}
    t.ok(results.count(200) == 4 and all(n >= 1 for n in grew.values()),
         f"4 concurrent requests spread over both VMs: {grew}", f"{results} {before} {after}")
    inf = inference(d, "sa")
    t.ok(inf.get("generated_tokens", 0) > 0 and inf.get("prompt_tokens", 0) > 0
         and inf.get("latency_ms", {}).get("max", 0) > 0 and inf.get("in_flight") == 0,
         f"GET /vms/sa/status counts requests, tokens and latency: {json.dumps(inf)[:300]}", inf)
    r = d.zvm("status", "sa")
    t.ok(r.returncode == 0 and "inference" in r.stdout and "generated_tokens" in r.stdout,
         "zvm status prints the inference object", r.stdout[-1500:])


def check_queue(t, d, model):
    """20 requests at once for 2 VMs of one slot each: 2 run, 16 wait in the
    model's queue, the rest get 429 with Retry-After; every queued one is
    served."""
    results = []

    def one():
        try:
            status, hdrs, ans = api(d, "POST", "/v1/chat/completions", dict(CHAT, model=model, max_tokens=4))
        except OSError as e:
            status, hdrs, ans = 0, {}, repr(e)
        results.append((status, hdrs.get("Retry-After"), (ans or {}).get("error", {}).get("code")
                        if isinstance(ans, dict) else ans))

    threads = [threading.Thread(target=one) for _ in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(STEP)
    ok = [r for r in results if r[0] == 200]
    full = [r for r in results if r[0] == 429 and r[1] and r[2] == "queue_full"]
    t.ok(len(results) == 20 and len(ok) + len(full) == 20 and 1 <= len(full) <= 2 and len(ok) >= 18,
         f"20 requests at once, 2 VMs of 1 slot: {len(ok)} served (2 at once, the rest from the queue of 16), "
         f"{len(full)} refused with 429 queue_full and Retry-After", results)


def check_kill_mid_stream(t, d, model):
    """llama-server killed while it streams: the client gets an SSE error
    event, the VM is marked, the agent restarts the server, zvmd routes to
    it again once it is ready."""
    inf = wait_inference(d, "sa", lambda i: i.get("state") == "ready" and i.get("pid"))
    pid, errors = inf.get("pid"), inf.get("errors", 0)
    killed = {}

    def kill():
        killed["r"] = d.zvm("exec", "sa", "--", "kill", "-9", str(pid))

    body = {"model": model, "messages": [{"role": "user", "content": "go on"}], "max_tokens": 1500,
            "ignore_eos": True, "stream": True}
    status, events = sse(d, "/api/v1/vms/sa/v1/chat/completions", body, on_first=kill)
    names = [n for n, _ in events]
    err = next((json.loads(data) for n, data in events if n == "error"), {})
    t.ok(killed.get("r") is not None and killed["r"].returncode == 0,
         f"llama-server (pid {pid}) killed in the guest mid-stream", killed.get("r") and killed["r"].stderr)
    t.ok(status == 200 and "error" in names and ("message", "[DONE]") not in events
         and err.get("error", {}).get("message"),
         f"the client gets an SSE error event after {len(events) - 1} chunks, not a silently cut stream: "
         f"{err.get('error', {}).get('message', '')[:120]!r}", f"{status} {events[-3:]}")
    inf = inference(d, "sa")
    t.ok(inf.get("errors", 0) == errors + 1, "the failed request is counted as an error of the VM", inf)
    t0 = time.monotonic()
    inf = wait_inference(d, "sa", lambda i: i.get("state") == "ready" and i.get("restarts") == 1)
    t.ok(inf.get("state") == "ready" and inf.get("restarts") == 1 and inf.get("pid") != pid,
         f"the agent restarted llama-server (restarts 1) and zvmd routes to it again "
         f"({time.monotonic() - t0:.1f} s)", inf)
    status, _, ans = api(d, "POST", "/api/v1/vms/sa/v1/chat/completions", dict(CHAT, model=model, max_tokens=4))
    t.ok(status == 200 and (ans or {}).get("usage", {}).get("completion_tokens") == 4,
         "the restarted server answers", f"{status} {ans}")


def check_stopped(t, d, model):
    for vm in ("sa", "sb"):
        d.zvm("stop", vm)
    status, hdrs, err = api(d, "POST", "/v1/chat/completions", dict(CHAT, model=model))
    t.ok(status == 503 and hdrs.get("Retry-After") and (err or {}).get("error", {}).get("code") == "model_unavailable",
         f"both VMs stopped: 503 with Retry-After {hdrs.get('Retry-After')}", f"{status} {hdrs} {err}")
    status, _, models = api(d, "GET", "/v1/models")
    entry = next((m for m in (models or {}).get("data", []) if m.get("id") == model), {})
    t.ok(entry.get("zvm", {}).get("ready") == 0 and entry.get("zvm", {}).get("vms") == 2,
         "/v1/models still lists the model, with 0 ready VMs", models)
    st = d.request("GET", "/vms/sa/status")[1]
    t.ok("inference" in st and st["inference"] is None, "a stopped VM's status has inference: null", st)


def serve_api(t, d, create_vm, model):
    """create_vm(name) creates an llm VM serving `model` (config keys are the
    caller's); both are started here and followed by zvmd alone."""
    events = Events(d)
    for vm in ("sa", "sb"):
        create_vm(vm)
    t0 = time.monotonic()
    for vm in ("sa", "sb"):
        d.request("POST", f"/vms/{vm}/start")
    ready = {vm: wait_inference(d, vm, lambda i: i.get("state") in ("ready", "failed"), timeout=STEP * 2)
             for vm in ("sa", "sb")}
    t.ok(all(i.get("state") == "ready" for i in ready.values()),
         f"zvmd started llama-server in both VMs by itself: ready {time.monotonic() - t0:.1f} s after start "
         f"(llm-start → ready: {[i.get('ready_ms') for i in ready.values()]} ms)", ready)
    if not all(i.get("state") == "ready" for i in ready.values()):
        for vm in ("sa", "sb"):
            d.zvm("stop", vm)
        events.close()
        return
    check_answers(t, d, model)
    check_tcp(t, d, model)
    check_spread(t, d, model)
    check_queue(t, d, model)
    check_kill_mid_stream(t, d, model)
    check_stopped(t, d, model)
    time.sleep(0.5)
    seen = events.inference()
    events.close()
    states = {(e.get("name"), (e.get("inference") or {}).get("state")) for e in seen}
    t.ok(("sa", "ready") in states and ("sb", "ready") in states and ("sa", None) in states,
         f"/events carries inference events ({len(seen)}: ready, counts, and null when stopped)",
         sorted(states, key=str))
