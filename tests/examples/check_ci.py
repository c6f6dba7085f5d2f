#!/usr/bin/env python3
"""Checks the CI examples (examples/ci/): parses the GitHub Actions workflow and
the GitLab CI file with PyYAML, finds every shroud command line in their scripts
(also inside `sh -c '…'`), and checks that

- each uses a subcommand and flags the real binary accepts (`--help`),
- the build step runs under `shroud run --config F` with F a valid configuration
  (`shroud config validate`) whose JWT file the job writes and whose output dir
  is a tmpfs path,
- the artifact is gated by `shroud scan --secrets-dir <output dir>` inside the
  run (so it sees the exact per-job values),
- what passed is signed by `shroud scan --config F --sign KEY --ledger L`, and a
  later job runs `shroud verify --config F --key KEY --ledger L` on it,
- SHROUD_<SECTION>_<KEY> variables name real configuration keys,

then runs that scan command line against a tiny fixture: a leaked credential (in
base64) must fail the gate with exit 1, a clean artifact must pass; and runs the
build, sign and verify steps for real against OpenBao (JWT auth, transit)."""

import base64
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import (CONFIG_KEYS, REPO, Failed, Missing, assert_no_secret, check, check_config_text,
                    check_shroud_argv, log, require_module, require_tool, run, shroud_bin)

EXAMPLES = REPO / "examples" / "ci"
OPERATORS = {"&&", "||", ";", "|", "&"}


def scripts_github(doc):
    out = []
    for jname, job in doc["jobs"].items():
        for i, step in enumerate(job.get("steps", [])):
            if "run" in step:
                out.append((f"job {jname} step {step.get('name', i)}", step["run"]))
    env = dict(doc.get("env", {}))
    for job in doc["jobs"].values():
        env.update(job.get("env", {}))
    return out, env


def scripts_gitlab(doc):
    out, env = [], dict(doc.get("variables", {}))
    for jname, job in doc.items():
        if not isinstance(job, dict) or "script" not in job:
            continue
        env.update(job.get("variables", {}))
        for key in ("before_script", "script", "after_script"):
            for i, line in enumerate(job.get(key, [])):
                out.append((f"job {jname} {key}[{i}]", line))
    return out, env


def shroud_commands(text, nested=False):
    """Every shroud command line in a shell snippet: (argv, nested_in_run)."""
    found = []
    for line in text.replace("\\\n", " ").splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError as e:
            raise Failed(f"cannot split shell line {line!r}: {e}")
        i = 0
        while i < len(words):
            w = words[i]
            at_command = i == 0 or words[i - 1] in OPERATORS
            if at_command and (w == "shroud" or w.endswith("/shroud")):
                j = i + 1
                while j < len(words) and words[j] not in OPERATORS:
                    j += 1
                argv = words[i + 1:j]
                found.append((argv, nested))
                if "--" in argv:
                    inner = argv[argv.index("--") + 1:]
                    if len(inner) >= 3 and inner[0] in ("sh", "bash") and inner[1] == "-c":
                        found += shroud_commands(inner[2], nested=True)
                i = j
            elif at_command and w in ("sh", "bash") and i + 2 < len(words) and words[i + 1] == "-c":
                found += shroud_commands(words[i + 2], nested)
                i += 3
            else:
                i += 1
    return found


def check_env(env, where):
    for k in env:
        if k.startswith("SHROUD_") and k not in ("SHROUD_CONFIG", "SHROUD_CONFIG_TOML", "SHROUD_LOG_FORMAT",
                                                  "SHROUD_SECRETS_DIR", "SHROUD_ON_ROTATE"):
            rest = k[len("SHROUD_"):].lower()
            section, _, key = rest.partition("_")
            check(section in CONFIG_KEYS and key in CONFIG_KEYS[section],
                  f"{where}: {k} names no configuration key ({section}.{key})")


def check_file(path, kind, yaml):
    where = str(path.relative_to(REPO))
    with open(path) as fh:
        doc = yaml.safe_load(fh)
    scripts, env = scripts_github(doc) if kind == "github" else scripts_gitlab(doc)
    check_env(env, where)
    all_text = "\n".join(t for _, t in scripts)
    runs, scans, signs, verifies = [], [], [], []
    for step, text in scripts:
        for argv, nested in shroud_commands(text):
            words, flags, after = check_shroud_argv(argv, f"{where} {step}")
            if words == ["run"]:
                runs.append((step, flags, after))
            if words == ["scan"]:
                scans.append((step, argv, flags, nested))
                if "--sign" in flags:
                    signs.append((text, flags))
            if words == ["verify"]:
                verifies.append((text, flags))
    check(len(runs) == 1, f"{where}: expected one `shroud run` step, found {len(runs)}")
    step, flags, after = runs[0]
    check(after, f"{where} {step}: shroud run without a command")
    cfg_path = REPO / flags.get("--config", "")
    check(cfg_path.is_file(), f"{where} {step}: --config {flags.get('--config')} is not a file in the repo")
    cfg = check_config_text(cfg_path.read_text(), str(cfg_path.relative_to(REPO)))
    out = cfg["output"]["dir"]
    check(out.startswith("/dev/shm/") and cfg["output"].get("require_tmpfs", True),
          f"{where}: output.dir {out} is not on the runner's tmpfs")
    check(cfg.get("lifecycle", {}).get("revoke_on_exit", True), f"{where}: revoke_on_exit is off")
    if cfg["auth"]["method"] == "jwt":
        jwt = cfg["auth"].get("jwt_path")
        check(jwt and f"> {jwt}" in all_text, f"{where}: no step writes the JWT file {jwt}")
        if kind == "github":
            check(doc.get("permissions", {}).get("id-token") == "write",
                  f"{where}: the workflow needs `permissions: id-token: write` for the OIDC token")
        else:
            check(any(isinstance(j, dict) and "id_tokens" in j for j in doc.values()),
                  f"{where}: the job needs `id_tokens` for the OIDC token")
    gates = [s for s in scans if s[3] and s[2].get("--secrets-dir") == out]
    check(gates, f"{where}: no `shroud scan --secrets-dir {out}` inside the shroud run step")
    check(len(signs) == 1, f"{where}: expected one `shroud scan --sign` step, found {len(signs)}")
    check(len(verifies) == 1, f"{where}: expected one `shroud verify` step, found {len(verifies)}")
    sign_text, sign_flags = signs[0]
    verify_text, verify_flags = verifies[0]
    for what, flags in (("scan --sign", sign_flags), ("verify", verify_flags)):
        check(flags.get("--config") == flags_cfg(runs[0][1]), f"{where}: `shroud {what}` uses another --config")
        check(flags.get("--ledger"), f"{where}: `shroud {what}` without --ledger")
    check(sign_flags["--ledger"] == verify_flags["--ledger"], f"{where}: sign and verify use different ledgers")
    check(verify_flags.get("--key") == sign_flags["--sign"],
          f"{where}: verify does not pin the signing key with --key {sign_flags['--sign']}")
    run_text = next(t for st, t in scripts if st == step)
    signing = (sign_text, verify_text, sign_flags["--sign"], sign_flags["--ledger"])
    return (gates[0][1], out), (run_text, env, cfg, signing)


def flags_cfg(run_flags):
    return run_flags.get("--config")


def run_gate(scan_argv, out_dir):
    """Runs the workflow's own scan command line against a fixture."""
    r = subprocess.run([str(shroud_bin()), "scan", "--help"], capture_output=True, text=True)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        secrets = d / "secrets"
        secrets.mkdir()
        value = "ci-per-job-credential-" + base64.b32encode(__import__("os").urandom(10)).decode()
        (secrets / "db").write_text(value)
        dist = d / "dist"
        dist.mkdir()
        (dist / "app.txt").write_text("an artifact with nothing secret in it\n")

        def argv():
            a = [x.replace(out_dir, str(secrets)) for x in scan_argv]
            return [str(shroud_bin())] + [str(dist) if x.rstrip("/") == "dist" else x for x in a]

        clean = run(argv(), check_rc=False)
        if clean.returncode == 64 and "not implemented" in clean.stderr:
            log("`shroud scan` is not in this build: the gate's flags were checked, not run")
            return
        check(r.returncode == 0, "shroud scan --help failed")
        check(clean.returncode == 0, f"the gate fails a clean artifact ({clean.returncode}): {clean.stderr}")
        (dist / "config.js").write_text(f"const auth = '{base64.b64encode(('u:' + value).encode()).decode()}';\n")
        leaked = run(argv(), check_rc=False)
        check(leaked.returncode == 1, f"the gate let a base64-encoded credential through ({leaked.returncode})")
        check(value not in leaked.stdout + leaked.stderr, "the gate printed the secret it found")
        log("the gate passes a clean artifact and stops one carrying a credential in base64")


def sign_jwt(key_pem, claims):
    """An RS256 JWT signed with openssl (what the CI system's OIDC issuer does)."""
    import json
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=")  # noqa: E731
    signing_input = b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode()) + b"." + \
        b64(json.dumps(claims).encode())
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_pem], input=signing_input,
                         capture_output=True, check=True).stdout
    return (signing_input + b"." + b64(sig)).decode()


FAKE_MAKE = """#!/bin/sh
# Stands in for the project's `make dist DB_ENV=F`: uses the credential, prints it
# (as a careless build log would), and builds dist/ (leaking it when LEAK=1).
for a in "$@"; do case $a in DB_ENV=*) db=${a#DB_ENV=} ;; esac; done
echo "build: connecting with $(cat "$db" | tr '\\n' ' ')"
mkdir -p dist
echo "the build output" > dist/app.txt
[ "${LEAK:-}" = 1 ] && cat "$db" > dist/debug-dump.txt
exit 0
"""


def run_step_for_real(name, step_cmd, env_from_yaml, cfg, signing):
    """Runs the workflow's build step for real: an OpenBao with JWT auth trusting a
    test key, a signed OIDC-style token in a tmpfs file, a real PostgreSQL, and a
    stand-in `make`. A clean build passes and leaves nothing; a build that writes
    the credential into dist/ fails the step."""
    import os
    import secrets as pysecrets
    import time
    probe = subprocess.run([str(shroud_bin()), "run", "--config", "/nonexistent", "--", "true"],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode == 64 and "not implemented" in probe.stderr:
        log(f"{name}: `shroud run` is not in this build: the build step was checked, not run")
        return
    from openbao import OpenBao
    from postgres import Postgres
    require_tool("openssl", "apt-get install openssl")
    role = cfg["auth"]["role"]
    with Postgres() as pg, OpenBao() as bao, tempfile.TemporaryDirectory() as work:
        work = Path(work)
        shm = Path(tempfile.mkdtemp(prefix="shroud-ci-test-", dir="/dev/shm"))
        try:
            db_secret = next(s_ for s_ in cfg["secret"] if s_["kind"] == "dynamic")
            db_role = db_secret["path"].rsplit("/", 1)[1]
            bao.postgres_role(pg, db_role)
            kv = next(s_ for s_ in cfg["secret"] if s_["kind"] == "kv2")
            registry_token = "rt-" + pysecrets.token_urlsafe(20)
            bao.api("POST", kv["path"], {"data": {kv["field"]: registry_token}})
            sign_text, verify_text, key, ledger = signing
            bao.api("POST", "sys/mounts/transit", {"type": "transit"})
            bao.api("POST", f"transit/keys/{key}", {"type": "ecdsa-p256"})
            bao.api("POST", f"sys/policies/acl/{role}", {"policy": "\n".join(
                f'path "{s_["path"]}" {{ capabilities = ["read"] }}' for s_ in cfg["secret"])
                + '\npath "sys/leases/revoke" { capabilities = ["update"] }\n'
                + f'path "transit/sign/{key}" {{ capabilities = ["update"] }}\n'
                + f'path "transit/verify/{key}" {{ capabilities = ["update"] }}\n'})
            subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                            "-out", str(work / "key.pem")], check=True, capture_output=True)
            pub = subprocess.run(["openssl", "pkey", "-in", str(work / "key.pem"), "-pubout"],
                                 check=True, capture_output=True, text=True).stdout
            mount = cfg["auth"].get("mount", "jwt")
            bao.api("POST", f"sys/auth/{mount}", {"type": "jwt"})
            bao.api("POST", f"auth/{mount}/config", {"jwt_validation_pubkeys": [pub]})
            bao.api("POST", f"auth/{mount}/role/{role}", {
                "role_type": "jwt", "user_claim": "sub", "bound_audiences": ["vault"],
                "token_policies": [role], "token_ttl": "15m"})
            (work / "bin").mkdir()
            (work / "bin" / "make").write_text(FAKE_MAKE)
            (work / "bin" / "make").chmod(0o755)
            (work / "bin" / "shroud").symlink_to(shroud_bin())
            (work / "examples" / "ci").mkdir(parents=True)
            (work / "examples" / "ci" / "shroud-ci.toml").write_text((EXAMPLES / "shroud-ci.toml").read_text())
            jwt_file, out_dir = cfg["auth"]["jwt_path"], cfg["output"]["dir"]
            my_jwt, my_out = shm / "jwt" / "token", shm / "out"
            cmd = step_cmd.replace(jwt_file, str(my_jwt)).replace(out_dir, str(my_out))

            def run_step(leak, command=None):
                # A fresh OIDC token per run, as each CI job gets.
                now = int(time.time())
                my_jwt.parent.mkdir(mode=0o700, exist_ok=True)
                my_jwt.write_text(sign_jwt(str(work / "key.pem"), {
                    "iss": "https://token.actions.example", "sub": "repo:example/app:ref:refs/heads/main",
                    "aud": "vault", "iat": now, "nbf": now - 5, "exp": now + 600}))
                env = {**os.environ, **{k: str(v) for k, v in env_from_yaml.items()},
                       "SHROUD_VAULT_ADDRESS": bao.addr, "SHROUD_AUTH_JWT_PATH": str(my_jwt),
                       "SHROUD_OUTPUT_DIR": str(my_out), "PATH": f"{work / 'bin'}:{os.environ['PATH']}",
                       "LEAK": "1" if leak else "0"}
                if command is None:
                    shutil.rmtree(work / "dist", ignore_errors=True)
                else:
                    env.pop("LEAK")
                text = cmd if command is None else command.replace(jwt_file, str(my_jwt))
                return subprocess.run(["bash", "-c", text], cwd=work, env=env, capture_output=True,
                                      text=True, timeout=120)

            clean = run_step(leak=False)
            out = clean.stdout + clean.stderr
            roles = pg.created_roles()
            check(len(roles) == 1, f"the build step made {len(roles)} database roles: {out[-2000:]}")
            user, password = roles[0]
            known = {"db username": user, "db password": password, "registry token": registry_token}
            assert_no_secret(out, known, "the build step's log")
            check(clean.returncode == 0, f"the clean build step failed ({clean.returncode}): {out[-2000:]}")
            check("[REDACTED]" in out, f"the build log shows no masked credential: {out[-2000:]}")
            check((work / "dist" / "app.txt").is_file(), "the build step built no artifact")
            check(not pg.role_exists(user), "the job's database role outlived the step")
            left = [str(p_) for p_ in my_out.rglob("*") if not p_.is_dir()] if my_out.exists() else []
            check(not left, f"files left in the output dir after the step: {left}")

            # The signing step, then the deploy job's verification, as written.
            signed = run_step(False, sign_text)
            out = signed.stdout + signed.stderr
            assert_no_secret(out, {"registry token": registry_token}, "the signing step's log")
            check(signed.returncode == 0, f"the signing step failed ({signed.returncode}): {out[-2000:]}")
            check("signed dist/app.txt sha256:" in signed.stdout, f"dist/app.txt was not signed: {out[-2000:]}")
            check((work / ledger).is_file(), f"no ledger at {ledger}")
            verified = run_step(False, verify_text)
            out = verified.stdout + verified.stderr
            check(verified.returncode == 0, f"the verify step failed ({verified.returncode}): {out[-2000:]}")
            (work / "dist" / "app.txt").write_text("the build output, tampered with\n")
            tampered = run_step(False, verify_text)
            out = tampered.stdout + tampered.stderr
            check(tampered.returncode == 1 and "FAIL dist/app.txt" in tampered.stdout,
                  f"verify passed a changed artifact ({tampered.returncode}): {out[-2000:]}")
            check(len(bao.api("LIST", "auth/token/accessors")["data"]["keys"]) == 1,
                  "a Vault token outlived the signing or verify step")
            (work / ledger).unlink()

            leaky = run_step(leak=True)
            out = leaky.stdout + leaky.stderr
            user2, password2 = pg.created_roles()[-1]
            assert_no_secret(out, {"db username": user2, "db password": password2,
                                   "registry token": registry_token}, "the leaking build step's log")
            check(leaky.returncode == 1,
                  f"a build that put the credential in dist/ should fail the step with 1, got {leaky.returncode}: "
                  f"{out[-2000:]}")
            check(not pg.role_exists(user2), "the leaking job's database role outlived the step")
        finally:
            shutil.rmtree(shm, ignore_errors=True)
    log(f"{name}: the build step ran: log masked, credential revoked, a leaking artifact failed the gate; "
        "the clean artifact was signed into the ledger, verified, and a changed one refused")


def main():
    try:
        yaml = require_module("yaml", "pyyaml")
        results = {}
        for name, kind in (("github-actions.yml", "github"), ("gitlab-ci.yml", "gitlab")):
            results[kind] = check_file(EXAMPLES / name, kind, yaml)
            log(f"examples/ci/{name}: shroud commands and config agree with the binary")
        run_gate(*results["github"][0])
        run_step_for_real("github-actions.yml", *results["github"][1])
        run_step_for_real("gitlab-ci.yml", *results["gitlab"][1])
    except Missing as e:
        print(f"MISSING PREREQUISITE: {e}", file=sys.stderr)
        return 2
    except Failed as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
