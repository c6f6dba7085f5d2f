//! Logging in with the configured method. Credentials are read from their files
//! at each login (Kubernetes rotates projected service-account tokens) and held
//! only in zeroizing buffers.

use std::path::Path;

use serde_json::json;
use zeroize::Zeroizing;

use super::api::{self, TokenInfo};
use super::client::{Token, VaultClient, VaultError};
use crate::config::{AuthConfig, AuthMethod};
use crate::events::{self, Event, Outcome};
use crate::pem::{Identity, TlsFileError};

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A credential file could not be read.
    #[error("[auth] {key}: cannot read {path}: {source}")]
    Credential {
        /// The config key naming the file.
        key: &'static str,
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A credential file is empty.
    #[error("[auth] {key}: {path} is empty")]
    Empty {
        /// The config key naming the file.
        key: &'static str,
        /// The file.
        path: String,
    },
    /// The client certificate or key (cert method) is unusable.
    #[error("[auth] {}: {source}", source.key())]
    Identity {
        /// What is wrong with the files.
        source: TlsFileError,
    },
    /// Vault refused or failed the login.
    #[error("{method} login failed: {source}")]
    Vault {
        /// The method.
        method: &'static str,
        /// The error.
        source: VaultError,
    },
}

impl AuthError {
    /// True when retrying later may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, AuthError::Vault { source, .. } if source.is_transient())
    }
}

fn read_credential(key: &'static str, path: &Path) -> Result<Zeroizing<String>, AuthError> {
    let text =
        Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| AuthError::Credential {
                key,
                path: path.display().to_string(),
                source,
            })?,
        );
    let trimmed = Zeroizing::new(text.trim().to_string());
    if trimmed.is_empty() {
        return Err(AuthError::Empty {
            key,
            path: path.display().to_string(),
        });
    }
    Ok(trimmed)
}

/// Logs in (or, for the token method, looks the token up) and installs the token
/// in the client. Emits a `Login` event either way.
pub fn login(cfg: &AuthConfig, client: &mut VaultClient) -> Result<TokenInfo, AuthError> {
    let method = cfg.method.name();
    let result = login_inner(cfg, client);
    let outcome = match &result {
        Ok(_) => Outcome::Ok,
        Err(AuthError::Vault { source, .. }) => source.outcome(),
        Err(e) => Outcome::Error(e.to_string()),
    };
    if let Outcome::Denied(reason) = &outcome {
        events::emit(Event::Denial {
            secret: None,
            path: Some(&cfg.mount),
            reason,
        });
    }
    events::emit(Event::Login { method, outcome });
    result
}

fn login_inner(cfg: &AuthConfig, client: &mut VaultClient) -> Result<TokenInfo, AuthError> {
    let method = cfg.method.name();
    let vault = |source| AuthError::Vault { method, source };
    let body = match cfg.method {
        AuthMethod::Token => {
            let path = cfg.token_file.as_deref().unwrap_or(Path::new(""));
            let token = read_credential("token_file", path)?;
            client.set_token(Some(Token(token.clone())));
            let mut info = api::lookup_self(client).map_err(vault)?;
            info.token = Some(Token(token));
            return Ok(info);
        }
        AuthMethod::AppRole => {
            let role_id = read_credential(
                "role_id_file",
                cfg.role_id_file.as_deref().unwrap_or(Path::new("")),
            )?;
            let secret_id = read_credential(
                "secret_id_file",
                cfg.secret_id_file.as_deref().unwrap_or(Path::new("")),
            )?;
            json!({ "role_id": role_id.as_str(), "secret_id": secret_id.as_str() })
        }
        AuthMethod::Cert => {
            // Read at every login: the certificate is rotated on disk by
            // whatever issues the machine identity.
            let identity = Identity::load(
                cfg.client_cert.as_deref().unwrap_or(Path::new("")),
                cfg.client_key.as_deref().unwrap_or(Path::new("")),
            )
            .map_err(|source| AuthError::Identity { source })?;
            let tls_client = client.with_identity(&identity).map_err(vault)?;
            let body = match &cfg.cert_role {
                Some(name) => json!({ "name": name }),
                None => json!({}),
            };
            let info = api::login(&tls_client, &cfg.mount, &body).map_err(vault)?;
            client.set_token(info.token.clone());
            return Ok(info);
        }
        AuthMethod::Kubernetes | AuthMethod::Jwt => {
            let jwt = read_credential("jwt_path", &cfg.jwt_path)?;
            json!({ "role": cfg.role.as_deref().unwrap_or(""), "jwt": jwt.as_str() })
        }
    };
    client.set_token(None);
    let info = api::login(client, &cfg.mount, &body).map_err(vault)?;
    client.set_token(info.token.clone());
    Ok(info)
}
