//! The request path an HTTP gateway forwards: dot segments resolved, empty
//! segments dropped, and refused when it leaves the upstream's base path or
//! hides a dot segment in an encoding the upstream might decode.

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
/// encoded them.
pub fn normalise(path: &str, base: &str) -> Result<String, PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
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
    let inside = base.is_empty()
        || out == base
        || out
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'));
    if inside {
        Ok(out)
    } else {
        Err(PathError::Outside)
    }
}

/// Whether a segment that is not literally `.` or `..` becomes one for an
/// upstream that decodes percent escapes, treats `\` as `/`, or drops `;`
/// parameters (servlet containers).
fn hides_dot(seg: &str) -> bool {
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
