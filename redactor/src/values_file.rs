//! The format of `<secrets-dir>/.shroud/values`, the redaction set the agent
//! publishes for `shroud exec`:
//!
//! ```text
//! shroud-values 1
//! generation 42
//! retain-ms 600000
//! secret db-password c2VjcmV0LXZhbHVl
//! secret db-password.retired b2xkLXZhbHVl
//! ```
//!
//! The first line names the format and its version. `generation` increases with
//! every publication; exec acknowledges it (see docs/ARCHITECTURE.md). An
//! optional `retain-ms N` line (after `generation`) carries the agent's `[redact]
//! retain` in milliseconds: how long a reader keeps masking a value after it left
//! the set. Files without it (written before it existed) still parse. Each
//! `secret` line holds a name (`[A-Za-z0-9._#-]+`, shown in reports; `#` joins a
//! document secret's name to the path of a value derived from it) and the value in
//! standard base64 with padding, so values may hold any bytes. Lines end with `\n`;
//! any other line is an error, so a truncated or foreign file is never half-used.

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use zeroize::Zeroizing;

use crate::set::SecretSetBuilder;

const HEADER: &str = "shroud-values 1";

/// Why a values file could not be read. Never carries file content.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValuesFileError {
    /// The first line is not `shroud-values 1`.
    #[error("not a shroud values file (expected first line `{HEADER}`)")]
    BadHeader,
    /// The file is not complete: no `generation` line.
    #[error("missing `generation` line")]
    MissingGeneration,
    /// A line is neither `generation N`, `retain-ms N` nor `secret NAME BASE64`.
    #[error("line {line}: expected `generation N`, `retain-ms N` or `secret NAME BASE64`")]
    BadLine {
        /// 1-based line number.
        line: usize,
    },
    /// A secret name has characters outside `[A-Za-z0-9._#-]`.
    #[error("line {line}: secret name must match [A-Za-z0-9._#-]+")]
    BadName {
        /// 1-based line number.
        line: usize,
    },
    /// The value is not valid base64.
    #[error("line {line}: value is not valid base64")]
    BadValue {
        /// 1-based line number.
        line: usize,
    },
}

/// A parsed values file. Values are zeroized on drop; `Debug` shows names only.
#[derive(Default)]
pub struct ValuesFile {
    /// Increases with every publication.
    pub generation: u64,
    /// How long readers keep masking a value that left the set (the agent's
    /// `[redact] retain`); `None` in files that do not say.
    pub retain: Option<Duration>,
    /// (name, value) pairs.
    pub values: Vec<(String, Zeroizing<Vec<u8>>)>,
}

impl fmt::Debug for ValuesFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValuesFile")
            .field("generation", &self.generation)
            .field("retain", &self.retain)
            .field(
                "names",
                &self.values.iter().map(|v| &v.0).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// True for secret names (`[A-Za-z0-9._-]+`), which are also file names.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// True for entry names in the file: a secret name, or one with `#`-joined
/// paths of values derived from it (`sa.json#private_key_id`).
pub fn valid_entry_name(name: &str) -> bool {
    name.split('#').all(valid_name)
}

impl ValuesFile {
    /// Parses the file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, ValuesFileError> {
        let text = std::str::from_utf8(bytes).map_err(|_| ValuesFileError::BadHeader)?;
        let mut lines = text.split_terminator('\n');
        if lines.next() != Some(HEADER) {
            return Err(ValuesFileError::BadHeader);
        }
        let mut out = ValuesFile::default();
        let mut generation = None;
        for (i, line) in lines.enumerate() {
            let line_no = i + 2;
            let mut parts = line.split(' ');
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some("generation"), Some(n), None, None) => {
                    generation = Some(
                        n.parse()
                            .map_err(|_| ValuesFileError::BadLine { line: line_no })?,
                    );
                }
                (Some("retain-ms"), Some(n), None, None) => {
                    let ms = n
                        .parse()
                        .map_err(|_| ValuesFileError::BadLine { line: line_no })?;
                    out.retain = Some(Duration::from_millis(ms));
                }
                (Some("secret"), Some(name), Some(b64), None) => {
                    if !valid_entry_name(name) {
                        return Err(ValuesFileError::BadName { line: line_no });
                    }
                    let value = Zeroizing::new(
                        STANDARD
                            .decode(b64)
                            .map_err(|_| ValuesFileError::BadValue { line: line_no })?,
                    );
                    out.values.push((name.to_string(), value));
                }
                _ => return Err(ValuesFileError::BadLine { line: line_no }),
            }
        }
        out.generation = generation.ok_or(ValuesFileError::MissingGeneration)?;
        Ok(out)
    }

    /// Serializes the file. Names must satisfy [`valid_entry_name`]; invalid
    /// characters are replaced by `_` so the file always parses.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::new());
        out.extend_from_slice(HEADER.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(format!("generation {}\n", self.generation).as_bytes());
        if let Some(retain) = self.retain {
            out.extend_from_slice(format!("retain-ms {}\n", retain.as_millis()).as_bytes());
        }
        for (name, value) in &self.values {
            let name: String = if valid_entry_name(name) {
                name.clone()
            } else {
                let n: String = name
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || "._#-".contains(c) {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                if n.is_empty() {
                    "_".into()
                } else {
                    n
                }
            };
            out.extend_from_slice(b"secret ");
            out.extend_from_slice(name.as_bytes());
            out.push(b' ');
            let encoded = Zeroizing::new(STANDARD.encode(value.as_slice()));
            out.extend_from_slice(encoded.as_bytes());
            out.push(b'\n');
        }
        out
    }

    /// Adds every value to `builder`.
    pub fn add_to(&self, builder: &mut SecretSetBuilder) {
        for (name, value) in &self.values {
            builder.add(name.clone(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_arbitrary_bytes() {
        let f = ValuesFile {
            generation: 7,
            retain: Some(Duration::from_millis(2500)),
            values: vec![
                ("a".into(), Zeroizing::new(b"\x00\xff\n secret".to_vec())),
                ("b.retired".into(), Zeroizing::new(b"x".to_vec())),
                ("sa.json#key#pkcs1".into(), Zeroizing::new(b"y".to_vec())),
            ],
        };
        let parsed = ValuesFile::parse(&f.to_bytes()).unwrap();
        assert_eq!(parsed.values[2].0, "sa.json#key#pkcs1");
        assert_eq!(parsed.generation, 7);
        assert_eq!(parsed.retain, Some(Duration::from_millis(2500)));
        assert_eq!(parsed.values.len(), 3);
        assert_eq!(parsed.values[0].1.as_slice(), b"\x00\xff\n secret");
        assert!(!format!("{parsed:?}").contains("secret\""));
    }

    #[test]
    fn a_file_without_retention_still_parses() {
        let f = ValuesFile::parse(b"shroud-values 1\ngeneration 3\nsecret a eA==\n").unwrap();
        assert_eq!((f.generation, f.retain, f.values.len()), (3, None, 1));
        assert_eq!(
            ValuesFile::parse(b"shroud-values 1\ngeneration 3\nretain-ms soon\n").unwrap_err(),
            ValuesFileError::BadLine { line: 3 }
        );
    }

    #[test]
    fn rejects_bad_input_with_line_numbers() {
        assert_eq!(
            ValuesFile::parse(b"nope\n").unwrap_err(),
            ValuesFileError::BadHeader
        );
        assert_eq!(
            ValuesFile::parse(b"shroud-values 1\ngeneration 1\nsecret a !!!\n").unwrap_err(),
            ValuesFileError::BadValue { line: 3 }
        );
        assert_eq!(
            ValuesFile::parse(b"shroud-values 1\ngeneration 1\nsecret a/b eA==\n").unwrap_err(),
            ValuesFileError::BadName { line: 3 }
        );
        assert_eq!(
            ValuesFile::parse(b"shroud-values 1\nsecret a eA==\n").unwrap_err(),
            ValuesFileError::MissingGeneration
        );
        assert_eq!(
            ValuesFile::parse(b"shroud-values 1\ngeneration 1\nbogus\n").unwrap_err(),
            ValuesFileError::BadLine { line: 3 }
        );
    }
}
