#!/usr/bin/env python3
"""Lints and renders helm/shroud with the real Helm library, and validates every
rendered manifest against the Kubernetes schema.

    tests/helm/check_chart.py CHART OUT_DIR

- lint: helm-sdkpy (Helm's Go lint action over ctypes) on the default values, and
  helm-python-sdk's lint (strict) on every value set below;
- render: helm-python-sdk `Chart.render` (Helm's engine, offline: genCA and
  genSignedCert run, `lookup` returns nothing) for every value set;
- validate: kubernetes-validate --strict on every built-in kind; the CRD kinds
  (cert-manager, prometheus-operator) are checked for their identifying fields;
- values.schema.json must reject bad values;
- every webhook's service path passes the API server's own rule (segments are
  DNS-1123 subdomains, so no query string) and webhook names are unique.

Writes OUT_DIR/<value set>/manifests.json (a list of the rendered objects) for the
Rust end-to-end test, which serves the rendered certificate and configuration.
Exits non-zero with a message on any failure; says how to install what is missing.
"""

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile

K8S_VERSION = "1.33.0"
RELEASE = "shroud"
NAMESPACE = "shroud-system"

VALUE_SETS = {
    "default": {},
    "full": {
        "replicaCount": 3,
        "podAntiAffinity": "hard",
        "podDisruptionBudget": {"enabled": True, "minAvailable": 2},
        "podLabels": {"team": "platform"},
        "priorityClassName": "system-cluster-critical",
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"}],
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "networkPolicy": {"enabled": True, "ingressFrom": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]},
        "webhook": {"failurePolicy": "Ignore", "timeoutSeconds": 5,
                    "podSecurity": {"levels": ["restricted"], "label": "pod-security.kubernetes.io/enforce"},
                    "objectSelector": {"matchLabels": {"shroud.dev/enabled": "true"},
                                       "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]},
                    "objectSelectorExpressions": [{"key": "shroud.dev/skip", "operator": "DoesNotExist"}],
                    "namespaceSelector": {"matchLabels": {"shroud.dev/injection": "enabled"}},
                    "matchConditions": [{"name": "not-node-critical",
                                         "expression": "!has(object.spec.priorityClassName) || object.spec.priorityClassName != 'system-node-critical'"}]},
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}},
                    "prometheusRule": {"enabled": True, "leaseExpiryThresholdSeconds": 120},
                    "podMonitor": {"enabled": True, "labels": {"release": "prom"}},
                    "dashboard": {"enabled": True, "namespace": "monitoring",
                                  "annotations": {"grafana_folder": "Security"}}},
        "config": {
            "image": "registry.example/shroud:0.1.0",
            "nativeSidecar": False,
            "vault": {"address": "https://openbao.openbao.svc:8200", "caCert": "/run/shroud/ca/ca.crt",
                      "namespace": "team-a"},
            "compat": {"vaultAgent": True},
            "registry": {"timeoutSeconds": 4, "tagTtl": "5m", "cacheSize": 256, "defaultPlatform": "linux/arm64",
                         "onFailure": "admit", "pullSecret": "registry-pull",
                         "allowed": ["*", "registry.corp.example:5000", "*.s3.corp.example"],
                         "maxFetchesPerRegistry": 1, "maxFetchesPerNamespace": 3,
                         "caBundle": {"configMap": "registry-ca", "key": "ca.pem"}},
            "policy": {
                "hostPaths": {"exemptNamespaces": ["kube-system", "logging"],
                              "denied": ["/var/run/docker.sock", "/var/lib/kubelet", "/etc/kubernetes"]},
                "secretPaths": {"namespaces": {"billing": ["pki/issue/billing"], "shop": ["kv/data/shared/"]}},
            },
        },
    },
    "cert-manager": {
        "tls": {"certManager": {"enabled": True}},
        "metrics": {"serviceMonitor": {"enabled": True}},
    },
    "no-pod-security-split": {"webhook": {"podSecurity": {"enabled": False}}},
    "cert-manager-issuer": {
        "tls": {"certManager": {"enabled": True, "issuerRef": {"name": "cluster-ca", "kind": "ClusterIssuer",
                                                                 "group": "cert-manager.io"}}},
    },
}

BAD_VALUES = [
    {"replicaCount": 0},
    {"webhook": {"failurePolicy": "Maybe"}},
    {"webhook": {"timeoutSeconds": 31}},
    {"config": {"secretsSizeLimit": "lots"}},
    {"config": {"policy": {"hostPaths": {"denied": ["relative"]}}}},
    {"unknownTopLevel": True},
    {"config": {"registry": {"onFailure": "maybe"}}},
    {"config": {"registry": {"timeoutSeconds": 5}}},  # not under webhook.timeoutSeconds (5)
    {"config": {"registry": {"maxFetchesPerRegistry": 0}}},
    {"config": {"registry": {"allowed": "*"}}},
    {"webhook": {"matchConditions": [{"name": "x"}]}},
    {"metrics": {"podMonitor": {"agentPort": 0}}},
    {"webhook": {"podSecurity": {"levels": ["strict"]}}},
    {"webhook": {"podSecurity": {"levels": []}}},
]

CRD_KINDS = {
    ("cert-manager.io/v1", "Issuer"),
    ("cert-manager.io/v1", "Certificate"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
}


def fail(msg):
    print(f"check_chart: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def need(module, pip_spec):
    try:
        return __import__(module)
    except ImportError:
        fail(f"python module `{module}` is missing: python3 -m pip install {pip_spec} (scripts/test does)")


DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def service_path_errors(path):
    """k8s.io/apiserver/pkg/util/webhook/validation.go ValidateWebhookService: a
    path is "/" or starts with "/" and each segment is a non-empty DNS-1123
    subdomain (at most 253 characters); kubernetes-validate checks only the schema."""
    if path in ("", "/"):
        return []
    if not path.startswith("/"):
        return [f"{path}: must start with a '/'"]
    steps = path[1:].removesuffix("/").split("/")
    return [f"{path}: segment[{i}] {step!r} is not a DNS-1123 subdomain"
            for i, step in enumerate(steps)
            if len(step) > 253 or not DNS1123_SUBDOMAIN.match(step)]


def check_webhooks(set_name, objects):
    for obj in objects:
        if not obj["kind"].endswith("WebhookConfiguration"):
            continue
        names = [w["name"] for w in obj["webhooks"]]
        if len(names) != len(set(names)):
            fail(f"[{set_name}] {obj['kind']} repeats a webhook name: {names}")
        for w in obj["webhooks"]:
            path = w["clientConfig"].get("service", {}).get("path", "")
            errors = service_path_errors(path)
            if errors:
                fail(f"[{set_name}] {obj['kind']} {w['name']}: the API server would reject {errors}")


def leaf_paths(d, prefix=()):
    for k, v in d.items():
        if isinstance(v, dict) and v:
            yield from leaf_paths(v, prefix + (k,))
        else:
            yield prefix + (k,)


def main():
    if len(sys.argv) != 3:
        fail("usage: check_chart.py CHART OUT_DIR")
    chart, out_dir = sys.argv[1], sys.argv[2]
    helm_sdkpy = need("helm_sdkpy", "--ignore-requires-python helm-sdkpy")
    helm = need("helm_python", "helm-python-sdk")
    yaml = need("yaml", "pyyaml")

    # 1. helm-sdkpy lint (default values).
    result = asyncio.run(helm_sdkpy.Lint(helm_sdkpy.Configuration()).run(chart))
    if result.get("Errors"):
        fail(f"helm-sdkpy lint errors: {result['Errors']}")
    bad = [m for m in result.get("Messages") or [] if m.get("Severity", 0) >= 2]
    if bad:
        fail(f"helm-sdkpy lint findings: {bad}")
    print(f"helm-sdkpy lint: ok ({len(result.get('Messages') or [])} messages)")

    checked = 0
    for set_name, values in VALUE_SETS.items():
        # 2. strict lint with these values.
        lint = helm.lint(chart, values, strict=True, namespace=NAMESPACE)
        if lint.get("errors") or lint.get("messages"):
            fail(f"[{set_name}] helm lint --strict: {lint}")
        # 3. render.
        with helm.Chart.load(chart) as c:
            rendered = c.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
        objects = []
        for path, text in sorted(rendered.items()):
            if not path.endswith((".yaml", ".yml")):
                continue
            for doc in yaml.safe_load_all(text):
                if doc:
                    objects.append(doc)
        if not objects:
            fail(f"[{set_name}] rendered nothing")
        set_dir = os.path.join(out_dir, set_name)
        os.makedirs(set_dir, exist_ok=True)
        with open(os.path.join(set_dir, "manifests.json"), "w") as f:
            json.dump(objects, f, indent=1)
        # 4. validate.
        files = []
        with tempfile.TemporaryDirectory() as tmp:
            for i, obj in enumerate(objects):
                kind = (obj.get("apiVersion"), obj.get("kind"))
                name = obj.get("metadata", {}).get("name")
                if not name:
                    fail(f"[{set_name}] {kind} has no metadata.name")
                if kind in CRD_KINDS:
                    if not isinstance(obj.get("spec"), dict):
                        fail(f"[{set_name}] {kind} {name} has no spec")
                    continue
                p = os.path.join(tmp, f"{i:02d}-{obj['kind']}-{name}.yaml")
                with open(p, "w") as f:
                    yaml.safe_dump(obj, f)
                files.append(p)
            proc = subprocess.run(
                ["kubernetes-validate", "--strict", "--kubernetes-version", K8S_VERSION, *files],
                capture_output=True, text=True)
            if proc.returncode != 0:
                fail(f"[{set_name}] kubernetes-validate:\n{proc.stdout}{proc.stderr}")
        check_webhooks(set_name, objects)
        kinds = sorted({o["kind"] for o in objects})
        print(f"[{set_name}] rendered and validated {len(objects)} objects: {', '.join(kinds)}")
        checked += 1

    # 5. README.md lists every value (free-form maps are listed as a whole).
    with open(os.path.join(chart, "values.yaml")) as f:
        defaults = yaml.safe_load(f)
    with open(os.path.join(chart, "README.md")) as f:
        readme = f.read()
    missing = [p for p in leaf_paths(defaults) if not any(
        f"`{'.'.join(p[:i])}`" in readme for i in range(1, len(p) + 1))]
    if missing:
        fail(f"helm/shroud/README.md does not list: {['.'.join(p) for p in missing]}")
    print("README.md lists every value")

    # 6. the schema rejects bad values.
    with helm.Chart.load(chart) as c:
        for values in BAD_VALUES:
            try:
                c.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
            except Exception:  # noqa: BLE001 - any Helm error is a rejection
                continue
            fail(f"values.schema.json accepted bad values {values}")
    print(f"values.schema.json rejected {len(BAD_VALUES)} bad value sets")
    print(f"check_chart: {checked} value sets ok")


if __name__ == "__main__":
    main()
