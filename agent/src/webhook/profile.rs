//! Pod Security profiles, chosen per webhook registration by the request path.
//!
//! An AdmissionReview does not carry the namespace's labels, but the API server
//! applies each registration's `namespaceSelector`: the chart registers the
//! webhooks twice, once for namespaces whose `pod-security.kubernetes.io/enforce`
//! level forbids `IPC_LOCK` (at `/mutate/restricted`, `/validate/restricted`) and
//! once for the rest (at `/mutate`, `/validate`). A path segment rather than a
//! query string: the API server rejects a service path whose segments are not
//! DNS-1123 subdomains, and a webhook URL with query parameters
//! (k8s.io/apiserver/pkg/util/webhook/validation.go).

use super::config::WebhookConfig;
use super::review::Endpoint;

/// What the injected containers must satisfy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// The agent gets `IPC_LOCK` (unless `agent.restricted_namespaces` or
    /// `agent.restricted_everywhere` say otherwise) and locks all its memory.
    Default,
    /// Pod Security "restricted" (and "baseline", which forbids `IPC_LOCK`
    /// too): no added capability; the agent locks what `RLIMIT_MEMLOCK` allows.
    Restricted,
}

/// The path segment of the restricted profile.
pub const RESTRICTED: &str = "restricted";

/// A request path naming an endpoint with a profile this webhook does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown Pod Security profile `{profile}` in {path}: use {base} (default) or {base}/restricted"
)]
pub struct UnknownProfile {
    /// The path as requested.
    pub path: String,
    /// The endpoint's base path (`/mutate`, `/validate`).
    pub base: &'static str,
    /// The unknown segment.
    pub profile: String,
}

/// The endpoint and profile a request path names: `None` when it names neither
/// `/mutate` nor `/validate`.
pub fn route(path: &str) -> Option<(Endpoint, Result<Profile, UnknownProfile>)> {
    let (endpoint, base, rest) = if let Some(rest) = path.strip_prefix("/mutate") {
        (Endpoint::Mutate, "/mutate", rest)
    } else if let Some(rest) = path.strip_prefix("/validate") {
        (Endpoint::Validate, "/validate", rest)
    } else {
        return None;
    };
    let profile = match rest {
        "" => Ok(Profile::Default),
        _ => match rest.strip_prefix('/') {
            Some(RESTRICTED) => Ok(Profile::Restricted),
            Some(other) => Err(UnknownProfile {
                path: path.to_string(),
                base,
                profile: other.to_string(),
            }),
            // `/mutatex`: another path altogether.
            None => return None,
        },
    };
    Some((endpoint, profile))
}

/// `cfg` as the restricted profile applies it: no namespace gets `IPC_LOCK`.
pub fn restricted(cfg: &WebhookConfig) -> WebhookConfig {
    let mut out = cfg.clone();
    out.agent.restricted_everywhere = true;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_endpoints_and_profiles() {
        assert_eq!(
            route("/mutate"),
            Some((Endpoint::Mutate, Ok(Profile::Default)))
        );
        assert_eq!(
            route("/validate/restricted"),
            Some((Endpoint::Validate, Ok(Profile::Restricted)))
        );
        assert_eq!(route("/mutatex"), None);
        assert_eq!(route("/healthz"), None);
        let e = route("/mutate/baseline").unwrap().1.unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown Pod Security profile `baseline` in /mutate/baseline: use /mutate (default) or /mutate/restricted"
        );
        assert!(route("/validate/").unwrap().1.is_err());
    }

    #[test]
    fn restricted_gives_no_namespace_ipc_lock() {
        let cfg = WebhookConfig::default();
        assert!(!cfg.agent.restricted_everywhere);
        assert!(restricted(&cfg).agent.restricted_everywhere);
    }
}
