//! `shroud audit verify F [--expect-head H] [--config C]`: check an audit log's
//! hash chain, and with `--config` its transit signatures. Exit 0 and print the
//! record count and head hash when intact; exit 1 naming the first problem;
//! exit 2 when Vault could not be asked; exit 64 when the file cannot be read.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anyhow::Context as _;

use crate::audit::{head_message, verify, Summary, VerifyError};
use crate::cli::AuditCommand;
use crate::error::{usage, Exit};
use crate::signing::Session;

fn broken(message: String) -> anyhow::Error {
    Exit { code: 1, message }.into()
}

pub fn run(cmd: AuditCommand) -> anyhow::Result<i32> {
    match cmd {
        AuditCommand::Verify {
            file,
            expect_head,
            config,
        } => {
            let f = File::open(&file)
                .with_context(|| format!("cannot read audit log {}", file.display()))
                .map_err(usage)?;
            let summary = match verify(BufReader::new(f)) {
                Ok(s) => s,
                Err(VerifyError::Read(e)) => {
                    return Err(usage(
                        anyhow::Error::new(e)
                            .context(format!("cannot read audit log {}", file.display())),
                    )
                    .into())
                }
                Err(VerifyError::Broken(b)) => {
                    return Err(broken(format!(
                        "audit log {} is broken at {b}",
                        file.display()
                    )))
                }
            };
            if let Some(want) = expect_head {
                if !want.eq_ignore_ascii_case(&summary.head) {
                    return Err(broken(format!(
                        "audit log {}: the chain is intact but its head after {} records is {}, not the expected {want}: records were removed from the end, or added",
                        file.display(),
                        summary.records,
                        summary.head
                    )));
                }
            }
            let signed = match &config {
                Some(c) => format!(", {}", check_signatures(c, &file, &summary)?),
                None if summary.signatures.is_empty() => String::new(),
                None => format!(
                    ", {} chain signatures not checked (give --config){}",
                    summary.signatures.len(),
                    unsigned_tail(&summary)
                ),
            };
            println!(
                "{}: intact, {} records, head {}{signed}",
                file.display(),
                summary.records,
                summary.head
            );
            Ok(0)
        }
    }
}

/// `, N records at the end not covered by a chain signature` when there are.
fn unsigned_tail(summary: &Summary) -> String {
    match summary.unsigned_tail {
        0 => String::new(),
        n => format!(", the last {n} records not covered by a chain signature"),
    }
}

/// Checks every chain signature with Vault and that the chain ends with a
/// final one; returns a summary for the OK line.
fn check_signatures(config: &Path, file: &Path, summary: &Summary) -> anyhow::Result<String> {
    let cfg = super::load_config(Some(config), &crate::cli::ConfigOverrides::default())?;
    let Some(signing) = &cfg.audit_signing else {
        return Err(usage(anyhow::anyhow!(
            "{}: [audit] sign_key is not set: there is no key to check the signatures with",
            cfg.origin
        ))
        .into());
    };
    let log = file.display();
    let key = signing.key.to_string();
    let Some(last) = summary.signatures.last() else {
        return Err(broken(format!(
            "audit log {log}: no chain signature: the file was rewritten from scratch, or written without [audit] sign_key"
        )));
    };
    let mut session = Session::new(&cfg).map_err(usage)?;
    for sig in &summary.signatures {
        if sig.key != key {
            return Err(broken(format!(
                "audit log {log}: the chain signature at line {} is by {}, not by {key}",
                sig.line, sig.key
            )));
        }
        let message = head_message(sig.records, &sig.head, sig.is_final);
        let valid = session
            .verify(&signing.key, &message, &sig.signature)
            .map_err(|e| Exit {
                code: 2,
                message: format!("audit log {log}: verifying with Vault: {e}"),
            })?;
        if !valid {
            return Err(broken(format!(
                "audit log {log}: the chain signature at line {} does not verify with {key}: the file was rewritten",
                sig.line
            )));
        }
    }
    session.close().map_err(|e| Exit {
        code: 2,
        message: e.to_string(),
    })?;
    if summary.unsigned_tail > 0 {
        return Err(broken(format!(
            "audit log {log}: {} records after the last chain signature (line {}) are not signed: they were added after it, the file was cut short after a signature was removed, or the agent is still running or was killed",
            summary.unsigned_tail,
            last.line
        )));
    }
    if !last.is_final {
        return Err(broken(format!(
            "audit log {log}: the last chain signature (line {}) is not the final one written at exit: the file was cut short after it, or the agent is still running or was killed",
            last.line
        )));
    }
    Ok(format!(
        "{} chain signatures by {key} verified, the last one final",
        summary.signatures.len()
    ))
}
