//! Which Vault API paths the workload may use through the gateway: those
//! matching a `paths` glob, and `sys/` or `auth/token/` only when a glob names
//! them literally (a bare `*` does not open them).

use crate::config::PathGlob;

/// Prefixes that only a glob naming them opens.
const GUARDED: &[&str] = &["sys/", "auth/token/"];

/// Whether `api_path` (after `/v1/`, normalised, no leading `/`) is allowed.
pub fn allows(paths: &[PathGlob], api_path: &str) -> bool {
    let guard = GUARDED
        .iter()
        .find(|g| api_path.starts_with(**g) || format!("{api_path}/") == **g);
    paths
        .iter()
        .any(|p| p.matches(api_path) && guard.is_none_or(|g| p.literal_prefix().starts_with(g)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn globs(list: &[&str]) -> Vec<PathGlob> {
        list.iter().map(|p| PathGlob::parse(p).unwrap()).collect()
    }

    #[test]
    fn only_listed_paths_pass_and_sys_needs_naming() {
        let p = globs(&["secret/data/app", "database/creds/+", "*"]);
        assert!(allows(&p, "secret/data/app"));
        assert!(allows(&p, "anything/else"));
        assert!(!allows(&p, "sys/leases/revoke"));
        assert!(!allows(&p, "sys"));
        assert!(!allows(&p, "auth/token/create"));
        let p = globs(&[
            "secret/data/app",
            "sys/leases/renew",
            "auth/token/lookup-self",
        ]);
        assert!(!allows(&p, "secret/data/other"));
        assert!(allows(&p, "sys/leases/renew"));
        assert!(!allows(&p, "sys/leases/revoke"));
        assert!(allows(&p, "auth/token/lookup-self"));
        assert!(!allows(&globs(&["sys/*"]), "auth/token/create"));
        assert!(allows(&globs(&["sys/*"]), "sys/mounts"));
    }
}
