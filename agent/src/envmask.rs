//! Masking the values of the environment variables whose names say they hold
//! a credential (`[redact] env` / `--mask-env`), as Buildkite does by name, plus
//! the password of every URL-valued variable (`DATABASE_URL`).

use std::ffi::OsString;

use shroud_redactor::detect::DetectorSet;
use shroud_redactor::BuildReport;

use zeroize::Zeroizing;

use crate::live::{LiveSet, Registered};

/// The default name patterns.
pub const DEFAULT_PATTERNS: &str = "*_PASSWORD,*_SECRET,*_TOKEN,*_KEY,*_PRIVATE_KEY,*_ACCESS_KEY,*_SECRET_KEY,*_CREDENTIALS,*_CONNECTION_STRING,*_DSN";

/// The detectors on by default.
pub const DEFAULT_DETECT: &str = "all";

/// A pattern list that is not one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvPatternError {
    /// A pattern with a character other than letters, digits, `_`, `*`, `?`.
    #[error(
        "--mask-env / [redact] env: pattern {0:?} may hold only letters, digits, '_', '*' and '?'"
    )]
    Invalid(String),
}

/// Glob patterns over variable names (`*` any run, `?` one character),
/// matched ASCII case-insensitively.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvPatterns(Vec<String>);

impl EnvPatterns {
    /// A comma-separated list; empty turns the feature off.
    pub fn parse(list: &str) -> Result<EnvPatterns, EnvPatternError> {
        let mut out = Vec::new();
        for p in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if !p
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_*?".contains(&b))
            {
                return Err(EnvPatternError::Invalid(p.to_string()));
            }
            out.push(p.to_ascii_uppercase());
        }
        Ok(EnvPatterns(out))
    }

    /// No pattern.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `name` matches a pattern.
    pub fn matches(&self, name: &str) -> bool {
        let name = name.to_ascii_uppercase();
        self.0.iter().any(|p| glob(p.as_bytes(), name.as_bytes()))
    }
}

/// A value under a credential-like name that is a setting, not a secret:
/// a short lowercase word or number (`CACHE_KEY=default`, `SORT_KEY=id`,
/// `RETRY_TOKEN=3`) or a file path (`TLS_KEY=/etc/tls/tls.key`). Masking it
/// would blank that word or path everywhere in the output.
fn looks_like_a_setting(v: &[u8]) -> bool {
    let word =
        v.len() < 16 && (v.iter().all(u8::is_ascii_lowercase) || v.iter().all(u8::is_ascii_digit));
    let path = (v.starts_with(b"/") || v.starts_with(b"./") || v.starts_with(b"~/"))
        && !v.iter().any(u8::is_ascii_whitespace);
    word || path
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Some((b'?', rest)) => !s.is_empty() && glob(rest, &s[1..]),
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

/// What the names of the environment's values start with in the set.
const ENV_PREFIX: &str = "env:";

/// The values the patterns select from the environment, for the set: each
/// with the name it is registered under, and the variables they came from.
#[derive(Default)]
pub struct EnvValues {
    /// (name registered under, value, index into `names`).
    values: Vec<(String, Zeroizing<Vec<u8>>, usize)>,
    names: Vec<String>,
}

impl std::fmt::Debug for EnvValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvValues")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl EnvValues {
    /// (name registered under, value) pairs.
    pub fn pairs(&self) -> Vec<(&str, &[u8])> {
        self.values
            .iter()
            .map(|(n, v, _)| (n.as_str(), v.as_slice()))
            .collect()
    }

    /// The variables that contributed a value.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// The value of every variable in `vars` whose name matches, and the password
/// of every URL-valued variable, at least `min_length` bytes long.
pub fn collect(
    patterns: &EnvPatterns,
    vars: impl IntoIterator<Item = (OsString, OsString)>,
    min_length: usize,
) -> EnvValues {
    let mut found = EnvValues::default();
    if patterns.is_empty() {
        return found;
    }
    let urls = DetectorSet::parse("url-password", b"[REDACTED]").expect("a known detector");
    for (name, value) in vars {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("SHROUD_") {
            continue;
        }
        let value = Zeroizing::new(value.into_encoded_bytes());
        let (before, var) = (found.values.len(), found.names.len());
        if patterns.matches(&name) && !looks_like_a_setting(&value) && value.len() >= min_length {
            found.values.push((
                format!("{ENV_PREFIX}{name}"),
                Zeroizing::new(value.to_vec()),
                var,
            ));
        }
        for d in urls.find_all(&value) {
            if d.range.len() >= min_length {
                found.values.push((
                    format!("{ENV_PREFIX}{name}:url-password"),
                    Zeroizing::new(value[d.range].to_vec()),
                    var,
                ));
            }
        }
        if found.values.len() > before {
            found.names.push(name);
        }
    }
    found
}

/// Leaves out of a build report the values [`collect`] found: the warnings
/// are about the secrets' sources, as when the environment's values were
/// registered after the first build.
pub fn unreport(report: &mut BuildReport) {
    for names in [
        &mut report.too_short,
        &mut report.empty,
        &mut report.ordinary,
    ] {
        names.retain(|n| !n.starts_with(ENV_PREFIX));
    }
}

/// Registers with `live` (one rebuild of its set) what [`collect`] finds;
/// returns the names of the variables whose values were added.
pub fn register(
    live: &LiveSet,
    patterns: &EnvPatterns,
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Vec<String> {
    let found = collect(patterns, vars, live.min_length());
    let mut added = vec![false; found.names.len()];
    for (answer, (_, _, var)) in live
        .register_all(&found.pairs())
        .into_iter()
        .zip(&found.values)
    {
        added[*var] |= answer == Registered::Added;
    }
    found
        .names
        .into_iter()
        .zip(added)
        .filter_map(|(name, added)| added.then_some(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_patterns_catch_the_usual_names() {
        let p = EnvPatterns::parse(DEFAULT_PATTERNS).unwrap();
        for name in [
            "AWS_SECRET_ACCESS_KEY",
            "GITHUB_TOKEN",
            "NPM_TOKEN",
            "db_password",
            "SENTRY_DSN",
        ] {
            assert!(p.matches(name), "{name}");
        }
        for name in ["PATH", "HOME", "TOKENIZER", "KEYBOARD"] {
            assert!(!p.matches(name), "{name}");
        }
        assert!(EnvPatterns::parse("").unwrap().is_empty());
        assert!(EnvPatterns::parse("A-B").is_err());
    }

    #[test]
    fn registers_matching_values_and_url_passwords() {
        let live = LiveSet::new(shroud_redactor::SecretSet::empty());
        let p = EnvPatterns::parse(DEFAULT_PATTERNS).unwrap();
        let vars = [
            ("DEPLOY_TOKEN", "tok-0123456789"),
            ("SHORT_TOKEN", "abc"),
            ("CACHE_KEY", "defaultcache"),
            ("TLS_KEY", "/etc/tls/tls.key"),
            ("DATABASE_URL", "postgres://app:pg-s3cret-pw@db/app"),
            ("HOME", "/root/not-a-secret"),
        ]
        .map(|(n, v)| (OsString::from(n), OsString::from(v)));
        let names = register(&live, &p, vars);
        assert_eq!(names, vec!["DEPLOY_TOKEN", "DATABASE_URL"]);
        let mut r = shroud_redactor::Redactor::new(live.load());
        let mut out = Vec::new();
        r.write(b"tok-0123456789 pg-s3cret-pw /root/not-a-secret", &mut out);
        r.finish(&mut out);
        assert_eq!(out, b"[REDACTED] [REDACTED] /root/not-a-secret");
    }

    #[test]
    fn collects_values_for_the_first_build() {
        let p = EnvPatterns::parse(DEFAULT_PATTERNS).unwrap();
        let vars = [
            ("DEPLOY_TOKEN", "tok-0123456789"),
            ("SHORT_TOKEN", "abcdef"),
            ("SHROUD_TOKEN", "shroud-own-token-1"),
            ("DATABASE_URL", "postgres://app:pg-s3cret-pw@db/app"),
            ("PATH", "/usr/bin"),
        ]
        .map(|(n, v)| (OsString::from(n), OsString::from(v)));
        let found = collect(&p, vars, 8);
        assert_eq!(found.names(), ["DEPLOY_TOKEN", "DATABASE_URL"]);
        let pairs: Vec<(&str, &[u8])> = found.pairs();
        assert_eq!(
            pairs,
            vec![
                ("env:DEPLOY_TOKEN", b"tok-0123456789".as_slice()),
                ("env:DATABASE_URL:url-password", b"pg-s3cret-pw".as_slice()),
            ]
        );
        // What they add to a build report is not reported.
        let mut report = shroud_redactor::BuildReport {
            ordinary: vec!["env:DEPLOY_TOKEN".into(), "db".into()],
            ..Default::default()
        };
        unreport(&mut report);
        assert_eq!(report.ordinary, ["db"]);
    }
}
