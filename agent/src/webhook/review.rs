//! One admission review: parse, decide, answer. Pure (no I/O) so it can be tested
//! and benchmarked directly; the server only moves bytes and asks registries.
//!
//! `/mutate` injects and applies the guardrails to what it is given; `/validate`
//! runs after every mutation (other webhooks' included) and applies them to the
//! final pod, on CREATE, UPDATE and `pods/ephemeralcontainers`.
//!
//! A mutation that needs image commands from registries is answered in two
//! steps: [`prepare`] counts, parses, runs every check that needs no image and
//! names the [`Lookup`]s; the server resolves them (async, bounded by
//! `registry.timeout`); [`answer`] builds the patch with the results.
//! `/validate` never asks a registry: for a wrapped container it compares the
//! `shroud exec` prefix only, and what follows `--` is the workload's own command
//! (from the pod, an annotation or the image), which grants nothing.

use base64::Engine as _;
use k8s_openapi::api::core::v1::Pod;
use kube_core::admission::{AdmissionRequest, AdmissionReview, Operation};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use super::annotations::Injection;
use super::config::WebhookConfig;
use super::decision::{self, Decision};
use super::metrics::Metrics;
use super::ownership;
use super::patch::{self, Built, PatchError};
use super::policy::{self, Violation};
use super::registry::config::OnFailure;
use super::registry::{Lookup, Resolved};
use super::{changes, templates};

/// Rule name for annotation errors.
pub const RULE_ANNOTATIONS: &str = "annotations";
/// Rule name for pods that cannot be patched (no command, name conflicts).
pub const RULE_INJECTION: &str = "injection";
/// Rule name for pods over the container cap.
pub const RULE_CONTAINER_LIMIT: &str = "container-limit";
/// Rule name for pods whose image's command could not be read from its registry.
pub const RULE_IMAGE: &str = "image";

/// The request body is not an AdmissionReview (answered with HTTP 400).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadRequest(pub String);

/// Which webhook is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /mutate`: inject and check.
    Mutate,
    /// `POST /validate`: check the final pod.
    Validate,
}

/// What happened, for metrics and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Patched.
    Injected,
    /// Allowed unchanged.
    Skipped,
    /// Denied by a rule.
    Denied {
        /// The rule.
        rule: &'static str,
    },
}

enum Verdict {
    Allow,
    /// Allowed unchanged, with warnings for the user.
    AllowWarn(Vec<String>),
    Patch(Built),
    Deny(&'static str, String),
}

impl From<Violation> for Verdict {
    fn from(v: Violation) -> Self {
        Verdict::Deny(v.rule, v.to_string())
    }
}

/// Just enough of a review to count containers without building them.
#[derive(Deserialize)]
struct Shape {
    request: Option<ShapeRequest>,
}

#[derive(Deserialize)]
struct ShapeRequest {
    #[serde(default)]
    uid: String,
    namespace: Option<String>,
    object: Option<ShapePod>,
}

#[derive(Deserialize)]
struct ShapePod {
    spec: Option<ShapeSpec>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShapeSpec {
    #[serde(default)]
    containers: Vec<IgnoredAny>,
    #[serde(default)]
    init_containers: Vec<IgnoredAny>,
    #[serde(default)]
    ephemeral_containers: Vec<IgnoredAny>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'static str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<StatusOut>,
    /// Go's `[]byte`: a base64 string (an array of numbers would be ~4x larger).
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct StatusOut {
    status: &'static str,
    message: String,
    reason: &'static str,
    code: u16,
}

/// A request after [`prepare`].
#[derive(Debug)]
pub enum Prepared {
    /// The response body: nothing to look up.
    Done(Vec<u8>),
    /// A mutation that needs image commands from registries.
    Lookups {
        /// The parsed request, answered by [`answer`].
        req: Box<AdmissionRequest<Pod>>,
        /// What to resolve.
        lookups: Vec<Lookup>,
    },
}

/// Answers one AdmissionReview request body with the response body, with no
/// image looked up in a registry (a container without `command` then needs its
/// `shroud.dev/command-<container>` annotation).
pub fn review(
    body: &[u8],
    endpoint: Endpoint,
    cfg: &WebhookConfig,
    metrics: &Metrics,
) -> Result<Vec<u8>, BadRequest> {
    Ok(match prepare(body, endpoint, cfg, metrics)? {
        Prepared::Done(out) => out,
        Prepared::Lookups { req, .. } => answer(&req, endpoint, cfg, metrics, &Resolved::new()),
    })
}

/// Counts, parses and checks one request body: either the response body, or the
/// registry lookups the patch needs (`registry.enabled`, `/mutate` only).
pub fn prepare(
    body: &[u8],
    endpoint: Endpoint,
    cfg: &WebhookConfig,
    metrics: &Metrics,
) -> Result<Prepared, BadRequest> {
    // Counted first, without building a single container, so a pod with tens of
    // thousands of them costs a scan of its bytes and nothing more (and never
    // more than `server.max_containers` registry lookups).
    if let Ok(Shape { request: Some(r) }) = serde_json::from_slice::<Shape>(body) {
        let spec = r.object.and_then(|o| o.spec);
        let n = spec.map_or(0, |s| {
            s.containers.len() + s.init_containers.len() + s.ephemeral_containers.len()
        });
        if n > cfg.server.max_containers {
            let ns = r.namespace.unwrap_or_default();
            let message = format!(
                "shroud: the pod has {n} containers (containers, initContainers and ephemeralContainers together); this webhook admits at most {} (server.max_containers)",
                cfg.server.max_containers
            );
            return Ok(Prepared::Done(finish(
                &r.uid,
                &ns,
                Verdict::Deny(RULE_CONTAINER_LIMIT, message),
                metrics,
            )));
        }
    }
    let review: AdmissionReview<Pod> = serde_json::from_slice(body).map_err(|e| {
        BadRequest(format!(
            "the body is not an admission.k8s.io/v1 AdmissionReview of a Pod: {e}"
        ))
    })?;
    let req: AdmissionRequest<Pod> = review
        .try_into()
        .map_err(|_| BadRequest("the AdmissionReview has no `request`".into()))?;
    if endpoint == Endpoint::Mutate && cfg.registry.enabled {
        let namespace = req.namespace.clone().unwrap_or_default();
        if let Ok((pod, inj)) = mutate_checks(&req, &namespace, cfg) {
            let lookups = patch::image_lookups(pod, &inj, cfg);
            if !lookups.is_empty() {
                return Ok(Prepared::Lookups {
                    req: Box::new(req),
                    lookups,
                });
            }
        }
    }
    Ok(Prepared::Done(answer(
        &req,
        endpoint,
        cfg,
        metrics,
        &Resolved::new(),
    )))
}

/// Answers a parsed request, with the registry answers for its lookups.
pub fn answer(
    req: &AdmissionRequest<Pod>,
    endpoint: Endpoint,
    cfg: &WebhookConfig,
    metrics: &Metrics,
    images: &Resolved,
) -> Vec<u8> {
    let namespace = req.namespace.clone().unwrap_or_default();
    let verdict = match endpoint {
        Endpoint::Mutate => mutate(req, &namespace, cfg, images),
        Endpoint::Validate => validate(req, &namespace, cfg),
    };
    if let Verdict::Deny(rule, _) = &verdict {
        tracing::info!(namespace, pod = %pod_name(req), rule, ?endpoint, "denied");
    }
    finish(&req.uid, &namespace, verdict, metrics)
}

fn finish(uid: &str, namespace: &str, verdict: Verdict, metrics: &Metrics) -> Vec<u8> {
    let ns = metrics.namespace_label(namespace);
    let mut response = ResponseOut {
        uid,
        allowed: true,
        status: None,
        patch: None,
        patch_type: None,
        warnings: Vec::new(),
    };
    let outcome = match verdict {
        Verdict::Allow => Outcome::Skipped,
        Verdict::AllowWarn(warnings) => {
            response.warnings = warnings;
            Outcome::Skipped
        }
        Verdict::Patch(built) => {
            let json = serde_json::to_vec(&built.patch).expect("a JSON patch serializes");
            response.patch = Some(base64::engine::general_purpose::STANDARD.encode(json));
            response.patch_type = Some("JSONPatch");
            response.warnings = built.warnings;
            Outcome::Injected
        }
        Verdict::Deny(rule, message) => {
            response.allowed = false;
            response.status = Some(StatusOut {
                status: "Failure",
                message,
                reason: "Forbidden",
                code: 403,
            });
            Outcome::Denied { rule }
        }
    };
    match &outcome {
        Outcome::Injected => {
            metrics.injections.with_label_values(&[ns.as_str()]).inc();
            metrics.requests.with_label_values(&["injected"]).inc();
        }
        Outcome::Skipped => metrics.requests.with_label_values(&["skipped"]).inc(),
        Outcome::Denied { rule } => {
            metrics
                .denials
                .with_label_values(&[ns.as_str(), rule])
                .inc();
            metrics.requests.with_label_values(&["denied"]).inc();
        }
    }
    let out = ReviewOut {
        api_version: "admission.k8s.io/v1",
        kind: "AdmissionReview",
        response,
    };
    serde_json::to_vec(&out).expect("the response serializes")
}

/// Every check of a mutation that needs no image: the pod and its injection,
/// or the verdict.
fn mutate_checks<'r>(
    req: &'r AdmissionRequest<Pod>,
    namespace: &str,
    cfg: &WebhookConfig,
) -> Result<(&'r Pod, Injection), Verdict> {
    let Some(pod) = req
        .object
        .as_ref()
        .filter(|_| req.operation == Operation::Create)
    else {
        return Err(Verdict::Allow);
    };
    policy::check_host_paths(pod, namespace, &cfg.policy)?;
    let empty = Default::default();
    let annotations = pod.metadata.annotations.as_ref().unwrap_or(&empty);
    let injection = match decision::parse(annotations, cfg.compat.vault_agent) {
        Ok(Decision::Inject(i)) => i,
        Ok(Decision::NotRequested | Decision::AlreadyInjected) => {
            return match check_existing(pod, namespace, cfg) {
                Ok(()) => Err(Verdict::Allow),
                Err(v) => Err(v.into()),
            }
        }
        Err(e) => return Err(Verdict::Deny(RULE_ANNOTATIONS, format!("shroud: {e}"))),
    };
    ownership::check_plain(pod, cfg)?;
    if let Some(spec) = pod.spec.as_ref() {
        ownership::check_process_sharing(spec)?;
    }
    policy::check_secret_paths(&injection, namespace, &cfg.policy)?;
    templates::check(&injection, cfg, namespace)?;
    Ok((pod, *injection))
}

fn mutate(
    req: &AdmissionRequest<Pod>,
    namespace: &str,
    cfg: &WebhookConfig,
    images: &Resolved,
) -> Verdict {
    let (pod, injection) = match mutate_checks(req, namespace, cfg) {
        Ok(checked) => checked,
        Err(verdict) => return verdict,
    };
    match patch::build(pod, &injection, cfg, namespace, images) {
        Ok(b) => Verdict::Patch(b),
        Err(e @ PatchError::Image { .. }) if cfg.registry.on_failure == OnFailure::Admit => {
            Verdict::AllowWarn(vec![format!(
                "shroud: the pod was admitted WITHOUT secrets injection (registry.on_failure = \"admit\"): {e}"
            )])
        }
        Err(e @ PatchError::Image { .. }) => Verdict::Deny(RULE_IMAGE, format!("shroud: {e}")),
        Err(e) => Verdict::Deny(RULE_INJECTION, format!("shroud: {e}")),
    }
}

/// A pod this webhook will not patch: re-derived when it carries shroud's parts,
/// otherwise it may not use them.
fn check_existing(pod: &Pod, namespace: &str, cfg: &WebhookConfig) -> Result<(), Violation> {
    if ownership::claims_injection(pod) {
        ownership::check_injected(pod, namespace, cfg)
    } else {
        ownership::check_plain(pod, cfg)
    }
}

fn validate(req: &AdmissionRequest<Pod>, namespace: &str, cfg: &WebhookConfig) -> Verdict {
    let Some(pod) = req.object.as_ref() else {
        return Verdict::Allow;
    };
    let result = match (&req.operation, req.old_object.as_ref()) {
        (Operation::Create, _) => validate_create(pod, namespace, cfg),
        (Operation::Update, Some(old)) => changes::check_update(old, pod, cfg),
        _ => Ok(()),
    };
    match result {
        Ok(()) => Verdict::Allow,
        Err(v) => v.into(),
    }
}

fn validate_create(pod: &Pod, namespace: &str, cfg: &WebhookConfig) -> Result<(), Violation> {
    policy::check_host_paths(pod, namespace, &cfg.policy)?;
    if ownership::claims_injection(pod) {
        return ownership::check_injected(pod, namespace, cfg);
    }
    ownership::check_plain(pod, cfg)?;
    let empty = Default::default();
    let annotations = pod.metadata.annotations.as_ref().unwrap_or(&empty);
    match decision::parse(annotations, cfg.compat.vault_agent) {
        // `/mutate` admits such a pod unwrapped when its image could not be read
        // and the operator chose `registry.on_failure = "admit"`.
        Ok(Decision::Inject(inj))
            if cfg.registry.enabled
                && cfg.registry.on_failure == OnFailure::Admit
                && !patch::image_lookups(pod, &inj, cfg).is_empty() =>
        {
            Ok(())
        }
        Ok(Decision::Inject(_)) => Err(Violation {
            rule: RULE_INJECTION,
            field: "metadata.annotations".into(),
            reason:
                "the pod asks for shroud but was not injected (was the mutating webhook skipped?)"
                    .into(),
        }),
        Ok(_) => Ok(()),
        Err(e) => Err(Violation {
            rule: RULE_ANNOTATIONS,
            field: "metadata.annotations".into(),
            reason: e.to_string(),
        }),
    }
}

fn pod_name(req: &AdmissionRequest<Pod>) -> String {
    req.object
        .as_ref()
        .and_then(|p| {
            p.metadata
                .name
                .clone()
                .or_else(|| p.metadata.generate_name.clone())
        })
        .unwrap_or_else(|| req.name.clone())
}
