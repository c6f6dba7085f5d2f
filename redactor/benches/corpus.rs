//! Precision of the credential detectors on text no one here wrote: the
//! documentation, manual pages and installed source of this machine's Debian
//! packages (`cargo bench -p shroud-redactor --bench corpus`, run by
//! scripts/test; a bench target so it is built optimised: 430 MB in seconds).
//!
//! Every mask is reported (file, detector, masked length, never the bytes).
//! Each one was read and is either on [`REVIEWED`], a credential published as
//! an example (an RFC's sample header, a library's sample JWT or key), or it
//! counts as false. The default set must make at most one false mask per
//! 100 MB of text; the run exits 1 otherwise, or when a corpus root is missing.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use shroud_redactor::detect::DetectorSet;

/// Masks that were read and are example credentials: (path suffix, detector,
/// what it is).
const REVIEWED: &[(&str, &str, &str)] = &[
    (
        "docker-registry/spec/auth/jwt.md.gz",
        "jwt",
        "the token specification's sample JWTs",
    ),
    (
        "docker-registry/spec/auth/token.md.gz",
        "jwt",
        "the token specification's sample JWT",
    ),
    (
        "docker-registry/spec/auth/jwt.md.gz",
        "authorization",
        "`Authorization: Bearer` + the sample JWT",
    ),
    (
        "docker-registry/spec/auth/token.md.gz",
        "authorization",
        "`Authorization: Bearer` + the sample JWT",
    ),
    (
        "docker-registry/configuration.md.gz",
        "authorization",
        "RFC 7617's `Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==`",
    ),
    ("python3-jwt/changelog.gz", "jwt", "PyJWT's sample token"),
    ("python3-jwt/README.rst", "jwt", "PyJWT's sample token"),
    (
        "PyJWT-2.6.0.egg-info/PKG-INFO",
        "jwt",
        "PyJWT's sample token",
    ),
    (
        "libxmlsec1-dev/examples/rsakey.pem",
        "private-key",
        "xmlsec's example RSA key",
    ),
    (
        "python3-pip/html/topics/authentication.md",
        "url-password",
        "pip's example of a percent-encoded password",
    ),
    (
        "oauthlib/oauth2/rfc6749/clients/base.py",
        "authorization",
        "RFC 6749/6750 sample Bearer, Basic and MAC headers",
    ),
    (
        "oauthlib/oauth2/rfc6749/tokens.py",
        "authorization",
        "RFC 6750 sample Bearer header",
    ),
    (
        "oauthlib/openid/connect/core/endpoints/userinfo.py",
        "authorization",
        "OpenID Connect Core's sample Bearer header",
    ),
    (
        "oauthlib/oauth1/rfc5849/endpoints/request_token.py",
        "authorization",
        "RFC 5849 sample OAuth header",
    ),
    (
        "oauthlib/oauth1/rfc5849/endpoints/access_token.py",
        "authorization",
        "RFC 5849 sample OAuth header",
    ),
];

/// Where the corpus is read from; a missing root fails the test.
const ROOTS: &[&str] = &[
    "/usr/share/doc",
    "/usr/share/man",
    "/usr/share/perl",
    "/usr/lib/python3",
];

fn files(root: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(t) = e.file_type() else { continue };
        if t.is_dir() {
            files(&e.path(), out);
        } else if t.is_file() {
            out.push(e.path());
        }
    }
}

fn text_of(path: &Path) -> Option<Vec<u8>> {
    let raw = std::fs::read(path).ok()?;
    let data = if path.extension().is_some_and(|e| e == "gz") {
        let mut d = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut d)
            .ok()?;
        d
    } else {
        raw
    };
    // Text only: compiled files and images are not what a log shows.
    (!data[..data.len().min(8192)].contains(&0)).then_some(data)
}

fn main() {
    let mut paths = Vec::new();
    for root in ROOTS {
        let mut found: Vec<PathBuf> = Vec::new();
        let pattern = Path::new(root);
        if !pattern.is_dir() {
            eprintln!("corpus root {root} is missing: install the Debian packages (scripts/test --prereqs)");
            std::process::exit(1);
        }
        files(pattern, &mut found);
        paths.extend(found);
    }
    // The other Python versions' libraries too.
    for e in std::fs::read_dir("/usr/lib").unwrap().flatten() {
        let name = e.file_name();
        if name.to_string_lossy().starts_with("python3.") {
            files(&e.path(), &mut paths);
        }
    }
    let set = DetectorSet::all(b"[REDACTED]");
    let mut bytes = 0u64;
    let mut masks = Vec::new();
    for path in &paths {
        let Some(text) = text_of(path) else { continue };
        bytes += text.len() as u64;
        for d in set.find_all(&text) {
            masks.push((path.display().to_string(), d.name, d.range.len()));
        }
    }
    let mut false_masks = 0;
    for (file, name, len) in &masks {
        let reviewed = REVIEWED
            .iter()
            .find(|(suffix, n, _)| file.ends_with(suffix) && n == name);
        match reviewed {
            Some((_, _, what)) => {
                println!("mask: {file}: {name}, {len} bytes (example credential: {what})")
            }
            None => {
                false_masks += 1;
                println!("mask: {file}: {name}, {len} bytes (FALSE: not reviewed as a credential)");
            }
        }
    }
    let mb = bytes as f64 / 1e6;
    println!(
        "corpus: {} files, {mb:.1} MB of text, {} masks: {} example credentials, {false_masks} false ({:.2} per 100 MB)",
        paths.len(),
        masks.len(),
        masks.len() - false_masks,
        false_masks as f64 * 100.0 / mb
    );
    if mb < 100.0 {
        eprintln!("the corpus is too small to measure ({mb:.1} MB)");
        std::process::exit(1);
    }
    let allowed = (mb / 100.0).floor() as usize;
    if false_masks > allowed {
        eprintln!("{false_masks} false masks in {mb:.1} MB (at most {allowed})");
        std::process::exit(1);
    }
}
