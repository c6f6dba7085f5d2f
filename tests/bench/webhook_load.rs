//! Load benchmark of `shroud webhook` over real TLS on 127.0.0.1 (`scripts/bench-webhook`).
//!
//! 200 concurrent clients (one keep-alive TLS connection each) send AdmissionReviews
//! of an opted-in Deployment pod (the full path: parse, policy, annotations, patch).
//!
//! - closed loop: every client sends its next review as soon as the previous answer
//!   arrives, so 200 are always in flight; gives the saturation throughput (latency
//!   here is mostly queueing: in-flight / throughput);
//! - open loop: the same 200 connections at a fixed total rate; latency is measured
//!   from each request's scheduled time (no coordinated omission).
//!
//! - registry: the same pod without `command`, its image in a local registry
//!   (Debian's `docker-registry`): after the first admission the entrypoint comes
//!   from the webhook's cache, so this measures cached admissions (target: p99
//!   under 5 ms) beside the baseline above, in the same run.
//!
//! Environment: SHROUD_BIN (default $CARGO_TARGET_DIR/release/shroud),
//! BENCH_CONCURRENCY (200), BENCH_REQUESTS (closed loop, 20000), BENCH_RATES (open
//! loop total requests/s, comma-separated, "500,1000,2000"), BENCH_SECONDS (open
//! loop, 5 per rate).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Bytes;
use serde_json::{json, Value};
use shroud_e2e::registry::Registry;
use shroud_e2e::webhook::{connector, Client, Conn, TestCa, WebhookProcess};
use shroud_e2e::workspace;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} must be a number"))
        })
        .unwrap_or(default)
}

fn release_bin() -> std::path::PathBuf {
    if let Ok(p) = std::env::var("SHROUD_BIN") {
        return p.into();
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| workspace().join("target"));
    let bin = target.join("release/shroud");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --release -p shroud-agent` (scripts/bench-webhook does)",
        bin.display()
    );
    bin
}

fn pod() -> Value {
    let path = workspace().join("tests/fixtures/webhook/deployment-pod.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn review_body(pod: Value) -> Bytes {
    Bytes::from(
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "bench", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": "shop", "operation": "CREATE", "userInfo": {"username": "bench"},
                "object": pod
            }
        }))
        .unwrap(),
    )
}

fn check(status: u16, body: &[u8]) {
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(body));
    // Cheap check that this was an injection, not a denial.
    assert!(
        body.windows(8).any(|w| w == b"\"patch\":"),
        "no patch in {}",
        String::from_utf8_lossy(&body[..body.len().min(300)])
    );
}

struct Stats {
    latencies_us: Vec<u64>,
    elapsed: Duration,
}

impl Stats {
    fn print(mut self, label: &str) {
        self.latencies_us.sort_unstable();
        let n = self.latencies_us.len();
        let q = |p: f64| {
            self.latencies_us[((n as f64 * p).ceil() as usize).clamp(1, n) - 1] as f64 / 1000.0
        };
        println!(
            "{label}: {n} requests in {:.2}s = {:.0} req/s; latency ms p50 {:.3} p90 {:.3} p99 {:.3} max {:.3}",
            self.elapsed.as_secs_f64(),
            n as f64 / self.elapsed.as_secs_f64(),
            q(0.50),
            q(0.90),
            q(0.99),
            q(1.0)
        );
    }
}

async fn open_all(
    addr: std::net::SocketAddr,
    tls: &tokio_rustls::TlsConnector,
    n: usize,
) -> Vec<Conn> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        conns.push(Conn::open(addr, tls, "localhost").await.expect("connect"));
    }
    conns
}

async fn closed_loop(conns: Vec<Conn>, total: usize, body: Bytes) -> (Vec<Conn>, Stats) {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mut conn in conns {
        let next = next.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let t = Instant::now();
                let (status, answer) = conn
                    .send("POST", "/mutate", body.clone())
                    .await
                    .expect("request");
                lat.push(t.elapsed().as_micros() as u64);
                check(status, &answer);
            }
            (conn, lat)
        }));
    }
    let mut all = Vec::new();
    let mut conns = Vec::new();
    for t in tasks {
        let (c, l) = t.await.unwrap();
        conns.push(c);
        all.extend(l);
    }
    (
        conns,
        Stats {
            latencies_us: all,
            elapsed: started.elapsed(),
        },
    )
}

async fn open_loop(conns: Vec<Conn>, rate: usize, seconds: usize, body: Bytes) -> Stats {
    let n = conns.len();
    let period = Duration::from_secs_f64(n as f64 / rate as f64);
    let per_conn = (rate * seconds) / n;
    let start = Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::new();
    for (i, mut conn) in conns.into_iter().enumerate() {
        let body = body.clone();
        let offset = period.mul_f64(i as f64 / n as f64);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_conn);
            for k in 0..per_conn {
                let scheduled = start + offset + period * k as u32;
                tokio::time::sleep_until(scheduled.into()).await;
                let (status, answer) = conn
                    .send("POST", "/mutate", body.clone())
                    .await
                    .expect("request");
                lat.push(scheduled.elapsed().as_micros() as u64);
                check(status, &answer);
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    Stats {
        latencies_us: all,
        elapsed: start.elapsed(),
    }
}

/// Server-side p99 upper bound from the latency histogram's buckets.
fn server_p99(metrics: &str) -> String {
    let mut buckets = Vec::new();
    for line in metrics.lines() {
        if line.starts_with("shroud_webhook_request_duration_seconds_bucket")
            && line.contains("path=\"/mutate\"")
        {
            let le = line
                .split("le=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .to_string();
            let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
            buckets.push((le, count));
        }
    }
    let total = buckets.last().map(|b| b.1).unwrap_or(0.0);
    for (le, count) in &buckets {
        if *count >= total * 0.99 {
            return format!("server-side p99 <= {le}s over {total} requests");
        }
    }
    "no server-side samples".into()
}

fn main() {
    let concurrency = env("BENCH_CONCURRENCY", 200);
    let total = env("BENCH_REQUESTS", 20_000);
    let rates: Vec<usize> = std::env::var("BENCH_RATES")
        .unwrap_or_else(|_| "500,1000,2000".into())
        .split(',')
        .map(|r| {
            r.trim()
                .parse()
                .expect("BENCH_RATES: numbers separated by commas")
        })
        .collect();
    let seconds = env("BENCH_SECONDS", 5);
    let ca = TestCa::new("bench-ca");
    let leaf = ca.leaf();
    let config = "image = \"shroud:bench\"\n";
    let server = WebhookProcess::start(&release_bin(), &ca, &leaf, config);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let tls = connector(std::slice::from_ref(&ca.der));
    let body = review_body(pod());
    println!(
        "shroud webhook load benchmark: {concurrency} concurrent TLS connections to {}, {} byte AdmissionReview (opted-in Deployment pod)",
        server.addr,
        body.len()
    );
    rt.block_on(async {
        let conns = open_all(server.addr, &tls, concurrency).await;
        let (conns, _) = closed_loop(conns, concurrency * 5, body.clone()).await; // warm-up
        let (conns, stats) = closed_loop(conns, total, body.clone()).await;
        stats.print(&format!("closed loop ({concurrency} in flight)"));
        let mut conns = conns;
        for rate in rates {
            let again = open_all(server.addr, &tls, concurrency).await;
            let stats = open_loop(
                std::mem::replace(&mut conns, again),
                rate,
                seconds,
                body.clone(),
            )
            .await;
            stats.print(&format!(
                "open loop ({rate} req/s over {concurrency} connections)"
            ));
        }
    });
    let metrics = Client::new(server.addr, std::slice::from_ref(&ca.der))
        .get("/metrics")
        .unwrap();
    println!("{}", server_p99(&String::from_utf8_lossy(&metrics.body)));
    adversarial(&server, &ca);
    drop(server);

    // Entrypoints from a registry, answered from the cache after the first.
    let registry = Registry::plain();
    registry.push_image(
        "shop/api",
        "1.4.2",
        true,
        "amd64",
        Some(&["/app/server"]),
        Some(&["--port", "8080"]),
    );
    let config = format!(
        "image = \"shroud:bench\"\n[registry]\nplain_http = [{:?}]\n",
        registry.host
    );
    let server = WebhookProcess::start(&release_bin(), &ca, &leaf, &config);
    let mut no_command = pod();
    let app = &mut no_command["spec"]["containers"][0];
    app.as_object_mut().unwrap().remove("command");
    app["image"] = json!(format!("{}/shop/api:1.4.2", registry.host));
    let body = review_body(no_command);
    rt.block_on(async {
        let conns = open_all(server.addr, &tls, concurrency).await;
        let (conns, _) = closed_loop(conns, concurrency * 5, body.clone()).await; // warm-up: one fetch
        let rate = env("BENCH_REGISTRY_RATE", 1000);
        let stats = open_loop(conns, rate, seconds, body.clone()).await;
        stats.print(&format!(
            "registry entrypoint, cached (open loop, {rate} req/s over {concurrency} connections)"
        ));
    });
    let metrics = Client::new(server.addr, std::slice::from_ref(&ca.der))
        .get("/metrics")
        .unwrap();
    let text = String::from_utf8_lossy(&metrics.body);
    let lookups: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("shroud_webhook_registry_lookups_total"))
        .collect();
    println!("{}; {}", server_p99(&text), lookups.join(", "));
}

/// The chart's memory limit for the webhook (helm/shroud/values.yaml).
const CHART_MEMORY_LIMIT_KIB: u64 = 128 * 1024;

/// A 20,000-container pod against the default cap, with stalled clients holding
/// connections, and `/healthz` asked throughout; the opted-in pod's latency on
/// fresh connections is the baseline.
fn adversarial(server: &WebhookProcess, ca: &TestCa) {
    let client = Client::new(server.addr, std::slice::from_ref(&ca.der));
    let containers: Vec<Value> = (0..20_000)
        .map(|i| {
            json!({"name": format!("c{i}"), "image": "busybox", "command": ["/bin/true"],
            "volumeMounts": [{"name": "shroud-secrets", "mountPath": "/s"}]})
        })
        .collect();
    let wide_pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "wide", "namespace": "shop", "annotations": {
            "shroud.dev/inject": "true", "shroud.dev/role": "r", "shroud.dev/secret-db": "secret/data/shop/db"}},
        "spec": {"containers": containers}});
    let wide = serde_json::to_vec(&shroud_e2e::webhook::admission_review(&wide_pod)).unwrap();
    let normal = review_body(pod());
    // Stalled clients: half a header each, held open.
    let stalled: Vec<std::net::TcpStream> = (0..50)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(server.addr).unwrap();
            std::io::Write::write_all(&mut s, &[0x16, 0x03, 0x01]).unwrap();
            s
        })
        .collect();
    let time = |body: &[u8]| {
        let t = Instant::now();
        let a = client.request("POST", "/mutate", body).unwrap();
        (t.elapsed(), a)
    };
    let mut wide_times = Vec::new();
    let mut base_times = Vec::new();
    let mut health = Vec::new();
    for _ in 0..20 {
        let (d, a) = time(&wide);
        assert_eq!(a.status, 200);
        let r = a.json();
        assert_eq!(r["response"]["allowed"], false, "the wide pod was admitted");
        assert!(r["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("20000 containers"));
        wide_times.push(d);
        base_times.push(time(&normal).0);
        let t = Instant::now();
        assert_eq!(client.get("/healthz").unwrap().status, 200);
        health.push(t.elapsed());
    }
    wide_times.sort();
    base_times.sort();
    health.sort();
    let rss = server.peak_rss_kib();
    println!(
        "20,000-container pod ({} bytes): denied in p50 {:?}, max {:?} (baseline opted-in pod on a fresh connection: p50 {:?}); /healthz p50 {:?}, max {:?} with {} stalled clients",
        wide.len(), wide_times[10], wide_times[19], base_times[10], health[10], health[19], stalled.len()
    );
    println!(
        "webhook peak RSS over the whole run: {} MiB (chart limit {} MiB)",
        rss / 1024,
        CHART_MEMORY_LIMIT_KIB / 1024
    );
    assert!(
        wide_times[19] < Duration::from_secs(1),
        "a wide pod took {:?}",
        wide_times[19]
    );
    assert!(
        rss < CHART_MEMORY_LIMIT_KIB,
        "peak RSS {rss} KiB over the chart's limit"
    );
    // The stalled clients are dropped by the handshake/header timeout (5 s default).
    let t = Instant::now();
    for mut s in stalled {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = [0u8; 64];
        while matches!(std::io::Read::read(&mut s, &mut buf), Ok(n) if n > 0) {}
    }
    println!(
        "50 stalled clients dropped after {:?} (server.header_timeout 5s)",
        t.elapsed()
    );
}
