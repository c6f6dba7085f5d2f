//! Percent-encodings of a value as common URL libraries write them, in both hex
//! cases (RFC 3986 allows either; most libraries write upper case, some lower).

use percent_encoding::{percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// JavaScript `encodeURIComponent` leaves `-_.!~*'()` alone.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');
/// RFC 3986 unreserved only (Ruby `ERB::Util.url_encode`, PHP `rawurlencode`,
/// Rust `urlencoding`, curl).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// Python `urllib.parse.quote` keeps `/` by default.
const PY_QUOTE: &AsciiSet = &UNRESERVED.remove(b'/');
/// Go `url.PathEscape` keeps the sub-delimiters a path segment allows.
const GO_PATH: &AsciiSet = &UNRESERVED
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b',')
    .remove(b':')
    .remove(b';')
    .remove(b'=')
    .remove(b'@');
/// PHP `urlencode` keeps only `-_.`.
const PHP_FORM: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');
/// .NET `HttpUtility.UrlEncode` keeps `-_.!*()`.
const DOTNET_FORM: &AsciiSet = &PHP_FORM.remove(b'!').remove(b'*').remove(b'(').remove(b')');
/// Java `URLEncoder` keeps `-_.*` and encodes `~`.
const JAVA_FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'*');

/// Every distinct percent-encoding of `value`: the sets above, the form encodings
/// (space as `+`: Go `url.QueryEscape`, Python `quote_plus`, Ruby `CGI.escape`,
/// Java `URLEncoder`, PHP `urlencode`, .NET `HttpUtility.UrlEncode`), each with
/// upper- and lower-case hex.
pub(crate) fn forms(value: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let sets: [(&AsciiSet, bool); 8] = [
        (URI_COMPONENT, false),
        (UNRESERVED, false),
        (PY_QUOTE, false),
        (GO_PATH, false),
        (UNRESERVED, true),
        (JAVA_FORM, true),
        (PHP_FORM, true),
        (DOTNET_FORM, true),
    ];
    for (set, plus) in sets {
        let mut upper: String = percent_encode(value, set).collect();
        if plus {
            upper = upper.replace("%20", "+");
        }
        let upper = upper.into_bytes();
        let lower = lower_hex(&upper);
        for form in [upper, lower] {
            if !out.contains(&form) {
                out.push(form);
            }
        }
    }
    out
}

/// The hex digits after each `%` in lower case.
fn lower_hex(encoded: &[u8]) -> Vec<u8> {
    let mut out = encoded.to_vec();
    let mut i = 0;
    while i < out.len() {
        if out[i] == b'%' && i + 2 < out.len() {
            out[i + 1] = out[i + 1].to_ascii_lowercase();
            out[i + 2] = out[i + 2].to_ascii_lowercase();
            i += 3;
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(value: &[u8], form: &str) -> bool {
        forms(value).iter().any(|f| f == form.as_bytes())
    }

    #[test]
    fn library_styles_in_both_cases() {
        let v = b"a b/c~d*e\xc3\xbc";
        assert!(has(v, "a%20b%2Fc~d*e%C3%BC"), "encodeURIComponent");
        assert!(has(v, "a%20b%2Fc~d%2Ae%C3%BC"), "RFC 3986");
        assert!(has(v, "a%20b%2fc~d%2ae%c3%bc"), "lower case");
        assert!(has(v, "a%20b/c~d%2Ae%C3%BC"), "Python quote");
        assert!(has(v, "a+b%2Fc~d%2Ae%C3%BC"), "Go QueryEscape");
        assert!(has(v, "a+b%2Fc%7Ed*e%C3%BC"), "Java URLEncoder");
        assert!(has(v, "a+b%2Fc%7Ed%2Ae%C3%BC"), "PHP urlencode");
        assert!(has(v, "a+b%2fc%7ed*e%c3%bc"), ".NET HttpUtility");
        assert!(has(b"a&b=c/d", "a&b=c%2Fd"), "Go PathEscape");
    }

    #[test]
    fn plain_text_has_one_form() {
        assert_eq!(forms(b"abcXYZ019-_.").len(), 1);
    }
}
