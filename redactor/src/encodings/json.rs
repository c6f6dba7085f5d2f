//! The inside of a JSON string as each common encoder writes it by default.
//! The sources each style is taken from are cited in docs/redact.md.

/// How one encoder escapes a string.
struct Style {
    /// `\u00XX` and other `\u` escapes in upper-case hex.
    upper: bool,
    /// Everything outside ASCII as `\uXXXX` (UTF-16, surrogate pairs).
    non_ascii: bool,
    /// `/` as `\/`.
    slash: bool,
    /// `\b` and `\f` as two-character escapes (older Go wrote `\u0008`, `\u000c`).
    short_bf: bool,
    /// DEL (0x7F) as `\u007f`.
    del: bool,
    /// U+2028 and U+2029 as `\u2028`, `\u2029` (JavaScript line terminators).
    line_separators: bool,
    /// ASCII characters written as `\u00XX` (HTML-sensitive sets; `"` here means
    /// `\u0022` instead of `\"`).
    as_unicode: &'static [u8],
}

const BASE: Style = Style {
    upper: false,
    non_ascii: false,
    slash: false,
    short_bf: true,
    del: false,
    line_separators: false,
    as_unicode: b"",
};

/// serde_json, JavaScript `JSON.stringify`, Ruby `JSON.generate`, Python with
/// `ensure_ascii=False`: only what JSON requires.
/// Jackson: the same with upper-case hex for control characters.
/// Go `encoding/json` (HTML escaping on by default), since Go 1.22 and before.
/// Gson (HTML-safe by default). Python `json.dumps` (`ensure_ascii=True`).
/// PHP `json_encode`, default and with `JSON_UNESCAPED_UNICODE` (U+2028 and
/// U+2029 stay escaped unless `JSON_UNESCAPED_LINE_TERMINATORS` is given too).
/// .NET `System.Text.Json` (`JavaScriptEncoder.Default`).
const STYLES: &[Style] = &[
    BASE,
    Style {
        upper: true,
        ..BASE
    },
    Style {
        as_unicode: b"<>&",
        line_separators: true,
        ..BASE
    },
    Style {
        as_unicode: b"<>&",
        line_separators: true,
        short_bf: false,
        ..BASE
    },
    Style {
        as_unicode: b"<>&='",
        line_separators: true,
        ..BASE
    },
    Style {
        non_ascii: true,
        del: true,
        ..BASE
    },
    Style {
        non_ascii: true,
        slash: true,
        ..BASE
    },
    Style {
        slash: true,
        line_separators: true,
        ..BASE
    },
    Style {
        upper: true,
        non_ascii: true,
        del: true,
        as_unicode: b"<>&'\"+`",
        ..BASE
    },
];

/// Every distinct default JSON escaping of `text` (without the quotes).
pub(crate) fn forms(text: &str) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for style in STYLES {
        let form = escape(text, style);
        if !out.contains(&form) {
            out.push(form);
        }
    }
    out
}

fn escape(text: &str, style: &Style) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let unit = |out: &mut Vec<u8>, u: u16| {
        let digits: &[u8; 16] = if style.upper {
            b"0123456789ABCDEF"
        } else {
            b"0123456789abcdef"
        };
        out.extend_from_slice(b"\\u");
        for shift in [12, 8, 4, 0] {
            out.push(digits[usize::from((u >> shift) & 0xF)]);
        }
    };
    for c in text.chars() {
        let short = match c {
            '"' if !style.as_unicode.contains(&b'"') => Some(b'"'),
            '\\' => Some(b'\\'),
            '\n' => Some(b'n'),
            '\r' => Some(b'r'),
            '\t' => Some(b't'),
            '\u{8}' if style.short_bf => Some(b'b'),
            '\u{c}' if style.short_bf => Some(b'f'),
            '/' if style.slash => Some(b'/'),
            _ => None,
        };
        if let Some(s) = short {
            out.extend_from_slice(&[b'\\', s]);
            continue;
        }
        let code = u32::from(c);
        let escaped = code < 0x20
            || (code == 0x7F && style.del)
            || (code < 0x80 && style.as_unicode.contains(&(code as u8)))
            || (code >= 0x80 && style.non_ascii)
            || ((code == 0x2028 || code == 0x2029) && style.line_separators);
        if escaped {
            let mut units = [0u16; 2];
            for &u in c.encode_utf16(&mut units).iter() {
                unit(&mut out, u);
            }
        } else {
            let mut bytes = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut bytes).as_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(text: &str, form: &str) -> bool {
        forms(text).iter().any(|f| f == form.as_bytes())
    }

    #[test]
    fn each_encoder_style() {
        let v = "a<b>&c='d\"e/f\u{fc}g\u{1F600}h\u{1f}i\u{2028}";
        assert!(
            has(v, "a<b>&c='d\\\"e/f\u{fc}g\u{1F600}h\\u001fi\u{2028}"),
            "serde/JS"
        );
        assert!(
            has(v, "a<b>&c='d\\\"e/f\u{fc}g\u{1F600}h\\u001Fi\u{2028}"),
            "Jackson"
        );
        assert!(
            has(
                v,
                "a\\u003cb\\u003e\\u0026c='d\\\"e/f\u{fc}g\u{1F600}h\\u001fi\\u2028"
            ),
            "Go"
        );
        assert!(
            has(
                v,
                "a\\u003cb\\u003e\\u0026c\\u003d\\u0027d\\\"e/f\u{fc}g\u{1F600}h\\u001fi\\u2028"
            ),
            "Gson"
        );
        assert!(
            has(v, "a<b>&c='d\\\"e/f\\u00fcg\\ud83d\\ude00h\\u001fi\\u2028"),
            "Python"
        );
        assert!(
            has(
                v,
                "a<b>&c='d\\\"e\\/f\\u00fcg\\ud83d\\ude00h\\u001fi\\u2028"
            ),
            "PHP"
        );
        assert!(
            has(
                v,
                "a\\u003Cb\\u003E\\u0026c=\\u0027d\\u0022e/f\\u00FCg\\uD83D\\uDE00h\\u001Fi\\u2028"
            ),
            ".NET"
        );
    }

    #[test]
    fn plain_text_has_one_form() {
        assert_eq!(forms("abcXYZ019-_.").len(), 1);
    }
}
