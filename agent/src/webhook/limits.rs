//! `[server]`: what one request, one connection and the whole process may cost.
//! Every bound has a default sized for the chart's 128 MiB memory limit.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// The API server accepts request bodies of up to 3 MiB.
const API_SERVER_MAX_REQUEST: usize = 3 * 1024 * 1024;
/// Go's `encoding/json` writes `<`, `>`, `&`, U+2028, U+2029 and each invalid
/// UTF-8 byte as a six-byte `\uXXXX` escape.
const GO_JSON_WORST_ESCAPE: usize = 6;
/// Room for the AdmissionReview envelope (user info, options, kinds).
const ENVELOPE: usize = 1024 * 1024;

/// The largest AdmissionReview the API server sends for a valid pod: an UPDATE
/// (object and oldObject) of a pod whose 3 MiB of JSON is all escaped characters.
pub const DEFAULT_MAX_BODY: usize = 2 * API_SERVER_MAX_REQUEST * GO_JSON_WORST_ESCAPE + ENVELOPE;

/// `[server]` of the webhook configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerLimits {
    /// Containers + init containers + ephemeral containers a pod may have.
    pub max_containers: usize,
    /// Largest request body accepted (bytes).
    pub max_body_bytes: usize,
    /// Request bodies held in memory at once, all connections together (bytes).
    pub max_in_flight_bytes: usize,
    /// Reviews computed at once (each on a blocking thread).
    pub max_concurrent_reviews: usize,
    /// Concurrent HTTP/2 streams per connection.
    pub max_http2_streams: u32,
    /// Time allowed for a request's headers to arrive.
    #[serde(deserialize_with = "duration")]
    pub header_timeout: Duration,
    /// Time allowed for a request's body to arrive, from its headers.
    #[serde(deserialize_with = "duration")]
    pub body_timeout: Duration,
    /// A connection on which nothing is read for this long is closed.
    #[serde(deserialize_with = "duration")]
    pub idle_timeout: Duration,
    /// Distinct namespaces given their own metric label; later ones are `other`.
    pub max_metric_namespaces: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_containers: 300,
            max_body_bytes: DEFAULT_MAX_BODY,
            max_in_flight_bytes: 64 * 1024 * 1024,
            max_concurrent_reviews: 4,
            max_http2_streams: 16,
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_metric_namespaces: 500,
        }
    }
}

impl ServerLimits {
    /// The first unacceptable key and why.
    pub fn check(&self) -> Result<(), (&'static str, &'static str)> {
        let zero = [
            ("server.max_containers", self.max_containers == 0),
            ("server.max_body_bytes", self.max_body_bytes == 0),
            (
                "server.max_concurrent_reviews",
                self.max_concurrent_reviews == 0,
            ),
            ("server.max_http2_streams", self.max_http2_streams == 0),
            ("server.header_timeout", self.header_timeout.is_zero()),
            ("server.body_timeout", self.body_timeout.is_zero()),
            ("server.idle_timeout", self.idle_timeout.is_zero()),
        ];
        if let Some((key, _)) = zero.iter().find(|(_, z)| *z) {
            return Err((key, "must be greater than zero"));
        }
        if self.max_in_flight_bytes < self.max_body_bytes {
            return Err((
                "server.max_in_flight_bytes",
                "must be at least server.max_body_bytes",
            ));
        }
        Ok(())
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(|e| {
        serde::de::Error::custom(format!("`{s}` is not a duration such as `10s`: {e}"))
    })
}
