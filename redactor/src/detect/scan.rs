//! Finding anchors fast: one Aho-Corasick automaton over *scan literals*
//! (each a piece of one or more anchors), then the full anchor checked around
//! each hit.
//!
//! aho-corasick's SIMD prefilter (Teddy) fingerprints every pattern by its
//! first bytes, as many as the shortest pattern has (up to 4), grouped into 8
//! buckets (16 above 32 patterns), and verifies each position whose
//! fingerprint matches a bucket. What it costs is how often that happens, so
//! a literal is a piece that is rare in text and shared by as many anchors as
//! possible: `ccess` for every lower- and camel-case spelling of
//! `secret_access_key`, `rization` for `authorization` (`aut` starts many
//! words), `k_live_` for `sk_live_` and `rk_live_`, `xox` for every Slack
//! prefix, `-BEGIN ` rather than a rule of dashes, and four bytes where three
//! would hit words (`glpa`, not `glp`; `glo`, `gla`, `gli` are in `global`,
//! `glance`, `glibc`). Measured on the benchmark's log lines (CPU time, a
//! loaded 2-core VM): the 55 anchors as patterns 1.4–1.9 GB/s, the 43 literals
//! here 2.5–3.1 GB/s, and 32 literals with three-byte GitLab pieces (to stay
//! in the 8-bucket form) only 1.1 GB/s: fewer patterns do not help when
//! their fingerprints are common.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// The automaton over the scan literals and what each literal may be part of.
#[derive(Clone, Debug)]
pub(crate) struct Scanner {
    automaton: AhoCorasick,
    /// For each scan literal: (anchor index, where the literal sits in it).
    within: Vec<Vec<(usize, usize)>>,
    /// The largest such offset: an anchor found from a later hit starts at
    /// most this far before it.
    max_offset: usize,
    /// The longest literal.
    max_len: usize,
}

impl Scanner {
    /// An automaton over `literals` for `anchors`; every anchor contains at
    /// least one literal and no literal is a prefix of another (both checked:
    /// the table is code).
    pub fn new(literals: &[&'static str], anchors: &[&'static [u8]]) -> Scanner {
        let mut within = Vec::new();
        for lit in literals {
            let lit = lit.as_bytes();
            let mut places = Vec::new();
            for (ai, anchor) in anchors.iter().enumerate() {
                for k in 0..=anchor.len().saturating_sub(lit.len()) {
                    if anchor[k..].starts_with(lit) {
                        places.push((ai, k));
                    }
                }
            }
            within.push(places);
        }
        for (ai, anchor) in anchors.iter().enumerate() {
            assert!(
                within.iter().flatten().any(|&(a, _)| a == ai),
                "no scan literal finds the anchor {:?}",
                String::from_utf8_lossy(anchor)
            );
        }
        for a in literals {
            for b in literals {
                assert!(a == b || !b.starts_with(a), "{a:?} is a prefix of {b:?}");
            }
        }
        let max_offset = within.iter().flatten().map(|&(_, k)| k).max().unwrap_or(0);
        let max_len = literals.iter().map(|l| l.len()).max().unwrap_or(0);
        // Case-sensitive: ASCII case folding turns Teddy off.
        let automaton = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostFirst)
            .build(literals)
            .expect("the scan literals are a few short strings");
        Scanner {
            automaton,
            within,
            max_offset,
            max_len,
        }
    }

    /// The leftmost anchor that starts at or after `from` and ends within
    /// `buf`: (its start, its index). Among anchors at one start, the lowest
    /// index (the table's order).
    pub fn next(
        &self,
        buf: &[u8],
        from: usize,
        anchors: &[(usize, &'static [u8])],
    ) -> Option<(usize, usize)> {
        let mut best: Option<(usize, usize)> = None;
        let mut search = from;
        let mut limit = buf.len();
        while search < limit {
            let input = aho_corasick::Input::new(buf).range(search..limit);
            let Some(m) = self.automaton.find(input) else {
                break;
            };
            let hit = m.start();
            if best.is_some_and(|(at, _)| hit > at + self.max_offset) {
                break;
            }
            for &(ai, k) in &self.within[m.pattern().as_usize()] {
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

    fn anchors(list: &[&'static str]) -> Vec<(usize, &'static [u8])> {
        list.iter().map(|a| (0, a.as_bytes())).collect()
    }

    #[test]
    fn finds_the_leftmost_anchor_around_a_shared_literal() {
        let list = ["secret_access_key", "SecretAccessKey", "Authorization"];
        let a = anchors(&list);
        let bytes: Vec<&[u8]> = a.iter().map(|x| x.1).collect();
        let s = Scanner::new(&["ccess", "rization"], &bytes);
        let text = b"x SecretAccessKey and Authorization, secret_access_key";
        assert_eq!(s.next(text, 0, &a), Some((2, 1)));
        assert_eq!(s.next(text, 3, &a), Some((22, 2)));
        assert_eq!(s.next(text, 23, &a), Some((37, 0)));
        // The literal is there, the anchor is not, or starts before `from`.
        assert_eq!(s.next(b"access granted", 0, &a), None);
        assert_eq!(s.next(text, 38, &a), None);
        // An anchor found from a later hit that starts earlier wins.
        let b = anchors(&["abcdef", "bcd"]);
        let bytes: Vec<&[u8]> = b.iter().map(|x| x.1).collect();
        let s = Scanner::new(&["def", "bcd"], &bytes);
        assert_eq!(s.next(b"_abcdef", 0, &b), Some((1, 0)));
        assert_eq!(s.next(b"_abcdex", 0, &b), Some((2, 1)));
    }

    #[test]
    #[should_panic(expected = "no scan literal finds")]
    fn every_anchor_needs_a_literal() {
        Scanner::new(&["ghp_"], &[b"ghp_", b"gho_"]);
    }
}
