//! `Authorization` and `Proxy-Authorization` header values (RFC 9110 §11.6.2,
//! §11.7.2: `credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ]`), as
//! HTTP clients print them in debug logs (`curl -v`, Python's http.client,
//! Go's httputil dumps) and as code writes them (`"Authorization": "Bearer …"`).
//! The scheme stays visible; what follows it, up to the end of the line or the
//! closing quote, is masked. A value without a scheme is masked whole.

use super::{Ctx, Family, Start, Verdict};

pub(crate) const FAMILY: Family = Family {
    name: "authorization",
    anchors: &["authorization", "Authorization", "AUTHORIZATION"],
    // `riz` is a rare trigram; `aut`/`Aut` start many words.
    scan: &["rization", "RIZATION"],
    examine,
    partial,
};

const MAX_VALUE: usize = 16 * 1024;

fn line_char(b: u8) -> bool {
    !matches!(b, b'\n' | b'\r' | b'"' | b'\'')
}

/// Where the value starts and the quote that closes it, or the verdict.
fn value_start(c: &Ctx<'_>) -> Result<(usize, Option<u8>), Verdict> {
    // `Proxy-Authorization`; any other word glued before it is another name.
    let proxy = c.preceded_by(b"proxy-");
    if !proxy
        && c.before()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(Verdict::No);
    }
    let buf = c.buf;
    let more = || if c.eof { Verdict::No } else { Verdict::More };
    let mut i = c.after();
    if matches!(buf.get(i), Some(b'"' | b'\'')) {
        i += 1;
    }
    match buf.get(i) {
        None => return Err(more()),
        Some(b':' | b'=') => i += 1,
        Some(_) => return Err(Verdict::No),
    }
    let mut quote = None;
    while let Some(&b) = buf.get(i) {
        match b {
            b' ' | b'\t' => i += 1,
            b'"' | b'\'' if quote.is_none() => {
                quote = Some(b);
                i += 1;
                // A quote closing the name (`"Authorization:" header`) is not
                // one opening a value.
                if buf.get(i).is_some_and(u8::is_ascii_whitespace) {
                    return Err(Verdict::No);
                }
            }
            _ => break,
        }
        if i - c.after() > 16 {
            return Err(Verdict::No);
        }
    }
    if i == buf.len() {
        return Err(more());
    }
    Ok((i, quote))
}

fn examine(c: &Ctx<'_>) -> Verdict {
    let (start, quote) = match value_start(c) {
        Ok(v) => v,
        Err(v) => return v,
    };
    let buf = c.buf;
    // A quoted value ends at its quote, an unquoted one at the line's end.
    let n = match quote {
        Some(q) => buf[start..]
            .iter()
            .take(MAX_VALUE)
            .take_while(|&&b| b != q && !eol(b))
            .count(),
        None => super::run_len(&buf[start..], not_eol, MAX_VALUE),
    };
    let mut end = start + n;
    if end == buf.len() && !c.eof {
        return Verdict::More;
    }
    while end > start && buf[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    let value = &buf[start..end];
    // `Bearer x`, `Basic x`, `token x`, `Digest username=…`: keep the scheme.
    let scheme = value
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
        .count();
    let cred = if known_scheme(&value[..scheme]) && value.get(scheme) == Some(&b' ') {
        start
            + scheme
            + 1
            + value[scheme + 1..]
                .iter()
                .take_while(|&&b| b == b' ')
                .count()
    } else {
        start
    };
    // A token68 (`Bearer x`, `Basic x`, a bare token) ends at a blank; with
    // auth-params (`Digest k="v", k2=v2`) the rest of the line is the
    // credential. Prose after the word (`Authorization: headers are kept`)
    // is neither.
    let rest = &buf[cred..end];
    let first = rest
        .iter()
        .take_while(|&&b| b != b' ' && b != b'\t')
        .count();
    let params =
        first < rest.len() && rest[..first].contains(&b'=') || rest[first..].contains(&b'=');
    let end = if cred > start && params && !token68_scheme(&value[..scheme]) {
        end
    } else if first == rest.len() || (cred > start && token68_scheme(&value[..scheme])) {
        cred + first
    } else {
        return Verdict::No;
    };
    let credential = &buf[cred..end];
    if credential.len() < 8
        || super::url::placeholder(credential)
        || credential.starts_with(b"[REDACTED")
    {
        return Verdict::No;
    }
    Verdict::Mask {
        start: cred,
        end,
        class: if end - cred == first {
            token_char
        } else {
            not_eol
        },
    }
}

fn eol(b: u8) -> bool {
    b == b'\n' || b == b'\r'
}

fn not_eol(b: u8) -> bool {
    !eol(b)
}

fn token_char(b: u8) -> bool {
    line_char(b) && b != b' ' && b != b'\t'
}

/// Schemes whose credentials are one token68.
fn token68_scheme(s: &[u8]) -> bool {
    const SCHEMES: &[&[u8]] = &[
        b"basic",
        b"bearer",
        b"token",
        b"negotiate",
        b"ntlm",
        b"jwt",
        b"key",
        b"apikey",
        b"api-key",
        b"sso-key",
        b"ssws",
        b"splunk",
        b"dpop",
        b"gnap",
    ];
    SCHEMES.iter().any(|k| k.eq_ignore_ascii_case(s))
}

/// The authentication schemes of the IANA registry and the common
/// vendor ones.
fn known_scheme(s: &[u8]) -> bool {
    const SCHEMES: &[&[u8]] = &[
        b"basic",
        b"bearer",
        b"digest",
        b"token",
        b"mac",
        b"negotiate",
        b"ntlm",
        b"hoba",
        b"mutual",
        b"oauth",
        b"aws4-hmac-sha256",
        b"scram-sha-1",
        b"scram-sha-256",
        b"vapid",
        b"dpop",
        b"gnap",
        b"privatetoken",
        b"concealed",
        b"apikey",
        b"api-key",
        b"key",
        b"jwt",
        b"sso-key",
        b"ssws",
        b"splunk",
        b"genieKey",
        b"klaviyo-api-key",
    ];
    SCHEMES.iter().any(|k| k.eq_ignore_ascii_case(s))
}

fn partial(c: &Ctx<'_>) -> Option<Start> {
    let forced = Ctx { eof: false, ..*c };
    let (start, _) = value_start(&forced).ok()?;
    let value = &c.buf[start..];
    let scheme = value
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
        .count();
    let from = if scheme < value.len() && value[scheme] == b' ' {
        start + scheme + 1
    } else {
        start
    };
    Some((from, line_char as fn(u8) -> bool))
}

#[cfg(test)]
mod tests {
    use super::super::testing::found;

    #[test]
    fn header_values_after_the_scheme() {
        assert_eq!(
            found("> Authorization: Bearer abc.def-ghi_jkl\r\n> Accept: */*\r\n"),
            vec![("authorization", "abc.def-ghi_jkl".to_string())]
        );
        assert_eq!(
            found("Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\n"),
            vec![("authorization", "QWxhZGRpbjpvcGVuIHNlc2FtZQ==".to_string())]
        );
        assert_eq!(
            found(r#"headers = {"Authorization": "token 0123456789abcdef", "X": 1}"#),
            vec![("authorization", "0123456789abcdef".to_string())]
        );
        assert!(found("Authorization: Bearer <token>\n").is_empty());
        assert_eq!(
            found("curl -H Authorization: Bearer abcdef0123456789 AKIAIOSFODNN7EXAMPLE\n"),
            vec![
                ("authorization", "abcdef0123456789".to_string()),
                ("aws-access-key-id", "AKIAIOSFODNN7EXAMPLE".to_string())
            ]
        );
        assert_eq!(
            found("Authorization: Digest username=\"u\", response=\"6629fae4\"\n"),
            vec![(
                "authorization",
                "username=\"u\", response=\"6629fae4\"".to_string()
            )]
        );
        assert!(found("Authorization: Bearer $TOKEN\n").is_empty());
        assert!(found("the authorization server\n").is_empty());
        assert!(found("# Keep Authorization: headers on a redirect.\n").is_empty());
        assert!(found("the \"Authorization:\" header, the other\n").is_empty());
        assert!(found("--allow-interactive-authorization=yes-please-do\n").is_empty());
    }
}
