//! `shroud webhook` end to end: the built binary serving HTTPS on 127.0.0.1 with a
//! certificate from a test CA; AdmissionReviews from tests/fixtures/webhook; every
//! patch applied with json-patch and the result validated against the Kubernetes
//! schema by kubernetes-validate (PyPI); certificate reload; metrics; copy-self.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shroud_e2e::webhook::{
    admission_review, apply, replace_file, validate, Answer, Client, TestCa, WebhookProcess,
};
use shroud_e2e::{shroud, shroud_bin, workspace};

const CONFIG: &str = r#"
image = "shroud:test"
secrets_size_limit = "8Mi"

[vault]
address = "https://vault.vault.svc:8200"

[agent]
memory_limit = "48Mi"

[compat]
vault_agent = true

[policy.secret_paths]
allowed_prefixes = ["secret/data/{namespace}/", "database/creds/{namespace}_"]

[policy.host_paths]
allowed = ["/var/log/web"]

# Entrypoints from registries: tests/e2e/webhook_registry.rs (a local registry).
[registry]
enabled = false
"#;

fn fixture(name: &str) -> Value {
    let path = workspace().join("tests/fixtures/webhook").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

struct Harness {
    _ca: TestCa,
    _server: WebhookProcess,
    client: Client,
}

impl Harness {
    fn start() -> Harness {
        let ca = TestCa::new("shroud-test-ca");
        let leaf = ca.leaf();
        let server = WebhookProcess::start(&shroud_bin(), &ca, &leaf, CONFIG);
        let client = Client::new(server.addr, std::slice::from_ref(&ca.der));
        Harness {
            _ca: ca,
            _server: server,
            client,
        }
    }

    fn send(&self, pod: &Value) -> Value {
        let answer = self.client.mutate(
            serde_json::to_vec(&admission_review(pod))
                .unwrap()
                .as_slice(),
        );
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        let review = answer.json();
        assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(review["kind"], "AdmissionReview");
        assert_eq!(
            review["response"]["uid"],
            "705ab4f5-6393-11e8-b7cc-42010a800002"
        );
        review["response"].clone()
    }

    /// Sends the pod, expects it allowed with a patch, applies and validates it.
    fn inject(&self, pod: &Value) -> (Value, Value) {
        let response = self.send(pod);
        assert_eq!(response["allowed"], true, "{response:#}");
        assert_eq!(response["patchType"], "JSONPatch", "{response:#}");
        let patched = apply(pod, &response);
        validate(&patched);
        // A reinvocation of the webhook on its own output changes nothing.
        let again = self.send(&patched);
        assert_eq!(again["allowed"], true, "{again:#}");
        assert!(
            again.get("patch").is_none(),
            "reinvocation patched again: {again:#}"
        );
        (patched, response)
    }

    fn deny(&self, pod: &Value) -> String {
        let response = self.send(pod);
        assert_eq!(response["allowed"], false, "{response:#}");
        assert!(response.get("patch").is_none());
        assert_eq!(response["status"]["code"], 403);
        response["status"]["message"].as_str().unwrap().to_string()
    }
}

fn container<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name} in {list:#}"))
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn agent_toml(agent: &Value) -> toml_like::Doc {
    let env = agent["env"].as_array().unwrap();
    let cfg = env
        .iter()
        .find(|e| e["name"] == "SHROUD_CONFIG_TOML")
        .unwrap();
    toml_like::Doc(cfg["value"].as_str().unwrap().to_string())
}

/// The agent's TOML is checked by content; a TOML parser is the agent's business,
/// so these assertions only look for the lines the webhook must write.
mod toml_like {
    #[derive(Debug)]
    pub struct Doc(pub String);
    impl Doc {
        pub fn has(&self, line: &str) -> bool {
            self.0.lines().any(|l| l.trim() == line)
        }
    }
}

fn assert_wrapped(c: &Value, expect_tail: &[&str], on_rotate: Option<&str>) {
    let mut want = vec![
        "/shroud/bin/shroud",
        "exec",
        "--secrets-dir",
        "/run/shroud/secrets",
    ];
    if let Some(r) = on_rotate {
        want.extend(["--on-rotate", r]);
    }
    // Always: a restarted app container must wait for the re-rendered secrets.
    want.push("--wait-ready");
    // As long as the startup probe's budget (agent.startup_timeout_seconds).
    want.extend(["--ready-timeout", "120s"]);
    want.push("--");
    want.extend_from_slice(expect_tail);
    assert_eq!(strings(&c["command"]), want, "{c:#}");
    assert!(
        c.get("args").is_none(),
        "args must be folded into the command: {c:#}"
    );
    let mounts = c["volumeMounts"].as_array().unwrap();
    let secrets = mounts
        .iter()
        .find(|m| m["mountPath"] == "/run/shroud/secrets")
        .unwrap();
    assert_eq!(secrets["name"], "shroud-secrets");
    assert_eq!(secrets["readOnly"], true);
    let marker = mounts
        .iter()
        .find(|m| m["mountPath"] == "/run/shroud/secrets/.shroud")
        .unwrap();
    assert_eq!(marker["subPath"], ".shroud");
    let bin = mounts
        .iter()
        .find(|m| m["mountPath"] == "/shroud/bin")
        .unwrap();
    assert_eq!(bin["name"], "shroud-bin");
    assert_eq!(bin["readOnly"], true);
}

fn assert_agent_least_privilege(agent: &Value) {
    assert_eq!(strings(&agent["command"]), ["/shroud/bin/shroud", "agent"]);
    assert_eq!(agent["image"], "shroud:test");
    let sc = &agent["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert!(sc["runAsUser"].as_i64().unwrap() > 0);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"]);
    assert_eq!(strings(&sc["capabilities"]["add"]), ["IPC_LOCK"]);
    assert_eq!(agent["resources"]["limits"]["memory"], "48Mi");
    assert_eq!(agent["resources"]["requests"]["cpu"], "10m");
    let m = &agent["volumeMounts"][0];
    assert_eq!(m["name"], "shroud-secrets");
    assert_eq!(m["mountPath"], "/run/shroud/secrets");
    assert!(m.get("readOnly").is_none());
    // The agent's own state (token, leases) in a volume only it mounts.
    let st = &agent["volumeMounts"][1];
    assert_eq!(st["name"], "shroud-state");
    assert_eq!(st["mountPath"], "/run/shroud/state");
    // It runs the copied binary, the same file as the wrapped containers' exec.
    let bin = &agent["volumeMounts"][2];
    assert_eq!(bin["name"], "shroud-bin");
    assert_eq!(bin["mountPath"], "/shroud/bin");
    assert_eq!(bin["readOnly"], true);
    let toml = agent["env"][0]["value"].as_str().unwrap();
    assert!(
        toml.contains("[state]\ndir = \"/run/shroud/state/agent\""),
        "{toml}"
    );
}

fn assert_volumes(spec: &Value) {
    let vols = spec["volumes"].as_array().unwrap();
    let secrets = vols.iter().find(|v| v["name"] == "shroud-secrets").unwrap();
    assert_eq!(secrets["emptyDir"]["medium"], "Memory");
    assert_eq!(secrets["emptyDir"]["sizeLimit"], "8Mi");
    // The binary is not a secret: a disk emptyDir, not RAM charged to the pod.
    let bin = vols.iter().find(|v| v["name"] == "shroud-bin").unwrap();
    assert!(bin["emptyDir"].get("medium").is_none(), "{bin:#}");
    assert_eq!(bin["emptyDir"]["sizeLimit"], "64Mi");
    let state = vols.iter().find(|v| v["name"] == "shroud-state").unwrap();
    assert_eq!(state["emptyDir"]["medium"], "Memory");
    // Nobody but the agent mounts the state.
    for c in spec["containers"]
        .as_array()
        .into_iter()
        .chain(spec["initContainers"].as_array())
        .flatten()
    {
        let mounts_state = c["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| m["name"] == "shroud-state");
        assert_eq!(mounts_state, c["name"] == "shroud-agent", "{c:#}");
    }
}

fn assert_init(spec: &Value) {
    let init = &spec["initContainers"][0];
    assert_eq!(init["name"], "shroud-init");
    assert_eq!(
        strings(&init["command"]),
        ["/shroud", "copy-self", "/shroud/bin/shroud"]
    );
    assert_eq!(init["volumeMounts"][0]["mountPath"], "/shroud/bin");
    assert_eq!(init["securityContext"]["readOnlyRootFilesystem"], true);
}

fn assert_native_agent(spec: &Value) -> Value {
    let agent = spec["initContainers"][1].clone();
    assert_eq!(agent["name"], "shroud-agent");
    assert_eq!(agent["restartPolicy"], "Always");
    assert_eq!(
        strings(&agent["startupProbe"]["exec"]["command"]),
        [
            "/shroud/bin/shroud",
            "probe",
            "ready",
            "--dir",
            "/run/shroud/secrets"
        ]
    );
    assert_agent_least_privilege(&agent);
    agent
}

#[test]
fn deployment_pod_gets_native_sidecar_and_wrapped_command() {
    let h = Harness::start();
    let pod = fixture("deployment-pod.json");
    let (patched, response) = h.inject(&pod);
    assert!(response.get("warnings").is_none(), "{response:#}");
    let spec = &patched["spec"];
    assert_eq!(
        patched["metadata"]["annotations"]["shroud.dev/status"],
        "injected"
    );
    assert_eq!(
        names(&spec["initContainers"]),
        ["shroud-init", "shroud-agent"]
    );
    assert_eq!(names(&spec["containers"]), ["api"]);
    assert_init(spec);
    let agent = assert_native_agent(spec);
    // The agent shares the workload's UID so the files can be owner-only.
    assert_eq!(agent["securityContext"]["runAsUser"], 1000);
    // It logs in with the pod's service-account token, mounted by copy.
    let token = agent["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount")
        .unwrap_or_else(|| panic!("agent has no token mount: {agent:#}"));
    assert_eq!(token["name"], "kube-api-access-abcde");
    assert_eq!(token["readOnly"], true);
    let api = container(&spec["containers"], "api");
    assert_wrapped(
        api,
        &["/app/server", "--port", "8080"],
        Some("signal:SIGHUP"),
    );
    // The pod's own volumes and mounts are untouched.
    assert_eq!(spec["volumes"][0]["name"], "kube-api-access-abcde");
    assert_eq!(api["volumeMounts"][0]["name"], "kube-api-access-abcde");
    assert_eq!(api["ports"][0]["containerPort"], 8080);
    assert_volumes(spec);
    let toml = agent_toml(&agent);
    for line in [
        "address = \"https://vault.vault.svc:8200\"",
        "method = \"kubernetes\"",
        "role = \"shop-api\"",
        "jwt_path = \"/var/run/secrets/kubernetes.io/serviceaccount/token\"",
        "dir = \"/run/shroud/secrets\"",
        "require_tmpfs = true",
        "uid = 1000",
        "mode = \"0400\"",
        "name = \"db\"",
        "path = \"database/creds/shop_api\"",
        "kind = \"dynamic\"",
        "name = \"stripe\"",
        "kind = \"kv2\"",
        "field = \"api_key\"",
        "format = \"raw\"",
        "revoke_on_exit = true",
    ] {
        assert!(toml.has(line), "agent config lacks `{line}`:\n{}", toml.0);
    }
}

#[test]
fn job_pod_completes_with_native_sidecar() {
    let h = Harness::start();
    let (patched, _) = h.inject(&fixture("job-pod.json"));
    let spec = &patched["spec"];
    assert_eq!(spec["restartPolicy"], "Never");
    let agent = assert_native_agent(spec);
    // With an fsGroup the files are group-readable by the pod's containers.
    assert_eq!(agent["securityContext"]["runAsGroup"], 2000);
    let toml = agent_toml(&agent);
    assert!(
        toml.has("mode = \"0440\"") && toml.has("gid = 2000") && toml.has("format = \"env\""),
        "{}",
        toml.0
    );
    assert_wrapped(
        container(&spec["containers"], "report"),
        &["python", "-m", "report", "--since", "24h"],
        None,
    );
}

#[test]
fn several_containers_and_init_containers() {
    let h = Harness::start();
    let (patched, response) = h.inject(&fixture("multi-container.json"));
    let spec = &patched["spec"];
    // The copy and the agent run before the pod's own init containers, so a
    // wrapped init container finds both the binary and its secrets.
    assert_eq!(
        names(&spec["initContainers"]),
        ["shroud-init", "shroud-agent", "migrate", "wait-for-mq"]
    );
    assert_wrapped(
        container(&spec["initContainers"], "migrate"),
        &["/usr/local/bin/migrate", "up"],
        None,
    );
    assert_wrapped(
        container(&spec["containers"], "worker"),
        &["/usr/local/bin/worker", "--queue", "orders", "--verbose"],
        None,
    );
    for untouched in ["wait-for-mq", "log-shipper"] {
        let list = if untouched == "log-shipper" {
            &spec["containers"]
        } else {
            &spec["initContainers"]
        };
        let c = container(list, untouched);
        assert!(c.get("volumeMounts").is_none(), "{c:#}");
        assert!(!strings(&c["command"]).contains(&"/shroud/bin/shroud".to_string()));
    }
    let agent = assert_native_agent(spec);
    let toml = agent_toml(&agent);
    assert!(toml.has("format = \"template\""), "{}", toml.0);
    assert!(
        toml.0.contains("amqp://{{ user }}:{{ password }}@mq:5672/"),
        "{}",
        toml.0
    );
    // Wrapped containers with different (or unknown) users: readable with a warning.
    assert!(toml.has("mode = \"0444\""), "{}", toml.0);
    let warnings = response["warnings"].to_string();
    assert!(warnings.contains("fsGroup"), "{warnings}");
}

#[test]
fn existing_volumes_and_mounts_with_classic_sidecar() {
    let h = Harness::start();
    let (patched, _) = h.inject(&fixture("existing-volumes.json"));
    let spec = &patched["spec"];
    assert_eq!(
        names(&spec["volumes"]),
        [
            "config",
            "cache",
            "logs",
            "shroud-secrets",
            "shroud-state",
            "shroud-bin"
        ]
    );
    assert_volumes(spec);
    // Classic sidecar: only the copy is an init container; the agent runs beside
    // the app, which waits for the first render itself.
    assert_eq!(names(&spec["initContainers"]), ["shroud-init"]);
    assert_eq!(names(&spec["containers"]), ["nginx", "shroud-agent"]);
    let agent = container(&spec["containers"], "shroud-agent");
    assert!(agent.get("restartPolicy").is_none());
    assert!(agent.get("startupProbe").is_none());
    assert_eq!(
        strings(&agent["readinessProbe"]["exec"]["command"]),
        [
            "/shroud/bin/shroud",
            "probe",
            "ready",
            "--dir",
            "/run/shroud/secrets"
        ]
    );
    assert_agent_least_privilege(agent);
    let nginx = container(&spec["containers"], "nginx");
    assert_wrapped(nginx, &["nginx", "-g", "daemon off;"], None);
    let mounts: Vec<_> = nginx["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        mounts,
        [
            "config",
            "cache",
            "shroud-secrets",
            "shroud-secrets",
            "shroud-bin"
        ]
    );
}

#[test]
fn no_command_is_denied_unless_annotated() {
    let h = Harness::start();
    let mut pod = fixture("no-command.json");
    let message = h.deny(&pod);
    assert!(
        message.contains("container `app` has no `command`"),
        "{message}"
    );
    assert!(message.contains("shroud.dev/command-app"), "{message}");
    pod["metadata"]["annotations"]["shroud.dev/command-app"] =
        json!("/opt/legacy/bin/start --config /etc/legacy.yaml");
    let (patched, _) = h.inject(&pod);
    assert_wrapped(
        container(&patched["spec"]["containers"], "app"),
        &[
            "/opt/legacy/bin/start",
            "--config",
            "/etc/legacy.yaml",
            "serve",
            "--verbose",
        ],
        None,
    );
}

#[test]
fn already_injected_pod_is_left_alone() {
    let h = Harness::start();
    // The webhook's own output is re-derived and allowed unchanged.
    let (patched, _) = h.inject(&fixture("deployment-pod.json"));
    let response = h.send(&patched);
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none());
    // A pod that only claims it is not.
    let mut pod = fixture("deployment-pod.json");
    pod["metadata"]["annotations"]["shroud.dev/status"] = json!("injected");
    let message = h.deny(&pod);
    assert!(message.contains("`shroud-init` is missing"), "{message}");
    // Pods that did not ask are allowed unchanged.
    let mut plain = fixture("deployment-pod.json");
    plain["metadata"]["annotations"] = json!({"team": "shop"});
    let response = h.send(&plain);
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none());
}

#[test]
fn vault_agent_annotations_are_understood() {
    let h = Harness::start();
    let (patched, response) = h.inject(&fixture("vault-agent.json"));
    let spec = &patched["spec"];
    let agent = assert_native_agent(spec);
    let toml = agent_toml(&agent);
    assert!(toml.has("role = \"billing\""), "{}", toml.0);
    assert!(
        toml.has("name = \"db-creds\"") && toml.has("name = \"config\""),
        "{}",
        toml.0
    );
    // The injector's template as is, for the Consul Template engine.
    assert!(
        toml.0
            .contains("postgres://{{ .Data.username }}:{{ .Data.password }}@postgres:5432/billing")
            && toml.0.contains("[[template]]"),
        "{}",
        toml.0
    );
    let billing = container(&spec["containers"], "billing");
    assert_wrapped(billing, &["/billing"], None);
    // Files also appear where Vault Agent put them.
    assert!(billing["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["mountPath"] == "/vault/secrets"
            && m["name"] == "shroud-secrets"
            && m["readOnly"] == true));
    // A secret without a template: the injector's default map template.
    assert!(
        toml.0
            .contains("{{ range $k, $v := .Data }}{{ $k }}: {{ $v }}"),
        "{}",
        toml.0
    );
    let warnings = response["warnings"].to_string();
    assert!(warnings.contains("agent-pre-populate-only"), "{warnings}");
}

#[test]
fn guardrail_host_paths_with_node_credentials() {
    let h = Harness::start();
    let message = h.deny(&fixture("host-path-docker.json"));
    assert!(message.contains("policy `host-path`"), "{message}");
    assert!(
        message.contains("spec.volumes[1].hostPath.path (volume `sock`)"),
        "{message}"
    );
    let message = h.deny(&fixture("host-path-kubelet.json"));
    assert!(
        message.contains("spec.volumes[0].hostPath.path"),
        "{message}"
    );
    assert!(
        message.contains("/var/lib/../lib/kubelet/pki/"),
        "{message}"
    );
    assert!(message.contains("without `..` segments"), "{message}");
    // Exempt namespace (kube-system by default).
    let mut pod = fixture("host-path-docker.json");
    pod["metadata"]["namespace"] = json!("kube-system");
    assert_eq!(h.send(&pod)["allowed"], true);
}

#[test]
fn guardrail_secret_path_prefixes() {
    let h = Harness::start();
    let message = h.deny(&fixture("secret-path-outside.json"));
    assert!(message.contains("policy `secret-path-prefix`"), "{message}");
    assert!(
        message.contains("metadata.annotations[\"shroud.dev/secret-theirs\"]"),
        "{message}"
    );
    assert!(message.contains("secret/data/shop/"), "{message}");
}

#[test]
fn unknown_annotation_is_denied_by_name() {
    let h = Harness::start();
    let message = h.deny(&fixture("unknown-annotation.json"));
    assert!(
        message.contains("unknown annotation `shroud.dev/secrets-db`"),
        "{message}"
    );
}

#[test]
fn malformed_requests_get_400_with_a_message() {
    let h = Harness::start();
    let a = h
        .client
        .mutate(b"{\"apiVersion\": \"admission.k8s.io/v1\", \"kind\": ");
    assert_eq!(a.status, 400);
    let text = String::from_utf8_lossy(&a.body);
    assert!(
        text.contains("not an admission.k8s.io/v1 AdmissionReview"),
        "{text}"
    );
    let a = h
        .client
        .mutate(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#);
    assert_eq!(a.status, 400);
    assert!(String::from_utf8_lossy(&a.body).contains("no `request`"));
    let a = h.client.get("/mutate").unwrap();
    assert_eq!(a.status, 405);
    let a = h.client.get("/nope").unwrap();
    assert_eq!(a.status, 404);
}

#[test]
fn metrics_count_injections_and_denials_by_namespace() {
    let h = Harness::start();
    h.inject(&fixture("deployment-pod.json"));
    h.deny(&fixture("host-path-docker.json"));
    h.deny(&fixture("unknown-annotation.json"));
    h.client.mutate(b"not json");
    let text = String::from_utf8(h.client.get("/metrics").unwrap().body).unwrap();
    for line in [
        "shroud_webhook_injections_total{namespace=\"shop\"} 1",
        "shroud_webhook_denials_total{namespace=\"ci\",rule=\"host-path\"} 1",
        "shroud_webhook_denials_total{namespace=\"shop\",rule=\"annotations\"} 1",
        "shroud_webhook_requests_total{result=\"invalid\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in\n{text}"
        );
    }
    assert!(
        text.contains("shroud_webhook_request_duration_seconds_bucket{path=\"/mutate\""),
        "{text}"
    );
}

/// The patched pod's commands really run: `shroud-init`'s copy-self, the agent's
/// readiness probe (failing before the first render, passing after), and the
/// wrapped command: `shroud exec` waiting for the ready marker (classic sidecar), the secret
/// read from the secrets directory and masked in the output, the exit code kept
/// and the exit marker written.
#[test]
fn patched_command_runs_under_shroud_exec() {
    let h = Harness::start();
    let mut pod = fixture("deployment-pod.json");
    pod["metadata"]["annotations"]["shroud.dev/native-sidecar"] = json!("false");
    pod["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("shroud.dev/on-rotate");
    pod["spec"]["containers"][0]["command"] = json!(["sh", "-c"]);
    pod["spec"]["containers"][0]["args"] =
        json!(["echo \"key=$(cat /run/shroud/secrets/stripe)\"; exit 3"]);
    let (patched, _) = h.inject(&pod);
    let command = strings(&patched["spec"]["containers"][0]["command"]);

    let secrets = shroud_e2e::Tmpfs::new();
    let bin_dir = tempfile::tempdir().unwrap();
    let bin = bin_dir.path().join("shroud");
    let dir = secrets.path().to_str().unwrap();
    // Every command of the patched pod runs with the image's `/shroud` and the pod's
    // paths mapped to local ones.
    let local = |cmd: &Value| -> Vec<String> {
        strings(cmd)
            .iter()
            .map(|a| {
                if a == "/shroud" {
                    shroud_bin().to_str().unwrap().to_string()
                } else {
                    a.replace("/shroud/bin/shroud", bin.to_str().unwrap())
                        .replace("/run/shroud/secrets", dir)
                }
            })
            .collect()
    };
    let run = |argv: Vec<String>| {
        shroud_e2e::run_with_input(
            std::process::Command::new(&argv[0]).args(&argv[1..]),
            b"",
            Duration::from_secs(20),
        )
    };
    let init = run(local(&patched["spec"]["initContainers"][0]["command"]));
    assert!(init.status.success(), "shroud-init: {}", init.err());
    let agent = container(&patched["spec"]["containers"], "shroud-agent");
    let probe = local(&agent["readinessProbe"]["exec"]["command"]);
    assert!(
        !run(probe.clone()).status.success(),
        "ready before the first render"
    );
    let secret = "sk_live_4eC39HqLyjWDarjtT1zdp7dc";
    std::fs::write(secrets.path().join("stripe"), secret).unwrap();
    std::fs::create_dir_all(secrets.path().join(".shroud")).unwrap();
    std::fs::write(secrets.path().join(".shroud/ready"), "").unwrap();
    assert!(run(probe).status.success(), "probe fails after the render");
    let wrapped = local(&json!(command));
    assert!(wrapped.contains(&"--wait-ready".to_string()), "{wrapped:?}");
    let out = run(wrapped);
    assert_eq!(out.status.code(), Some(3), "{}", out.err());
    assert!(!out.out().contains(secret), "secret leaked: {}", out.out());
    // `[REDACTED]`: the value has Stripe's format, but known values win over
    // the detectors (the matcher sees the stream first).
    assert!(out.out().contains("key=[REDACTED"), "{}", out.out());
    let exited = std::fs::read_to_string(secrets.path().join(".shroud/exited")).unwrap();
    assert_eq!(exited.trim(), "3");
}

fn served(client: &Client) -> Answer {
    client.get("/healthz").expect("healthz over TLS")
}

#[test]
fn certificate_is_reloaded_when_the_files_change() {
    let ca1 = TestCa::new("ca-one");
    let ca2 = TestCa::new("ca-two");
    let leaf1 = ca1.leaf();
    let leaf2 = ca2.leaf();
    let server = WebhookProcess::start(&shroud_bin(), &ca1, &leaf1, CONFIG);
    let client = Client::new(server.addr, &[ca1.der.clone(), ca2.der.clone()]);
    assert_eq!(served(&client).server_cert, leaf1.der);

    // Rotate: key first, then certificate, each by rename (as cert-manager does).
    replace_file(&server.key_path, &leaf2.key_pem);
    replace_file(&server.cert_path, &leaf2.cert_pem);
    let deadline = Instant::now() + Duration::from_secs(10);
    while served(&client).server_cert != leaf2.der {
        assert!(
            Instant::now() < deadline,
            "new certificate not served within 10s: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Clients trusting only the old CA now fail; the new CA works.
    let old_only = Client::new(server.addr, std::slice::from_ref(&ca1.der));
    assert!(old_only.get("/healthz").is_err());

    // A broken file keeps the last good pair in service.
    let metrics = Client::new(server.addr, std::slice::from_ref(&ca2.der));
    let reloads = |result: &str| -> u64 {
        let text = String::from_utf8(metrics.get("/metrics").unwrap().body).unwrap();
        let key = format!("shroud_webhook_tls_reloads_total{{result=\"{result}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&key))
            .map_or(0, |n| n.parse().unwrap())
    };
    assert!(reloads("ok") >= 1);
    let errors_before = reloads("error");
    replace_file(
        &server.cert_path,
        "-----BEGIN CERTIFICATE-----\nnot base64\n",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while reloads("error") == errors_before {
        assert!(
            Instant::now() < deadline,
            "broken certificate not noticed: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(served(&client).server_cert, leaf2.der);
}

/// API servers negotiate HTTP/2 when offered: admission works over h2 too.
#[test]
fn admission_over_http2() {
    use http_body_util::{BodyExt as _, Full};
    use hyper::body::Bytes;
    let ca = TestCa::new("ca");
    let leaf = ca.leaf();
    let server = WebhookProcess::start(&shroud_bin(), &ca, &leaf, CONFIG);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der.clone()).unwrap();
    let mut tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls));
    let body = serde_json::to_vec(&admission_review(&fixture("job-pod.json"))).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (alpn, status, answer) = rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let stream = connector.connect(name, tcp).await.unwrap();
        let alpn = stream.get_ref().1.alpn_protocol().map(|p| p.to_vec());
        let (mut send, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::post(format!("https://localhost:{}/mutate", server.addr.port()))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (alpn, status, bytes)
    });
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(status, 200);
    let review: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(review["response"]["allowed"], true);
    assert!(review["response"].get("patch").is_some());
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let ca = TestCa::new("ca");
    let leaf = ca.leaf();
    let mut server = WebhookProcess::start(&shroud_bin(), &ca, &leaf, CONFIG);
    let client = Client::new(server.addr, std::slice::from_ref(&ca.der));
    assert_eq!(client.get("/healthz").unwrap().status, 200);
    let status = server.stop_with(nix::sys::signal::Signal::SIGTERM, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{}", server.log());
    assert!(
        server.log().contains("shroud webhook stopped"),
        "{}",
        server.log()
    );
    assert!(client.get("/healthz").is_err(), "still serving after exit");
}

#[test]
fn bad_certificate_or_config_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("ca");
    let leaf = ca.leaf();
    let other = ca.leaf();
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    std::fs::write(&cert, &leaf.cert_pem).unwrap();
    std::fs::write(&key, &other.key_pem).unwrap();
    let out = shroud()
        .args(["webhook", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not match"),
        "{out:?}"
    );

    std::fs::write(&key, &leaf.key_pem).unwrap();
    let config = dir.path().join("webhook.toml");
    std::fs::write(
        &config,
        "[policy.host_paths]\ndenied = [\"relative/path\"]\n",
    )
    .unwrap();
    let out = shroud()
        .args(["webhook", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("policy.host_paths.denied[0]") && err.contains("webhook.toml"),
        "{err}"
    );
}

#[test]
fn copy_self_installs_an_executable_copy() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let dest: PathBuf = dir.path().join("shroud");
    let out = shroud().arg("copy-self").arg(&dest).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let meta = std::fs::metadata(&dest).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
    assert_eq!(meta.len(), std::fs::metadata(shroud_bin()).unwrap().len());
    let out = std::process::Command::new(&dest)
        .arg("--version")
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("shroud"),
        "{out:?}"
    );
    let out = shroud().arg("copy-self").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a directory"));
}

/// A pod whose app reaches PostgreSQL through a gateway of its agent.
fn gateway_pod(annotations: &[(&str, &str)]) -> Value {
    let mut a = serde_json::Map::new();
    for (k, v) in [
        ("shroud.dev/inject", "true"),
        ("shroud.dev/role", "shop-api"),
        ("shroud.dev/secret-db", "database/creds/shop_api"),
    ]
    .iter()
    .chain(annotations)
    {
        a.insert(k.to_string(), json!(v));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "api", "namespace": "shop", "annotations": a},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1", "command": ["/app"]}]}
    })
}

const PG_GATEWAY: &str = r#"kind = "postgres", secret = "db", listen = "127.0.0.1:5432", upstream = "db.shop.svc:5432", max_connections = 20"#;

/// `shroud.dev/gateway-<name>` becomes the agent's `[[gateway]]`, a
/// `-gateway-only` secret is written to no file the app mounts, and the agent
/// accepts the configuration the webhook wrote (`shroud config validate`).
#[test]
fn gateway_annotation_renders_a_gateway_the_agent_accepts() {
    let h = Harness::start();
    let pod = gateway_pod(&[
        ("shroud.dev/secret-db-gateway-only", "true"),
        ("shroud.dev/gateway-pg", PG_GATEWAY),
    ]);
    let (patched, _) = h.inject(&pod);
    let spec = &patched["spec"];
    let agent = assert_native_agent(spec);
    let toml = agent_toml(&agent);
    for line in [
        "[[gateway]]",
        "name = \"pg\"",
        "kind = \"postgres\"",
        "secret = \"db\"",
        "listen = \"127.0.0.1:5432\"",
        "upstream = \"db.shop.svc:5432\"",
        "max_connections = 20",
        "gateway_only = true",
    ] {
        assert!(toml.has(line), "agent config lacks `{line}`:\n{}", toml.0);
    }
    // The app gets the secrets volume, where a gateway-only secret is never
    // written, and nothing naming the credential.
    let app = container(&spec["containers"], "app");
    assert!(
        !app.to_string().contains("database/creds"),
        "the app's container refers to the credential: {app:#}"
    );
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("agent.toml");
    std::fs::write(&f, &toml.0).unwrap();
    let done = shroud_e2e::run_with_input(
        shroud().args(["config", "validate"]).arg(&f),
        b"",
        Duration::from_secs(30),
    );
    assert!(done.status.success(), "{}\n{}", done.err(), toml.0);
}

/// A malformed gateway value, one that would reach past the pod, one the agent
/// would reject (its secret is not dynamic) and a `-gateway-only` secret no
/// gateway uses are denied, each naming its annotation.
#[test]
fn bad_gateway_annotations_are_denied_by_name() {
    let h = Harness::start();
    let cases: [(&[(&str, &str)], &str); 5] = [
        (
            &[("shroud.dev/gateway-pg", "kind=postgres,secret=db")],
            "annotation `shroud.dev/gateway-pg`: must be `[[gateway]]` keys as a TOML inline table",
        ),
        (
            &[(
                "shroud.dev/gateway-pg",
                r#"kind = "postgres", secret = "db", listen = "0.0.0.0:5432", upstream = "db:5432", allow_remote = true"#,
            )],
            "annotation `shroud.dev/gateway-pg`: `allow_remote` is not available to pods",
        ),
        (
            &[(
                "shroud.dev/gateway-pg",
                r#"kind = "postgres", secret = "db", listen = "127.0.0.1:5432", upstream = "db:5432", colour = "red""#,
            )],
            "unknown field `colour`",
        ),
        (
            &[
                ("shroud.dev/secret-kv", "secret/data/shop/kv"),
                (
                    "shroud.dev/gateway-pg",
                    r#"kind = "postgres", secret = "kv", listen = "127.0.0.1:5432", upstream = "db:5432""#,
                ),
            ],
            "metadata.annotations[\"shroud.dev/gateway-pg\"]",
        ),
        (
            &[("shroud.dev/secret-db-gateway-only", "true")],
            "metadata.annotations[\"shroud.dev/secret-db-gateway-only\"]",
        ),
    ];
    for (extra, want) in cases {
        let message = h.deny(&gateway_pod(extra));
        assert!(message.contains(want), "{extra:?}: {message}");
    }
}
