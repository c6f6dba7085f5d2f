//! The encodings of a secret value that are matched besides the value itself.
//!
//! Each function returns the byte strings that stand for the value in one encoding.
//! Encodings whose output depends on the bytes around the value (base64) return the
//! part that is fixed by the value alone, so the value is caught inside a larger blob.

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine as _;

mod json;
mod percent;

/// Which form of a secret a pattern is; reported by scanners, never the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// The value as it is.
    Raw,
    /// One trimmed line of a multi-line value.
    Line,
    /// The value escaped as the inside of a JSON string, in the default style of
    /// one of the common encoders.
    Json,
    /// The value percent-encoded as in a URL, in upper- or lower-case hex.
    Url,
    /// The hex digits of the value's bytes, lower or upper case.
    Hex,
    /// Standard base64 of the value preceded by `offset` bytes (0, 1 or 2).
    Base64 {
        /// How many bytes precede the value in the encoded blob.
        offset: u8,
    },
    /// URL-safe base64 of the value preceded by `offset` bytes.
    Base64Url {
        /// How many bytes precede the value in the encoded blob.
        offset: u8,
    },
    /// The value with HTML/XML special characters escaped.
    Html,
    /// Standard base64 of a JSON form of the value (one that differs from the
    /// value) preceded by `offset` bytes: a JSON document holding the value,
    /// base64-encoded (a Kubernetes secret's data, a `.dockerconfigjson`).
    Base64Json {
        /// How many bytes precede the escaped value in the encoded blob.
        offset: u8,
    },
}

impl Encoding {
    /// A short stable name, for messages and scan reports.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Raw => "raw",
            Encoding::Line => "line",
            Encoding::Json => "json",
            Encoding::Url => "url",
            Encoding::Hex => "hex",
            Encoding::Base64 { .. } => "base64",
            Encoding::Base64Url { .. } => "base64url",
            Encoding::Html => "html",
            Encoding::Base64Json { .. } => "base64-json",
        }
    }
}

/// Every form of `value` that should be masked, with its encoding. May contain
/// duplicates (a form equal to the value, as every escaping of plain text is)
/// and short strings; the caller drops both, so forms cost nothing unless they
/// differ.
#[cfg(test)]
pub fn variants(value: &[u8]) -> Vec<(Vec<u8>, Encoding)> {
    let mut out = Vec::new();
    each_variant(value, &mut Scratch::default(), |form, encoding| {
        out.push((form.to_vec(), encoding));
    });
    out
}

/// Buffers [`each_variant`] reuses from one value to the next (a set of
/// 10,000 secrets made about 300,000 short-lived allocations); zeroized when
/// dropped, as they hold forms of secrets.
#[derive(Default)]
pub(crate) struct Scratch {
    padded: Vec<u8>,
    encoded: String,
    hex: Vec<u8>,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.padded.zeroize();
        self.encoded.zeroize();
        self.hex.zeroize();
    }
}

/// Calls `push` with every form of `value` that should be masked, in the
/// order and with the duplicates described at [`variants`]; the bytes are
/// only valid during the call.
pub(crate) fn each_variant(value: &[u8], s: &mut Scratch, mut push: impl FnMut(&[u8], Encoding)) {
    push(value, Encoding::Raw);
    if value.contains(&b'\n') {
        for line in value.split(|&b| b == b'\n') {
            push(line.trim_ascii(), Encoding::Line);
        }
    }
    // No JSON, URL or HTML encoder changes these bytes, so for a value made only
    // of them those forms all equal the value: skip building ~30 copies of it (this
    // was most of the time to build a set of 10,000 random tokens).
    let escapes_to_itself = value
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !escapes_to_itself {
        if let Ok(text) = std::str::from_utf8(value) {
            let mut forms = json::forms(text);
            forms.retain(|f| f.as_slice() != value);
            forms.sort();
            forms.dedup();
            for form in &forms {
                for offset in 0..3u8 {
                    push(
                        base64_core(&STANDARD, form, offset, s),
                        Encoding::Base64Json { offset },
                    );
                }
            }
            forms.iter().for_each(|f| push(f, Encoding::Json));
        }
        percent::forms(value)
            .iter()
            .for_each(|f| push(f, Encoding::Url));
    }
    s.hex.resize(value.len() * 2, 0);
    hex::encode_to_slice(value, &mut s.hex).expect("the buffer holds two digits per byte");
    s.hex.make_ascii_uppercase();
    push(&s.hex, Encoding::Hex);
    s.hex.make_ascii_lowercase();
    push(&s.hex, Encoding::Hex);
    for (engine, url_safe) in [(&STANDARD, false), (&URL_SAFE, true)] {
        let enc = |offset| {
            if url_safe {
                Encoding::Base64Url { offset }
            } else {
                Encoding::Base64 { offset }
            }
        };
        s.encoded.clear();
        engine.encode_string(value, &mut s.encoded);
        push(s.encoded.as_bytes(), enc(0));
        for offset in 0..3u8 {
            push(base64_core(engine, value, offset, s), enc(offset));
        }
    }
    if !escapes_to_itself {
        for apos in [&b"&#39;"[..], b"&apos;", b"&#x27;"] {
            push(&html_escape(value, apos), Encoding::Html);
        }
    }
}

/// The base64 characters fixed by `value` alone when it starts `offset` bytes into
/// a blob: the characters that also depend on neighbouring bytes are cut off.
fn base64_core<'s>(
    engine: &base64::engine::GeneralPurpose,
    value: &[u8],
    offset: u8,
    s: &'s mut Scratch,
) -> &'s [u8] {
    let offset = usize::from(offset);
    s.padded.clear();
    s.padded.resize(offset, 0);
    s.padded.extend_from_slice(value);
    s.encoded.clear();
    engine.encode_string(&s.padded, &mut s.encoded);
    // The first `offset` bytes leave 0, 2 or 3 characters that mix in unknown bits.
    let skip = [0usize, 2, 3][offset];
    // Of a trailing partial group of r bytes, the first r characters are fixed.
    let total = s.padded.len();
    let keep = total / 3 * 4 + total % 3;
    if keep <= skip {
        return &[];
    }
    &s.encoded.as_bytes()[skip..keep]
}

fn html_escape(value: &[u8], apos: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    for &b in value {
        match b {
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'"' => out.extend_from_slice(b"&quot;"),
            b'\'' => out.extend_from_slice(apos),
            _ => out.push(b),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(vars: &[(Vec<u8>, Encoding)], s: &[u8]) -> bool {
        vars.iter().any(|(v, _)| v == s)
    }

    #[test]
    fn base64_core_is_found_inside_any_blob() {
        let secret = b"hunter2-is-my-password";
        let vars = variants(secret);
        for prefix_len in 0..6 {
            for suffix_len in 0..4 {
                let mut blob = vec![b'x'; prefix_len];
                blob.extend_from_slice(secret);
                blob.extend(std::iter::repeat_n(b'y', suffix_len));
                for engine in [&STANDARD, &URL_SAFE] {
                    let enc = engine.encode(&blob);
                    let found = vars.iter().any(|(v, e)| {
                        matches!(e, Encoding::Base64 { .. } | Encoding::Base64Url { .. })
                            && v.len() >= secret.len()
                            && enc.as_bytes().windows(v.len()).any(|w| w == v.as_slice())
                    });
                    assert!(found, "prefix {prefix_len} suffix {suffix_len}");
                }
            }
        }
    }

    #[test]
    fn textual_encodings() {
        let vars = variants(b"a\"b/c&d e'f");
        assert!(has(&vars, br#"a\"b/c&d e'f"#));
        assert!(has(&vars, b"a%22b%2Fc%26d%20e'f"));
        assert!(has(&vars, b"a%22b%2Fc%26d%20e%27f"));
        assert!(has(&vars, b"a&quot;b/c&amp;d e&#39;f"));
        assert!(has(&vars, b"a&quot;b/c&amp;d e&apos;f"));
    }

    /// `variants` skips the JSON, URL and HTML encoders for values of these bytes
    /// because each of them gives back the value unchanged.
    #[test]
    fn plain_bytes_escape_to_themselves_in_every_style() {
        let plain: Vec<u8> = (0..=255u8)
            .filter(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            .collect();
        let text = std::str::from_utf8(&plain).unwrap();
        assert_eq!(json::forms(text), vec![plain.clone()]);
        assert_eq!(percent::forms(&plain), vec![plain.clone()]);
        for apos in [&b"&#39;"[..], b"&apos;", b"&#x27;"] {
            assert_eq!(html_escape(&plain, apos), plain);
        }
        // One byte outside the plain set brings the encoders back.
        let vars = variants(b"plain-value_1.0/x");
        assert!(has(&vars, b"plain-value_1.0%2Fx"));
        assert!(has(&vars, b"plain-value_1.0\\/x"));
    }

    /// A value that JSON escaping changes is also found in a base64-encoded JSON
    /// document holding it, at every alignment.
    #[test]
    fn base64_of_a_json_document_holding_the_value() {
        let value = b"pa\"ss\\word-with-quote";
        let vars = variants(value);
        for prefix in ["{\"p\":\"", "{\"pw\":\"", "{\"pwd\":\""] {
            let doc = format!("{prefix}pa\\\"ss\\\\word-with-quote\"}}");
            let enc = STANDARD.encode(doc.as_bytes());
            let found = vars.iter().any(|(v, e)| {
                matches!(e, Encoding::Base64Json { .. })
                    && v.len() > 16
                    && enc.as_bytes().windows(v.len()).any(|w| w == v.as_slice())
            });
            assert!(found, "{doc}");
        }
    }

    #[test]
    fn hex_forms_in_both_cases() {
        let vars = variants(b"\x00\xab-Z");
        assert!(has(&vars, b"00ab2d5a"));
        assert!(has(&vars, b"00AB2D5A"));
    }

    #[test]
    fn lines_of_multiline_values_are_trimmed() {
        let vars = variants(b"-----BEGIN KEY-----\n  abcdefgh  \r\n-----END KEY-----\n");
        assert!(has(&vars, b"abcdefgh"));
        assert!(has(&vars, b"-----END KEY-----"));
    }
}
