//! Which values have pieces likely to turn up in ordinary text, so that the user
//! is warned at load (by name) that masking them will also mask text that is not
//! the secret. A heuristic, stated so that it can be documented: a piece looks
//! ordinary when it is made of digits only (a number, a date, a phone number) or
//! of at most four distinct bytes (a repetition such as `aaaa…` or `abab…`).
//! Words and phrases are not judged: telling a passphrase from a random token of
//! letters needs a dictionary.

/// True when some `piece`-byte run of `value` looks like ordinary text (see the
/// module documentation). A value shorter than `piece` is judged whole.
pub(crate) fn has_ordinary_piece(value: &[u8], piece: usize) -> bool {
    let piece = piece.min(value.len()).max(1);
    value.windows(piece).any(looks_ordinary)
}

fn looks_ordinary(w: &[u8]) -> bool {
    let digits = w.iter().all(u8::is_ascii_digit);
    let mut seen = [false; 256];
    let mut distinct = 0;
    for &b in w {
        if !seen[usize::from(b)] {
            seen[usize::from(b)] = true;
            distinct += 1;
        }
    }
    digits || distinct <= 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_repetitions_are_ordinary_random_tokens_and_phrases_are_not() {
        for v in [
            &b"20261207123456"[..],
            b"4111111111111111",
            b"abababababababab",
            b"XXXXXXXXXXXXXXXX",
        ] {
            assert!(has_ordinary_piece(v, 12), "{}", String::from_utf8_lossy(v));
        }
        for v in [
            &b"k9Qz2LmV8xTr4NbW7cYp3JsH"[..],
            b"ghp_16C7e42F292c6912E7710c838347Ae178B4a",
            b"Tr0ub4dor&3",
            b"correct horse battery staple",
        ] {
            assert!(!has_ordinary_piece(v, 12), "{}", String::from_utf8_lossy(v));
        }
    }
}
