//! The agent's private state directory (`[state] dir`): what a restarted agent
//! needs to adopt its predecessor's token and leases instead of logging in and
//! fetching again (see "Restarts" in docs/agent.md).
//!
//! One JSON file, written to a temporary name (`O_EXCL|O_NOFOLLOW`, 0600) and
//! renamed, so a crash at any point leaves the old state or the new one. It is
//! read back validated: a file that is damaged, of another format or a newer
//! version, or not owned by this user is reported and ignored (the agent starts
//! fresh), never a crash loop. It records what it was made for ([`Binding`],
//! the Vault address): state for another Vault or configuration, or of layout
//! version 1, loads so that what it holds can be revoked rather than adopted
//! (`agent::binding`). The directory is locked (`flock`) while an agent uses
//! it, so two agents never share one state.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

mod gateway;

pub use gateway::{GatewayLeaseFile, SavedGatewayLease, SavedGateways, GATEWAY_FILE};

use super::files::{check_tmpfs_fd, zero_fill, FilesError};
use crate::config::StateConfig;
use crate::contract::{open_regular, Links, OpenError};

/// The state file's name in the state directory.
pub const STATE_FILE: &str = "agent-state.json";
/// What the file says it is.
const FORMAT: &str = "shroud-agent-state";
/// The layout version this build writes.
const VERSION: u32 = 2;
/// The oldest layout version this build reads. Version 1 recorded no
/// [`Binding`]: its token and leases are revoked, never adopted.
const OLDEST_VERSION: u32 = 1;
/// A state file is a token and a few leases; anything bigger is not ours.
const MAX_SIZE: u64 = 16 << 20;

/// Why the state directory or file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The directory is on a disk-backed filesystem.
    #[error("[state] dir {dir} is not on tmpfs or ramfs (filesystem magic {magic:#x}); the Vault token would reach a disk. Mount a tmpfs (an in-memory emptyDir) there or set require_tmpfs = false")]
    NotTmpfs {
        /// The directory.
        dir: PathBuf,
        /// statfs f_type.
        magic: i64,
    },
    /// The directory belongs to another user, so it cannot be made private.
    #[error("[state] dir {dir} belongs to uid {owner}, not to this agent (uid {uid}), so it cannot be made private (0700); point [state] dir at a directory of the agent's own, e.g. a subdirectory it creates")]
    NotPrivate {
        /// The directory.
        dir: PathBuf,
        /// Its owner.
        owner: u32,
        /// The agent's uid.
        uid: u32,
    },
    /// The configured path is a symlink: it is not followed (a chmod through
    /// it would change whatever it points at).
    #[error("[state] dir {dir} is a symlink; it is not followed: point [state] dir at the directory itself")]
    Symlink {
        /// The directory.
        dir: PathBuf,
    },
    /// Another running agent holds the directory's lock.
    #[error("[state] dir {dir} is in use by another running agent; each agent needs a state directory of its own")]
    Busy {
        /// The directory.
        dir: PathBuf,
    },
    /// A filesystem operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file has a layout newer than this agent reads (a rollback): not
    /// adopted, but the token found in it is revoked rather than left alive.
    #[error("state file {path} has layout version {version}; this agent reads versions {OLDEST_VERSION} to {VERSION}")]
    Newer {
        /// The file.
        path: PathBuf,
        /// Its layout version.
        version: u32,
        /// Its token and where it was issued, when they could be found.
        leftover: Option<Leftover>,
    },
    /// The file exists but cannot be adopted (the message never quotes its content).
    #[error("state file {path} {problem}")]
    Unusable {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
}

impl StateError {
    /// True for errors caused by the configuration (exit 64).
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            StateError::NotTmpfs { .. }
                | StateError::NotPrivate { .. }
                | StateError::Symlink { .. }
                | StateError::Busy { .. }
        )
    }
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// The token of a state this agent cannot read, and where it was issued.
pub struct Leftover {
    /// The Vault address (the envelope's `vault`).
    pub vault: String,
    /// The namespace, when the state recorded one.
    pub namespace: Option<String>,
    /// The token.
    pub token: Zeroizing<String>,
}

impl fmt::Debug for Leftover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leftover")
            .field("vault", &self.vault)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// The token the agent is logged in with.
#[derive(Serialize, Deserialize)]
pub struct SavedToken {
    /// The token itself.
    pub token: String,
    /// Its accessor (checked against lookup-self on adoption).
    pub accessor: String,
    /// The TTL it was issued with, in seconds: a renewal shorter than this hit
    /// the max TTL.
    pub first_ttl: u64,
}

/// A secret's lease.
#[derive(Serialize, Deserialize)]
pub struct SavedLease {
    /// Lease id.
    pub id: String,
    /// The TTL it was issued with, in seconds (the renewal increment).
    pub first_ttl: u64,
}

/// What the state was made for: the Vault namespace and the auth identity
/// the token was obtained with (the address is the envelope's `vault`). A
/// successor adopts the token only under the same binding. Never a credential:
/// credential files are named by a hash of their paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// `[vault] namespace`.
    pub namespace: Option<String>,
    /// `[auth] method`.
    pub method: String,
    /// `[auth] mount`.
    pub mount: String,
    /// `[auth] role` (kubernetes, jwt) or `name` (cert).
    pub role: Option<String>,
    /// SHA-256 (hex) of the credential files' paths and, for the cert method,
    /// of the client certificate (public).
    pub credentials_sha256: String,
}

/// A published secret: its values and lease.
#[derive(Serialize, Deserialize)]
pub struct SavedSecret {
    /// The `[[secret]]` name.
    pub name: String,
    /// Its Vault path when it was read (a changed path is not adopted).
    pub path: String,
    /// Its kind when it was read (a changed kind is not adopted); None in a
    /// version 1 state.
    #[serde(default)]
    pub kind: Option<String>,
    /// SHA-256 (hex) of its request parameters, None without (changed
    /// parameters are not adopted). A hash: a parameter may be sensitive.
    #[serde(default)]
    pub params_sha256: Option<String>,
    /// The fields as Vault returned them (the files are rendered from these).
    pub data: Map<String, Value>,
    /// The lease, when the secret is leased.
    pub lease: Option<SavedLease>,
}

/// A certificate issued by this agent or a predecessor (`kind = "pki"`): kept
/// by a successor while valid, and revoked at shutdown. Its key and PEM blocks
/// (the masked values) are in its secret's `data`, like any secret's values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedCertificate {
    /// The `[[secret]]` name.
    pub secret: String,
    /// The PKI mount it was issued from (`<mount>/revoke` revokes it).
    pub mount: String,
    /// Its serial number (public).
    pub serial: String,
    /// When the agent received it, Unix milliseconds: the start of the
    /// validity its re-issue point is a fraction of.
    pub issued_at_ms: u64,
    /// When it stops being valid, Unix seconds (`expiration`).
    pub not_after: u64,
}

/// A lease replaced by a rotation and kept alive for the retire grace: a
/// successor revokes it at the same time, or at once when that has passed.
#[derive(Serialize, Deserialize)]
pub struct SavedRetiring {
    /// The `[[secret]]` name.
    pub secret: String,
    /// The lease id.
    pub id: String,
    /// When it is revoked, Unix milliseconds.
    pub revoke_at_ms: u64,
}

impl fmt::Debug for SavedRetiring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SavedRetiring")
            .field("secret", &self.secret)
            .field("revoke_at_ms", &self.revoke_at_ms)
            .finish_non_exhaustive()
    }
}

/// A value the pod's execs registered at run time (`shroud mask add`,
/// `::add-mask::`): re-published by a successor. The value is base64 (it may
/// be any bytes), wiped when dropped, and never shown by `Debug`.
#[derive(Serialize, Deserialize)]
pub struct SavedRegistered {
    /// Its entry name (`mask-add.registered`).
    pub name: String,
    /// The value, standard base64.
    value: String,
}

impl SavedRegistered {
    /// Encodes `value` under `name`.
    pub fn new(name: &str, value: &[u8]) -> Self {
        use base64::Engine as _;
        SavedRegistered {
            name: name.to_string(),
            value: base64::engine::general_purpose::STANDARD.encode(value),
        }
    }

    /// The value; None when the file held something that is not base64.
    pub fn value(&self) -> Option<Zeroizing<Vec<u8>>> {
        use base64::Engine as _;
        let mut out = Zeroizing::new(Vec::new());
        base64::engine::general_purpose::STANDARD
            .decode_vec(&self.value, &mut out)
            .ok()?;
        Some(out)
    }
}

impl Drop for SavedRegistered {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.value);
    }
}

impl fmt::Debug for SavedRegistered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SavedRegistered")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Everything a restarted agent adopts.
#[derive(Serialize, Deserialize)]
pub struct Saved {
    /// The Vault address the state was made for (the envelope's `vault`).
    #[serde(skip)]
    pub vault: String,
    /// What the token was obtained under; None in a version 1 state (never
    /// adopted).
    #[serde(default)]
    pub binding: Option<Binding>,
    /// The token; None before the first login.
    pub token: Option<SavedToken>,
    /// The `.shroud/values` generation last published.
    pub generation: u64,
    /// Every secret published so far.
    pub secrets: Vec<SavedSecret>,
    /// Leases replaced by a rotation and not yet revoked: a successor revokes them.
    pub revoke: Vec<String>,
    /// Certificates issued and not yet expired (current or replaced): a
    /// successor keeps the current ones and revokes them all at shutdown.
    #[serde(default)]
    pub certificates: Vec<SavedCertificate>,
    /// Leases in their retire grace.
    #[serde(default)]
    pub retiring: Vec<SavedRetiring>,
    /// Values the pod's execs registered at run time.
    #[serde(default)]
    pub registered: Vec<SavedRegistered>,
    /// The leases obtained through vault gateways and the gateways run
    /// (their own file, [`GATEWAY_FILE`]; read with this one).
    #[serde(skip)]
    pub gateways: SavedGateways,
}

impl fmt::Debug for Saved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Saved")
            .field("vault", &self.vault)
            .field("binding", &self.binding)
            .field("token", &self.token.is_some())
            .field("generation", &self.generation)
            .field(
                "secrets",
                &self.secrets.iter().map(|s| &s.name).collect::<Vec<_>>(),
            )
            .field("revoke", &self.revoke.len())
            .field("certificates", &self.certificates)
            .field("retiring", &self.retiring)
            .field("registered", &self.registered)
            .field("gateway_leases", &self.gateways.leases.len())
            .finish()
    }
}

impl fmt::Debug for SavedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SavedToken")
            .field("first_ttl", &self.first_ttl)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for SavedLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SavedLease")
            .field("first_ttl", &self.first_ttl)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for SavedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SavedSecret")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("fields", &self.data.keys().collect::<Vec<_>>())
            .field("lease", &self.lease)
            .finish()
    }
}

/// The file: what it is, for which Vault, and the state.
#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    format: String,
    version: u32,
    vault: String,
    state: T,
}

/// The token (`state.token.token`) and namespace (`state.binding.namespace`)
/// of a state of a newer layout, where later layouts are expected to keep them.
fn leftover(bytes: &[u8], vault: String) -> Option<Leftover> {
    #[derive(Deserialize)]
    struct Token {
        // The zero-on-free allocator wipes the parsed copy.
        token: String,
    }
    #[derive(Deserialize)]
    struct Bound {
        namespace: Option<String>,
    }
    #[derive(Deserialize)]
    struct State {
        token: Option<Token>,
        binding: Option<Bound>,
    }
    #[derive(Deserialize)]
    struct File {
        state: State,
    }
    let file: File = serde_json::from_slice(bytes).ok()?;
    Some(Leftover {
        vault,
        namespace: file.state.binding.and_then(|b| b.namespace),
        token: Zeroizing::new(file.state.token?.token),
    })
}

/// The open, locked state directory.
pub struct StateDir {
    dir: PathBuf,
    vault: String,
    /// The directory, locked for the agent's lifetime (the kernel drops the
    /// lock when the process dies); files are wiped relative to it.
    lock: Flock<File>,
}

impl fmt::Debug for StateDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateDir")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl StateDir {
    /// Creates the directory, opens it without following a symlink, checks on
    /// that descriptor that it is the agent's own (root included) and
    /// memory-backed, and only then makes it 0700 (through the descriptor) and
    /// locks it: nothing is changed on a directory that fails a check.
    /// `vault` (the server address) is recorded in the file: state for another
    /// server is not adopted.
    pub fn open(cfg: &StateConfig, vault: &str) -> Result<Self, StateError> {
        let dir = cfg.dir.clone();
        fs::create_dir_all(&dir).map_err(io_err("cannot create", &dir))?;
        let handle = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&dir)
        {
            Ok(f) => f,
            // O_DIRECTORY|O_NOFOLLOW on a symlink: ENOTDIR (or ELOOP).
            Err(_) if fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_symlink()) => {
                return Err(StateError::Symlink { dir })
            }
            Err(e) => return Err(io_err("cannot open", &dir)(e)),
        };
        let owner = handle
            .metadata()
            .map_err(io_err("cannot stat", &dir))?
            .uid();
        let uid = nix::unistd::geteuid().as_raw();
        if owner != uid {
            return Err(StateError::NotPrivate { dir, owner, uid });
        }
        let handle = OwnedFd::from(handle);
        if cfg.require_tmpfs {
            check_tmpfs_fd(&handle, &dir).map_err(|e| match e {
                FilesError::NotTmpfs { dir, magic } => StateError::NotTmpfs { dir, magic },
                FilesError::Io { what, path, source } => StateError::Io { what, path, source },
                other => StateError::Io {
                    what: "cannot check",
                    path: dir.clone(),
                    source: io::Error::other(other.to_string()),
                },
            })?;
        }
        let handle = File::from(handle);
        handle
            .set_permissions(fs::Permissions::from_mode(0o700))
            .map_err(io_err("cannot chmod", &dir))?;
        let lock = Flock::lock(handle, FlockArg::LockExclusiveNonblock)
            .map_err(|_| StateError::Busy { dir: dir.clone() })?;
        Ok(StateDir {
            dir,
            vault: vault.to_string(),
            lock,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    fn unusable(&self, problem: impl Into<String>) -> StateError {
        StateError::Unusable {
            path: self.file(),
            problem: problem.into(),
        }
    }

    /// The saved state; None when there is none (a first start, or the last
    /// agent shut down cleanly).
    pub fn load(&self) -> Result<Option<Saved>, StateError> {
        let path = self.file();
        let mut f = match open_regular(&path, Links::Refuse) {
            Ok(f) => f,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(OpenError::NotRegular { kind, .. }) => {
                return Err(self.unusable(format!("is a {kind}, not a regular file")))
            }
            Err(e) => return Err(self.unusable(format!("cannot be opened: {e}"))),
        };
        let meta = f.metadata().map_err(io_err("cannot stat", &path))?;
        let euid = nix::unistd::geteuid().as_raw();
        if meta.uid() != euid {
            return Err(self.unusable(format!(
                "belongs to uid {}, not to this agent (uid {euid})",
                meta.uid()
            )));
        }
        if !meta.is_file() || meta.len() > MAX_SIZE {
            return Err(self.unusable("is not a state file (not a regular file, or too big)"));
        }
        let mut bytes = Zeroizing::new(Vec::with_capacity(meta.len() as usize));
        f.read_to_end(&mut bytes)
            .map_err(io_err("cannot read", &path))?;
        let mut saved = self.parse(&bytes)?;
        // Unusable, they are left to the token: revoked with it at exit.
        saved.gateways = gateway::read(&self.dir).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot adopt the gateways' leases; they end with the agent's token");
            SavedGateways::default()
        });
        Ok(Some(saved))
    }

    /// The vault gateways' lease file in this directory.
    pub fn gateway_leases(&self) -> GatewayLeaseFile {
        GatewayLeaseFile::new(&self.dir, &self.vault)
    }

    fn parse(&self, bytes: &[u8]) -> Result<Saved, StateError> {
        // Only the envelope first: another format or version is named as such,
        // not as damage.
        #[derive(Deserialize)]
        struct Head {
            format: String,
            version: u32,
            vault: String,
        }
        let head: Head = serde_json::from_slice(bytes).map_err(|e| self.damaged(&e))?;
        if head.format != FORMAT {
            return Err(self.unusable(format!(
                "is not a shroud agent state (format `{}`)",
                head.format
            )));
        }
        if head.version > VERSION {
            return Err(StateError::Newer {
                path: self.file(),
                version: head.version,
                leftover: leftover(bytes, head.vault),
            });
        }
        if head.version < OLDEST_VERSION {
            return Err(self.unusable(format!(
                "has layout version {}; this agent reads versions {OLDEST_VERSION} to {VERSION}",
                head.version
            )));
        }
        // State for another Vault (or of version 1) loads: what it holds is
        // revoked there rather than left alive (see `agent::binding`).
        let env: Envelope<Saved> = serde_json::from_slice(bytes).map_err(|e| self.damaged(&e))?;
        let mut saved = env.state;
        saved.vault = head.vault;
        if head.version < 2 {
            saved.binding = None;
        }
        Ok(saved)
    }

    /// serde's messages can quote the offending value (a token, a password):
    /// only the kind and position are reported.
    fn damaged(&self, e: &serde_json::Error) -> StateError {
        self.unusable(format!(
            "is damaged ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    }

    /// Replaces the state file atomically.
    pub fn save(&self, state: &Saved) -> Result<(), StateError> {
        let env = Envelope {
            format: FORMAT.to_string(),
            version: VERSION,
            vault: self.vault.clone(),
            state,
        };
        let bytes = Zeroizing::new(serde_json::to_vec(&env).map_err(|e| {
            self.unusable(format!("cannot be serialised ({:?} error)", e.classify()))
        })?);
        let tmp_name = format!(".{STATE_FILE}.tmp-{:016x}", rand::random::<u64>());
        let tmp = self.dir.join(&tmp_name);
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(&bytes));
        if let Err(e) = written {
            zero_fill(&*self.lock, Path::new(&tmp_name));
            let _ = fs::remove_file(&tmp);
            return Err(io_err("cannot write", &tmp)(e));
        }
        fs::rename(&tmp, self.file()).map_err(io_err("cannot rename", &tmp))
    }

    /// Overwrites the state file (and any temporary left by a crash) with zeros
    /// and removes it: the directory is left empty. Returns false when something
    /// could not be removed (logged).
    pub fn wipe(&self) -> bool {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return false;
        };
        let mut ok = true;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let ours = [STATE_FILE, GATEWAY_FILE]
                .iter()
                .any(|f| name == *f || name.starts_with(&format!(".{f}.tmp-")));
            if !ours {
                continue;
            }
            let path = e.path();
            ok &= zero_fill(&*self.lock, Path::new(&name));
            if let Err(e) = fs::remove_file(&path) {
                tracing::error!(path = %path.display(), error = %e, "cannot remove the state file");
                ok = false;
            }
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path) -> StateConfig {
        StateConfig {
            dir: dir.join("state"),
            require_tmpfs: false,
        }
    }

    fn sample() -> Saved {
        let mut data = Map::new();
        data.insert("password".into(), Value::String("pw-0123456789".into()));
        Saved {
            vault: String::new(),
            binding: Some(Binding {
                namespace: Some("team-a".into()),
                method: "approle".into(),
                mount: "approle".into(),
                role: None,
                credentials_sha256: "ab".repeat(32),
            }),
            token: Some(SavedToken {
                token: "s.token-abcdef".into(),
                accessor: "acc-1".into(),
                first_ttl: 3600,
            }),
            generation: 7,
            secrets: vec![SavedSecret {
                name: "db".into(),
                path: "database/creds/app".into(),
                kind: Some("dynamic".into()),
                params_sha256: None,
                data,
                lease: Some(SavedLease {
                    id: "database/creds/app/xyz".into(),
                    first_ttl: 60,
                }),
            }],
            revoke: vec!["database/creds/app/old".into()],
            certificates: Vec::new(),
            retiring: vec![SavedRetiring {
                secret: "db".into(),
                id: "database/creds/app/retiring".into(),
                revoke_at_ms: 1_900_000_000_000,
            }],
            registered: vec![SavedRegistered::new(
                "mask-add.registered",
                b"minted\x00-token-4f2a",
            )],
            gateways: SavedGateways::default(),
        }
    }

    #[test]
    fn saves_loads_and_wipes() {
        let d = tempfile::tempdir().unwrap();
        let st = StateDir::open(&cfg(d.path()), "http://v").unwrap();
        let mode = fs::metadata(st.dir()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(st.load().unwrap().is_none(), "no file: fresh start");
        st.save(&sample()).unwrap();
        let file = st.dir().join(STATE_FILE);
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let back = st.load().unwrap().unwrap();
        assert_eq!(back.generation, 7);
        assert_eq!(back.token.as_ref().unwrap().token, "s.token-abcdef");
        assert_eq!(back.secrets[0].lease.as_ref().unwrap().first_ttl, 60);
        assert_eq!(back.revoke, vec!["database/creds/app/old".to_string()]);
        assert_eq!(back.vault, "http://v");
        assert_eq!(back.binding, sample().binding);
        assert_eq!(back.secrets[0].kind.as_deref(), Some("dynamic"));
        assert_eq!(back.retiring[0].id, "database/creds/app/retiring");
        assert_eq!(back.retiring[0].revoke_at_ms, 1_900_000_000_000);
        assert_eq!(back.registered[0].name, "mask-add.registered");
        assert_eq!(
            back.registered[0].value().unwrap().as_slice(),
            b"minted\x00-token-4f2a"
        );
        let debug = format!("{back:?}");
        assert!(
            !debug.contains("token-abcdef")
                && !debug.contains("pw-0123")
                && !debug.contains("4f2a")
                && !debug.contains("bWludGVk"),
            "{debug}"
        );
        // The gateways' leases load with the state and are wiped with it.
        let lease = SavedGatewayLease {
            gateway: "vault".into(),
            path: "database/creds/app".into(),
            id: "database/creds/app/gw".into(),
            first_ttl: 30,
            renewable: true,
        };
        st.gateway_leases()
            .put("vault", vec![lease.clone()])
            .unwrap();
        assert_eq!(st.load().unwrap().unwrap().gateways.leases, vec![lease]);
        // A temporary left by a crash mid-write goes too.
        fs::write(st.dir().join(format!(".{STATE_FILE}.tmp-1")), b"x").unwrap();
        fs::write(st.dir().join(format!(".{GATEWAY_FILE}.tmp-1")), b"x").unwrap();
        assert!(st.wipe());
        assert_eq!(fs::read_dir(st.dir()).unwrap().count(), 0);
    }

    #[test]
    fn a_certificate_is_kept_with_its_masked_values_and_never_shown() {
        let d = tempfile::tempdir().unwrap();
        let st = StateDir::open(&cfg(d.path()), "http://v").unwrap();
        let key = "-----BEGIN EC PRIVATE KEY-----\nKEY-abcdef123456\n-----END EC PRIVATE KEY-----";
        let leaf = "-----BEGIN CERTIFICATE-----\nLEAF-abcdef123456\n-----END CERTIFICATE-----";
        let mut state = sample();
        let data = serde_json::json!({
            "private_key": key,
            "certificate": leaf,
            "serial_number": "1a:2b:3c",
            "expiration": 1_900_000_000u64,
        });
        state.secrets.push(SavedSecret {
            name: "tls".into(),
            path: "pki/issue/web".into(),
            kind: Some("pki".into()),
            params_sha256: Some("cd".repeat(32)),
            data: data.as_object().unwrap().clone(),
            lease: None,
        });
        let cert = SavedCertificate {
            secret: "tls".into(),
            mount: "pki".into(),
            serial: "1a:2b:3c".into(),
            issued_at_ms: 1_899_999_988_000,
            not_after: 1_900_000_000,
        };
        state.certificates.push(cert.clone());
        st.save(&state).unwrap();
        let back = st.load().unwrap().unwrap();
        assert_eq!(back.certificates, vec![cert]);
        // The masked values (key and leaf PEM) come back whole: the successor's
        // redaction set is complete.
        let tls = &back.secrets[1];
        assert_eq!(tls.data["private_key"], key);
        assert_eq!(tls.data["certificate"], leaf);
        let debug = format!("{back:?}");
        assert!(debug.contains("1a:2b:3c"), "the serial is public: {debug}");
        assert!(
            !debug.contains("KEY-abcdef") && !debug.contains("LEAF-abcdef"),
            "{debug}"
        );
        // A state written before certificates were recorded still loads.
        let file = st.dir().join(STATE_FILE);
        let text = fs::read_to_string(&file).unwrap();
        let start = text.find(",\"certificates\"").unwrap();
        let older = format!("{}}}}}", &text[..start]);
        fs::write(&file, older).unwrap();
        assert!(st.load().unwrap().unwrap().certificates.is_empty());
    }

    #[test]
    fn a_version_1_state_loads_unbound() {
        let d = tempfile::tempdir().unwrap();
        let st = StateDir::open(&cfg(d.path()), "http://v").unwrap();
        st.save(&sample()).unwrap();
        let file = st.dir().join(STATE_FILE);
        // As version 1 wrote it: no binding, kinds, parameters or retiring.
        let mut v: Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
        v["version"] = 1.into();
        let state = v["state"].as_object_mut().unwrap();
        state.remove("binding");
        state.remove("retiring");
        state["secrets"][0].as_object_mut().unwrap().remove("kind");
        fs::write(&file, serde_json::to_vec(&v).unwrap()).unwrap();
        let back = st.load().unwrap().unwrap();
        assert_eq!(back.binding, None);
        assert_eq!(back.secrets[0].kind, None);
        assert!(back.retiring.is_empty());
        assert_eq!(back.token.unwrap().token, "s.token-abcdef");
        // A version 1 file that somehow carries a binding is still unbound.
        v["state"]["binding"] = serde_json::to_value(sample().binding).unwrap();
        fs::write(&file, serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(st.load().unwrap().unwrap().binding, None);
    }

    #[test]
    fn a_second_agent_cannot_share_the_directory() {
        let d = tempfile::tempdir().unwrap();
        let first = StateDir::open(&cfg(d.path()), "http://v").unwrap();
        let e = StateDir::open(&cfg(d.path()), "http://v").unwrap_err();
        assert!(matches!(e, StateError::Busy { .. }), "{e}");
        assert!(e.is_config());
        drop(first);
        StateDir::open(&cfg(d.path()), "http://v").unwrap();
    }

    #[test]
    fn damaged_or_foreign_files_are_named_without_their_content() {
        let d = tempfile::tempdir().unwrap();
        let st = StateDir::open(&cfg(d.path()), "http://v").unwrap();
        let file = st.dir().join(STATE_FILE);
        let load_err = |bytes: &[u8]| {
            fs::write(&file, bytes).unwrap();
            st.load().unwrap_err().to_string()
        };
        let e = load_err(b"{\"format\": \"shroud-agent-state\", \"vers");
        assert!(e.contains("is damaged (Eof error"), "{e}");
        st.save(&sample()).unwrap();
        let good = fs::read_to_string(&file).unwrap();
        // A wrong type carrying a secret: serde would quote it.
        let e = load_err(
            good.replace("\"generation\":7", "\"generation\":\"pw-0123456789\"")
                .as_bytes(),
        );
        assert!(e.contains("is damaged (Data error"), "{e}");
        assert!(!e.contains("pw-0123456789"), "{e}");
        let e = load_err(good.replace("\"version\":2", "\"version\":99").as_bytes());
        assert!(
            e.contains("layout version 99; this agent reads versions 1 to 2"),
            "{e}"
        );
        assert!(!e.contains("token-abcdef"), "{e}");
        // A newer layout is not adopted, but its token is found to be revoked.
        fs::write(&file, good.replace("\"version\":2", "\"version\":3")).unwrap();
        match st.load() {
            Err(StateError::Newer {
                version: 3,
                leftover: Some(l),
                ..
            }) => {
                assert_eq!(
                    (l.vault.as_str(), l.namespace.as_deref(), l.token.as_str()),
                    ("http://v", Some("team-a"), "s.token-abcdef")
                );
                assert!(!format!("{l:?}").contains("token-abcdef"));
            }
            other => panic!("{other:?}"),
        }
        let e = load_err(good.replace("\"version\":2", "\"version\":0").as_bytes());
        assert!(e.contains("layout version 0;"), "{e}");
        let e = load_err(good.replace(FORMAT, "something-else").as_bytes());
        assert!(e.contains("not a shroud agent state"), "{e}");
        let other = StateDir {
            dir: st.dir().to_path_buf(),
            vault: "http://elsewhere".into(),
            lock: Flock::lock(
                File::open(d.path()).unwrap(),
                FlockArg::LockExclusiveNonblock,
            )
            .unwrap(),
        };
        // State for another Vault loads, naming its Vault: what it holds is
        // revoked there, never adopted here.
        fs::write(&file, good.as_bytes()).unwrap();
        let foreign = other.load().unwrap().unwrap();
        assert_eq!(foreign.vault, "http://v");
        fs::remove_file(&file).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &file).unwrap();
        let e = st.load().unwrap_err().to_string();
        assert!(e.contains("is a symlink, not a regular file"), "{e}");
        fs::remove_file(&file).unwrap();
        // A FIFO would block a plain open() for ever.
        nix::unistd::mkfifo(&file, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = st.load().unwrap_err().to_string();
        assert!(e.contains("is a FIFO, not a regular file"), "{e}");
    }

    #[test]
    fn a_symlinked_dir_is_refused_before_anything_changes() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("elsewhere");
        fs::create_dir(&target).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).unwrap();
        // cfg() puts the state in `<dir>/state`.
        std::os::unix::fs::symlink(&target, d.path().join("state")).unwrap();
        let e = StateDir::open(&cfg(d.path()), "http://v").unwrap_err();
        assert!(
            matches!(e, StateError::Symlink { .. }) && e.is_config(),
            "{e}"
        );
        let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755, "the link's target was not chmodded");
    }

    #[test]
    fn disk_dir_is_refused_unless_opted_out() {
        // The build directory is on disk, never tmpfs in CI.
        let c = StateConfig {
            dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("target-state-test"),
            require_tmpfs: true,
        };
        if crate::agent::files::check_tmpfs(Path::new(env!("CARGO_MANIFEST_DIR"))).is_ok() {
            panic!("the crate directory is on tmpfs; this test needs a disk-backed one");
        }
        let e = StateDir::open(&c, "http://v").unwrap_err();
        let _ = fs::remove_dir(&c.dir);
        assert!(
            matches!(e, StateError::NotTmpfs { .. }) && e.is_config(),
            "{e}"
        );
        assert!(e.to_string().starts_with("[state] dir "), "{e}");
    }
}
