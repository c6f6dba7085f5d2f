//! `shroud config validate`, `shroud probe ready`, and the agent's start-up
//! refusals that need no Vault: bad keys, non-tmpfs output, unreachable Vault.

use std::time::{Duration, Instant};

use shroud_e2e::*;

const GOOD: &str = r#"
[vault]
address = "http://127.0.0.1:8200"
timeout = "2s"

[auth]
method = "approle"
role_id_file = "/run/role-id"
secret_id_file = "/run/secret-id"

[output]
dir = "/run/secrets"
mode = "0440"

[[secret]]
name = "db.json"
path = "database/creds/app"
kind = "dynamic"
format = "json"

[[secret]]
name = "api-key"
path = "secret/app"
kind = "kv2"
field = "api_key"
refresh = "1m"

[[secret]]
name = "dsn"
path = "database/creds/app"
kind = "dynamic"
template = "postgres://{{ username }}:{{ password }}@db/app\n"

[redact]
retain = "5m"

[lifecycle]
on_rotate = "signal:SIGHUP"
renew_threshold = 0.5

[metrics]
listen = "127.0.0.1:0"

[audit]
path = "stderr"
"#;

fn validate(text: &str) -> Finished {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("shroud.toml");
    std::fs::write(&f, text).unwrap();
    run_with_input(
        shroud().args(["config", "validate"]).arg(&f),
        b"",
        Duration::from_secs(10),
    )
}

#[test]
fn validate_accepts_a_complete_file() {
    let done = validate(GOOD);
    assert!(done.status.success(), "{}", done.err());
    assert!(
        done.out().contains("ok (3 secrets, auth approle"),
        "{}",
        done.out()
    );
}

#[test]
fn validate_names_the_bad_key_and_the_file() {
    // (what is changed, the text replaced, its replacement, what the error must name)
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "unknown key",
            "timeout = \"2s\"",
            "timeout = \"2s\"\nadress = \"http://x\"",
            "adress",
        ),
        (
            "method",
            "method = \"approle\"",
            "method = \"ldap\"",
            "[auth] method",
        ),
        (
            "mode",
            "mode = \"0440\"",
            "mode = \"nope\"",
            "[output] mode",
        ),
        ("kind", "kind = \"dynamic\"", "kind = \"kv1\"", "kind"),
        (
            "timeout",
            "timeout = \"2s\"",
            "timeout = \"soon\"",
            "[vault] timeout",
        ),
        (
            "threshold",
            "renew_threshold = 0.5",
            "renew_threshold = 1.5",
            "[lifecycle] renew_threshold",
        ),
        (
            "template",
            "template = \"postgres",
            "template = \"{% if %}\"\n#",
            "(dsn) template",
        ),
    ];
    for (what, find, replacement, expect) in cases {
        assert!(GOOD.contains(find), "{what}");
        let text = GOOD.replacen(find, replacement, 1);
        let done = validate(&text);
        assert_eq!(done.status.code(), Some(64), "{what}: {}", done.err());
        let err = done.err();
        assert!(err.contains("shroud.toml"), "{what}: names the file: {err}");
        assert!(err.contains(expect), "{what}: names `{expect}`: {err}");
    }
}

#[test]
fn missing_required_keys_and_secrets_are_named() {
    let done = validate("[vault]\naddress = \"http://127.0.0.1:1\"\n[auth]\nmethod = \"jwt\"\n");
    assert_eq!(done.status.code(), Some(64));
    assert!(
        done.err().contains("[auth] role: is required"),
        "{}",
        done.err()
    );
    let done = validate(&GOOD.replace("name = \"api-key\"", "name = \"../etc/passwd\""));
    assert_eq!(done.status.code(), Some(64));
    assert!(done.err().contains("#2"), "{}", done.err());
}

#[test]
fn env_overrides_and_config_toml_from_env() {
    let tmp = Tmpfs::new();
    // SHROUD_CONFIG_TOML instead of a file, and an env override for the address:
    // the agent then fails to reach the overridden address, naming it.
    let port = free_port();
    let text = GOOD
        .replace("/run/secrets", tmp.path().to_str().unwrap())
        .replace(
            "method = \"approle\"",
            "method = \"token\"\ntoken_file = \"/dev/null\"",
        )
        .replace(
            "role_id_file = \"/run/role-id\"\nsecret_id_file = \"/run/secret-id\"\n",
            "",
        );
    let done = run_with_input(
        shroud()
            .arg("agent")
            .env("SHROUD_CONFIG_TOML", &text)
            .env("SHROUD_VAULT_ADDRESS", format!("http://127.0.0.1:{port}"))
            .env("SHROUD_AUTH_TOKEN_FILE", tmp.path().join("missing-token")),
        b"",
        Duration::from_secs(20),
    );
    assert_eq!(done.status.code(), Some(64), "{}", done.err());
    assert!(done.err().contains("token_file"), "{}", done.err());
    assert!(done.err().contains("missing-token"), "{}", done.err());

    let done = run_with_input(
        shroud()
            .arg("agent")
            .env("SHROUD_CONFIG_TOML", &text)
            .env("SHROUD_LIFECYCLE_BOGUS", "1"),
        b"",
        Duration::from_secs(20),
    );
    assert_eq!(done.status.code(), Some(64), "{}", done.err());
    assert!(done.err().contains("bogus"), "{}", done.err());
}

#[test]
fn refuses_an_output_dir_that_is_not_tmpfs() {
    let disk = tempfile::tempdir_in(workspace()).unwrap();
    let cfg = disk.path().join("shroud.toml");
    let text = GOOD.replace("/run/secrets", disk.path().join("out").to_str().unwrap());
    std::fs::write(&cfg, text).unwrap();
    let done = run_with_input(
        shroud().arg("agent").arg("--config").arg(&cfg),
        b"",
        Duration::from_secs(10),
    );
    assert_eq!(done.status.code(), Some(64), "{}", done.err());
    assert!(done.err().contains("not on tmpfs"), "{}", done.err());
    assert!(done.err().contains("require_tmpfs"), "{}", done.err());
}

#[test]
fn unreachable_vault_is_named_after_the_startup_timeout() {
    let tmp = Tmpfs::new();
    let port = free_port();
    std::fs::write(tmp.path().join("token"), "s.whatever\n").unwrap();
    let cfg = tmp.path().join("shroud.toml");
    std::fs::write(
        &cfg,
        format!(
            "[vault]\naddress = \"http://127.0.0.1:{port}\"\ntimeout = \"1s\"\n\
             [auth]\nmethod = \"token\"\ntoken_file = \"{}\"\n\
             [output]\ndir = \"{}\"\n\
             [[secret]]\nname = \"x\"\npath = \"secret/x\"\nkind = \"kv2\"\n\
             [lifecycle]\nstartup_timeout = \"1s\"\n",
            tmp.path().join("token").display(),
            tmp.path().join("out").display()
        ),
    )
    .unwrap();
    let t = Instant::now();
    let done = run_with_input(
        shroud().arg("agent").arg("--config").arg(&cfg),
        b"",
        Duration::from_secs(20),
    );
    assert_eq!(done.status.code(), Some(1), "{}", done.err());
    assert!(done.err().contains("unreachable"), "{}", done.err());
    assert!(
        done.err().contains(&format!("127.0.0.1:{port}")),
        "{}",
        done.err()
    );
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn probe_ready() {
    let dir = tempfile::tempdir().unwrap();
    let done = run_with_input(
        shroud().args(["probe", "ready", "--dir"]).arg(dir.path()),
        b"",
        Duration::from_secs(10),
    );
    assert_eq!(done.status.code(), Some(1));
    assert!(done.err().contains("not ready"), "{}", done.err());
    std::fs::create_dir(dir.path().join(".shroud")).unwrap();
    std::fs::write(dir.path().join(".shroud/ready"), "").unwrap();
    let done = run_with_input(
        shroud().args(["probe", "ready", "--dir"]).arg(dir.path()),
        b"",
        Duration::from_secs(10),
    );
    assert!(done.status.success(), "{}", done.err());
}

#[test]
fn flags_override_the_file_and_the_environment() {
    let tmp = Tmpfs::new();
    let cfg = tmp.path().join("shroud.toml");
    std::fs::write(
        &cfg,
        GOOD.replace("/run/secrets", tmp.path().join("out").to_str().unwrap()),
    )
    .unwrap();
    let disk = tempfile::tempdir_in(workspace()).unwrap();
    // --output-dir wins over the file's tmpfs dir (and the env): refused as disk.
    let done = run_with_input(
        shroud()
            .arg("agent")
            .arg("--config")
            .arg(&cfg)
            .env("SHROUD_OUTPUT_DIR", tmp.path().join("env-out"))
            .arg("--output-dir")
            .arg(disk.path()),
        b"",
        Duration::from_secs(10),
    );
    assert_eq!(done.status.code(), Some(64), "{}", done.err());
    assert!(
        done.err()
            .contains(&format!("{} is not on tmpfs", disk.path().display())),
        "{}",
        done.err()
    );
    for (set, expect) in [
        ("lifecycle.bogus=1", "bogus"),
        ("nodot=1", "SECTION.KEY=VALUE"),
        ("auth.method=ldap", "[auth] method"),
    ] {
        let done = run_with_input(
            shroud()
                .arg("agent")
                .arg("--config")
                .arg(&cfg)
                .args(["--set", set]),
            b"",
            Duration::from_secs(10),
        );
        assert_eq!(done.status.code(), Some(64), "{set}: {}", done.err());
        assert!(done.err().contains(expect), "{set}: {}", done.err());
    }
}
