//! `shroud webhook`: the Kubernetes mutating admission webhook.
//!
//! - [`config`]: the configuration file and its policy section;
//! - [`decision`], [`annotations`] and [`vault_compat`]: pod annotations → a validated request
//!   ([`gateways`]: the `gateway-<name>` annotations);
//! - [`policy`], [`ownership`], [`changes`], [`templates`]: the guardrails;
//! - [`patch`] and [`agent_config`]: what an opted-in pod gets; [`profile`]: the
//!   Pod Security profile a registration asks for (`/mutate/restricted`);
//! - [`registry`]: image ENTRYPOINT/CMD from OCI registries, for containers
//!   without `command`;
//! - [`review`]: one AdmissionReview in, one out (no I/O); [`memo`]: repeated
//!   checks remembered by their whole input;
//! - [`server`], [`tls`], [`metrics`]: HTTPS, certificate reload, Prometheus.

pub mod agent_config;
pub mod annotations;
pub mod changes;
pub mod config;
pub mod decision;
pub mod gateways;
pub mod idle;
pub mod limits;
pub mod memo;
pub mod metrics;
pub mod ownership;
pub mod patch;
pub mod policy;
pub mod profile;
pub mod registry;
pub mod review;
pub mod server;
pub mod templates;
pub mod tls;
pub mod vault_compat;
