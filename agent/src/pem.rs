//! PEM files → rustls: the CA certificates to trust (`[vault] ca_cert`) and the
//! client certificate and key of `[auth] method = "cert"`, parsed with rustls' own
//! `pki-types` reader, and the client configurations built from them. Shared by
//! configuration checks and the Vault client, and knows neither.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why a TLS file is unusable. Names the config key and the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsFileError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The config key (`client_cert`, `client_key`, `ca_cert`).
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file holds no PEM block of the expected type, or a malformed one.
    #[error("{path} holds no usable PEM {what}")]
    NoPem {
        /// The config key.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// `certificate` or `private key`.
        what: &'static str,
    },
    /// rustls refused the certificate and key (e.g. they do not belong together).
    #[error("{path}: {detail}")]
    Rejected {
        /// The config key.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// rustls' message.
        detail: String,
    },
}

impl TlsFileError {
    /// The config key the file came from.
    pub fn key(&self) -> &'static str {
        match self {
            TlsFileError::Read { key, .. }
            | TlsFileError::NoPem { key, .. }
            | TlsFileError::Rejected { key, .. } => key,
        }
    }
}

fn read(key: &'static str, path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>, TlsFileError> {
    std::fs::read(path)
        .map(zeroize::Zeroizing::new)
        .map_err(|source| TlsFileError::Read {
            key,
            path: path.to_path_buf(),
            source,
        })
}

/// Every certificate in a PEM file (at least one).
pub fn certificates(
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let pem = read(key, path)?;
    let no_pem = || TlsFileError::NoPem {
        key,
        path: path.to_path_buf(),
        what: "certificate",
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| no_pem())?;
    if certs.is_empty() {
        return Err(no_pem());
    }
    Ok(certs)
}

/// A client certificate chain and its private key. `Debug` hides the key.
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_path: PathBuf,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("cert", &self.cert_path)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Reads and parses both files (the key as PKCS#8, PKCS#1 or SEC1 PEM) and
    /// checks they belong together.
    pub fn load(cert: &Path, key: &Path) -> Result<Identity, TlsFileError> {
        let chain = certificates("client_cert", cert)?;
        let pem = read("client_key", key)?;
        let private = PrivateKeyDer::from_pem_slice(&pem).map_err(|_| TlsFileError::NoPem {
            key: "client_key",
            path: key.to_path_buf(),
            what: "private key",
        })?;
        let id = Identity {
            chain,
            key: private,
            cert_path: cert.to_path_buf(),
        };
        // Building a config checks that the key signs for the certificate.
        id.config(None).map_err(|e| TlsFileError::Rejected {
            key: "client_key",
            path: key.to_path_buf(),
            detail: e.to_string(),
        })?;
        Ok(id)
    }

    fn config(
        &self,
        roots: Option<rustls::RootCertStore>,
    ) -> Result<rustls::ClientConfig, rustls::Error> {
        builder()?
            .with_root_certificates(roots.unwrap_or_else(web_roots))
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
    }
}

fn builder(
) -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>, rustls::Error> {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
}

/// The web PKI roots ureq trusts by default.
fn web_roots() -> rustls::RootCertStore {
    rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// The rustls configuration for Vault: trust `ca` (or the web PKI roots) and,
/// for cert login, present `identity`. None when the defaults apply.
pub fn client_config(
    ca: Option<&Path>,
    identity: Option<&Identity>,
) -> Result<Option<rustls::ClientConfig>, String> {
    let roots = match ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = certificates("ca_cert", ca).map_err(|e| format!("[vault] ca_cert {e}"))?;
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    format!("[vault] ca_cert {}: bad certificate: {e}", ca.display())
                })?;
            }
            Some(roots)
        }
        None => None,
    };
    match (identity, roots) {
        (Some(id), roots) => id.config(roots).map(Some).map_err(|e| e.to_string()),
        (None, Some(roots)) => builder()
            .map(|b| Some(b.with_root_certificates(roots).with_no_client_auth()))
            .map_err(|e| e.to_string()),
        (None, None) => Ok(None),
    }
}
