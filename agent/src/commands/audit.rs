//! `shroud audit verify F [--expect-head H]`: check an audit log's hash chain.
//! Exit 0 and print the record count and head hash when intact; exit 1 naming the
//! first broken line; exit 64 when the file cannot be read.

use std::fs::File;
use std::io::BufReader;

use anyhow::Context as _;

use crate::audit::{verify, VerifyError};
use crate::cli::AuditCommand;
use crate::error::{usage, Exit};

pub fn run(cmd: AuditCommand) -> anyhow::Result<i32> {
    match cmd {
        AuditCommand::Verify { file, expect_head } => {
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
                    return Err(Exit {
                        code: 1,
                        message: format!("audit log {} is broken at {b}", file.display()),
                    }
                    .into())
                }
            };
            if let Some(want) = expect_head {
                if !want.eq_ignore_ascii_case(&summary.head) {
                    return Err(Exit {
                        code: 1,
                        message: format!(
                            "audit log {}: the chain is intact but its head after {} records is {}, not the expected {want}: records were removed from the end, or added",
                            file.display(),
                            summary.records,
                            summary.head
                        ),
                    }
                    .into());
                }
            }
            println!(
                "{}: intact, {} records, head {}",
                file.display(),
                summary.records,
                summary.head
            );
            Ok(0)
        }
    }
}
