//! `[[gateway]] kind = "http"` against a real OpenBao (the kv2 API key) and a
//! real HTTP server (Python's http.server over TLS with a test CA, echoing the
//! headers it received), with `curl` as the client: the credential header
//! added and the client's own removed, the local token required over TCP and
//! not over the Unix socket, paths outside the base refused, keep-alive on
//! both sides, `Expect: 100-continue`, a dead upstream answered 502, a
//! rotation picked up by the next request, the upstream logins in the audit
//! trail (one per connection and credential), 100 MiB streamed each way.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use shroud_e2e::webhook::TestCa;
use shroud_e2e::world::*;
use shroud_e2e::*;

/// The echo upstream (tests/fixtures/gateway/echo_upstream.py) over TLS.
struct Upstream {
    _child: Guarded,
    port: u16,
    ca: PathBuf,
}

fn upstream(dir: &Path) -> Upstream {
    require_tool("python3", "apt-get install python3");
    let ca = TestCa::new("shroud-gateway-test-ca");
    let leaf = ca.leaf();
    let (cert, key, ca_path) = (dir.join("up.crt"), dir.join("up.key"), dir.join("ca.crt"));
    std::fs::write(&cert, &leaf.cert_pem).unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    std::fs::write(&ca_path, &ca.pem).unwrap();
    let script = workspace().join("tests/fixtures/gateway/echo_upstream.py");
    let port = free_port();
    let mut child = Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .arg(&cert)
        .arg(&key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn_guarded();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    if !line.starts_with("listening") {
        let mut err = String::new();
        let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
        panic!("the echo upstream did not start: {line:?} {err}");
    }
    Upstream {
        _child: child,
        port,
        ca: ca_path,
    }
}

struct Setup {
    w: World,
    agent: Option<Agent>,
    up: Upstream,
    /// Gateway `api` (Bearer), `basic` (Basic), `dead` (nothing upstream).
    api: u16,
    basic: u16,
    dead: u16,
    /// Gateway `capped`: `max_connections = 2`.
    capped: u16,
    sock_dir: PathBuf,
    /// The agent's metrics port.
    metrics: u16,
}

/// The kv2 secret `secret/app` (field api_key), read again every second.
const API_SECRET: &str =
    "[[secret]]\nname = \"api.json\"\npath = \"secret/app\"\nkind = \"kv2\"\nformat = \"json\"\nrefresh = \"1s\"\n";

fn setup() -> Setup {
    require_tool("curl", "apt-get install curl");
    let w = World::new(None);
    let up = upstream(w.work.path());
    let auth = w.approle_auth();
    let (api, basic, dead, capped) = (free_port(), free_port(), free_port(), free_port());
    let sock_dir = w.path("apisock");
    let base = format!("https://127.0.0.1:{}/api/", up.port);
    let ca = up.ca.display();
    let gateways = format!(
        r#"
[[gateway]]
name = "api"
kind = "http"
secret = "api.json"
listen = "127.0.0.1:{api}"
upstream = "{base}"
ca_cert = "{ca}"
headers = {{ Authorization = "Bearer {{{{ api_key }}}}", X-Api-Client = "shroud" }}

[[gateway]]
name = "apisock"
kind = "http"
secret = "api.json"
listen = "unix:{sock}"
upstream = "{base}"
ca_cert = "{ca}"
headers = {{ Authorization = "Bearer {{{{ api_key }}}}" }}

[[gateway]]
name = "basic"
kind = "http"
secret = "api.json"
listen = "127.0.0.1:{basic}"
upstream = "{base}"
ca_cert = "{ca}"
basic = {{ username = "app", password = "{{{{ api_key }}}}" }}

[[gateway]]
name = "capped"
kind = "http"
secret = "api.json"
listen = "127.0.0.1:{capped}"
upstream = "{base}"
ca_cert = "{ca}"
headers = {{ Authorization = "Bearer {{{{ api_key }}}}" }}
max_connections = 2

[[gateway]]
name = "dead"
kind = "http"
secret = "api.json"
listen = "127.0.0.1:{dead}"
upstream = "https://127.0.0.1:{dead_up}/api"
ca_cert = "{ca}"
headers = {{ Authorization = "Bearer {{{{ api_key }}}}" }}
"#,
        sock = sock_dir.display(),
        dead_up = free_port(),
    );
    let metrics = free_port();
    let cfg = w.config(
        &auth,
        &format!(
            "[metrics]\nlisten = \"127.0.0.1:{metrics}\"\n[audit]\npath = \"{}\"\n{API_SECRET}{gateways}",
            w.path("audit.jsonl").display()
        ),
    );
    let mut agent = Agent(spawn_agent(&cfg, &w.path("agent.log")));
    until(Duration::from_secs(30), "the gateways' token files", || {
        if let Ok(Some(status)) = agent.0.try_wait() {
            let log = std::fs::read_to_string(w.path("agent.log")).unwrap_or_default();
            panic!("the agent exited ({status:?}):\n{log}");
        }
        w.file("dead.token").map(drop)
    });
    Setup {
        w,
        agent: Some(agent),
        up,
        api,
        basic,
        dead,
        capped,
        sock_dir,
        metrics,
    }
}

impl Setup {
    fn token(&self, gateway: &str) -> String {
        self.w.file(&format!("{gateway}.token")).unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.w.path("agent.log")).unwrap_or_default()
    }

    /// The audit records `gateway_login` of gateway `gateway`.
    fn logins(&self, gateway: &str) -> Vec<Value> {
        std::fs::read_to_string(self.w.path("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|r| r["event"] == "gateway_login" && r["gateway"] == gateway)
            .collect()
    }

    /// `curl` through gateway `port` with its local token, plus `args`.
    fn curl(&self, port: u16, token: Option<&str>, args: &[&str], path: &str) -> Finished {
        let mut c = client();
        if let Some(t) = token {
            c.arg("-H").arg(format!("Proxy-Authorization: Bearer {t}"));
        }
        c.args(args).arg(format!("http://127.0.0.1:{port}{path}"));
        run_with_input(&mut c, b"", Duration::from_secs(120))
    }
}

/// curl with only PATH in its environment; prints the status last.
fn client() -> Command {
    let mut c = Command::new("curl");
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(["-sS", "--path-as-is", "-w", "\n%{http_code}"]);
    c
}

/// (status, body) of a curl run made by [`client`].
fn answer(f: &Finished) -> (u16, String) {
    assert!(f.status.success(), "curl failed: {}", f.err());
    let out = f.out();
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// The header values named `name` (any case) the upstream received.
fn received(echo: &Value, name: &str) -> Vec<String> {
    echo["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .map(|h| h[1].as_str().unwrap().to_string())
        .collect()
}

fn echo(s: &Setup, port: u16, args: &[&str]) -> Value {
    let (code, body) = answer(&s.curl(port, Some(&s.token_for(port)), args, "/api/echo"));
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

impl Setup {
    fn token_for(&self, port: u16) -> String {
        let name = if port == self.api {
            "api"
        } else if port == self.basic {
            "basic"
        } else {
            "dead"
        };
        self.token(name)
    }
}

#[test]
fn the_upstream_gets_the_secrets_header_and_never_the_clients() {
    let _serial = serial();
    let mut s = setup();
    let stolen = "Bearer not-the-key";
    let e = echo(
        &s,
        s.api,
        &[
            "-H",
            &format!("authorization: {stolen}"),
            "-H",
            "X-API-CLIENT: evil",
        ],
    );
    assert_eq!(
        received(&e, "authorization"),
        vec![format!("Bearer {API_KEY}")]
    );
    assert_eq!(received(&e, "x-api-client"), vec!["shroud".to_string()]);
    assert!(received(&e, "proxy-authorization").is_empty(), "{e}");
    assert_eq!(
        received(&e, "host"),
        vec![format!("127.0.0.1:{}", s.up.port)]
    );
    // Basic from a username and a password template.
    let e = echo(&s, s.basic, &[]);
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("app:{API_KEY}"),
    );
    assert_eq!(
        received(&e, "authorization"),
        vec![format!("Basic {basic}")]
    );

    // Over TCP the local token is required; over the Unix socket it is not.
    for token in [None, Some("0123"), Some(s.token("basic").as_str())] {
        let (code, body) = answer(&s.curl(s.api, token, &[], "/api/echo"));
        assert_eq!(code, 401, "token {token:?}: {body}");
        assert!(!body.contains(API_KEY));
    }
    let mut c = client();
    c.arg("--unix-socket")
        .arg(s.sock_dir.join("apisock.sock"))
        .arg("http://gateway/api/echo");
    let (code, body) = answer(&run_with_input(&mut c, b"", Duration::from_secs(60)));
    assert_eq!(code, 200, "{body}");
    let e: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        received(&e, "authorization"),
        vec![format!("Bearer {API_KEY}")]
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&s.sock_dir).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o700);

    // Paths outside the base path never reach the upstream.
    for path in [
        "/api/../admin",
        "/api/%2e%2e/admin",
        "/api/%2E%2e%2fadmin",
        "//api/..//admin",
        "/api/..;/admin",
        "/apix/echo",
        "/admin",
    ] {
        let (code, body) = answer(&s.curl(s.api, Some(&s.token("api")), &[], path));
        assert_eq!(code, 403, "{path}: {body}");
        assert!(body.starts_with("gateway api:"), "{path}: {body}");
    }
    let (code, _) = answer(&s.curl(s.api, Some(&s.token("api")), &[], "/api/./x/../echo"));
    assert_eq!(code, 200);

    // Keep-alive: three requests on one client connection, one upstream one
    // (and one audited login).
    let logins_before = s.logins("api").len();
    let t = s.token("api");
    let mut c = client();
    c.args(["-v", "-H", &format!("Proxy-Authorization: Bearer {t}")]);
    for _ in 0..3 {
        c.arg(format!("http://127.0.0.1:{}/api/echo", s.api));
    }
    let f = run_with_input(&mut c, b"", Duration::from_secs(60));
    assert!(f.status.success(), "{}", f.err());
    assert_eq!(
        f.err().matches("Re-using existing connection").count(),
        2,
        "{}",
        f.err()
    );
    let conns: Vec<u64> = f
        .out()
        .lines()
        .filter_map(|l| {
            serde_json::from_str::<Value>(l.trim_start_matches(|c: char| c.is_ascii_digit())).ok()
        })
        .map(|e| e["connection"].as_u64().unwrap())
        .collect();
    assert_eq!(conns.len(), 3, "{}", f.out());
    assert!(conns.iter().all(|c| *c == conns[0]), "{conns:?}");
    assert_eq!(s.logins("api").len(), logins_before + 1);

    // Expect: 100-continue: the client gets 100 and sends the body.
    let body_file = s.w.path("small.bin");
    std::fs::write(&body_file, vec![7u8; 5000]).unwrap();
    let f = s.curl(
        s.api,
        Some(&t),
        &[
            "-v",
            "-H",
            "Expect: 100-continue",
            "-X",
            "PUT",
            "--data-binary",
            &format!("@{}", body_file.display()),
        ],
        "/api/upload",
    );
    assert!(f.err().contains("HTTP/1.1 100 Continue"), "{}", f.err());
    let (code, body) = answer(&f);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["length"],
        5000
    );

    // A dead upstream is a 502 naming the gateway, nothing more.
    let (code, body) = answer(&s.curl(s.dead, Some(&s.token("dead")), &[], "/api/echo"));
    assert_eq!(code, 502, "{body}");
    assert_eq!(body, "gateway dead: the upstream cannot be reached\n");
    let dead = s.logins("dead");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(
        (&dead[0]["secret"], &dead[0]["outcome"]),
        (&"api.json".into(), &"error".into())
    );

    // A rotation: the next request carries the new key.
    let rotated = "kv2-api-key-rotated-4d3c2b1a";
    s.w.bao
        .bao(&["kv", "put", "secret/app", &format!("api_key={rotated}")]);
    until(Duration::from_secs(30), "the rotated key upstream", || {
        let e = echo(&s, s.api, &[]);
        (received(&e, "authorization") == vec![format!("Bearer {rotated}")]).then_some(())
    });

    // Metrics per gateway, its name the only label.
    let (code, scrape) = shroud_e2e::http::get(
        format!("127.0.0.1:{}", s.metrics).parse().unwrap(),
        "/metrics",
    );
    assert_eq!(code, 200);
    let sample = |series: &str| shroud_e2e::http::sample(&scrape, series).unwrap_or(0.0);
    assert!(
        sample("shroud_gateway_requests_total{gateway=\"api\"}") >= 17.0,
        "{scrape}"
    );
    assert!(sample("shroud_gateway_upstream_bytes_total{gateway=\"api\"}") >= 5000.0);
    assert!(sample("shroud_gateway_client_bytes_total{gateway=\"api\"}") > 1000.0);
    assert_eq!(
        sample("shroud_gateway_errors_total{gateway=\"dead\",kind=\"upstream\"}"),
        1.0
    );
    assert_eq!(
        sample("shroud_gateway_errors_total{gateway=\"api\",kind=\"upstream\"}"),
        0.0
    );

    // Every login audited was with the secret (a kv2 value: no lease);
    // refused local tokens and paths were none, and the keep-alive
    // connection's three requests were one.
    let logins = s.logins("api");
    let counted = sample("shroud_gateway_upstream_logins_total{gateway=\"api\",result=\"ok\"}");
    assert!(
        !logins.is_empty() && logins.len() as f64 <= counted - 2.0,
        "{} records, {counted} logins counted: {logins:?}",
        logins.len()
    );
    for l in &logins {
        assert_eq!(
            (&l["secret"], &l["outcome"]),
            (&"api.json".into(), &"ok".into()),
            "{l}"
        );
        assert!(l.get("lease_id_sha256").is_none(), "{l}");
    }

    let status = s.agent.take().unwrap().stop();
    assert!(status.success(), "agent: {status:?}\n{}", s.log());
    let log = s.log();
    let trail = std::fs::read_to_string(s.w.path("audit.jsonl")).unwrap();
    for secret in [API_KEY, rotated] {
        assert!(!log.contains(secret), "a key in the agent's log");
        assert!(!trail.contains(secret), "a key in the audit trail");
    }
    assert!(!s.sock_dir.exists(), "the socket directory is left");
    assert!(s.w.file("api.token").is_none(), "the token file is left");
}

/// The pattern the upstream's download streams: byte i is i % 251.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(data))
}

/// The agent's peak resident memory (VmHWM), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn one_hundred_mib_stream_through_both_ways() {
    let _serial = serial();
    let s = setup();
    const SIZE: usize = 100 << 20;
    let data = pattern(SIZE);
    let file = s.w.path("big.bin");
    std::fs::write(&file, &data).unwrap();
    let t = s.token("api");
    // Upload (curl sends Expect: 100-continue for a body this large).
    let f = s.curl(
        s.api,
        Some(&t),
        &["-v", "-T", &file.display().to_string()],
        "/api/upload",
    );
    let (code, body) = answer(&f);
    assert_eq!(code, 200, "{body}");
    let got: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(got["length"], SIZE as u64);
    assert_eq!(got["sha256"], sha256_hex(&data));
    assert!(f.err().contains("100 Continue"), "{}", f.err());
    // Download.
    let out = s.w.path("down.bin");
    let (code, _) = answer(&s.curl(
        s.api,
        Some(&t),
        &["-o", &out.display().to_string()],
        &format!("/api/download?size={SIZE}"),
    ));
    assert_eq!(code, 200);
    let down = std::fs::read(&out).unwrap();
    assert_eq!(down.len(), SIZE);
    assert_eq!(sha256_hex(&down), sha256_hex(&data));
    // Streamed, not buffered: the agent never held a whole body.
    let peak = peak_rss_kib(s.agent.as_ref().unwrap().0.id());
    assert!(peak < 64 * 1024, "agent peak RSS {peak} KiB");
}

/// One raw HTTP/1.1 exchange on `s`: sends `request`, reads the answer's head
/// and its `Content-Length` body. Returns (status line, head, body).
fn raw_exchange(s: &mut std::net::TcpStream, request: &[u8]) -> (String, String, String) {
    use std::io::{Read as _, Write as _};
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(request).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "closed before an answer: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&got[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while got.len() < head_end + len {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed inside the body");
        got.extend_from_slice(&buf[..n]);
    }
    let status = head.lines().next().unwrap_or_default().to_string();
    let body = String::from_utf8_lossy(&got[head_end..head_end + len]).to_string();
    (status, head, body)
}

/// `max_connections` holds for http gateways too: with two keep-alive clients
/// open, a third gets `503 Service Unavailable` (with `Retry-After`) and the
/// two carry on; garbage gets `400 Bad Request` and the gateway keeps
/// serving; every kind's metric set (connections, bytes, errors by kind,
/// upstream logins by result) is exported for the http gateways, counts
/// these, and passes `promtool check metrics`.
#[test]
fn the_connection_cap_garbage_and_the_uniform_metrics() {
    let promtool = require_tool("promtool", "apt-get install prometheus");
    let mut s = setup();
    let token = s.token("capped");
    let get =
        format!("GET /api/echo HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Bearer {token}\r\n\r\n");
    let connect = || std::net::TcpStream::connect(("127.0.0.1", s.capped)).unwrap();
    let (mut one, mut two) = (connect(), connect());
    for c in [&mut one, &mut two] {
        let (status, _, _) = raw_exchange(c, get.as_bytes());
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    }
    let mut third = connect();
    let (status, head, body) = raw_exchange(&mut third, get.as_bytes());
    assert!(status.starts_with("HTTP/1.1 503"), "{status}\n{head}{body}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    assert!(body.contains("too many connections"), "{body}");
    assert!(!body.contains(API_KEY), "{body}");
    // The two open ones carry on.
    for c in [&mut one, &mut two] {
        let (status, _, _) = raw_exchange(c, get.as_bytes());
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    }
    drop((one, two, third));

    // Garbage: a protocol-correct 400, and the gateway still serves.
    let mut g = std::net::TcpStream::connect(("127.0.0.1", s.api)).unwrap();
    let (status, _, _) = raw_exchange(&mut g, b"\x16\x03\x01\x02\x00garbage\r\n\r\n");
    assert!(status.starts_with("HTTP/1.1 400"), "{status}");
    drop(g);
    let e = echo(&s, s.api, &[]);
    assert_eq!(
        received(&e, "authorization"),
        vec![format!("Bearer {API_KEY}")]
    );
    // A dead upstream: a failed upstream login.
    let (code, _) = answer(&s.curl(s.dead, Some(&s.token("dead")), &[], "/api/x"));
    assert_eq!(code, 502);

    let (code, scrape) = shroud_e2e::http::get(
        format!("127.0.0.1:{}", s.metrics).parse().unwrap(),
        "/metrics",
    );
    assert_eq!(code, 200);
    let sample = |series: &str| {
        shroud_e2e::http::sample(&scrape, series)
            .unwrap_or_else(|| panic!("no {series} in:\n{scrape}"))
    };
    for g in ["api", "capped", "dead"] {
        for family in [
            "shroud_gateway_connections_open",
            "shroud_gateway_connections_total",
            "shroud_gateway_upstream_bytes_total",
            "shroud_gateway_client_bytes_total",
            "shroud_gateway_requests_total",
        ] {
            sample(&format!("{family}{{gateway=\"{g}\"}}"));
        }
        for kind in [
            "protocol",
            "local_auth",
            "no_credential",
            "upstream",
            "tls",
            "too_many_connections",
            "forbidden",
        ] {
            sample(&format!(
                "shroud_gateway_errors_total{{gateway=\"{g}\",kind=\"{kind}\"}}"
            ));
        }
        for result in ["ok", "refused", "error"] {
            sample(&format!(
                "shroud_gateway_upstream_logins_total{{gateway=\"{g}\",result=\"{result}\"}}"
            ));
        }
    }
    assert_eq!(
        sample("shroud_gateway_errors_total{gateway=\"capped\",kind=\"too_many_connections\"}"),
        1.0
    );
    assert!(sample("shroud_gateway_connections_total{gateway=\"capped\"}") >= 2.0);
    assert!(
        sample("shroud_gateway_upstream_logins_total{gateway=\"capped\",result=\"ok\"}") >= 4.0
    );
    assert!(sample("shroud_gateway_errors_total{gateway=\"api\",kind=\"protocol\"}") >= 1.0);
    assert!(
        sample("shroud_gateway_upstream_logins_total{gateway=\"dead\",result=\"error\"}") >= 1.0
    );
    assert!(sample("shroud_gateway_client_bytes_total{gateway=\"capped\"}") > 0.0);
    let gateway_lines: String = scrape
        .lines()
        .filter(|l| l.contains("shroud_gateway_"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(!gateway_lines.contains(API_KEY));
    assert!(!gateway_lines.contains(&token));
    let checked = run_with_input(
        Command::new(&promtool).args(["check", "metrics"]),
        gateway_lines.as_bytes(),
        Duration::from_secs(60),
    );
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}\n{gateway_lines}",
        checked.out(),
        checked.err()
    );
    let status = s.agent.take().unwrap().stop();
    assert!(status.success(), "agent: {status:?}\n{}", s.log());
}
