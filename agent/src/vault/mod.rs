//! Talking to Vault/OpenBao: the HTTP client, the endpoints, and login.

pub mod api;
pub mod auth;
pub mod client;
pub mod pki;

pub use client::{Token, VaultClient, VaultError};
