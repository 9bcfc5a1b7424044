"""The TCP listener's TLS, roles and bounds (issue 10, items 3 and 4), kept
apart from test-zvmd.py: a real zvmd with --listen over real TCP, the real
CLI, no VM booted (a VM that exists is enough to be refused a start)."""
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import time

AUTH_DEADLINE = 10      # daemon/http/http-server.h: HTTP_TCP_AUTH_DEADLINE_SEC
PER_IP_MAX = 16         # HTTP_TCP_PER_IP_MAX


def tls_dir(d):
    return os.path.join(d.root, "var", "lib", "zvm", "tls")


def tls_context(d):
    """Trusts exactly zvmd's own certificate, host name (127.0.0.1) checked."""
    ctx = ssl.create_default_context(cafile=os.path.join(tls_dir(d), "cert.pem"))
    return ctx


def https(d, method, path, token=None, body=None, source=None, timeout=10):
    """One request over TLS; (status, parsed body)."""
    c = http.client.HTTPSConnection("127.0.0.1", d.tcp_port, timeout=timeout, context=tls_context(d),
                                    source_address=(source, 0) if source else None)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body)
        headers["Content-Type"] = "application/json"
    try:
        c.request(method, "/api/v1" + path, body=data, headers=headers)
        resp = c.getresponse()
        text = resp.read().decode(errors="replace")
    finally:
        c.close()
    try:
        return resp.status, json.loads(text) if text else None
    except ValueError:
        return resp.status, text


def make_token(t, d, role=None, expires_in=None, comment="t"):
    args = ["token", "create", "--comment", comment]
    if role:
        args += ["--role", role]
    if expires_in:
        args += ["--expires-in", expires_in]
    r = d.zvm(*args)
    t.ok(r.returncode == 0 and r.stdout.strip(), f"token create {role or '(default role)'}", r.stderr)
    return r.stdout.strip().splitlines()[-1].split()[-1]


def zvm_tcp(d, token_file, *args, known_hosts=None, extra=(), env_extra=None):
    env = dict(os.environ, ZVM_KNOWN_HOSTS=known_hosts or os.path.join(d.tmp, "known_hosts"))
    env.pop("ZVM_TOKEN", None)
    env.update(env_extra or {})
    cmd = ["--url", f"https://127.0.0.1:{d.tcp_port}"] + list(extra)
    if token_file:
        cmd += ["--token-file", token_file]
    return d.zvm(*cmd, *args, env=env, timeout=60)


def logged_fingerprint(d):
    m = re.search(r"certificate key fingerprint (SHA256:[A-Za-z0-9+/]+)", d.log_text())
    return m.group(1) if m else None


def scenario_tls_listener(t, d):
    """--listen speaks TLS with zvmd's own certificate; plain HTTP is refused; zvm pins the key."""
    cert, key = os.path.join(tls_dir(d), "cert.pem"), os.path.join(tls_dir(d), "key.pem")
    t.ok(os.path.exists(cert) and os.path.exists(key), "zvmd made cert.pem and key.pem on first use")
    t.ok(os.stat(key).st_mode & 0o777 == 0o600, f"key.pem is 0600 ({oct(os.stat(key).st_mode & 0o777)})")
    fp = logged_fingerprint(d)
    t.ok(fp is not None, f"zvmd logs the key fingerprint ({fp})")

    token = make_token(t, d, role="read-only")
    token_file = os.path.join(d.tmp, "token")
    with open(token_file, "w") as f:
        f.write(token + "\n")
    os.chmod(token_file, 0o600)

    status, body = https(d, "GET", "/vms", token)
    t.ok(status == 200, f"HTTPS with a valid token → 200 ({status})", body)

    # Plain HTTP on the TLS port, with a valid token: no HTTP answer at all.
    with socket.create_connection(("127.0.0.1", d.tcp_port), timeout=10) as s:
        s.sendall(f"GET /api/v1/vms HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
        got = b""
        try:
            while len(got) < 4096:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except (socket.timeout, ConnectionResetError):
            pass
    t.ok(not got.startswith(b"HTTP/"), f"plain HTTP on the TLS listener gets no HTTP answer ({got[:16]!r})")

    kh = os.path.join(d.tmp, "known_hosts")
    r = zvm_tcp(d, token_file, "list", known_hosts=kh)
    t.ok(r.returncode == 0, "zvm --url https:// --token-file list works (first contact)", r.stderr)
    t.ok("Pinned" in r.stderr and fp and fp in r.stderr, "  and says it pinned the key, with the fingerprint", r.stderr)
    pinned = open(kh).read() if os.path.exists(kh) else ""
    t.ok(f"127.0.0.1:{d.tcp_port} {fp}\n" == pinned, f"  known_hosts holds host:port and zvmd's fingerprint ({pinned.strip()})")
    r = zvm_tcp(d, token_file, "list", known_hosts=kh)
    t.ok(r.returncode == 0 and "Pinned" not in r.stderr, "second contact: the pin matches, nothing new pinned", r.stderr)
    r = zvm_tcp(d, None, "list", known_hosts=kh, env_extra={"ZVM_TOKEN_FILE": token_file})
    t.ok(r.returncode == 0, "the token from $ZVM_TOKEN_FILE (nothing secret in argv)", r.stderr)

    # A different key pinned for this host:port: refused before any request.
    other = "SHA256:" + "A" * 43
    with open(kh, "w") as f:
        f.write(f"127.0.0.1:{d.tcp_port} {other}\n")
    r = zvm_tcp(d, token_file, "list", known_hosts=kh)
    t.ok(r.returncode != 0 and "NOT the one pinned" in r.stderr and kh in r.stderr,
         "a pinned-fingerprint mismatch is refused, naming the file", r.stderr)
    t.ok("VMID" not in r.stdout, "  and prints no answer", r.stdout)
    t.ok(open(kh).read() == f"127.0.0.1:{d.tcp_port} {other}\n", "  the pin is left as it was")

    r = zvm_tcp(d, token_file, "list", known_hosts=kh, extra=["--ca", cert])
    t.ok(r.returncode == 0, "--ca zvmd's certificate: verified as a CA, no pin used", r.stderr)
    r = zvm_tcp(d, token_file, "list", known_hosts=kh, extra=["--ca", "/etc/ssl/certs/ca-certificates.crt"])
    t.ok(r.returncode != 0, "--ca with CAs that did not sign it: refused", r.stderr)
    r = zvm_tcp(d, token_file, "list", known_hosts=kh, extra=["--insecure"])
    t.ok(r.returncode == 0 and "--insecure" in r.stderr, "--insecure works and warns", r.stderr)


def scenario_tls_roles(t, d):
    """Token roles and expiry over TCP; token management only on the unix socket."""
    ro = make_token(t, d, role="read-only", comment="ro")
    op = make_token(t, d, role="operator", comment="op")
    admin = make_token(t, d, role="admin", comment="admin")
    default = make_token(t, d, comment="default")

    status, vm = d.request("POST", "/vms", {"name": "r1", "memory": 128})
    t.ok(status == 201, f"a VM to be refused (created on the unix socket, not started) ({status})", vm)

    for tok, role in ((ro, "read-only"), (op, "operator"), (admin, "admin"), (default, "read-only")):
        status, body = https(d, "GET", "/whoami", tok)
        t.ok(status == 200 and body == {"role": role, "transport": "tcp"}, f"whoami over TCP: {role}", body)

    status, body = https(d, "GET", "/vms", ro)
    t.ok(status == 200 and [v["name"] for v in body] == ["r1"], f"read-only can list ({status})", body)
    status, body = https(d, "POST", "/vms/r1/start", ro)
    t.ok(status == 403 and body.get("error") == "Forbidden" and "operator" in body.get("message", ""),
         f"read-only cannot start a VM: 403 naming the role needed ({status})", body)
    status, body = d.request("GET", "/vms/r1")
    t.ok(body.get("state") == "stopped", "  and the VM stayed stopped", body)
    status, body = https(d, "GET", "/vms/r1/files?path=/etc/hostname", ro)
    t.ok(status == 403, f"read-only cannot read guest files ({status})", body)
    status, body = https(d, "POST", "/vms", ro, body={"name": "r2", "memory": 128})
    t.ok(status == 403, f"read-only cannot create ({status})", body)
    status, body = https(d, "POST", "/vms", op, body={"name": "r2", "memory": 128})
    t.ok(status == 403, f"operator cannot create ({status})", body)
    status, body = https(d, "DELETE", "/vms/r1", op)
    t.ok(status == 403, f"operator cannot delete ({status})", body)
    # The operator gets past the role check (what follows needs no boot):
    status, body = https(d, "POST", "/vms/nosuchvm/start", op)
    t.ok(status == 404, f"operator may start: an unknown VM is 404, not 403 ({status})", body)
    status, body = https(d, "POST", "/vms/r1/stop", op)
    t.ok(status != 403, f"operator may stop: the stopped VM answers {status}, not 403", body)
    status, body = https(d, "POST", "/vms/r1/stop", ro)
    t.ok(status == 403, f"read-only may not stop ({status})", body)
    status, body = https(d, "POST", "/vms", admin, body={"name": "r2", "memory": 128})
    t.ok(status == 201, f"admin can create ({status})", body)
    status, body = https(d, "DELETE", "/vms/r2", admin)
    t.ok(status == 200, f"admin can delete ({status})", body)

    for tok, role in ((ro, "read-only"), (admin, "admin")):
        status, body = https(d, "POST", "/tokens", tok, body={"role": "admin"})
        t.ok(status == 403 and body.get("error") == "Forbidden", f"token creation over TCP refused, {role} token ({status})", body)
        status, body = https(d, "GET", "/tokens", tok)
        t.ok(status == 403, f"token list over TCP refused, {role} token ({status})", body)
    status, body = d.request("GET", "/tokens")
    t.ok(status == 200 and len(body) == 4, "still 4 tokens (listed on the unix socket)", body)
    roles = sorted(x.get("role") for x in body)
    t.ok(roles == ["admin", "operator", "read-only", "read-only"], f"  with their roles {roles}", body)

    status, body = d.request("POST", "/tokens", {"role": "root"})
    t.ok(status == 400 and body.get("key") == "role", f"an unknown role → 400 ({status})", body)
    status, body = d.request("POST", "/tokens", {"expires": int(time.time()) - 10})
    t.ok(status == 400 and body.get("key") == "expires", f"an expiry in the past → 400 ({status})", body)

    # An expiring token: works, then 401 once expired.
    exp = make_token(t, d, role="admin", expires_in="4s", comment="short")
    status, body = https(d, "GET", "/vms", exp)
    t.ok(status == 200, f"a token before its expiry → 200 ({status})", body)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        status, body = https(d, "GET", "/vms", exp)
        if status != 200:
            break
        time.sleep(0.5)
    t.ok(status == 401 and "expired" in str(body), f"an expired token → 401, saying it expired ({status})", body)
    status, body = d.request("GET", "/tokens")
    t.ok(any(x.get("comment") == "short" and isinstance(x.get("expires"), int) for x in body),
         "  the token list shows its expiry", body)


def hold_idle(source, port, n):
    """n TCP connections from source that never send a byte."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.settimeout(5)
        s.bind((source, 0))
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            s.close()
            continue
        socks.append(s)
    return socks


def count_closed(socks, wait):
    """How many of socks the server has closed (EOF or reset), waiting up to wait s each."""
    closed = 0
    for s in socks:
        s.settimeout(wait)
        try:
            if s.recv(1) == b"":
                closed += 1
        except (ConnectionResetError, BrokenPipeError):
            closed += 1
        except socket.timeout:
            pass
        wait = 0.01 if wait > 0.01 else wait
    return closed


def scenario_tls_slowloris(t, d):
    """300 idle connections from one client neither lock out others nor outlast the auth deadline."""
    token = make_token(t, d, role="read-only")

    attack = hold_idle("127.0.0.2", d.tcp_port, 300)
    t.ok(len(attack) == 300, f"300 idle connections from 127.0.0.2 connected ({len(attack)})")
    time.sleep(1)
    start = time.monotonic()
    status, body = https(d, "GET", "/vms", token, source="127.0.0.1")
    took = time.monotonic() - start
    t.ok(status == 200 and took < 5, f"an authenticated client from 127.0.0.1 is served at once ({status}, {took:.2f}s)", body)
    dropped = count_closed(attack, 2)
    t.ok(dropped >= 300 - PER_IP_MAX, f"all but {PER_IP_MAX} (the per-IP limit) were dropped at once ({dropped})")
    # The rest are dropped by the auth deadline, however long they wait.
    time.sleep(AUTH_DEADLINE + 1)
    dropped += count_closed([s for s in attack if s.fileno() >= 0], 5)
    remaining = 0
    for s in attack:
        s.settimeout(0.01)
        try:
            if s.recv(1) != b"":
                remaining += 1
        except socket.timeout:
            remaining += 1
        except OSError:
            pass
    t.ok(remaining == 0, f"after the {AUTH_DEADLINE}s auth deadline none is left open ({remaining})")
    for s in attack:
        s.close()

    # The same client address as the attacker: it gets in once the deadline
    # has freed the per-IP slots.
    attack = hold_idle("127.0.0.1", d.tcp_port, 300)
    time.sleep(0.5)
    start = time.monotonic()
    status = None
    while time.monotonic() - start < AUTH_DEADLINE + 10:
        try:
            status, body = https(d, "GET", "/vms", token, source="127.0.0.1", timeout=5)
            if status == 200:
                break
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.5)
    took = time.monotonic() - start
    t.ok(status == 200 and took < AUTH_DEADLINE + 10,
         f"from the flooding address itself, served within the deadline + margin ({status}, {took:.1f}s)")
    for s in attack:
        s.close()
    status, body = d.request("GET", "/host")
    t.ok(status == 200, "the unix socket answered throughout", body)


def scenario_unix_peer(t, d):
    """The unix socket knows its peer: uid 0 is root, anyone else the socket let in is local."""
    status, body = d.request("GET", "/whoami")
    t.ok(status == 200 and body == {"role": "root", "transport": "unix", "uid": 0}
         if os.geteuid() == 0 else body.get("role") == "local", "whoami as ourselves", body)
    if os.geteuid() != 0:
        return
    # Let uid 65534 reach the socket: traverse the test root, and be in the
    # socket's group (it is 0660).
    sock_gid = os.stat(d.sock).st_gid
    for p in (d.root, os.path.join(d.root, "run"), os.path.join(d.root, "run", "zvm")):
        os.chmod(p, os.stat(p).st_mode | 0o011)
    code = ("import os, socket, sys\n"
            f"os.setgroups([{sock_gid}]); os.setgid({sock_gid}); os.setuid(65534)\n"
            "s = socket.socket(socket.AF_UNIX); s.settimeout(10)\n"
            f"s.connect({d.sock!r})\n"
            "s.sendall(b'GET /api/v1/whoami HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n')\n"
            "b = b''\n"
            "while True:\n"
            "    c = s.recv(4096)\n"
            "    if not c: break\n"
            "    b += c\n"
            "sys.stdout.write(b.split(b'\\r\\n\\r\\n', 1)[1].decode())\n")
    r = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True, timeout=30)
    try:
        body = json.loads(r.stdout)
    except ValueError:
        body = None
    t.ok(r.returncode == 0 and body == {"role": "local", "transport": "unix", "uid": 65534},
         "uid 65534 in the socket's group: role local, its uid from SO_PEERCRED", (r.stdout, r.stderr))
    # Token management is local's to do; what the storage policy keeps
    # from it is the policy scenario's (zvmd_policy.py).
