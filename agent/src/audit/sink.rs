//! The audit [`EventSink`]: appends one sealed line per security event.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::anchor::{head_message, Anchor, AnchorSlot, HeadSigner, Ticker};
use super::record::{seal, sha256_hex, Record, Workload, GENESIS};
use crate::events::{Event, EventSink, Outcome};

/// Where records go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditTarget {
    /// Appended to this file (created 0600; an existing chain is continued).
    File(PathBuf),
    /// Written to stderr, for log shippers; the chain starts anew each run.
    Stderr,
}

impl AuditTarget {
    /// Reads a configuration value: `stderr` (or `-`) for stderr, a path otherwise.
    pub fn from_config(value: &str) -> AuditTarget {
        match value {
            "stderr" | "-" => AuditTarget::Stderr,
            path => AuditTarget::File(PathBuf::from(path)),
        }
    }
}

/// Why the audit trail could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The file (an audit log or a ledger) could not be opened or read.
    #[error("cannot open {path}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A record could not be written to the file.
    #[error("cannot write to {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The existing file's chain is broken; shroud will not extend it.
    #[error("existing chain {path} is broken at {broken}; move it aside and check it with `shroud audit verify`")]
    Broken {
        /// The file.
        path: PathBuf,
        /// Where and why.
        broken: super::Broken,
    },
}

/// The chain's state after the last record: how many, and the last line's hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// Records in the chain (including those of earlier runs in the same file).
    pub records: u64,
    /// SHA-256 (hex) of the last line.
    pub hash: String,
}

/// Appends security events to the audit trail. Install with
/// [`crate::events::install`]; call [`Audit::finish`] at exit.
pub struct Audit {
    chain: Mutex<Chain>,
    workload: Workload,
    anchor: AnchorSlot,
    ticker: Mutex<Option<Ticker>>,
}

struct Chain {
    out: Output,
    seq: u64,
    prev: String,
    write_failed: bool,
    /// Records written since the last chain signature.
    unsigned: u64,
}

enum Output {
    File(File),
    Stderr,
    #[cfg(test)]
    Memory(Arc<Mutex<Vec<u8>>>),
}

impl Output {
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        match self {
            // One write call per line: with O_APPEND the line lands whole at the end.
            Output::File(f) => f.write_all(line),
            Output::Stderr => io::stderr().lock().write_all(line),
            #[cfg(test)]
            Output::Memory(m) => {
                m.lock().unwrap().extend_from_slice(line);
                Ok(())
            }
        }
    }
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("workload", &self.workload)
            .finish_non_exhaustive()
    }
}

impl Audit {
    /// Opens the target. An existing file is verified first and its chain continued.
    pub fn open(target: &AuditTarget) -> Result<Arc<Audit>, AuditError> {
        Self::open_as(target, Workload::from_env())
    }

    /// [`Audit::open`] with an explicit identity.
    pub fn open_as(target: &AuditTarget, workload: Workload) -> Result<Arc<Audit>, AuditError> {
        let (out, seq, prev) = match target {
            AuditTarget::Stderr => (Output::Stderr, 0, GENESIS.to_string()),
            AuditTarget::File(path) => {
                let (file, summary) = super::chain::open_append(path)?;
                (Output::File(file), summary.records, summary.head)
            }
        };
        Ok(Arc::new(Audit {
            chain: Mutex::new(Chain {
                out,
                seq,
                prev,
                write_failed: false,
                unsigned: 0,
            }),
            workload,
            anchor: Mutex::new(None),
            ticker: Mutex::new(None),
        }))
    }

    #[cfg(test)]
    pub(crate) fn in_memory(workload: Workload) -> (Arc<Audit>, Arc<Mutex<Vec<u8>>>) {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let audit = Arc::new(Audit {
            chain: Mutex::new(Chain {
                out: Output::Memory(buf.clone()),
                seq: 0,
                prev: GENESIS.to_string(),
                write_failed: false,
                unsigned: 0,
            }),
            workload,
            anchor: Mutex::new(None),
            ticker: Mutex::new(None),
        });
        (audit, buf)
    }

    /// The chain's head now.
    pub fn head(&self) -> Head {
        let c = self.chain.lock().unwrap_or_else(|e| e.into_inner());
        Head {
            records: c.seq,
            hash: c.prev.clone(),
        }
    }

    /// Flushes the file to disk and logs the head hash (keep it to detect a
    /// removed tail: `shroud audit verify --expect-head`). Call once at exit.
    pub fn finish(&self) -> Head {
        if let Some(mut t) = self.ticker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            t.stop();
        }
        {
            let mut slot = self.anchor.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(anchor) = slot.as_mut() {
                self.sign_with(anchor, true);
                anchor.signer.close();
            }
            *slot = None;
        }
        let head = {
            let c = self.chain.lock().unwrap_or_else(|e| e.into_inner());
            if let Output::File(f) = &c.out {
                if let Err(e) = f.sync_data() {
                    tracing::warn!(error = %e, "audit log: fsync failed");
                }
            }
            Head {
                records: c.seq,
                hash: c.prev.clone(),
            }
        };
        tracing::info!(
            audit_records = head.records,
            audit_head = %head.hash,
            "audit trail closed"
        );
        head
    }

    /// Appends the record for `event`, unless it is a high-frequency measurement
    /// (`lease_ttl`, `vault_request`) that metrics carry instead.
    pub fn record(&self, event: &Event<'_>) -> io::Result<()> {
        let Some(mut r) = describe(event, &self.workload) else {
            return Ok(());
        };
        let time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let mut c = self.chain.lock().unwrap_or_else(|e| e.into_inner());
        r.seq = c.seq;
        r.time = time;
        let prev = c.prev.clone();
        r.prev = &prev;
        let mut line = seal(&r);
        let hash = sha256_hex(line.as_bytes());
        line.push('\n');
        c.out.write_line(line.as_bytes())?;
        c.seq += 1;
        c.prev = hash;
        c.unsigned += 1;
        let unsigned = c.unsigned;
        drop(c);
        // Busy: another thread is signing, or this is the signer's own login
        // event; the records are covered by the next signature.
        if let Ok(mut slot) = self.anchor.try_lock() {
            if let Some(anchor) = slot.as_mut() {
                if unsigned >= anchor.every {
                    self.sign_with(anchor, false);
                }
            }
        }
        Ok(())
    }

    /// Signs the chain head with `signer` every `every` records, every
    /// `interval` when records are waiting, and at [`Audit::finish`].
    pub fn enable_signing(
        self: &Arc<Self>,
        signer: Box<dyn HeadSigner>,
        every: u64,
        interval: std::time::Duration,
    ) {
        *self.anchor.lock().unwrap_or_else(|e| e.into_inner()) = Some(Anchor { signer, every });
        *self.ticker.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Ticker::start(self, interval));
    }

    /// The interval thread's turn: signs when records are waiting.
    pub(crate) fn sign_if_unsigned(&self) {
        let waiting = self
            .chain
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unsigned
            > 0;
        if !waiting {
            return;
        }
        if let Ok(mut slot) = self.anchor.try_lock() {
            if let Some(anchor) = slot.as_mut() {
                self.sign_with(anchor, false);
            }
        }
    }

    /// Signs the head and appends the `chain_signature` record. The chain lock
    /// is not held while Vault is asked (the signer's login is itself an audited
    /// event); if records arrived meanwhile the head is signed again, so that
    /// the final signature covers everything.
    fn sign_with(&self, anchor: &mut Anchor, is_final: bool) {
        for _ in 0..3 {
            let (records, head) = {
                let c = self.chain.lock().unwrap_or_else(|e| e.into_inner());
                (c.seq, c.prev.clone())
            };
            let signed = match anchor.signer.sign(&head_message(records, &head, is_final)) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "audit log: cannot sign the chain head");
                    self.chain
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .unsigned = 0;
                    return;
                }
            };
            let mut c = self.chain.lock().unwrap_or_else(|e| e.into_inner());
            if c.seq != records {
                continue;
            }
            let mut r = Record::base("chain_signature", &self.workload);
            r.seq = c.seq;
            r.time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
            r.records = Some(records);
            r.head = Some(head.clone());
            r.is_final = Some(is_final);
            r.key = Some(signed.key);
            r.key_version = Some(signed.key_version);
            r.signature = Some(signed.signature);
            r.prev = &head;
            let mut line = seal(&r);
            let hash = sha256_hex(line.as_bytes());
            line.push('\n');
            if let Err(e) = c.out.write_line(line.as_bytes()) {
                tracing::error!(error = %e, "audit log: cannot write the chain signature");
                return;
            }
            c.seq += 1;
            c.prev = hash;
            c.unsigned = 0;
            return;
        }
        tracing::warn!("audit log: records kept arriving while the head was signed; the next signature covers them");
    }
}

impl EventSink for Audit {
    fn emit(&self, event: &Event<'_>) {
        if let Err(e) = self.record(event) {
            let mut c = self.chain.lock().unwrap_or_else(|e| e.into_inner());
            if !c.write_failed {
                c.write_failed = true;
                drop(c);
                tracing::error!(error = %e, "audit log: cannot write a record; security events are being lost");
            }
        }
    }
}

/// The record for `event` (seq, time and prev are filled in by the caller), or
/// None for events that are not audited.
fn describe<'a>(event: &Event<'a>, workload: &'a Workload) -> Option<Record<'a>> {
    let mut r = Record::base(event.kind(), workload);
    let lease_hash = |id: &Option<&str>| id.map(|id| sha256_hex(id.as_bytes()));
    let set_outcome = |r: &mut Record<'a>, o: &Outcome, lease: Option<&str>| {
        r.outcome = o.label();
        if let Outcome::Error(why) | Outcome::Denied(why) = o {
            r.reason = Some(clean_reason(why, lease));
        }
    };
    match event {
        Event::Login { method, outcome } => {
            r.method = Some(method);
            set_outcome(&mut r, outcome, None);
        }
        Event::TokenRenew { outcome } => set_outcome(&mut r, outcome, None),
        Event::Fetch {
            secret,
            path,
            lease_id,
            outcome,
        }
        | Event::Renew {
            secret,
            path,
            lease_id,
            outcome,
        } => {
            r.secret = Some(secret);
            r.path = Some(path);
            r.lease_id_sha256 = lease_hash(lease_id);
            set_outcome(&mut r, outcome, *lease_id);
        }
        Event::Rotate {
            secret,
            path,
            lease_id,
        } => {
            r.secret = Some(secret);
            r.path = Some(path);
            r.lease_id_sha256 = lease_hash(lease_id);
        }
        Event::Revoke {
            secret,
            lease_id,
            reason,
            outcome,
        } => {
            r.kind = Some(crate::events::revoked_kind(*secret, *lease_id));
            r.revoke_reason = Some(reason.name());
            r.secret = *secret;
            r.lease_id_sha256 = lease_hash(lease_id);
            set_outcome(&mut r, outcome, *lease_id);
        }
        Event::Wipe { files, duration } => {
            r.files = Some(*files);
            r.duration_ms = Some(duration.as_secs_f64() * 1000.0);
        }
        Event::Denial {
            secret,
            path,
            reason,
        } => {
            r.secret = *secret;
            r.path = *path;
            r.outcome = "denied";
            r.reason = Some(clean_reason(reason, None));
        }
        Event::GatewayLogin {
            gateway,
            secret,
            lease_id,
            outcome,
        } => {
            r.gateway = Some(gateway);
            // A vault gateway's credential is the agent's token: no secret.
            r.secret = (!secret.is_empty()).then_some(*secret);
            r.lease_id_sha256 = lease_hash(lease_id);
            set_outcome(&mut r, outcome, *lease_id);
        }
        Event::GatewayLease {
            gateway,
            path,
            lease_id,
        } => {
            r.gateway = Some(gateway);
            r.path = Some(path);
            r.lease_id_sha256 = Some(sha256_hex(lease_id.as_bytes()));
        }
        Event::GatewayRenew {
            gateway,
            path,
            lease_id,
            outcome,
        } => {
            r.gateway = Some(gateway);
            r.path = Some(path);
            r.lease_id_sha256 = Some(sha256_hex(lease_id.as_bytes()));
            set_outcome(&mut r, outcome, Some(lease_id));
        }
        Event::GatewayRevoke {
            gateway,
            path,
            lease_id,
            reason,
            outcome,
        } => {
            r.kind = Some("lease");
            r.revoke_reason = Some(reason.name());
            r.gateway = Some(gateway);
            r.path = Some(path);
            r.lease_id_sha256 = Some(sha256_hex(lease_id.as_bytes()));
            set_outcome(&mut r, outcome, Some(lease_id));
        }
        Event::Exit { code } => r.code = Some(*code),
        Event::Ready => {}
        Event::LeaseTtl { .. } | Event::VaultRequest { .. } | Event::Publish { .. } => return None,
    }
    Some(r)
}

/// An error text fit for the trail: the lease id replaced (only its hash is kept)
/// and any live secret value masked, should a Vault message quote one.
fn clean_reason(why: &str, lease_id: Option<&str>) -> String {
    let why = match lease_id {
        Some(id) if !id.is_empty() => why.replace(id, "<lease id>"),
        _ => why.to_string(),
    };
    String::from_utf8_lossy(&crate::logging::redact(why.as_bytes())).into_owned()
}

#[cfg(test)]
mod tests {
    use std::io::{BufReader, Cursor};
    use std::sync::Weak;
    use std::time::Duration;

    use super::*;
    use crate::audit::anchor::SignedHead;
    use crate::audit::verify;

    fn workload() -> Workload {
        Workload {
            pod: Some("app-7d9f".into()),
            namespace: Some("prod".into()),
            service_account: Some("app".into()),
            hostname: None,
        }
    }

    fn session(audit: &Audit) {
        let lease = "database/creds/app/Q1w2E3r4T5y6";
        audit.emit(&Event::Login {
            method: "kubernetes",
            outcome: Outcome::Ok,
        });
        audit.emit(&Event::Fetch {
            secret: "db",
            path: "database/creds/app",
            lease_id: Some(lease),
            outcome: Outcome::Ok,
        });
        audit.emit(&Event::LeaseTtl {
            secret: "db",
            seconds: 30.0,
        });
        audit.emit(&Event::Renew {
            secret: "db",
            path: "database/creds/app",
            lease_id: Some(lease),
            outcome: Outcome::Error(format!("lease {lease} not found")),
        });
        audit.emit(&Event::Revoke {
            secret: None,
            lease_id: None,
            reason: crate::events::RevokeReason::Shutdown,
            outcome: Outcome::Ok,
        });
        audit.emit(&Event::Wipe {
            files: 2,
            duration: Duration::from_millis(1),
        });
        audit.emit(&Event::Exit { code: 0 });
    }

    #[test]
    fn records_verify_and_never_hold_the_lease_id() {
        let (audit, buf) = Audit::in_memory(workload());
        session(&audit);
        let bytes = buf.lock().unwrap().clone();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert_eq!(text.lines().count(), 6, "lease_ttl is not audited:\n{text}");
        assert!(!text.contains("Q1w2E3r4T5y6"), "{text}");
        assert!(text.contains(&sha256_hex(b"database/creds/app/Q1w2E3r4T5y6")));
        assert!(text.contains("lease <lease id> not found"));
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["event"], "login");
        assert_eq!(first["method"], "kubernetes");
        assert_eq!(first["prev"], GENESIS);
        assert_eq!(first["workload"]["pod"], "app-7d9f");
        assert!(first["time"].as_str().unwrap().ends_with('Z'));
        let revoke: serde_json::Value = serde_json::from_str(text.lines().nth(3).unwrap()).unwrap();
        assert_eq!(
            (&revoke["event"], &revoke["kind"], &revoke["revoke_reason"]),
            (&"revoke".into(), &"token".into(), &"shutdown".into())
        );
        let s = verify(Cursor::new(&bytes)).unwrap();
        assert_eq!(s.records, 6);
        assert_eq!(s.head, audit.finish().hash);
    }

    #[test]
    fn gateway_leases_are_recorded_by_path_and_lease_hash() {
        let (audit, buf) = Audit::in_memory(workload());
        let lease = "database/creds/app/G4t3w4yL34s3";
        audit.emit(&Event::GatewayLease {
            gateway: "vault",
            path: "database/creds/app",
            lease_id: lease,
        });
        audit.emit(&Event::GatewayRevoke {
            gateway: "vault",
            path: "database/creds/app",
            lease_id: lease,
            reason: crate::events::RevokeReason::Shutdown,
            outcome: Outcome::Error(format!("cannot revoke {lease}")),
        });
        audit.emit(&Event::GatewayRenew {
            gateway: "vault",
            path: "database/creds/app",
            lease_id: lease,
            outcome: Outcome::Error(format!("cannot renew {lease}")),
        });
        audit.emit(&Event::GatewayLogin {
            gateway: "vault",
            secret: "",
            lease_id: None,
            outcome: Outcome::Ok,
        });
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        assert!(!text.contains("G4t3w4yL34s3"), "{text}");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let hash = sha256_hex(lease.as_bytes());
        assert_eq!(lines[0]["event"], "gateway_lease");
        assert_eq!(lines[0]["gateway"], "vault");
        assert_eq!(lines[0]["path"], "database/creds/app");
        assert_eq!(lines[0]["lease_id_sha256"], hash.as_str());
        assert_eq!(lines[1]["event"], "gateway_revoke");
        assert_eq!(lines[1]["revoke_reason"], "shutdown");
        assert_eq!(lines[1]["lease_id_sha256"], hash.as_str());
        assert_eq!(lines[1]["reason"], "cannot revoke <lease id>");
        assert_eq!(lines[2]["event"], "gateway_renew");
        assert_eq!(lines[2]["path"], "database/creds/app");
        assert_eq!(lines[2]["lease_id_sha256"], hash.as_str());
        assert_eq!(lines[2]["reason"], "cannot renew <lease id>");
        assert_eq!(lines[3]["event"], "gateway_login");
        assert!(lines[3].get("secret").is_none(), "{}", lines[3]);
    }

    #[test]
    fn reopening_a_file_continues_the_chain_and_refuses_a_broken_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let target = AuditTarget::File(path.clone());
        session(&Audit::open_as(&target, workload()).unwrap());
        let again = Audit::open_as(&target, workload()).unwrap();
        assert_eq!(again.head().records, 6);
        session(&again);
        let s = verify(BufReader::new(File::open(&path).unwrap())).unwrap();
        assert_eq!(s.records, 12);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("\"exit\"", "\"exxt\"", 1)).unwrap();
        let err = Audit::open_as(&target, workload()).unwrap_err().to_string();
        assert!(err.contains("broken at line 6"), "{err}");
    }

    /// Signs by hashing, and logs in (an audited event) on its first use, as
    /// the transit signer does.
    struct FakeSigner {
        audit: Weak<Audit>,
        logged_in: bool,
        closed: Arc<Mutex<bool>>,
    }

    impl HeadSigner for FakeSigner {
        fn sign(&mut self, message: &[u8]) -> Result<SignedHead, String> {
            if !std::mem::replace(&mut self.logged_in, true) {
                if let Some(a) = self.audit.upgrade() {
                    a.emit(&Event::Login {
                        method: "approle",
                        outcome: Outcome::Ok,
                    });
                }
            }
            Ok(SignedHead {
                key: "transit/audit".into(),
                key_version: 1,
                signature: format!("fake:{}", sha256_hex(message)),
            })
        }
        fn close(&mut self) {
            *self.closed.lock().unwrap() = true;
        }
    }

    #[test]
    fn signing_every_n_records_and_at_finish_covers_the_whole_chain() {
        let (audit, buf) = Audit::in_memory(workload());
        let closed = Arc::new(Mutex::new(false));
        audit.enable_signing(
            Box::new(FakeSigner {
                audit: Arc::downgrade(&audit),
                logged_in: false,
                closed: closed.clone(),
            }),
            3,
            Duration::from_secs(3600),
        );
        session(&audit);
        audit.finish();
        assert!(
            *closed.lock().unwrap(),
            "the signer's session is closed at finish"
        );
        let bytes = buf.lock().unwrap().clone();
        let s = verify(Cursor::new(&bytes)).unwrap();
        assert!(s.signatures.len() >= 2, "{:?}", s.signatures);
        let last = s.signatures.last().unwrap();
        assert!(last.is_final);
        assert_eq!(last.line, s.records, "the final signature is the last line");
        assert_eq!(
            last.records,
            s.records - 1,
            "it covers everything before it"
        );
        for sig in &s.signatures {
            let want = format!(
                "fake:{}",
                sha256_hex(&super::head_message(sig.records, &sig.head, sig.is_final))
            );
            assert_eq!(sig.signature, want);
        }
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(text.matches("\"event\":\"login\"").count(), 2, "{text}");
    }
}
