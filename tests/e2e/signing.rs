//! The artifact gate against a real OpenBao transit engine: `shroud scan --sign`
//! signs a clean tree into a ledger, `shroud verify` accepts it, and a changed
//! artifact, a forged record, a removed record and a broken chain each fail.

use std::path::{Path, PathBuf};
use std::time::Duration;

use shroud_e2e::openbao::OpenBao;
use shroud_e2e::*;

const API_KEY: &str = "sig-e2e-api-key-7d41c0ffee";

/// OpenBao with transit key `ci-artifacts`, a kv2 value, and an AppRole whose
/// policy may read it, sign and verify with the key, and nothing else.
struct World {
    bao: OpenBao,
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let bao = OpenBao::start();
        let dir = tempfile::tempdir().unwrap();
        bao.bao(&["secrets", "enable", "transit"]);
        bao.bao(&[
            "write",
            "-f",
            "transit/keys/ci-artifacts",
            "type=ecdsa-p256",
        ]);
        bao.bao(&["write", "-f", "transit/keys/other", "type=ecdsa-p256"]);
        bao.bao(&["write", "-f", "transit/keys/audit", "type=ed25519"]);
        bao.bao(&["kv", "put", "secret/ci/api", &format!("api_key={API_KEY}")]);
        bao.policy(
            "ci",
            r#"
path "secret/data/ci/*" { capabilities = ["read"] }
path "transit/sign/ci-artifacts" { capabilities = ["update"] }
path "transit/verify/ci-artifacts" { capabilities = ["update"] }
path "transit/verify/other" { capabilities = ["update"] }
path "transit/sign/audit" { capabilities = ["update"] }
path "transit/verify/audit" { capabilities = ["update"] }
"#,
            dir.path(),
        );
        let (role_id, secret_id) = bao.approle("ci", "ci", "5m", "10m");
        std::fs::write(dir.path().join("role-id"), role_id).unwrap();
        std::fs::write(dir.path().join("secret-id"), secret_id).unwrap();
        std::fs::create_dir(dir.path().join("out")).unwrap();
        let w = World { bao, dir };
        std::fs::write(
            w.path("shroud.toml"),
            format!(
                "[vault]\naddress = \"{}\"\ntimeout = \"5s\"\n\n[auth]\nmethod = \"approle\"\nrole_id_file = \"{}\"\nsecret_id_file = \"{}\"\n\n[output]\ndir = \"{}\"\n\n[[secret]]\nname = \"api\"\npath = \"secret/data/ci/api\"\nkind = \"kv2\"\n",
                w.bao.addr,
                w.path("role-id").display(),
                w.path("secret-id").display(),
                w.path("out").display(),
            ),
        )
        .unwrap();
        w
    }

    /// The same configuration with `extra` appended, written to `name`.
    fn config_with(&self, name: &str, extra: &str) -> String {
        let base = std::fs::read_to_string(self.path("shroud.toml")).unwrap();
        std::fs::write(self.path(name), format!("{base}\n{extra}")).unwrap();
        name.to_string()
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn shroud(&self, args: &[&str]) -> Finished {
        let f = run_with_input(
            shroud().current_dir(self.dir.path()).args(args),
            b"",
            Duration::from_secs(60),
        );
        // Every login of scan and verify is revoked before they exit.
        assert_eq!(
            self.bao.accessors().len(),
            1,
            "a token outlived `shroud {args:?}`"
        );
        assert!(
            !f.out().contains(API_KEY) && !f.err().contains(API_KEY),
            "value printed"
        );
        f
    }

    fn verify(&self, ledger: &str, extra: &[&str], artifacts: &[&str]) -> Finished {
        let mut args = vec!["verify", "--config", "shroud.toml", "--ledger", ledger];
        args.extend_from_slice(extra);
        args.extend_from_slice(artifacts);
        self.shroud(&args)
    }
}

fn code(f: &Finished) -> i32 {
    f.status.code().expect("exited normally")
}

/// Asserts that `f` exited 1 with `want` in its output lines.
fn fails_with(f: &Finished, want: &str) {
    assert_eq!(code(f), 1, "{}{}", f.out(), f.err());
    assert!(f.out().contains(want), "{want:?} not in:\n{}", f.out());
}

fn write(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(p: &Path, lines: &[String]) {
    std::fs::write(
        p,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

#[test]
fn signed_artifacts_verify_and_every_tampering_fails() {
    let w = World::new();
    write(&w.path("dist/app.bin"), "the application\n");
    write(&w.path("dist/lib/util.so"), "a library\n");
    write(&w.path("dist/README"), "read me\n");
    let sign_into = |ledger: &str, paths: &[&str]| {
        let mut args = vec![
            "scan",
            "--config",
            "shroud.toml",
            "--sign",
            "ci-artifacts",
            "--ledger",
            ledger,
        ];
        args.extend_from_slice(paths);
        w.shroud(&args)
    };
    let sign = |paths: &[&str]| sign_into("ledger.jsonl", paths);

    // A leaking tree is not signed: the gate fails first, and a scan that signs
    // nothing leaves no ledger (nor its directory) behind. An incomplete scan
    // (a corrupt archive: exit 2) neither.
    write(&w.path("leaky/config.txt"), &format!("key={API_KEY}\n"));
    let leaky = sign_into("records/ledger.jsonl", &["leaky"]);
    assert_eq!(code(&leaky), 1, "{}{}", leaky.out(), leaky.err());
    std::fs::write(w.path("corrupt.gz"), b"\x1f\x8b\x08\x00 not really gzip").unwrap();
    let corrupt = sign_into("records/ledger.jsonl", &["corrupt.gz"]);
    assert_eq!(code(&corrupt), 2, "{}{}", corrupt.out(), corrupt.err());
    assert!(
        !w.path("records").exists(),
        "a failed scan created the ledger or its directory"
    );

    let signed = sign(&["dist"]);
    assert_eq!(code(&signed), 0, "{}{}", signed.out(), signed.err());
    for a in ["dist/README", "dist/app.bin", "dist/lib/util.so"] {
        assert!(
            signed.out().contains(&format!("signed {a} sha256:")),
            "{}",
            signed.out()
        );
    }
    let ledger = w.path("ledger.jsonl");
    let records = lines(&ledger);
    assert_eq!(records.len(), 3);
    let first: serde_json::Value = serde_json::from_str(&records[0]).unwrap();
    assert_eq!(first["event"], "artifact");
    assert_eq!(first["artifact"], "dist/README");
    assert_eq!(first["key"], "transit/ci-artifacts");
    assert_eq!(first["key_version"], 1);
    assert!(first["signature"]
        .as_str()
        .unwrap()
        .starts_with("vault:v1:"));
    assert_eq!(first["identity"]["method"], "approle");
    assert_eq!(first["seq"], 0);
    // The ledger is the audit trail's chain format: `audit verify` accepts it.
    let chain = w.shroud(&["audit", "verify", "ledger.jsonl"]);
    assert_eq!(code(&chain), 0, "{}", chain.err());

    let ok = w.verify("ledger.jsonl", &["--key", "ci-artifacts"], &["dist"]);
    assert_eq!(code(&ok), 0, "{}{}", ok.out(), ok.err());
    assert_eq!(
        ok.out().lines().filter(|l| l.starts_with("ok ")).count(),
        3,
        "{}",
        ok.out()
    );
    assert!(
        ok.out().contains("ok dist/app.bin: sha256:"),
        "{}",
        ok.out()
    );

    // 1. A changed artifact.
    write(&w.path("dist/app.bin"), "the application, patched\n");
    let changed = w.verify("ledger.jsonl", &[], &["dist/app.bin", "dist/README"]);
    fails_with(
        &changed,
        "FAIL dist/app.bin: no ledger record for its content",
    );
    fails_with(&changed, "ok dist/README");
    write(&w.path("dist/app.bin"), "the application\n");

    // 2. A forged record: the patched binary's digest put into a record whose
    // chain is re-sealed correctly, so only the signature can tell.
    let forged_path = w.path("forged.jsonl");
    std::fs::copy(&ledger, &forged_path).unwrap();
    write(&w.path("evil/app.bin"), "the application, backdoored\n");
    let evil_digest = sha256_hex(&std::fs::read(w.path("evil/app.bin")).unwrap());
    let mut forged: Vec<String> = lines(&forged_path);
    let mut v: serde_json::Value = serde_json::from_str(&forged[1]).unwrap();
    v["sha256"] = evil_digest.into();
    forged[1] = reseal(v);
    reseal_from(&mut forged, 2);
    write_lines(&forged_path, &forged);
    let chain = w.shroud(&["audit", "verify", "forged.jsonl"]);
    assert_eq!(
        code(&chain),
        0,
        "the forger re-sealed the chain: {}",
        chain.err()
    );
    fails_with(
        &w.verify("forged.jsonl", &[], &["evil/app.bin"]),
        "the signature does not verify with transit/ci-artifacts: the record was forged or altered",
    );
    // A record signed by another key (which the verifier may also use) is
    // refused when the key is pinned.
    fails_with(
        &w.verify("forged.jsonl", &["--key", "other"], &["dist/README"]),
        "not by the required key",
    );

    // 3. A removed record: the chain breaks; re-sealed, the artifact has no record.
    let mut removed = lines(&ledger);
    removed.remove(1);
    let removed_path = w.path("removed.jsonl");
    write_lines(&removed_path, &removed);
    fails_with(
        &w.verify("removed.jsonl", &[], &["dist/README"]),
        "FAIL dist/README: ledger removed.jsonl is broken at line 2: seq is 2, expected 1",
    );
    reseal_from(&mut removed, 1);
    write_lines(&removed_path, &removed);
    fails_with(
        &w.verify("removed.jsonl", &[], &["dist"]),
        "FAIL dist/app.bin: no ledger record",
    );

    // 4. A broken chain: one byte of a record edited.
    let mut broken = lines(&ledger);
    broken[0] = broken[0].replace("dist/README", "dist/READMF");
    let broken_path = w.path("broken.jsonl");
    write_lines(&broken_path, &broken);
    fails_with(
        &w.verify("broken.jsonl", &[], &["dist/app.bin"]),
        "is broken at line 1: the record's content does not match its hash",
    );

    // Signing again appends to the same chain, which still verifies.
    let again = sign(&["dist/app.bin"]);
    assert_eq!(code(&again), 0, "{}{}", again.out(), again.err());
    assert_eq!(lines(&ledger).len(), 4);
    let ok = w.verify("ledger.jsonl", &[], &["dist"]);
    assert_eq!(code(&ok), 0, "{}{}", ok.out(), ok.err());

    // Bad input.
    let bad = w.shroud(&["scan", "--sign", "ci-artifacts", "dist"]);
    assert_eq!(code(&bad), 64, "{}", bad.err());
    let bad = w.verify("ledger.jsonl", &[], &["nope"]);
    assert_eq!(code(&bad), 64, "{}", bad.err());
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest as _, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The line for `v` as the chain writes it: `hash` over the rest.
fn reseal(mut v: serde_json::Value) -> String {
    v.as_object_mut().unwrap().remove("hash");
    let body = serde_json::to_string(&v).unwrap();
    let hash = sha256_hex(body.as_bytes());
    format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1])
}

/// Re-links and re-seals records from `from` on, as a forger who can write
/// the whole file would.
fn reseal_from(lines: &mut [String], from: usize) {
    for i in from..lines.len() {
        let mut v: serde_json::Value = serde_json::from_str(&lines[i]).unwrap();
        v["seq"] = (i as u64).into();
        v["prev"] = sha256_hex(lines[i - 1].as_bytes()).into();
        lines[i] = reseal(v);
    }
}

#[test]
fn a_signed_audit_chain_catches_a_rewritten_and_a_truncated_file() {
    let w = World::new();
    let cfg = w.config_with("audited.toml", "[output]\nrequire_tmpfs = false\n");
    // [output] is already in the base file: rewrite it with the option inside.
    let text = std::fs::read_to_string(w.path(&cfg))
        .unwrap()
        .replace("\n\n[output]\nrequire_tmpfs = false\n", "\n")
        .replace("[output]\n", "[output]\nrequire_tmpfs = false\n");
    std::fs::write(
        w.path(&cfg),
        format!("{text}\n[audit]\npath = \"audit.jsonl\"\nsign_key = \"audit\"\nsign_every = 2\n"),
    )
    .unwrap();
    let run = w.shroud(&["run", "--config", &cfg, "--tty", "never", "--", "true"]);
    assert_eq!(code(&run), 0, "{}{}", run.out(), run.err());
    let log = w.path("audit.jsonl");
    let records = lines(&log);
    let events: Vec<String> = records
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let sigs: Vec<usize> = (0..events.len())
        .filter(|i| events[*i] == "chain_signature")
        .collect();
    assert!(
        sigs.len() >= 2,
        "periodic and final signatures expected: {events:?}"
    );
    assert_eq!(
        *sigs.last().unwrap(),
        records.len() - 1,
        "the file ends with the final signature: {events:?}"
    );
    let last: serde_json::Value = serde_json::from_str(records.last().unwrap()).unwrap();
    assert_eq!(last["final"], true);
    assert_eq!(last["key"], "transit/audit");
    assert!(last["signature"].as_str().unwrap().starts_with("vault:v1:"));
    let first_sig: serde_json::Value = serde_json::from_str(&records[sigs[0]]).unwrap();
    assert_eq!(first_sig["final"], false);

    let verify = |file: &str| w.shroud(&["audit", "verify", "--config", &cfg, file]);
    let ok = verify("audit.jsonl");
    assert_eq!(code(&ok), 0, "{}{}", ok.out(), ok.err());
    assert!(
        ok.out()
            .contains("chain signatures by transit/audit verified, the last one final"),
        "{}",
        ok.out()
    );
    let unchecked = w.shroud(&["audit", "verify", "audit.jsonl"]);
    assert_eq!(code(&unchecked), 0, "{}", unchecked.err());
    assert!(
        unchecked
            .out()
            .contains("chain signatures not checked (give --config)"),
        "{}",
        unchecked.out()
    );

    // Rewritten: a record changed and the whole chain after it re-sealed, the
    // signatures' heads updated too. The chain is intact; the signatures are not.
    let mut rewritten = records.clone();
    let target = events
        .iter()
        .position(|e| e == "fetch")
        .expect("a fetch record");
    rewritten[target] = rewritten[target].replace("\"secret\":\"api\"", "\"secret\":\"apx\"");
    let mut v: serde_json::Value = serde_json::from_str(&rewritten[target]).unwrap();
    v["seq"] = (target as u64).into();
    rewritten[target] = reseal(v);
    for i in target + 1..rewritten.len() {
        let mut v: serde_json::Value = serde_json::from_str(&rewritten[i]).unwrap();
        if v["event"] == "chain_signature" {
            let n = v["records"].as_u64().unwrap() as usize;
            v["head"] = sha256_hex(rewritten[n - 1].as_bytes()).into();
        }
        v["prev"] = sha256_hex(rewritten[i - 1].as_bytes()).into();
        rewritten[i] = reseal(v);
    }
    write_lines(&w.path("rewritten.jsonl"), &rewritten);
    let chain_only = w.shroud(&["audit", "verify", "rewritten.jsonl"]);
    assert_eq!(
        code(&chain_only),
        0,
        "the forger's chain is intact: {}",
        chain_only.err()
    );
    let f = verify("rewritten.jsonl");
    assert_eq!(code(&f), 1, "{}{}", f.out(), f.err());
    assert!(
        f.err()
            .contains("does not verify with transit/audit: the file was rewritten"),
        "{}",
        f.err()
    );

    // Rewritten from scratch without signatures.
    let scratch: Vec<String> = rewritten
        .iter()
        .filter(|l| !l.contains("\"chain_signature\""))
        .cloned()
        .collect();
    let mut scratch = scratch;
    for i in 0..scratch.len() {
        let mut v: serde_json::Value = serde_json::from_str(&scratch[i]).unwrap();
        v["seq"] = (i as u64).into();
        v["prev"] = if i == 0 {
            "0".repeat(64)
        } else {
            sha256_hex(scratch[i - 1].as_bytes())
        }
        .into();
        scratch[i] = reseal(v);
    }
    write_lines(&w.path("scratch.jsonl"), &scratch);
    let f = verify("scratch.jsonl");
    assert_eq!(code(&f), 1, "{}{}", f.out(), f.err());
    assert!(
        f.err()
            .contains("no chain signature: the file was rewritten from scratch"),
        "{}",
        f.err()
    );

    // Truncated: the final signature cut off, and cut right after a periodic one.
    let end = (0..records.len() - 1)
        .rev()
        .find(|i| events[*i] != "chain_signature")
        .unwrap();
    assert!(sigs[0] < end, "{events:?}");
    write_lines(&w.path("cut.jsonl"), &records[..=end]);
    let f = verify("cut.jsonl");
    assert_eq!(code(&f), 1, "{}{}", f.out(), f.err());
    assert!(
        f.err().contains("after the last chain signature"),
        "{}",
        f.err()
    );
    write_lines(&w.path("cut2.jsonl"), &records[..=sigs[0]]);
    let f = verify("cut2.jsonl");
    assert_eq!(code(&f), 1, "{}{}", f.out(), f.err());
    assert!(
        f.err().contains("is not the final one written at exit"),
        "{}",
        f.err()
    );
    // Without --config both still pass the chain check: only the signatures tell.
    for file in ["cut.jsonl", "cut2.jsonl"] {
        let f = w.shroud(&["audit", "verify", file]);
        assert_eq!(code(&f), 0, "{file}: {}", f.err());
    }
}

/// Issue 22 item 1: records appended after the final signature, the chain
/// re-sealed (no key needed), then a copy of that final signature with only
/// `seq` and `prev` changed. A signature binds the position it covers, so the
/// copy is refused, and records after the last signature are reported unsigned.
#[test]
fn a_copied_chain_signature_does_not_sign_records_appended_after_it() {
    let w = World::new();
    let base = std::fs::read_to_string(w.path("shroud.toml"))
        .unwrap()
        .replace("[output]\n", "[output]\nrequire_tmpfs = false\n");
    std::fs::write(
        w.path("audited.toml"),
        format!("{base}\n[audit]\npath = \"audit.jsonl\"\nsign_key = \"audit\"\n"),
    )
    .unwrap();
    let run = w.shroud(&[
        "run",
        "--config",
        "audited.toml",
        "--tty",
        "never",
        "--",
        "true",
    ]);
    assert_eq!(code(&run), 0, "{}{}", run.out(), run.err());
    let records = lines(&w.path("audit.jsonl"));
    let final_sig = records.last().unwrap().clone();
    assert!(final_sig.contains("\"final\":true"), "{final_sig}");
    let verify = |file: &str| w.shroud(&["audit", "verify", "--config", "audited.toml", file]);
    let ok = verify("audit.jsonl");
    assert_eq!(code(&ok), 0, "{}{}", ok.out(), ok.err());

    // Two forged records after the final signature, the chain re-sealed.
    let fetch = records
        .iter()
        .find(|l| l.contains("\"event\":\"fetch\""))
        .expect("a fetch record")
        .clone();
    let mut forged = records.clone();
    forged.push(fetch.replace("\"secret\":\"api\"", "\"secret\":\"forged\""));
    forged.push(fetch);
    let first_forged = records.len();
    reseal_from(&mut forged, first_forged);
    write_lines(&w.path("appended.jsonl"), &forged);
    let f = verify("appended.jsonl");
    assert_eq!(code(&f), 1, "{}{}", f.out(), f.err());
    assert!(
        f.err().contains("2 records after the last chain signature"),
        "{}",
        f.err()
    );
    let chain_only = w.shroud(&["audit", "verify", "appended.jsonl"]);
    assert_eq!(code(&chain_only), 0, "{}", chain_only.err());
    assert!(
        chain_only
            .out()
            .contains("the last 2 records not covered by a chain signature"),
        "{}",
        chain_only.out()
    );

    // ... then the final signature copied after them, only seq/prev changed.
    forged.push(final_sig);
    let copy_at = forged.len() - 1;
    reseal_from(&mut forged, copy_at);
    write_lines(&w.path("copied.jsonl"), &forged);
    for f in [
        verify("copied.jsonl"),
        w.shroud(&["audit", "verify", "copied.jsonl"]),
    ] {
        assert_eq!(code(&f), 1, "{}{}", f.out(), f.err());
        assert!(
            f.err().contains(&format!(
                "line {}: the chain signature covers {} records but follows {}",
                forged.len(),
                first_forged - 1,
                forged.len() - 1
            )),
            "{}",
            f.err()
        );
    }

    // ... or with records and head moved along too: Vault refuses the signature.
    let n = forged.len();
    let mut v: serde_json::Value = serde_json::from_str(&forged[n - 1]).unwrap();
    v["records"] = ((n - 1) as u64).into();
    v["head"] = sha256_hex(forged[n - 2].as_bytes()).into();
    forged[n - 1] = reseal(v);
    write_lines(&w.path("moved.jsonl"), &forged);
    let f = verify("moved.jsonl");
    assert_eq!(code(&f), 1, "{}{}", f.out(), f.err());
    assert!(
        f.err()
            .contains(&format!("the chain signature at line {n} does not verify")),
        "{}",
        f.err()
    );
}

/// Issue 22 item 14: a deploy job that only verifies has no secrets. A
/// configuration with only `[vault]`, `[auth]` and `[output]` serves `verify`,
/// `scan --config --sign` (values from `--secret-file`) and `audit verify
/// --config`; `agent` and `run` say why they need a secret.
#[test]
fn a_configuration_without_secrets_serves_verify_scan_and_audit_verify() {
    let w = World::new();
    let base = std::fs::read_to_string(w.path("shroud.toml")).unwrap();
    let cut = base
        .find("[[secret]]")
        .expect("the base config has a secret");
    let reach_only = format!(
        "{}[audit]\npath = \"audit.jsonl\"\nsign_key = \"audit\"\n",
        &base[..cut]
    );
    std::fs::write(w.path("reach.toml"), &reach_only).unwrap();
    let checked = w.shroud(&["config", "validate", "reach.toml"]);
    assert_eq!(code(&checked), 0, "{}", checked.err());
    assert!(checked.out().contains("ok (0 secrets"), "{}", checked.out());

    write(&w.path("dist/app.bin"), "the application\n");
    write(&w.path("known"), "a-known-secret-value-5e6f\n");
    let signed = w.shroud(&[
        "scan",
        "--config",
        "reach.toml",
        "--secret-file",
        "known",
        "--sign",
        "ci-artifacts",
        "--ledger",
        "ledger.jsonl",
        "dist",
    ]);
    assert_eq!(code(&signed), 0, "{}{}", signed.out(), signed.err());
    let verified = w.shroud(&[
        "verify",
        "--config",
        "reach.toml",
        "--ledger",
        "ledger.jsonl",
        "dist/app.bin",
    ]);
    assert_eq!(code(&verified), 0, "{}{}", verified.out(), verified.err());

    // An audit trail signed by `run` with a full configuration, checked with
    // the secret-less one.
    let full = base.replace("[output]\n", "[output]\nrequire_tmpfs = false\n")
        + "\n[audit]\npath = \"audit.jsonl\"\nsign_key = \"audit\"\n";
    std::fs::write(w.path("full.toml"), full).unwrap();
    let run = w.shroud(&[
        "run",
        "--config",
        "full.toml",
        "--tty",
        "never",
        "--",
        "true",
    ]);
    assert_eq!(code(&run), 0, "{}{}", run.out(), run.err());
    let audit = w.shroud(&["audit", "verify", "--config", "reach.toml", "audit.jsonl"]);
    assert_eq!(code(&audit), 0, "{}{}", audit.out(), audit.err());
    assert!(
        audit.out().contains("verified, the last one final"),
        "{}",
        audit.out()
    );

    for cmd in [
        &["agent", "--config", "reach.toml"][..],
        &["run", "--config", "reach.toml", "--", "true"][..],
    ] {
        let f = w.shroud(cmd);
        assert_eq!(code(&f), 64, "{cmd:?}: {}", f.err());
        assert!(
            f.err().contains("is required to run the agent") && f.err().contains("needs none"),
            "{cmd:?}: {}",
            f.err()
        );
    }
}
