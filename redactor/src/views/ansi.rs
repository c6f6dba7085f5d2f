//! The view without ANSI escape sequences: CSI (`ESC [` parameters,
//! intermediates, a final byte: colours, cursor moves) and OSC (`ESC ]` … BEL or
//! `ESC \`: titles, hyperlinks) are dropped, so `grep --color` or `git diff
//! --color-words` splitting a value does not split a piece. A sequence longer
//! than [`MAX_SEQUENCE`] bytes, or malformed, is kept as it is.

use super::Decoded;

/// Longer "sequences" are not taken as one (so a stray `ESC [` does not hide
/// what follows).
pub(crate) const MAX_SEQUENCE: usize = 64;

/// Bytes that start a sequence; a buffer without one decodes to itself.
pub(crate) const TRIGGER: u8 = 0x1b;

enum Seq {
    /// A whole sequence of this many bytes.
    Whole(usize),
    /// Not a sequence: the ESC is an ordinary byte.
    No,
    /// The buffer ends before the sequence is decided.
    Open,
}

fn sequence(s: &[u8]) -> Seq {
    let limit = s.len().min(MAX_SEQUENCE);
    let Some(&kind) = s.get(1) else {
        return Seq::Open;
    };
    let mut i = 2;
    match kind {
        b'[' => {
            while i < limit && (0x30..=0x3f).contains(&s[i]) {
                i += 1;
            }
            while i < limit && (0x20..=0x2f).contains(&s[i]) {
                i += 1;
            }
            if i < limit {
                return if (0x40..=0x7e).contains(&s[i]) {
                    Seq::Whole(i + 1)
                } else {
                    Seq::No
                };
            }
        }
        b']' => {
            while i < limit {
                match s[i] {
                    0x07 => return Seq::Whole(i + 1),
                    0x1b if i + 1 < limit && s[i + 1] == b'\\' => return Seq::Whole(i + 2),
                    0x1b if i + 1 == s.len() => return Seq::Open,
                    _ => i += 1,
                }
            }
        }
        _ => return Seq::No,
    }
    if s.len() < MAX_SEQUENCE {
        Seq::Open
    } else {
        Seq::No
    }
}

/// Decodes `src`, or None when it holds no escape (the view is the source).
pub(crate) fn decode(src: &[u8]) -> Option<Decoded> {
    let first = memchr::memchr(TRIGGER, src)?;
    let mut d = Decoded {
        bytes: Vec::with_capacity(src.len()),
        spans: Vec::with_capacity(src.len()),
        ..Decoded::default()
    };
    let literal = |d: &mut Decoded, r: std::ops::Range<usize>| {
        d.bytes.extend_from_slice(&src[r.clone()]);
        d.spans.extend(r.map(|i| (i as u32, i as u32 + 1)));
    };
    literal(&mut d, 0..first);
    let mut i = first;
    while i < src.len() {
        if src[i] != TRIGGER {
            let next = memchr::memchr(TRIGGER, &src[i..]).map_or(src.len(), |n| i + n);
            literal(&mut d, i..next);
            i = next;
            continue;
        }
        match sequence(&src[i..]) {
            Seq::Whole(n) => {
                d.dropped.push(i..i + n);
                i += n;
            }
            Seq::No => {
                literal(&mut d, i..i + 1);
                i += 1;
            }
            Seq::Open => {
                d.pending = Some(i);
                break;
            }
        }
    }
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(src: &[u8]) -> (Vec<u8>, Option<usize>) {
        let d = decode(src).unwrap();
        (d.bytes, d.pending)
    }

    /// `grep --color=always abc <<< 'xyzabcdef'` (GNU grep 3.8).
    #[test]
    fn grep_color_inside_a_value_is_dropped() {
        let out = b"xyz\x1b[01;31m\x1b[Kabc\x1b[m\x1b[Kdef\n";
        assert_eq!(view(out), (b"xyzabcdef\n".to_vec(), None));
    }

    #[test]
    fn osc_hyperlinks_and_titles_are_dropped() {
        let out = b"a\x1b]8;;http://x/\x1b\\b\x1b]0;title\x07c";
        assert_eq!(view(out), (b"abc".to_vec(), None));
    }

    #[test]
    fn unfinished_sequences_are_pending_malformed_ones_kept() {
        assert_eq!(view(b"ab\x1b[01;3"), (b"ab".to_vec(), Some(2)));
        assert_eq!(view(b"ab\x1b"), (b"ab".to_vec(), Some(2)));
        assert_eq!(view(b"a\x1b(Bc"), (b"a\x1b(Bc".to_vec(), None));
        assert_eq!(view(b"a\x1b[1\x00c"), (b"a\x1b[1\x00c".to_vec(), None));
        let mut long = b"a\x1b[".to_vec();
        long.extend_from_slice(&[b'1'; 70]);
        let (bytes, pending) = view(&long);
        assert_eq!((bytes.len(), pending), (long.len(), None));
        assert!(decode(b"no escape").is_none());
    }
}
