//! The view through percent-encoding: `%XX` in either hex case read as the
//! byte, and `+` as a space (form encoding). A `%` not followed by two hex
//! digits is kept.

use super::{Out, Step, View};

/// The view.
pub(crate) const VIEW: View = View {
    name: "percent",
    triggers: b"%+",
    max_seq: 3,
    hold_open: true,
    step,
    accept: super::any,
    window: None,
    after: None,
};

/// The view without `+`, for sets where no pattern has a space (a `+` read
/// as a space could then start no unit, and base64 is full of `+`).
pub(crate) const NO_PLUS: View = View {
    name: "percent",
    triggers: b"%",
    ..VIEW
};

fn step(src: &[u8], at: usize) -> Step {
    if src[at] == b'+' {
        return Step::Seq {
            len: 1,
            out: Out::byte(b' '),
        };
    }
    let digit = |k: usize| src.get(at + k).map(|&b| (b as char).to_digit(16));
    match (digit(1), digit(2)) {
        (None, _) | (Some(Some(_)), None) => Step::Open,
        (Some(Some(h)), Some(Some(l))) => Step::Seq {
            len: 3,
            out: Out::byte((h * 16 + l) as u8),
        },
        _ => Step::Literal,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{text, view};
    use super::*;

    /// Python `urllib.parse.quote_plus("a'b\"c&d e/f")` and `quote` (lower case
    /// as some encoders print it).
    #[test]
    fn both_cases_and_plus() {
        assert_eq!(text(&VIEW, b"a%27b%22c%26d+e%2Ff"), "a'b\"c&d e/f");
        assert_eq!(text(&VIEW, b"a%27b%22c%26d%20e%2ff"), "a'b\"c&d e/f");
        assert_eq!(text(&VIEW, b"100% sure"), "100% sure");
        assert_eq!(view(&VIEW, b"ab%2"), (b"ab".to_vec(), Some(2)));
    }
}
