//! Finding anchors fast: SIMD passes over *scan literals* (each a piece of one
//! or more anchors), then the full anchor checked around each hit.
//!
//! aho-corasick's SIMD prefilter (Teddy) fingerprints every pattern by its
//! first bytes, as many as the shortest pattern has (up to 4), grouped into 8
//! buckets (16 above 32 patterns), and verifies each position whose
//! fingerprint matches a bucket. What it costs is how often that happens, so
//! a literal is a piece that is rare in text and shared by as many anchors as
//! possible: `ccess` for every lower- and camel-case spelling of
//! `secret_access_key`, `rization` for `authorization` (`aut` starts many
//! words), `k_live_` for `sk_live_` and `rk_live_`, `-BEGIN ` rather than a
//! rule of dashes, and four bytes where three would hit words (`glpa`, not
//! `glp`; `glo`, `gla`, `gli` are in `global`, `glance`, `glibc`).
//!
//! One literal shorter than four bytes would make every fingerprint three
//! bytes long, so the literals of four bytes or more share one pass and each
//! shorter one (`eyJ`, `://`) has a pass of its own (memchr's `memmem`, which
//! looks for two of its rarest bytes at once). The shared pass is slim Teddy
//! (8 buckets, 32 bytes a step) even above 32 literals, where aho-corasick
//! would pick fat Teddy (16 buckets, 16 bytes a step): with literals that
//! share bytes put in one bucket (a bucket accepts every mix of its
//! literals' nibbles; see [`bucket_order`]) slim is 1.6x faster on log lines.
//! Measured figures: docs/redact.md, "Cost".

use aho_corasick::packed;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use memchr::memmem;

/// Literals at least this long share the automaton.
const SHARED_MIN: usize = 4;

/// At most this many passes (one automaton and the short literals).
pub(crate) const MAX_PASSES: usize = 4;

/// One SIMD pass and what each of its literals may be part of.
#[derive(Clone, Debug)]
struct Pass {
    finder: Finder,
    /// For each literal of this pass: (anchor index, where the literal sits
    /// in it).
    within: Vec<Vec<(usize, usize)>>,
    /// The largest such offset: an anchor found from a later hit starts at
    /// most this far before it.
    max_offset: usize,
    /// The longest literal.
    max_len: usize,
}

/// Slim Teddy's buckets.
const BUCKETS: usize = 8;

#[derive(Clone, Debug)]
enum Finder {
    /// Every literal of at least [`SHARED_MIN`] bytes (slim Teddy).
    Teddy(packed::Searcher),
    /// The same where Teddy is not available (no SSSE3, not x86_64 or
    /// aarch64).
    Shared(AhoCorasick),
    /// One short literal.
    Single(memmem::Finder<'static>),
}

/// The passes over the scan literals.
#[derive(Clone, Debug)]
pub(crate) struct Scanner {
    passes: Vec<Pass>,
}

/// An anchor found: (its start, its index).
type Hit = (usize, usize);

/// What the passes found in one buffer so far, so that a caller walking
/// through it (`next` with a growing `from`) scans each byte once per pass:
/// for each pass, where it last searched from and the anchor it found then.
/// Only valid for the buffer it was used with.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Cursor {
    found: [Option<(usize, Option<Hit>)>; MAX_PASSES],
}

impl Scanner {
    /// The passes over `literals` for `anchors`; every anchor contains at
    /// least one literal and no literal is a prefix of another (both checked:
    /// the table is code).
    pub fn new(literals: &[&'static str], anchors: &[&'static [u8]]) -> Scanner {
        for anchor in anchors {
            assert!(
                literals
                    .iter()
                    .any(|l| places(l.as_bytes(), anchor).next().is_some()),
                "no scan literal finds the anchor {:?}",
                String::from_utf8_lossy(anchor)
            );
        }
        for a in literals {
            for b in literals {
                assert!(a == b || !b.starts_with(a), "{a:?} is a prefix of {b:?}");
            }
        }
        let (shared, short): (Vec<&str>, Vec<&str>) =
            literals.iter().partition(|l| l.len() >= SHARED_MIN);
        let mut passes = Vec::new();
        if !shared.is_empty() {
            let shared = bucket_order(&shared);
            let teddy = packed::Config::new()
                .match_kind(packed::MatchKind::LeftmostFirst)
                .only_teddy_fat(Some(false))
                .builder()
                .extend(&shared)
                .build();
            let finder = match teddy {
                Some(teddy) => Finder::Teddy(teddy),
                // Case-sensitive: ASCII case folding turns Teddy off.
                None => Finder::Shared(
                    AhoCorasickBuilder::new()
                        .match_kind(MatchKind::LeftmostFirst)
                        .build(&shared)
                        .expect("the scan literals are a few short strings"),
                ),
            };
            passes.push(Pass::new(finder, &shared, anchors));
        }
        for lit in short {
            let finder = memmem::Finder::new(lit.as_bytes()).into_owned();
            passes.push(Pass::new(Finder::Single(finder), &[lit], anchors));
        }
        assert!(passes.len() <= MAX_PASSES, "too many short scan literals");
        Scanner { passes }
    }

    /// The leftmost anchor that starts at or after `from` and ends within
    /// `buf`: (its start, its index). Among anchors at one start, the lowest
    /// index (the table's order). `cursor` is this buffer's (start with
    /// `Cursor::default()`).
    pub fn next(
        &self,
        buf: &[u8],
        from: usize,
        anchors: &[(usize, &'static [u8])],
        cursor: &mut Cursor,
    ) -> Option<(usize, usize)> {
        let mut best: Option<(usize, usize)> = None;
        for (pass, known) in self.passes.iter().zip(cursor.found.iter_mut()) {
            let found = match *known {
                // The leftmost from an earlier start is still the leftmost.
                Some((searched, found))
                    if searched <= from && found.is_none_or(|(at, _)| at >= from) =>
                {
                    found
                }
                _ => {
                    let found = pass.next(buf, from, anchors);
                    *known = Some((from, found));
                    found
                }
            };
            if let Some(f) = found {
                if best.is_none_or(|b| f < b) {
                    best = Some(f);
                }
            }
        }
        best
    }
}

/// `literals` reordered so that each run of `ceil(n / 8)` consecutive ones
/// shares a bucket: Teddy puts the pattern at index `i` in bucket `i mod 8`
/// (unless one with the same low nibbles came first), so the runs are dealt
/// out one literal each in turn. The caller orders the literals so that a
/// run's literals share bytes (`SCAN_ORDER` in the family table).
fn bucket_order<'a>(literals: &[&'a str]) -> Vec<&'a str> {
    let per = literals.len().div_ceil(BUCKETS);
    let runs: Vec<&[&str]> = literals.chunks(per.max(1)).collect();
    (0..per)
        .flat_map(|j| runs.iter().filter_map(move |run| run.get(j).copied()))
        .collect()
}

/// Where `lit` sits in `anchor` (every offset).
fn places<'a>(lit: &'a [u8], anchor: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    (0..=anchor.len().saturating_sub(lit.len())).filter(move |&k| anchor[k..].starts_with(lit))
}

impl Pass {
    fn new(finder: Finder, literals: &[&str], anchors: &[&'static [u8]]) -> Pass {
        let within: Vec<Vec<(usize, usize)>> = literals
            .iter()
            .map(|lit| {
                anchors
                    .iter()
                    .enumerate()
                    .flat_map(|(ai, anchor)| places(lit.as_bytes(), anchor).map(move |k| (ai, k)))
                    .collect()
            })
            .collect();
        Pass {
            finder,
            max_offset: within.iter().flatten().map(|&(_, k)| k).max().unwrap_or(0),
            max_len: literals.iter().map(|l| l.len()).max().unwrap_or(0),
            within,
        }
    }

    /// The first literal of this pass in `buf[from..limit]`: (its start, its
    /// index in the pass).
    fn find(&self, buf: &[u8], from: usize, limit: usize) -> Option<(usize, usize)> {
        match &self.finder {
            Finder::Teddy(teddy) => teddy
                .find_in(buf, aho_corasick::Span::from(from..limit))
                .map(|m| (m.start(), m.pattern().as_usize())),
            Finder::Shared(automaton) => {
                let input = aho_corasick::Input::new(buf).range(from..limit);
                automaton
                    .find(input)
                    .map(|m| (m.start(), m.pattern().as_usize()))
            }
            Finder::Single(finder) => finder.find(&buf[from..limit]).map(|i| (from + i, 0)),
        }
    }

    /// [`Scanner::next`] among the anchors this pass's literals find.
    fn next(
        &self,
        buf: &[u8],
        from: usize,
        anchors: &[(usize, &'static [u8])],
    ) -> Option<(usize, usize)> {
        let mut best: Option<(usize, usize)> = None;
        let mut search = from;
        let mut limit = buf.len();
        while search < limit {
            let Some((hit, li)) = self.find(buf, search, limit) else {
                break;
            };
            if best.is_some_and(|(at, _)| hit > at + self.max_offset) {
                break;
            }
            for &(ai, k) in &self.within[li] {
                let anchor = anchors[ai].1;
                let Some(at) = hit.checked_sub(k).filter(|&at| at >= from) else {
                    continue;
                };
                if buf[at..].starts_with(anchor) && best.is_none_or(|b| (at, ai) < b) {
                    best = Some((at, ai));
                    // Only a literal ending by here can start an earlier
                    // anchor: do not scan the rest of the buffer twice.
                    limit = (at + self.max_offset + self.max_len).min(buf.len());
                }
            }
            // Literals are prefix-free: the next one starts after this byte.
            search = hit + 1;
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn anchors(list: &[&'static str]) -> Vec<(usize, &'static [u8])> {
        list.iter().map(|a| (0, a.as_bytes())).collect()
    }

    fn next(
        s: &Scanner,
        buf: &[u8],
        from: usize,
        a: &[(usize, &'static [u8])],
    ) -> Option<(usize, usize)> {
        s.next(buf, from, a, &mut Cursor::default())
    }

    #[test]
    fn finds_the_leftmost_anchor_around_a_shared_literal() {
        let list = ["secret_access_key", "SecretAccessKey", "Authorization"];
        let a = anchors(&list);
        let bytes: Vec<&[u8]> = a.iter().map(|x| x.1).collect();
        let s = Scanner::new(&["ccess", "rization"], &bytes);
        let text = b"x SecretAccessKey and Authorization, secret_access_key";
        assert_eq!(next(&s, text, 0, &a), Some((2, 1)));
        assert_eq!(next(&s, text, 3, &a), Some((22, 2)));
        assert_eq!(next(&s, text, 23, &a), Some((37, 0)));
        // The literal is there, the anchor is not, or starts before `from`.
        assert_eq!(next(&s, b"access granted", 0, &a), None);
        assert_eq!(next(&s, text, 38, &a), None);
        // An anchor found from a later hit that starts earlier wins.
        let b = anchors(&["abcdef", "bcd"]);
        let bytes: Vec<&[u8]> = b.iter().map(|x| x.1).collect();
        let s = Scanner::new(&["def", "bcd"], &bytes);
        assert_eq!(next(&s, b"_abcdef", 0, &b), Some((1, 0)));
        assert_eq!(next(&s, b"_abcdex", 0, &b), Some((2, 1)));
    }

    #[test]
    fn short_literals_have_passes_of_their_own() {
        let a = anchors(&["eyJ", "://", "ghp_", "xoxe.xoxp-"]);
        let bytes: Vec<&[u8]> = a.iter().map(|x| x.1).collect();
        let s = Scanner::new(&["eyJ", "://", "ghp_", "xoxe", "xoxp"], &bytes);
        assert_eq!(s.passes.len(), 3);
        let text = b"a://b ghp_x eyJz xoxe.xoxp-1 eyJ";
        let mut cursor = Cursor::default();
        let mut from = 0;
        let mut found = Vec::new();
        while let Some((at, ai)) = s.next(text, from, &a, &mut cursor) {
            found.push((at, ai));
            from = at + 1;
        }
        assert_eq!(found, vec![(1, 1), (6, 2), (12, 0), (17, 3), (29, 0)]);
    }

    #[test]
    fn runs_of_literals_are_dealt_out_to_buckets() {
        let lits: Vec<String> = (0..18).map(|i| format!("l{i:02}x")).collect();
        let lits: Vec<&str> = lits.iter().map(String::as_str).collect();
        let order = bucket_order(&lits);
        assert_eq!(order.len(), 18);
        // Runs of three: l00-l02, l03-l05, …; the first of each run first.
        assert_eq!(
            &order[..6],
            &["l00x", "l03x", "l06x", "l09x", "l12x", "l15x"]
        );
        assert_eq!(&order[6..8], &["l01x", "l04x"]);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, lits);
    }

    #[test]
    #[should_panic(expected = "no scan literal finds")]
    fn every_anchor_needs_a_literal() {
        Scanner::new(&["ghp_"], &[b"ghp_", b"gho_"]);
    }

    /// The scanner as the stage uses it (one cursor per buffer, `from` going
    /// up from each anchor found) finds what one automaton over the anchors
    /// themselves finds (the scanner before scan literals): the leftmost
    /// anchor, the table's first at one start.
    fn walk(text: &[u8], start: usize) -> (Vec<Hit>, Vec<Hit>) {
        let set = super::super::DetectorSet::all(b"[R]");
        let scanner = set.scanner.as_ref().expect("every detector");
        let list: Vec<&[u8]> = set.anchors.iter().map(|a| a.1).collect();
        let reference = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostFirst)
            .build(&list)
            .unwrap();
        let (mut got, mut want) = (Vec::new(), Vec::new());
        let mut cursor = Cursor::default();
        let mut from = start;
        while let Some((at, ai)) = scanner.next(text, from, &set.anchors, &mut cursor) {
            got.push((at, ai));
            from = at + 1;
        }
        let mut from = start;
        while from <= text.len() {
            let Some(m) = reference.find(aho_corasick::Input::new(text).range(from..)) else {
                break;
            };
            want.push((m.start(), m.pattern().as_usize()));
            from = m.start() + 1;
        }
        (got, want)
    }

    /// Text made of anchors, their pieces and a few other bytes.
    fn text() -> impl Strategy<Value = Vec<u8>> {
        let set = super::super::DetectorSet::all(b"[R]");
        let pieces: Vec<Vec<u8>> = set
            .anchors
            .iter()
            .flat_map(|&(_, a)| {
                [
                    a.to_vec(),
                    a[..a.len() / 2].to_vec(),
                    a[a.len() / 2..].to_vec(),
                ]
            })
            .chain([
                b"x".to_vec(),
                b" ".to_vec(),
                b"A".to_vec(),
                b"_".to_vec(),
                b":".to_vec(),
            ])
            .collect();
        proptest::collection::vec(proptest::sample::select(pieces), 0..40).prop_map(|p| p.concat())
    }

    proptest! {
        #[test]
        fn finds_what_an_automaton_over_the_anchors_finds(t in text(), start in 0usize..8) {
            let start = start.min(t.len());
            let (got, want) = walk(&t, start);
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn every_anchor_of_every_family_is_found() {
        let set = super::super::DetectorSet::all(b"[R]");
        for &(_, a) in &set.anchors {
            let text = [b"..".as_slice(), a, b" ", a].concat();
            let (got, want) = walk(&text, 0);
            assert_eq!(got, want, "{}", String::from_utf8_lossy(a));
            assert!(got.len() >= 2, "{}", String::from_utf8_lossy(a));
        }
    }
}
