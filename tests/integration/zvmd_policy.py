"""Issue 10 item 2, the storage and network policy: a private zvmd with a
zvm.conf that declares storage, a bridge, a VLAN and quotas; an unprivileged
user in group zvm (made here, removed after) sends each request over the
real unix socket (and once through the real CLI), and root sends the same.
No VM boots: refusals are decided at create, PATCH and start."""
import json
import os
import pwd
import grp
import subprocess

import zvmtest as zt
from zvmd import ZVM, Zvmd
from zvmd_tls import https, make_token

USER = f"zvmpol{os.getpid() % 100000}"


class GroupMember:
    """A user in group zvm for the length of the scenario (group zvm too,
    if the host has none), removed on exit."""

    def __enter__(self):
        self.made_group = False
        try:
            grp.getgrnam("zvm")
        except KeyError:
            subprocess.run(["groupadd", "--system", "zvm"], check=True, timeout=30)
            self.made_group = True
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "-G", "zvm", USER],
                       check=True, timeout=30)
        pw = pwd.getpwnam(USER)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        return self

    def __exit__(self, *exc):
        subprocess.run(["userdel", USER], timeout=30)
        if self.made_group:
            subprocess.run(["groupdel", "zvm"], timeout=30)

    def run(self, argv, timeout=60):
        return subprocess.run(["setpriv", "--reuid", USER, "--regid", str(self.gid), "--init-groups", "--"] + argv,
                              capture_output=True, text=True, timeout=timeout)

    def request(self, sock, method, path, body=None):
        """(status, JSON body) of one request sent as this user."""
        code = ("import http.client, json, socket, sys\n"
                "class C(http.client.HTTPConnection):\n"
                "    def connect(self):\n"
                "        self.sock = socket.socket(socket.AF_UNIX); self.sock.settimeout(90)\n"
                f"        self.sock.connect({sock!r})\n"
                "c = C('localhost', timeout=90)\n"
                f"body = {json.dumps(body)!r}\n"
                f"c.request({method!r}, '/api/v1' + {path!r}, body=None if body == 'null' else body,\n"
                "          headers={'Content-Type': 'application/json'})\n"
                "r = c.getresponse()\n"
                "print(json.dumps([r.status, json.loads(r.read() or b'null')]))\n")
        r = self.run(["/usr/bin/python3", "-c", code], timeout=120)
        try:
            return tuple(json.loads(r.stdout))
        except ValueError:
            return (None, r.stdout + r.stderr)


def write_conf(d, store, bridge):
    etc = os.path.join(d.root, "etc", "zvm")
    os.makedirs(etc, exist_ok=True)
    with open(os.path.join(etc, "zvm.conf"), "w") as f:
        f.write("# written by the policy scenario\n"
                "ZVMD_ARGS=--these-are-systemd's\n"
                f"ZVM_STORAGE=fast={store}\n"
                f"ZVM_BRIDGES={bridge}\n"
                "ZVM_VLANS=10 20-29\n"
                "ZVM_HOSTFWD_PORTS=20000-20009\n"
                "ZVM_MAX_MEMORY=256\n"
                "ZVM_MAX_CORES=2\n"
                "ZVM_MAX_DISK_SIZE=64M\n")


def make_storage(d):
    store = os.path.join(d.root, "srv", "fast")
    os.makedirs(os.path.join(store, "sub"))
    for name, size in (("ok.img", 1 << 20), ("big.img", 128 << 20)):
        with open(os.path.join(store, name), "wb") as f:
            f.truncate(size)            # sparse: costs nothing
    os.symlink("/etc/passwd", os.path.join(store, "out.img"))           # out of storage
    os.symlink("ok.img", os.path.join(store, "in.img"))                 # within, still a symlink
    os.symlink(os.path.join(d.root, "etc"), os.path.join(store, "sub", "etc"))   # a directory symlink
    local = os.path.join(d.root, "var", "lib", "zvm", "images")
    os.makedirs(local, exist_ok=True)
    with open(os.path.join(local, "a.img"), "wb") as f:
        f.truncate(1 << 20)
    return store


def a_block_device():
    for dev in ("/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/loop0"):
        if os.path.exists(dev):
            return dev
    return None


def scenario_policy(t, d):
    if os.geteuid() != 0:
        raise zt.Skip("the policy scenario creates a user in group zvm: needs root")
    store = make_storage(d)
    bridge = "zvmpolbr0"
    write_conf(d, store, bridge)
    with GroupMember() as u:
        d.start()                       # after group zvm exists: the socket is chgrp'd to it
        for p in (d.root, os.path.join(d.root, "run"), os.path.join(d.root, "run", "zvm")):
            os.chmod(p, os.stat(p).st_mode | 0o011)
        run_policy(t, d, u, store, bridge)
    run_tcp(t, d, store)
    run_bad_conf(t)


def conf_text(d, vmid):
    with open(os.path.join(d.root, "etc", "zvm", "vms", f"{vmid}.conf")) as f:
        return f.read()


def run_policy(t, d, u, store, bridge):
    status, who = u.request(d.sock, "GET", "/whoami")
    t.ok(status == 200 and who.get("role") == "local" and who.get("uid") == u.uid,
         f"{USER} in group zvm reaches the socket as role local", (status, who))
    status, vm = d.request("POST", "/vms", {"name": "pol", "memory": 128})
    t.ok(status == 201, "root creates VM pol", (status, vm))
    vmid = vm.get("vmid")
    dev = a_block_device()
    out = os.path.join(store, "out.img")
    # (key, value, HTTP status for the member, words its message must hold, root's status)
    cases = [
        ("disk0", dev or "/dev/sda", 403, [f"disk0: {dev or '/dev/sda'} is outside the declared storage",
                                           f"local={d.root}/var/lib/zvm/images", f"fast={store}",
                                           "raw paths need root"], 200 if dev else 400),
        ("disk0", "/etc/shadow", 403, ["disk0: /etc/shadow is outside the declared storage"], 200),
        ("kernel", "/etc/shadow", 403, ["kernel: /etc/shadow is outside the declared storage"], 200),
        ("initrd", "/etc/shadow", 403, ["initrd: /etc/shadow is outside the declared storage"], 200),
        ("rootfs", "/etc/shadow", 403, ["rootfs: /etc/shadow is outside the declared storage"], 200),
        ("model", "/etc/shadow", 400, ["model: must be a model name from the store, not a path"], 400),
        ("disk1", out, 403, [f"disk1: {out} is or passes through a symlink, refused in storage fast={store}"], 200),
        ("disk1", os.path.join(store, "in.img"), 403, ["is or passes through a symlink"], 200),
        ("initrd", os.path.join(store, "sub", "etc", "zvm", "zvm.conf"), 403,
         ["is or passes through a symlink"], 200),
        ("disk2", f"{store}/../../etc/passwd", 403, ["has a '.', '..' or empty component"], 400),
        ("net0", "bridge=vmbr9", 403, ["net0: bridge vmbr9 is not declared", f"(bridges: {bridge})",
                                       "need root or ZVM_BRIDGES"], 200),
        ("net0", f"bridge={bridge},tag=99", 403, ["net0: VLAN 99 is not declared", "ZVM_VLANS"], 200),
        ("net1", "user,hostfwd=tcp:20010-22", 403, ["net1: hostfwd= host port 20010 is not declared",
                                                   "ZVM_HOSTFWD_PORTS"], 200),
        ("net1", "user,hostfwd=tcp:0.0.0.0:20000-22", 403,
         ["net1: hostfwd= address 0.0.0.0 is not a loopback address; other addresses need root"], 200),
        ("net0", "user,mac=01:00:5e:00:00:01", 400, ["mac:", "01:00:5e:00:00:01", "is a multicast address"], 400),
        ("memory", "512", 403, ["memory: 512 MiB is over the quota of 256 MiB per VM (ZVM_MAX_MEMORY"], 200),
        ("cores", "4", 403, ["cores: 4 is over the quota of 2 per VM (ZVM_MAX_CORES"], 200),
        ("rootfs", "tiny,size=128M", 403, ["rootfs: size=128M is over the quota of 64 MiB per disk"], 200),
        ("disk0", os.path.join(store, "big.img"), 403,
         [f"disk0: {store}/big.img is 128 MiB, over the quota of 64 MiB per disk"], 200),
    ]
    refused = []
    for key, value, want, words, root_want in cases:
        before = conf_text(d, vmid)
        status, body = u.request(d.sock, "PATCH", f"/vms/{vmid}", {key: value})
        msg = body.get("message", "") if isinstance(body, dict) else str(body)
        t.ok(status == want and all(w in msg for w in words) and conf_text(d, vmid) == before,
             f"member: {key}={value} refused with {want}, the reason, nothing written", (status, body))
        refused.append(f"{key}={value}: {status} {msg}")
        if key == "model" or "mac=" in value:
            t.ok(isinstance(body, dict) and body.get("key") in (key, "net0"), "  the error names the key", body)
        # Root's same request: allowed by the policy (only the schema and
        # the host, for root as before, can refuse it).
        status, body = d.request("PATCH", f"/vms/{vmid}", {key: value})
        t.ok(status == root_want, f"root: {key}={value} → {root_want}", (status, body))
        # Put it back for the next case (root's change stays otherwise).
        if status == 200:
            d.request("PATCH", f"/vms/{vmid}", {key: None} if key not in ("memory", "cores", "rootfs")
                      else {key: {"memory": "128", "cores": "1", "rootfs": "tiny"}[key]})
    t.diag("refused inputs:\n" + "\n".join(refused))

    # Allowed for the member: paths in storage, the declared bridge and VLAN, within quota.
    allowed = {"disk0": os.path.join(store, "ok.img"), "disk1": os.path.join(d.root, "var/lib/zvm/images/a.img"),
               "net0": f"bridge={bridge},tag=25", "net1": "user,hostfwd=tcp:127.0.0.1:20009-22",
               "memory": 256, "cores": 2, "rootfs": "tiny,size=64M"}
    status, body = u.request(d.sock, "PATCH", f"/vms/{vmid}", allowed)
    t.ok(status == 200, "member: paths in storage, the declared bridge, VLAN and forwarded port, quotas met: allowed", (status, body))

    # Create: refused whole, no config file made.
    vms_dir = os.path.join(d.root, "etc", "zvm", "vms")
    files = sorted(os.listdir(vms_dir))
    status, body = u.request(d.sock, "POST", "/vms", {"name": "evil", "memory": 128, "rootfs": "tiny,size=64M",
                                                       "disk0": "/etc/shadow"})
    t.ok(status == 403 and "disk0: /etc/shadow is outside" in body.get("message", "") and
         sorted(os.listdir(vms_dir)) == files, "member: create with disk0=/etc/shadow refused, no file written",
         (status, body))
    status, body = u.request(d.sock, "POST", "/vms", {"name": "fat"})
    t.ok(status == 403 and "memory: 256" not in body.get("message", "x") and "rootfs: size=1024M" in body.get("message", ""),
         "member: create with the default 1G writable layer over a 64M quota: refused", (status, body))
    status, fine = u.request(d.sock, "POST", "/vms", {"name": "fine", "memory": 128, "rootfs": "tiny,size=64M"})
    t.ok(status == 201, "member: create within the policy works", (status, fine))
    run_member_vm(t, d, u, fine.get("vmid") if isinstance(fine, dict) else None)

    # Start: root gives pol a raw disk; the member may not start it.
    status, body = d.request("PATCH", f"/vms/{vmid}", {"disk2": "/etc/hostname"})
    t.ok(status == 200, "root adds a raw path disk2=/etc/hostname", (status, body))
    status, body = u.request(d.sock, "POST", f"/vms/{vmid}/start")
    t.ok(status == 403 and f"cannot start VM {vmid}: disk2: /etc/hostname is outside" in body.get("message", ""),
         "member: start of root's config with a raw path refused", (status, body))
    status, st = d.request("GET", f"/vms/{vmid}/status")
    t.ok(st.get("state") == "stopped", "  the VM stays stopped", st)

    # The CLI as the member: the same refusal, on stderr, non-zero exit.
    before = conf_text(d, vmid)
    r = u.run([ZVM, "--root", d.root, "config", "set", "pol", "disk3=/etc/shadow"])
    t.ok(r.returncode != 0 and "disk3: /etc/shadow is outside the declared storage" in r.stderr and
         conf_text(d, vmid) == before, "zvm config set as the member: refused with the reason", (r.returncode, r.stderr))


def run_tcp(t, d, store):
    """An admin token is not root: the policy holds it as it holds group zvm."""
    token = make_token(t, d, role="admin", comment="policy")
    status, vm = https(d, "POST", "/vms", token, {"name": "tcp", "memory": 128, "rootfs": "tiny,size=64M"})
    t.ok(status == 201, "admin token: create within the policy", (status, vm))
    vmid = vm.get("vmid")
    before = conf_text(d, vmid)
    status, body = https(d, "PATCH", f"/vms/{vmid}", token, {"disk0": "/etc/shadow"})
    t.ok(status == 403 and body.get("key") == "disk0" and
         "disk0: /etc/shadow is outside the declared storage" in body.get("message", "") and conf_text(d, vmid) == before,
         "admin token: disk0=/etc/shadow refused as for group zvm (raw paths are root's), nothing written", (status, body))
    status, body = https(d, "PATCH", f"/vms/{vmid}", token, {"memory": 1024})
    t.ok(status == 403 and "ZVM_MAX_MEMORY" in body.get("message", ""), "admin token: over-quota memory refused",
         (status, body))
    status, body = https(d, "PATCH", f"/vms/{vmid}", token, {"disk0": os.path.join(store, "ok.img")})
    t.ok(status == 200, "admin token: a disk in storage is allowed", (status, body))


def run_bad_conf(t):
    """A zvm.conf zvmd cannot parse stops it, naming the line: it never runs
    without the policy an administrator wrote."""
    bad = Zvmd(t)
    etc = os.path.join(bad.root, "etc", "zvm")
    os.makedirs(etc)
    with open(os.path.join(etc, "zvm.conf"), "w") as f:
        f.write("ZVM_STORAGE=a=/srv/a\nZVM_VLANS=5000\n")
    try:
        bad.start()
        t.ok(False, "zvmd with an invalid zvm.conf refused to start", bad.log_text())
    except RuntimeError as e:
        t.ok("zvm.conf line 2: ZVM_VLANS: '5000' is not a VLAN id" in str(e),
             "zvmd with an invalid zvm.conf refuses to start, naming the line", str(e)[-400:])
    finally:
        bad.cleanup()


def run_member_vm(t, d, u, vmid):
    """The member starts a VM within the policy (a real boot); root then
    gives it a raw disk, pending: the member's reboot is refused before the
    shutdown, so the VM keeps running."""
    if not vmid:
        return
    status, body = u.request(d.sock, "POST", f"/vms/{vmid}/start")
    t.ok(status == 200 and body.get("state") in ("running", "starting"),
         "member: start of its own VM within the policy", (status, body))
    st = d.wait_state(vmid, ("running",), timeout=90)
    t.ok(st and st.get("state") == "running", "  it runs", st)
    status, body = d.request("PATCH", f"/vms/{vmid}", {"disk0": "/etc/hostname"})
    t.ok(status == 200 and "disk0" in body.get("pending_restart", []),
         "root: disk0=/etc/hostname on the running VM, pending", (status, body))
    status, body = u.request(d.sock, "POST", f"/vms/{vmid}/reboot")
    t.ok(status == 403 and "disk0: /etc/hostname is outside the declared storage" in body.get("message", ""),
         "member: reboot into root's raw disk refused", (status, body))
    status, st = d.request("GET", f"/vms/{vmid}/status")
    t.ok(st.get("state") == "running", "  and the VM was not shut down", st)
    status, body = u.request(d.sock, "POST", f"/vms/{vmid}/stop")
    t.ok(status == 200, "member: stop works", (status, body))
