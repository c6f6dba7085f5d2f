//! The simple implementation every fast path is checked against: a naive scan over
//! the whole input with the same semantics as the streaming [`crate::Redactor`]
//! followed by `finish`. Quadratic; for tests, fuzzing and benchmarks only.

/// Replaces every leftmost-longest occurrence of any of `patterns` in `input` with
/// `mask`. A trailing piece that is a proper prefix of a pattern is masked when it is
/// at least `min_length` bytes long and kept otherwise, as at the end of a stream.
pub fn redact_all(patterns: &[Vec<u8>], input: &[u8], mask: &[u8], min_length: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut p = 0;
    while p < input.len() {
        let rest = &input[p..];
        if patterns
            .iter()
            .any(|pat| pat.len() > rest.len() && pat.starts_with(rest))
        {
            if rest.len() >= min_length {
                out.extend_from_slice(mask);
            } else {
                out.extend_from_slice(rest);
            }
            return out;
        }
        let longest = patterns
            .iter()
            .filter(|pat| rest.starts_with(pat))
            .map(|pat| pat.len())
            .max();
        match longest {
            Some(len) => {
                out.extend_from_slice(mask);
                p += len;
            }
            None => {
                out.push(input[p]);
                p += 1;
            }
        }
    }
    out
}
