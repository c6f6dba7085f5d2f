//! `shroud scan --config F`: the values to look for, read from Vault through an
//! agent configuration (see [`crate::agent::snapshot`]). Nothing obtained stays
//! alive: leases and the login's token are revoked before the scan starts.

use std::path::Path;

use crate::agent::snapshot::{self, Snapshot};
use crate::error::{usage, Exit};
use crate::logging::print_redacted;

/// Exit code when Vault could not give the values (or take the credentials back):
/// the scan did not happen or left something behind, which is not "found" (1).
const EXIT_VAULT: i32 = 2;

/// Reads the values of the configuration at `path`.
pub fn values(path: &Path) -> anyhow::Result<Snapshot> {
    let cfg = super::load_config(Some(path), &crate::cli::ConfigOverrides::default())?;
    super::harden();
    let snapshot = snapshot::read_values(&cfg).map_err(|e| -> anyhow::Error {
        let what = format!("{}: reading the secrets from Vault", cfg.origin);
        if e.is_config() {
            usage(anyhow::Error::new(e).context(what)).into()
        } else {
            Exit {
                code: EXIT_VAULT,
                message: format!("{what}: {e}"),
            }
            .into()
        }
    })?;
    for name in &snapshot.skipped {
        print_redacted(&format!(
            "shroud: scan: secret `{name}` is dynamic (kind dynamic or pki, or params): each \
             request creates new credentials, which no artifact can hold, so it is not read (scan the running agent's \
             directory with --secrets-dir to include the credentials in use)"
        ));
    }
    Ok(snapshot)
}
