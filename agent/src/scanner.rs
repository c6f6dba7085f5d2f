//! Finding known secret values in files: a file is read in chunks, each scanned
//! together with the last `longest pattern - 1` bytes of the one before, so an
//! occurrence that spans a chunk boundary is found once, at its absolute offset.

use std::io::{self, Read};

use shroud_redactor::SecretSet;
use zeroize::Zeroizing;

/// Bytes read per chunk.
pub const CHUNK: usize = 1 << 20;

/// One occurrence of a secret. Names and positions only, never bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Byte offset of the first byte of the occurrence in the file.
    pub offset: u64,
    /// Length of the occurrence in bytes.
    pub len: usize,
    /// Name of the secret (its file name or values-file name).
    pub secret: String,
    /// Which form of it was found (`raw`, `base64`, `json`, …).
    pub encoding: &'static str,
}

/// Scans everything `input` yields, calling `found` for each occurrence in order,
/// and returns the number of bytes read.
pub fn scan_reader(
    set: &SecretSet,
    mut input: impl Read,
    chunk: usize,
    mut found: impl FnMut(Finding),
) -> io::Result<u64> {
    let overlap = set.max_pattern_len().saturating_sub(1);
    let chunk = chunk.max(1);
    let mut buf = Zeroizing::new(Vec::with_capacity(overlap + chunk));
    // Absolute offset of buf[0], and of the end of the last reported occurrence.
    let mut base = 0u64;
    let mut covered = 0u64;
    let mut total = 0u64;
    loop {
        let kept = buf.len();
        buf.resize(kept + chunk, 0);
        let n = read_full(&mut input, &mut buf[kept..])?;
        buf.truncate(kept + n);
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
        if !set.is_empty() {
            for m in set.find_matches(&buf) {
                let start = base + m.start as u64;
                if start < covered {
                    continue;
                }
                covered = base + m.end as u64;
                let info = set.pattern_info(m.pattern);
                found(Finding {
                    offset: start,
                    len: m.end - m.start,
                    secret: set.secret_name(info.secret).to_string(),
                    encoding: info.encoding.name(),
                });
            }
        }
        let drop = buf.len().saturating_sub(overlap);
        // Zeroize the bytes shifted out: `drain` only moves the tail down.
        buf[..drop].iter_mut().for_each(|b| *b = 0);
        buf.drain(..drop);
        base += drop as u64;
    }
}

/// Reads until `buf` is full or end of input; returns how much was read.
pub(crate) fn read_full(input: &mut (impl Read + ?Sized), buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use shroud_redactor::SecretSetBuilder;

    use super::*;

    fn set() -> SecretSet {
        let mut b = SecretSetBuilder::new();
        b.add("db", b"hunter2-database-pass");
        b.add("api", b"api-key-00112233");
        b.build().0
    }

    fn scan(input: &[u8], chunk: usize) -> Vec<Finding> {
        let mut out = Vec::new();
        let n = scan_reader(&set(), input, chunk, |f| out.push(f)).unwrap();
        assert_eq!(n, input.len() as u64);
        out
    }

    #[test]
    fn finds_each_occurrence_once_at_every_chunk_size() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(b"xhunter2-database-passy");
        let mut input = vec![0u8, 159, 255, 7];
        input.extend_from_slice(b"hunter2-database-pass");
        input.extend_from_slice(&[0xfe; 40]);
        let b64_at = input.len();
        input.extend_from_slice(b64.as_bytes());
        input.extend_from_slice(b"--api-key-00112233");
        let want = scan(&input, CHUNK);
        assert_eq!(want.len(), 3, "{want:?}");
        assert_eq!(
            (want[0].offset, want[0].secret.as_str(), want[0].encoding),
            (4, "db", "raw")
        );
        assert_eq!(want[1].secret, "db");
        assert_eq!(want[1].encoding, "base64");
        assert!(want[1].offset >= b64_at as u64 && want[1].offset < b64_at as u64 + 4);
        assert_eq!(want[2].encoding, "raw");
        for chunk in [1, 2, 3, 7, 16, 21, 22, 64] {
            assert_eq!(scan(&input, chunk), want, "chunk {chunk}");
        }
    }

    #[test]
    fn clean_input_has_no_findings() {
        assert!(scan(b"nothing to see here, hunter2-databas", 5).is_empty());
    }
}
