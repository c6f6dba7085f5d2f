//! Every detector against every way a stream can be cut: one generated
//! credential per anchor of every family (valid checksums included), in
//! random surrounding text, split at every offset into two writes, and cut
//! into random chunks with idle flushes between some of them.

use std::sync::Arc;

use base64::Engine as _;
use proptest::prelude::*;

use super::{github, Detect, DetectorSet, Passed, FAMILIES};

const MASK: &[u8] = b"[REDACTED]";

/// A generated credential: its family, the text around it on its line, and
/// the bytes that must never show.
struct Sample {
    family: &'static str,
    head: String,
    secret: String,
    tail: String,
}

impl Sample {
    fn new(family: &'static str, head: &str, secret: &str, tail: &str) -> Sample {
        Sample {
            family,
            head: head.into(),
            secret: secret.into(),
            tail: tail.into(),
        }
    }

    fn text(&self) -> String {
        format!("{}{}{}", self.head, self.secret, self.tail)
    }

    /// The text as the stage writes it (a private key: each body line).
    fn masked(&self) -> String {
        let mask = format!("[REDACTED:{}]", self.family);
        let secret = self
            .secret
            .split('\n')
            .map(|line| if line.is_empty() { "" } else { &mask })
            .collect::<Vec<_>>()
            .join("\n");
        format!("{}{secret}{}", self.head, self.tail)
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

/// One sample for every anchor of every family.
fn samples() -> Vec<Sample> {
    let mut all = Vec::new();
    let entropy = "Q8rT2vW5yZ1bC4dF7gH0jK3mN6pS9u";
    let sum = github::checksum(entropy.as_bytes());
    for p in ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"] {
        all.push(Sample::new(
            "github-token",
            "",
            &format!("{p}{entropy}{sum}"),
            "",
        ));
    }
    let pat = format!("github_pat_11ABCDEFG0a1B2c3D4e5F6_{}x", "Zq".repeat(29));
    all.push(Sample::new("github-token", "token ", &pat, ""));
    all.push(Sample::new(
        "npm-token",
        "_authToken=",
        &format!("npm_{entropy}{sum}"),
        "",
    ));
    for p in [
        "glpat-", "gloas-", "gldt-", "glrt-", "glcbt-", "glptt-", "glft-", "glimt-", "glagent-",
        "glsoat-", "glffct-",
    ] {
        let t = format!("{p}9xYzAbCdEfGh1234_-ij");
        all.push(Sample::new("gitlab-token", "PRIVATE-TOKEN: ", &t, ""));
    }
    for p in [
        "AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AIPA", "ANPA", "ANVA", "APKA", "AROA",
    ] {
        let t = format!("{p}QWERTYUIOPASDF23");
        all.push(Sample::new("aws-access-key-id", "id=", &t, ""));
    }
    let secret = "Xk2/9fJq+7LmN0pQrS3tUvWx4yZ5aB6cD7eF8gH9";
    for head in [
        "aws_secret_access_key = ",
        "AWS_SECRET_ACCESS_KEY=",
        "{\"SecretAccessKey\": \"",
        "secretAccessKey: ",
        "--aws-secret-access-key=",
    ] {
        let tail = if head.ends_with('"') { "\"}" } else { "" };
        all.push(Sample::new("aws-secret-key", head, secret, tail));
    }
    for p in [
        "xoxb-",
        "xoxp-",
        "xoxa-",
        "xoxr-",
        "xoxe-",
        "xoxs-",
        "xoxe.xoxp-",
        "xapp-",
    ] {
        let t = format!("{p}2048-4096-Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss");
        all.push(Sample::new("slack-token", "SLACK=", &t, ""));
    }
    for p in ["sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_"] {
        let t = format!("{p}4eC39HqLyjWDarjtT1zdp7dc9Q");
        all.push(Sample::new("stripe-key", "key: ", &t, ""));
    }
    all.push(Sample::new(
        "google-api-key",
        "key=",
        "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
        "",
    ));
    let pypi = format!("pypi-AgEIcHlwaS5vcmc{}", "Qm9vdHN0cmFw_-".repeat(5));
    all.push(Sample::new("pypi-token", "password = ", &pypi, ""));
    let jwt = format!(
        "{}.{}.{}",
        b64(r#"{"alg":"RS256","kid":"k1"}"#),
        b64(r#"{"sub":"ci","aud":"vault"}"#),
        "c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"
    );
    all.push(Sample::new("jwt", "id_token: ", &jwt, ""));
    all.push(Sample::new(
        "private-key",
        "-----BEGIN PRIVATE KEY-----",
        "\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n-----END PRIVATE KEY-----",
        "",
    ));
    all.push(Sample::new(
        "url-password",
        "DATABASE_URL=postgres://app:",
        "Pg-s3cret-4711",
        "@db.internal/app",
    ));
    for head in [
        "> Authorization: Bearer ",
        "authorization: token ",
        "AUTHORIZATION=Basic ",
        "> Proxy-Authorization: Basic ",
    ] {
        all.push(Sample::new(
            "authorization",
            head,
            "dDBrM24tYWJjZGVmLTAxMjM0NTY3ODk=",
            "",
        ));
    }
    all
}

/// Runs `chunks` through a fresh stage, flushing (an idle pause) after the
/// chunks marked `true`.
fn run(set: &Arc<DetectorSet>, chunks: &[(&[u8], bool)]) -> String {
    let mut d = Detect::new(Arc::clone(set));
    let mut all = Vec::new();
    let mut out = Vec::new();
    for &(c, pause) in chunks {
        out.clear();
        match d.write(c, &mut out) {
            Passed::Input(r) => all.extend_from_slice(&c[r]),
            Passed::Out => all.extend_from_slice(&out),
            Passed::OutThen(r) => {
                all.extend_from_slice(&out);
                all.extend_from_slice(&c[r]);
            }
        }
        if pause {
            out.clear();
            d.flush(&mut out);
            all.extend_from_slice(&out);
        }
    }
    out.clear();
    d.finish(&mut out);
    all.extend_from_slice(&out);
    String::from_utf8(all).expect("the stage keeps UTF-8 whole here")
}

/// Whether 4 consecutive bytes of `secret` show in `out`, other than those
/// within its anchor (a pause may show a piece of an anchor, not yet a
/// credential) or those the expected output has anyway (a private key's
/// header).
fn shows_a_piece(out: &str, secret: &str, expected: &str) -> bool {
    let anchor = FAMILIES
        .iter()
        .flat_map(|f| f.anchors)
        .filter(|a| secret.starts_with(*a))
        .map(|a| a.len())
        .max()
        .unwrap_or(0);
    let seen = |hay: &str, w: &[u8]| hay.as_bytes().windows(w.len()).any(|o| o == w);
    let bytes = secret.as_bytes();
    (anchor.saturating_sub(3)..bytes.len().saturating_sub(3))
        .map(|i| &bytes[i..i + 4])
        .any(|w| !seen(expected, w) && seen(out, w))
}

#[test]
fn every_anchor_of_every_family_has_a_sample() {
    let samples = samples();
    for family in FAMILIES {
        for anchor in family.anchors {
            assert!(
                samples
                    .iter()
                    .any(|s| s.family == family.name && s.text().contains(anchor)),
                "no sample for {} anchor {anchor:?}",
                family.name
            );
        }
    }
}

#[test]
fn every_sample_is_masked_alone() {
    let set = Arc::new(DetectorSet::all(MASK));
    for s in samples() {
        let text = s.text();
        assert_eq!(
            run(&set, &[(text.as_bytes(), false)]),
            s.masked(),
            "{}",
            s.family
        );
    }
}

/// Words that look like the start of an anchor (the stage holds them) and
/// plain ones.
const WORDS: &[&str] = &[
    "the", "a", "A", "AK", "gh", "gl", "x", "xo", "e", "ey", "-", "--", ":", ":/", "Proxy-", "sk_",
    "pypi", "AIz", "aws_", "Auth", "value", "0", "é", "\t",
];

fn words() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(WORDS), 0..6).prop_map(|w| w.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Every sample, between random words, cut at every offset into two
    /// writes: the same output as one write, the credential masked.
    #[test]
    fn every_credential_split_at_every_offset_is_masked(before in words(), after in words()) {
        let set = Arc::new(DetectorSet::all(MASK));
        for s in samples() {
            let text = format!("{before} {}\n{after}\n", s.text());
            let expected = format!("{before} {}\n{after}\n", s.masked());
            let bytes = text.as_bytes();
            for cut in 0..=bytes.len() {
                let (x, y) = bytes.split_at(cut);
                let out = run(&set, &[(x, false), (y, false)]);
                prop_assert_eq!(&out, &expected, "{} cut at {}", s.family, cut);
            }
        }
    }

    /// Every sample in random chunks with idle flushes between some: the
    /// credential is masked and no piece of it shows.
    #[test]
    fn every_credential_in_random_chunks_with_pauses_is_masked(
        before in words(),
        after in words(),
        cuts in proptest::collection::vec((1usize..24, any::<bool>()), 1..40),
    ) {
        let set = Arc::new(DetectorSet::all(MASK));
        for s in samples() {
            let text = format!("{before} {}\n{after}\n", s.text());
            let expected = format!("{before} {}\n{after}\n", s.masked());
            let bytes = text.as_bytes();
            let mut chunks = Vec::new();
            let mut at = 0;
            for &(len, pause) in cuts.iter().cycle() {
                if at == bytes.len() {
                    break;
                }
                let end = (at + len).min(bytes.len());
                chunks.push((&bytes[at..end], pause));
                at = end;
            }
            let out = run(&set, &chunks);
            let mask = format!("[REDACTED:{}]", s.family);
            prop_assert!(out.contains(&mask), "{} not masked: {}", s.family, out);
            prop_assert!(!shows_a_piece(&out, &s.secret, &expected), "{} shows: {}", s.family, out);
        }
    }
}
