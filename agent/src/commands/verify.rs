//! `shroud verify --config F --ledger L [--key K] ARTIFACT…`: each artifact's
//! current SHA-256 must have a ledger record whose signature transit verifies,
//! in a ledger whose hash chain is intact.
//!
//! Prints `ok ARTIFACT …` or `FAIL ARTIFACT: REASON` per file. Exit 0: every
//! artifact verified. Exit 1: at least one did not (or the ledger is broken).
//! Exit 2: Vault could not be asked. Exit 64: usage.

use std::fs::File;
use std::io::Write as _;

use crate::cli::VerifyArgs;
use crate::error::{usage, Exit};
use crate::ledger::{self, Entry, LedgerError};
use crate::signing::Session;
use crate::tree::{walk, Visit};
use crate::vault::transit::TransitKey;

/// The verdict on one artifact.
enum Verdict {
    Ok(String),
    Fail(String),
}

pub fn run(args: VerifyArgs) -> anyhow::Result<i32> {
    let pinned = match &args.key {
        Some(k) => Some(TransitKey::parse(k).map_err(|e| usage(anyhow::anyhow!("--key: {e}")))?),
        None => None,
    };
    let cfg = super::load_config(Some(&args.config), &crate::cli::ConfigOverrides::default())?;
    for p in &args.artifacts {
        std::fs::metadata(p).map_err(|e| {
            usage(anyhow::Error::new(e).context(format!("cannot verify {}", p.display())))
        })?;
    }
    let entries = match ledger::load(&args.ledger) {
        Ok(e) => Ok(e),
        Err(e @ LedgerError::Read { .. }) => return Err(usage(e).into()),
        Err(e) => Err(e.to_string()),
    };
    let mut session = Session::new(&cfg).map_err(usage)?;
    let mut out = std::io::stdout().lock();
    let (mut good, mut bad) = (0u64, 0u64);
    let mut vault_error = None;
    for root in &args.artifacts {
        walk(root, &mut |visit| {
            if vault_error.is_some() {
                return;
            }
            let (path, verdict) = match visit {
                Visit::Error(path, e) => (path, Verdict::Fail(format!("cannot read: {e}"))),
                Visit::File(path) => {
                    let verdict = match &entries {
                        Err(broken) => Verdict::Fail(broken.clone()),
                        Ok(entries) => {
                            match File::open(path).and_then(|mut f| ledger::sha256_of(&mut f)) {
                                Err(e) => Verdict::Fail(format!("cannot read: {e}")),
                                Ok(digest) => {
                                    match judge(&mut session, pinned.as_ref(), entries, &digest) {
                                        Ok(v) => v,
                                        Err(e) => {
                                            vault_error = Some(e);
                                            return;
                                        }
                                    }
                                }
                            }
                        }
                    };
                    (path, verdict)
                }
            };
            let line = match verdict {
                Verdict::Ok(why) => {
                    good += 1;
                    format!("ok {}: {why}\n", path.display())
                }
                Verdict::Fail(why) => {
                    bad += 1;
                    format!("FAIL {}: {why}\n", path.display())
                }
            };
            let _ = out.write_all(line.as_bytes());
        });
    }
    let _ = out.flush();
    let closed = session.close();
    if let Some(e) = vault_error {
        return Err(Exit {
            code: 2,
            message: format!("verifying with Vault: {e}"),
        }
        .into());
    }
    closed.map_err(|e| Exit {
        code: 2,
        message: e.to_string(),
    })?;
    if bad > 0 {
        return Err(Exit {
            code: 1,
            message: format!("{bad} of {} artifacts did not verify", good + bad),
        }
        .into());
    }
    Ok(0)
}

/// Looks for a record of `digest` (newest first) that transit verifies.
fn judge(
    session: &mut Session,
    pinned: Option<&TransitKey>,
    entries: &[Entry],
    digest: &str,
) -> Result<Verdict, crate::signing::SignError> {
    let candidates: Vec<(usize, &Entry)> = entries
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, e)| e.sha256 == digest)
        .collect();
    if candidates.is_empty() {
        return Ok(Verdict::Fail(format!(
            "no ledger record for its content (sha256:{digest}): it changed since it was signed, or was never signed"
        )));
    }
    let mut reasons = Vec::new();
    for (i, entry) in candidates {
        let line = i + 1;
        let key = match TransitKey::parse(&entry.key) {
            Ok(k) => k,
            Err(e) => {
                reasons.push(format!("ledger line {line}: {e}"));
                continue;
            }
        };
        if pinned.is_some_and(|p| *p != key) {
            reasons.push(format!(
                "ledger line {line} is signed by {key}, not by the required key"
            ));
            continue;
        }
        if session.verify(&key, &entry.message(), &entry.signature)? {
            return Ok(Verdict::Ok(format!(
                "sha256:{digest} signed as {} by {key} v{} at {} (ledger line {line})",
                entry.artifact, entry.key_version, entry.time
            )));
        }
        reasons.push(format!(
            "ledger line {line}: the signature does not verify with {key}: the record was forged or altered"
        ));
    }
    Ok(Verdict::Fail(reasons.join("; ")))
}
