//! `shroud scan --sign KEY --ledger L --config F`: after a clean scan, each
//! scanned file's SHA-256 is signed with the transit key and recorded in the
//! ledger. The login is separate from the one that read the values (which is
//! revoked before the scan) and is revoked once everything is signed.

use std::io::Write as _;
use std::path::Path;

use crate::config::Config;
use crate::error::{usage, Exit};
use crate::ledger::{signed_message, Entry, Identity, Ledger};
use crate::logging::print_redacted;
use crate::signing::Session;
use crate::vault::transit::TransitKey;

/// Exit code when signing could not be completed: the gate did not finish.
const EXIT_INCOMPLETE: i32 = 2;

/// What `--sign` needs, checked before anything is scanned.
#[derive(Debug)]
pub(super) struct Signing {
    cfg: Config,
    key: TransitKey,
    ledger: Ledger,
    ledger_path: String,
}

impl Signing {
    /// Parses the key, loads the configuration and opens the ledger (whose
    /// existing chain must be intact).
    pub(super) fn prepare(config: &Path, key: &str, ledger: &Path) -> anyhow::Result<Signing> {
        let key = TransitKey::parse(key).map_err(|e| usage(anyhow::anyhow!("--sign: {e}")))?;
        let cfg = super::load_config(Some(config), &crate::cli::ConfigOverrides::default())?;
        let opened = Ledger::open(ledger).map_err(|e| Exit {
            code: EXIT_INCOMPLETE,
            message: format!("--ledger: {e}"),
        })?;
        Ok(Signing {
            cfg,
            key,
            ledger: opened,
            ledger_path: ledger.display().to_string(),
        })
    }

    /// Signs each `(artifact, sha256)` and appends its record; prints one line
    /// per artifact. Stops at the first failure (the records before it stay).
    pub(super) fn sign_all(mut self, artifacts: &[(String, String)]) -> anyhow::Result<()> {
        let fail = |message: String| -> anyhow::Error {
            Exit {
                code: EXIT_INCOMPLETE,
                message,
            }
            .into()
        };
        let mut session = Session::new(&self.cfg).map_err(usage)?;
        let identity = Identity::of(&self.cfg);
        let mut out = std::io::stdout().lock();
        for (artifact, sha256) in artifacts {
            let time = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
            let message = signed_message(artifact, sha256, &time, &identity);
            let signature = session
                .sign(&self.key, &message)
                .map_err(|e| fail(format!("signing {artifact}: {e}")))?;
            let entry = Entry {
                time,
                artifact: artifact.clone(),
                sha256: sha256.clone(),
                identity: identity.clone(),
                key: self.key.to_string(),
                key_version: signature.key_version,
                signature: signature.signature,
            };
            self.ledger
                .append(&entry)
                .map_err(|e| fail(format!("appending to ledger {}: {e}", self.ledger_path)))?;
            let line = format!(
                "signed {artifact} sha256:{sha256} with {} v{}\n",
                entry.key, entry.key_version
            );
            let _ = out.write_all(&crate::logging::redact(line.as_bytes()));
        }
        let _ = out.flush();
        if let Err(e) = self.ledger.sync() {
            print_redacted(&format!(
                "shroud: scan: ledger {}: fsync: {e}",
                self.ledger_path
            ));
        }
        session
            .close()
            .map_err(|e| fail(format!("after signing: {e}")))?;
        Ok(())
    }
}
