//! The serving certificate, reloaded when its files change. cert-manager and Helm
//! rewrite the files in place and Kubernetes swaps a `..data` symlink, so the
//! parent directories are watched, not the files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Why a certificate/key pair could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is unreadable or holds no PEM certificate.
    #[error("cannot read a PEM certificate chain from {path}: {reason}")]
    Cert {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The key file is unreadable or holds no supported PEM private key.
    #[error("cannot read a PEM private key from {path}: {reason}")]
    Key {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The key does not belong to the certificate.
    #[error("the private key in {key} does not match the certificate in {cert}")]
    Mismatch {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
    },
    /// The file watcher could not be set up.
    #[error("cannot watch {path} for certificate rotation: {source}")]
    Watch {
        /// The directory.
        path: String,
        /// The watcher's error.
        source: notify::Error,
    },
}

/// Reads a certificate chain and its key.
pub fn load(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsError> {
    let cert_err = |reason: String| TlsError::Cert {
        path: cert_path.display().to_string(),
        reason,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_err("no CERTIFICATE block".into()));
    }
    let key_err = |reason: String| TlsError::Key {
        path: key_path.display().to_string(),
        reason,
    };
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| key_err(e.to_string()))?;
    let signing = any_supported_type(&key).map_err(|e| key_err(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|_| TlsError::Mismatch {
        cert: cert_path.display().to_string(),
        key: key_path.display().to_string(),
    })?;
    Ok(certified)
}

/// Serves whichever certificate was loaded last.
pub struct ReloadingCert {
    current: ArcSwap<CertifiedKey>,
    cert_path: PathBuf,
    key_path: PathBuf,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl ReloadingCert {
    /// Loads the pair; fails if it is not valid now.
    pub fn new(cert_path: &Path, key_path: &Path) -> Result<ReloadingCert, TlsError> {
        let first = load(cert_path, key_path)?;
        Ok(ReloadingCert {
            current: ArcSwap::from_pointee(first),
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
        })
    }

    /// Loads the files again. Returns `Ok(true)` when the certificate changed; on
    /// error the previous pair keeps being served (the files may be half-rotated).
    pub fn reload(&self) -> Result<bool, TlsError> {
        let next = load(&self.cert_path, &self.key_path)?;
        let changed = next.cert != self.current.load().cert;
        if changed {
            self.current.store(Arc::new(next));
        }
        Ok(changed)
    }

    /// The directories to watch.
    pub fn watch_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = [&self.cert_path, &self.key_path]
            .iter()
            .map(|p| match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            })
            .collect();
        dirs.dedup();
        dirs
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// A rustls server configuration (HTTP/2 and HTTP/1.1) serving `cert`.
pub fn server_config(cert: Arc<ReloadingCert>) -> rustls::ServerConfig {
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default protocol versions")
    .with_no_client_auth()
    .with_cert_resolver(cert);
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    cfg
}

/// Watches the certificate's directories and reloads on every change. `on_reload`
/// is told each attempt's result. The watcher stops when the returned value drops.
pub fn watch(
    cert: Arc<ReloadingCert>,
    on_reload: impl Fn(&Result<bool, TlsError>) + Send + 'static,
) -> Result<notify::RecommendedWatcher, TlsError> {
    use notify::Watcher as _;
    let target = cert.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if matches!(&event, Ok(e) if e.kind.is_access()) {
            return;
        }
        on_reload(&target.reload());
    })
    .map_err(|source| TlsError::Watch {
        path: cert.cert_path.display().to_string(),
        source,
    })?;
    for dir in cert.watch_dirs() {
        watcher
            .watch(&dir, notify::RecursiveMode::NonRecursive)
            .map_err(|source| TlsError::Watch {
                path: dir.display().to_string(),
                source,
            })?;
    }
    Ok(watcher)
}
