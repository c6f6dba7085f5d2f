//! How programs print a value, for the property tests and the fuzz target only:
//! each [`Producer`] writes a value the way a kind of program does (a debug
//! printer's backslash escapes, shell quoting, doubled quotes, entities,
//! percent-encoding, a wrapped body, colour codes, a pty's line breaks, a
//! truncation), and records which of the value's bytes each printed byte stands
//! for, so that a test can ask whether a run of the value's bytes survives in an
//! output decoded the way the producer encoded it.
//!
//! Every producer is meant to be read back by one decoded view
//! ([`Producer::view`]); [`Producer::reads_back`] says for which values the
//! view reads the printed text as the value (the wrap view joins only body
//! alphabet text, the ANSI view drops a value's own escape bytes).

/// A value as printed: the bytes, and for each byte the range of the value's
/// bytes it stands for (empty for a byte the producer inserted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Printed {
    /// The printed bytes.
    pub bytes: Vec<u8>,
    /// Per printed byte: `start..end` of the value's bytes it stands for.
    pub from: Vec<(u32, u32)>,
}

impl Printed {
    fn push(&mut self, bytes: &[u8], from: std::ops::Range<usize>) {
        self.bytes.extend_from_slice(bytes);
        let r = (from.start as u32, from.end as u32);
        self.from.extend(std::iter::repeat_n(r, bytes.len()));
    }

    fn insert(&mut self, bytes: &[u8], at: usize) {
        self.push(bytes, at..at);
    }

    /// `self`'s text printed again by `outer` (`outer` printed
    /// `self.bytes`): each byte stands for the value bytes of the bytes of
    /// `self` it stands for (a JSON string shell-quoted: two producers in a
    /// row).
    pub fn then(&self, outer: Printed) -> Printed {
        let from = outer
            .from
            .iter()
            .map(|&(a, b)| {
                self.from[a as usize..b as usize]
                    .iter()
                    .filter(|r| r.0 < r.1)
                    .fold(None, |acc: Option<(u32, u32)>, &(x, y)| {
                        Some(acc.map_or((x, y), |(p, q)| (p.min(x), q.max(y))))
                    })
                    .unwrap_or((0, 0))
            })
            .collect();
        Printed {
            bytes: outer.bytes,
            from,
        }
    }

    /// The printed range that stands for value bytes `r`: from the first
    /// printed byte standing for one of them to the last (the insertions
    /// between included), or None when none is printed.
    pub fn source_of(&self, r: std::ops::Range<usize>) -> Option<std::ops::Range<usize>> {
        let hits = |&(a, b): &(u32, u32)| a < b && (a as usize) < r.end && r.start < (b as usize);
        let first = self.from.iter().position(hits)?;
        let last = self.from.iter().rposition(hits)?;
        Some(first..last + 1)
    }
}

/// A way programs print a value. `k` (a free parameter from the test) picks
/// the variant: a quoting style, a hex case, a wrap width, where colour codes
/// go, where a truncation ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Producer {
    /// The inside of a JSON string: `\" \\ \n \t \r \b \f`, `\u00XX` for other
    /// control bytes; a valid UTF-8 character outside ASCII as `\uXXXX` (a
    /// surrogate pair beyond the BMP) when `k` is even (Python's
    /// `ensure_ascii`), raw when odd; `/` as `\/` when `k % 3 == 0` (PHP).
    Json,
    /// Python's `repr` of bytes: `\\ \'`, `\n \t \r`, `\xNN` (case by `k`)
    /// for control bytes and bytes over 0x7e.
    PythonRepr,
    /// Perl `Data::Dumper` and PHP `var_export` (single quotes: `\\ \'` only)
    /// when `k` is even; Perl with `Useqq` (`\\ \" \$ \@ \n \t \r \e`, octal
    /// `\NNN` for other control and high bytes) when odd.
    PerlPhp,
    /// Shell single quoting of a value holding `'`: `'\''` (bash -x, `${v@Q}`,
    /// `shlex.quote`, `escapeshellarg`) when `k` is even, `'"'"'` when odd.
    ShellQuote,
    /// `printf %q`: a backslash before every byte but letters, digits and
    /// `-_./:,=@%+`.
    PrintfQ,
    /// Quote doubling (YAML single quotes, SQL, CSV): `''` and `""`.
    Doubled,
    /// HTML/XML entities: `&amp; &lt; &gt;`, `"` as `&#34;` or `&quot;`, `'`
    /// as `&#039;`, `&#39;` or `&apos;`, tab and line break as `&#x9;`
    /// `&#xa;` (by `k`).
    Entities,
    /// Percent-encoding of every byte but letters and digits, a space as `+`
    /// when `k` is even, hex case by `k`.
    Percent,
    /// A body wrapped every `k % 80 + 1` bytes, the breaks `\n`, `\r\n`, or
    /// `\n` with an indentation or a comment prefix (by `k`).
    Wrap,
    /// ANSI colour codes inserted before the value's bytes where the bits of
    /// `k` are set (`grep --color`, `git diff --color-words`).
    Colour,
    /// A pty's line discipline: `\n` as `\r\n`.
    Pty,
    /// The first `k % 64 + 1` bytes only (`printf '%.32s'`, a base64 value
    /// without its `=`).
    Truncate,
}

impl Producer {
    /// Every producer.
    pub const ALL: &'static [Producer] = &[
        Producer::Json,
        Producer::PythonRepr,
        Producer::PerlPhp,
        Producer::ShellQuote,
        Producer::PrintfQ,
        Producer::Doubled,
        Producer::Entities,
        Producer::Percent,
        Producer::Wrap,
        Producer::Colour,
        Producer::Pty,
        Producer::Truncate,
    ];

    /// The decoded view that reads this producer's text back (`raw` for a
    /// truncation, which the piece rule covers).
    pub fn view(self) -> &'static str {
        match self {
            Producer::Json | Producer::PythonRepr | Producer::PerlPhp => "backslash",
            Producer::ShellQuote => "shell_quote",
            Producer::PrintfQ => "shell_escape",
            Producer::Doubled => "doubled",
            Producer::Entities => "entity",
            Producer::Percent => "percent",
            Producer::Wrap => "wrap",
            Producer::Colour => "ansi",
            Producer::Pty => "pty",
            Producer::Truncate => "raw",
        }
    }

    /// Whether the view reads this producer's printing of `value` back as
    /// `value`: the wrap view joins body alphabet only (base64, hex), and the
    /// ANSI view drops a value's own escape sequences along with the
    /// inserted ones.
    pub fn reads_back(self, value: &[u8]) -> bool {
        match self {
            Producer::Wrap => value.iter().all(|&b| {
                b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_')
            }),
            Producer::Colour => !value.contains(&0x1b),
            _ => true,
        }
    }

    /// `value` as this producer prints it, `k` picking the variant.
    pub fn print(self, value: &[u8], k: usize) -> Printed {
        let mut out = Printed::default();
        match self {
            Producer::Json => json(value, k, &mut out),
            Producer::Truncate => {
                let n = (k % 64 + 1).min(value.len());
                for i in 0..n {
                    out.push(&value[i..=i], i..i + 1);
                }
            }
            Producer::Colour => {
                const CODES: &[&[u8]] = &[
                    b"\x1b[31m",
                    b"\x1b[0m",
                    b"\x1b[01;31m\x1b[K",
                    b"\x1b[m\x1b[K",
                ];
                for (i, &b) in value.iter().enumerate() {
                    if i > 0 && (k >> (i % 32)) & 1 == 1 {
                        out.insert(CODES[((k >> 8) ^ i) % CODES.len()], i);
                    }
                    out.push(&[b], i..i + 1);
                }
            }
            Producer::Wrap => {
                let width = k % 80 + 1;
                let brk: &[u8] =
                    [&b"\n"[..], b"\r\n", b"\n  ", b"\n    ", b"\n# ", b"\n\t"][k / 80 % 6];
                for (i, &b) in value.iter().enumerate() {
                    if i > 0 && i.is_multiple_of(width) {
                        out.insert(brk, i);
                    }
                    out.push(&[b], i..i + 1);
                }
            }
            _ => {
                for (i, &b) in value.iter().enumerate() {
                    let printed = self.byte(b, k);
                    out.push(&printed, i..i + 1);
                }
            }
        }
        out
    }

    /// One byte as a byte-wise producer prints it.
    fn byte(self, b: u8, k: usize) -> Vec<u8> {
        let hex = |upper: bool| {
            if upper {
                format!("{b:02X}")
            } else {
                format!("{b:02x}")
            }
        };
        let esc = |c: u8| vec![b'\\', c];
        match self {
            Producer::PythonRepr => match b {
                b'\\' | b'\'' => esc(b),
                b'\n' => esc(b'n'),
                b'\t' => esc(b't'),
                b'\r' => esc(b'r'),
                0..=0x1f | 0x7f..=0xff => format!("\\x{}", hex(k % 2 == 1)).into_bytes(),
                _ => vec![b],
            },
            Producer::PerlPhp if k.is_multiple_of(2) => match b {
                b'\\' | b'\'' => esc(b),
                _ => vec![b],
            },
            Producer::PerlPhp => match b {
                b'\\' | b'"' | b'$' | b'@' => esc(b),
                b'\n' => esc(b'n'),
                b'\t' => esc(b't'),
                b'\r' => esc(b'r'),
                0x1b => esc(b'e'),
                0..=0x1f | 0x7f..=0xff => format!("\\{b:03o}").into_bytes(),
                _ => vec![b],
            },
            Producer::ShellQuote if b == b'\'' => {
                if k.is_multiple_of(2) {
                    b"'\\''".to_vec()
                } else {
                    b"'\"'\"'".to_vec()
                }
            }
            Producer::PrintfQ if !b.is_ascii_alphanumeric() && !b"-_./:,=@%+".contains(&b) => {
                esc(b)
            }
            Producer::Doubled if b == b'\'' || b == b'"' => vec![b, b],
            Producer::Entities => match b {
                b'&' => b"&amp;".to_vec(),
                b'<' => b"&lt;".to_vec(),
                b'>' => b"&gt;".to_vec(),
                b'"' => [&b"&#34;"[..], b"&quot;"][k % 2].to_vec(),
                b'\'' => [&b"&#039;"[..], b"&#39;", b"&apos;"][k % 3].to_vec(),
                b'\t' => b"&#x9;".to_vec(),
                b'\n' => [&b"&#xa;"[..], b"&#10;"][k % 2].to_vec(),
                _ => vec![b],
            },
            Producer::Percent => match b {
                b' ' if k.is_multiple_of(2) => vec![b'+'],
                _ if b.is_ascii_alphanumeric() => vec![b],
                _ => format!("%{}", hex(k % 4 < 2)).into_bytes(),
            },
            Producer::Pty if b == b'\n' => b"\r\n".to_vec(),
            _ => vec![b],
        }
    }
}

/// [`Producer::Json`]: valid UTF-8 characters one by one, other bytes raw.
fn json(value: &[u8], k: usize, out: &mut Printed) {
    let mut at = 0;
    for chunk in value.utf8_chunks() {
        for c in chunk.valid().chars() {
            let n = c.len_utf8();
            let r = at..at + n;
            let mut units = [0u16; 2];
            let text = match c {
                '"' => "\\\"".to_string(),
                '\\' => "\\\\".to_string(),
                '/' if k.is_multiple_of(3) => "\\/".to_string(),
                '\n' => "\\n".to_string(),
                '\t' => "\\t".to_string(),
                '\r' => "\\r".to_string(),
                '\u{8}' => "\\b".to_string(),
                '\u{c}' => "\\f".to_string(),
                c if (c as u32) < 0x20 || (c as u32 > 0x7e && k.is_multiple_of(2)) => c
                    .encode_utf16(&mut units)
                    .iter()
                    .map(|u| format!("\\u{u:04x}"))
                    .collect(),
                c => c.to_string(),
            };
            out.push(text.as_bytes(), r);
            at += n;
        }
        for (i, &b) in chunk.invalid().iter().enumerate() {
            out.push(&[b], at + i..at + i + 1);
        }
        at += chunk.invalid().len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::{self, testing::view};

    fn view_of(p: Producer) -> &'static views::View {
        views::ALL
            .iter()
            .copied()
            .find(|v| v.name == p.view())
            .expect("a producer's view exists")
    }

    /// Every producer's text decodes, in its view, to the value (for a value
    /// it can be read back from), at every variant.
    #[test]
    fn each_view_reads_its_producer_back() {
        let values: &[&[u8]] = &[
            b"a'b\"c\\d$ &<f>g%h+i/j@k\tl\nm",
            "p\u{e9}ss\u{1f600}w\u{2603}rd".as_bytes(),
            b"ctl\x1b\x01\x7f\xff\xc3end",
            b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=",
        ];
        for &p in Producer::ALL {
            if matches!(p, Producer::Truncate) {
                continue;
            }
            for v in values.iter().filter(|v| p.reads_back(v)) {
                for k in 0..400 {
                    let printed = p.print(v, k);
                    assert_eq!(
                        view(view_of(p), &printed.bytes).0,
                        v.to_vec(),
                        "{p:?} k={k} printed {:?}",
                        String::from_utf8_lossy(&printed.bytes)
                    );
                }
            }
        }
    }

    #[test]
    fn source_of_spans_the_insertions_between() {
        let p = Producer::Colour.print(b"abcd", 0b100);
        assert_eq!(p.bytes, b"ab\x1b[01;31m\x1b[Kcd");
        assert_eq!(p.source_of(1..3), Some(1..14));
        assert_eq!(p.source_of(4..5), None);
        let p = Producer::Json.print("\u{e9}x".as_bytes(), 0);
        assert_eq!(p.bytes, b"\\u00e9x");
        assert_eq!(p.source_of(1..2), Some(0..6));
    }
}
