//! Finding anchors fast: one SIMD pass over *scan literals* (each a piece of
//! one or more anchors), then the full anchor checked around each hit.
//!
//! aho-corasick's SIMD prefilter (Teddy) fingerprints every pattern by its
//! first bytes, as many as the shortest pattern has (up to 4), grouped into 8
//! buckets (16 above 32 patterns), and verifies each position whose
//! fingerprint matches a bucket. What it costs is one vector step per 32
//! bytes (fewer fingerprint bytes make the step cheaper) and how often a
//! position passes, so a literal is a piece that is rare in text and shared
//! by as many anchors as possible: `ccess` for every lower- and camel-case
//! spelling of `secret_access_key`, `rization` for `authorization` (`aut`
//! starts many words), `k_live_` for `sk_live_` and `rk_live_`, `-BEGIN `
//! rather than a rule of dashes.
//!
//! Every literal shares the one pass, `eyJ` and `://` included: with
//! three-byte fingerprints the step is cheaper than with four, and what
//! decides how often a position passes is less the fingerprint's length than
//! which literals share a bucket. A bucket accepts every mix of its
//! literals' nibbles at each fingerprint position, so the family table
//! groups the literals into buckets by measurement (`SCAN_BUCKETS`) and
//! [`teddy_order`] orders them so that Teddy puts each group in a bucket of
//! its own. The pass is slim Teddy (8 buckets, 32 bytes a step) whatever the
//! number of patterns. Measured figures: docs/redact.md, "Cost".

use aho_corasick::packed;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// Slim Teddy's buckets.
pub(crate) const BUCKETS: usize = 8;

/// aho-corasick's packed searchers take at most this many patterns.
const PATTERN_LIMIT: usize = 128;

#[derive(Clone, Debug)]
enum Finder {
    /// Slim Teddy over every literal.
    Teddy(packed::Searcher),
    /// The same where Teddy is not available (no SSSE3, not x86_64 or
    /// aarch64).
    Automaton(AhoCorasick),
}

/// The pass over the scan literals and what each literal may be part of.
#[derive(Clone, Debug)]
pub(crate) struct Scanner {
    finder: Finder,
    /// For each pattern of the finder, the literal it is (the Teddy order
    /// repeats some literals, see [`teddy_order`]).
    literal_of: Vec<usize>,
    /// For each literal: (anchor index, where the literal sits in it).
    within: Vec<Vec<(usize, usize)>>,
    /// The largest such offset: an anchor found from a later hit starts at
    /// most this far before it.
    max_offset: usize,
    /// The longest literal.
    max_len: usize,
}

/// An anchor found: (its start, its index).
type Hit = (usize, usize);

/// What the pass found in one buffer so far, so that a caller walking
/// through it (`next` with a growing `from`) scans each byte once: where it
/// last searched from and the anchor it found then. Only valid for the
/// buffer it was used with.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Cursor {
    found: Option<(usize, Option<Hit>)>,
}

impl Scanner {
    /// The pass over `buckets` (literals grouped as they should share Teddy
    /// buckets, at most [`BUCKETS`] groups) for `anchors`; every anchor
    /// contains at least one literal and no literal is a prefix of another
    /// (both checked: the table is code).
    pub fn new(buckets: &[Vec<&'static str>], anchors: &[&'static [u8]]) -> Scanner {
        assert!(buckets.len() <= BUCKETS, "more groups than Teddy buckets");
        let literals: Vec<&str> = buckets.iter().flatten().copied().collect();
        for anchor in anchors {
            assert!(
                literals
                    .iter()
                    .any(|l| places(l.as_bytes(), anchor).next().is_some()),
                "no scan literal finds the anchor {:?}",
                String::from_utf8_lossy(anchor)
            );
        }
        for a in &literals {
            for b in &literals {
                assert!(a == b || !b.starts_with(a), "{a:?} is a prefix of {b:?}");
            }
        }
        let mask_len = literals.iter().map(|l| l.len()).min().unwrap_or(1).min(4);
        let sizes: Vec<usize> = buckets.iter().map(Vec::len).collect();
        let order = teddy_order(&literals, &sizes, mask_len);
        let teddy = packed::Config::new()
            .match_kind(packed::MatchKind::LeftmostFirst)
            .only_teddy_fat(Some(false))
            .heuristic_pattern_limits(false)
            .builder()
            .extend(order.iter().map(|&i| literals[i]))
            .build();
        let (finder, literal_of) = match teddy {
            Some(teddy) => (Finder::Teddy(teddy), order),
            // Case-sensitive: ASCII case folding turns Teddy off.
            None => (
                Finder::Automaton(
                    AhoCorasickBuilder::new()
                        .match_kind(MatchKind::LeftmostFirst)
                        .build(&literals)
                        .expect("the scan literals are a few short strings"),
                ),
                (0..literals.len()).collect(),
            ),
        };
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
        Scanner {
            finder,
            literal_of,
            max_offset: within.iter().flatten().map(|&(_, k)| k).max().unwrap_or(0),
            max_len: literals.iter().map(|l| l.len()).max().unwrap_or(0),
            within,
        }
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
        match cursor.found {
            // The leftmost from an earlier start is still the leftmost.
            Some((searched, found))
                if searched <= from && found.is_none_or(|(at, _)| at >= from) =>
            {
                found
            }
            _ => {
                let found = self.search(buf, from, anchors);
                cursor.found = Some((from, found));
                found
            }
        }
    }

    /// The first literal in `buf[from..limit]`: (its start, its index).
    fn find(&self, buf: &[u8], from: usize, limit: usize) -> Option<(usize, usize)> {
        let (start, pattern) = match &self.finder {
            Finder::Teddy(teddy) => teddy
                .find_in(buf, aho_corasick::Span::from(from..limit))
                .map(|m| (m.start(), m.pattern().as_usize()))?,
            Finder::Automaton(automaton) => {
                let input = aho_corasick::Input::new(buf).range(from..limit);
                automaton
                    .find(input)
                    .map(|m| (m.start(), m.pattern().as_usize()))?
            }
        };
        Some((start, self.literal_of[pattern]))
    }

    /// [`Scanner::next`] without the cursor.
    fn search(
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

/// The order in which Teddy gets the literals (indices into `literals`,
/// some repeated) so that each group of consecutive literals (`sizes`) has a
/// bucket of its own. aho-corasick 1.1 puts pattern `i` in bucket
/// `7 - i % 8` unless an earlier pattern has the same low nibbles in its
/// first `mask_len` bytes (then in that one's bucket), so group `g` gets the
/// patterns `i` with `i % 8 == g`; when a group has run out, a literal whose
/// nibbles are taken already, or else a repeat of the first literal (its
/// group is listed first because it is the cheapest to verify again), fills
/// its place. A repeat never matches first (the original comes earlier); a
/// different rule in a later aho-corasick only costs speed.
fn teddy_order(literals: &[&str], sizes: &[usize], mask_len: usize) -> Vec<usize> {
    let nybbles = |i: usize| -> Vec<u8> {
        literals[i]
            .bytes()
            .take(mask_len)
            .map(|b| b & 0xF)
            .collect()
    };
    let mut groups: Vec<std::collections::VecDeque<usize>> = Vec::new();
    let mut next = 0;
    for &n in sizes.iter().filter(|&&n| n > 0) {
        groups.push((next..next + n).collect());
        next += n;
    }
    let mut seen = std::collections::HashSet::new();
    let mut order = Vec::new();
    while groups.iter().any(|g| !g.is_empty()) {
        let g = order.len() % BUCKETS;
        let own = groups
            .get(g)
            .and_then(|q| q.iter().position(|&i| !seen.contains(&nybbles(i))));
        let placed = match own {
            Some(k) => groups[g].remove(k),
            None => groups.iter_mut().find_map(|q| {
                let k = q.iter().position(|&i| seen.contains(&nybbles(i)))?;
                q.remove(k)
            }),
        };
        let i = placed.or_else(|| order.first().copied()).unwrap_or(0);
        seen.insert(nybbles(i));
        order.push(i);
        if order.len() > PATTERN_LIMIT {
            // Too unbalanced a plan: the literals as they come.
            return (0..literals.len()).collect();
        }
    }
    order
}

/// Where `lit` sits in `anchor` (every offset).
fn places<'a>(lit: &'a [u8], anchor: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    (0..=anchor.len().saturating_sub(lit.len())).filter(move |&k| anchor[k..].starts_with(lit))
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

    fn scanner(groups: &[&[&'static str]], a: &[(usize, &'static [u8])]) -> Scanner {
        let groups: Vec<Vec<&str>> = groups.iter().map(|g| g.to_vec()).collect();
        let bytes: Vec<&[u8]> = a.iter().map(|x| x.1).collect();
        Scanner::new(&groups, &bytes)
    }

    #[test]
    fn finds_the_leftmost_anchor_around_a_shared_literal() {
        let a = anchors(&["secret_access_key", "SecretAccessKey", "Authorization"]);
        let s = scanner(&[&["ccess"], &["rization"]], &a);
        let text = b"x SecretAccessKey and Authorization, secret_access_key";
        assert_eq!(next(&s, text, 0, &a), Some((2, 1)));
        assert_eq!(next(&s, text, 3, &a), Some((22, 2)));
        assert_eq!(next(&s, text, 23, &a), Some((37, 0)));
        // The literal is there, the anchor is not, or starts before `from`.
        assert_eq!(next(&s, b"access granted", 0, &a), None);
        assert_eq!(next(&s, text, 38, &a), None);
        // An anchor found from a later hit that starts earlier wins.
        let b = anchors(&["abcdef", "bcd"]);
        let s = scanner(&[&["def", "bcd"]], &b);
        assert_eq!(next(&s, b"_abcdef", 0, &b), Some((1, 0)));
        assert_eq!(next(&s, b"_abcdex", 0, &b), Some((2, 1)));
    }

    #[test]
    fn short_and_long_literals_share_the_pass() {
        let a = anchors(&["eyJ", "://", "ghp_", "xoxe.xoxp-"]);
        let s = scanner(&[&["eyJ", "ghp_"], &["://", "xoxe", "xoxp"]], &a);
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

    /// aho-corasick 1.1's bucket rule, as [`teddy_order`] expects it: the
    /// bucket of each pattern.
    fn buckets_of(order: &[usize], literals: &[&str], mask_len: usize) -> Vec<usize> {
        let mut by_nybbles = std::collections::HashMap::new();
        order
            .iter()
            .enumerate()
            .map(|(id, &i)| {
                let key: Vec<u8> = literals[i]
                    .bytes()
                    .take(mask_len)
                    .map(|b| b & 0xF)
                    .collect();
                *by_nybbles.entry(key).or_insert(BUCKETS - 1 - id % BUCKETS)
            })
            .collect()
    }

    /// Each group of the plan gets a bucket of its own, however uneven the
    /// groups, every literal is in the order, and a repeat never comes before
    /// its original.
    #[test]
    fn each_group_gets_a_bucket_of_its_own() {
        let plan = super::super::SCAN_BUCKETS;
        let literals: Vec<&str> = plan.iter().flat_map(|g| g.iter().copied()).collect();
        let sizes: Vec<usize> = plan.iter().map(|g| g.len()).collect();
        for mask_len in [3, 4] {
            let order = teddy_order(&literals, &sizes, mask_len);
            assert!(order.len() <= PATTERN_LIMIT);
            let buckets = buckets_of(&order, &literals, mask_len);
            let mut start = 0;
            let mut used = std::collections::HashSet::new();
            for &n in &sizes {
                let group: Vec<usize> = (start..start + n).collect();
                let of = |i: usize| buckets[order.iter().position(|&o| o == i).unwrap()];
                let bucket = of(group[0]);
                assert!(used.insert(bucket), "two groups share bucket {bucket}");
                for &i in &group {
                    assert_eq!(of(i), bucket, "{} (mask {mask_len})", literals[i]);
                }
                start += n;
            }
        }
        // Smaller selections (one family, a few) get an order too.
        let order = teddy_order(&["eyJ"], &[0, 1, 0], 3);
        assert_eq!(order, vec![0]);
        let order = teddy_order(&["ghp_", "gho_", "eyJ"], &[2, 1], 3);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, vec![0, 1, 2]);
    }

    #[test]
    #[should_panic(expected = "no scan literal finds")]
    fn every_anchor_needs_a_literal() {
        Scanner::new(&[vec!["ghp_"]], &[b"ghp_", b"gho_"]);
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
