//! `shroud config validate F`: parse and check without contacting Vault.
//! `shroud config import F.hcl`: a Vault Agent configuration as shroud's TOML.

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

pub fn import(file: &Path) -> anyhow::Result<i32> {
    let origin = file.display().to_string();
    let text = std::fs::read_to_string(file)
        .map_err(|e| crate::error::usage(anyhow::anyhow!("cannot read {origin}: {e}")))?;
    let imported = crate::config::vault_agent::import(&origin, &text)
        .map_err(|e| crate::error::usage(anyhow::Error::new(e)))?;
    for n in &imported.notes {
        eprintln!("shroud: config import: {origin}: {n}");
    }
    print!("{}", imported.to_toml(&origin));
    Ok(0)
}
