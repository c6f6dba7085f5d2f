//! The real programs people print values with, through `shroud redact`,
//! `shroud exec` over pipes and `shroud exec` under a real terminal (issue 21).
//! Each case writes a random secret (with the characters that make its producer
//! escape: `'`, `"`, `\`, `$`, space, `&`, `<`, a control character where the
//! producer takes one) and runs the producer on it. The output must not reveal
//! a run of 12 consecutive bytes of the secret, nor the whole of it, in any
//! decoded view (tests/support/decoded.rs: shell quoting, backslash escapes,
//! entities, doubled quotes, percent, colours, wrapped base64 and hex).
//!
//! Every case first runs its producer without shroud and checks that the leak
//! check finds the secret there: a check that cannot fail proves nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shroud_e2e::decoded::leaks;
use shroud_e2e::paced::{run_paced, ALL_VIAS};
use shroud_e2e::*;

/// The piece length the engine guarantees (`--piece-length` default).
const PIECE: usize = 12;
/// A mask in no decoder's alphabet (not base64, hex, a quote or an escape).
const MASK: &str = ",,,,";

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The characters that force escaping, for producers that take them all.
const SPECIALS: &[u8] = b"'\"\\$ &<";

/// A fresh random generator, its seed printed so a failure can be replayed.
fn rng() -> (StdRng, u64) {
    let seed = std::env::var("SHROUD_PRODUCERS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    (StdRng::seed_from_u64(seed), seed)
}

/// `len` random alphanumerics with each of `specials` at a random place (not
/// first or last, where some producers treat a byte differently).
fn secret(rng: &mut StdRng, len: usize, specials: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len)
        .map(|_| ALNUM[rng.gen_range(0..ALNUM.len())])
        .collect();
    let mut spots: Vec<usize> = (1..len - 1).collect();
    for &s in specials {
        let i = spots.remove(rng.gen_range(0..spots.len()));
        v[i] = s;
    }
    v
}

/// One producer run: its secret files, the shell script that prints, and the
/// byte strings that must not show.
struct Case {
    name: &'static str,
    dir: tempfile::TempDir,
    files: Vec<PathBuf>,
    script: String,
    targets: Vec<(&'static str, Vec<u8>)>,
    seed: u64,
}

impl Case {
    fn new(name: &'static str, seed: u64) -> Case {
        Case {
            name,
            dir: tempfile::tempdir().unwrap(),
            files: Vec::new(),
            script: String::new(),
            targets: Vec::new(),
            seed,
        }
    }

    /// Writes a secret file shroud is given; returns its path.
    fn secret_file(&mut self, name: &str, value: &[u8]) -> String {
        let p = secret_file(self.dir.path(), name, value);
        self.files.push(p.clone());
        p.display().to_string()
    }

    /// A file only the producer reads (a program, a template).
    fn file(&self, name: &str, content: &[u8]) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p.display().to_string()
    }

    fn target(mut self, name: &'static str, value: &[u8]) -> Case {
        self.targets.push((name, value.to_vec()));
        self
    }

    fn script(mut self, script: impl Into<String>) -> Case {
        self.script = script.into();
        self
    }

    fn leaks(&self, output: &[u8]) -> Vec<(String, String, usize)> {
        let targets: Vec<(&str, &[u8])> = self
            .targets
            .iter()
            .map(|(n, v)| (*n, v.as_slice()))
            .collect();
        leaks(output, &targets, PIECE)
    }

    /// The producer without shroud reveals the targets; through each path into
    /// shroud it reveals none.
    fn check(self) {
        let script = self.dir.path().join("producer.sh");
        std::fs::write(&script, &self.script).unwrap();
        let direct = run_with_input(
            Command::new("sh").arg(&script),
            b"",
            Duration::from_secs(120),
        );
        assert!(
            direct.status.success(),
            "{}: the producer failed: {}",
            self.name,
            direct.err()
        );
        assert!(
            !self.leaks(&direct.stdout).is_empty(),
            "{}: the leak check finds nothing in the producer's own output, so it proves nothing: {}",
            self.name,
            String::from_utf8_lossy(&direct.stdout)
        );
        let mut flags = vec!["--mask".to_string(), MASK.to_string()];
        for f in &self.files {
            flags.push("--secret-file".into());
            flags.push(f.display().to_string());
        }
        let mut failures = Vec::new();
        for via in ALL_VIAS {
            let out = run_paced(via, &flags, &script).join(&b'\n');
            assert!(!out.is_empty(), "{}: {via:?} printed nothing", self.name);
            let found = self.leaks(&out);
            if let Some((target, view, at)) = found.first() {
                failures.push(format!(
                    "{via:?}: {} leaks, first bytes {at}..{} of {target} in view `{view}`; output: {:?}",
                    found.len(),
                    at + PIECE,
                    String::from_utf8_lossy(&out)
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{} (seed {}; replay with SHROUD_PRODUCERS_SEED):\n{}",
            self.name,
            self.seed,
            failures.join("\n")
        );
    }
}

/// A case whose producer prints one random secret with `specials` in it.
fn value_case(
    name: &'static str,
    len: usize,
    specials: &[u8],
    script: impl FnOnce(&mut Case, &str) -> String,
) -> Case {
    let (mut rng, seed) = rng();
    let v = secret(&mut rng, len, specials);
    let mut case = Case::new(name, seed);
    let f = case.secret_file("secret", &v);
    let s = script(&mut case, &f);
    case.script(s).target("the secret", &v)
}

// --- shells -------------------------------------------------------------

#[test]
fn bash_xtrace_of_a_value_with_a_quote() {
    value_case("bash -x", 28, b"'\"\\$ &<\x01", |_, f| {
        format!("bash -xc 'v=$(cat {f}); true \"$v\"' 2>&1\n")
    })
    .check();
}

#[test]
fn bash_at_q_expansion() {
    value_case("${v@Q}", 28, b"'\"\\$ &<\x01", |_, f| {
        format!("bash -c 'v=$(cat {f}); printf \"%s\\n\" \"${{v@Q}}\"'\n")
    })
    .check();
}

#[test]
fn bash_printf_q() {
    value_case("printf %q", 28, b"'\"\\$ &<\x01", |_, f| {
        format!("bash -c 'printf \"%q\\n\" \"$(cat {f})\"'\n")
    })
    .check();
}

#[test]
fn bash_declare_p() {
    value_case("declare -p", 28, SPECIALS, |_, f| {
        format!("bash -c 'v=$(cat {f}); declare -p v'\n")
    })
    .check();
}

#[test]
fn printf_truncation_to_32_bytes() {
    value_case("printf %.32s", 48, SPECIALS, |_, f| {
        format!("printf 'token=%.32s\\n' \"$(cat {f})\"\n")
    })
    .check();
}

#[test]
fn grep_colour_on_part_of_the_token() {
    let (mut rng, seed) = rng();
    let v = secret(&mut rng, 40, b"");
    let mut case = Case::new("grep --color=always", seed);
    let f = case.secret_file("secret", &v);
    let part = String::from_utf8(v[14..20].to_vec()).unwrap();
    case.script(format!("grep --color=always '{part}' {f}\n"))
        .target("the secret", &v)
        .check();
}

#[test]
fn multi_line_value_with_short_lines() {
    let (mut rng, seed) = rng();
    let lines: Vec<Vec<u8>> = (0..8).map(|_| secret(&mut rng, 5, b"")).collect();
    let v = lines.join(&b'\n');
    let mut case = Case::new("multi-line value", seed);
    let f = case.secret_file("secret", &v);
    case.script(format!("echo begin; cat {f}; echo; echo end\n"))
        .target("the secret", &v)
        .check();
}

// --- debug printing ---------------------------------------------------------

#[test]
fn python_repr_of_a_dict_and_shlex_quote() {
    value_case("python repr, shlex.quote", 28, b"'\"\\$ &<\x1b", |_, f| {
        format!(
            "python3 -c 'import shlex, sys; v = open(sys.argv[1]).read(); print({{\"password\": v}}); print(shlex.quote(v))' {f}\n"
        )
    })
    .check();
}

#[test]
fn node_console_log_of_an_object() {
    value_case("node console.log", 28, b"'\"\\$ &<\x1b", |_, f| {
        format!(
            "node -e 'console.log({{password: require(\"fs\").readFileSync(process.argv[1], \"utf8\")}})' {f}\n"
        )
    })
    .check();
}

#[test]
fn php_var_export_and_htmlspecialchars() {
    value_case("php var_export, htmlspecialchars", 28, SPECIALS, |case, f| {
        let php = case.file(
            "p.php",
            b"<?php $v = file_get_contents($argv[1]); var_export(['password' => $v]); echo \"\\n\", htmlspecialchars($v), \"\\n\";\n",
        );
        format!("php {php} {f}\n")
    })
    .check();
}

#[test]
fn perl_data_dumper() {
    value_case("perl Data::Dumper", 28, SPECIALS, |_, f| {
        format!("perl -MData::Dumper -e 'local $/; open my $h, \"<\", $ARGV[0]; my $v = <$h>; print Dumper({{password => $v}})' {f}\n")
    })
    .check();
}

const GO_TEMPLATE: &str = r#"package main

import (
	"html/template"
	"os"
)

func main() {
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		panic(err)
	}
	t := template.Must(template.New("p").Parse("<input value=\"{{.}}\">{{.}}\n"))
	if err := t.Execute(os.Stdout, string(raw)); err != nil {
		panic(err)
	}
}
"#;

#[test]
fn go_html_template() {
    let go = require_tool("go", "scripts/test --prereqs");
    value_case("go html/template", 28, b"'\"\\$ &<+", |case, f| {
        let src = case.file("t.go", GO_TEMPLATE.as_bytes());
        let bin = case.dir.path().join("t");
        let built = run_with_input(
            Command::new(&go).args(["build", "-o"]).arg(&bin).arg(&src),
            b"",
            Duration::from_secs(300),
        );
        assert!(built.status.success(), "go build: {}", built.err());
        format!("{} {f}\n", bin.display())
    })
    .check();
}

const JAVA: &str = r#"
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.Map;

public class P {
    public static void main(String[] args) throws Exception {
        byte[] raw = Files.readAllBytes(Path.of(args[0]));
        String v = new String(raw, StandardCharsets.UTF_8);
        System.out.println(new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(Map.of("password", v)));
        System.out.println(Base64.getMimeEncoder().encodeToString(raw));
    }
}
"#;

const JAVA_JARS: &[&str] = &[
    "/usr/share/java/jackson-databind.jar",
    "/usr/share/java/jackson-core.jar",
    "/usr/share/java/jackson-annotations.jar",
];

#[test]
fn java_jackson_and_mime_base64() {
    for jar in JAVA_JARS {
        assert!(
            Path::new(jar).is_file(),
            "prerequisite {jar} not found; apt-get install libjackson2-databind-java (scripts/test --prereqs does)"
        );
    }
    let javac = require_tool("javac", "scripts/test --prereqs");
    let cp = JAVA_JARS.join(":");
    value_case(
        "java Jackson, MIME base64",
        90,
        b"'\"\\$ &<\x1b",
        |case, f| {
            let src = case.file("P.java", JAVA.as_bytes());
            let classes = case.dir.path().join("classes");
            let built = run_with_input(
                Command::new(&javac)
                    .args(["-cp", &cp, "-d"])
                    .arg(&classes)
                    .arg(&src),
                b"",
                Duration::from_secs(300),
            );
            assert!(built.status.success(), "javac: {}", built.err());
            format!("java -cp {}:{cp} P {f}\n", classes.display())
        },
    )
    .check();
}

// --- wrapped base64 -----------------------------------------------------

#[test]
fn coreutils_base64_at_76_and_64_columns() {
    value_case("base64, base64 -w 64", 150, b"'\"\\$ &<\x01", |_, f| {
        format!("base64 {f}; base64 -w 64 {f}\n")
    })
    .check();
}

#[test]
fn openssl_base64() {
    value_case("openssl base64", 150, b"'\"\\$ &<\x01", |_, f| {
        format!("openssl base64 -in {f}\n")
    })
    .check();
}

#[test]
fn python_base64_encodebytes() {
    value_case("python base64.encodebytes", 150, b"'\"\\$ &<\x01", |_, f| {
        format!("python3 -c 'import base64, sys; sys.stdout.write(base64.encodebytes(open(sys.argv[1], \"rb\").read()).decode())' {f}\n")
    })
    .check();
}

// --- quote doubling -------------------------------------------------------

#[test]
fn yaml_single_quoted() {
    // `: ` makes Psych single-quote the value; a `'` inside is then doubled.
    let (mut rng, seed) = rng();
    let mut v = secret(&mut rng, 26, b"''&<$");
    v.splice(13..13, *b": ");
    let mut case = Case::new("ruby YAML single-quoted", seed);
    let f = case.secret_file("secret", &v);
    case.script(format!(
        "ruby -ryaml -e 'puts({{\"password\" => File.read(ARGV[0])}}.to_yaml)' {f}\n"
    ))
    .target("the secret", &v)
    .check();
}

#[test]
fn sql_literal() {
    value_case("sqlite quote()", 28, b"''\"\\$ &<", |_, f| {
        format!("sqlite3 :memory: \"select 'insert into t values (' || quote(cast(readfile('{f}') as text)) || ');'\"\n")
    })
    .check();
}

#[test]
fn csv_field() {
    value_case("python csv", 28, b"\"\",'\\$ &<", |_, f| {
        format!("python3 -c 'import csv, sys; csv.writer(sys.stdout).writerow([\"user\", open(sys.argv[1]).read()])' {f}\n")
    })
    .check();
}

// --- keys and documents ---------------------------------------------------------

fn openssl(args: &[&str]) -> Vec<u8> {
    let done = run_with_input(
        Command::new(require_tool("openssl", "apt-get install openssl")).args(args),
        b"",
        Duration::from_secs(120),
    );
    assert!(done.status.success(), "openssl {args:?}: {}", done.err());
    done.stdout
}

/// A new RSA key: (PKCS#8 PEM, PKCS#8 DER, PKCS#1 DER).
fn rsa_key(dir: &Path) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let pem = openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
    ]);
    let f = dir.join("k.pem");
    std::fs::write(&f, &pem).unwrap();
    let f = f.to_str().unwrap();
    let der8 = openssl(&["pkey", "-in", f, "-outform", "DER"]);
    let der1 = openssl(&["rsa", "-in", f, "-traditional", "-outform", "DER"]);
    std::fs::remove_file(f).unwrap();
    (pem, der8, der1)
}

#[test]
fn pem_key_rewrapped_at_76_columns() {
    let (_, seed) = rng();
    let mut case = Case::new("PEM body re-wrapped at 76", seed);
    let (pem, der8, der1) = rsa_key(case.dir.path());
    let f = case.secret_file("tls.key", &pem);
    case.script(format!(
        "grep -v -- ----- {f} | tr -d '\\n' | fold -w 76; echo\n"
    ))
    .target("the key (PKCS#8 DER)", &der8)
    .target("the key (PKCS#1 DER)", &der1)
    .check();
}

#[test]
fn pkcs1_form_of_a_pkcs8_key() {
    let (_, seed) = rng();
    let mut case = Case::new("openssl rsa -traditional", seed);
    let (pem, der8, der1) = rsa_key(case.dir.path());
    let f = case.secret_file("tls.key", &pem);
    case.script(format!(
        "openssl rsa -in {f} -traditional 2>&1; openssl pkey -in {f} -traditional\n"
    ))
    .target("the key (PKCS#8 DER)", &der8)
    .target("the key (PKCS#1 DER)", &der1)
    .check();
}

/// A Google service-account key as the console hands it out.
fn service_account(rng: &mut StdRng, pem: &[u8]) -> (Vec<u8>, String) {
    let id: String = (0..40)
        .map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)]))
        .collect();
    let doc = serde_json::json!({
        "type": "service_account",
        "project_id": "shroud-e2e",
        "private_key_id": id,
        "private_key": String::from_utf8(pem.to_vec()).unwrap(),
        "client_email": "ci@shroud-e2e.iam.gserviceaccount.com",
        "client_id": "104729817360425196283",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
    });
    (serde_json::to_vec_pretty(&doc).unwrap(), id)
}

#[test]
fn jq_field_of_a_service_account_key() {
    let (mut rng, seed) = rng();
    let mut case = Case::new("jq -r .private_key_id", seed);
    let (pem, _, _) = rsa_key(case.dir.path());
    let (doc, id) = service_account(&mut rng, &pem);
    let f = case.secret_file("sa.json", &doc);
    case.script(format!("echo \"key id: $(jq -r .private_key_id {f})\"\n"))
        .target("private_key_id", id.as_bytes())
        .check();
}

#[test]
fn jq_compact_reserialisation_of_a_service_account_key() {
    let (mut rng, seed) = rng();
    let mut case = Case::new("jq -c", seed);
    let (pem, der8, _) = rsa_key(case.dir.path());
    let (doc, id) = service_account(&mut rng, &pem);
    let f = case.secret_file("sa.json", &doc);
    case.script(format!("jq -c . {f}\n"))
        .target("private_key_id", id.as_bytes())
        .target("the key (PKCS#8 DER)", &der8)
        .check();
}
