//! The Helm chart: lint with the real Helm library, render every value set,
//! validate the manifests against the Kubernetes schema (tests/helm/check_chart.py),
//! then run the real `shroud webhook` with what the chart rendered: its
//! genCA/genSignedCert certificate, trusted through the MutatingWebhookConfiguration's
//! caBundle under the Service's DNS name, and its policy ConfigMap.

use base64::Engine as _;
use serde_json::{json, Value};
use shroud_e2e::webhook::{Client, WebhookProcess};
use shroud_e2e::{require_tool, shroud_bin, workspace};

fn render_chart() -> tempfile::TempDir {
    let python = require_tool("python3", "apt-get install python3");
    require_tool(
        "kubernetes-validate",
        "python3 -m pip install 'kubernetes-validate>=1.31'",
    );
    let out = tempfile::tempdir().unwrap();
    let root = workspace();
    let run = std::process::Command::new(python)
        .arg(root.join("tests/helm/check_chart.py"))
        .arg(root.join("helm/shroud"))
        .arg(out.path())
        .output()
        .expect("running tests/helm/check_chart.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        run.status.success(),
        "chart check failed (install prerequisites with scripts/test):\n{text}"
    );
    println!("{text}");
    out
}

fn manifests(dir: &std::path::Path, set: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join(set).join("manifests.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn find<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("chart rendered no {kind}"))
}

fn b64(v: &Value) -> String {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("base64 string"))
        .unwrap();
    String::from_utf8(raw).unwrap()
}

fn der_of(pem: &str) -> rustls::pki_types::CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject as _;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

fn review(pod: Value) -> Vec<u8> {
    let ns = pod["metadata"]["namespace"].clone();
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "b1c2", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": ns, "operation": "CREATE", "userInfo": {"username": "test"},
            "object": shroud_e2e::apiserver::defaulted(&pod)
        }
    }))
    .unwrap()
}

fn fixture(name: &str) -> Value {
    let p = workspace().join("tests/fixtures/webhook").join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Starts the webhook with a value set's rendered Secret and ConfigMap; the
/// registry credentials and CA the Deployment would mount are files in the
/// returned directory (an empty Docker config, the webhook's own CA).
fn serve_rendered(objects: &[Value]) -> (WebhookProcess, Client, tempfile::TempDir) {
    let secret = find(objects, "Secret");
    let cert = b64(&secret["data"]["tls.crt"]);
    let key = b64(&secret["data"]["tls.key"]);
    let mounts = tempfile::tempdir().unwrap();
    let config = find(objects, "ConfigMap")["data"]["webhook.toml"]
        .as_str()
        .unwrap()
        .replace("/etc/shroud/registry", &mounts.path().display().to_string());
    for line in config.lines() {
        if let Some(path) = line
            .strip_prefix("docker_config = \"")
            .or_else(|| line.strip_prefix("ca_bundle = \""))
        {
            let path = std::path::Path::new(path.trim_end_matches('"'));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let content = if line.starts_with("docker_config") {
                r#"{"auths": {}}"#.to_string()
            } else {
                b64(&secret["data"]["ca.crt"])
            };
            std::fs::write(path, content).unwrap();
        }
    }
    let mwc = find(objects, "MutatingWebhookConfiguration");
    let hook = &mwc["webhooks"][0];
    assert_eq!(hook["clientConfig"]["caBundle"], secret["data"]["ca.crt"]);
    let svc = &hook["clientConfig"]["service"];
    assert_eq!(svc["path"], "/mutate");
    // The API server calls https://<service>.<namespace>.svc and verifies the
    // certificate with the caBundle.
    let dns = format!(
        "{}.{}.svc",
        svc["name"].as_str().unwrap(),
        svc["namespace"].as_str().unwrap()
    );
    let ca = der_of(&b64(&hook["clientConfig"]["caBundle"]));
    let make = |addr| Client::new(addr, std::slice::from_ref(&ca)).with_server_name(&dns);
    let server = WebhookProcess::start_with(&shroud_bin(), &cert, &key, &config, make);
    let client = Client::new(server.addr, std::slice::from_ref(&ca)).with_server_name(&dns);
    (server, client, mounts)
}

/// The release namespace, from the webhook's Service reference.
fn mwc_namespace(objects: &[Value]) -> Value {
    find(objects, "MutatingWebhookConfiguration")["webhooks"][0]["clientConfig"]["service"]
        ["namespace"]
        .clone()
}

#[test]
fn chart_lints_renders_validates_and_its_output_runs() {
    let out = render_chart();

    let default = manifests(out.path(), "default");
    let mwc = find(&default, "MutatingWebhookConfiguration");
    let hook = &mwc["webhooks"][0];
    assert_eq!(hook["failurePolicy"], "Fail");
    assert_eq!(hook["timeoutSeconds"], 5);
    assert_eq!(hook["sideEffects"], "None");
    assert_eq!(hook["reinvocationPolicy"], "IfNeeded");
    // Own pods are excluded by namespace, never by a label a pod author can set.
    let own_namespace = json!({"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [mwc_namespace(&default)]});
    assert!(hook.get("objectSelector").is_none(), "{hook:#}");
    let exprs = hook["namespaceSelector"]["matchExpressions"]
        .as_array()
        .unwrap();
    assert!(exprs.contains(&own_namespace), "{exprs:#?}");
    // The validating webhook: the final pod, on create, update and ephemeral containers.
    let vwc = find(&default, "ValidatingWebhookConfiguration");
    let v = &vwc["webhooks"][0];
    assert_eq!(v["clientConfig"]["service"]["path"], "/validate");
    assert_eq!(
        v["clientConfig"]["caBundle"],
        hook["clientConfig"]["caBundle"]
    );
    assert_eq!(v["rules"][0]["operations"], json!(["CREATE", "UPDATE"]));
    assert_eq!(
        v["rules"][0]["resources"],
        json!(["pods", "pods/ephemeralcontainers"])
    );
    assert!(v.get("objectSelector").is_none());
    assert!(v["namespaceSelector"]["matchExpressions"]
        .as_array()
        .unwrap()
        .contains(&own_namespace));
    // Each is registered twice, split on the namespace's Pod Security level: the
    // restricted profile where the level forbids IPC_LOCK, the default elsewhere
    // (NotIn also matches namespaces without the label), both within the
    // configured selector.
    let level = |op: &str| json!({"key": "pod-security.kubernetes.io/enforce", "operator": op, "values": ["baseline", "restricted"]});
    for (config, name, path) in [
        (mwc, "pods.shroud.dev", "/mutate"),
        (vwc, "pods.validate.shroud.dev", "/validate"),
    ] {
        let hooks = config["webhooks"].as_array().unwrap();
        assert_eq!(hooks.len(), 2, "{hooks:#?}");
        for (hook, name, path, op) in [
            (&hooks[0], name.to_string(), path.to_string(), "NotIn"),
            (
                &hooks[1],
                format!("restricted.{name}"),
                format!("{path}/restricted"),
                "In",
            ),
        ] {
            assert_eq!(hook["name"], name.as_str());
            assert_eq!(hook["clientConfig"]["service"]["path"], path.as_str());
            let exprs = hook["namespaceSelector"]["matchExpressions"]
                .as_array()
                .unwrap();
            assert!(exprs.contains(&own_namespace), "{exprs:#?}");
            assert!(exprs.contains(&level(op)), "{exprs:#?}");
            assert!(exprs.contains(&json!({"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", "kube-node-lease"]})), "{exprs:#?}");
            assert_eq!(hook["rules"], hooks[0]["rules"]);
            assert_eq!(hook["failurePolicy"], "Fail");
        }
    }
    let single = manifests(out.path(), "no-pod-security-split");
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        let hooks = find(&single, kind)["webhooks"].as_array().unwrap().clone();
        assert_eq!(hooks.len(), 1, "{kind}");
        assert!(!hooks[0]["clientConfig"]["service"]["path"]
            .as_str()
            .unwrap()
            .contains("restricted"));
    }
    let deployment = find(&default, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert!(deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"].is_object());
    // The Deployment's command line parses: run it with the certificate paths
    // pointing nowhere and expect the certificate error, not a usage error of clap.
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let command: Vec<String> = container["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            v.as_str()
                .unwrap()
                .replace("/etc/shroud/", "/nonexistent/shroud/")
        })
        .collect();
    assert_eq!(command[0], "/shroud");
    let run = std::process::Command::new(shroud_bin())
        .args(&command[1..])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(64), "{err}");
    assert!(
        err.contains("/nonexistent/shroud/config/webhook.toml"),
        "{err}"
    );
    // Egress: DNS and HTTPS only, for the registry lookups.
    let np = find(&default, "NetworkPolicy");
    assert_eq!(
        np["spec"]["egress"],
        json!([{"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
               {"ports": [{"port": 443, "protocol": "TCP"}]}])
    );

    // The default install's certificate and config serve real admissions.
    let (server, client, _mounts) = serve_rendered(&default);
    let answer = client.mutate(&review(fixture("deployment-pod.json")));
    assert_eq!(answer.status, 200, "{}", server.log());
    let response = &answer.json()["response"];
    assert_eq!(response["allowed"], true, "{response:#}");
    assert_eq!(response["patchType"], "JSONPatch");
    let answer = client.mutate(&review(fixture("host-path-docker.json")));
    assert_eq!(answer.json()["response"]["allowed"], false);
    let answer = client.validate(&review(fixture("host-path-docker.json")));
    assert_eq!(answer.json()["response"]["allowed"], false);
    // The paths the rendered registrations call: the restricted one injects an
    // agent without IPC_LOCK, the default one with it.
    let agent_caps = |path: &Value| {
        let answer = client
            .request(
                "POST",
                path.as_str().unwrap(),
                &review(fixture("deployment-pod.json")),
            )
            .unwrap();
        assert_eq!(answer.status, 200, "{path}: {}", server.log());
        let response = &answer.json()["response"];
        let patched = shroud_e2e::webhook::apply(&fixture("deployment-pod.json"), response);
        shroud_e2e::webhook::agent_container(&patched)["securityContext"]["capabilities"].clone()
    };
    let hooks = &mwc["webhooks"];
    assert_eq!(
        agent_caps(&hooks[0]["clientConfig"]["service"]["path"]),
        json!({"drop": ["ALL"], "add": ["IPC_LOCK"]})
    );
    assert_eq!(
        agent_caps(&hooks[1]["clientConfig"]["service"]["path"]),
        json!({"drop": ["ALL"]})
    );
    drop(server);

    // The "full" value set: Vault Agent compatibility and per-namespace prefixes
    // reach the webhook through the rendered ConfigMap.
    let full = manifests(out.path(), "full");
    let (_server, client, _mounts) = serve_rendered(&full);
    let answer = client.mutate(&review(fixture("vault-agent.json")));
    let response = &answer.json()["response"];
    assert_eq!(response["allowed"], true, "{response:#}");
    assert!(response.get("patch").is_some());
    let mut pod = fixture("secret-path-outside.json");
    pod["metadata"]["annotations"]["shroud.dev/secret-theirs"] = json!("kv/data/shared/flags");
    let answer = client.mutate(&review(pod));
    assert_eq!(
        answer.json()["response"]["allowed"],
        true,
        "per-namespace prefix allowed"
    );

    // cert-manager: no Helm-generated Secret, the CA is injected by cert-manager.
    let cm = manifests(out.path(), "cert-manager");
    assert!(cm.iter().all(|o| o["kind"] != "Secret"));
    let mwc = find(&cm, "MutatingWebhookConfiguration");
    assert_eq!(
        mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        "shroud-system/shroud-webhook"
    );
    assert!(mwc["webhooks"][0]["clientConfig"].get("caBundle").is_none());
    let cert = cm
        .iter()
        .find(|o| o["kind"] == "Certificate" && o["metadata"]["name"] == "shroud-webhook")
        .unwrap();
    assert_eq!(cert["spec"]["secretName"], "shroud-webhook-tls");
}
