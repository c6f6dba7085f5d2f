//! Finding known secret values in files: a file is read in chunks, each scanned
//! together with the last [`SecretSet::max_occurrence_span`]` - 1` bytes of the
//! one before, so an occurrence that spans a chunk boundary is found once, at its
//! absolute offset. Values are looked for in the bytes and in their decoded views
//! (escapes, quoting, entities, percent, wrapped base64, colour codes): a value a
//! program escaped is found at the offsets of its escaped bytes, as redaction
//! masks it ([`SecretSet::find_occurrences_in_views`]).
//! Every secret present is reported, also where its occurrence overlaps another
//! secret's; overlapping occurrences of one secret are one finding
//! ([`RunMerger`]), whatever the chunk size.
//!
//! The credential detectors, when given, look at the same buffer with at least
//! [`DETECT_OVERLAP`] bytes of the chunk before: each credential is reported
//! once, from where it starts, under the detector's name.

use std::io::{self, Read};

use shroud_redactor::detect::DetectorSet;
use shroud_redactor::{Run, RunMerger, SecretSet};
use zeroize::Zeroizing;

/// Bytes read per chunk.
pub const CHUNK: usize = 1 << 20;

/// Bytes of the chunk before that the detectors see again: longer than any
/// format but a PEM block, and a block is found by its header.
pub const DETECT_OVERLAP: usize = 4096;

/// The `encoding` of a detector's finding.
pub const DETECTED: &str = "detector";

/// One occurrence of a secret. Names and positions only, never bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Byte offset of the first byte of the occurrence in the file.
    pub offset: u64,
    /// Length of the occurrence in bytes.
    pub len: usize,
    /// Name of the secret (its file name or values-file name), or of the
    /// detector that found a credential (then `encoding` is [`DETECTED`]).
    pub secret: String,
    /// Which form of it was found (`raw`, `base64`, `json`, …).
    pub encoding: &'static str,
}

/// Scans everything `input` yields, calling `found` for each occurrence of a
/// secret of `set` in order and for each credential `detectors` find, and
/// returns the number of bytes read.
pub fn scan_reader(
    set: &SecretSet,
    detectors: Option<&DetectorSet>,
    mut input: impl Read,
    chunk: usize,
    found: impl FnMut(Finding),
) -> io::Result<u64> {
    let found = std::cell::RefCell::new(found);
    let span = set.max_occurrence_span();
    let mut overlap = span.saturating_sub(1);
    if detectors.is_some() {
        overlap = overlap.max(DETECT_OVERLAP);
    }
    let chunk = chunk.max(1);
    let mut buf = Zeroizing::new(Vec::with_capacity(overlap + chunk));
    let mut runs = RunMerger::new();
    let report = |r: Run| {
        let info = set.pattern_info(r.pattern);
        (found.borrow_mut())(Finding {
            offset: r.start,
            len: (r.end - r.start) as usize,
            secret: set.secret_name(r.secret).to_string(),
            encoding: info.encoding.name(),
        })
    };
    // Absolute end of the last credential reported: one seen again in the
    // overlap (or cut by the buffer's end before) is not reported twice.
    let mut detected_until = 0u64;
    // Absolute offset of buf[0].
    let mut base = 0u64;
    let mut total = 0u64;
    loop {
        let kept = buf.len();
        buf.resize(kept + chunk, 0);
        let n = read_full(&mut input, &mut buf[kept..])?;
        buf.truncate(kept + n);
        if n == 0 {
            runs.finish().into_iter().for_each(report);
            return Ok(total);
        }
        total += n as u64;
        if let Some(detectors) = detectors {
            for d in detectors.find_all(&buf) {
                let start = base + d.range.start as u64;
                if start < detected_until {
                    continue;
                }
                detected_until = base + d.range.end as u64;
                (found.borrow_mut())(Finding {
                    offset: start,
                    len: d.range.len(),
                    secret: d.name.to_string(),
                    encoding: DETECTED,
                });
            }
        }
        if !set.is_empty() {
            // An occurrence wholly inside the kept bytes was added with the
            // chunk before.
            for m in set.find_occurrences_in_views(&buf) {
                if m.end > kept {
                    runs.add(set, base, m);
                }
            }
            // Occurrences not found yet end past the buffer, so start at or after:
            let limit = (base + buf.len() as u64 + 1).saturating_sub(span as u64);
            runs.take_final(limit).into_iter().for_each(report);
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
        set_of(&[
            ("db", b"hunter2-database-pass"),
            ("api", b"api-key-00112233"),
        ])
    }

    fn set_of(values: &[(&str, &[u8])]) -> SecretSet {
        let mut b = SecretSetBuilder::new();
        for (name, value) in values {
            b.add(*name, value);
        }
        b.build().0
    }

    fn scan(input: &[u8], chunk: usize) -> Vec<Finding> {
        scan_with(&set(), input, chunk)
    }

    fn scan_with(set: &SecretSet, input: &[u8], chunk: usize) -> Vec<Finding> {
        let mut out = Vec::new();
        let n = scan_reader(set, None, input, chunk, |f| out.push(f)).unwrap();
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

    /// A credential nobody registered is one finding named by its detector, at
    /// every chunk size, also when a chunk boundary cuts it.
    #[test]
    fn detectors_report_each_credential_once_at_every_chunk_size() {
        let detectors = DetectorSet::all(b"[REDACTED]");
        let key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n";
        let mut input = b"header line\n".repeat(700);
        let key_at = input.len() as u64;
        input.extend_from_slice(key.as_bytes());
        input.extend_from_slice(b"api-key-00112233 and AKIAIOSFODNN7EXAMPLE\n");
        let scan = |chunk| {
            let mut out = Vec::new();
            scan_reader(&set(), Some(&detectors), &input[..], chunk, |f| out.push(f)).unwrap();
            out.sort_by_key(|f: &Finding| f.offset);
            out
        };
        let whole = scan(CHUNK);
        let seen: Vec<(&str, &str)> = whole
            .iter()
            .map(|f| (f.secret.as_str(), f.encoding))
            .collect();
        assert_eq!(
            seen,
            [
                ("private-key", DETECTED),
                ("api", "raw"),
                ("aws-access-key-id", DETECTED)
            ],
            "{whole:?}"
        );
        assert!(whole[0].offset >= key_at && whole[0].offset < key_at + 40);
        for chunk in [7, 64, 1000, 4096, 8400] {
            let got = scan(chunk);
            let starts = |v: &[Finding]| {
                v.iter()
                    .map(|f| (f.offset, f.secret.clone()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(starts(&got), starts(&whole), "chunk {chunk}");
        }
    }

    /// A value a program escaped, quoted or coloured is one finding from its
    /// first printed byte to its last, at every chunk size (a boundary inside
    /// an escape included).
    #[test]
    fn printed_values_are_found_at_their_printed_offsets_at_every_chunk_size() {
        let set = set_of(&[("db", b"hunter2'database\"pass")]);
        let printed: [&[u8]; 4] = [
            b"'hunter2\\'database\"pass'",
            b"'hunter2'\\''database\"pass'",
            b"hunter2&#039;database&quot;pass",
            b"hunter2'da\x1b[0;31mtabase\"pass",
        ];
        let mut input = Vec::new();
        let mut want = Vec::new();
        for p in printed {
            input.extend_from_slice(b"x = ");
            let at = input.len() + usize::from(p[0] == b'\'');
            let len = p.len() - 2 * usize::from(p[0] == b'\'');
            want.push((at as u64, len, "db".to_string()));
            input.extend_from_slice(p);
            input.extend_from_slice(b"\n");
        }
        let seen = |chunk| {
            scan_with(&set, &input, chunk)
                .into_iter()
                .map(|f| (f.offset, f.len, f.secret))
                .collect::<Vec<_>>()
        };
        for chunk in [1, 3, 7, 16, 40, CHUNK] {
            assert_eq!(seen(chunk), want, "chunk {chunk}");
        }
    }

    #[test]
    fn clean_input_has_no_findings() {
        // 11 bytes of a value: fewer than the piece length.
        assert!(scan(b"nothing to see here, hunter2-dat", 5).is_empty());
        // 12 are a piece.
        assert_eq!(scan(b"nothing to see here, hunter2-data", 5).len(), 1);
    }

    /// Overlapping occurrences of two secrets are each reported (leftmost-longest
    /// matching reported only the first); overlapping occurrences of one secret
    /// are one finding; the same at every chunk size.
    #[test]
    fn every_secret_present_is_reported_at_every_chunk_size() {
        let set = set_of(&[
            ("b", b"bbbbbbCCCCCC"),
            ("d", b"CCCCCCdddddd"),
            ("multi", b"line-one-xx\nline-two-yy"),
        ]);
        let mut input = b"..bbbbbbCCCCCCdddddd..line-one-xx\nline-two-yy..".to_vec();
        input.extend_from_slice(b"CCCCCCddddddline-two-yy.bbbbbbCCCCCCCCCCCCdddddd");
        let want = scan_with(&set, &input, CHUNK);
        let seen: Vec<(u64, usize, &str, &str)> = want
            .iter()
            .map(|f| (f.offset, f.len, f.secret.as_str(), f.encoding))
            .collect();
        assert_eq!(
            seen,
            vec![
                (2, 12, "b", "raw"),
                (8, 12, "d", "raw"),
                (22, 23, "multi", "raw"),
                (47, 12, "d", "raw"),
                (59, 11, "multi", "line"),
                (71, 12, "b", "raw"),
                (83, 12, "d", "raw"),
            ]
        );
        for chunk in [1, 2, 3, 5, 11, 12, 13, 40] {
            assert_eq!(scan_with(&set, &input, chunk), want, "chunk {chunk}");
        }
    }

    proptest::proptest! {
        /// On random sets and inputs over a small alphabet (so occurrences overlap
        /// often): every chunk size gives the same findings; the findings cover
        /// exactly the bytes redaction masks; every secret with an occurrence is
        /// reported.
        #[test]
        fn findings_do_not_depend_on_chunks_and_name_every_secret(
            values in proptest::collection::vec("[ab]{6,10}", 1..4),
            filler in "[abc]{0,80}",
            inserts in proptest::collection::vec((0usize..4, 0usize..80), 0..6),
            chunk in 1usize..40,
        ) {
            let named: Vec<(String, &[u8])> = values
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("s{i}"), v.as_bytes()))
                .collect();
            let pairs: Vec<(&str, &[u8])> = named.iter().map(|(n, v)| (n.as_str(), *v)).collect();
            let set = set_of(&pairs);
            let mut input = filler.into_bytes();
            for (which, at) in inserts {
                let v = values[which % values.len()].as_bytes();
                let at = at.min(input.len());
                input.splice(at..at, v.iter().copied());
            }
            let whole = scan_with(&set, &input, CHUNK);
            proptest::prop_assert_eq!(&scan_with(&set, &input, chunk), &whole);

            let patterns = shroud_redactor::reference::units(
                &set.patterns_for_reference(),
                set.piece_length(),
            );
            // No flush, and the end of input masks no unfinished prefix: only the
            // bytes occurrences cover.
            let masked =
                shroud_redactor::reference::masked_bytes(&patterns, &input, &[], usize::MAX);
            let mut covered = vec![false; input.len()];
            for f in &whole {
                let at = f.offset as usize;
                covered[at..at + f.len].iter_mut().for_each(|c| *c = true);
            }
            proptest::prop_assert_eq!(covered, masked);

            // Equal values are one pattern, reported under one name: compare values.
            let value_of = |name: &str| &named.iter().find(|(n, _)| n == name).unwrap().1;
            let mut present: Vec<&[u8]> = named
                .iter()
                .map(|(_, v)| *v)
                .filter(|v| input.windows(v.len()).any(|w| w == *v))
                .collect();
            let mut reported: Vec<&[u8]> = whole.iter().map(|f| *value_of(&f.secret)).collect();
            for list in [&mut present, &mut reported] {
                list.sort_unstable();
                list.dedup();
            }
            proptest::prop_assert_eq!(reported, present);
        }
    }
}
