//! The request path an HTTP gateway forwards: dot segments resolved, empty
//! segments dropped, and refused when it leaves the upstream's base path or
//! hides a dot segment in an encoding the upstream might decode.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

/// Why a request path is refused (the client gets 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Not an absolute path (`*`, empty).
    #[error("the request target is not an absolute path")]
    NotAbsolute,
    /// A `..` climbs above the root.
    #[error("the path climbs above the root")]
    AboveRoot,
    /// A segment decodes (percent, `\`, `;` parameters) to a dot segment.
    #[error("the path hides a dot segment in an encoding")]
    HiddenDot,
    /// The normalised path is not under the base path.
    #[error("the path is outside the upstream's base path")]
    Outside,
}

/// `path` with `.`/`..` resolved and `//` collapsed, if it is under `base`
/// (no trailing `/`; empty for the root). Segments are kept as the client
/// encoded them. A path that is already normal (nearly every one) is
/// borrowed, not rebuilt.
pub fn normalise<'a>(path: &'a str, base: &str) -> Result<Cow<'a, str>, PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if is_normal(path) {
        if path.split('/').any(hides_dot) {
            return Err(PathError::HiddenDot);
        }
        return under(path, base)
            .then_some(Cow::Borrowed(path))
            .ok_or(PathError::Outside);
    }
    rebuild(path, base).map(Cow::Owned)
}

/// [`normalise`] the long way: every segment looked at and the path built
/// anew.
fn rebuild(path: &str, base: &str) -> Result<String, PathError> {
    let mut kept: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                kept.pop().ok_or(PathError::AboveRoot)?;
            }
            _ => {
                if hides_dot(seg) {
                    return Err(PathError::HiddenDot);
                }
                kept.push(seg);
            }
        }
    }
    let mut out = String::with_capacity(path.len());
    for seg in &kept {
        out.push('/');
        out.push_str(seg);
    }
    let last_is_dir = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    if out.is_empty() || last_is_dir {
        out.push('/');
    }
    if under(&out, base) {
        Ok(out)
    } else {
        Err(PathError::Outside)
    }
}

/// Whether normalising would leave `path` (absolute) as it is: no `.` or
/// `..` segment, no empty one but the root's or a trailing `/`'s.
fn is_normal(path: &str) -> bool {
    let inner = path[1..].strip_suffix('/').unwrap_or(&path[1..]);
    path == "/" || inner.split('/').all(|seg| !matches!(seg, "" | "." | ".."))
}

/// Whether the normalised `path` is `base` or below it.
fn under(path: &str, base: &str) -> bool {
    base.is_empty()
        || path == base
        || path
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Whether a segment that is not literally `.` or `..` becomes one for an
/// upstream that decodes percent escapes, treats `\` as `/`, or drops `;`
/// parameters (servlet containers).
fn hides_dot(seg: &str) -> bool {
    if !seg.bytes().any(|b| matches!(b, b'%' | b'\\' | b';')) {
        // Read as it is: `.` and `..` themselves are resolved, not hidden.
        return false;
    }
    let decoded = percent_decode_str(seg).collect::<Vec<u8>>();
    decoded
        .split(|b| *b == b'/' || *b == b'\\')
        .map(|piece| piece.split(|b| *b == b';').next().unwrap_or(&[]))
        .any(|piece| piece == b"." || piece == b"..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_and_empty_ones_are_resolved() {
        assert_eq!(normalise("/v2/a/./b//c", "/v2").unwrap(), "/v2/a/b/c");
        assert_eq!(normalise("/v2/a/../b/", "/v2").unwrap(), "/v2/b/");
        assert_eq!(normalise("/v2", "/v2").unwrap(), "/v2");
        assert_eq!(normalise("//", "").unwrap(), "/");
        assert_eq!(normalise("/a/%2Fb", "").unwrap(), "/a/%2Fb");
        assert_eq!(normalise("/a/..x/b", "").unwrap(), "/a/..x/b");
    }

    #[test]
    fn a_normal_path_is_borrowed_and_the_same_as_rebuilt() {
        assert!(matches!(normalise("/v2/a/b", "/v2"), Ok(Cow::Borrowed(_))));
        assert!(matches!(normalise("/v2/a/", "/v2"), Ok(Cow::Borrowed(_))));
        assert!(matches!(normalise("/", ""), Ok(Cow::Borrowed(_))));
        assert!(matches!(normalise("/v2//a", "/v2"), Ok(Cow::Owned(_))));
        // Every path of up to four segments from these: the shortcut agrees
        // with rebuilding, result and error alike.
        let segs = ["", ".", "..", "v2", "a", "%2e%2e", "a;b", "..;x", "v2x"];
        let mut paths = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = paths
                .iter()
                .flat_map(|p| segs.iter().map(move |s| format!("{p}/{s}")))
                .collect();
            paths.extend(longer);
        }
        for p in paths.iter().filter(|p| !p.is_empty()) {
            for base in ["", "/v2"] {
                assert_eq!(
                    normalise(p, base).map(Cow::into_owned),
                    rebuild(p, base),
                    "{p} under {base:?}"
                );
            }
        }
    }

    #[test]
    fn escapes_from_the_base_path_are_refused() {
        for (p, e) in [
            ("/v2/../admin", PathError::Outside),
            ("/v2x/users", PathError::Outside),
            ("/v1/users", PathError::Outside),
            ("//v2/..//admin", PathError::Outside),
            ("/v2/%2e%2e/admin", PathError::HiddenDot),
            ("/v2/%2E%2E/admin", PathError::HiddenDot),
            ("/v2/.%2e/admin", PathError::HiddenDot),
            ("/v2/..%2fadmin", PathError::HiddenDot),
            ("/v2/..%5cadmin", PathError::HiddenDot),
            ("/v2/..\\admin", PathError::HiddenDot),
            ("/v2/..;x/admin", PathError::HiddenDot),
            ("/v2/../..", PathError::AboveRoot),
            ("*", PathError::NotAbsolute),
        ] {
            assert_eq!(normalise(p, "/v2"), Err(e), "{p}");
        }
    }
}
