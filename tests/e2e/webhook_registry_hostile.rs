//! The webhook's registry client under a hostile pod author, who chooses the
//! image name (so the registry) and may run the registry: every hop (registry,
//! redirect, token realm) must be allowed, denials must not tell apart what
//! answered on a port, credentials go only where they were issued for, and a
//! registry that never answers cannot starve other tenants. Everything runs on
//! 127.0.0.1: the real `docker-registry`, scripted stubs and a black hole from
//! tests/support, and the built `shroud webhook`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shroud_e2e::http::sample;
use shroud_e2e::registry::{docker_config, Registry};
use shroud_e2e::stub::{response, BlackHole, Stub};
use shroud_e2e::token::{Access, Grant, TokenServer};
use shroud_e2e::webhook::{admission_review, Client, TestCa, WebhookProcess};
use shroud_e2e::{free_port, shroud_bin, until};

struct Webhook {
    ca: TestCa,
    server: WebhookProcess,
}

impl Webhook {
    /// A webhook whose `[registry]` lists `plain` in `plain_http` (which
    /// `registry.allowed` then admits too) and `allowed` in `allowed`, then `extra`.
    fn start(plain: &[&str], allowed: &[&str], extra: &str) -> Webhook {
        let list = |hosts: &[&str]| {
            hosts
                .iter()
                .map(|h| format!("{h:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let config = format!(
            "image = \"shroud:test\"\n\n[vault]\naddress = \"https://vault.vault.svc:8200\"\n\n[registry]\nplain_http = [{}]\nallowed = [{}]\n{extra}",
            list(plain),
            list(allowed)
        );
        let ca = TestCa::new("shroud-webhook-ca");
        let server = WebhookProcess::start(&shroud_bin(), &ca, &ca.leaf(), &config);
        Webhook { ca, server }
    }

    fn client(&self) -> Client {
        Client::new(self.server.addr, std::slice::from_ref(&self.ca.der))
    }

    /// The `/mutate` response for a CREATE of `pod`.
    fn send(&self, pod: &Value) -> Value {
        send(&self.client(), pod)
    }

    /// Expects `pod` denied; returns the message.
    fn deny(&self, pod: &Value) -> String {
        let response = self.send(pod);
        assert_eq!(response["allowed"], false, "{response:#}");
        response["status"]["message"].as_str().unwrap().to_string()
    }

    fn metrics(&self) -> String {
        String::from_utf8(self.client().get("/metrics").unwrap().body).unwrap()
    }
}

fn send(client: &Client, pod: &Value) -> Value {
    let body = serde_json::to_vec(&admission_review(pod)).unwrap();
    let answer = client.request("POST", "/mutate", &body).unwrap();
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    answer.json()["response"].clone()
}

/// A pod in `namespace` whose containers run `images`, none with `command`.
fn pod_in(namespace: &str, images: &[String]) -> Value {
    let containers: Vec<Value> = images
        .iter()
        .enumerate()
        .map(|(i, image)| json!({"name": format!("c{i}"), "image": image}))
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "app-", "namespace": namespace,
            "annotations": {"shroud.dev/inject": "true", "shroud.dev/role": "app",
                "shroud.dev/secret-db": format!("secret/data/{namespace}/db")}},
        "spec": {"serviceAccountName": "app", "securityContext": {"runAsUser": 1000, "runAsNonRoot": true},
            "containers": containers}
    })
}

fn pod(image: &str) -> Value {
    pod_in("shop", &[image.to_string()])
}

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// A registry stub answering every request with a redirect to `target` + path.
fn redirecting_to(target: String) -> Stub {
    Stub::start(move |path| response(307, &[("Location", &format!("{target}{path}"))], ""))
}

#[test]
fn the_registry_redirects_and_realms_must_be_allowed() {
    let reg = Registry::plain();
    reg.push_image("shop/web", "1.0", true, "amd64", Some(&["/web"]), None);
    // Something on loopback that must never be asked: it records every connection.
    let internal = Stub::start(|_| response(200, &[], "{}"));
    let tokens = TokenServer::start(Access::Anonymous, Grant::AsAsked);
    // Redirects to the unlisted service, over plain HTTP and over https.
    let to_plain = redirecting_to(format!("http://{}", internal.host));
    let to_tls = redirecting_to(format!("https://{}", internal.host));
    // Redirects to the listed registry, over plain HTTP, which it may use.
    let to_listed = redirecting_to(format!("http://{}", reg.host));
    // A registry that is listed for https only redirects to itself over plain HTTP.
    let tls_only = Stub::start(|_| response(200, &[], "{}"));
    let downgrade = redirecting_to(format!("http://{}", tls_only.host));
    // Names a token realm on an unlisted port.
    let realm = format!(
        "Bearer realm=\"{}\",service=\"x\",scope=\"repository:shop/web:pull\"",
        tokens.realm
    );
    let foreign_realm = Stub::start(move |_| response(401, &[("WWW-Authenticate", &realm)], ""));

    let hook = Webhook::start(
        &[
            &reg.host,
            &to_plain.host,
            &to_tls.host,
            &to_listed.host,
            &downgrade.host,
            &foreign_realm.host,
        ],
        &[&tls_only.host],
        "",
    );
    // An allowed redirect is still followed, to the end.
    let patched = hook.send(&pod(&format!("{}/shop/web:1.0", to_listed.host)));
    assert_eq!(patched["allowed"], true, "{patched:#}");

    let unlisted_port = hook.deny(&pod(&format!("{}/shop/web:1.0", internal.host)));
    let msgs = [
        unlisted_port,
        hook.deny(&pod(&format!("{}/shop/web:1.0", to_plain.host))),
        hook.deny(&pod(&format!("{}/shop/web:1.0", to_tls.host))),
        hook.deny(&pod(&format!("{}/shop/web:1.0", downgrade.host))),
        hook.deny(&pod(&format!("{}/shop/web:1.0", foreign_realm.host))),
    ];
    assert_eq!(internal.connections(), 0, "{:?}", internal.requests());
    assert_eq!(tls_only.connections(), 0, "{:?}", tls_only.requests());
    assert!(tokens.requests().is_empty(), "{:?}", tokens.requests());
    for msg in &msgs {
        assert!(msg.contains(": not allowed ("), "{msg}");
    }
    let log = hook.server.log();
    for detail in [
        format!("{} is not admitted by registry.allowed", internal.host),
        format!("http://{}: only https:// is spoken", tls_only.host),
        format!(
            "token realm: http://{}: only https:// is spoken",
            tokens.host()
        ),
    ] {
        assert!(log.contains(&detail), "{detail} not in\n{log}");
    }
    let m = hook.metrics();
    assert_eq!(
        sample(
            &m,
            r#"shroud_webhook_registry_failures_total{reason="not_allowed"}"#
        ),
        Some(5.0),
        "{m}"
    );
}

#[test]
fn a_public_name_resolving_to_loopback_is_refused_at_connect() {
    // The machine's own name resolves to a loopback address (/etc/hosts): to
    // the client it is a public name, so with the default `*` it passes the
    // name check and must be refused on the address it resolves to.
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    let internal = Stub::start(|_| response(200, &[], "{}"));
    let port = internal.host.rsplit_once(':').unwrap().1.to_string();
    use std::net::ToSocketAddrs as _;
    let resolves: Vec<_> = format!("{name}:{port}")
        .to_socket_addrs()
        .unwrap_or_else(|e| panic!("this test needs the host name `{name}` to resolve (to loopback, as /etc/hosts has it on Debian): {e}"))
        .collect();
    assert!(
        resolves.iter().all(|a| a.ip().is_loopback()),
        "this test needs the host name `{name}` to resolve to loopback, not {resolves:?}"
    );
    let hook = Webhook::start(&[], &["*"], "");
    let image = format!("{name}:{port}/shop/web:1.0");
    let msg = hook.deny(&pod(&image));
    assert_eq!(internal.connections(), 0, "{msg}");
    // The pod author cannot tell an internal name from one that does not resolve.
    assert!(msg.contains(": unreachable"), "{msg}");
    let log = hook.server.log();
    assert!(
        log.contains(&format!("{name}:{port} resolves to the internal address")),
        "{log}"
    );
}

#[test]
fn denials_name_a_class_and_the_log_keeps_the_detail() {
    let refused = closed_port();
    let garbage = Stub::garbage(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n");
    let failing = Stub::start(|_| response(500, &[], "boom: stack trace of an internal service"));
    let hook = Webhook::start(&[&failing.host], &[&refused, &garbage.host], "");
    let denial = |host: &str| {
        let image = format!("{host}/shop/web:1.0");
        hook.deny(&pod(&image))
            .replace(&image, "IMAGE")
            .replace(host, "HOST")
    };
    let (r, g, f) = (
        denial(&refused),
        denial(&garbage.host),
        denial(&failing.host),
    );
    assert!(garbage.connections() > 0, "the TLS port was asked");
    // A refused port and a port that speaks something else look the same.
    assert_eq!(r, g);
    assert!(
        r.contains("cannot read image `IMAGE` from registry HOST: unreachable"),
        "{r}"
    );
    // An HTTP error differs only in its class.
    assert_eq!(f, r.replace(": unreachable", ": registry error"), "{f}");
    for m in [&r, &g, &f] {
        for leak in ["refused", "corrupt", "500", "boom", "os error"] {
            assert!(!m.contains(leak), "`{leak}` in {m}");
        }
    }
    // The webhook's own log has the detail, with the image and the registry.
    let log = hook.server.log();
    for (host, detail) in [
        (&refused, "Connection refused"),
        (&garbage.host, "InvalidContentType"),
        (&failing.host, "answered HTTP 500"),
    ] {
        assert!(
            log.lines().any(|l| l.contains(host.as_str())
                && l.contains(detail)
                && l.contains("shop/web:1.0")),
            "no log line with {host} and `{detail}`:\n{log}"
        );
    }
}

#[test]
fn a_redirect_targets_challenge_gets_no_credentials() {
    let password = "pull-Secret-2c9e41";
    let tokens = TokenServer::start(
        Access::Basic {
            user: "puller".into(),
            password: password.into(),
        },
        Grant::AsAsked,
    );
    // Another host, reached by the registry's redirect, asks for a token from
    // the same realm a legitimate registry of this operator uses.
    let realm = format!(
        "Bearer realm=\"{}\",service=\"x\",scope=\"repository:shop/web:pull\"",
        tokens.realm
    );
    let other = Stub::start(move |_| response(401, &[("WWW-Authenticate", &realm)], ""));
    let registry = redirecting_to(format!("http://{}", other.host));
    let files = tempfile::tempdir().unwrap();
    let creds = files.path().join("config.json");
    std::fs::write(&creds, docker_config(&registry.host, "puller", password)).unwrap();
    let hook = Webhook::start(
        &[&registry.host, &other.host, &tokens.host()],
        &[],
        &format!("docker_config = {creds:?}\n"),
    );
    let msg = hook.deny(&pod(&format!("{}/shop/web:1.0", registry.host)));
    assert!(
        tokens.requests().is_empty(),
        "the registry's credentials went to a realm its redirect target named: {:?}",
        tokens.requests()
    );
    assert!(msg.contains(": unauthorized (a redirect target"), "{msg}");
    assert!(
        other.requests().iter().all(|s| s.authorization.is_none()),
        "{:?}",
        other.requests()
    );
    assert!(!hook.server.log().contains(password));
}

#[test]
fn a_black_holed_registry_cannot_starve_other_admissions() {
    const BLACK_HOLED: usize = 6;
    let hole = BlackHole::start();
    let reg = Registry::plain();
    reg.push_image("shop/web", "1.0", true, "amd64", Some(&["/web"]), None);
    // Every healthy admission asks the registry for the tag again (no cache help).
    let hook = Webhook::start(
        &[&hole.host, &reg.host],
        &[],
        "timeout = \"4s\"\ntag_ttl = \"1ms\"\n",
    );
    let timeout = Duration::from_secs(4);

    // Admissions from three namespaces, each pod with three images on the black hole.
    let started = Instant::now();
    let senders: Vec<_> = (0..BLACK_HOLED)
        .map(|i| {
            let client = hook.client();
            let images: Vec<String> = (0..3)
                .map(|k| format!("{}/evil/app{i}-{k}:1", hole.host))
                .collect();
            let pod = pod_in(&format!("tenant-{}", i % 3), &images);
            std::thread::spawn(move || {
                let response = send(&client, &pod);
                (response, started.elapsed())
            })
        })
        .collect();
    // The black hole holds connections: the registry share of the permits is taken.
    hole.wait_for_accepted(2, Duration::from_secs(30));

    // Meanwhile another namespace's admissions, for a healthy registry and
    // for none at all, are answered as usual.
    let mut commanded = pod("unused");
    commanded["spec"]["containers"][0]["command"] = json!(["/web"]);
    for _ in 0..3 {
        let response = hook.send(&pod(&format!("{}/shop/web:1.0", reg.host)));
        assert_eq!(
            response["allowed"],
            true,
            "{response:#}\n{}",
            hook.server.log()
        );
        let response = hook.send(&commanded);
        assert_eq!(response["allowed"], true, "{response:#}");
    }

    for s in senders {
        let (response, took) = s.join().unwrap();
        assert_eq!(response["allowed"], false, "{response:#}");
        let msg = response["status"]["message"].as_str().unwrap();
        assert!(msg.contains(": timed out ("), "{msg}");
        // One deadline for the whole admission (a generous upper bound for a
        // loaded machine; per image it would be three of them and more).
        assert!(
            took < timeout + Duration::from_secs(20),
            "answered after {took:?}"
        );
    }
    // The blocking fetches end by the deadline too, having opened at most one
    // connection each (per request and image, a pod of three would open three),
    // and one registry never held more than its share of the permits.
    until(Duration::from_secs(30), "the fetches to end", || {
        (sample(&hook.metrics(), "shroud_webhook_registry_fetches_in_flight") == Some(0.0)
            && hole.open() == 0)
            .then_some(())
    });
    assert!(
        hole.accepted() <= BLACK_HOLED,
        "{} connections for {BLACK_HOLED} admissions",
        hole.accepted()
    );
    assert!(
        hole.most_open() <= 2,
        "{} fetches on one registry at once (registry.max_fetches_per_registry = 2)",
        hole.most_open()
    );
}

#[test]
fn a_tenant_with_several_black_holes_holds_only_its_namespace_share() {
    // Two registries that never answer, each within its own registry share,
    // would together take every permit; the namespace's share stops that.
    // Two ports, counted together.
    let first = BlackHole::start();
    let holes = [first.another(), first];
    let reg = Registry::plain();
    reg.push_image("shop/web", "1.0", true, "amd64", Some(&["/web"]), None);
    let hook = Webhook::start(
        &[&holes[0].host, &holes[1].host, &reg.host],
        &[],
        "timeout = \"4s\"\ntag_ttl = \"1ms\"\n",
    );
    let senders: Vec<_> = (0..4)
        .map(|i| {
            let client = hook.client();
            let images = vec![format!("{}/evil/app{i}:1", holes[i % 2].host)];
            let pod = pod_in("tenant-a", &images);
            std::thread::spawn(move || send(&client, &pod))
        })
        .collect();
    holes[0].wait_for_accepted(2, Duration::from_secs(30));
    for _ in 0..3 {
        let response = hook.send(&pod(&format!("{}/shop/web:1.0", reg.host)));
        assert_eq!(
            response["allowed"],
            true,
            "{response:#}\n{}",
            hook.server.log()
        );
    }
    for s in senders {
        let response = s.join().unwrap();
        assert_eq!(response["allowed"], false, "{response:#}");
    }
    until(Duration::from_secs(30), "the fetches to end", || {
        (sample(&hook.metrics(), "shroud_webhook_registry_fetches_in_flight") == Some(0.0)
            && holes[0].open() == 0)
            .then_some(())
    });
    let most = holes[0].most_open();
    assert!(
        most <= 2,
        "tenant-a held {most} fetches at once (registry.max_fetches_per_namespace = 2)"
    );
}
