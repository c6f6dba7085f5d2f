//! What shroud shows operators while it runs: Prometheus metrics fed by security
//! events ([`metrics`]), the readiness state the agent maintains ([`health`]), and
//! the HTTP endpoints that serve both ([`server`]).
//!
//! Wiring, in the agent:
//!
//! ```no_run
//! # async fn agent() -> std::io::Result<()> {
//! use std::sync::Arc;
//! use shroud_agent::telemetry::{self, Health, Metrics};
//! let metrics = Metrics::new().expect("metric names are valid");
//! shroud_agent::events::install(metrics.clone());
//! let health = Arc::new(Health::default());
//! let server = telemetry::Server::bind("127.0.0.1:9090".parse().unwrap()).await?;
//! tokio::spawn(server.run(metrics.registry(), health.clone()));
//! health.set_rendered(true);
//! health.set_token_valid(true);
//! # Ok(()) }
//! ```

mod collectors;
mod gateway_conns;
pub mod health;
mod memlock;
pub mod metrics;
mod rss;
pub mod server;

pub use health::Health;
pub use metrics::{Metrics, Stream};
pub use server::{serve, Server};
