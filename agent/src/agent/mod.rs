//! The agent proper: the lease engine (`engine`: effects, applying the pure
//! `schedule`) and its parts (files, rendering, the rotation handshake and the
//! one `publish` sequence, `retry`, wake-up sources).

pub mod binding;
pub mod certs;
pub mod consul;
pub mod engine;
pub mod files;
pub mod handshake;
pub mod observe;
pub mod publish;
pub mod render;
pub mod retry;
pub mod schedule;
pub mod snapshot;
pub mod state;
pub mod wake;

pub use engine::{Engine, StartError, Wake};
