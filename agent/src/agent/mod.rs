//! The agent proper: the lease engine and its parts (files, rendering, the
//! rotation handshake, backoff, wake-up sources).

pub mod backoff;
pub mod certs;
pub mod engine;
pub mod files;
pub mod handshake;
pub mod observe;
pub mod render;
pub mod snapshot;
pub mod wake;

pub use engine::{Engine, StartError, Wake};
