#!/usr/bin/env python3
"""Checks the Kubernetes examples (examples/kubernetes/):

1. both manifests validate against the Kubernetes 1.33 schema (kubernetes-validate,
   strict: unknown fields fail);
2. their shroud annotations are well formed and agree with the Vault set-up: every
   secret path is allowed by the chart's default secret-path policy, granted by
   the role's policy file, and the role is bound to the pod's service account;
3. when the build has `shroud webhook`: each pod template goes through the real
   webhook over TLS as an AdmissionReview, the JSONPatch it answers is applied,
   and the patched pod validates against the schema and is wrapped as asked.
"""

import copy
import http.client
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import (REPO, Failed, Missing, check, free_port, log, require_module, require_tool,
                    shroud_bin)

EXAMPLE = REPO / "examples" / "kubernetes"
K8S_VERSION = "1.33.0"
KNOWN = {"inject", "role", "containers", "on-rotate", "native-sidecar", "status"}
SECRET_SUFFIXES = ("-kind", "-field", "-format", "-template")
# The chart's default secret-path policy (helm/shroud/values.yaml).
ALLOWED_PREFIXES = ["secret/data/{namespace}/", "database/creds/{namespace}_"]
# Like the chart's defaults.
WEBHOOK_CONFIG = """
image = "registry.example.com/shroud:0.1.0"
secrets_size_limit = "16Mi"

[vault]
address = "https://vault.vault.svc:8200"

[policy.secret_paths]
allowed_prefixes = ["secret/data/{namespace}/", "database/creds/{namespace}_"]
"""


def load_manifests(yaml):
    docs = {}
    for f in ("deployment.yaml", "job.yaml"):
        with open(EXAMPLE / f) as fh:
            docs[f] = [d for d in yaml.safe_load_all(fh) if d]
    return docs


def validate(kv, obj, where):
    try:
        kv.validate(obj, K8S_VERSION, strict=True)
    except Exception as e:  # ValidationError, SchemaNotFoundError…
        raise Failed(f"{where} does not validate against Kubernetes {K8S_VERSION}: {e}")


def workload(docs):
    (w,) = [d for d in docs if d["kind"] in ("Deployment", "Job")]
    return w


def check_annotations(w, where, setup_sh, policies):
    ns = w["metadata"]["namespace"]
    pod = w["spec"]["template"]
    ann = {k[len("shroud.dev/"):]: v for k, v in pod["metadata"].get("annotations", {}).items()
           if k.startswith("shroud.dev/")}
    check(ann.get("inject") == "true", f"{where}: shroud.dev/inject is not \"true\"")
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    secrets = {}
    for key, value in ann.items():
        if key in KNOWN:
            continue
        if key.startswith("command-"):
            check(key[len("command-"):] in containers, f"{where}: {key} names no container")
            continue
        check(key.startswith("secret-"), f"{where}: unknown annotation shroud.dev/{key}")
        name = key[len("secret-"):]
        if name.endswith(SECRET_SUFFIXES):
            base = name.rsplit("-", 1)[0]
            check(f"secret-{base}" in ann, f"{where}: shroud.dev/{key} without shroud.dev/secret-{base}")
            continue
        secrets[name] = value
    check(secrets, f"{where}: no shroud.dev/secret-<name> annotation")
    wrapped = [c.strip() for c in ann.get("containers", ",".join(containers)).split(",")]
    for c in wrapped:
        check(c in containers, f"{where}: shroud.dev/containers names unknown container {c}")
        check(containers[c].get("command") or f"command-{c}" in ann,
              f"{where}: container {c} has no command and no shroud.dev/command-{c}: nothing to wrap")
    for name, path in secrets.items():
        allowed = [p.replace("{namespace}", ns) for p in ALLOWED_PREFIXES]
        check(any(path.startswith(p) for p in allowed),
              f"{where}: secret {name} path is outside the chart's default policy {allowed}")
    role = ann.get("role")
    check(role, f"{where}: no shroud.dev/role")
    sa = pod["spec"].get("serviceAccountName")
    m = re.search(rf"auth/kubernetes/role/{re.escape(role)} \\\n(.*?)\n\n", setup_sh, re.S)
    check(m, f"{where}: vault/setup.sh writes no auth/kubernetes/role/{role}")
    body = m.group(1)
    check(f"bound_service_account_names={sa}" in body and f"bound_service_account_namespaces={ns}" in body,
          f"{where}: role {role} is not bound to service account {ns}/{sa}")
    pm = re.search(r"token_policies=(\S+)", body)
    check(pm and pm.group(1) in policies, f"{where}: role {role} has no policy file under vault/")
    policy = policies[pm.group(1)]
    for name, path in secrets.items():
        check(re.search(rf'path "{re.escape(path)}" \{{\s*capabilities = \["read"\]', policy),
              f"{where}: policy {pm.group(1)} does not grant read on secret {name}'s path")
    check('path "sys/leases/revoke"' in policy, f"{where}: policy {pm.group(1)} cannot revoke its leases")
    return ann, wrapped


# --- the real webhook -----------------------------------------------------------

class Webhook:
    """`shroud webhook` on 127.0.0.1 with a certificate from a throw-away CA."""

    def __init__(self):
        require_tool("openssl", "apt-get install openssl")
        self.dir = tempfile.TemporaryDirectory()
        d = Path(self.dir.name)
        sh = lambda *a: subprocess.run(a, check=True, capture_output=True, cwd=d)  # noqa: E731
        sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
           "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=shroud-examples-ca")
        sh("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
           "-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=shroud-webhook")
        (d / "ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        sh("openssl", "x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
           "-CAcreateserial", "-out", "tls.crt", "-days", "1", "-extfile", "ext")
        (d / "webhook.toml").write_text(WEBHOOK_CONFIG)
        self.port = free_port()
        self.log = open(d / "webhook.log", "w+")
        self.proc = subprocess.Popen(
            [str(shroud_bin()), "webhook", "--listen", f"127.0.0.1:{self.port}",
             "--tls-cert", str(d / "tls.crt"), "--tls-key", str(d / "tls.key"),
             "--config", str(d / "webhook.toml")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log)
        self.ctx = ssl.create_default_context(cafile=str(d / "ca.crt"))
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise Failed(f"shroud webhook exited {self.proc.returncode}: {self.logs()}")
            try:
                status, _ = self.request("GET", "/healthz", None)
                if status == 200:
                    return
            except OSError:
                pass
            check(time.monotonic() < deadline, f"shroud webhook did not answer within 20s: {self.logs()}")
            time.sleep(0.05)

    def logs(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-3000:]

    def request(self, method, path, body):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=10)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def mutate(self, pod):
        review = {
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "0b6e1f4c-7a55-4c1e-9d1e-5f3a2b1c0d9e",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": pod["metadata"]["namespace"], "operation": "CREATE",
                "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
                "object": pod, "oldObject": None, "dryRun": False,
            },
        }
        status, body = self.request("POST", "/mutate", json.dumps(review).encode())
        check(status == 200, f"webhook answered {status}: {body[:500]!r}")
        resp = json.loads(body)["response"]
        check(resp.get("allowed") is True, f"webhook denied the pod: {resp.get('status')}")
        check(resp.get("patchType") == "JSONPatch", f"webhook sent no JSONPatch: {resp}")
        raw = resp["patch"]
        if isinstance(raw, list):  # bytes as numbers: what Go's []byte decoder also takes
            return json.loads(bytes(raw))
        import base64
        return json.loads(base64.b64decode(raw))

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        self.dir.cleanup()


def apply_patch(doc, patch):
    """RFC 6902 add/remove/replace (what the webhook sends)."""
    doc = copy.deepcopy(doc)
    for op in patch:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        last = parts[-1]
        if op["op"] == "add":
            if isinstance(parent, list):
                parent.insert(len(parent) if last == "-" else int(last), op["value"])
            else:
                parent[last] = op["value"]
        elif op["op"] == "replace":
            parent[int(last) if isinstance(parent, list) else last] = op["value"]
        elif op["op"] == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        else:
            raise Failed(f"unexpected patch op {op['op']}")
    return doc


def pod_from_template(w):
    t = copy.deepcopy(w["spec"]["template"])
    meta = t.get("metadata", {})
    meta["name"] = w["metadata"]["name"] + "-x7k2p"
    meta["namespace"] = w["metadata"]["namespace"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": t["spec"]}


def check_patched(kv, pod, patched, ann, wrapped, where):
    validate(kv, patched, f"{where} (patched by the webhook)")
    spec = patched["spec"]
    all_containers = spec.get("initContainers", []) + spec["containers"]
    for c in spec["containers"]:
        argv = (c.get("command") or []) + (c.get("args") or [])
        runs_exec = len(argv) > 1 and argv[0].endswith("shroud") and argv[1] == "exec"
        if c["name"] in wrapped:
            check(runs_exec, f"{where}: container {c['name']} is not wrapped in shroud exec: {argv}")
            if "command-" + c["name"] in ann:
                want = json.loads(ann["command-" + c["name"]])
                check(argv[-len(want):] == want, f"{where}: {c['name']} does not run its annotated command")
        else:
            check(not runs_exec, f"{where}: container {c['name']} was wrapped but not asked for")
    agents = [c for c in all_containers
              if "agent" in (c.get("args") or []) + (c.get("command") or [])]
    check(len(agents) == 1, f"{where}: expected one shroud agent container, found {len(agents)}")
    if ann.get("native-sidecar") == "true":
        check(agents[0] in spec.get("initContainers", []) and agents[0].get("restartPolicy") == "Always",
              f"{where}: the agent is not a native sidecar (init container, restartPolicy Always)")
    # Secret files the app is pointed at must be where the webhook mounts them.
    secret_names = {k[len("secret-"):] for k in ann if k.startswith("secret-") and not k.endswith(SECRET_SUFFIXES)}
    for c in spec["containers"]:
        if c["name"] not in wrapped:
            continue
        argv = (c.get("command") or []) + (c.get("args") or [])
        dirs = [m["mountPath"] for m in c.get("volumeMounts", []) if m["mountPath"] == argv[argv.index("--secrets-dir") + 1]]
        check(dirs, f"{where}: {c['name']}'s --secrets-dir is not one of its mounts")
        for a in argv[argv.index("--") + 1:]:
            if a.startswith("/run/shroud"):
                parent, _, name = a.rpartition("/")
                check(parent == dirs[0] and name in secret_names,
                      f"{where}: {c['name']} reads {a}, but the secrets are rendered as {dirs[0]}/<name> "
                      f"for {sorted(secret_names)}")
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    mem = [v for v in vols.values() if v.get("emptyDir", {}).get("medium") == "Memory"]
    check(mem, f"{where}: no in-memory emptyDir for the secrets")


def main():
    try:
        yaml = require_module("yaml", "pyyaml")
        kv = require_module("kubernetes_validate", "kubernetes-validate")
        docs = load_manifests(yaml)
        setup_sh = (EXAMPLE / "vault" / "setup.sh").read_text()
        policies = {p.stem: p.read_text() for p in (EXAMPLE / "vault").glob("*.hcl")}
        checked = {}
        for f, objs in docs.items():
            for o in objs:
                validate(kv, o, f"{f} {o['kind']}/{o['metadata']['name']}")
            w = workload(objs)
            checked[f] = (w, *check_annotations(w, f, setup_sh, policies))
            log(f"{f}: validates against Kubernetes {K8S_VERSION}; annotations agree with vault/")
        r = subprocess.run([str(shroud_bin()), "webhook", "--help"], capture_output=True, text=True)
        probe = subprocess.run([str(shroud_bin()), "webhook", "--tls-cert", "/nonexistent",
                                "--tls-key", "/nonexistent", "--listen", "127.0.0.1:1"],
                               capture_output=True, text=True, timeout=10)
        if probe.returncode == 64 and "not implemented" in probe.stderr:
            log("`shroud webhook` is not in this build: the manifests were validated, not injected")
            return 0
        check(r.returncode == 0, "shroud webhook --help failed")
        hook = Webhook()
        try:
            for f, (w, ann, wrapped) in checked.items():
                pod = pod_from_template(w)
                patched = apply_patch(pod, hook.mutate(pod))
                check_patched(kv, pod, patched, ann, wrapped, f)
                log(f"{f}: the webhook's patched pod validates and wraps {wrapped}")
        finally:
            hook.close()
    except Missing as e:
        print(f"MISSING PREREQUISITE: {e}", file=sys.stderr)
        return 2
    except Failed as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
