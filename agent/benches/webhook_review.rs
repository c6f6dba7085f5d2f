//! CPU cost of one admission review, without network or TLS: parse, policy,
//! annotations, patch, serialization. `cargo bench -p shroud-agent --bench webhook_review`.
//!
//! `BENCH_REVIEWS=N` runs only N full reviews and exits, for instruction counts
//! on a shared machine: run it under `valgrind --tool=callgrind` with N and with
//! 0, and divide the difference by N.

use std::time::Instant;

use shroud_agent::webhook::config::WebhookConfig;
use shroud_agent::webhook::metrics::Metrics;
use shroud_agent::webhook::review;

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let pod: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("tests/fixtures/webhook/deployment-pod.json")).unwrap(),
    )
    .unwrap();
    let body = serde_json::to_vec(&serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "b", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop", "operation": "CREATE", "userInfo": {}, "object": pod}
    }))
    .unwrap();
    let cfg = WebhookConfig::default();
    let metrics = Metrics::new();
    if let Ok(n) = std::env::var("BENCH_REVIEWS") {
        let n: usize = n.parse().expect("BENCH_REVIEWS must be a number");
        for _ in 0..n {
            let r = review::review(&body, review::Endpoint::Mutate, &cfg, &metrics).unwrap();
            std::hint::black_box(r);
        }
        return;
    }
    let n = 20_000;
    for _ in 0..1000 {
        let _ = review::review(&body, review::Endpoint::Mutate, &cfg, &metrics).unwrap();
    }
    let t = Instant::now();
    let mut out_len = 0;
    for _ in 0..n {
        let r = review::review(&body, review::Endpoint::Mutate, &cfg, &metrics).unwrap();
        out_len = r.len();
    }
    let full = t.elapsed() / n;
    let t = Instant::now();
    for _ in 0..n {
        let r: kube_core::admission::AdmissionReview<k8s_openapi::api::core::v1::Pod> =
            serde_json::from_slice(&body).unwrap();
        std::hint::black_box(r);
    }
    let parse = t.elapsed() / n;
    let review: kube_core::admission::AdmissionReview<k8s_openapi::api::core::v1::Pod> =
        serde_json::from_slice(&body).unwrap();
    let pod = review.request.unwrap().object.unwrap();
    let ann = pod.metadata.annotations.clone().unwrap();
    let t = Instant::now();
    let mut patch = None;
    for _ in 0..n {
        let shroud_agent::webhook::decision::Decision::Inject(inj) =
            shroud_agent::webhook::decision::parse(&ann, false).unwrap()
        else {
            panic!()
        };
        patch = Some(
            shroud_agent::webhook::patch::build(&pod, &inj, &cfg, "shop", &Default::default())
                .unwrap()
                .patch,
        );
    }
    let build = t.elapsed() / n;
    let patch = patch.unwrap();
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(serde_json::to_vec(&patch).unwrap());
    }
    let ser_patch = t.elapsed() / n;
    let r = review::review(&body, review::Endpoint::Mutate, &cfg, &metrics).unwrap();
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(r.clone());
    }
    let ser_resp = t.elapsed() / n;
    println!("annotations+patch build {build:?}, patch to JSON {ser_patch:?}, response to JSON {ser_resp:?}");
    println!(
        "review of a {} byte AdmissionReview: {full:?} per call (parse alone {parse:?}), {out_len} byte response",
        body.len()
    );
}
