"""The fleet benchmark behind scripts/bench-fleet: N `shroud agent` processes, then
N `bao agent` processes with the equivalent templates, against one OpenBao (real
server with raft storage, so it can be stopped and started with its tokens and
leases intact) and one PostgreSQL 15 with dynamic credentials, in the same run.

For each fleet it prints: total RSS once all have rendered; Vault requests per
minute in steady state; then, after OpenBao is stopped for OUTAGE seconds and
started again, the agents' requests per 100 ms (are the retries spread, or a
synchronized storm?) and the time until every agent has fresh credentials (a
successful lease renewal or credential read after the restart).

Requests are counted from OpenBao's file audit device; each agent logs in with an
AppRole role of its own, so every audit entry names its agent
(`auth.metadata.role_name`, or the login path's role for logins).
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from calendar import timegm
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "examples"))

from common import free_port  # noqa: E402
from postgres import Postgres  # noqa: E402


def env_int(name, default):
    return int(os.environ.get(name, default))


SIZES = [int(n) for n in os.environ.get("FLEET_SIZES", "50 200").split()]
STEADY = env_int("STEADY_SECONDS", 60)
OUTAGE = env_int("OUTAGE_SECONDS", 20)
LEASE_TTL = env_int("LEASE_TTL_SECONDS", 30)
RECOVERY_LIMIT = env_int("RECOVERY_LIMIT_SECONDS", 180)
HIST = env_int("HISTOGRAM_SECONDS", 20)
SHROUD = os.environ["SHROUD"]
BAO = os.environ.get("BAO", "bao")


def say(*parts):
    print("==>", *parts, file=sys.stderr, flush=True)


class Bao:
    """A real OpenBao server (raft storage, one unseal key) that survives a restart."""

    def __init__(self, work: Path):
        self.work = work
        self.port = free_port()
        self.addr = f"http://127.0.0.1:{self.port}"
        self.config = work / "bao.hcl"
        (work / "bao-data").mkdir()
        cluster = free_port()
        self.config.write_text(
            f'storage "raft" {{ path = "{work / "bao-data"}"\n node_id = "n1" }}\n'
            f'listener "tcp" {{ address = "127.0.0.1:{self.port}"\n tls_disable = true\n'
            f' cluster_address = "127.0.0.1:{cluster}" }}\n'
            f'api_addr = "{self.addr}"\ncluster_addr = "http://127.0.0.1:{cluster}"\n'
            # OpenBao 2.x takes audit devices only from its configuration.
            f'audit "file" "bench" {{ options {{ file_path = "{work / "audit.log"}" }} }}\n')
        self.proc = None
        self.root = ""
        self.key = ""

    def api(self, method, path, data=None, token=None):
        body = json.dumps(data).encode() if data is not None else None
        req = urllib.request.Request(f"{self.addr}/v1/{path}", data=body, method=method,
                                     headers={"X-Vault-Token": token if token is not None else self.root})
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read()
        return json.loads(text) if text else {}

    def health(self):
        try:
            with urllib.request.urlopen(f"{self.addr}/v1/sys/health", timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return None

    def start(self):
        log = open(self.work / "bao.log", "a")
        self.proc = subprocess.Popen([BAO, "server", f"-config={self.config}", "-log-level=warn"],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while self.health() not in (200, 501, 503):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                sys.exit("OpenBao did not start: see " + str(self.work / "bao.log"))
            time.sleep(0.05)
        if not self.root:
            init = self.api("PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1}, token="")
            self.root, self.key = init["root_token"], init["keys_base64"][0]
        self.api("PUT", "sys/unseal", {"key": self.key}, token="")
        while self.health() != 200:
            time.sleep(0.02)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def setup(bao: Bao, pg: Postgres, work: Path):
    bao.api("POST", "sys/mounts/secret", {"type": "kv", "options": {"version": "2"}})
    # A fresh kv mount answers 'upgrading' for a moment.
    for _ in range(100):
        try:
            bao.api("POST", "secret/data/app", {"data": {"api_key": "fleet-api-key-0123456789"}})
            break
        except urllib.error.HTTPError:
            time.sleep(0.1)
    bao.api("POST", "sys/mounts/database", {"type": "database"})
    bao.api("POST", "database/config/pg", {
        "plugin_name": "postgresql-database-plugin", "allowed_roles": "app",
        "connection_url": f"postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{pg.port}/postgres?sslmode=disable",
        "username": pg.admin_user, "password": pg.admin_password})
    bao.api("POST", "database/roles/app", {
        "db_name": "pg", "default_ttl": f"{LEASE_TTL}s", "max_ttl": "24h",
        "creation_statements": "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"})
    bao.api("PUT", "sys/policies/acl/app", {"policy": """
path "database/creds/app" { capabilities = ["read"] }
path "secret/data/app"    { capabilities = ["read"] }
path "sys/leases/*"       { capabilities = ["update"] }
"""})
    bao.api("POST", "sys/auth/approle", {"type": "approle"})


def approle(bao: Bao, name: str, d: Path):
    bao.api("POST", f"auth/approle/role/{name}", {"token_policies": "app", "token_ttl": "1h"})
    (d / "role-id").write_text(bao.api("GET", f"auth/approle/role/{name}/role-id")["data"]["role_id"])
    (d / "secret-id").write_text(bao.api("POST", f"auth/approle/role/{name}/secret-id")["data"]["secret_id"])


def shroud_agent(bao: Bao, name: str, d: Path, out: Path):
    (out / name).mkdir()
    (d / "shroud.toml").write_text(f"""
[vault]
address = "{bao.addr}"
[auth]
method = "approle"
role_id_file = "{d / 'role-id'}"
secret_id_file = "{d / 'secret-id'}"
[output]
dir = "{out / name}"
[state]
dir = "{out / (name + '-state')}"
[lifecycle]
startup_timeout = "5m"
[[secret]]
name = "db"
path = "database/creds/app"
kind = "dynamic"
template = "{{{{ username }}}}:{{{{ password }}}}"
[[secret]]
name = "kv"
path = "secret/app"
kind = "kv2"
field = "api_key"
""")
    return [SHROUD, "agent", "--config", str(d / "shroud.toml")]


def bao_agent(bao: Bao, name: str, d: Path, out: Path):
    (out / name).mkdir()
    (d / "agent.hcl").write_text(f"""
vault {{ address = "{bao.addr}" }}
auto_auth {{
  method "approle" {{
    config = {{
      role_id_file_path = "{d / 'role-id'}"
      secret_id_file_path = "{d / 'secret-id'}"
      remove_secret_id_file_after_reading = false
    }}
  }}
}}
template {{
  destination = "{out / name / 'db'}"
  contents = "{{{{ with secret \\"database/creds/app\\" }}}}{{{{ .Data.username }}}}:{{{{ .Data.password }}}}{{{{ end }}}}"
}}
template {{
  destination = "{out / name / 'kv'}"
  contents = "{{{{ with secret \\"secret/data/app\\" }}}}{{{{ .Data.data.api_key }}}}{{{{ end }}}}"
}}
""")
    return [BAO, "agent", f"-config={d / 'agent.hcl'}", "-log-level=warn"]


TIME = re.compile(r"(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)(\.\d+)?Z")


class Audit:
    """OpenBao's audit log, read incrementally: (time, kind, role, path, ok)."""

    def __init__(self, path: Path):
        self.path, self.offset, self.entries = path, 0, []

    def read(self):
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        for line in data[:end].splitlines():
            e = json.loads(line)
            m = TIME.match(e["time"])
            t = timegm(tuple(int(x) for x in m.groups()[:6])) + float(m.group(7) or 0)
            req = e.get("request") or {}
            path = req.get("path", "")
            role = ((e.get("auth") or {}).get("metadata") or {}).get("role_name")
            if role is None and path == "auth/approle/login":
                role = "(login)"
            self.entries.append((t, e["type"], role or "", path, not e.get("error")))
        return self.entries


def rss_kib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_fleet(kind, n, bao: Bao, work: Path, out: Path, audit: Audit):
    prefix = {"shroud": "s", "bao": "b"}[kind] + f"{n}x"
    names = [f"{prefix}{i}" for i in range(n)]
    say(f"{kind}: {n} agents")
    cmds = []
    for name in names:
        d = work / name
        d.mkdir()
        approle(bao, name, d)
        cmds.append((shroud_agent if kind == "shroud" else bao_agent)(bao, name, d, out))
    procs = [subprocess.Popen(c, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=open(work / f"{name}.log", "w")) for c, name in zip(cmds, names)]
    started = time.monotonic()
    try:
        while not all((out / nm / "db").exists() and (out / nm / "kv").exists() for nm in names):
            dead = [nm for p, nm in zip(procs, names) if p.poll() is not None]
            if dead:
                sys.exit(f"{kind}: {dead[0]} exited: see {work / (dead[0] + '.log')}")
            if time.monotonic() - started > 600:
                sys.exit(f"{kind}: not every agent rendered within 10 min")
            time.sleep(0.2)
        render_all = time.monotonic() - started
        time.sleep(5)
        rss = sum(rss_kib(p.pid) for p in procs)

        def mine(e):
            return e[2].startswith(prefix) or (e[2] == "(login)")

        say(f"{kind}: all rendered in {render_all:.1f}s; steady state for {STEADY}s")
        t0 = time.time()
        time.sleep(STEADY)
        t1 = time.time()
        entries = audit.read()
        steady = sum(1 for e in entries if e[1] == "request" and t0 <= e[0] < t1 and mine(e))

        say(f"{kind}: OpenBao down for {OUTAGE}s")
        bao.stop()
        down = time.time()
        time.sleep(OUTAGE)
        bao.start()
        back = time.time()
        say(f"{kind}: OpenBao back after {back - down:.1f}s; waiting for every agent's fresh credentials")
        fresh = {}
        while len(fresh) < n and time.time() - back < RECOVERY_LIMIT:
            time.sleep(1)
            for t, typ, role, path, ok in audit.read():
                if (t >= back and typ == "response" and ok and role.startswith(prefix)
                        and path in ("sys/leases/renew", "database/creds/app") and role not in fresh):
                    fresh[role] = t
        entries = audit.read()
        after = [e[0] - back for e in entries if e[1] == "request" and e[0] >= back and mine(e)]
        hist = [0] * (HIST * 10)
        for dt in after:
            if dt < HIST:
                hist[int(dt * 10)] += 1
        recovered = max(fresh.values()) - back if len(fresh) == n else None
        return {
            "rss": rss, "render_all": render_all, "steady_per_min": steady * 60 / (t1 - t0),
            "recovered": recovered, "fresh": len(fresh), "hist": hist,
            "retries": sum(hist), "peak": max(hist),
        }
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def report(n, s, b):
    print(f"\nfleet of {n} agents, one OpenBao (raft storage), dynamic PostgreSQL credentials "
          f"(lease TTL {LEASE_TTL}s) + one kv2 value each")
    print(f"{'':44} {'shroud agent':>14} {'bao agent':>14}")
    rows = [
        ("time until all rendered", f"{s['render_all']:.1f} s", f"{b['render_all']:.1f} s"),
        ("total RSS", f"{s['rss'] / 1024:.0f} MiB", f"{b['rss'] / 1024:.0f} MiB"),
        ("RSS per agent", f"{s['rss'] / 1024 / n:.1f} MiB", f"{b['rss'] / 1024 / n:.1f} MiB"),
        (f"Vault requests/min, steady state ({STEADY}s)", f"{s['steady_per_min']:.0f}", f"{b['steady_per_min']:.0f}"),
        (f"requests in the {HIST} s after a {OUTAGE}s outage", f"{s['retries']}", f"{b['retries']}"),
        ("peak requests per 100 ms after it", f"{s['peak']}", f"{b['peak']}"),
        ("until every agent has fresh credentials",
         f"{s['recovered']:.1f} s" if s["recovered"] is not None else f">{RECOVERY_LIMIT}s ({s['fresh']}/{n})",
         f"{b['recovered']:.1f} s" if b["recovered"] is not None else f">{RECOVERY_LIMIT}s ({b['fresh']}/{n})"),
    ]
    for label, a, c in rows:
        print(f"{label:44} {a:>14} {c:>14}")
    print("requests per 100 ms after OpenBao is back (one row per second):")
    print(f"{'':8} {'shroud agent':<52} bao agent")
    for sec in range(HIST):
        a = " ".join(f"{x:4d}" for x in s["hist"][sec * 10:sec * 10 + 10])
        c = " ".join(f"{x:4d}" for x in b["hist"][sec * 10:sec * 10 + 10])
        print(f"  {sec:2d}-{sec + 1:<2d}s {a}   {c}")


INOTIFY = Path("/proc/sys/fs/inotify/max_user_instances")


def raise_inotify_limit():
    """Each shroud agent watches its output dir with one inotify instance, and
    the kernel allows 128 per uid by default (on a Kubernetes node that is per
    uid across every pod): raised for the run, restored after. Returns the old value."""
    old = int(INOTIFY.read_text())
    want = max(SIZES) + 256
    if old < want:
        INOTIFY.write_text(str(want))
        say(f"fs.inotify.max_user_instances {old} -> {want} for this run")
    return old


def main():
    old_inotify = raise_inotify_limit()
    work = Path(tempfile.mkdtemp(prefix="shroud-fleet-"))
    os.chmod(work, 0o755)
    out = work / "out"
    out.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m,mode=0755", "tmpfs", str(out)], check=True)
    pg = Postgres()
    bao = Bao(work)
    try:
        pg.start()
        bao.start()
        setup(bao, pg, work)
        audit = Audit(work / "audit.log")
        results = []
        for n in SIZES:
            s = run_fleet("shroud", n, bao, work, out, audit)
            b = run_fleet("bao", n, bao, work, out, audit)
            results.append((n, s, b))
            report(n, s, b)
        print("\n(same run, same OpenBao and PostgreSQL; audit log: " + str(work / "audit.log") + ")")
    finally:
        if bao.proc and bao.proc.poll() is None:
            bao.stop()
        pg.stop()
        subprocess.run(["umount", "-l", str(out)])
        if int(INOTIFY.read_text()) != old_inotify:
            INOTIFY.write_text(str(old_inotify))
        if not os.environ.get("KEEP"):
            subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    main()
