//! Redaction under field conditions, through `shroud redact`, `shroud exec` over
//! pipes and `shroud exec` under a real terminal: values whose bytes arrive around
//! a real pause (a shell sleeping between two writes) and values as the standard
//! encoders of Python, Node, PHP, Ruby, Rust, Go and Java (Jackson, Gson) really
//! print them (.NET's, with no toolchain here, from a fixture).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use shroud_e2e::paced::*;
use shroud_e2e::*;

const MASK: &[u8] = b"[REDACTED]";
const MIN_LENGTH: usize = 6;
/// Well over the default idle interval (50 ms), so the held piece is flushed.
const PAUSE: Duration = Duration::from_millis(250);

fn flags(files: &[&Path], extra: &[&str]) -> Vec<String> {
    let mut f: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    for p in files {
        f.push("--secret-file".into());
        f.push(p.display().to_string());
    }
    f
}

fn write_script(dir: &Path, lines: &[PausedLine]) -> std::path::PathBuf {
    let script = dir.join("paced.sh");
    std::fs::write(&script, paced_script(lines, PAUSE)).unwrap();
    script
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// The issue's case, cut at many points: whatever the timing, a line is either
/// what the buffered run shows or, when the pause flushed a piece shorter than the
/// minimum length, that piece followed by the mask; never more of the value.
#[test]
fn a_pause_inside_a_value_shows_at_most_a_short_start() {
    const VALUE: &[u8] = b"Kq7vZ3xRm9TbW2pLc8NfYd4h";
    let cuts = [0, 1, 2, 3, 5, 6, 7, 12, 20, VALUE.len()];
    let dir = tempfile::tempdir().unwrap();
    let f = secret_file(dir.path(), "token", VALUE);
    let lines: Vec<PausedLine> = cuts
        .iter()
        .map(|&at| PausedLine::split(b"token=", VALUE, at))
        .collect();
    let script = write_script(dir.path(), &lines);
    for via in ALL_VIAS {
        let out = run_paced(via, &flags(&[&f], &[]), &script);
        assert_eq!(out.len(), cuts.len(), "{via:?}: {out:?}");
        let mut short_starts_shown = 0;
        for (line, &at) in out.iter().zip(&cuts) {
            let buffered = cat(&[b"token=", MASK]);
            let flushed = cat(&[b"token=", &VALUE[..at], MASK]);
            let text = String::from_utf8_lossy(line);
            if at < MIN_LENGTH && *line == flushed && at > 0 {
                short_starts_shown += 1;
            } else {
                assert_eq!(*line, buffered, "{via:?}, cut at {at}: {text}");
            }
        }
        // The pauses did flush: a run where no flush happened proves nothing.
        assert!(
            short_starts_shown > 0,
            "{via:?}: no pause flushed a held piece: {out:?}"
        );
    }
}

/// A line that ends in hex digits and pauses: the `wrap` view holds the digits
/// with the line break (the next line might continue a wrapped hex body). Five
/// digits that start the value's hex form are five bytes of it, fewer than the
/// minimum length: the line shows whole. Six are masked at the pause, but the
/// line break stays, and a continuation on the next line is masked too. (CI
/// once saw `openssl x509 -serial` lose its last digits and line break here.)
#[test]
fn a_line_ending_in_the_start_of_a_hex_form_keeps_its_line_break_at_a_pause() {
    const VALUE: &[u8] = b"Kq7vZ3xRm9TbW2pLc8NfYd4h";
    let hex = hex::encode(VALUE);
    let dir = tempfile::tempdir().unwrap();
    let f = secret_file(dir.path(), "token", VALUE);
    let line = |head: String, tail: &str| PausedLine {
        head: head.into_bytes(),
        tail: tail.as_bytes().to_vec(),
    };
    let lines = [
        line(format!("sum={}\n", &hex[..5]), "next"),
        line(format!("sum={}\n", &hex[..6]), "next"),
        line(format!("sum={}\n", &hex[..6]), &hex[6..12]),
    ];
    let script = write_script(dir.path(), &lines);
    for via in ALL_VIAS {
        let out = run_paced(via, &flags(&[&f], &[]), &script);
        let text: Vec<String> = out
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        let five = format!("sum={}", &hex[..5]);
        assert_eq!(
            text,
            [
                five.as_str(),
                "next",
                "sum=[REDACTED]",
                "next",
                "sum=[REDACTED]",
                "[REDACTED]"
            ],
            "{via:?}"
        );
    }
}

/// Strict mode never releases a possible start of a secret at a pause: every
/// line is exactly what the buffered run shows.
#[test]
fn strict_mode_shows_nothing_of_a_paused_value() {
    const VALUE: &[u8] = b"Kq7vZ3xRm9TbW2pLc8NfYd4h";
    let dir = tempfile::tempdir().unwrap();
    let f = secret_file(dir.path(), "token", VALUE);
    let lines: Vec<PausedLine> = [1, 3, 5, 9]
        .iter()
        .map(|&at| PausedLine::split(b"token=", VALUE, at))
        .collect();
    let script = write_script(dir.path(), &lines);
    for via in ALL_VIAS {
        let out = run_paced(via, &flags(&[&f], &["--strict"]), &script);
        let expected = vec![cat(&[b"token=", MASK]); lines.len()];
        assert_eq!(out, expected, "{via:?}");
    }
}

/// Overlapping and adjacent occurrences of two secrets are one mask, also when a
/// pause falls inside them.
#[test]
fn overlapping_and_adjacent_values_are_masked_as_their_union() {
    let dir = tempfile::tempdir().unwrap();
    // Random-looking values: `bbbbbbCCCCCC` would also draw the warning about
    // values that look like ordinary text, which a terminal mixes into the output.
    let a = secret_file(dir.path(), "a", b"bQ7xZ2CcK9mW");
    let b = secret_file(dir.path(), "b", b"CcK9mWd4Rt8Y");
    let overlap: &[u8] = b"bQ7xZ2CcK9mWd4Rt8Y";
    let adjacent: &[u8] = b"bQ7xZ2CcK9mWCcK9mWd4Rt8Y";
    let lines = [
        PausedLine::split(b"x ", overlap, 9),
        PausedLine::split(b"x ", adjacent, 18),
    ];
    let script = write_script(dir.path(), &lines);
    for via in ALL_VIAS {
        let out = run_paced(via, &flags(&[&a, &b], &[]), &script);
        assert_eq!(out, vec![cat(&[b"x ", MASK]); 2], "{via:?}");
    }
}

/// A value holding every character some encoder escapes: HTML-sensitive ASCII,
/// `/`, quotes, a 2-byte and a 4-byte (surrogate pair) character, U+2028, `+`,
/// backtick, space, a tab, a control character and DEL.
const SECRET: &str = "Pa<s>&w=o'r\"d/\u{fc}\u{1F600}\u{2028}+`~* x\t\u{1f}\u{7f}9Z";

/// What .NET's `System.Text.Json` (no toolchain on Debian or PyPI) prints for
/// [`SECRET`], written out by its rules (source in docs/redact.md).
const DOTNET_FIXTURE: &str = "Pa\\u003Cs\\u003E\\u0026w=o\\u0027r\\u0022d/\\u00FC\\uD83D\\uDE00\\u2028\\u002B\\u0060~* x\\t\\u001F\\u007F9Z";

/// Runs an encoder program that prints one encoded form per line.
fn forms_from(program: &str, args: &[&str]) -> Vec<Vec<u8>> {
    let done = run_with_input(
        Command::new(require_tool(program, "scripts/test --prereqs")).args(args),
        b"",
        // `go run` and `java File.java` compile first; on a loaded machine that
        // takes seconds.
        Duration::from_secs(180),
    );
    assert!(done.status.success(), "{program}: {}", done.err());
    done.stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

const PYTHON: &str = r#"
import json, sys, urllib.parse
v = open(sys.argv[1], encoding="utf-8").read()
b = v.encode()
for form in [json.dumps(v)[1:-1], urllib.parse.quote(v), urllib.parse.quote_plus(v), b.hex()]:
    sys.stdout.write(form + "\n")
"#;

const NODE: &str = r#"
const v = require("fs").readFileSync(process.argv[2], "utf8");
const forms = [JSON.stringify(v).slice(1, -1), encodeURIComponent(v), Buffer.from(v, "utf8").toString("hex")];
process.stdout.write(forms.join("\n") + "\n");
"#;

const PHP: &str = r#"
$v = file_get_contents($argv[1]);
foreach ([substr(json_encode($v), 1, -1), substr(json_encode($v, JSON_UNESCAPED_UNICODE), 1, -1),
          rawurlencode($v), urlencode($v), bin2hex($v)] as $form) { echo $form, "\n"; }
"#;

const RUBY: &str = r#"
require "json"; require "erb"; require "cgi"
v = File.read(ARGV[0], encoding: "UTF-8")
[JSON.generate(v)[1..-2], v.to_json[1..-2], ERB::Util.url_encode(v), CGI.escape(v), v.unpack1("H*")].each { |f| puts f }
"#;

/// Go's `json.Marshal` (HTML escaping on), `url.QueryEscape`, `url.PathEscape`,
/// `hex.EncodeToString` and `%X`.
const GO: &str = r#"package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
)

func main() {
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		panic(err)
	}
	v := string(raw)
	j, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	for _, form := range []string{string(j[1 : len(j)-1]), url.QueryEscape(v), url.PathEscape(v), hex.EncodeToString(raw), fmt.Sprintf("%X", raw)} {
		os.Stdout.WriteString(form + "\n")
	}
}
"#;

/// Jackson's and Gson's default string output, then `URLEncoder` and `HexFormat`.
/// The launcher compiles this single file in memory (`java Enc.java`); stdout is
/// written as UTF-8 whatever the locale.
const JAVA: &str = r#"
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;

public class Enc {
    static String inner(String json) {
        return json.substring(1, json.length() - 1);
    }

    public static void main(String[] args) throws Exception {
        byte[] raw = Files.readAllBytes(Path.of(args[0]));
        String v = new String(raw, StandardCharsets.UTF_8);
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
        for (String form : new String[] {
                inner(new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(v)),
                inner(new com.google.gson.Gson().toJson(v)),
                URLEncoder.encode(v, StandardCharsets.UTF_8),
                HexFormat.of().formatHex(raw)}) {
            out.print(form + "\n");
        }
    }
}
"#;

/// Debian's jars for [`JAVA`] (libjackson2-databind-java pulls in core and
/// annotations; libgoogle-gson-java).
const JAVA_JARS: &[&str] = &[
    "/usr/share/java/jackson-databind.jar",
    "/usr/share/java/jackson-core.jar",
    "/usr/share/java/jackson-annotations.jar",
    "/usr/share/java/gson.jar",
];

/// The classpath of [`JAVA_JARS`]; a missing jar fails the test saying which.
fn java_classpath() -> String {
    for jar in JAVA_JARS {
        assert!(
            Path::new(jar).is_file(),
            "prerequisite {jar} not found; install it with: apt-get install \
             libjackson2-databind-java libgoogle-gson-java (scripts/test --prereqs does)"
        );
    }
    JAVA_JARS.join(":")
}

/// Every encoder's default output of the secret, as `(encoder, form)`.
fn encoded_forms(dir: &Path, secret_file: &Path) -> Vec<(String, Vec<u8>)> {
    let file = secret_file.to_str().unwrap();
    let mut all = Vec::new();
    let mut add = |who: &str, forms: Vec<Vec<u8>>| {
        assert!(!forms.is_empty(), "{who} printed nothing");
        for (i, f) in forms.into_iter().enumerate() {
            all.push((format!("{who} #{i}"), f));
        }
    };
    let py = dir.join("enc.py");
    std::fs::write(&py, PYTHON).unwrap();
    add(
        "python3",
        forms_from("python3", &[py.to_str().unwrap(), file]),
    );
    let js = dir.join("enc.js");
    std::fs::write(&js, NODE).unwrap();
    add("node", forms_from("node", &[js.to_str().unwrap(), file]));
    let php = dir.join("enc.php");
    std::fs::write(&php, format!("<?php\n{PHP}")).unwrap();
    add("php", forms_from("php", &[php.to_str().unwrap(), file]));
    let rb = dir.join("enc.rb");
    std::fs::write(&rb, RUBY).unwrap();
    add("ruby", forms_from("ruby", &[rb.to_str().unwrap(), file]));
    let go = dir.join("enc.go");
    std::fs::write(&go, GO).unwrap();
    let go_forms = forms_from("go", &["run", go.to_str().unwrap(), file]);
    assert_ne!(
        go_forms[0].as_slice(),
        SECRET.as_bytes(),
        "Go escaped nothing: not json.Marshal's default output"
    );
    add("go", go_forms);
    let java = dir.join("Enc.java");
    std::fs::write(&java, JAVA).unwrap();
    let cp = java_classpath();
    let java_forms = forms_from("java", &["-cp", &cp, java.to_str().unwrap(), file]);
    for (who, form) in ["Jackson", "Gson"].iter().zip(&java_forms) {
        assert_ne!(
            form.as_slice(),
            SECRET.as_bytes(),
            "{who} escaped nothing: not its default output"
        );
    }
    add("java (Jackson, Gson, URLEncoder, HexFormat)", java_forms);
    let serde = serde_json::to_string(SECRET).unwrap();
    add(
        "serde_json",
        vec![serde.as_bytes()[1..serde.len() - 1].to_vec()],
    );
    add(
        ".NET System.Text.Json (fixture)",
        vec![DOTNET_FIXTURE.as_bytes().to_vec()],
    );
    all
}

/// Each encoder's default output of a value, printed with a pause in its middle,
/// comes out as one mask through every path into shroud.
#[test]
fn every_encoders_default_output_is_masked() {
    let dir = tempfile::tempdir().unwrap();
    let f = secret_file(dir.path(), "pw", SECRET.as_bytes());
    let forms = encoded_forms(dir.path(), &f);
    // The forms really differ: a check that passes on one form proves little.
    let mut distinct: Vec<&Vec<u8>> = forms.iter().map(|(_, f)| f).collect();
    distinct.sort();
    distinct.dedup();
    assert!(
        distinct.len() >= 10,
        "only {} distinct forms",
        distinct.len()
    );
    let lines: Vec<PausedLine> = forms
        .iter()
        .map(|(_, form)| PausedLine::split(b"value=", form, form.len() / 2))
        .collect();
    let script = write_script(dir.path(), &lines);
    for via in ALL_VIAS {
        let out = run_paced(via, &flags(&[&f], &[]), &script);
        assert_eq!(out.len(), forms.len(), "{via:?}");
        for ((who, _), line) in forms.iter().zip(&out) {
            assert!(
                *line == cat(&[b"value=", MASK]),
                "{via:?}, {who}: {}",
                String::from_utf8_lossy(line)
            );
        }
    }
}

/// `[redact] strict` in `shroud run`: the command reads the value from its
/// rendered file (real OpenBao) and prints it in two writes with a pause past the
/// idle flush. The default run shows the short start the flush released (at most
/// `min_length - 1` bytes), which proves the pause flushed; the strict run shows
/// none of it.
#[test]
fn strict_in_run_config_shows_nothing_of_a_paused_value() {
    let _s = shroud_e2e::world::serial();
    let w = shroud_e2e::world::World::new(None);
    let auth = w.approle_auth();
    let value = shroud_e2e::world::API_KEY.as_bytes();
    let cuts = [3, 5, 9];
    let mut script = String::from("v=$(cat \"$SHROUD_SECRETS_DIR/api-key\")\n");
    for at in cuts {
        script += &format!(
            "printf 'token=%s' \"$(printf %s \"$v\" | head -c {at})\"; sleep {:.3}; \
             printf '%s\\n' \"$(printf %s \"$v\" | tail -c +{})\"\n",
            PAUSE.as_secs_f64(),
            at + 1
        );
    }
    let run = |redact: &str| -> Vec<String> {
        let cfg = w.config(&auth, &format!("{}{redact}", shroud_e2e::world::KV_SECRET));
        let done = run_with_input(&mut run_script(&cfg, &script), b"", Duration::from_secs(60));
        assert!(done.status.success(), "shroud run: {}", done.err());
        assert!(!contains(&done.stdout, value), "the value was printed");
        done.stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    };
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    let flushed: Vec<String> = cuts
        .iter()
        .map(|&at| {
            let shown = if at < MIN_LENGTH { &value[..at] } else { b"" };
            text(cat(&[b"token=", shown, MASK]))
        })
        .collect();
    assert_eq!(run(""), flushed, "default run");
    let buffered = vec![text(cat(&[b"token=", MASK])); cuts.len()];
    assert_eq!(run("[redact]\nstrict = true\n"), buffered, "strict run");
}
