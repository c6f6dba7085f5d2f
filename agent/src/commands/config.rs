//! `shroud config validate F`: parse and check without contacting Vault.

use std::path::Path;

pub fn validate(file: &Path) -> anyhow::Result<i32> {
    let cfg = super::load_config(Some(file), &Default::default())?;
    println!(
        "{}: ok ({} secret{}, auth {}, output {}){}",
        cfg.origin,
        cfg.secrets.len(),
        if cfg.secrets.len() == 1 { "" } else { "s" },
        cfg.auth.method.name(),
        cfg.output.dir.display(),
        if cfg.secrets.is_empty() {
            "; enough to reach Vault (verify, scan --config, audit verify --config), not for agent or run"
        } else {
            ""
        }
    );
    Ok(0)
}
