//! The password in a URL's userinfo (RFC 3986 §3.2.1: `scheme://user:password@host`,
//! deprecated but what every database DSN, `DATABASE_URL` and proxy setting
//! still uses). Only the password is masked; obvious placeholders
//! (`password`, `pass`, `secret`, `${VAR}`, `<password>`, `%s`, `***`) are not.

use super::{Ctx, Family, Start, Verdict};

pub(crate) const FAMILY: Family = Family {
    name: "url-password",
    anchors: &["://"],
    scan: &["://"],
    examine,
    partial,
};

/// Userinfo bytes other than `:` (unreserved, pct-encoded, sub-delims).
fn user_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(&b)
}

/// A `:` inside the password is legal but what it mostly means is something
/// else (`cvs://:pserver:anoncvs@host`), so it ends the candidate.
fn pass_char(b: u8) -> bool {
    user_char(b)
}

/// Fewer bytes than this are an example (`foo:bar`), not a password.
const MIN_PASS: usize = 4;

const MAX_USER: usize = 256;
const MAX_PASS: usize = 1024;

/// Where the password starts (after `user:`), or the verdict.
fn pass_start(c: &Ctx<'_>) -> Result<usize, Verdict> {
    if !c.before().is_some_and(|b| b.is_ascii_alphanumeric()) {
        return Err(Verdict::No);
    }
    let from = c.after();
    let n = super::run_len(&c.buf[from..], user_char, MAX_USER + 1);
    let i = from + n;
    if n > MAX_USER {
        return Err(Verdict::No);
    }
    match c.buf.get(i) {
        None if !c.eof => Err(Verdict::More),
        Some(b':') => Ok(i + 1),
        _ => Err(Verdict::No),
    }
}

fn examine(c: &Ctx<'_>) -> Verdict {
    let start = match pass_start(c) {
        Ok(s) => s,
        Err(v) => return v,
    };
    let n = super::run_len(&c.buf[start..], pass_char, MAX_PASS + 1);
    let end = start + n;
    if n > MAX_PASS {
        return Verdict::No;
    }
    match c.buf.get(end) {
        None if !c.eof => return Verdict::More,
        Some(b'@') => {}
        _ => return Verdict::No,
    }
    // Must be followed by a host.
    match c.buf.get(end + 1) {
        None if !c.eof => return Verdict::More,
        Some(b) if b.is_ascii_alphanumeric() || *b == b'[' => {}
        _ => return Verdict::No,
    }
    if n < MIN_PASS || placeholder(&c.buf[start..end]) {
        return Verdict::No;
    }
    // Whether the host is an example's is known once it ends (a write cut
    // inside `www.exa` must not decide on `www.exa`).
    let host = &c.buf[end + 1..];
    let n = host_len(host);
    if n == host.len() && n < MAX_HOST && !c.eof {
        return Verdict::More;
    }
    if example_host(&host[..n]) {
        return Verdict::No;
    }
    Verdict::Mask {
        start,
        end,
        class: pass_char,
    }
}

fn partial(c: &Ctx<'_>) -> Option<Start> {
    let forced = Ctx { eof: false, ..*c };
    pass_start(&forced)
        .ok()
        .map(|s| (s, pass_char as fn(u8) -> bool))
}

/// The longest host name looked at (DNS names are at most 253 bytes).
const MAX_HOST: usize = 255;

/// How many of `rest`'s first bytes make up a host name (also a manual
/// page's `example\&.org`), at most [`MAX_HOST`].
fn host_len(rest: &[u8]) -> usize {
    rest.iter()
        .take(MAX_HOST)
        .take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'\\' | b'&'))
        .count()
}

/// A host in the domains RFC 2606 reserves for documentation (`example.com`,
/// `sub.example.org`, `proxy.example`; a manual page's `example\&.org` too).
fn example_host(host: &[u8]) -> bool {
    host.split(|&b| b == b'.').any(|label| {
        label.eq_ignore_ascii_case(b"example") || label.eq_ignore_ascii_case(b"example\\&")
    })
}

/// Documentation's stand-ins for a password: the word itself (in the
/// languages Debian's manual pages are translated to), `${VAR}`, `<pw>`,
/// `%s`, `***`, one repeated character.
pub(crate) fn placeholder(p: &[u8]) -> bool {
    const WORDS: &[&[u8]] = &[
        b"pass",
        b"pwd",
        b"secret",
        b"xxxx",
        b"changeme",
        b"pa55word",
        b"passw0rd",
        b"x-oauth-basic",
        b"token",
        b"mytoken",
        b"yourtoken",
        b"secretkey",
        b"apikey",
    ];
    const INSIDE: &[&[u8]] = &[
        b"password",
        b"passwd",
        b"passwort",
        b"wachtwoord",
        b"motdepasse",
        b"mot_de_passe",
        b"contrase",
        b"senha",
        b"parola",
        b"haslo",
        b"salasana",
        b"secret-",
        b"-secret",
        b"example",
    ];
    let lower = p.to_ascii_lowercase();
    INSIDE
        .iter()
        .any(|w| lower.windows(w.len()).any(|x| x == *w))
        || WORDS.contains(&lower.as_slice())
        || p.starts_with(b"$")
        || p.starts_with(b"%")
        || p.starts_with(b"<")
        || p.starts_with(b"{")
        || p.starts_with(b"*")
        || p.iter().all(|&b| b == p[0])
}

#[cfg(test)]
mod tests {
    use super::super::testing::found;

    #[test]
    fn url_passwords() {
        assert_eq!(
            found("DATABASE_URL=postgres://app:s3cr3t-Pa55@db.internal:5432/app\n"),
            vec![("url-password", "s3cr3t-Pa55".to_string())]
        );
        assert_eq!(
            found("redis://:hunter2hunter@cache/0"),
            vec![("url-password", "hunter2hunter".to_string())]
        );
        assert!(found("https://example.com/a:b@c").is_empty());
        assert!(found("ftp://user:password@host/").is_empty());
        assert!(found("https://fred:fr3dfr3d@www.example.com/").is_empty());
        assert!(found("http://foo:bar@myhost/").is_empty());
        assert!(found("cvs://:pserver:anoncvs@sources.redhat.com:/cvs/src").is_empty());
        assert!(found("https://user@host/").is_empty());
        assert!(found("postgres://u:${PGPASS}@h/").is_empty());
    }
}
