//! Go `text/template` lexing: the text between actions, the actions (with the
//! `{{- ` / ` -}}` trim markers applied to the neighbouring text and comments
//! dropped), and the tokens inside an action. Delimiters are configurable.

use super::ParseError;

/// A piece of the template: literal text or one action's tokens.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    /// Text copied to the output as is.
    Text(String),
    /// The tokens between one pair of delimiters, and the action's line.
    Action(Vec<Tok>, usize),
}

/// A token inside an action.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A function name or keyword (`if`, `range`, `end`…).
    Ident(String),
    /// `.` (empty) or `.A.B`.
    Field(Vec<String>),
    /// `$`, `$x`, with fields `$x.A.B`.
    Var(String, Vec<String>),
    /// `.A.B` right after `)`: fields of a parenthesized pipeline's value.
    Chain(Vec<String>),
    /// A quoted, raw or character string, unescaped.
    Str(String),
    /// An integer constant (character constants too).
    Int(i64),
    /// A floating-point constant.
    Float(f64),
    /// `true`, `false`.
    Bool(bool),
    /// `nil`.
    Nil,
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `|`.
    Pipe,
    /// `:=`.
    Declare,
    /// `=`.
    Assign,
    /// `,`.
    Comma,
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_ident(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Splits `src` into text and actions.
pub fn segments(src: &str, left: &str, right: &str) -> Result<Vec<Segment>, ParseError> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut trim_next = false;
    let bytes = src.as_bytes();
    loop {
        let Some(off) = src[pos..].find(left) else {
            let mut text = &src[pos..];
            if trim_next {
                text = text.trim_start_matches([' ', '\t', '\r', '\n']);
            }
            if !text.is_empty() {
                out.push(Segment::Text(text.to_string()));
            }
            return Ok(out);
        };
        let start = pos + off;
        let mut text = &src[pos..start];
        if trim_next {
            text = text.trim_start_matches([' ', '\t', '\r', '\n']);
        }
        let mut inner = start + left.len();
        let trim_left =
            bytes.get(inner) == Some(&b'-') && bytes.get(inner + 1).is_some_and(|&c| is_space(c));
        if trim_left {
            text = text.trim_end_matches([' ', '\t', '\r', '\n']);
            inner += 2;
        }
        if !text.is_empty() {
            out.push(Segment::Text(text.to_string()));
        }
        let line = 1 + src[..start].matches('\n').count();
        let (toks, end, trim_right) = action(src, inner, right, line)?;
        if let Some(toks) = toks {
            out.push(Segment::Action(toks, line));
        }
        trim_next = trim_right;
        pos = end;
    }
}

/// Whether the action ends at `i`: returns (bytes before the delimiter to skip
/// for a trim marker, trim) when it does.
fn at_right(src: &str, i: usize, right: &str) -> Option<bool> {
    let rest = &src[i..];
    let b = rest.as_bytes();
    if b.len() >= 2 && is_space(b[0]) && b[1] == b'-' && rest[2..].starts_with(right) {
        return Some(true);
    }
    rest.starts_with(right).then_some(false)
}

/// Lexes one action starting at `i` (after the left delimiter and trim
/// marker). Returns its tokens (None for a comment), where the text after it
/// starts, and whether that text is trimmed.
#[allow(clippy::type_complexity)]
fn action(
    src: &str,
    mut i: usize,
    right: &str,
    line: usize,
) -> Result<(Option<Vec<Tok>>, usize, bool), ParseError> {
    let err = |m: String| ParseError { line, message: m };
    let end_of = |i: usize, trim: bool| i + right.len() + if trim { 2 } else { 0 };
    if src[i..].starts_with("/*") {
        let close = src[i + 2..]
            .find("*/")
            .ok_or_else(|| err("unclosed comment".into()))?
            + i
            + 4;
        return match at_right(src, close, right) {
            Some(trim) => Ok((None, end_of(close, trim), trim)),
            None => Err(err("comment ends before closing delimiter".into())),
        };
    }
    let mut toks = Vec::new();
    let b = src.as_bytes();
    loop {
        if let Some(trim) = at_right(src, i, right) {
            return Ok((Some(toks), end_of(i, trim), trim));
        }
        let Some(c) = src[i..].chars().next() else {
            return Err(err("unclosed action".into()));
        };
        match c {
            ' ' | '\t' | '\r' | '\n' => i += 1,
            '(' => {
                toks.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                toks.push(Tok::RParen);
                i += 1;
                if b.get(i) == Some(&b'.') {
                    let (fields, n) = fields(src, i);
                    if !fields.is_empty() {
                        toks.push(Tok::Chain(fields));
                        i = n;
                    }
                }
            }
            '|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            ',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            ':' if b.get(i + 1) == Some(&b'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            '=' => {
                toks.push(Tok::Assign);
                i += 1;
            }
            '"' | '`' => {
                let (s, n) = string(src, i).map_err(err)?;
                toks.push(Tok::Str(s));
                i = n;
            }
            '\'' => {
                let (s, n) = string(src, i).map_err(err)?;
                let mut cs = s.chars();
                match (cs.next(), cs.next()) {
                    (Some(ch), None) => toks.push(Tok::Int(ch as i64)),
                    _ => return Err(err("malformed character constant".into())),
                }
                i = n;
            }
            '.' if !b.get(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                let (f, n) = fields(src, i);
                toks.push(Tok::Field(f));
                i = if n == i { i + 1 } else { n };
            }
            '$' => {
                let mut n = i + 1;
                while let Some(ch) = src[n..].chars().next().filter(|&ch| is_ident(ch)) {
                    n += ch.len_utf8();
                }
                let name = src[i..n].to_string();
                let (f, m) = fields(src, n);
                toks.push(Tok::Var(name, f));
                i = m;
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => {
                let mut n = i + 1;
                while n < b.len()
                    && (b[n].is_ascii_alphanumeric()
                        || b[n] == b'.'
                        || b[n] == b'_'
                        || ((b[n] == b'-' || b[n] == b'+') && matches!(b[n - 1], b'e' | b'E')))
                {
                    n += 1;
                }
                toks.push(
                    number(&src[i..n])
                        .ok_or_else(|| err(format!("bad number syntax: {:?}", &src[i..n])))?,
                );
                i = n;
            }
            c if is_ident(c) => {
                let mut n = i;
                while let Some(ch) = src[n..].chars().next().filter(|&ch| is_ident(ch)) {
                    n += ch.len_utf8();
                }
                let word = &src[i..n];
                toks.push(match word {
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    "nil" => Tok::Nil,
                    w => Tok::Ident(w.to_string()),
                });
                i = n;
            }
            other => return Err(err(format!("unexpected {other:?} in command"))),
        }
    }
}

/// `.A.B` starting at `i` (which holds a `.`), and where it ends.
fn fields(src: &str, mut i: usize) -> (Vec<String>, usize) {
    let mut out = Vec::new();
    while src[i..].starts_with('.') {
        let mut n = i + 1;
        while let Some(ch) = src[n..].chars().next().filter(|&ch| is_ident(ch)) {
            n += ch.len_utf8();
        }
        if n == i + 1 {
            break;
        }
        out.push(src[i + 1..n].to_string());
        i = n;
    }
    (out, i)
}

fn number(s: &str) -> Option<Tok> {
    let clean = s.replace('_', "");
    let (neg, digits) = match clean.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    let radix = |p: &str, r: u32| {
        digits
            .strip_prefix(p)
            .or_else(|| digits.strip_prefix(&p.to_uppercase()))
            .and_then(|d| i64::from_str_radix(d, r).ok())
    };
    let int = radix("0x", 16)
        .or_else(|| radix("0o", 8))
        .or_else(|| radix("0b", 2))
        .or_else(|| {
            if digits.len() > 1
                && digits.starts_with('0')
                && digits.bytes().all(|c| c.is_ascii_digit())
            {
                i64::from_str_radix(&digits[1..], 8).ok()
            } else {
                digits.parse().ok()
            }
        });
    if let Some(v) = int {
        return Some(Tok::Int(if neg { -v } else { v }));
    }
    clean
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Tok::Float)
}

/// A quoted (`"…"`, `'…'`) or raw (`` `…` ``) string at `i`, unescaped.
fn string(src: &str, i: usize) -> Result<(String, usize), String> {
    let quote = src.as_bytes()[i];
    let body = &src[i + 1..];
    if quote == b'`' {
        let n = body.find('`').ok_or("unterminated raw quoted string")?;
        return Ok((body[..n].to_string(), i + 2 + n));
    }
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((k, c)) = chars.next() {
        match c {
            '\n' => return Err("unterminated quoted string".into()),
            c if c as u32 == quote as u32 => return Ok((out, i + 2 + k)),
            '\\' => {
                let (_, e) = chars.next().ok_or("unterminated quoted string")?;
                let hex =
                    |chars: &mut std::str::CharIndices<'_>, n: usize| -> Result<u32, String> {
                        let s: String = chars.by_ref().take(n).map(|(_, c)| c).collect();
                        u32::from_str_radix(&s, 16).map_err(|_| format!("invalid escape \\{e}{s}"))
                    };
                let ch = match e {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    'a' => '\x07',
                    'b' => '\x08',
                    'f' => '\x0c',
                    'v' => '\x0b',
                    '\\' => '\\',
                    '"' => '"',
                    '\'' => '\'',
                    'x' => char::from_u32(hex(&mut chars, 2)?).ok_or("invalid escape")?,
                    'u' => char::from_u32(hex(&mut chars, 4)?).ok_or("invalid escape")?,
                    'U' => char::from_u32(hex(&mut chars, 8)?).ok_or("invalid escape")?,
                    '0'..='7' => {
                        let s: String = std::iter::once(e)
                            .chain(chars.by_ref().take(2).map(|(_, c)| c))
                            .collect();
                        char::from_u32(u32::from_str_radix(&s, 8).map_err(|_| "invalid escape")?)
                            .ok_or("invalid escape")?
                    }
                    other => return Err(format!("unknown escape sequence: \\{other}")),
                };
                out.push(ch);
            }
            c => out.push(c),
        }
    }
    Err("unterminated quoted string".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(s: &str) -> Vec<Segment> {
        segments(s, "{{", "}}").unwrap()
    }

    #[test]
    fn trim_markers_and_comments() {
        assert_eq!(
            lex("a  \n{{- /* c */ -}}\n  b"),
            vec![Segment::Text("a".into()), Segment::Text("b".into())]
        );
        assert_eq!(
            lex("x {{-3}}"),
            vec![
                Segment::Text("x ".into()),
                Segment::Action(vec![Tok::Int(-3)], 1)
            ]
        );
        assert_eq!(
            lex("{{ .Data.data.k | printf \"%s}}\" }}\n"),
            vec![
                Segment::Action(
                    vec![
                        Tok::Field(vec!["Data".into(), "data".into(), "k".into()]),
                        Tok::Pipe,
                        Tok::Ident("printf".into()),
                        Tok::Str("%s}}".into())
                    ],
                    1
                ),
                Segment::Text("\n".into())
            ]
        );
    }

    #[test]
    fn variables_chains_and_custom_delimiters() {
        let s = segments("[[ $k, $v := (x).A ]]", "[[", "]]").unwrap();
        assert_eq!(
            s,
            vec![Segment::Action(
                vec![
                    Tok::Var("$k".into(), vec![]),
                    Tok::Comma,
                    Tok::Var("$v".into(), vec![]),
                    Tok::Declare,
                    Tok::LParen,
                    Tok::Ident("x".into()),
                    Tok::RParen,
                    Tok::Chain(vec!["A".into()])
                ],
                1
            )]
        );
        assert!(segments("{{ \"open }}", "{{", "}}").is_err());
    }
}
