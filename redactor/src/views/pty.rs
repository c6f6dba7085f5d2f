//! The view through a terminal's line discipline: a pty turns every `\n` a
//! program writes into `\r\n` (onlcr), so a multi-line value with short lines
//! shows with a `\r` before each break; this view reads `\r\n` as `\n`.

use super::{Out, Step, View};

/// The view.
pub(crate) const VIEW: View = View {
    name: "pty",
    triggers: b"\r",
    max_seq: 2,
    hold_open: true,
    step,
    accept: super::any,
    window: None,
    after: None,
};

fn step(src: &[u8], at: usize) -> Step {
    match src.get(at + 1) {
        None => Step::Open,
        Some(b'\n') => Step::Seq {
            len: 2,
            out: Out::byte(b'\n'),
        },
        Some(_) => Step::Literal,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{text, view};
    use super::*;

    #[test]
    fn crlf_is_a_line_break() {
        assert_eq!(text(&VIEW, b"abcde\r\nfghij\r\n"), "abcde\nfghij\n");
        assert_eq!(text(&VIEW, b"50%\r60%"), "50%\r60%");
        assert_eq!(view(&VIEW, b"ab\r"), (b"ab".to_vec(), Some(2)));
    }
}
