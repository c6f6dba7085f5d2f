//! Pods written for the Vault Agent Injector (vault-k8s) and the OpenBao injector
//! (openbao-k8s) through the real webhook over TLS: every honoured annotation
//! changes the patched pod or the agent's configuration as its table row in
//! docs/migrate.md says (the patched pod validated by kubernetes-validate, the
//! agent's configuration checked by `shroud config validate`), every accepted
//! tuning annotation is named in a warning, every refused one is denied by name.

use serde_json::{json, Value};
use shroud_e2e::webhook::{admission_review, apply, validate, Client, TestCa, WebhookProcess};
use shroud_e2e::{shroud, shroud_bin};

const CONFIG: &str = r#"
image = "shroud:test"

[vault]
address = "https://vault.vault.svc:8200"

[compat]
vault_agent = true

[registry]
enabled = false
"#;

struct Webhook {
    _ca: TestCa,
    _server: WebhookProcess,
    client: Client,
}

impl Webhook {
    fn start() -> Webhook {
        let ca = TestCa::new("shroud-migrate-ca");
        let leaf = ca.leaf();
        let server = WebhookProcess::start(&shroud_bin(), &ca, &leaf, CONFIG);
        let client = Client::new(server.addr, std::slice::from_ref(&ca.der));
        Webhook {
            _ca: ca,
            _server: server,
            client,
        }
    }

    fn send(&self, pod: &Value) -> Value {
        let body = serde_json::to_vec(&admission_review(pod)).unwrap();
        let answer = self.client.mutate(&body);
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        answer.json()["response"].clone()
    }

    /// The pod injected: the patch applied and validated, the agent's
    /// configuration accepted by the agent's own validation.
    fn inject(&self, pod: &Value) -> Injected {
        let response = self.send(pod);
        assert_eq!(response["allowed"], true, "{response:#}");
        let patched = apply(pod, &response);
        validate(&patched);
        let agent = patched["spec"]["initContainers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "shroud-agent")
            .cloned()
            .expect("the agent as a native sidecar");
        let toml = agent["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "SHROUD_CONFIG_TOML")
            .unwrap()["value"]
            .as_str()
            .unwrap()
            .to_string();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agent.toml");
        std::fs::write(&file, &toml).unwrap();
        let out = shroud()
            .args(["config", "validate"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "config validate: {}\n{toml}",
            String::from_utf8_lossy(&out.stderr)
        );
        Injected {
            patched,
            agent,
            toml,
            warnings: response["warnings"].to_string(),
        }
    }

    fn deny(&self, pod: &Value) -> String {
        let response = self.send(pod);
        assert_eq!(response["allowed"], false, "{response:#}");
        response["status"]["message"].as_str().unwrap().to_string()
    }
}

struct Injected {
    patched: Value,
    agent: Value,
    toml: String,
    warnings: String,
}

impl Injected {
    fn has(&self, line: &str) -> bool {
        self.toml.lines().any(|l| l.trim() == line)
    }

    fn app_mounts(&self) -> Vec<(String, bool)> {
        self.patched["spec"]["containers"][0]["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["name"] == "shroud-secrets")
            .map(|m| {
                (
                    m["mountPath"].as_str().unwrap().to_string(),
                    m["readOnly"] == true,
                )
            })
            .collect()
    }
}

fn pod(prefix: &str, extra: &[(&str, &str)]) -> Value {
    let mut annotations = json!({
        format!("{prefix}agent-inject"): "true",
        format!("{prefix}role"): "billing",
        format!("{prefix}agent-inject-secret-db"): "database/creds/billing_app",
    });
    for (k, v) in extra {
        annotations[format!("{prefix}{k}")] = json!(v);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "billing", "namespace": "billing", "annotations": annotations},
        "spec": {
            "securityContext": {"runAsUser": 1000, "fsGroup": 1000},
            "containers": [
                {"name": "billing", "image": "registry.example/billing:5", "command": ["/billing"]},
                {"name": "worker", "image": "registry.example/worker:5", "command": ["/worker"]}
            ]
        }
    })
}

const VAULT: &str = "vault.hashicorp.com/";
const OPENBAO: &str = "openbao.org/";

#[test]
fn both_injectors_default_to_their_directory_and_the_map_template() {
    let w = Webhook::start();
    for (prefix, dir) in [(VAULT, "/vault/secrets"), (OPENBAO, "/openbao/secrets")] {
        let i = w.inject(&pod(prefix, &[]));
        assert!(
            i.app_mounts().contains(&(dir.to_string(), true)),
            "{prefix}: {:?}",
            i.app_mounts()
        );
        // No template: the injectors' default, `key: value` lines.
        assert!(
            i.toml.contains("{% for k, v in data|items %}"),
            "{}",
            i.toml
        );
        assert!(i.has("role = \"billing\""), "{}", i.toml);
    }
}

#[test]
fn honoured_pod_annotations_change_the_pod_and_the_agent() {
    let w = Webhook::start();
    let i = w.inject(&pod(
        VAULT,
        &[
            ("auth-path", "auth/k8s-east"),
            ("namespace", "team-a"),
            ("service", "https://vault.team-a.svc:8200"),
            ("tls-server-name", "vault.team-a.svc"),
            ("agent-limits-cpu", "500m"),
            ("agent-limits-mem", "96Mi"),
            ("agent-requests-mem", "32Mi"),
            ("agent-requests-ephemeral", "1Mi"),
            ("agent-revoke-on-shutdown", "false"),
            ("agent-inject-containers", "worker"),
            ("secret-volume-path", "/etc/billing/secrets"),
            ("agent-inject-default-template", "json"),
        ],
    ));
    for line in [
        "mount = \"k8s-east\"",
        "namespace = \"team-a\"",
        "address = \"https://vault.team-a.svc:8200\"",
        "tls_server_name = \"vault.team-a.svc\"",
        "revoke_on_exit = false",
        "format = \"json\"",
    ] {
        assert!(i.has(line), "missing `{line}` in\n{}", i.toml);
    }
    let r = &i.agent["resources"];
    assert_eq!(r["limits"]["cpu"], "500m");
    assert_eq!(r["limits"]["memory"], "96Mi");
    assert_eq!(r["requests"]["memory"], "32Mi");
    assert_eq!(r["requests"]["ephemeral-storage"], "1Mi");
    // Only the listed container is wrapped and sees the secrets.
    let containers = i.patched["spec"]["containers"].as_array().unwrap();
    let billing = containers.iter().find(|c| c["name"] == "billing").unwrap();
    let worker = containers.iter().find(|c| c["name"] == "worker").unwrap();
    assert_eq!(billing["command"], json!(["/billing"]));
    assert_eq!(worker["command"][1], "exec", "{worker:#}");
    let mounts: Vec<&str> = worker["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["name"] == "shroud-secrets")
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    assert!(mounts.contains(&"/etc/billing/secrets"), "{mounts:?}");
    assert!(!mounts.contains(&"/vault/secrets"), "{mounts:?}");
}

#[test]
fn honoured_secret_annotations() {
    let w = Webhook::start();
    let i = w.inject(&pod(
        OPENBAO,
        &[
            ("agent-inject-file-db", "db.env"),
            ("agent-inject-perms-db", "0440"),
            ("secret-volume-path-db", "/etc/db"),
            ("agent-inject-secret-Api", "secret/data/billing/api"),
            ("preserve-secret-case-Api", "true"),
            (
                "agent-inject-template-Api",
                "{{ with secret \"secret/data/billing/api\" }}{{ .Data.data.key }}{{ end }}",
            ),
        ],
    ));
    assert!(i.has("name = \"db.env\""), "{}", i.toml);
    assert!(i.has("name = \"Api\""), "{}", i.toml);
    assert!(i.has("mode = \"0440\""), "{}", i.toml);
    assert!(i.has("template = \"{{ key }}\""), "{}", i.toml);
    let mounts = i.app_mounts();
    assert!(
        mounts.contains(&("/etc/db".to_string(), true)),
        "{mounts:?}"
    );
    assert!(
        mounts.contains(&("/openbao/secrets".to_string(), true)),
        "{mounts:?}"
    );
}

#[test]
fn agent_users_follow_the_annotations_unless_the_app_shares_one() {
    let w = Webhook::start();
    let mut p = pod(
        VAULT,
        &[
            ("agent-run-as-user", "4321"),
            ("agent-run-as-group", "4322"),
        ],
    );
    // No common user: the agent runs as the annotated one.
    p["spec"]["securityContext"] = json!({"fsGroup": 2000});
    let i = w.inject(&p);
    assert_eq!(
        i.agent["securityContext"]["runAsUser"], 4321,
        "{:#}",
        i.agent
    );
    assert!(i.has("uid = 4321"), "{}", i.toml);
    // The app's own user wins (its files can then be 0400), and the pod is told.
    let i = w.inject(&pod(VAULT, &[("agent-run-as-user", "4321")]));
    assert_eq!(i.agent["securityContext"]["runAsUser"], 1000);
    assert!(
        i.warnings.contains("agent-run-as-user is not applied"),
        "{}",
        i.warnings
    );
}

#[test]
fn tuning_and_defaults_are_accepted_with_a_warning_naming_them() {
    let w = Webhook::start();
    let i = w.inject(&pod(
        VAULT,
        &[
            ("log-level", "debug"),
            ("agent-cache-enable", "false"),
            ("template-static-secret-render-interval", "5m"),
            ("agent-pre-populate-only", "true"),
            ("agent-init-first", "false"),
            ("agent-inject-token", "false"),
        ],
    ));
    for k in [
        "log-level",
        "template-static-secret-render-interval",
        "agent-pre-populate-only",
        "agent-init-first",
    ] {
        assert!(
            i.warnings.contains(&format!("{VAULT}{k}")),
            "{k}: {}",
            i.warnings
        );
    }
}

#[test]
fn what_cannot_be_honoured_is_denied_by_name() {
    let w = Webhook::start();
    for (k, v) in [
        ("agent-inject-token", "true"),
        ("tls-skip-verify", "true"),
        ("tls-secret", "vault-tls"),
        ("ca-cert", "/vault/tls/ca.crt"),
        ("agent-configmap", "billing-agent"),
        ("agent-extra-secret", "more"),
        ("agent-image", "hashicorp/vault:1.17"),
        ("agent-inject-command-db", "kill -HUP $(pidof billing)"),
        ("agent-inject-template-file-db", "/vault/configs/db.tmpl"),
        ("agent-share-process-namespace", "true"),
        ("agent-json-patch", "[]"),
        ("auth-type", "approle"),
        ("auth-config-role-id-file-path", "/x"),
        ("proxy-address", "http://proxy:3128"),
        ("agent-inject-secrets-db", "typo"),
        ("agent-limits-cpu", "a lot"),
        ("secret-volume-path", "/etc"),
    ] {
        let message = w.deny(&pod(VAULT, &[(k, v)]));
        assert!(message.contains(&format!("{VAULT}{k}")), "{k}: {message}");
    }
    // One family per pod.
    let mut mixed = pod(OPENBAO, &[]);
    mixed["metadata"]["annotations"]["vault.hashicorp.com/role"] = json!("other");
    let message = w.deny(&mixed);
    assert!(message.contains("vault.hashicorp.com/role"), "{message}");
}
