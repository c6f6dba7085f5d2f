//! Vault paths as they go on the wire. Each `/`-separated segment is
//! percent-encoded on its own, so a segment is exactly the text that was
//! configured (and checked by the webhook's policy): `%2e%2e`, `\`, `?` or `#`
//! cannot become a `..` segment, a separator, a query or a fragment on the way.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything except RFC 3986's unreserved characters is encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A path that cannot be sent as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Vault path `{path}` has an empty, `.` or `..` segment")]
pub struct BadPath {
    /// The path as given.
    pub path: String,
}

/// `a/b c/d` → `a/b%20c/d`. Dot segments are refused rather than encoded: the
/// URL parser would treat `%2E%2E` as `..` just the same.
pub fn encode(path: &str) -> Result<String, BadPath> {
    let trimmed = path.trim_start_matches('/');
    let mut out = String::with_capacity(trimmed.len());
    for (i, seg) in trimmed.split('/').enumerate() {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err(BadPath {
                path: path.to_string(),
            });
        }
        if i > 0 {
            out.push('/');
        }
        out.extend(utf8_percent_encode(seg, SEGMENT));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded_one_by_one() {
        assert_eq!(
            encode("secret/data/shop/db").unwrap(),
            "secret/data/shop/db"
        );
        assert_eq!(encode("/auth/k8s/login").unwrap(), "auth/k8s/login");
        assert_eq!(
            encode("secret/data/shop/%2e%2e/other").unwrap(),
            "secret/data/shop/%252e%252e/other"
        );
        assert_eq!(encode("a\\..\\b/c").unwrap(), "a%5C..%5Cb/c");
        assert_eq!(encode("a/b?x=1#f").unwrap(), "a/b%3Fx%3D1%23f");
        assert_eq!(encode("a/é").unwrap(), "a/%C3%A9");
    }

    #[test]
    fn dot_and_empty_segments_are_refused() {
        for bad in ["a/../b", "a/./b", "a//b", "a/b/", "..", ""] {
            assert!(encode(bad).is_err(), "{bad}");
        }
    }

    /// What leaves the client is what the URL parser keeps: the encoded path
    /// survives `url`'s normalisation (dot segments, backslashes) unchanged.
    #[test]
    fn the_url_parser_keeps_the_segments() {
        for p in [
            "secret/data/shop/%2e%2e/x",
            "secret/data/shop/.%2E/x",
            "a\\..\\b/c",
        ] {
            let enc = encode(p).unwrap();
            let url = format!("http://127.0.0.1:8200/v1/{enc}");
            let parsed = ureq::get(&url).request_url().unwrap();
            assert_eq!(parsed.path(), format!("/v1/{enc}"), "{p}");
        }
    }
}
