"""A private PostgreSQL 15 cluster on a free 127.0.0.1 port, run as the `postgres`
user, with every DDL statement logged (so a test can see the roles OpenBao creates
and drops)."""

import os
import pwd
import re
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

from common import Failed, Missing, free_port, log

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


class Postgres:
    def __init__(self):
        for tool in ("initdb", "pg_ctl", "psql"):
            if not (PG_BIN / tool).is_file():
                raise Missing(f"{PG_BIN / tool} missing: apt-get install postgresql-15 (or set PG_BIN)")
        try:
            self.pw_entry = pwd.getpwnam("postgres")
        except KeyError:
            raise Missing("no `postgres` user: apt-get install postgresql-15")
        self.port = free_port()
        self.admin_user = "postgres"
        self.admin_password = secrets.token_urlsafe(18)
        self.dir = Path(tempfile.mkdtemp(prefix="shroud-pg-"))
        self.data = self.dir / "data"
        self.logfile = self.dir / "postgres.log"
        self.started = False

    def _as_postgres(self, cmd, **kw):
        uid, gid = self.pw_entry.pw_uid, self.pw_entry.pw_gid

        def demote():
            os.setgid(gid)
            os.setuid(uid)

        return subprocess.run(cmd, capture_output=True, text=True, preexec_fn=demote, timeout=120, **kw)

    def start(self):
        os.chown(self.dir, self.pw_entry.pw_uid, self.pw_entry.pw_gid)
        os.chmod(self.dir, 0o700)
        pwfile = self.dir / "pw"
        pwfile.write_text(self.admin_password + "\n")
        os.chown(pwfile, self.pw_entry.pw_uid, self.pw_entry.pw_gid)
        r = self._as_postgres([
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", self.admin_user,
            "--pwfile", str(pwfile), "--auth-local=trust", "--auth-host=scram-sha-256",
        ])
        pwfile.unlink()
        if r.returncode != 0:
            raise Failed(f"initdb failed: {r.stderr}")
        opts = (f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                f"-c unix_socket_directories={self.dir} -c log_statement=ddl "
                "-c log_line_prefix='%m [%p] '")
        r = self._as_postgres([
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.logfile),
            "-o", opts, "-w", "-t", "60", "start",
        ])
        if r.returncode != 0:
            log_text = self.logfile.read_text() if self.logfile.exists() else ""
            raise Failed(f"PostgreSQL did not start: {r.stderr}\n{log_text[-2000:]}")
        self.started = True
        log(f"PostgreSQL on 127.0.0.1:{self.port}")
        return self

    def query(self, sql):
        r = self._as_postgres([
            str(PG_BIN / "psql"), "-h", str(self.dir), "-p", str(self.port), "-U", self.admin_user,
            "-d", "postgres", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql,
        ])
        if r.returncode != 0:
            raise Failed(f"psql failed: {r.stderr}")
        return r.stdout.strip()

    def role_exists(self, name):
        return self.query(f"SELECT count(*) FROM pg_roles WHERE rolname = '{name}'") != "0"

    def created_roles(self):
        """(name, password) of every role created WITH LOGIN PASSWORD, from the log."""
        text = self.logfile.read_text(errors="replace")
        return re.findall(r'CREATE ROLE "([^"]+)" WITH LOGIN PASSWORD \'([^\']+)\'', text)

    def dropped_roles(self):
        text = self.logfile.read_text(errors="replace")
        return re.findall(r'DROP ROLE(?: IF EXISTS)? "([^"]+)"', text)

    def stop(self):
        if self.started:
            self._as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"])
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
