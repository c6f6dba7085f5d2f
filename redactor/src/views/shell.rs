//! Two views of shell quoting. `shell_quote`: `'\''` (close, escaped quote,
//! reopen: bash -x, `${v@Q}`, Python `shlex.quote`, PHP `escapeshellarg`) and
//! `'"'"'` read as one `'`. `shell_escape`: a backslash before any byte read as
//! that byte (`printf %q`, bash -x of words with spaces). They are two views
//! because inside single quotes a backslash is literal: one view doing both
//! would misread `'a\b'\''c'`.

use super::{Out, Step, View};

/// `'\''` and `'"'"'` as `'`.
pub(crate) const QUOTE: View = View {
    name: "shell_quote",
    triggers: b"'",
    max_seq: 5,
    hold_open: true,
    step: quote,
    accept: super::any,
    window: None,
    after: None,
};

/// `\x` as `x`.
pub(crate) const ESCAPE: View = View {
    name: "shell_escape",
    triggers: b"\\",
    max_seq: 2,
    hold_open: true,
    step: escape,
    accept: super::any,
    window: None,
    after: None,
};

fn quote(src: &[u8], at: usize) -> Step {
    let s = &src[at..];
    let mut open = false;
    for form in [&b"'\\''"[..], b"'\"'\"'"] {
        let n = s.len().min(form.len());
        if s[..n] == form[..n] {
            if n == form.len() {
                return Step::Seq {
                    len: n,
                    out: Out::byte(b'\''),
                };
            }
            open = true;
        }
    }
    if open {
        Step::Open
    } else {
        Step::Literal
    }
}

fn escape(src: &[u8], at: usize) -> Step {
    match src.get(at + 1) {
        Some(&b) => Step::Seq {
            len: 2,
            out: Out::byte(b),
        },
        None => Step::Open,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{text, view};
    use super::*;

    /// bash 5.2 `bash -x` of `true "$v"`, `${v@Q}` and `shlex.quote` for
    /// v = `ab'c"d\e$ &<f`: all print `'ab'\''c"d\e$ &<f'`.
    #[test]
    fn bash_xtrace_and_at_q() {
        let out = b"+ true 'ab'\\''c\"d\\e$ &<f'\n";
        assert_eq!(text(&QUOTE, out), "+ true 'ab'c\"d\\e$ &<f'\n");
        assert_eq!(text(&QUOTE, b"'ab'\"'\"'cd' "), "'ab'cd' ");
    }

    /// bash 5.2 `printf %q` of `ab'c"d\e$ &<f`.
    #[test]
    fn printf_q() {
        let out = b"ab\\'c\\\"d\\\\e\\$\\ \\&\\<f";
        assert_eq!(text(&ESCAPE, out), "ab'c\"d\\e$ &<f");
    }

    /// bash 5.2 `declare -p v` of the same value: `\"`, `\\`, `\$`.
    #[test]
    fn declare_p() {
        let out = b"declare -x v=\"ab'c\\\"d\\\\e\\$ &<f\"";
        assert_eq!(text(&ESCAPE, out), "declare -x v=\"ab'c\"d\\e$ &<f\"");
    }

    #[test]
    fn open_forms_are_pending() {
        assert_eq!(view(&QUOTE, b"ab'\\'"), (b"ab".to_vec(), Some(2)));
        assert_eq!(view(&QUOTE, b"don't"), (b"don't".to_vec(), None));
        assert_eq!(view(&ESCAPE, b"ab\\"), (b"ab".to_vec(), Some(2)));
    }
}
