//! Why an image's entrypoint could not be read. Messages name the image and the
//! registry, never a credential or token.

use std::time::Duration;

use super::creds::CredsError;
use super::reference::BadReference;

/// A failed lookup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The image name does not parse.
    #[error(transparent)]
    Reference(#[from] BadReference),
    /// The registry could not be reached (DNS, connect, TLS).
    #[error("registry {registry} is unreachable for `{image}`: {reason}")]
    Unreachable {
        /// The image.
        image: String,
        /// The registry host.
        registry: String,
        /// The transport error.
        reason: String,
    },
    /// The registry does not have the image (or tag, or digest).
    #[error("image `{image}` was not found in registry {registry}")]
    NotFound {
        /// The image as the pod names it.
        image: String,
        /// The registry host.
        registry: String,
    },
    /// The registry refused access.
    #[error("registry {registry} refused access to `{image}`: {reason}")]
    Unauthorized {
        /// The image.
        image: String,
        /// The registry host.
        registry: String,
        /// Which credentials were tried.
        reason: String,
    },
    /// The registry's token service (bearer challenge) could not be reached.
    #[error(
        "the token service {realm} of registry {registry} is unreachable for `{image}`: {reason}"
    )]
    TokenService {
        /// The image.
        image: String,
        /// The registry host.
        registry: String,
        /// The token endpoint the registry named.
        realm: String,
        /// The transport error.
        reason: String,
    },
    /// Any other unexpected HTTP status.
    #[error("registry {registry} answered HTTP {status} for `{image}`")]
    Status {
        /// The image.
        image: String,
        /// The registry host.
        registry: String,
        /// The status code.
        status: u16,
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
    /// The whole lookup took longer than `registry.timeout`.
    #[error("reading the configuration of image `{image}` took longer than {after:?} (registry.timeout)")]
    Timeout {
        /// The image.
        image: String,
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
            | LookupError::Timeout { image, .. } => *image = original.to_string(),
            LookupError::Reference(_) | LookupError::Credentials(_) => {}
        }
        self
    }

    /// A short, bounded label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            LookupError::Reference(_) => "reference",
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
}
