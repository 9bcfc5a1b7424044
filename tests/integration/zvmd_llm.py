"""The llm_serve scenario of test-zvmd.py (kept apart: that file is long
enough): the agent's llm supervisor runs the real llama-server on a model
disk, reports it in info, restarts it when it is killed, and bridges vsock
port 8080 (AGENT_LLM_PORT) to it. zvmd starts llama-server itself after
READY (see zvmd_serve.py for what it then serves); this test stops that and
drives the agent itself over hybrid vsock with the VM's secret."""
import http.client
import json
import os
import time

import zvmtest as zt

AGENT_PORT = 1024
LLM_PORT = 8080         # AGENT_LLM_PORT, api/agent-contract.h
STEP = 120              # seconds any one step may take under TCG


def wait_inference(d, vm, pred, timeout=STEP):
    """zvmd's inference object of the VM (GET /vms/{vm}/status) once pred holds, or the last one."""
    deadline = time.monotonic() + timeout
    inf = {}
    while time.monotonic() < deadline:
        inf = (d.request("GET", f"/vms/{vm}/status")[1] or {}).get("inference") or {}
        if pred(inf):
            return inf
        time.sleep(0.5)
    return inf


def hybrid_connect(uds, port, timeout=STEP):
    return zt.hybrid_connect(uds, port, timeout)


class Agent:
    """One authenticated agent connection: JSON lines, each read bounded."""

    def __init__(self, uds, secret):
        self.s = hybrid_connect(uds, AGENT_PORT)
        self.buf = b""
        self.n = 0
        auth = self.call({"op": "auth", "secret": secret})
        if auth.get("ok") is not True:
            raise PermissionError(f"agent auth: {auth}")

    def call(self, req, timeout=STEP):
        self.n += 1
        req = dict(req, id=self.n) if req.get("op") != "auth" else req
        self.s.settimeout(timeout)
        self.s.sendall(json.dumps(req).encode() + b"\n")
        while b"\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("agent closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def llm(self):
        return self.call({"op": "info"}).get("llm") or {}

    def wait_llm(self, pred, timeout):
        deadline = time.monotonic() + timeout
        st = {}
        while time.monotonic() < deadline:
            st = self.llm()
            if pred(st):
                return st
            time.sleep(0.5)
        return st

    def close(self):
        self.s.close()


class HybridHTTP(http.client.HTTPConnection):
    """http.client over a hybrid-vsock stream to the guest's port."""

    def __init__(self, uds, port=LLM_PORT, timeout=STEP):
        super().__init__("localhost", timeout=timeout)
        self.uds, self.vport = uds, port

    def connect(self):
        self.sock = hybrid_connect(self.uds, self.vport, self.timeout)


def post(conn, path, body):
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    try:
        return r.status, json.loads(data)
    except ValueError:
        return r.status, {"raw": data[:500].decode(errors="replace")}


def stream(uds, body):
    """POST a streamed chat completion; returns (status, data lines, usage)."""
    conn = HybridHTTP(uds)
    conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    r = conn.getresponse()
    events, usage = [], None
    while r.status == 200:
        line = r.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data: "):
            continue
        events.append(line[6:])
        if line == b"data: [DONE]":
            break
        chunk = json.loads(line[6:])
        usage = chunk.get("usage") or usage
    conn.close()
    return r.status, events, usage


def http_checks(t, d, uds, vm):
    """The OpenAI-compatible endpoints through the bridge."""
    chat = {"messages": [{"role": "user", "content": "Hello from zvm"}], "max_tokens": 8, "temperature": 0,
            "ignore_eos": True}
    conn = HybridHTTP(uds)
    t0 = time.monotonic()
    status, ans = post(conn, "/v1/chat/completions", chat)
    took = time.monotonic() - t0
    timings, usage = ans.get("timings", {}), ans.get("usage", {})
    t.ok(status == 200 and usage.get("completion_tokens") == 8 and ans.get("choices"),
         f"POST /v1/chat/completions through the bridge: 8 tokens in {took:.1f} s "
         f"({timings.get('prompt_per_second', 0):.1f} prompt tok/s, "
         f"{timings.get('predicted_per_second', 0):.1f} generated tok/s)", f"{status} {ans}")
    # The same connection again: HTTP/1.1 keep-alive passes through.
    conn.request("GET", "/health")
    r = conn.getresponse()
    health = r.read()
    t.ok(r.status == 200 and b"ok" in health, "keep-alive: a second request on the same bridged connection",
         f"{r.status} {health!r}")
    conn.close()

    status, events, usage = stream(uds, dict(chat, stream=True, stream_options={"include_usage": True}))
    t.ok(status == 200 and events and events[-1] == b"[DONE]" and (usage or {}).get("completion_tokens") == 8,
         f"streamed chat completion: {len(events)} SSE events ending in data: [DONE], usage says 8 tokens",
         f"{status} {events[-3:]} {usage}")

    req = json.dumps({"prompt": "Hello from zvm", "max_tokens": 8, "temperature": 0, "ignore_eos": True})
    raw = (f"POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
           f"Connection: close\r\nContent-Length: {len(req)}\r\n\r\n{req}")
    r = d.zvm("vsock-proxy", vm, str(LLM_PORT), input=raw, timeout=STEP)
    # zvm's text-mode output has turned the HTTP CRLFs into LFs.
    head, _, body = r.stdout.replace("\r\n", "\n").partition("\n\n")
    try:
        comp = json.loads(body)
    except ValueError:
        comp = {}
    t.ok(r.returncode == 0 and head.startswith("HTTP/1.1 200") and comp.get("usage", {}).get("completion_tokens") == 8,
         "POST /v1/completions through zvm vsock-proxy NAME 8080, Connection: close",
         f"{r.returncode} {r.stdout[-800:]!r} {r.stderr[-400:]!r}")


def serve(t, d, vm, vmid):
    run = os.path.join(d.root, "run", "zvm", "vms", str(vmid))
    uds = os.path.join(run, "vsock.sock")
    secret = open(os.path.join(run, "agent.secret")).read().strip()
    # zvmd starts llama-server by itself (model: in the config): let it,
    # then take the supervisor over with llm-stop; zvmd follows and stays out.
    inf = wait_inference(d, vm, lambda i: i.get("state") in ("loading", "ready", "failed"))
    t.ok(inf.get("state") in ("loading", "ready"), "zvmd sent llm-start after READY by itself", inf)
    a = Agent(uds, secret)
    r = a.call({"op": "llm-stop"})
    inf = wait_inference(d, vm, lambda i: i.get("state") == "stopped", timeout=60)
    t.ok(r.get("ok") and a.llm().get("state") == "stopped" and inf.get("state") == "stopped",
         "llm-stop through the agent: info says stopped, and zvmd's inference state follows", f"{r} {inf}")
    r = a.call({"op": "llm-start", "model": "/models/nope.gguf"})
    t.ok(r.get("error", {}).get("code") == "ENOENT" and "/models/nope.gguf" in r["error"]["message"],
         "llm-start of a missing model: ENOENT naming it", r)
    cfg = {"op": "llm-start", "model": "/models/model.gguf", "threads": 2, "ctx": 512, "parallel": 1, "batch": 64}
    t0 = time.monotonic()
    r = a.call(cfg)
    llm = r.get("llm", {})
    t.ok(r.get("ok") and llm.get("state") == "loading" and llm.get("pid"), "llm-start: loading, with a pid", r)
    again = a.call(cfg).get("llm", {})
    t.ok(again.get("pid") == llm.get("pid") and again.get("restarts") == 0,
         "llm-start again with the same config changes nothing", again)
    st = a.wait_llm(lambda s: s.get("state") in ("ready", "failed"), 300)
    t.ok(st.get("state") == "ready",
         f"info: llama-server ready, {st.get('ready_ms')} ms from start to /health 200 "
         f"({time.monotonic() - t0:.1f} s from llm-start, incl. polling)", st)
    if st.get("state") != "ready":
        return
    http_checks(t, d, uds, vm)

    pid = st["pid"]
    r = d.zvm("exec", vm, "--", "kill", "-9", str(pid))
    t0 = time.monotonic()
    st = a.wait_llm(lambda s: s.get("restarts") == 1 and s.get("state") == "ready", 300)
    t.ok(r.returncode == 0 and st.get("restarts") == 1 and st.get("state") == "ready" and st.get("pid") != pid
         and st.get("last_signal") == "SIGKILL",
         f"llama-server killed in the guest: restarted (restarts 1, new pid), ready again in "
         f"{time.monotonic() - t0:.1f} s", f"{r.stderr!r} {st}")
    status, ans = post(HybridHTTP(uds), "/v1/chat/completions",
                       {"messages": [{"role": "user", "content": "again"}], "max_tokens": 4, "ignore_eos": True})
    t.ok(status == 200 and ans.get("usage", {}).get("completion_tokens") == 4,
         "the restarted server answers through the bridge", f"{status} {ans}")

    r = a.call({"op": "llm-stop"})
    t.ok(r.get("ok") and r.get("llm", {}).get("state") == "stopped" and r["llm"].get("pid") is None,
         "llm-stop: stopped, no pid", r)
    gone = d.zvm("exec", vm, "--", "sh", "-c", f"kill -0 {st.get('pid')} 2>/dev/null && echo alive || echo gone")
    t.ok(gone.stdout.strip() == "gone", "llama-server is gone from the guest", gone.stdout)
    try:
        s = hybrid_connect(uds, LLM_PORT, timeout=10)
        got = s.recv(100)
        s.close()
    except (OSError, ConnectionRefusedError) as e:
        got = repr(e).encode()
    t.ok(not got.startswith(b"HTTP"), "after llm-stop nothing answers on vsock port 8080", got)
    r = a.call({"op": "llm-stop"})
    t.ok(r.get("ok") and r.get("llm", {}).get("state") == "stopped", "llm-stop again: still ok (idempotent)", r)
    a.close()
