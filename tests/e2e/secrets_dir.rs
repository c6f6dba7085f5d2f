//! `--secrets-dir` as a mounted Kubernetes Secret really looks, made by hand on a
//! real tmpfs: keys are symlinks through `..data` into a timestamped directory,
//! with a `.dockerconfigjson` and a subdirectory, beside the things a careless or
//! hostile directory holds. Every value is masked (dotfiles and subdirectories
//! too, a document's fields on their own), every file not read is named on
//! stderr with its reason, and a weak value is warned about by name only. And the
//! agent's side: a key inside a JSON field of a Vault secret, printed in its
//! PKCS#1 form, is masked through the values it publishes.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use shroud_e2e::*;

const TOKEN: &str = "tok-9QxL2vR7mK4pW8zT";
const NESTED: &str = "nested-Hd72kLq9Vx3mZ";
const ENV_VALUE: &str = "envv-Pz84qWm2LxK7tR";
const REGISTRY_PASSWORD: &str = "regpw-Xk29fLq7Vb3nM";
const WEAK: &str = "password123";

fn projected_volume(d: &Path) {
    let ts = d.join("..2026_12_07_10_00_00.123456789");
    std::fs::create_dir_all(ts.join("sub")).unwrap();
    std::fs::write(ts.join("token"), format!("{TOKEN}\n")).unwrap();
    let auth =
        base64::engine::general_purpose::STANDARD.encode(format!("robot:{REGISTRY_PASSWORD}"));
    std::fs::write(
        ts.join(".dockerconfigjson"),
        format!(r#"{{"auths":{{"registry.example":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    std::fs::write(ts.join("sub/key"), NESTED).unwrap();
    symlink("..2026_12_07_10_00_00.123456789", d.join("..data")).unwrap();
    for key in ["token", ".dockerconfigjson", "sub"] {
        symlink(format!("..data/{key}"), d.join(key)).unwrap();
    }
    std::fs::write(d.join(".env"), format!("export APP_KEY='{ENV_VALUE}'\n")).unwrap();
    std::fs::write(d.join("admin"), WEAK).unwrap();
    symlink("/etc/hostname", d.join("escape")).unwrap();
    symlink("missing", d.join("dangling")).unwrap();
    nix::unistd::mkfifo(&d.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    std::fs::write(d.join("big"), vec![b'x'; (1 << 20) + 1]).unwrap();
    std::fs::create_dir_all(d.join(".shroud")).unwrap();
}

#[test]
fn a_mounted_secret_is_read_whole_and_every_skip_is_named() {
    let tmpfs = Tmpfs::new();
    let d = tmpfs.path();
    projected_volume(d);
    let input = format!(
        "token {TOKEN}\nnested {NESTED}\nenv {ENV_VALUE}\nregistry password {REGISTRY_PASSWORD}\n"
    );
    let done = run_with_input(
        shroud()
            .args(["redact", "--mask", "MASKED", "--secrets-dir"])
            .arg(d),
        input.as_bytes(),
        Duration::from_secs(60),
    );
    assert!(done.status.success(), "shroud redact: {}", done.err());
    assert_eq!(
        done.out(),
        "token MASKED\nnested MASKED\nenv MASKED\nregistry password MASKED\n"
    );
    let err = done.err();
    for (file, reason) in [
        ("escape", "a symlink leaving the directory"),
        ("dangling", "a symlink to nothing"),
        ("fifo", "not a regular file"),
        ("big", "too large"),
    ] {
        assert!(
            err.lines().any(|l| l.contains("file skipped")
                && l.contains(&format!("/{file}"))
                && l.contains(reason)),
            "no skip line for {file} ({reason}):\n{err}"
        );
    }
    assert_eq!(
        err.matches("file skipped").count(),
        4,
        "only those are skipped:\n{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.contains("weak") && l.contains("admin") && l.contains("dictionary words")),
        "no weak-value warning naming `admin`:\n{err}"
    );
    for value in [TOKEN, NESTED, ENV_VALUE, REGISTRY_PASSWORD, WEAK] {
        assert!(!err.contains(value), "stderr shows a value:\n{err}");
    }
}

/// `shroud scan` finds a field of a document secret printed on its own, named
/// after the document and the field's path.
#[test]
fn scan_names_a_documents_field_by_its_path() {
    let tmpfs = Tmpfs::new();
    let d = tmpfs.path();
    projected_volume(d);
    let out = tempfile::tempdir().unwrap();
    let artifact = out.path().join("build.log");
    std::fs::write(&artifact, format!("logging in with {REGISTRY_PASSWORD}\n")).unwrap();
    let done = run_with_input(
        Command::new(shroud_bin())
            .args(["scan", "--secrets-dir"])
            .arg(d)
            .arg(&artifact),
        b"",
        Duration::from_secs(60),
    );
    assert_eq!(
        done.status.code(),
        Some(1),
        "scan: {}{}",
        done.out(),
        done.err()
    );
    // The registry's name is masked in the report too: it is a piece of the
    // document, which is a secret as a whole.
    assert!(
        done.out().lines().any(
            |l| l.contains(": .dockerconfigjson#auths.") && l.ends_with(".auth.password (raw)")
        ),
        "{}",
        done.out()
    );
    assert!(!done.out().contains(REGISTRY_PASSWORD));
}

/// The agent's side (`shroud run`, real OpenBao): a kv2 field that is a Google
/// service-account key publishes its fields and its key's PKCS#1 form in
/// `.shroud/values`, so the key printed by `openssl rsa -traditional` (a form
/// the stored value does not hold) is masked; a weak field is warned about once,
/// by name.
#[test]
fn run_masks_the_pkcs1_form_of_a_key_inside_a_json_field() {
    let _s = shroud_e2e::world::serial();
    let w = shroud_e2e::world::World::new(None);
    let key = run_with_input(
        Command::new(require_tool("openssl", "apt-get install openssl")).args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ]),
        b"",
        Duration::from_secs(120),
    );
    assert!(key.status.success(), "openssl genpkey: {}", key.err());
    let id = "5c1f0e9a7d3b2c4e6f8a0b1d3e5f7a9c1b3d5e7f";
    let doc = serde_json::json!({
        "type": "service_account",
        "private_key_id": id,
        "private_key": key.out(),
    });
    let doc_file = w.work.path().join("sa.json");
    std::fs::write(&doc_file, doc.to_string()).unwrap();
    w.bao.bao(&[
        "kv",
        "put",
        "secret/sa",
        &format!("key=@{}", doc_file.display()),
        "weak=Summer2024!",
    ]);
    std::fs::remove_file(&doc_file).unwrap();
    let auth = w.approle_auth();
    let cfg = w.config(
        &auth,
        "[[secret]]\nname = \"sa\"\npath = \"secret/sa\"\nkind = \"kv2\"\nfield = \"key\"\n",
    );
    let script = "d=$SHROUD_SECRETS_DIR; jq -r .private_key \"$d/sa\" | openssl rsa -traditional 2>/dev/null; \
                  grep -o '^secret [^ ]*' \"$d/.shroud/values\"";
    let done = run_with_input(&mut run_script(&cfg, script), b"", Duration::from_secs(120));
    assert!(done.status.success(), "shroud run: {}", done.err());
    let out = done.out();
    // (`private_key_id` itself is a piece of the document, masked in the names.)
    for name in [
        "secret sa.key#private_key#pkcs1",
        "secret sa.key#private_key#pkcs1.der",
    ] {
        assert!(
            out.lines().any(|l| l == name),
            "{name} not published:\n{out}"
        );
    }
    // The PKCS#1 body (64-column lines of base64) shows no line in clear.
    let pkcs1 = run_with_input(
        Command::new("openssl").args(["rsa", "-traditional"]),
        key.stdout.as_slice(),
        Duration::from_secs(60),
    );
    for line in pkcs1.out().lines().filter(|l| !l.starts_with("-----")) {
        assert!(!out.contains(line), "a PKCS#1 line shows:\n{out}");
    }
    // openssl's whole PEM output is its armor lines (public: shared by every
    // key) and masks only: one `[REDACTED]` for the known body.
    let (pem, _) = out
        .split_once("secret ")
        .unwrap_or_else(|| panic!("no `secret` line:\n{out}"));
    let left: String = pem
        .split("[REDACTED")
        .enumerate()
        .map(|(i, part)| match part.split_once(']') {
            Some((_, rest)) if i > 0 => rest,
            _ => part,
        })
        .collect::<String>()
        .lines()
        .filter(|l| !(l.starts_with("-----BEGIN ") || l.starts_with("-----END ")))
        .collect();
    assert!(
        !pem.is_empty() && left.trim().is_empty(),
        "openssl printed nothing, or something unmasked:\n{out}"
    );
    assert!(!out.contains(id));
    // The weak field is warned about by name, once, never shown.
    let err = done.err();
    assert_eq!(
        err.lines()
            .filter(|l| l.contains("secret value is weak") && l.contains("sa.weak"))
            .count(),
        1,
        "{err}"
    );
    assert!(!err.contains("Summer2024!") && !out.contains("Summer2024!"));
}
