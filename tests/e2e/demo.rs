//! `scripts/demo`, the README's first command, run as a new user runs it (with the
//! debug binary instead of a release build): a real OpenBao dev server, a real
//! PostgreSQL 15 and a real tmpfs. It must show every form of the credentials
//! masked, logins that work across a rotation, and nothing left at the end; then
//! the app's database through a gateway with no password in its reach.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use shroud_e2e::*;

#[test]
fn the_readme_demo_masks_rotates_and_leaves_nothing() {
    let done = run_with_input(
        Command::new(workspace().join("scripts/demo")).env("SHROUD_BIN", shroud_bin()),
        b"",
        Duration::from_secs(180),
    );
    let out = done.out();
    let all = format!("{out}\n--- stderr\n{}", done.err());
    assert_eq!(done.status.code(), Some(0), "{all}");
    let lines: Vec<&str> = out.lines().collect();
    let rounds: Vec<&&str> = lines.iter().filter(|l| l.contains("fingerprint")).collect();
    assert_eq!(rounds.len(), 6, "{all}");
    assert!(rounds.iter().all(|l| l.ends_with("login: ok")), "{all}");
    let prints: BTreeSet<&str> = rounds
        .iter()
        .filter_map(|l| l.split("fingerprint ").nth(1)?.split(',').next())
        .collect();
    assert!(prints.len() >= 2, "no rotation seen: {all}");
    // With every mask taken out, nothing of the credentials may remain: each
    // form's fields are then empty.
    for (form, empty) in [
        ("raw:", "raw:    user= password="),
        ("json:", "json:   {\"user\":\"\",\"password\":\"\"}"),
        ("url:", "url:    postgresql://:@127.0.0.1:"),
    ] {
        let shown: Vec<String> = lines
            .iter()
            .filter(|l| l.trim_start().starts_with(form))
            .map(|l| without_masks(l.trim_start()))
            .collect();
        assert_eq!(shown.len(), 6, "{form}: {all}");
        for l in shown {
            assert!(l.starts_with(empty), "unmasked credential in a {form} line");
        }
    }
    for end in [
        "leases left in OpenBao: 0",
        "PostgreSQL roles created by OpenBao that still exist: 0",
    ] {
        assert!(lines.contains(&end), "{end}: {all}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("files in ") && l.contains(": 0 ")),
        "{all}"
    );
    assert_gateway_step(&lines, &all);
}

/// `line` with every mask taken out: `[REDACTED]` and a detector's
/// `[REDACTED:<name>]` (the URL-password detector sees the demo's URL first).
fn without_masks(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find("[REDACTED") {
        out.push_str(&rest[..i]);
        match rest[i..].find(']') {
            Some(j) => rest = &rest[i + j + 1..],
            None => {
                rest = &rest[i..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The demo's gateway step: the app holds no database password (its
/// environment has no such variable, its only file is the gateway's local
/// password, which opens no database login), psql through the gateway runs as
/// the dynamic role, and the role and its lease are gone after exit.
fn assert_gateway_step(lines: &[&str], all: &str) {
    let after = |prefix: &str| -> &str {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line: {all}"))
    };
    let env = after("app environment: ");
    assert!(env.contains("SHROUD_SECRETS_DIR"), "{all}");
    assert!(
        !env.to_ascii_uppercase().contains("PASS") && !env.contains("USERNAME"),
        "a credential variable in the app's environment: {env}"
    );
    assert_eq!(after("app files: ").trim(), "pg.password", "{all}");
    let role = after("psql through the gateway: logged in as ");
    assert!(role.starts_with("v-"), "not a dynamic role: {all}");
    assert_eq!(after("in pg_roles: "), role, "{all}");
    assert_eq!(
        after(&format!("direct login as {role} with what the app holds: ")),
        "refused",
        "{all}"
    );
    let end = after(&format!("after exit: role {role} in pg_roles: "));
    assert!(
        end.starts_with("0, files in ") && end.contains(": 0, leases left in OpenBao: 0"),
        "{all}"
    );
}
