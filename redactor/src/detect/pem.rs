//! PEM private key blocks (RFC 7468 §10 `PRIVATE KEY`, §11 `ENCRYPTED PRIVATE
//! KEY`; the legacy `RSA`/`EC`/`DSA PRIVATE KEY` of OpenSSL; `OPENSSH PRIVATE
//! KEY`; RFC 4880's `PGP PRIVATE KEY BLOCK`). After the header every line is
//! masked up to and including the END line, whatever the line width (re-wrapped
//! keys, a JSON string with `\n` escapes all on one line).

use super::{Ctx, Family, Verdict};

pub(crate) const FAMILY: Family = Family {
    name: "private-key",
    anchors: &["-----BEGIN "],
    // Not the dashes: a rule of dashes would hit at every byte.
    scan: &["-BEGIN "],
    examine,
    partial: |_| None,
};

/// The longest label between `BEGIN ` and the closing dashes.
const MAX_LABEL: usize = 40;

fn examine(c: &Ctx<'_>) -> Verdict {
    if !c.anchor_exact() {
        return Verdict::No;
    }
    let label_at = c.after();
    let rest = &c.buf[label_at..];
    let n = rest
        .iter()
        .take(MAX_LABEL + 1)
        .take_while(|&&b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' ')
        .count();
    if n > MAX_LABEL {
        return Verdict::No;
    }
    if rest.len() < n + 5 {
        return if c.eof { Verdict::No } else { Verdict::More };
    }
    let label = &rest[..n];
    let is_private = label.ends_with(b"PRIVATE KEY") || label == b"PGP PRIVATE KEY BLOCK";
    if !is_private || &rest[n..n + 5] != b"-----" {
        return Verdict::No;
    }
    // A header is followed by a line end (or its escape in a string, or the
    // blank of a key re-wrapped onto one line); a quote means the header is
    // only a string constant in code.
    match rest.get(n + 5) {
        None if !c.eof => return Verdict::More,
        Some(b'\n' | b'\r' | b'\\' | b' ') => {}
        _ => return Verdict::No,
    }
    Verdict::Block {
        body: label_at + n + 5,
    }
}

/// Where the END line of a block body ends (after `-----END …-----`), if in
/// `body`.
pub(crate) fn block_end(body: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = find(&body[from..], b"-----END ") {
        let start = from + i + 9;
        let close = body[start..]
            .iter()
            .take(MAX_LABEL + 5)
            .position(|&b| b == b'-');
        if let Some(k) = close {
            if body[start + k..].starts_with(b"-----") {
                return Some(start + k + 5);
            }
        }
        from = start;
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::super::testing::found;

    #[test]
    fn private_key_blocks_but_not_certificates() {
        let key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nq83h2==\n-----END RSA PRIVATE KEY-----";
        let f = found(&format!("{key}\nafter"));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].0, "private-key");
        assert_eq!(
            f[0].1,
            "\nMIIEowIBAAKCAQEA\nq83h2==\n-----END RSA PRIVATE KEY-----"
        );
        assert!(found("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----").is_empty());
        assert!(found("START = b\"-----BEGIN OPENSSH PRIVATE KEY-----\"\nEND = 1\n").is_empty());
        let json = r#"{"key": "-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----\n"}"#;
        assert_eq!(found(json)[0].1, r"\nMIIEvQ\n-----END PRIVATE KEY-----");
    }
}
