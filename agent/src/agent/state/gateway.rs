//! The vault gateways' leases in the state directory (`gateway-leases.json`):
//! every lease the workload obtained through a `kind = "vault"` gateway, with
//! the gateway and API path it was obtained through, so that a restarted
//! agent renews and revokes them (or revokes those its configuration no
//! longer owns). A file of its own beside `agent-state.json`: the gateways
//! write it from their threads whenever a lease is obtained or revoked,
//! without waiting for the engine. It holds no secret value: a lease id opens
//! nothing without the agent's token.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::{io_err, StateError};
use crate::contract::{open_regular, Links, OpenError};

/// The file's name in the state directory.
pub const GATEWAY_FILE: &str = "gateway-leases.json";
/// What the file says it is.
const FORMAT: &str = "shroud-gateway-leases";
/// The layout version this build writes and reads.
const VERSION: u32 = 1;
/// Lease ids and paths only; anything bigger is not ours.
const MAX_SIZE: u64 = 16 << 20;

/// A lease obtained through a vault gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedGatewayLease {
    /// The gateway's name.
    pub gateway: String,
    /// The API path (after `/v1/`) of the request that created it: a
    /// successor keeps it only while the gateway's `paths` still allow it.
    pub path: String,
    /// The lease id (not a secret: it opens nothing without the token).
    pub id: String,
    /// The duration it was granted first, in seconds (the renewal increment).
    pub first_ttl: u64,
    /// Whether Vault said it can be renewed.
    pub renewable: bool,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    format: String,
    version: u32,
    vault: String,
    leases: Vec<SavedGatewayLease>,
    /// The gateways (of every kind) the agent runs: a successor removes the
    /// local password or token files of those it no longer runs.
    #[serde(default)]
    gateways: Vec<String>,
}

/// What the file holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SavedGateways {
    /// The vault gateways' leases.
    pub leases: Vec<SavedGatewayLease>,
    /// The names of the gateways the agent ran.
    pub names: Vec<String>,
}

/// The gateways' lease file of one open state directory, shared by every
/// vault gateway: each replaces its own entries, the whole file is written
/// atomically (temporary name `O_EXCL|O_NOFOLLOW`, 0600, then a rename).
#[derive(Debug)]
pub struct GatewayLeaseFile {
    dir: PathBuf,
    vault: String,
    /// What was last written.
    book: Mutex<Book>,
}

/// Every vault gateway's leases, and the names of all the gateways run.
#[derive(Debug, Default)]
struct Book {
    leases: BTreeMap<String, Vec<SavedGatewayLease>>,
    names: Vec<String>,
}

impl GatewayLeaseFile {
    pub(super) fn new(dir: &Path, vault: &str) -> GatewayLeaseFile {
        GatewayLeaseFile {
            dir: dir.to_path_buf(),
            vault: vault.to_string(),
            book: Mutex::default(),
        }
    }

    /// Makes `leases` the leases of every gateway, `names` the gateways run,
    /// and writes the file.
    pub fn replace_all(
        &self,
        leases: Vec<SavedGatewayLease>,
        names: Vec<String>,
    ) -> Result<(), StateError> {
        let mut all = self.book.lock().unwrap_or_else(|e| e.into_inner());
        all.leases.clear();
        for l in leases {
            all.leases.entry(l.gateway.clone()).or_default().push(l);
        }
        all.names = names;
        self.write(&all)
    }

    /// Makes `names` the gateways run and writes the file.
    pub fn set_gateways(&self, names: Vec<String>) -> Result<(), StateError> {
        let mut all = self.book.lock().unwrap_or_else(|e| e.into_inner());
        all.names = names;
        self.write(&all)
    }

    /// Makes `leases` gateway `gateway`'s leases and writes the file.
    pub fn put(&self, gateway: &str, leases: Vec<SavedGatewayLease>) -> Result<(), StateError> {
        let mut all = self.book.lock().unwrap_or_else(|e| e.into_inner());
        all.leases.insert(gateway.to_string(), leases);
        self.write(&all)
    }

    fn write(&self, book: &Book) -> Result<(), StateError> {
        let env = Envelope {
            format: FORMAT.to_string(),
            version: VERSION,
            vault: self.vault.clone(),
            leases: book.leases.values().flatten().cloned().collect(),
            gateways: book.names.clone(),
        };
        let bytes = serde_json::to_vec(&env).map_err(|e| StateError::Unusable {
            path: self.dir.join(GATEWAY_FILE),
            problem: format!("cannot be serialised ({:?} error)", e.classify()),
        })?;
        let tmp = self.dir.join(format!(
            ".{GATEWAY_FILE}.tmp-{:016x}",
            rand::random::<u64>()
        ));
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(&bytes));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io_err("cannot write", &tmp)(e));
        }
        fs::rename(&tmp, self.dir.join(GATEWAY_FILE)).map_err(io_err("cannot rename", &tmp))
    }
}

/// What `dir`'s file holds; nothing when there is no file. A file that cannot
/// be used is an error naming the problem, never its content.
pub(super) fn read(dir: &Path) -> Result<SavedGateways, StateError> {
    let path = dir.join(GATEWAY_FILE);
    let unusable = |problem: String| StateError::Unusable {
        path: path.clone(),
        problem,
    };
    let mut f = match open_regular(&path, Links::Refuse) {
        Ok(f) => f,
        Err(e) if e.is_not_found() => return Ok(SavedGateways::default()),
        Err(OpenError::NotRegular { kind, .. }) => {
            return Err(unusable(format!("is a {kind}, not a regular file")))
        }
        Err(e) => return Err(unusable(format!("cannot be opened: {e}"))),
    };
    let meta = f.metadata().map_err(io_err("cannot stat", &path))?;
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != euid {
        return Err(unusable(format!(
            "belongs to uid {}, not to this agent (uid {euid})",
            meta.uid()
        )));
    }
    if meta.len() > MAX_SIZE {
        return Err(unusable("is too big".into()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.read_to_end(&mut bytes)
        .map_err(io_err("cannot read", &path))?;
    let env: Envelope = serde_json::from_slice(&bytes).map_err(|e| {
        unusable(format!(
            "is damaged ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?;
    if env.format != FORMAT || env.version != VERSION {
        return Err(unusable(format!(
            "is not a gateway lease file of version {VERSION} (format `{}`, version {})",
            env.format, env.version
        )));
    }
    Ok(SavedGateways {
        leases: env.leases,
        names: env.gateways,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(gateway: &str, id: &str) -> SavedGatewayLease {
        SavedGatewayLease {
            gateway: gateway.into(),
            path: "database/creds/app".into(),
            id: id.into(),
            first_ttl: 60,
            renewable: true,
        }
    }

    #[test]
    fn each_gateway_replaces_its_own_and_the_file_reads_back() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(read(d.path()).unwrap(), SavedGateways::default());
        let f = GatewayLeaseFile::new(d.path(), "http://v");
        f.put("a", vec![lease("a", "l1"), lease("a", "l2")])
            .unwrap();
        f.put("b", vec![lease("b", "l3")]).unwrap();
        f.put("a", vec![lease("a", "l2")]).unwrap();
        let back = read(d.path()).unwrap().leases;
        assert_eq!(back, vec![lease("a", "l2"), lease("b", "l3")]);
        let mode = fs::metadata(d.path().join(GATEWAY_FILE))
            .unwrap()
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        f.replace_all(Vec::new(), vec!["pg".into()]).unwrap();
        f.put("a", Vec::new()).unwrap();
        let back = read(d.path()).unwrap();
        assert!(back.leases.is_empty());
        assert_eq!(back.names, vec!["pg".to_string()]);
        fs::write(d.path().join(GATEWAY_FILE), b"{\"format\":").unwrap();
        let e = read(d.path()).unwrap_err().to_string();
        assert!(e.contains("is damaged (Eof error"), "{e}");
        fs::write(
            d.path().join(GATEWAY_FILE),
            br#"{"format":"other","version":1,"vault":"x","leases":[]}"#,
        )
        .unwrap();
        let e = read(d.path()).unwrap_err().to_string();
        assert!(e.contains("format `other`"), "{e}");
    }
}
