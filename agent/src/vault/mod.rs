//! Talking to Vault/OpenBao: the HTTP client, the endpoints, login, the PKI
//! engine (certificates), and the transit engine (signing artifacts and the
//! audit chain).

pub mod api;
pub mod auth;
pub mod client;
pub mod path;
pub mod pki;
pub mod raw;
pub mod transit;

pub use client::{Token, VaultClient, VaultError};
