//! Why an image's entrypoint could not be read. Messages name the image and the
//! registry, never a credential or token.

use std::time::Duration;

use super::creds::CredsError;
use super::reference::BadReference;

/// A failed lookup. What the pod author sees (`Display`) names the image, the
/// registry and a class in their terms — not allowed, unreachable, not found,
/// unauthorized, registry error, timed out — and never the transport's own words:
/// connection refused, TLS bytes and status codes would make the webhook a port
/// scanner for whoever names the image. [`LookupError::detail`] keeps those for
/// the webhook's log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The image name does not parse.
    #[error(transparent)]
    Reference(#[from] BadReference),
    /// The registry, a redirect or a token realm is outside `registry.allowed`
    /// (or not `https://`): refused before any connection.
    #[error("cannot read image `{image}` from registry {registry}: not allowed (the webhook only asks registries, redirect targets and token services that registry.allowed admits, over https://)")]
    NotAllowed {
        /// The image.
        image: String,
        /// The registry host.
        registry: String,
        /// Which hop and why (log only).
        detail: String,
    },
    /// The registry could not be reached (DNS, connect, TLS, an address refused
    /// after resolution, a broken answer).
    #[error("cannot read image `{image}` from registry {registry}: unreachable")]
    Unreachable {
        /// The image.
        image: String,
        /// The registry host.
        registry: String,
        /// The transport error (log only).
        detail: String,
    },
    /// The registry does not have the image (or tag, or digest).
    #[error("cannot read image `{image}` from registry {registry}: not found")]
    NotFound {
        /// The image as the pod names it.
        image: String,
        /// The registry host.
        registry: String,
    },
    /// The registry refused access.
    #[error("cannot read image `{image}` from registry {registry}: unauthorized ({hint})")]
    Unauthorized {
        /// The image.
        image: String,
        /// The registry host.
        registry: String,
        /// What the operator can change, in the configuration's terms.
        hint: String,
        /// What was answered (log only).
        detail: String,
    },
    /// The registry's token service (bearer challenge) could not be reached.
    #[error("cannot read image `{image}` from registry {registry}: unreachable (its token service {realm})")]
    TokenService {
        /// The image.
        image: String,
        /// The registry host.
        registry: String,
        /// The token endpoint the registry named (origin and path).
        realm: String,
        /// The transport error (log only).
        detail: String,
    },
    /// An unexpected answer: an HTTP status, a redirect without `Location` or
    /// too many of them, a document too large.
    #[error("cannot read image `{image}` from registry {registry}: registry error")]
    Status {
        /// The image.
        image: String,
        /// The registry host.
        registry: String,
        /// The answer (log only).
        detail: String,
    },
    /// A manifest or configuration that cannot be used.
    #[error("image `{image}`: {reason}")]
    Invalid {
        /// The image.
        image: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The image index has no entry for the pod's platform.
    #[error("image `{image}` has no {wanted} variant (it has: {available})")]
    NoPlatform {
        /// The image.
        image: String,
        /// The wanted platforms.
        wanted: String,
        /// The platforms in the index.
        available: String,
    },
    /// The pod may run on several platforms whose images run different commands.
    #[error("image `{image}` runs different commands on {platforms}, and the pod may be scheduled on any of them")]
    PlatformsDisagree {
        /// The image.
        image: String,
        /// The platforms, comma-separated.
        platforms: String,
    },
    /// The admission's registry work, all of it, took longer than `registry.timeout`.
    #[error("cannot read image `{image}` from registry {registry}: timed out (this admission's registry round trips took longer than {after:?} (registry.timeout))")]
    Timeout {
        /// The image.
        image: String,
        /// The registry host.
        registry: String,
        /// The configured bound.
        after: Duration,
    },
    /// The configured Docker config JSON cannot be used.
    #[error("{0}")]
    Credentials(String),
}

impl From<CredsError> for LookupError {
    fn from(e: CredsError) -> Self {
        LookupError::Credentials(e.to_string())
    }
}

impl LookupError {
    /// The same error naming the image as `original` (a lookup that shared
    /// another's fetch may spell the same image differently).
    pub fn for_image(mut self, original: &str) -> LookupError {
        match &mut self {
            LookupError::NotFound { image, .. }
            | LookupError::Unreachable { image, .. }
            | LookupError::Unauthorized { image, .. }
            | LookupError::TokenService { image, .. }
            | LookupError::Status { image, .. }
            | LookupError::Invalid { image, .. }
            | LookupError::NoPlatform { image, .. }
            | LookupError::PlatformsDisagree { image, .. }
            | LookupError::NotAllowed { image, .. }
            | LookupError::Timeout { image, .. } => *image = original.to_string(),
            LookupError::Reference(_) | LookupError::Credentials(_) => {}
        }
        self
    }

    /// A short, bounded label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            LookupError::Reference(_) => "reference",
            LookupError::NotAllowed { .. } => "not_allowed",
            LookupError::Unreachable { .. } => "unreachable",
            LookupError::TokenService { .. } => "token_service",
            LookupError::NotFound { .. } => "not_found",
            LookupError::Unauthorized { .. } | LookupError::Credentials(_) => "unauthorized",
            LookupError::Status { .. } => "status",
            LookupError::Invalid { .. } => "invalid",
            LookupError::NoPlatform { .. } | LookupError::PlatformsDisagree { .. } => "platform",
            LookupError::Timeout { .. } => "timeout",
        }
    }

    /// What the webhook's log adds to the pod-facing message, if anything.
    pub fn detail(&self) -> Option<&str> {
        match self {
            LookupError::NotAllowed { detail, .. }
            | LookupError::Unreachable { detail, .. }
            | LookupError::Unauthorized { detail, .. }
            | LookupError::TokenService { detail, .. }
            | LookupError::Status { detail, .. } => Some(detail),
            _ => None,
        }
    }

    /// The registry host the lookup went to, when it got that far.
    pub fn registry(&self) -> Option<&str> {
        match self {
            LookupError::NotAllowed { registry, .. }
            | LookupError::Unreachable { registry, .. }
            | LookupError::NotFound { registry, .. }
            | LookupError::Unauthorized { registry, .. }
            | LookupError::TokenService { registry, .. }
            | LookupError::Status { registry, .. }
            | LookupError::Timeout { registry, .. } => Some(registry),
            _ => None,
        }
    }
}
