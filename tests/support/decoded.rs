//! Leak checks on a program's output, the way a reader would recover a value:
//! the output is decoded every way a producer encodes (shell quoting, backslash
//! escapes, HTML entities, quote doubling, percent-encoding, ANSI colours,
//! wrapped base64 and hex), alone and composed, and each decoded view is
//! searched for any run of `piece` consecutive bytes of a target (or the whole
//! target, when shorter).

use base64::alphabet::STANDARD;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

/// Decodes what a reader would: no padding needed, any trailing bits.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Removes ANSI escape sequences (CSI `ESC [ … final`, OSC `ESC ] … BEL/ST`,
/// two-byte `ESC x`).
pub fn strip_ansi(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == 0x1b && i + 1 < s.len() {
            match s[i + 1] {
                b'[' => {
                    i += 2;
                    while i < s.len() && !(0x40..=0x7e).contains(&s[i]) {
                        i += 1;
                    }
                    i += 1;
                }
                b']' => {
                    i += 2;
                    while i < s.len()
                        && s[i] != 0x07
                        && !(s[i] == 0x1b && s.get(i + 1) == Some(&b'\\'))
                    {
                        i += 1;
                    }
                    i += if s.get(i) == Some(&0x07) { 1 } else { 2 };
                }
                _ => i += 2,
            }
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

fn push_char(out: &mut Vec<u8>, c: u32) {
    if let Some(ch) = char::from_u32(c) {
        let mut buf = [0; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
    }
}

fn hex_at(s: &[u8], i: usize, n: usize) -> Option<u32> {
    let digits = s.get(i..i + n)?;
    u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// C-style backslash escapes: `\\ \" \' \/ \n \t \r \e \E \a \b \f \v \xNN
/// \uNNNN` (surrogate pairs joined), `\u{…}`, octal `\NNN`; anything else keeps
/// the escaped byte.
pub fn unescape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'\\' || i + 1 == s.len() {
            out.push(s[i]);
            i += 1;
            continue;
        }
        let c = s[i + 1];
        i += 2;
        match c {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'e' | b'E' => out.push(0x1b),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'v' => out.push(0x0b),
            b'x' => match hex_at(s, i, 2) {
                Some(v) => {
                    out.push(v as u8);
                    i += 2;
                }
                None => out.push(b'x'),
            },
            b'u' if s.get(i) == Some(&b'{') => {
                let end = s[i..].iter().position(|&b| b == b'}').map(|p| i + p);
                match end.and_then(|e| Some((e, hex_at(s, i + 1, e - i - 1)?))) {
                    Some((e, v)) => {
                        push_char(&mut out, v);
                        i = e + 1;
                    }
                    None => out.push(b'u'),
                }
            }
            b'u' => match hex_at(s, i, 4) {
                Some(hi)
                    if (0xd800..0xdc00).contains(&hi) && s.get(i + 4..i + 6) == Some(b"\\u") =>
                {
                    let lo = hex_at(s, i + 6, 4).unwrap_or(0);
                    push_char(
                        &mut out,
                        0x10000 + ((hi - 0xd800) << 10) + (lo.wrapping_sub(0xdc00) & 0x3ff),
                    );
                    i += 10;
                }
                Some(v) => {
                    push_char(&mut out, v);
                    i += 4;
                }
                None => out.push(b'u'),
            },
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                let mut n = 1;
                while n < 3 && matches!(s.get(i), Some(b'0'..=b'7')) {
                    v = v * 8 + u32::from(s[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
    out
}

/// Shell words as bash reads them: `'…'` literally, `$'…'` with C escapes,
/// `"…"` with `\` before `$ \` " \\` and newline, `\x` outside quotes.
pub fn unshell(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'$' if s.get(i + 1) == Some(&b'\'') => {
                let start = i + 2;
                let mut j = start;
                while j < s.len() && s[j] != b'\'' {
                    j += if s[j] == b'\\' { 2 } else { 1 };
                }
                out.extend(unescape(&s[start..j.min(s.len())]));
                i = j + 1;
            }
            b'\'' => {
                let end = s[i + 1..]
                    .iter()
                    .position(|&b| b == b'\'')
                    .map_or(s.len(), |p| i + 1 + p);
                out.extend_from_slice(&s[i + 1..end]);
                i = end + 1;
            }
            b'"' => {
                i += 1;
                while i < s.len() && s[i] != b'"' {
                    if s[i] == b'\\'
                        && matches!(s.get(i + 1), Some(b'$' | b'`' | b'"' | b'\\' | b'\n'))
                    {
                        out.push(s[i + 1]);
                        i += 2;
                    } else {
                        out.push(s[i]);
                        i += 1;
                    }
                }
                i += 1;
            }
            b'\\' if i + 1 < s.len() => {
                out.push(s[i + 1]);
                i += 2;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// HTML/XML character references: named (the five XML ones and `&nbsp;`),
/// decimal and hex.
pub fn unhtml(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'&' {
            if let Some(len) = s[i..].iter().take(12).position(|&b| b == b';') {
                let name = &s[i + 1..i + len];
                let decoded = match name {
                    b"amp" => Some(u32::from(b'&')),
                    b"lt" => Some(u32::from(b'<')),
                    b"gt" => Some(u32::from(b'>')),
                    b"quot" => Some(u32::from(b'"')),
                    b"apos" => Some(u32::from(b'\'')),
                    b"nbsp" => Some(0xa0),
                    [b'#', b'x' | b'X', hex @ ..] => std::str::from_utf8(hex)
                        .ok()
                        .and_then(|h| u32::from_str_radix(h, 16).ok()),
                    [b'#', dec @ ..] => std::str::from_utf8(dec).ok().and_then(|d| d.parse().ok()),
                    _ => None,
                };
                if let Some(c) = decoded {
                    push_char(&mut out, c);
                    i += len + 1;
                    continue;
                }
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// Doubled quotes undone: `''` → `'`, `""` → `"` (SQL, YAML, CSV).
pub fn undouble(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        out.push(s[i]);
        i += if matches!(s[i], b'\'' | b'"') && s.get(i + 1) == Some(&s[i]) {
            2
        } else {
            1
        };
    }
    out
}

/// `%XX` (either case) and `+` for space.
pub fn unpercent(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => match hex_at(s, i + 1, 2) {
                Some(v) => {
                    out.push(v as u8);
                    i += 3;
                    continue;
                }
                None => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Every maximal run of base64 characters (whitespace and line breaks removed
/// first, so wrapped bodies join), decoded at each of the four alignments.
pub fn base64_runs(s: &[u8]) -> Vec<Vec<u8>> {
    let joined: Vec<u8> = s
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let mut out = Vec::new();
    for run in
        joined.split(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_')))
    {
        let run: Vec<u8> = run
            .iter()
            .map(|&b| match b {
                b'-' => b'+',
                b'_' => b'/',
                b => b,
            })
            .collect();
        for skip in 0..4.min(run.len()) {
            let body = &run[skip..];
            // A lone last character encodes no whole byte.
            let body = if body.len() % 4 == 1 {
                &body[..body.len() - 1]
            } else {
                body
            };
            if let Ok(d) = LENIENT.decode(body) {
                out.push(d);
            }
        }
    }
    out
}

/// Every maximal run of hex digits (whitespace removed), decoded at both alignments.
pub fn hex_runs(s: &[u8]) -> Vec<Vec<u8>> {
    let joined: Vec<u8> = s
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let mut out = Vec::new();
    for run in joined.split(|b| !b.is_ascii_hexdigit()) {
        for skip in 0..2.min(run.len()) {
            let body = &run[skip..];
            if let Ok(d) = hex::decode(&body[..body.len() / 2 * 2]) {
                out.push(d);
            }
        }
    }
    out
}

/// Every decoded view of `output` a reader could try: the text decoders alone
/// and after removing colours, HTML entities before backslash escapes, and the
/// base64 and hex bodies found in each.
pub fn views(output: &[u8]) -> Vec<(String, Vec<u8>)> {
    type Dec = fn(&[u8]) -> Vec<u8>;
    let text: [(&str, Dec); 8] = [
        ("raw", <[u8]>::to_vec),
        ("shell", unshell),
        ("backslash", unescape),
        ("html", unhtml),
        ("html+backslash", |s| unescape(&unhtml(s))),
        ("doubled", undouble),
        ("percent", unpercent),
        ("shell+backslash", |s| unescape(&unshell(s))),
    ];
    let mut out = Vec::new();
    for (first, base) in [("", output.to_vec()), ("ansi+", strip_ansi(output))] {
        for (name, dec) in text {
            let v = dec(&base);
            for (i, d) in base64_runs(&v).into_iter().enumerate() {
                out.push((format!("{first}{name}+base64#{i}"), d));
            }
            for (i, d) in hex_runs(&v).into_iter().enumerate() {
                out.push((format!("{first}{name}+hex#{i}"), d));
            }
            out.push((format!("{first}{name}"), v));
        }
    }
    out
}

/// Where `output` reveals a target: `(target name, view name, offset in the
/// target)` for each run of `piece` bytes of a target found in a view (the
/// whole target when it is shorter).
pub fn leaks(
    output: &[u8],
    targets: &[(&str, &[u8])],
    piece: usize,
) -> Vec<(String, String, usize)> {
    let views = views(output);
    let mut found = Vec::new();
    for (tname, t) in targets {
        let windows: Vec<(usize, &[u8])> = if t.len() < piece {
            vec![(0, *t)]
        } else {
            t.windows(piece).enumerate().collect()
        };
        for (vname, v) in &views {
            if let Some((at, _)) = windows.iter().find(|(_, w)| crate::contains(v, w)) {
                found.push((tname.to_string(), vname.clone(), *at));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoders_undo_what_producers_do() {
        assert_eq!(unshell(br"'abc'\''def'"), b"abc'def");
        assert_eq!(unshell(br"$'a\001b'"), b"a\x01b");
        assert_eq!(unshell(br#""a\$b\"c""#), b"a$b\"c");
        assert_eq!(
            unescape(br"a\x1bb\u00e9\ud83d\ude00\\"),
            "a\x1bbé😀\\".as_bytes()
        );
        assert_eq!(unhtml(b"&#34;&#039;&#x27;&amp;&lt;"), b"\"''&<");
        assert_eq!(undouble(b"'a''b'"), b"'a'b'");
        assert_eq!(unpercent(b"a%2Fb+c"), b"a/b c");
        assert_eq!(strip_ansi(b"ab\x1b[01;31m\x1b[Kcd\x1b[m"), b"abcd");
        assert!(base64_runs(b"aGVs\nbG8g\nd29y\nbGQ=")
            .iter()
            .any(|d| d == b"hello world"));
        assert!(hex_runs(b"x 68656c6c6f").iter().any(|d| d == b"hello"));
    }
}
