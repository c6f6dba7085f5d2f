//! One admission review: parse, decide, answer. Pure (no I/O) so it can be tested
//! and benchmarked directly; the server only moves bytes.

use k8s_openapi::api::core::v1::Pod;
use kube_core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube_core::{DynamicObject, Status};

use super::config::WebhookConfig;
use super::decision::{self, Decision};
use super::metrics::Metrics;
use super::patch::{self, PatchError};
use super::policy;
use super::registry::config::OnFailure;
use super::registry::{Lookup, Resolved};

/// Rule name for annotation errors.
pub const RULE_ANNOTATIONS: &str = "annotations";
/// Rule name for pods that cannot be patched (no command, name conflicts).
pub const RULE_INJECTION: &str = "injection";
/// Rule name for pods whose image's command could not be read from its registry.
pub const RULE_IMAGE: &str = "image";

/// The request body is not an AdmissionReview (answered with HTTP 400).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadRequest(pub String);

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

/// Answers one AdmissionReview request body, with no image looked up in a
/// registry (a container without `command` needs its annotation).
pub fn review(
    body: &[u8],
    cfg: &WebhookConfig,
    metrics: &Metrics,
) -> Result<AdmissionReview<DynamicObject>, BadRequest> {
    Ok(answer(&parse(body)?, cfg, metrics, &Resolved::new()))
}

/// Parses an AdmissionReview request body.
pub fn parse(body: &[u8]) -> Result<AdmissionRequest<Pod>, BadRequest> {
    let review: AdmissionReview<Pod> = serde_json::from_slice(body).map_err(|e| {
        BadRequest(format!(
            "the body is not an admission.k8s.io/v1 AdmissionReview of a Pod: {e}"
        ))
    })?;
    review
        .try_into()
        .map_err(|_| BadRequest("the AdmissionReview has no `request`".into()))
}

/// The images whose command the answer to `req` needs from a registry: empty
/// unless the pod is created, opts in, and wraps a container without `command`.
pub fn image_lookups(req: &AdmissionRequest<Pod>, cfg: &WebhookConfig) -> Vec<Lookup> {
    let Some(pod) = req
        .object
        .as_ref()
        .filter(|_| req.operation == Operation::Create && cfg.registry.enabled)
    else {
        return Vec::new();
    };
    let empty = Default::default();
    let annotations = pod.metadata.annotations.as_ref().unwrap_or(&empty);
    match decision::parse(annotations, cfg.compat.vault_agent) {
        Ok(Decision::Inject(inj)) => patch::image_lookups(pod, &inj, cfg),
        _ => Vec::new(),
    }
}

/// Answers a parsed request, with the registry answers for [`image_lookups`].
pub fn answer(
    req: &AdmissionRequest<Pod>,
    cfg: &WebhookConfig,
    metrics: &Metrics,
    images: &Resolved,
) -> AdmissionReview<DynamicObject> {
    let namespace = req.namespace.clone().unwrap_or_default();
    let (response, outcome) = decide(req, &namespace, cfg, images);
    match &outcome {
        Outcome::Injected => {
            metrics
                .injections
                .with_label_values(&[namespace.as_str()])
                .inc();
            metrics.requests.with_label_values(&["injected"]).inc();
        }
        Outcome::Skipped => metrics.requests.with_label_values(&["skipped"]).inc(),
        Outcome::Denied { rule } => {
            metrics
                .denials
                .with_label_values(&[namespace.as_str(), rule])
                .inc();
            metrics.requests.with_label_values(&["denied"]).inc();
        }
    }
    if let Outcome::Denied { rule } = &outcome {
        tracing::info!(namespace, pod = %pod_name(req), rule, "denied");
    }
    response.into_review()
}

fn decide(
    req: &AdmissionRequest<Pod>,
    namespace: &str,
    cfg: &WebhookConfig,
    images: &Resolved,
) -> (AdmissionResponse, Outcome) {
    let allow = AdmissionResponse::from(req);
    let Some(pod) = req
        .object
        .as_ref()
        .filter(|_| req.operation == Operation::Create)
    else {
        return (allow, Outcome::Skipped);
    };
    let deny = |rule: &'static str, message: String| {
        let mut r = AdmissionResponse::from(req);
        r.allowed = false;
        r.result = Status::failure(&message, "Forbidden").with_code(403);
        (r, Outcome::Denied { rule })
    };
    if let Err(v) = policy::check_host_paths(pod, namespace, &cfg.policy) {
        return deny(v.rule, v.to_string());
    }
    let empty = Default::default();
    let annotations = pod.metadata.annotations.as_ref().unwrap_or(&empty);
    let injection = match decision::parse(annotations, cfg.compat.vault_agent) {
        Ok(Decision::Inject(i)) => i,
        Ok(Decision::NotRequested | Decision::AlreadyInjected) => return (allow, Outcome::Skipped),
        Err(e) => return deny(RULE_ANNOTATIONS, format!("shroud: {e}")),
    };
    if let Err(v) = policy::check_secret_paths(&injection, namespace, &cfg.policy) {
        return deny(v.rule, v.to_string());
    }
    let built = match patch::build(pod, &injection, cfg, images) {
        Ok(b) => b,
        Err(e @ PatchError::Image { .. }) if cfg.registry.on_failure == OnFailure::Admit => {
            let mut r = allow;
            r.warnings = Some(vec![format!(
                "shroud: the pod was admitted WITHOUT secrets injection (registry.on_failure = \"admit\"): {e}"
            )]);
            return (r, Outcome::Skipped);
        }
        Err(e @ PatchError::Image { .. }) => return deny(RULE_IMAGE, format!("shroud: {e}")),
        Err(e) => return deny(RULE_INJECTION, format!("shroud: {e}")),
    };
    let mut response = match allow.with_patch(built.patch) {
        Ok(r) => r,
        Err(e) => {
            return deny(
                RULE_INJECTION,
                format!("shroud: cannot serialize the patch: {e}"),
            )
        }
    };
    if !built.warnings.is_empty() {
        response.warnings = Some(built.warnings);
    }
    (response, Outcome::Injected)
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
