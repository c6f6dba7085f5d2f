//! Where `redact`, `exec` and `scan` read secret values from: `--secret-file`
//! (one value per file) and `--secrets-dir` (every regular file in the tree, see
//! [`walk`], plus the agent's `.shroud/values` redaction set). Each value read
//! from a file also contributes the values [`crate::derive`] finds in it, and is
//! assessed ([`shroud_redactor::quality`]) for the low-entropy warning.

pub mod walk;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use shroud_redactor::quality::{assess, Verdict, Weakness};
use shroud_redactor::{BuildReport, Lengths, SecretSet, SecretSetBuilder};
use zeroize::Zeroizing;

use crate::contract::{read_regular, Links, OpenError, ValuesFile, ValuesFileError, VALUES_FILE};
use walk::Skipped;

/// Why secret values could not be loaded. Names the file, never its content.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A secret file or directory could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// `--secrets-dir` is not a directory.
    #[error("{path} is not a directory")]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// The values file is not a regular file (a FIFO, a link, a directory
    /// planted in its place).
    #[error(transparent)]
    NotRegular(OpenError),
    /// The values file is malformed.
    #[error("invalid values file {path}")]
    Values {
        /// The values file.
        path: PathBuf,
        /// What is wrong with it.
        source: ValuesFileError,
    },
}

/// What to read secret values from.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// Files holding one value each.
    pub files: Vec<PathBuf>,
    /// A directory of value files and the agent's `.shroud/values`.
    pub dir: Option<PathBuf>,
}

/// What loading found, besides the set itself.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The values file's generation, when the directory had one.
    pub generation: Option<u64>,
    /// Names of short or empty values, for warnings.
    pub report: BuildReport,
}

impl Sources {
    /// True when no source was given.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.dir.is_none()
    }

    /// Reads every source and builds the set.
    pub fn load(&self, lengths: Lengths) -> Result<(SecretSet, Loaded), SourceError> {
        Ok(self.read(lengths.min)?.build(lengths, std::iter::empty()))
    }

    /// Reads every value the sources hold, and the values derived from them
    /// (leaves of at least `min_length` bytes), without building a set (for
    /// callers that add values of their own, such as recently retired ones).
    pub fn read(&self, min_length: usize) -> Result<Values, SourceError> {
        let mut values = Values::default();
        for path in &self.files {
            let value = read_value(path)?;
            values.add_file(display_name(path), value, min_length);
        }
        if let Some(dir) = &self.dir {
            (values.generation, values.retain) = add_dir(dir, &mut values, min_length)?;
        }
        Ok(values)
    }
}

/// Named secret values read from the sources. Zeroized on drop; `Debug` shows
/// names only.
#[derive(Default)]
pub struct Values {
    /// The values file's generation, when the directory had one.
    pub generation: Option<u64>,
    /// The agent's retention window, when the values file carries it.
    pub retain: Option<std::time::Duration>,
    /// (name, value) pairs in source order, each file's derived values after it.
    pub values: Vec<(String, Zeroizing<Vec<u8>>)>,
    /// Files of the directory not read, and why.
    pub skipped: Vec<Skipped>,
    /// Names of values read from files whose pieces are likely in ordinary text.
    pub weak: Vec<(String, Weakness)>,
}

impl std::fmt::Debug for Values {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Values")
            .field("generation", &self.generation)
            .field(
                "names",
                &self.values.iter().map(|v| &v.0).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Values {
    /// Adds a value read from a file, what it derives, and its assessment.
    fn add_file(&mut self, name: String, value: Zeroizing<Vec<u8>>, min_length: usize) {
        if value.len() >= min_length {
            if let Verdict::Weak(why) = assess(&value) {
                self.weak.push((name.clone(), why));
            }
        }
        let derived = crate::derive::derive(&name, &value, min_length);
        self.values.push((name, value));
        self.values.extend(derived);
    }

    /// Builds the set from these values plus `extra` (name, value) pairs.
    pub fn build<'a>(
        &self,
        lengths: Lengths,
        extra: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> (SecretSet, Loaded) {
        let mut builder = SecretSetBuilder::new().lengths(lengths);
        for (name, value) in &self.values {
            builder.add(name.clone(), value);
        }
        for (name, value) in extra {
            builder.add(name, value);
        }
        let (set, report) = builder.build();
        (
            set,
            Loaded {
                generation: self.generation,
                report,
            },
        )
    }
}

fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn read_err(path: &Path) -> impl FnOnce(io::Error) -> SourceError + '_ {
    move |source| SourceError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads one value file, stripping one trailing newline (`\n` or `\r\n`).
/// A `--secret-file` is the operator's choice and read as it is (a pipe
/// from a process substitution included).
pub fn read_value(path: &Path) -> Result<Zeroizing<Vec<u8>>, SourceError> {
    let mut value = Zeroizing::new(fs::read(path).map_err(read_err(path))?);
    strip_newline(&mut value);
    Ok(value)
}

fn strip_newline(value: &mut Vec<u8>) {
    if value.ends_with(b"\n") {
        value.pop();
        if value.ends_with(b"\r") {
            value.pop();
        }
    }
}

/// An [`OpenError`] as the [`SourceError`] for reading `path`.
fn open_err(e: OpenError) -> SourceError {
    match e {
        OpenError::Open { path, source } => SourceError::Read { path, source },
        planted @ OpenError::NotRegular { .. } => SourceError::NotRegular(planted),
    }
}

/// Adds every file of the tree at `dir` ([`walk::list`]) and the values file.
/// Returns its generation and retention window.
fn add_dir(
    dir: &Path,
    values: &mut Values,
    min_length: usize,
) -> Result<(Option<u64>, Option<std::time::Duration>), SourceError> {
    let meta = fs::metadata(dir).map_err(read_err(dir))?;
    if !meta.is_dir() {
        return Err(SourceError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    let listing = walk::list(dir).map_err(read_err(dir))?;
    values.skipped.extend(listing.skipped);
    for (name, path) in listing.files {
        match walk::read(&path) {
            Ok(Some(mut value)) => {
                strip_newline(&mut value);
                values.add_file(name, value, min_length);
            }
            // Removed between listing and reading (a rotation): not an error.
            Ok(None) => {}
            Err(reason) => values.skipped.push(Skipped { path, reason }),
        }
    }
    let values_path = dir.join(VALUES_FILE);
    match read_regular(&values_path, Links::Refuse) {
        Ok(bytes) => {
            let mut file = ValuesFile::parse(&bytes).map_err(|source| SourceError::Values {
                path: values_path.clone(),
                source,
            })?;
            let (generation, retain) = (file.generation, file.retain);
            // The agent published derived values with them already.
            values.values.extend(std::mem::take(&mut file.values));
            Ok((Some(generation), retain))
        }
        Err(e) if e.is_not_found() => Ok((None, None)),
        Err(e) => Err(open_err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::META_DIR;

    #[test]
    fn reads_dir_files_and_values_skipping_kubernetes_entries() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("db"), b"password-one\n").unwrap();
        fs::write(dir.path().join("..data"), b"ignored-value").unwrap();
        fs::create_dir(dir.path().join(META_DIR)).unwrap();
        let vf = ValuesFile {
            generation: 3,
            retain: None,
            values: vec![("api".into(), Zeroizing::new(b"token-two".to_vec()))],
        };
        fs::write(dir.path().join(VALUES_FILE), vf.to_bytes().as_slice()).unwrap();
        let src = Sources {
            files: vec![],
            dir: Some(dir.path().to_path_buf()),
        };
        let (set, loaded) = src.load(Lengths::default()).unwrap();
        assert_eq!(loaded.generation, Some(3));
        let m = set.find_matches(b"password-one token-two ignored-value");
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn missing_file_error_names_it() {
        let src = Sources {
            files: vec![PathBuf::from("/nonexistent/secret")],
            dir: None,
        };
        let err = src.load(Lengths::default()).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/secret"), "{err}");
    }

    #[test]
    fn documents_contribute_leaves_and_weak_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(".dockerconfigjson"),
            br#"{"auths":{"r.example":{"auth":"cm9ib3Q6eFE3dkw5bVAyd0s0clQ="}}}"#,
        )
        .unwrap();
        fs::write(dir.path().join("admin"), b"password123\n").unwrap();
        let src = Sources {
            files: vec![],
            dir: Some(dir.path().to_path_buf()),
        };
        let values = src.read(6).unwrap();
        let names: Vec<&str> = values.values.iter().map(|(n, _)| n.as_str()).collect();
        assert!(
            names.contains(&".dockerconfigjson#auths.r.example.auth.password"),
            "{names:?}"
        );
        assert_eq!(
            values.weak,
            [("admin".to_string(), Weakness::Words)],
            "the weak value is named, the document is not weak"
        );
        let (set, _) = values.build(Lengths::default(), std::iter::empty());
        // The password is only in the document base64-encoded with its user.
        assert!(!set
            .find_matches(b"login robot / xQ7vL9mP2wK4rT ok")
            .is_empty());
        assert!(!format!("{values:?}").contains("xQ7vL9mP2wK4rT"));
    }
}
