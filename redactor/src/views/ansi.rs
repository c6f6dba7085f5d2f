//! The view without ANSI escape sequences: CSI (`ESC [` parameters,
//! intermediates, a final byte: colours, cursor moves) and OSC (`ESC ]` … BEL or
//! `ESC \`: titles, hyperlinks) are dropped, so `grep --color` or `git diff
//! --color-words` splitting a value does not split a piece. A sequence longer
//! than [`MAX_SEQUENCE`] bytes, or malformed, is kept as it is.

use super::{Out, Step, View};

/// Longer "sequences" are not taken as one (so a stray `ESC [` does not hide
/// what follows).
pub(crate) const MAX_SEQUENCE: usize = 64;

/// The view.
pub(crate) const VIEW: View = View {
    name: "ansi",
    triggers: &[0x1b],
    max_seq: MAX_SEQUENCE,
    hold_open: true,
    step,
    accept: super::any,
    window: None,
    after: None,
};

fn step(src: &[u8], at: usize) -> Step {
    let s = &src[at..];
    let limit = s.len().min(MAX_SEQUENCE);
    let whole = |len| Step::Seq {
        len,
        out: Out::NONE,
    };
    let Some(&kind) = s.get(1) else {
        return Step::Open;
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
                    whole(i + 1)
                } else {
                    Step::Literal
                };
            }
        }
        b']' => {
            while i < limit {
                match s[i] {
                    0x07 => return whole(i + 1),
                    0x1b if i + 1 < limit && s[i + 1] == b'\\' => return whole(i + 2),
                    0x1b if i + 1 == s.len() => return Step::Open,
                    _ => i += 1,
                }
            }
        }
        _ => return Step::Literal,
    }
    if s.len() < MAX_SEQUENCE {
        Step::Open
    } else {
        Step::Literal
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::view;
    use super::*;

    /// `grep --color=always abc <<< 'xyzabcdef'` (GNU grep 3.8).
    #[test]
    fn grep_color_inside_a_value_is_dropped() {
        let out = b"xyz\x1b[01;31m\x1b[Kabc\x1b[m\x1b[Kdef\n";
        assert_eq!(view(&VIEW, out), (b"xyzabcdef\n".to_vec(), None));
    }

    #[test]
    fn osc_hyperlinks_and_titles_are_dropped() {
        let out = b"a\x1b]8;;http://x/\x1b\\b\x1b]0;title\x07c";
        assert_eq!(view(&VIEW, out), (b"abc".to_vec(), None));
    }

    #[test]
    fn unfinished_sequences_are_pending_malformed_ones_kept() {
        assert_eq!(view(&VIEW, b"ab\x1b[01;3"), (b"ab".to_vec(), Some(2)));
        assert_eq!(view(&VIEW, b"ab\x1b"), (b"ab".to_vec(), Some(2)));
        assert_eq!(view(&VIEW, b"a\x1b(Bc"), (b"a\x1b(Bc".to_vec(), None));
        assert_eq!(
            view(&VIEW, b"a\x1b[1\x00c"),
            (b"a\x1b[1\x00c".to_vec(), None)
        );
        let mut long = b"a\x1b[".to_vec();
        long.extend_from_slice(&[b'1'; 70]);
        let (bytes, pending) = view(&VIEW, &long);
        assert_eq!((bytes.len(), pending), (long.len(), None));
    }
}
