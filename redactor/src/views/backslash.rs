//! The view through C-style backslash escapes, as debug printers and string
//! literals write them: `\\ \" \' \/`, `\n \t \r \e \a \b \f \v`, `\xNN`,
//! `\uNNNN` (a surrogate pair joined into one character), `\u{N…}`, octal
//! `\NNN` (Python, Node, PHP, Perl, Ruby, JSON, bash `$'…'`, `declare -p`);
//! Perl's `\$ \@` and `\x{N…}` (`Data::Dumper` with `Useqq`); a backslash
//! before a line break is dropped with it (a continued string literal). A
//! backslash before any other byte is kept as it is.

use super::{Out, Step, View};

/// The view.
pub(crate) const VIEW: View = View {
    name: "backslash",
    triggers: b"\\",
    // `\uD83D\uDE00`
    max_seq: 12,
    hold_open: true,
    step,
    accept: super::any,
    window: None,
    after: None,
};

fn hex(b: u8) -> Option<u32> {
    (b as char).to_digit(16)
}

/// `n` hex digits at `s[i..]`: the value, None when one is not a hex digit,
/// or Err when the buffer ends first.
fn hex_digits(s: &[u8], i: usize, n: usize) -> Result<Option<u32>, ()> {
    let mut v = 0;
    for k in 0..n {
        let Some(&b) = s.get(i + k) else {
            return Err(());
        };
        match hex(b) {
            Some(d) => v = v * 16 + d,
            None => return Ok(None),
        }
    }
    Ok(Some(v))
}

fn seq(len: usize, out: Out) -> Step {
    Step::Seq { len, out }
}

fn step(src: &[u8], at: usize) -> Step {
    let s = &src[at..];
    let Some(&c) = s.get(1) else {
        return Step::Open;
    };
    let one = |b| seq(2, Out::byte(b));
    match c {
        b'\\' | b'"' | b'\'' | b'/' | b'$' | b'@' => one(c),
        b'\n' => seq(2, Out::NONE),
        b'n' => one(b'\n'),
        b't' => one(b'\t'),
        b'r' => one(b'\r'),
        b'e' | b'E' => one(0x1b),
        b'a' => one(0x07),
        b'b' => one(0x08),
        b'f' => one(0x0c),
        b'v' => one(0x0b),
        b'x' | b'u' if s.get(2) == Some(&b'{') => braced(s),
        b'x' => match hex_digits(s, 2, 2) {
            Err(()) => Step::Open,
            Ok(Some(v)) => seq(4, Out::byte(v as u8)),
            Ok(None) => Step::Literal,
        },
        b'u' => unicode(s),
        b'0'..=b'7' => {
            let mut v = u32::from(c - b'0');
            let mut len = 2;
            while len < 4 {
                match s.get(len) {
                    Some(&d @ b'0'..=b'7') => {
                        v = v * 8 + u32::from(d - b'0');
                        len += 1;
                    }
                    Some(_) => break,
                    None => return Step::Open,
                }
            }
            if v > 0xff {
                Step::Literal
            } else {
                seq(len, Out::byte(v as u8))
            }
        }
        _ => Step::Literal,
    }
}

/// `\u{N…}` (Rust, JavaScript, Ruby) and Perl's `\x{N…}`: up to six hex digits.
fn braced(s: &[u8]) -> Step {
    let mut v = 0u32;
    for (k, &b) in s.iter().enumerate().skip(3).take(7) {
        if b == b'}' {
            return match Out::char(v) {
                Some(out) if k > 3 => seq(k + 1, out),
                _ => Step::Literal,
            };
        }
        match hex(b) {
            Some(d) => v = v * 16 + d,
            None => return Step::Literal,
        }
    }
    if s.len() < 10 {
        Step::Open
    } else {
        Step::Literal
    }
}

/// `\uNNNN`, joining a high surrogate with the `\uNNNN` low one after it.
fn unicode(s: &[u8]) -> Step {
    let hi = match hex_digits(s, 2, 4) {
        Err(()) => return Step::Open,
        Ok(None) => return Step::Literal,
        Ok(Some(v)) => v,
    };
    if !(0xd800..0xdc00).contains(&hi) {
        return Out::char(hi).map_or(Step::Literal, |out| seq(6, out));
    }
    for (k, &b) in b"\\u".iter().enumerate() {
        match s.get(6 + k) {
            None => return Step::Open,
            Some(&x) if x != b => return Step::Literal,
            Some(_) => {}
        }
    }
    match hex_digits(s, 8, 4) {
        Err(()) => Step::Open,
        Ok(Some(lo)) if (0xdc00..0xe000).contains(&lo) => {
            let c = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
            Out::char(c).map_or(Step::Literal, |out| seq(12, out))
        }
        Ok(_) => Step::Literal,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{text, view};
    use super::*;

    /// Python 3.11 `print({"password": v})` for v = `a'b"c\d$ &<` + ESC + `e`.
    #[test]
    fn python_repr_of_a_dict() {
        let out = b"{'password': 'a\\'b\"c\\\\d$ &<\\x1be'}";
        assert_eq!(text(&VIEW, out), "{'password': 'a'b\"c\\d$ &<\x1be'}");
    }

    /// Node 18 `console.log({password: v})`, same value (with both quotes
    /// in it Node picks backticks), and PHP `var_export` / Perl
    /// `Data::Dumper` (`\'` and `\\` only).
    #[test]
    fn node_php_perl() {
        let out = b"{ password: `a'b\"c\\\\d$ &<\\x1Be` }";
        assert_eq!(text(&VIEW, out), "{ password: `a'b\"c\\d$ &<\x1be` }");
        let out = b"  'password' => 'ab\\'c\"d\\\\e$ &<f',";
        assert_eq!(text(&VIEW, out), "  'password' => 'ab'c\"d\\e$ &<f',");
    }

    /// Perl 5.36 `Data::Dumper` with `Useqq` of `a$b@c` + ESC + U+263A, and a
    /// string literal continued on the next line.
    #[test]
    fn perl_useqq_and_continued_lines() {
        let out = b"$VAR1 = \"a\\$b\\@c\\e\\x{263a}\";";
        assert_eq!(text(&VIEW, out), "$VAR1 = \"a$b@c\x1b\u{263a}\";");
        assert_eq!(text(&VIEW, b"\"abc\\\ndef\""), "\"abcdef\"");
        assert_eq!(view(&VIEW, b"ab\\x{26").0, b"ab");
        assert_eq!(text(&VIEW, b"\\x{zz}"), "\\x{zz}");
    }

    /// bash 5.2 `declare -p v` and `printf %q` of a value with a control
    /// character: `$'…'` with octal escapes.
    #[test]
    fn bash_ansi_c_quoting() {
        let out = b"declare -- v=$'a\\'b\\001c\\\\d'";
        assert_eq!(view(&VIEW, out).0, b"declare -- v=$'a'b\x01c\\d'");
    }

    /// JSON: `\uNNNN` with a surrogate pair, `\/`.
    #[test]
    fn json_unicode_and_surrogates() {
        let out = b"\"\\ud83d\\ude00 \\u00e9 \\/ \\u{1F600}\"";
        assert_eq!(text(&VIEW, out), "\"\u{1F600} \u{e9} / \u{1F600}\"");
        assert_eq!(text(&VIEW, b"\\ud83d x"), "\\ud83d x", "a lone surrogate");
    }

    #[test]
    fn unknown_escapes_are_kept_and_open_ones_pending() {
        assert_eq!(text(&VIEW, b"C:\\path\\qz"), "C:\\path\\qz");
        assert_eq!(view(&VIEW, b"ab\\x4"), (b"ab".to_vec(), Some(2)));
        assert_eq!(view(&VIEW, b"ab\\"), (b"ab".to_vec(), Some(2)));
        assert_eq!(view(&VIEW, b"ab\\ud83d\\u"), (b"ab".to_vec(), Some(2)));
        assert_eq!(view(&VIEW, b"ab\\12"), (b"ab".to_vec(), Some(2)));
        assert_eq!(view(&VIEW, b"ab\\0123").0, b"ab\n3");
        assert_eq!(text(&VIEW, b"\\\\n"), "\\n", "an escaped backslash, then n");
    }
}
