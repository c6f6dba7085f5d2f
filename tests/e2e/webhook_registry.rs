//! Entrypoint resolution end to end: a real registry (Debian's `docker-registry`,
//! distribution 2.8) on 127.0.0.1 holding images the test pushes over the
//! registry API, the built `shroud webhook` over TLS, AdmissionReviews of pods
//! that do not set `command`, patches applied and validated against the
//! Kubernetes schema. Bearer-token auth runs the same registry behind
//! `auth: token` with a token service from tests/support; concurrent misses go
//! through a counting proxy.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shroud_e2e::http::sample;
use shroud_e2e::proxy::Proxy;
use shroud_e2e::registry::{docker_config, Registry};
use shroud_e2e::token::{Access, Grant, TokenRequest, TokenServer, SERVICE};
use shroud_e2e::webhook::{admission_review, apply, validate, Client, TestCa, WebhookProcess};
use shroud_e2e::{shroud_bin, until};

const BASE: &str = r#"
image = "shroud:test"

[vault]
address = "https://vault.vault.svc:8200"

[registry]
"#;

struct Webhook {
    ca: TestCa,
    server: WebhookProcess,
    client: Client,
    _files: tempfile::TempDir,
}

impl Webhook {
    /// A webhook whose `[registry]` section is `registry` plus `plain_http` for
    /// the `plain` hosts (the test registries without TLS).
    fn start(plain: &[&str], registry: &str) -> Webhook {
        let hosts: Vec<String> = plain.iter().map(|h| format!("{h:?}")).collect();
        let config = format!("{BASE}plain_http = [{}]\n{registry}", hosts.join(", "));
        let ca = TestCa::new("shroud-webhook-ca");
        let server = WebhookProcess::start(&shroud_bin(), &ca, &ca.leaf(), &config);
        let client = Client::new(server.addr, std::slice::from_ref(&ca.der));
        Webhook {
            ca,
            server,
            client,
            _files: tempfile::tempdir().unwrap(),
        }
    }

    /// `POST path` (`/mutate` or `/validate`) of a CREATE of `pod`: the response.
    fn review(&self, path: &str, pod: &Value) -> Value {
        let body = serde_json::to_vec(&admission_review(pod)).unwrap();
        let answer = self.client.request("POST", path, &body).unwrap();
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        answer.json()["response"].clone()
    }

    /// Another client of this webhook (one per thread).
    fn client(&self) -> Client {
        Client::new(self.server.addr, std::slice::from_ref(&self.ca.der))
    }

    fn send(&self, pod: &Value) -> Value {
        self.review("/mutate", pod)
    }

    /// The validating webhook's answer for `pod` as the final pod.
    fn validate_final(&self, pod: &Value) -> Value {
        self.review("/validate", pod)
    }

    /// Expects the pod injected; returns the patched, schema-validated pod,
    /// which the validating webhook re-derives and admits (no registry asked).
    fn inject(&self, pod: &Value) -> Value {
        let response = self.send(pod);
        assert_eq!(
            response["allowed"],
            true,
            "{response:#}\n{}",
            self.server.log()
        );
        let patched = apply(pod, &response);
        validate(&patched);
        let checked = self.validate_final(&patched);
        assert_eq!(
            checked["allowed"], true,
            "/validate refuses the patched pod: {checked:#}"
        );
        patched
    }

    /// Expects the pod denied; returns the message.
    fn deny(&self, pod: &Value) -> String {
        let response = self.send(pod);
        assert_eq!(response["allowed"], false, "{response:#}");
        assert!(response.get("patch").is_none());
        response["status"]["message"].as_str().unwrap().to_string()
    }

    /// `secret` is in neither the log nor the metrics.
    fn assert_never_shows(&self, secret: &str) {
        assert!(
            !self.server.log().contains(secret),
            "secret in the webhook log"
        );
        assert!(!self.metrics().contains(secret), "secret in the metrics");
    }

    fn metrics(&self) -> String {
        String::from_utf8(self.client.get("/metrics").unwrap().body).unwrap()
    }
}

/// A Deployment's pod with one container `web` running `image`, without `command`.
fn pod(image: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "web-7d4b9c-", "namespace": "shop", "labels": {"app": "web"},
            "annotations": {"shroud.dev/inject": "true", "shroud.dev/role": "web",
                "shroud.dev/secret-db": "secret/data/shop/db"}},
        "spec": {"serviceAccountName": "web", "securityContext": {"runAsUser": 1000, "runAsNonRoot": true},
            "containers": [{"name": "web", "image": image, "ports": [{"containerPort": 8080}]}]}
    })
}

/// The wrapped command line of container `web` after `--`.
fn wrapped(patched: &Value) -> Vec<String> {
    let c = patched["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "web")
        .unwrap();
    assert!(
        c.get("args").is_none(),
        "args must be folded into the command: {c:#}"
    );
    let cmd: Vec<String> = c["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert_eq!(cmd[..2], ["/shroud/bin/shroud", "exec"], "{cmd:?}");
    let dashdash = cmd
        .iter()
        .position(|a| a == "--")
        .expect("`--` in the command");
    cmd[dashdash + 1..].to_vec()
}

fn with_args(mut pod: Value, args: &[&str]) -> Value {
    pod["spec"]["containers"][0]["args"] = json!(args);
    pod
}

#[test]
fn docker_v2_image_without_command_runs_its_entrypoint_and_cmd() {
    let reg = Registry::plain();
    reg.push_image(
        "shop/web",
        "1.27",
        false,
        "amd64",
        Some(&["/docker-entrypoint.sh"]),
        Some(&["nginx", "-g", "daemon off;"]),
    );
    // With metrics endpoints for a PodMonitor.
    let hook = Webhook::start(
        &[&reg.host],
        "\n[pod_metrics]\nagent_port = 9102\nexec_port = 9103\n",
    );
    let image = format!("{}/shop/web:1.27", reg.host);

    let patched = hook.inject(&pod(&image));
    assert_eq!(
        wrapped(&patched),
        ["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"]
    );
    assert_eq!(patched["metadata"]["labels"]["shroud.dev/injected"], "true");
    let web = &patched["spec"]["containers"][0];
    assert!(
        web["command"]
            .to_string()
            .contains(r#""--metrics-listen","0.0.0.0:9103""#),
        "{web:#}"
    );
    assert_eq!(
        web["ports"][1],
        json!({"name": "shroud-exec-0", "containerPort": 9103, "protocol": "TCP"})
    );
    let agent = patched["spec"]["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "shroud-agent")
        .unwrap();
    assert_eq!(agent["ports"][0]["name"], "shroud-metrics");
    let config = agent["env"][0]["value"].as_str().unwrap();
    assert!(config.contains("listen = \"0.0.0.0:9102\""), "{config}");
    // `kubectl logs/exec` land in the workload, not in the sidecar.
    assert_eq!(
        patched["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"],
        "web"
    );
    // Re-derivation holds the exec flags, metrics port included, to what the
    // webhook sets.
    let mut tampered = patched.clone();
    let cmd = tampered["spec"]["containers"][0]["command"].to_string();
    tampered["spec"]["containers"][0]["command"] =
        serde_json::from_str(&cmd.replace("0.0.0.0:9103", "0.0.0.0:9999")).unwrap();
    let checked = hook.validate_final(&tampered);
    assert_eq!(checked["allowed"], false, "{checked:#}");
    assert!(
        checked["status"]["message"]
            .as_str()
            .unwrap()
            .contains("command (container `web`)"),
        "{checked:#}"
    );
    // Args replace CMD and follow ENTRYPOINT.
    let patched = hook.inject(&with_args(pod(&image), &["nginx-debug", "-T"]));
    assert_eq!(
        wrapped(&patched),
        ["/docker-entrypoint.sh", "nginx-debug", "-T"]
    );

    // The annotation still wins (and needs no registry: this image does not exist).
    let mut p = pod(&format!("{}/shop/absent:1", reg.host));
    p["metadata"]["annotations"]["shroud.dev/command-web"] = json!(r#"["/srv/run", "--fast"]"#);
    assert_eq!(wrapped(&hook.inject(&p)), ["/srv/run", "--fast"]);
    // A default container the user chose is kept.
    let mut p = pod(&image);
    p["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"] = json!("other");
    let patched = hook.inject(&p);
    assert_eq!(
        patched["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"],
        "other"
    );
}

#[test]
fn oci_image_with_empty_entrypoint_and_args_without_cmd() {
    let reg = Registry::plain();
    reg.push_image(
        "shop/api",
        "v2",
        true,
        "amd64",
        None,
        Some(&["/bin/server", "--port", "8080"]),
    );
    reg.push_image(
        "shop/tool",
        "v1",
        true,
        "amd64",
        Some(&["/usr/bin/tool"]),
        None,
    );
    reg.push_image("shop/empty", "v1", true, "amd64", None, None);
    let hook = Webhook::start(&[&reg.host], "");
    let api = format!("{}/shop/api:v2", reg.host);

    // Empty ENTRYPOINT: CMD is the command line …
    assert_eq!(
        wrapped(&hook.inject(&pod(&api))),
        ["/bin/server", "--port", "8080"]
    );
    // … and args replace it entirely.
    assert_eq!(
        wrapped(&hook.inject(&with_args(pod(&api), &["/bin/server", "--port", "9090"]))),
        ["/bin/server", "--port", "9090"]
    );
    // Args without CMD follow ENTRYPOINT; no args, ENTRYPOINT alone.
    let tool = format!("{}/shop/tool:v1", reg.host);
    assert_eq!(
        wrapped(&hook.inject(&with_args(pod(&tool), &["--check"]))),
        ["/usr/bin/tool", "--check"]
    );
    assert_eq!(wrapped(&hook.inject(&pod(&tool))), ["/usr/bin/tool"]);
    // Nothing to run at all: denied, naming the image and the way out.
    let empty = format!("{}/shop/empty:v1", reg.host);
    let msg = hook.deny(&pod(&empty));
    assert!(
        msg.contains(&empty)
            && msg.contains("neither ENTRYPOINT nor CMD")
            && msg.contains("shroud.dev/command-web"),
        "{msg}"
    );
}

#[test]
fn multi_platform_index_follows_the_pods_platform() {
    let reg = Registry::plain();
    let amd = reg.push_image(
        "shop/multi",
        "amd64",
        true,
        "amd64",
        Some(&["/app-amd64"]),
        None,
    );
    let arm = reg.push_image(
        "shop/multi",
        "arm64",
        true,
        "arm64",
        Some(&["/app-arm64"]),
        None,
    );
    let index = reg.push_index(
        "shop/multi",
        "1.0",
        true,
        &[("amd64", &amd), ("arm64", &arm)],
    );
    // The same as a Docker manifest list, over Docker v2 manifests.
    let damd = reg.push_image(
        "shop/dmulti",
        "amd64",
        false,
        "amd64",
        Some(&["/d-amd64"]),
        None,
    );
    let darm = reg.push_image(
        "shop/dmulti",
        "arm64",
        false,
        "arm64",
        Some(&["/d-arm64"]),
        None,
    );
    reg.push_index(
        "shop/dmulti",
        "1.0",
        false,
        &[("amd64", &damd), ("arm64", &darm)],
    );
    let hook = Webhook::start(&[&reg.host], "");
    let image = format!("{}/shop/multi:1.0", reg.host);

    // No constraint: linux/amd64.
    assert_eq!(wrapped(&hook.inject(&pod(&image))), ["/app-amd64"]);
    assert_eq!(
        wrapped(&hook.inject(&pod(&format!("{}/shop/dmulti:1.0", reg.host)))),
        ["/d-amd64"]
    );
    // By digest.
    assert_eq!(
        wrapped(&hook.inject(&pod(&format!("{}/shop/multi@{}", reg.host, index.digest)))),
        ["/app-amd64"]
    );
    // A node selector picks arm64.
    let mut p = pod(&image);
    p["spec"]["nodeSelector"] = json!({"kubernetes.io/arch": "arm64", "kubernetes.io/os": "linux"});
    assert_eq!(wrapped(&hook.inject(&p)), ["/app-arm64"]);
    // Required affinity allowing both, whose commands differ: denied, saying what to set.
    let mut p = pod(&image);
    p["spec"]["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"]}]}]}}});
    let msg = hook.deny(&p);
    assert!(
        msg.contains("linux/amd64, linux/arm64")
            && msg.contains("shroud.dev/command-web")
            && msg.contains(&image),
        "{msg}"
    );
    // A platform the index does not have.
    let mut p = pod(&image);
    p["spec"]["nodeSelector"] = json!({"kubernetes.io/arch": "s390x"});
    let msg = hook.deny(&p);
    assert!(
        msg.contains("no linux/s390x variant") && msg.contains("linux/arm64"),
        "{msg}"
    );
}

#[test]
fn basic_auth_over_tls_with_credentials_from_a_docker_config() {
    let ca = TestCa::new("registry-ca");
    let password = "pull-Secret-7f3a9c";
    let reg = Registry::tls_basic_auth(&ca, "puller", password);
    reg.push_image(
        "private/app",
        "3",
        false,
        "amd64",
        Some(&["/app"]),
        Some(&["serve"]),
    );
    let files = tempfile::tempdir().unwrap();
    let ca_file = files.path().join("ca.crt");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let creds = files.path().join("config.json");
    std::fs::write(&creds, docker_config(&reg.host, "puller", password)).unwrap();
    let image = format!("{}/private/app:3", reg.host);

    // A registry over TLS on loopback must be listed in `registry.allowed`.
    let allowed = format!("allowed = [{:?}]\n", reg.host);
    let hook = Webhook::start(
        &[],
        &format!(
            "{allowed}ca_bundle = {:?}\ndocker_config = {:?}\n",
            ca_file, creds
        ),
    );
    assert_eq!(wrapped(&hook.inject(&pod(&image))), ["/app", "serve"]);

    // Without credentials the registry refuses; the message names the image and the fix.
    let anonymous = Webhook::start(&[], &format!("{allowed}ca_bundle = {ca_file:?}\n"));
    let msg = anonymous.deny(&pod(&image));
    assert!(
        msg.contains(&image)
            && msg.contains(": unauthorized (")
            && msg.contains("registry.docker_config"),
        "{msg}"
    );
    // Without the CA bundle the registry's certificate is not trusted.
    let untrusting = Webhook::start(&[], &format!("{allowed}docker_config = {creds:?}\n"));
    let msg = untrusting.deny(&pod(&image));
    assert!(
        msg.contains("unreachable") && msg.contains(&reg.host),
        "{msg}"
    );
    // The pod author learns the class; the operator's log says why.
    assert!(!msg.contains("certificate"), "{msg}");
    let log = untrusting.server.log();
    assert!(log.contains("UnknownIssuer"), "{log}");
    for w in [&hook, &anonymous, &untrusting] {
        w.assert_never_shows(password);
    }
}

#[test]
fn missing_image_and_unreachable_registry_are_denied_and_counted() {
    let mut reg = Registry::plain();
    let hook = Webhook::start(&[&reg.host], "");
    let missing = format!("{}/shop/missing:1", reg.host);
    let msg = hook.deny(&pod(&missing));
    assert!(
        msg.contains(&missing) && msg.contains(": not found"),
        "{msg}"
    );
    let m = hook.metrics();
    assert_eq!(
        sample(
            &m,
            r#"shroud_webhook_registry_failures_total{reason="not_found"}"#
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            r#"shroud_webhook_denials_total{namespace="shop",rule="image"}"#
        ),
        Some(1.0),
        "{m}"
    );

    // The operator may choose to admit such pods (uninjected, with a warning).
    let lenient = Webhook::start(&[&reg.host], "on_failure = \"admit\"\n");
    let response = lenient.send(&pod(&missing));
    assert_eq!(response["allowed"], true, "{response:#}");
    assert!(response.get("patch").is_none(), "{response:#}");
    let warning = response["warnings"][0].as_str().unwrap();
    assert!(
        warning.contains("WITHOUT secrets injection") && warning.contains(&missing),
        "{warning}"
    );
    // The validating webhook lets that pod through only when admitting is chosen.
    let checked = lenient.validate_final(&pod(&missing));
    assert_eq!(checked["allowed"], true, "{checked:#}");
    let checked = hook.validate_final(&pod(&missing));
    assert_eq!(checked["allowed"], false, "{checked:#}");
    assert!(
        checked["status"]["message"]
            .as_str()
            .unwrap()
            .contains("was not injected"),
        "{checked:#}"
    );

    reg.stop();
    let down = format!("{}/shop/other:1", reg.host);
    let msg = hook.deny(&pod(&down));
    assert!(
        msg.contains("unreachable") && msg.contains(&format!("`{down}`")),
        "{msg}"
    );
    let m = hook.metrics();
    assert_eq!(
        sample(
            &m,
            r#"shroud_webhook_registry_failures_total{reason="unreachable"}"#
        ),
        Some(1.0),
        "{m}"
    );
}

#[test]
fn a_registry_that_never_answers_is_bounded_by_the_timeout() {
    // Accepts connections (the kernel's backlog) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = silent.local_addr().unwrap().to_string();
    let hook = Webhook::start(&[&host], "timeout = \"700ms\"\n");
    let image = format!("{host}/slow/app:1");
    let started = Instant::now();
    let msg = hook.deny(&pod(&image));
    // Answered, by the resolver's own bound (a generous wall-clock limit: the
    // machine may be loaded; the API server would wait `timeoutSeconds`).
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "the admission took {took:?}"
    );
    assert!(
        msg.contains(&image) && msg.contains("took longer than 700ms (registry.timeout)"),
        "{msg}"
    );
    let m = hook.metrics();
    assert_eq!(
        sample(
            &m,
            r#"shroud_webhook_registry_failures_total{reason="timeout"}"#
        ),
        Some(1.0),
        "{m}"
    );
}

#[test]
fn repeated_admissions_are_served_from_the_cache() {
    let mut reg = Registry::plain();
    let pushed = reg.push_image("shop/web", "1.0", true, "amd64", Some(&["/web"]), None);
    let hook = Webhook::start(&[&reg.host], "");
    let short_ttl = Webhook::start(&[&reg.host], "tag_ttl = \"1ms\"\n");
    let by_tag = format!("{}/shop/web:1.0", reg.host);
    let by_digest = format!("{}/shop/web@{}", reg.host, pushed.digest);
    for w in [&hook, &short_ttl] {
        w.inject(&pod(&by_tag));
        w.inject(&pod(&by_digest));
    }
    reg.stop();
    // Within the tag TTL, nothing goes to the (now stopped) registry.
    for _ in 0..3 {
        assert_eq!(wrapped(&hook.inject(&pod(&by_tag))), ["/web"]);
    }
    let m = hook.metrics();
    assert_eq!(
        sample(
            &m,
            r#"shroud_webhook_registry_lookups_total{result="fetched"}"#
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            r#"shroud_webhook_registry_lookups_total{result="cached"}"#
        ),
        Some(4.0),
        "{m}"
    );
    // Past the TTL the tag is asked again; content by digest never expires.
    let msg = short_ttl.deny(&pod(&by_tag));
    assert!(msg.contains("unreachable"), "{msg}");
    assert_eq!(wrapped(&short_ttl.inject(&pod(&by_digest))), ["/web"]);
}

/// Sends `n` admissions of `pod` at once, each on its own connection, and
/// returns their responses once the proxy's held requests are released, which
/// happens when `ready` says the burst has met the held fetch.
fn burst(
    hook: &Webhook,
    pod: &Value,
    n: usize,
    ready: impl Fn() -> bool,
    proxy: &Proxy,
) -> Vec<Value> {
    let body = serde_json::to_vec(&admission_review(pod)).unwrap();
    let senders: Vec<_> = (0..n)
        .map(|_| {
            let (client, body) = (hook.client(), body.clone());
            std::thread::spawn(move || {
                let answer = client.request("POST", "/mutate", &body).unwrap();
                assert_eq!(answer.status, 200);
                answer.json()["response"].clone()
            })
        })
        .collect();
    until(
        Duration::from_secs(30),
        "the burst to meet the held fetch",
        || ready().then_some(()),
    );
    proxy.release();
    senders.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn a_burst_of_admissions_for_one_uncached_image_makes_one_fetch() {
    const N: usize = 40;
    let reg = Registry::plain();
    reg.push_image(
        "shop/burst",
        "2.0",
        true,
        "amd64",
        Some(&["/burst"]),
        Some(&["serve"]),
    );
    // Every request to the registry goes through the proxy, which holds the
    // first manifest request until the whole burst has arrived.
    let proxy = Proxy::start(&reg.host);
    let hook = Webhook::start(&[&proxy.host], "");
    let image = format!("{}/shop/burst:2.0", proxy.host);
    let waiting = || sample(&hook.metrics(), "shroud_webhook_registry_waiting_lookups");

    proxy.hold("/manifests/");
    let answers = burst(
        &hook,
        &pod(&image),
        N,
        || proxy.requests().len() == 1 && waiting() == Some((N - 1) as f64),
        &proxy,
    );
    for response in &answers {
        assert_eq!(response["allowed"], true, "{response:#}");
        assert_eq!(wrapped(&apply(&pod(&image), response)), ["/burst", "serve"]);
    }
    let seen = proxy.requests();
    assert_eq!(
        seen.len(),
        2,
        "one manifest and one configuration fetch: {seen:#?}"
    );
    assert_eq!(seen[0], "GET /v2/shop/burst/manifests/2.0");
    assert!(
        seen[1].starts_with("GET /v2/shop/burst/blobs/sha256:"),
        "{seen:?}"
    );
    let m = hook.metrics();
    for (series, want) in [
        (
            r#"shroud_webhook_registry_lookups_total{result="fetched"}"#,
            1.0,
        ),
        (
            r#"shroud_webhook_registry_lookups_total{result="coalesced"}"#,
            (N - 1) as f64,
        ),
        ("shroud_webhook_registry_waiting_lookups", 0.0),
    ] {
        assert_eq!(sample(&m, series), Some(want), "{series}\n{m}");
    }

    // An error is shared by the lookups that waited for it, and not kept: the
    // next admission asks the registry again.
    let missing = format!("{}/shop/absent:1", proxy.host);
    proxy.hold("/manifests/");
    let answers = burst(
        &hook,
        &pod(&missing),
        10,
        || proxy.requests().len() == 3 && waiting() == Some(9.0),
        &proxy,
    );
    for response in &answers {
        assert_eq!(response["allowed"], false, "{response:#}");
        let msg = response["status"]["message"].as_str().unwrap();
        assert!(
            msg.contains(&missing) && msg.contains(": not found"),
            "{msg}"
        );
    }
    assert_eq!(proxy.requests().len(), 3, "{:#?}", proxy.requests());
    hook.deny(&pod(&missing));
    assert_eq!(proxy.requests()[3], "GET /v2/shop/absent/manifests/1");
    let m = hook.metrics();
    assert_eq!(
        sample(
            &m,
            r#"shroud_webhook_registry_failures_total{reason="not_found"}"#
        ),
        Some(11.0),
        "{m}"
    );
}

/// `shop/web:1.0` (ENTRYPOINT `/web`, CMD `serve`) in a registry behind
/// bearer-token auth from `tokens`.
fn token_registry(tokens: &TokenServer) -> Registry {
    let mut reg = Registry::plain();
    reg.push_image(
        "shop/web",
        "1.0",
        false,
        "amd64",
        Some(&["/web"]),
        Some(&["serve"]),
    );
    reg.restart_with_token_auth(tokens);
    reg
}

/// What the webhook must ask the token service for `shop/web`.
fn pull_request(user: Option<&str>, status: u16) -> TokenRequest {
    TokenRequest {
        scope: Some("repository:shop/web:pull".into()),
        service: Some(SERVICE.into()),
        user: user.map(str::to_string),
        status,
    }
}

#[test]
fn bearer_challenge_with_an_anonymous_pull_token() {
    let tokens = TokenServer::start(Access::Anonymous, Grant::AsAsked);
    let reg = token_registry(&tokens);
    let hook = Webhook::start(&[&reg.host, &tokens.host()], "");
    let image = format!("{}/shop/web:1.0", reg.host);
    assert_eq!(wrapped(&hook.inject(&pod(&image))), ["/web", "serve"]);
    // One token for the whole lookup (manifest and configuration), asked for
    // the scope and service the registry's challenge named, without credentials.
    assert_eq!(tokens.requests(), [pull_request(None, 200)]);
}

#[test]
fn token_service_requiring_the_docker_config_credentials() {
    let password = "token-Pull-5e0b77";
    let tokens = TokenServer::start(
        Access::Basic {
            user: "puller".into(),
            password: password.into(),
        },
        Grant::AsAsked,
    );
    let reg = token_registry(&tokens);
    let files = tempfile::tempdir().unwrap();
    let creds = files.path().join("config.json");
    std::fs::write(&creds, docker_config(&reg.host, "puller", password)).unwrap();
    let image = format!("{}/shop/web:1.0", reg.host);

    let hook = Webhook::start(
        &[&reg.host, &tokens.host()],
        &format!("docker_config = {creds:?}\n"),
    );
    assert_eq!(wrapped(&hook.inject(&pod(&image))), ["/web", "serve"]);
    assert_eq!(tokens.requests(), [pull_request(Some("puller"), 200)]);

    // Without credentials the token service refuses: denied, naming the image
    // and the token service's answer.
    let anonymous = Webhook::start(&[&reg.host, &tokens.host()], "");
    let msg = anonymous.deny(&pod(&image));
    assert!(
        msg.contains(&image)
            && msg.contains(&format!(
                "unauthorized (no credentials for {} in registry.docker_config)",
                reg.host
            )),
        "{msg}"
    );
    let log = anonymous.server.log();
    assert!(
        log.contains(&format!(
            "its token service {} answered HTTP 401",
            tokens.realm
        )),
        "{log}"
    );
    assert_eq!(tokens.requests()[1], pull_request(None, 401));
    for w in [&hook, &anonymous] {
        w.assert_never_shows(password);
    }
}

#[test]
fn token_service_down_is_denied_naming_the_image_and_the_service() {
    let mut tokens = TokenServer::start(Access::Anonymous, Grant::AsAsked);
    let reg = token_registry(&tokens);
    let hook = Webhook::start(&[&reg.host, &tokens.host()], "");
    let image = format!("{}/shop/web:1.0", reg.host);
    tokens.stop();
    let msg = hook.deny(&pod(&image));
    assert!(
        msg.contains(&image)
            && msg.contains(&format!(
                "from registry {}: unreachable (its token service {})",
                reg.host, tokens.realm
            )),
        "{msg}"
    );
    assert!(tokens.requests().is_empty());
    let m = hook.metrics();
    assert_eq!(
        sample(
            &m,
            r#"shroud_webhook_registry_failures_total{reason="token_service"}"#
        ),
        Some(1.0),
        "{m}"
    );
}

#[test]
fn a_token_without_the_pull_scope_is_denied() {
    // The token service grants pull on another repository, whatever is asked.
    let tokens = TokenServer::start(Access::Anonymous, Grant::Repository("shop/other".into()));
    let reg = token_registry(&tokens);
    let hook = Webhook::start(&[&reg.host, &tokens.host()], "");
    let image = format!("{}/shop/web:1.0", reg.host);
    let msg = hook.deny(&pod(&image));
    assert!(
        msg.contains(&image)
            && msg.contains("does not grant `repository:shop/web:pull` (insufficient_scope)"),
        "{msg}"
    );
    // The webhook asked for the right scope, once, and did not loop.
    assert_eq!(tokens.requests(), [pull_request(None, 200)]);
    let m = hook.metrics();
    assert_eq!(
        sample(
            &m,
            r#"shroud_webhook_registry_failures_total{reason="unauthorized"}"#
        ),
        Some(1.0),
        "{m}"
    );
}
