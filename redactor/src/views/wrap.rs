//! The view that joins wrapped base64, hex and PEM bodies: a line break (`\n`,
//! or a pty's `\r\n`) followed by indentation (spaces, tabs) or a comment or
//! quote prefix (`#`, `>`, `*`, `;`, `|`) is dropped when the bytes on both
//! sides are in the body alphabet (base64, base64url, hex), at any wrap width.
//! Only units made wholly of that alphabet count in this view, so ordinary
//! text lines joined here cannot make a match the raw text lacks a character
//! of (`coreutils base64`, `openssl base64`, Python `encodebytes`, Java MIME,
//! PEM re-wrapped at 76 columns, a key indented in YAML).

use std::ops::Range;

use super::{Out, Step, View};

/// The longest break read: the line break and its indentation or prefix.
const MAX_BREAK: usize = 34;

/// The view.
pub(crate) const VIEW: View = View {
    name: "wrap",
    triggers: b"\n\r",
    max_seq: MAX_BREAK,
    hold_open: false,
    step,
    accept,
    window: Some(window),
    after: Some((b'+', b'z')),
};

/// Whether `b` is in a base64 (standard or URL-safe), hex or PEM body.
#[inline(always)]
fn body(b: u8) -> bool {
    BODY[usize::from(b)]
}

/// [`body`] as a table: the window scans below test up to 22 bytes per line
/// break, one load each instead of five range and equality tests.
const BODY: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'-' | b'_');
        b += 1;
    }
    t
};

fn accept(unit: &[u8]) -> bool {
    unit.iter().all(|&b| body(b))
}

fn step(src: &[u8], at: usize) -> Step {
    if at == 0 || !body(src[at - 1]) {
        return Step::Literal;
    }
    let mut i = at + 1;
    if src[at] == b'\r' {
        match src.get(i) {
            None => return Step::Open,
            Some(b'\n') => i += 1,
            Some(_) => return Step::Literal,
        }
    }
    while i - at < MAX_BREAK {
        match src.get(i) {
            None => return Step::Open,
            Some(b' ' | b'\t' | b'#' | b'>' | b'*' | b';' | b'|') => i += 1,
            Some(&b) if body(b) => {
                return Step::Seq {
                    len: i - at,
                    out: Out::NONE,
                }
            }
            Some(_) => return Step::Literal,
        }
    }
    Step::Literal
}

/// The body bytes around a break: a unit found here is made of them, so the
/// window is the body run either side, up to a unit's length.
fn window(src: &[u8], seq: Range<usize>, max_unit: usize) -> Range<usize> {
    let reach = max_unit.saturating_sub(1);
    let back = src[..seq.start]
        .iter()
        .rev()
        .take(reach)
        .take_while(|&&b| body(b))
        .count();
    let fwd = src[seq.end..]
        .iter()
        .take(reach)
        .take_while(|&&b| body(b))
        .count();
    seq.start - back..seq.end + fwd
}

#[cfg(test)]
mod tests {
    use super::super::testing::{text, view};
    use super::*;

    /// `base64 -w 20`, `openssl base64` through a pty (`\r\n`), a body
    /// indented in YAML and quoted in a comment.
    #[test]
    fn bodies_are_joined_at_any_width() {
        assert_eq!(
            text(&VIEW, b"QUJDREVGR0hJSktMTU5P\nUFFSU1RVVldYWVo=\n."),
            "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\n."
        );
        assert_eq!(text(&VIEW, b"QUJD\r\nREVG\r\n."), "QUJDREVG\r\n.");
        assert_eq!(
            text(&VIEW, b"key: |\n    MIIEvQ\n    IBADAN\n."),
            "key: |\n    MIIEvQIBADAN\n."
        );
        assert_eq!(text(&VIEW, b"# MIIEvQ\n# IBADAN\n."), "# MIIEvQIBADAN\n.");
    }

    #[test]
    fn only_body_bytes_are_joined() {
        assert_eq!(text(&VIEW, b"done.\nnext\n."), "done.\nnext\n.");
        assert_eq!(text(&VIEW, b"done\n\nnext"), "done\n\nnext");
        assert!(accept(b"QUJDREVG"));
        assert!(!accept(b"hello world"));
        // A break the buffer ends inside ends the view (the next bytes decide
        // it) but is not held: it only drops bytes.
        assert_eq!(view(&VIEW, b"QUJD\n  "), (b"QUJD".to_vec(), None));
    }
}
