//! Registry credentials from a Docker config JSON (the `.dockerconfigjson` of an
//! image pull secret), read again on every registry round trip that needs them so
//! a rotated secret mount is picked up without a restart.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use base64::Engine as _;
use serde::Deserialize;
use zeroize::Zeroizing;

/// A user name and password (or token) for one registry.
#[derive(Clone)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or token; wiped on drop.
    pub password: Zeroizing<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// The value of a `Basic` `Authorization` header.
    pub fn basic(&self) -> Zeroizing<String> {
        let raw = Zeroizing::new(format!("{}:{}", self.username, self.password.as_str()));
        Zeroizing::new(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
        ))
    }
}

/// The Docker config JSON cannot be used. Never carries a credential.
#[derive(Debug, thiserror::Error)]
pub enum CredsError {
    /// The file could not be read.
    #[error("cannot read registry credentials {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a Docker config JSON.
    #[error("registry credentials {path} are not a Docker config JSON (`{{\"auths\": {{…}}}}`): {reason}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong (never the content).
        reason: String,
    },
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default, deserialize_with = "secret")]
    auth: Option<Zeroizing<String>>,
    username: Option<String>,
    #[serde(default, deserialize_with = "secret")]
    password: Option<Zeroizing<String>>,
}

/// An optional string moved straight into a [`Zeroizing`] (no copy left behind).
pub(super) fn secret<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Zeroizing<String>>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(Zeroizing::new))
}

/// Reads `path` and returns the credentials for `registry` (as named in image
/// references, `docker.io` for Docker Hub), if any.
pub fn lookup(path: &Path, registry: &str) -> Result<Option<Credentials>, CredsError> {
    let shown = path.display().to_string();
    let text = Zeroizing::new(std::fs::read(path).map_err(|source| CredsError::Read {
        path: shown.clone(),
        source,
    })?);
    let format = |reason: String| CredsError::Format {
        path: shown.clone(),
        reason,
    };
    // serde_json's own message can quote a value: name only the place.
    let cfg: DockerConfig = serde_json::from_slice(&text).map_err(|e| {
        format(format!(
            "{:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?;
    let Some((key, entry)) = cfg
        .auths
        .iter()
        .find(|(k, _)| normalize(k) == normalize(registry))
    else {
        return Ok(None);
    };
    if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
        return Ok(Some(Credentials {
            username: username.clone(),
            password: password.clone(),
        }));
    }
    let auth = entry.auth.as_ref().ok_or_else(|| {
        format(format!(
            "`auths.{key}` has neither `auth` nor `username`/`password`"
        ))
    })?;
    let decoded = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| format(format!("`auths.{key}.auth` is not base64")))?,
    );
    let text = std::str::from_utf8(&decoded)
        .map_err(|_| format(format!("`auths.{key}.auth` is not UTF-8")))?;
    let (user, pass) = text.split_once(':').ok_or_else(|| {
        format(format!(
            "`auths.{key}.auth` is not base64 of `user:password`"
        ))
    })?;
    Ok(Some(Credentials {
        username: user.to_string(),
        password: Zeroizing::new(pass.to_string()),
    }))
}

/// `https://index.docker.io/v1/` → `docker.io`; `https://r.example:5000/x` → `r.example:5000`.
fn normalize(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io",
        h => h,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn auth_and_username_password_forms() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("alice:s3cr:et");
        let f = file(&format!(
            r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{b64}"}},
            "127.0.0.1:5000": {{"username": "bob", "password": "pw"}}}}}}"#
        ));
        let c = lookup(f.path(), "docker.io").unwrap().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("alice", "s3cr:et")
        );
        let c = lookup(f.path(), "127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(c.username, "bob");
        assert!(!format!("{c:?}").contains("pw"));
        assert!(lookup(f.path(), "ghcr.io").unwrap().is_none());
    }

    #[test]
    fn errors_name_the_file_not_the_content() {
        let f = file(r#"{"auths": {"r": {"auth": "hunter2-not-base64!"}}}"#);
        let e = lookup(f.path(), "r").unwrap_err().to_string();
        assert!(
            e.contains(&f.path().display().to_string()) && e.contains("auths.r.auth"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
        let f = file(r#"{"auths": {"r": {"auth": "hunter2"#);
        let e = lookup(f.path(), "r").unwrap_err().to_string();
        assert!(!e.contains("hunter2") && e.contains("line 1"), "{e}");
    }
}
