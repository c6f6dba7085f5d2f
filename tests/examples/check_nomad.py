#!/usr/bin/env python3
"""Checks the Nomad examples (examples/nomad/*.nomad.hcl) without a Nomad cluster:
parses the HCL with python-hcl2 and checks that every task that runs shroud uses
flags the real binary accepts, that its embedded configuration is valid
(`shroud config validate`) and uses the Vault token Nomad's workload identity
writes into the task's secrets dir (a tmpfs), and that the sidecar variant's
lifecycle, paths and rotation settings agree between the two tasks."""

import base64
import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import (REPO, Failed, Missing, assert_no_secret, check, check_config_text,
                    check_shroud_argv, log, require_module, shroud_bin)

EXAMPLES = REPO / "examples" / "nomad"


def unquote(v):
    """python-hcl2 keeps string quotes and heredoc markers; strip them."""
    if isinstance(v, str):
        if v.startswith('"<<'):
            body = v[1:-1]
            first, _, rest = body.partition("\n")
            marker = first.lstrip("<-")
            rest = rest.rstrip()
            check(rest.endswith(marker), f"heredoc without its {marker} terminator")
            return textwrap.dedent(rest[: -len(marker)])
        if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
            return v[1:-1]
    if isinstance(v, list):
        return [unquote(x) for x in v]
    return v


def labelled(blocks):
    """[{'"name"': body}] → {name: body}."""
    out = {}
    for b in blocks or []:
        for k, v in b.items():
            out[unquote(k)] = v
    return out


def block(body, name):
    v = body.get(name) or []
    return v[0] if v else None


def task_argv(task):
    config = block(task, "config") or {}
    entry = unquote(config.get("entrypoint", []))
    args = unquote(config.get("args", []))
    return entry, args, config


def render_config(task, config_path, secrets_dir):
    """The shroud config file a task's template writes to `config_path`."""
    want = config_path.lstrip("/")  # docker driver: /local/x is the task's local/x
    for t in task.get("template", []):
        if unquote(t.get("destination")) == want:
            data = unquote(t["data"])
            return data.replace('{{ env "NOMAD_SECRETS_DIR" }}', secrets_dir)
    raise Failed(f"no template renders {config_path} (the --config shroud is given)")


def check_vault_identity(task, where):
    vault = block(task, "vault")
    check(vault is not None, f"{where}: no vault block: Nomad writes no token to the secrets dir")
    check(vault.get("env") is False, f"{where}: vault.env must be false (no token in the environment)")
    check(vault.get("disable_file") in (None, False), f"{where}: vault.disable_file would hide the token file")
    ident = block(task, "identity") or {}
    check(unquote(ident.get("name")) == "vault_default", f"{where}: no `identity {{ name = \"vault_default\" }}` for Vault")


def check_shroud_task(task, where, secrets_dir):
    """A task that runs `shroud run` or `shroud agent`: returns (words, flags, cfg)."""
    entry, args, config = task_argv(task)
    # Either shroud is the entrypoint, or the image is shroud's (entrypoint /shroud).
    runs_shroud = entry[-1].endswith("/shroud") if entry else "/shroud:" in unquote(config.get("image", ""))
    check(runs_shroud, f"{where}: the task does not run shroud")
    words, flags, after = check_shroud_argv(args, where)
    cfg = None
    if words[0] in ("run", "agent"):
        check("--config" in flags, f"{where}: shroud {words[0]} without --config")
        text = render_config(task, flags["--config"], secrets_dir)
        cfg = check_config_text(text, f"{where} (embedded shroud config)")
        check_vault_identity(task, where)
        auth = cfg["auth"]
        check(auth["method"] == "token", f"{where}: auth.method should be token (Nomad's workload identity)")
        check(auth.get("token_file") == f"{secrets_dir}/vault_token",
              f"{where}: auth.token_file should be ${{NOMAD_SECRETS_DIR}}/vault_token")
        out = cfg["output"]["dir"]
        check(out == secrets_dir or out.startswith(secrets_dir + "/"),
              f"{where}: output.dir {out} is not in the task's secrets dir (Nomad's tmpfs)")
        check(cfg["output"].get("require_tmpfs", True) is True, f"{where}: require_tmpfs must stay on")
        check(cfg.get("lifecycle", {}).get("revoke_on_exit", True) is True, f"{where}: revoke_on_exit off")
        state = cfg.get("state", {}).get("dir")
        check(state, f"{where}: no [state] dir: a restarted task would log in again and take new credentials")
        check(state.startswith(secrets_dir + "/"),
              f"{where}: state.dir {state} is not in the task's secrets dir (Nomad's tmpfs)")
        check(not (state + "/").startswith(out.rstrip("/") + "/") and not (out + "/").startswith(state + "/"),
              f"{where}: state.dir {state} overlaps output.dir {out}: the app would see the agent's token")
    if words[0] in ("run", "exec"):
        check(after, f"{where}: shroud {words[0]} without a command after --")
    return words, flags, cfg


def check_run_job(job, where, secrets_dir):
    found = 0
    for gname, group in labelled(job.get("group")).items():
        for tname, task in labelled(group.get("task")).items():
            entry, args, _ = task_argv(task)
            if entry and entry[-1].endswith("/shroud") and args and args[0] == "run":
                check_shroud_task(task, f"{where} task {tname}", secrets_dir)
                check(any(unquote(a.get("destination", "")).startswith("local") and
                          unquote(a.get("source", "")).endswith("/shroud") for a in task.get("artifact", [])),
                      f"{where} task {tname}: the shroud binary is not brought in by an artifact")
                found += 1
    check(found == 1, f"{where}: expected one task under `shroud run`, found {found}")


def check_sidecar_job(job, where, secrets_dir):
    groups = labelled(job.get("group"))
    check(len(groups) == 1, f"{where}: expected one group")
    tasks = labelled(next(iter(groups.values())).get("task"))
    sidecars = {n: t for n, t in tasks.items() if block(t, "lifecycle")}
    check(len(sidecars) == 1, f"{where}: expected one task with a lifecycle block")
    (sname, side), = sidecars.items()
    life = block(side, "lifecycle")
    check(unquote(life.get("hook")) == "prestart" and life.get("sidecar") is True,
          f"{where}: the shroud task must be lifecycle {{ hook = \"prestart\" sidecar = true }}")
    _, args, config = task_argv(side)
    check(args[:1] == ["agent"], f"{where}: the sidecar should run `shroud agent`")
    check("ipc_lock" in [c.lower() for c in unquote(config.get("cap_add", []))],
          f"{where}: the sidecar should get IPC_LOCK to mlock")
    _, _, cfg = check_shroud_task(side, f"{where} task {sname}", secrets_dir)
    sub = cfg["output"]["dir"][len(secrets_dir):].strip("/")

    mains = {n: t for n, t in tasks.items() if n != sname}
    check(mains, f"{where}: no main task")
    for mname, main in mains.items():
        entry, args, config = task_argv(main)
        check(entry and entry[-1].endswith("/shroud") and args[:1] == ["exec"],
              f"{where} task {mname}: the main task should run under `shroud exec`")
        words, flags, after = check_shroud_argv(args, f"{where} task {mname}")
        d = flags.get("--secrets-dir")
        check(d, f"{where} task {mname}: shroud exec without --secrets-dir")
        check(flags.get("--wait-ready") is True, f"{where} task {mname}: shroud exec without --wait-ready")
        want = f"../{sname}/secrets" + (f"/{sub}" if sub else "")
        mounts = [v.split(":") for v in unquote(config.get("volumes", []))]
        check([want, d] in [m[:2] for m in mounts],
              f"{where} task {mname}: expected the sidecar's secrets dir mounted as {want}:{d}, got {mounts}")
        state = f"../{sname}/secrets/" + cfg["state"]["dir"][len(secrets_dir):].strip("/")
        check(not any((state + "/").startswith(m[0].rstrip("/") + "/") for m in mounts),
              f"{where} task {mname}: mounts the agent's state dir {state}")
        rotate = cfg.get("lifecycle", {}).get("on_rotate")
        if rotate:
            check(flags.get("--on-rotate") == rotate,
                  f"{where} task {mname}: --on-rotate {flags.get('--on-rotate')} != lifecycle.on_rotate {rotate}")
        check(any(unquote(a.get("source", "")).endswith("/shroud") for a in main.get("artifact", [])),
              f"{where} task {mname}: the shroud binary is not brought in by an artifact")


def check_gateway_job(job, where, secrets_dir):
    """The gateway job: its configuration (already `shroud config validate`d) has a
    postgres gateway on loopback using a gateway-only dynamic secret, and the
    task's environment points the app at it with no credential of its own."""
    (tname, task), = labelled(labelled(job["group"]).popitem()[1].get("task")).items()
    where = f"{where} task {tname}"
    cfg = check_config_text(render_config(task, "/local/shroud.toml", secrets_dir), where)
    gateways = cfg.get("gateway", [])
    check(len(gateways) == 1 and gateways[0]["kind"] == "postgres", f"{where}: expected one postgres gateway")
    gw = gateways[0]
    secret = next((s for s in cfg["secret"] if s["name"] == gw["secret"]), None)
    check(secret and secret.get("gateway_only") is True, f"{where}: the gateway's secret should be gateway_only")
    check(gw["listen"].startswith("127.0.0.1:"), f"{where}: the gateway should listen on loopback")
    env = {k: unquote(v) for k, v in (block(task, "env") or {}).items()}
    check(env.get("PGPORT") == gw["listen"].rsplit(":", 1)[1], f"{where}: PGPORT is not the gateway's port")
    check(env.get("PG_PASSWORD_FILE", "").endswith(f"/{gw['name']}.password"),
          f"{where}: the app should read the gateway's local password file")
    check(not any("PASSWORD" in k and k != "PG_PASSWORD_FILE" or k == "PGUSER" for k in env),
          f"{where}: a credential in the task's environment: {sorted(env)}")


@contextlib.contextmanager
def tmpfs():
    """A real tmpfs, as Nomad mounts on a task's secrets dir (needs root)."""
    d = tempfile.mkdtemp(prefix="nomad-task-secrets-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", d],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise Missing(f"mounting a tmpfs needs root (CI runs as root): {r.stderr.strip()}")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", d])
        os.rmdir(d)


def run_like_nomad(task, where):
    """Runs the `shroud run` task as Nomad would, minus Nomad: a tmpfs secrets dir
    holding a Vault token with the job's policy (what workload identity writes),
    the template rendered with NOMAD_SECRETS_DIR, real OpenBao and PostgreSQL. Only
    the Vault address (and its CA) are the test's, and the app is a shell script
    that prints its secrets."""
    probe = subprocess.run([str(shroud_bin()), "run", "--config", "/nonexistent", "--", "true"],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode == 64 and "not implemented" in probe.stderr:
        log(f"{where}: `shroud run` is not in this build: the job was checked, not run")
        return
    from openbao import OpenBao
    from postgres import Postgres
    _, args, _ = task_argv(task)
    cut = args.index("--")
    s3_key = "s3/" + secrets.token_urlsafe(18)
    with Postgres() as pg, OpenBao() as bao, tmpfs() as secrets_dir, tempfile.TemporaryDirectory() as local:
        bao.postgres_role(pg, "report")
        bao.api("POST", "sys/policies/acl/shroud-app", {"policy": (EXAMPLES / "shroud-app.hcl").read_text()})
        bao.api("POST", "secret/data/report", {"data": {"s3_key": s3_key}})
        token = bao.api("POST", "auth/token/create", {"policies": ["shroud-app"], "ttl": "1h"})["auth"]["client_token"]
        token_file = Path(secrets_dir, "vault_token")
        token_file.write_text(token)
        token_file.chmod(0o600)
        config_path = args[args.index("--config") + 1]
        text = render_config(task, config_path, secrets_dir)
        text = "\n".join(
            f'address = "{bao.addr}"' if line.strip().startswith("address =") else line
            for line in text.splitlines() if not line.strip().startswith("ca_cert ="))
        Path(local, "shroud.toml").write_text(text)
        out_dir = f"{secrets_dir}/shroud"
        app = (f'd={out_dir}; printf "db: %s\\n" "$(cat $d/db)"; printf "key: %s\\n" "$(cat $d/s3-key)"; '
               'printf "b64: %s\\n" "$(cat $d/s3-key | base64 -w0)"; exit 3')
        argv = [str(shroud_bin())] + [str(Path(local, "shroud.toml")) if a == config_path else a
                                      for a in args[:cut]] + ["--", "sh", "-c", app]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "NOMAD_SECRETS_DIR": secrets_dir})
        output = r.stdout + r.stderr
        roles = pg.created_roles()
        check(len(roles) == 1, f"{where}: expected one database role, saw {len(roles)}: {output[-2000:]}")
        user, password = roles[0]
        assert_no_secret(output, {"db username": user, "db password": password, "s3 key": s3_key,
                                  "vault token": token}, f"{where}: the task's output")
        check(r.returncode == 3, f"{where}: shroud run exited {r.returncode}, the app 3: {output[-2000:]}")
        check(output.count("[REDACTED]") >= 3, f"{where}: the app's secrets were not masked: {output[-2000:]}")
        check(not pg.role_exists(user), f"{where}: the database role outlived the task")
        try:
            bao.api("POST", "auth/token/lookup", {"token": token})
            revoked = False
        except Failed:
            revoked = True
        check(revoked, f"{where}: the Vault token outlived the task")
        state_dir = Path(secrets_dir, "shroud-state")
        check(state_dir.is_dir() and not any(state_dir.iterdir()),
              f"{where}: the state dir is missing or not empty after the task")
        # Files, not directories: an empty .shroud/ may stay behind.
        left = [str(p.relative_to(out_dir)) for p in Path(out_dir).rglob("*") if not p.is_dir()] \
            if Path(out_dir).exists() else []
        check(not left, f"{where}: files left in the secrets dir after the task: {left}")
    log(f"{where}: ran under shroud run with a Nomad-style token file: masked, exit 3 kept, "
        "role dropped, token revoked, files wiped")


def run_sidecar_like_nomad(side, main, where):
    """Runs the sidecar job's two tasks as Nomad would, minus Nomad: the shroud task
    (`agent`) with a tmpfs secrets dir and a token file, then the app task's own
    `shroud exec` command line on the directory its bind mount names. When the app
    exits, the agent must revoke, wipe and exit by itself."""
    probe = subprocess.run([str(shroud_bin()), "agent", "--config", "/nonexistent"],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode == 64 and "not implemented" in probe.stderr:
        log(f"{where}: `shroud agent` is not in this build: the job was checked, not run")
        return
    import time
    from openbao import OpenBao
    from postgres import Postgres
    _, side_args, _ = task_argv(side)
    _, main_args, _ = task_argv(main)
    with Postgres() as pg, OpenBao() as bao, tmpfs() as secrets_dir, tempfile.TemporaryDirectory() as local:
        bao.postgres_role(pg, "api")
        bao.api("POST", "sys/policies/acl/shroud-app", {"policy": (EXAMPLES / "shroud-app.hcl").read_text()
                                                          + 'path "database/creds/api" { capabilities = ["read"] }\n'})
        token = bao.api("POST", "auth/token/create", {"policies": ["shroud-app"], "ttl": "1h"})["auth"]["client_token"]
        Path(secrets_dir, "vault_token").write_text(token)
        config_path = side_args[side_args.index("--config") + 1]
        text = render_config(side, config_path, secrets_dir)
        text = "\n".join(f'address = "{bao.addr}"' if l_.strip().startswith("address =") else l_
                         for l_ in text.splitlines() if not l_.strip().startswith("ca_cert ="))
        Path(local, "shroud.toml").write_text(text)
        agent_log = Path(local, "agent.log").open("w+")
        agent = subprocess.Popen(
            [str(shroud_bin())] + [str(Path(local, "shroud.toml")) if a == config_path else a for a in side_args],
            stdin=subprocess.DEVNULL, stdout=agent_log, stderr=agent_log,
            env={**os.environ, "NOMAD_SECRETS_DIR": secrets_dir})
        try:
            # The app's mount: ../shroud/secrets/<sub> → its --secrets-dir.
            config = block(main, "config")
            mount_src, mount_dst = unquote(config["volumes"])[0].split(":")[:2]
            host_dir = Path(secrets_dir, mount_src.split("/secrets", 1)[1].lstrip("/"))
            # Docker creates a missing bind-mount source when the app container
            # starts, so exec finds the directory even before the agent made it.
            host_dir.mkdir(mode=0o755, exist_ok=True)
            cut = main_args.index("--")
            app = 'cat "$D/db" >/dev/null && printf "db: %s\\n" "$(cat "$D/db")"; exit 5'
            argv = [str(shroud_bin())] + [str(host_dir) if a == mount_dst else a for a in main_args[:cut]] + \
                ["--", "sh", "-c", app]
            r = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                               env={**os.environ, "D": str(host_dir)})
            deadline = time.monotonic() + 30
            while agent.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            agent_log.seek(0)
            alog = agent_log.read()
            check(agent.returncode is not None, f"{where}: the agent did not exit after the app: {alog[-2000:]}\nexec ({r.returncode}): {r.stdout[-1000:]}{r.stderr[-1000:]}")
            check(agent.returncode == 0, f"{where}: the agent exited {agent.returncode}: {alog[-2000:]}")
        finally:
            if agent.poll() is None:
                agent.kill()
                agent.wait()
            agent_log.close()
        output = r.stdout + r.stderr
        roles = pg.created_roles()
        check(len(roles) == 1, f"{where}: expected one database role, saw {len(roles)}: {output[-1500:]}")
        user, password = roles[0]
        assert_no_secret(output + alog, {"db username": user, "db password": password, "vault token": token},
                         f"{where}: the tasks' output")
        check(r.returncode == 5, f"{where}: shroud exec exited {r.returncode}, the app 5: {output[-1500:]}")
        check("[REDACTED]" in output, f"{where}: nothing masked: {output[-1500:]}")
        check(not pg.role_exists(user), f"{where}: the database role outlived the app")
        state_dir = Path(secrets_dir, "shroud-state")
        check(state_dir.is_dir() and not any(state_dir.iterdir()),
              f"{where}: the agent's state dir is missing or not empty after the app ended")
        # The exit marker (an exit status, not a secret) is exec's, written last.
        left = [str(p.relative_to(host_dir)) for p in host_dir.rglob("*")
                if not p.is_dir() and p.name != "exited"] if host_dir.exists() else []
        check(not left, f"{where}: files left in the secrets dir: {left}")
    log(f"{where}: agent + exec ran as the two tasks would: masked, exit 5 kept, agent exited by itself, "
        "role dropped, files wiped")


def main():
    try:
        hcl2 = require_module("hcl2", "python-hcl2")
        secrets_dir = tempfile.mkdtemp(prefix="nomad-secrets-")
        files = sorted(EXAMPLES.glob("*.nomad.hcl"))
        check(len(files) == 3, f"expected three Nomad jobs in {EXAMPLES}, found {len(files)}")
        for f in files:
            with open(f) as fh:
                doc = hcl2.load(fh)
            (name, job), = labelled(doc["job"]).items()
            where = f"{f.relative_to(REPO)} job {name}"
            if "gateway" in f.name:
                # Checked, not run: it needs a database behind a gateway.
                check_run_job(job, where, secrets_dir)
                check_gateway_job(job, where, secrets_dir)
            elif "sidecar" in f.name:
                check_sidecar_job(job, where, secrets_dir)
                tasks = labelled(labelled(job["group"]).popitem()[1].get("task"))
                side = next(t for t in tasks.values() if block(t, "lifecycle"))
                main_task = next(t for t in tasks.values() if not block(t, "lifecycle"))
                run_sidecar_like_nomad(side, main_task, where)
            else:
                check_run_job(job, where, secrets_dir)
                for tname, task in labelled(labelled(job["group"]).popitem()[1].get("task")).items():
                    run_like_nomad(task, f"{where} task {tname}")
            log(f"{where}: ok")
    except Missing as e:
        print(f"MISSING PREREQUISITE: {e}", file=sys.stderr)
        return 2
    except Failed as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
