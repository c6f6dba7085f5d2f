//! dotenv files (`KEY=value` lines, as read by docker compose's `env_file`,
//! python-dotenv, dotenvy and shells): `export`, comments, unquoted values to
//! the end of the line, `'…'` and `"…"` values (which may span lines), and the
//! shell's concatenated quoting (`'p'\''w'`, shroud's own `format = "env"`).
//! Every line that is not blank or a comment must be an assignment, else the
//! value is not a dotenv document.

use zeroize::Zeroizing;

use super::Named;

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_line(&mut self) {
        while let Some(b) = self.peek() {
            self.i += 1;
            if b == b'\n' {
                break;
            }
        }
    }

    fn key(&mut self) -> Option<String> {
        let start = self.i;
        match self.peek() {
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => self.i += 1,
            _ => return None,
        }
        while matches!(self.peek(), Some(b) if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            self.i += 1;
        }
        Some(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    /// An unquoted value: the rest of the line, up to a ` #` comment, trimmed.
    fn plain(&mut self) -> Zeroizing<Vec<u8>> {
        let start = self.i;
        while !matches!(self.peek(), None | Some(b'\n')) {
            if self.peek() == Some(b'#')
                && self.i > start
                && self.s[self.i - 1].is_ascii_whitespace()
            {
                break;
            }
            self.i += 1;
        }
        let mut v = &self.s[start..self.i];
        while let [rest @ .., last] = v {
            if !last.is_ascii_whitespace() {
                break;
            }
            v = rest;
        }
        self.skip_line();
        Zeroizing::new(v.to_vec())
    }

    /// Shell words glued together: `'…'`, `"…"` and `\x` until a blank.
    fn quoted(&mut self) -> Option<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(Vec::new());
        loop {
            match self.peek() {
                Some(b'\'') => {
                    self.i += 1;
                    let end = self.s[self.i..].iter().position(|&b| b == b'\'')?;
                    out.extend_from_slice(&self.s[self.i..self.i + end]);
                    self.i += end + 1;
                }
                Some(b'"') => {
                    self.i += 1;
                    loop {
                        match self.peek()? {
                            b'"' => break,
                            b'\\' => {
                                self.i += 1;
                                let c = self.peek()?;
                                match c {
                                    b'n' => out.push(b'\n'),
                                    b't' => out.push(b'\t'),
                                    b'r' => out.push(b'\r'),
                                    b'"' | b'\\' | b'$' | b'`' => out.push(c),
                                    b'\n' => {}
                                    _ => out.extend_from_slice(&[b'\\', c]),
                                }
                            }
                            c => out.push(c),
                        }
                        self.i += 1;
                    }
                    self.i += 1;
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = self.peek()?;
                    if c != b'\n' {
                        out.push(c);
                    }
                    self.i += 1;
                }
                None | Some(b' ' | b'\t' | b'\n' | b'\r') => break,
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
        // Only blanks or a comment may follow on the line.
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r')) {
            self.i += 1;
        }
        match self.peek() {
            None | Some(b'\n') | Some(b'#') => {
                self.skip_line();
                Some(out)
            }
            Some(_) => None,
        }
    }
}

/// The (key, value) assignments of `value`, when all of it is dotenv.
pub fn parse(value: &[u8]) -> Option<Vec<Named>> {
    let mut c = Cursor { s: value, i: 0 };
    let mut out = Vec::new();
    loop {
        while matches!(c.peek(), Some(b) if b.is_ascii_whitespace()) {
            c.i += 1;
        }
        match c.peek() {
            None => break,
            Some(b'#') => {
                c.skip_line();
                continue;
            }
            Some(_) => {}
        }
        if c.s[c.i..].starts_with(b"export ") {
            c.i += 7;
        }
        let key = c.key()?;
        if c.peek() != Some(b'=') {
            return None;
        }
        c.i += 1;
        let v = match c.peek() {
            Some(b'\'' | b'"') => c.quoted()?,
            _ => c.plain(),
        };
        out.push((key, v));
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &str) -> Option<Vec<(String, String)>> {
        parse(v.as_bytes()).map(|p| {
            p.into_iter()
                .map(|(k, v)| (k, String::from_utf8(v.to_vec()).unwrap()))
                .collect()
        })
    }

    #[test]
    fn reads_the_common_forms() {
        let got = pairs(
            "# comment\nexport A=plain value # note\nB='single $x'\nC=\"dq \\\"x\\\" \\n\"\n\nD='p'\\''w'\nE=\"two\nlines\"\r\nF=\n",
        )
        .unwrap();
        let want = [
            ("A", "plain value"),
            ("B", "single $x"),
            ("C", "dq \"x\" \n"),
            ("D", "p'w"),
            ("E", "two\nlines"),
            ("F", ""),
        ];
        assert_eq!(
            got,
            want.map(|(k, v)| (k.to_string(), v.to_string())).to_vec()
        );
    }

    #[test]
    fn other_text_is_not_dotenv() {
        assert!(pairs("just a password").is_none());
        assert!(pairs("postgres://u:p@h/db?sslmode=require").is_none());
        assert!(pairs("A=1\nnot an assignment\n").is_none());
        assert!(pairs("A='unterminated\n").is_none());
        assert!(pairs("A='x' trailing\n").is_none());
        assert!(pairs("").is_none());
    }
}
