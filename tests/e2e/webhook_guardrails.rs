//! The webhook's guardrails against a pod author who wants more than they are
//! given: the real `shroud webhook` over TLS, each attack class and its variants
//! sent to `/mutate` and, as the final pod after every mutation, to `/validate`.
//! Every denial is asserted with its rule and message; the legitimate pods of each
//! class are injected, validated against the Kubernetes schema and re-derived.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shroud_e2e::webhook::{
    admission_review, agent_container, apply, review_of, validate, Client, TestCa, WebhookProcess,
};
use shroud_e2e::{shroud, shroud_bin};

const CONFIG: &str = r#"
image = "registry.example/shroud:0.1.0"

[compat]
vault_agent = true

[agent]
restricted_namespaces = ["secure"]

[policy.host_paths]
allowed = ["/var/log/apps"]

[server]
max_containers = 40
header_timeout = "1s"
body_timeout = "1s"
idle_timeout = "2s"
max_metric_namespaces = 3
"#;

struct Hook {
    _ca: TestCa,
    server: WebhookProcess,
    client: Client,
    ca_der: rustls::pki_types::CertificateDer<'static>,
}

impl Hook {
    fn start(config: &str) -> Hook {
        let ca = TestCa::new("guardrails-ca");
        let leaf = ca.leaf();
        let server = WebhookProcess::start(&shroud_bin(), &ca, &leaf, config);
        let client = Client::new(server.addr, std::slice::from_ref(&ca.der));
        Hook {
            ca_der: ca.der.clone(),
            _ca: ca,
            server,
            client,
        }
    }

    fn answer(&self, path: &str, review: &Value) -> Value {
        let body = serde_json::to_vec(review).unwrap();
        let a = self.client.request("POST", path, &body).unwrap();
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        a.json()["response"].clone()
    }

    /// Denied by `/mutate` (CREATE) with `rule`; returns the message.
    fn denied(&self, pod: &Value, rule: &str) -> String {
        let r = self.answer("/mutate", &admission_review(pod));
        assert_eq!(r["allowed"], false, "admitted: {r:#}\n{pod:#}");
        assert!(r.get("patch").is_none());
        assert_eq!(r["status"]["code"], 403);
        let message = r["status"]["message"].as_str().unwrap().to_string();
        assert!(
            message.contains(&format!("`{rule}`")) || rule.is_empty(),
            "{message}"
        );
        message
    }

    /// Denied by `/validate` for the review; returns the message.
    fn rejected(&self, review: &Value) -> String {
        let r = self.answer("/validate", review);
        assert_eq!(r["allowed"], false, "admitted: {r:#}");
        assert_eq!(r["status"]["code"], 403);
        r["status"]["message"].as_str().unwrap().to_string()
    }

    fn validated(&self, review: &Value) {
        self.validated_at("", review);
    }

    /// Admitted by `/validate<profile>` (`profile`: "" or "/restricted").
    fn validated_at(&self, profile: &str, review: &Value) {
        let r = self.answer(&format!("/validate{profile}"), review);
        assert_eq!(r["allowed"], true, "{r:#}");
        assert!(r.get("patch").is_none());
    }

    /// Injects, checks the schema, and passes the final pod through `/validate`
    /// and a reinvocation of `/mutate`.
    fn injected(&self, pod: &Value) -> Value {
        self.injected_at("", pod)
    }

    /// [`Hook::injected`] at `/mutate<profile>` and `/validate<profile>`.
    fn injected_at(&self, profile: &str, pod: &Value) -> Value {
        let mutate = format!("/mutate{profile}");
        let r = self.answer(&mutate, &admission_review(pod));
        assert_eq!(r["allowed"], true, "{r:#}");
        let patched = apply(pod, &r);
        validate(&patched);
        self.validated_at(profile, &admission_review(&patched));
        let again = self.answer(&mutate, &admission_review(&patched));
        assert_eq!(again["allowed"], true, "{again:#}");
        assert!(again.get("patch").is_none());
        patched
    }
}

fn app_pod(extra_annotations: Value) -> Value {
    let mut annotations = json!({
        "shroud.dev/inject": "true",
        "shroud.dev/role": "shop-api",
        "shroud.dev/secret-db": "secret/data/shop/db",
    });
    annotations
        .as_object_mut()
        .unwrap()
        .extend(extra_annotations.as_object().unwrap().clone());
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "api", "namespace": "shop", "annotations": annotations},
        "spec": {
            "securityContext": {"runAsUser": 1000, "runAsNonRoot": true},
            "containers": [
                {"name": "app", "image": "registry.example/app:1", "command": ["/app"],
                 "volumeMounts": [{"name": "kube-api-access-x", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}]}
            ],
            "volumes": [{"name": "kube-api-access-x", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]
        }
    })
}

fn plain_pod(volumes: Value, containers: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ci"},
        "spec": {"containers": containers, "volumes": volumes}
    })
}

fn host_path_pod(path: &str) -> Value {
    plain_pod(
        json!([{"name": "h", "hostPath": {"path": path}}]),
        json!([{"name": "c", "image": "busybox", "volumeMounts": [{"name": "h", "mountPath": "/h"}]}]),
    )
}

/// Host paths: magic links, runtime sockets that a text list forgets, dot tricks.
#[test]
fn host_paths_are_denied_unless_allowed() {
    let h = Hook::start(CONFIG);
    for path in [
        "/proc/1/root/run/containerd/containerd.sock",
        "/proc/self/root/var/lib/kubelet",
        "/proc/1/cwd",
        "/run/podman/podman.sock",
        "/var/run/cri-dockerd.sock",
        "/run/k3s/containerd/containerd.sock",
        "/var/lib/etcd",
        "/etc/cni/net.d",
        "/var/log/pods",
        "/var/log",
        "/var/log/apps/../../../var/run/docker.sock",
        "//var//run//docker.sock",
        "/tmp/planted-symlink",
        "/",
    ] {
        let pod = host_path_pod(path);
        let m = h.denied(&pod, "host-path");
        assert!(
            m.contains("spec.volumes[0].hostPath.path (volume `h`)"),
            "{m}"
        );
        assert!(m.contains(path), "{m}");
        assert!(h.rejected(&admission_review(&pod)).contains("host-path"));
    }
    // The allow list admits what is at or under it.
    for ok in ["/var/log/apps", "/var/log/apps/web"] {
        let pod = host_path_pod(ok);
        assert_eq!(
            h.answer("/mutate", &admission_review(&pod))["allowed"],
            true
        );
        h.validated(&admission_review(&pod));
    }
    // The exempt namespace.
    let mut pod = host_path_pod("/var/run/docker.sock");
    pod["metadata"]["namespace"] = json!("kube-system");
    h.validated(&admission_review(&pod));
}

/// Deny-list mode is advisory: it catches the listed paths and their magic-link
/// roots, and says nothing about a symlink planted elsewhere.
#[test]
fn deny_list_mode_catches_listed_paths_only() {
    let h = Hook::start("[policy.host_paths]\nmode = \"deny-list\"\n");
    for path in [
        "/proc/1/root",
        "/var/lib/etcd/member",
        "/var/log/pods/x",
        "/run/podman",
    ] {
        h.denied(&host_path_pod(path), "host-path");
    }
    let pod = host_path_pod("/data/link-to-anything");
    assert_eq!(
        h.answer("/mutate", &admission_review(&pod))["allowed"],
        true
    );
}

/// Secret paths: encoded dots and backslashes, empty and dot segments, and a
/// namespace whose name extends another's.
#[test]
fn secret_paths_are_checked_as_vault_will_read_them() {
    let h = Hook::start(CONFIG);
    for path in [
        "secret/data/shop/%2e%2e/billing/db",
        "secret/data/shop/%2E%2E%2Fbilling%2Fdb",
        "secret/data/shop/..%5cbilling",
        "secret/data/shop\\..\\billing\\db",
        "secret/data/shop/../billing/db",
        "secret/data/shop/./db",
        "secret/data/shop//db",
        "secret/data/shop/db?version=1",
        "secret/data/shop/db#x",
        "secret/data/shop/\u{2215}..\u{2215}billing",
    ] {
        let m = h.denied(&app_pod(json!({"shroud.dev/secret-db": path})), "");
        assert!(
            m.contains("annotation `shroud.dev/secret-db`"),
            "{path}: {m}"
        );
    }
    // `shop` may not claim the roles of `shop-admin`.
    let m = h.denied(
        &app_pod(json!({"shroud.dev/secret-db": "database/creds/shop-admin_root"})),
        "secret-path-prefix",
    );
    assert!(m.contains("`database/creds/shop_`"), "{m}");
    h.injected(&app_pod(
        json!({"shroud.dev/secret-db": "database/creds/shop_api"}),
    ));
}

/// A prefix whose `{namespace}` ends where a namespace name could go on is a
/// configuration error (exit 64), not a policy.
#[test]
fn prefix_without_a_boundary_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("w.toml");
    std::fs::write(
        &cfg,
        "[policy.secret_paths]\nallowed_prefixes = [\"database/creds/{namespace}-\"]\n",
    )
    .unwrap();
    let ca = TestCa::new("x");
    let leaf = ca.leaf();
    std::fs::write(dir.path().join("c"), &leaf.cert_pem).unwrap();
    std::fs::write(dir.path().join("k"), &leaf.key_pem).unwrap();
    let out = shroud()
        .args(["webhook", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(dir.path().join("c"))
        .arg("--tls-key")
        .arg(dir.path().join("k"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("policy.secret_paths.allowed_prefixes"),
        "{err}"
    );
}

/// Containers that are not wrapped cannot reach shroud's volumes by name, and
/// wrapped ones cannot shadow shroud's paths.
#[test]
fn shroud_volumes_and_paths_belong_to_shroud() {
    let h = Hook::start(CONFIG);
    let with = |f: &dyn Fn(&mut Value)| {
        let mut pod = app_pod(json!({"shroud.dev/containers": "app"}));
        f(&mut pod);
        pod
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            with(&|p| {
                p["spec"]["containers"].as_array_mut().unwrap().push(json!(
                    {"name": "sidecar", "image": "busybox", "volumeMounts": [{"name": "shroud-secrets", "mountPath": "/s"}]}
                ))
            }),
            "spec.containers[1].volumeMounts (container `sidecar`)",
        ),
        (
            with(&|p| {
                p["spec"]["initContainers"] = json!([
                    {"name": "swap", "image": "busybox", "volumeMounts": [{"name": "shroud-bin", "mountPath": "/b"}]}
                ])
            }),
            "spec.initContainers[0].volumeMounts (container `swap`)",
        ),
        (
            with(&|p| {
                p["spec"]["containers"][0]["volumeMounts"].as_array_mut().unwrap().push(
                    json!({"name": "evil", "mountPath": "/shroud/bin/shroud", "subPath": "fake"}),
                );
                p["spec"]["volumes"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "evil", "emptyDir": {}}));
            }),
            "/shroud/bin/shroud (at or under /shroud)",
        ),
        (
            with(&|p| {
                p["spec"]["containers"][0]["volumeMounts"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "evil", "mountPath": "/run/shroud/"}));
                p["spec"]["volumes"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "evil", "emptyDir": {}}));
            }),
            "at or under /run/shroud",
        ),
        (
            with(&|p| {
                p["spec"]["ephemeralContainers"] = json!([
                    {"name": "dbg", "image": "busybox", "volumeMounts": [{"name": "shroud-secrets", "mountPath": "/s"}]}
                ])
            }),
            "spec.ephemeralContainers[0].volumeMounts",
        ),
        (
            with(&|p| p["spec"]["shareProcessNamespace"] = json!(true)),
            "spec.shareProcessNamespace",
        ),
    ];
    for (pod, want) in cases {
        let m = h.denied(&pod, "");
        assert!(m.contains(want), "want `{want}` in: {m}");
    }
}

/// What another webhook (or an edit) does after shroud's mutation is caught by
/// `/validate`, which sees the final pod.
#[test]
fn validate_sees_the_final_pod() {
    let h = Hook::start(CONFIG);
    let patched = h.injected(&app_pod(json!({})));
    let tamper = |f: &dyn Fn(&mut Value)| {
        let mut p = patched.clone();
        f(&mut p);
        admission_review(&p)
    };
    let agent_at = |p: &Value| {
        p["spec"]["initContainers"]
            .as_array()
            .unwrap()
            .iter()
            .position(|c| c["name"] == "shroud-agent")
            .unwrap()
    };
    let idx = agent_at(&patched);
    let cases: Vec<(Value, &str)> = vec![
        (
            tamper(&|p| {
                p["spec"]["containers"].as_array_mut().unwrap().push(json!(
                    {"name": "late", "image": "busybox", "volumeMounts": [{"name": "shroud-secrets", "mountPath": "/s"}]}
                ))
            }),
            "container `late`",
        ),
        (
            tamper(&|p| p["spec"]["initContainers"][idx]["image"] = json!("evil/shroud:1")),
            "spec.initContainers[1].image (container `shroud-agent`)",
        ),
        (
            tamper(&|p| {
                let env = &mut p["spec"]["initContainers"][idx]["env"][0]["value"];
                *env = json!(env
                    .as_str()
                    .unwrap()
                    .replace("secret/data/shop/db", "secret/data/billing/db"));
            }),
            "spec.initContainers[1].env (container `shroud-agent`)",
        ),
        (
            tamper(
                &|p| p["spec"]["initContainers"][idx]["lifecycle"] = json!({"postStart": {"exec": {"command": ["/bin/sh", "-c", "cat /run/shroud/secrets/*"]}}}),
            ),
            "lifecycle",
        ),
        (
            tamper(&|p| p["spec"]["containers"][0]["command"] = json!(["/app"])),
            "spec.containers[0].command (container `app`)",
        ),
        (
            tamper(&|p| {
                p["spec"]["containers"][0]["command"][3] = json!("/tmp");
            }),
            "spec.containers[0].command",
        ),
        (
            tamper(&|p| {
                p["spec"]["volumes"]
                    .as_array_mut()
                    .unwrap()
                    .iter_mut()
                    .filter(|v| v["name"] == "shroud-secrets")
                    .for_each(|v| {
                        *v =
                            json!({"name": "shroud-secrets", "hostPath": {"path": "/var/log/apps"}})
                    });
            }),
            "spec.volumes",
        ),
    ];
    for (review, want) in cases {
        let m = h.rejected(&review);
        assert!(m.contains("shroud-ownership"), "{m}");
        assert!(m.contains(want), "want `{want}` in: {m}");
    }
    // The same tampered pods sent to /mutate as if never injected are denied too.
    let mut claimed = patched.clone();
    claimed["spec"]["initContainers"][idx]["image"] = json!("evil/shroud:1");
    h.denied(&claimed, "shroud-ownership");
}

/// Opting out by claiming to be injected, by case, or by running shroud by hand.
#[test]
fn claims_and_spellings_do_not_opt_out() {
    let h = Hook::start(CONFIG);
    // A hand-written "injected" pod whose agent reads another namespace's path.
    let patched = h.injected(&app_pod(json!({})));
    let mut forged = patched.clone();
    forged["metadata"]["annotations"]["shroud.dev/secret-db"] = json!("secret/data/billing/db");
    let m = h.denied(&forged, "secret-path-prefix");
    assert!(m.contains("secret/data/billing/db"), "{m}");
    assert!(h
        .rejected(&admission_review(&forged))
        .contains("secret-path-prefix"));
    // Claimed, nothing injected.
    let mut claimed = app_pod(json!({}));
    claimed["metadata"]["annotations"]["shroud.dev/status"] = json!("injected");
    assert!(h
        .denied(&claimed, "shroud-ownership")
        .contains("`shroud-init` is missing"));
    // Requested, never mutated (the mutating webhook was skipped).
    let m = h.rejected(&admission_review(&app_pod(json!({}))));
    assert!(m.contains("was not injected"), "{m}");
    // Case variants of the prefix.
    for key in [
        "Shroud.dev/inject",
        "SHROUD.DEV/status",
        "shroud.Dev/secret-x",
    ] {
        let mut pod = plain_pod(json!([]), json!([{"name": "c", "image": "busybox"}]));
        pod["metadata"]["annotations"] = json!({ key: "true" });
        let m = h.denied(&pod, "");
        assert!(m.contains(key), "{m}");
    }
    // Running shroud by hand with its own configuration, or the shroud image.
    for c in [
        json!({"name": "own", "image": "busybox", "env": [{"name": "SHROUD_CONFIG_TOML", "value": "[vault]\naddress='x'"}]}),
        json!({"name": "own", "image": "registry.example/shroud:0.2.0", "command": ["/shroud", "agent", "--config", "/c"]}),
        json!({"name": "own", "image": "registry.example/shroud@sha256:0000000000000000000000000000000000000000000000000000000000000000"}),
    ] {
        let pod = plain_pod(json!([]), json!([c]));
        let m = h.denied(&pod, "shroud-ownership");
        assert!(m.contains("container `own`"), "{m}");
        h.rejected(&admission_review(&pod));
    }
}

/// Updates and ephemeral containers of an injected pod.
#[test]
fn updates_and_ephemeral_containers() {
    let h = Hook::start(CONFIG);
    let pod = h.injected(&app_pod(json!({})));
    let update = |f: &dyn Fn(&mut Value), sub: Option<&str>| {
        let mut new = pod.clone();
        f(&mut new);
        review_of("UPDATE", &new, Some(&pod), sub)
    };
    // Allowed: a label, the app's image, a debug container that targets nothing.
    h.validated(&update(
        &|p| p["metadata"]["labels"] = json!({"x": "y"}),
        None,
    ));
    h.validated(&update(
        &|p| p["spec"]["containers"][0]["image"] = json!("registry.example/app:2"),
        None,
    ));
    h.validated(&update(
        &|p| p["spec"]["ephemeralContainers"] = json!([{"name": "dbg", "image": "busybox"}]),
        Some("ephemeralcontainers"),
    ));
    let denied: Vec<(Value, &str)> = vec![
        (
            update(
                &|p| {
                    let i = p["spec"]["initContainers"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .position(|c| c["name"] == "shroud-agent")
                        .unwrap();
                    p["spec"]["initContainers"][i]["image"] = json!("evil/agent:1");
                },
                None,
            ),
            "cannot change after the pod is created",
        ),
        (
            update(
                &|p| {
                    p["metadata"]["annotations"]["shroud.dev/secret-db"] =
                        json!("secret/data/shop/other")
                },
                None,
            ),
            "annotations cannot change",
        ),
        (
            update(
                &|p| {
                    p["spec"]["ephemeralContainers"] = json!([{"name": "dbg", "image": "busybox",
                    "volumeMounts": [{"name": "shroud-secrets", "mountPath": "/s"}]}])
                },
                Some("ephemeralcontainers"),
            ),
            "spec.ephemeralContainers[0].volumeMounts (container `dbg`)",
        ),
        (
            update(
                &|p| {
                    p["spec"]["ephemeralContainers"] =
                        json!([{"name": "dbg", "image": "busybox", "targetContainerName": "app"}])
                },
                Some("ephemeralcontainers"),
            ),
            "targetContainerName",
        ),
        (
            update(
                &|p| {
                    p["spec"]["ephemeralContainers"] =
                        json!([{"name": "dbg", "image": "registry.example/shroud:0.1.0"}])
                },
                Some("ephemeralcontainers"),
            ),
            "is not a container this webhook added",
        ),
    ];
    for (review, want) in denied {
        let m = h.rejected(&review);
        assert!(m.contains(want), "want `{want}` in: {m}");
    }
}

/// A template that would not compile in the agent is a denial naming the annotation.
#[test]
fn broken_templates_are_denied_at_admission() {
    let h = Hook::start(CONFIG);
    let m = h.denied(
        &app_pod(json!({"shroud.dev/secret-db-template": "user={{ username "})),
        "template",
    );
    assert!(
        m.contains("metadata.annotations[\"shroud.dev/secret-db-template\"]"),
        "{m}"
    );
    assert!(m.contains("line 1"), "{m}");
    h.injected(&app_pod(
        json!({"shroud.dev/secret-db-template": "user={{ username }}"}),
    ));
}

/// Namespaces listed as restricted get an agent without IPC_LOCK that passes
/// Pod Security "restricted"; the others keep it.
#[test]
fn restricted_namespaces_get_no_ipc_lock() {
    let h = Hook::start(CONFIG);
    let caps = |p: &Value| agent_container(p)["securityContext"]["capabilities"].clone();
    let mut pod = app_pod(json!({"shroud.dev/secret-db": "secret/data/secure/db"}));
    pod["metadata"]["namespace"] = json!("secure");
    let restricted = h.injected(&pod);
    assert_eq!(caps(&restricted), json!({"drop": ["ALL"]}));
    let normal = h.injected(&app_pod(json!({})));
    assert_eq!(caps(&normal), json!({"drop": ["ALL"], "add": ["IPC_LOCK"]}));
}

/// The chart's second registration (namespaces whose Pod Security level forbids
/// IPC_LOCK) calls `/mutate/restricted` and `/validate/restricted`: a pod that
/// passes "restricted" still passes it once injected there (checked with the
/// Pod Security admission rules in tests/support/pod_security.rs, on the pod
/// as the API server would default it), while `/mutate` in the same namespace
/// keeps IPC_LOCK, which "restricted" (and "baseline") refuse. An unknown
/// profile is a 400 naming the known ones.
#[test]
fn restricted_profile_passes_pod_security_restricted() {
    use shroud_e2e::pod_security::restricted_violations;
    let h = Hook::start(CONFIG);
    let mut pod = app_pod(json!({}));
    pod["spec"]["securityContext"]["seccompProfile"] = json!({"type": "RuntimeDefault"});
    pod["spec"]["containers"][0]["securityContext"] =
        json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}});
    let pod = shroud_e2e::apiserver::defaulted(&pod);
    assert_eq!(
        restricted_violations(&pod),
        Vec::<String>::new(),
        "the workload alone"
    );

    let restricted = h.injected_at("/restricted", &pod);
    assert_eq!(
        restricted_violations(&restricted),
        Vec::<String>::new(),
        "{restricted:#}"
    );
    for c in ["shroud-init", "shroud-agent"] {
        assert!(
            restricted["spec"]["initContainers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["name"] == c),
            "{c}"
        );
    }

    let normal = h.injected(&pod);
    assert_eq!(
        restricted_violations(&normal),
        vec![
            "capabilities_baseline: container `shroud-agent` adds IPC_LOCK".to_string(),
            "capabilities_restricted: container `shroud-agent` must not add IPC_LOCK".to_string(),
        ]
    );
    // Each registration re-derives the pod it injected, not the other's.
    let m = h.rejected(&admission_review(&restricted));
    assert!(
        m.contains("securityContext") && m.contains("shroud-agent"),
        "{m}"
    );

    for (path, base) in [
        ("/mutate/baseline", "/mutate"),
        ("/validate/Restricted", "/validate"),
    ] {
        let body = serde_json::to_vec(&admission_review(&pod)).unwrap();
        let a = h.client.request("POST", path, &body).unwrap();
        let text = String::from_utf8_lossy(&a.body);
        assert_eq!(a.status, 400, "{path}: {text}");
        assert!(
            text.contains("unknown Pod Security profile")
                && text.contains(path)
                && text.contains(&format!("use {base} (default) or {base}/restricted")),
            "{text}"
        );
    }
}

/// Over the container cap: denied before a container is built; metric labels
/// stay bounded whatever namespace a request names.
#[test]
fn container_cap_and_bounded_labels() {
    let h = Hook::start(CONFIG);
    let many: Vec<Value> = (0..41)
        .map(|i| json!({"name": format!("c{i}"), "image": "busybox"}))
        .collect();
    let pod = plain_pod(json!([]), json!(many));
    let m = h.denied(&pod, "");
    assert!(
        m.contains("41 containers") && m.contains("server.max_containers"),
        "{m}"
    );
    for ns in ["a", "b", "c", "d", "e", "NOT_A_NAMESPACE"] {
        let mut p = plain_pod(json!([]), json!(many));
        p["metadata"]["namespace"] = json!(ns);
        h.denied(&p, "");
    }
    let text = String::from_utf8(h.client.get("/metrics").unwrap().body).unwrap();
    let labels: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("shroud_webhook_denials_total{"))
        .collect();
    for want in [
        "namespace=\"other\",rule=\"container-limit\"} 3",
        "namespace=\"invalid\",rule=\"container-limit\"} 1",
    ] {
        assert!(
            labels.iter().any(|l| l.contains(want)),
            "{want} not in {labels:#?}"
        );
    }
    assert_eq!(labels.len(), 5, "{labels:#?}");
}

fn tls_stream(h: &Hook) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(h.ca_der.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let conn =
        rustls::ClientConnection::new(Arc::new(cfg), "localhost".try_into().unwrap()).unwrap();
    let tcp = TcpStream::connect(h.server.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

/// Blocks until the server closes the connection; returns how long it took.
fn until_closed(s: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return start.elapsed(),
            Ok(_) => {}
        }
    }
}

/// Stalled clients are dropped within the configured timeouts while `/healthz`
/// keeps answering.
#[test]
fn stalled_clients_are_dropped() {
    let h = Hook::start(CONFIG);
    // Half a header (1 s header timeout).
    let mut a = tls_stream(&h);
    a.write_all(b"POST /mutate HTTP/1.1\r\nhost: x\r\n")
        .unwrap();
    a.flush().unwrap();
    // Headers and half of the announced body (1 s body timeout).
    let mut b = tls_stream(&h);
    b.write_all(b"POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n{\"apiVersion\"")
        .unwrap();
    b.flush().unwrap();
    // Nothing at all after the handshake (2 s idle timeout).
    let mut c = tls_stream(&h);
    c.write_all(b"").unwrap();
    c.flush().unwrap();
    assert_eq!(h.client.get("/healthz").unwrap().status, 200);
    let ta = until_closed(&mut a);
    let tb = until_closed(&mut b);
    let tc = until_closed(&mut c);
    println!("dropped after: header {ta:?}, body {tb:?}, idle {tc:?}");
    assert!(ta < Duration::from_secs(3), "header stall held {ta:?}");
    assert!(tb < Duration::from_secs(3), "body stall held {tb:?}");
    assert!(tc < Duration::from_secs(4), "idle connection held {tc:?}");
    assert_eq!(h.client.get("/healthz").unwrap().status, 200);
}
