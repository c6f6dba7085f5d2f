//! Positions for scanners, which report instead of rewriting: every secret found,
//! once per run of overlapping occurrences of its patterns.
//!
//! Redaction masks the union of all occurrences; a scan has to say *which*
//! secrets are in it, so that each one can be rotated. Leftmost-longest matching
//! would hide a secret whose occurrence overlaps another's (`bbbbbbCCCCCC` and
//! `CCCCCCdddddd` in `bbbbbbCCCCCCdddddd`: only the first). So occurrences of
//! different secrets are reported separately, even when they overlap, and only
//! the occurrences of one secret that overlap one another (its base64 forms at
//! several alignments, a line of a multi-line value inside the whole value) are
//! merged into one [`Run`], named after its longest occurrence (preferring one that
//! is a whole pattern, so a line of a value alone is named a line, not a piece of
//! the value). The union of the runs is exactly what redaction masks, pieces
//! included: a scan finds a line of a wrapped base64 of a key as redaction masks
//! it.

use std::collections::HashMap;

use crate::index::Match;
use crate::set::SecretSet;

/// Overlapping occurrences of one secret, merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// Offset of the first byte (in the caller's coordinates).
    pub start: u64,
    /// Offset one past the last byte.
    pub end: u64,
    /// Index of the secret (see [`SecretSet::secret_name`]).
    pub secret: usize,
    /// The pattern of the run's longest occurrence (a whole pattern before a
    /// piece; the earliest of the longest), which names its encoding (see
    /// [`SecretSet::pattern_info`]).
    pub pattern: usize,
    /// Whether that occurrence is its whole pattern, and its length.
    longest: (bool, u64),
}

/// Merges occurrences into [`Run`]s as a stream is scanned in windows, and hands
/// out each run once nothing found later can overlap it, in order of start.
#[derive(Debug, Default)]
pub struct RunMerger {
    /// Per secret: its unfinished runs, disjoint and sorted by start.
    pending: HashMap<usize, Vec<Run>>,
}

impl RunMerger {
    /// An empty merger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the occurrence `m` of `set`, found in a buffer starting at `base`.
    /// Occurrences may come in any order; each must be added once.
    pub fn add(&mut self, set: &SecretSet, base: u64, m: Match) {
        let start = base + m.start as u64;
        let end = base + m.end as u64;
        let secret = set.pattern_info(m.pattern).secret;
        let whole = m.end - m.start == set.pattern(m.pattern).len();
        let mut run = Run {
            start,
            end,
            secret,
            pattern: m.pattern,
            longest: (whole, end - start),
        };
        let runs = self.pending.entry(secret).or_default();
        // Disjoint and sorted by start, so sorted by end too: the runs the new
        // occurrence overlaps are one contiguous range.
        let first = runs.partition_point(|r| r.end <= start);
        let last = runs.partition_point(|r| r.start < end);
        for r in &runs[first..last] {
            run.start = run.start.min(r.start);
            run.end = run.end.max(r.end);
            if r.longest > run.longest || (r.longest == run.longest && r.start < start) {
                run.pattern = r.pattern;
                run.longest = r.longest;
            }
        }
        runs.splice(first..last, [run]);
    }

    /// The runs that no occurrence starting at or after `limit` can overlap, and
    /// that no run still open starts before, sorted by (start, secret). A scanner
    /// passes the lowest start an occurrence not yet added can have.
    pub fn take_final(&mut self, limit: u64) -> Vec<Run> {
        let open_from = self
            .pending
            .values()
            .flatten()
            .filter(|r| r.end > limit)
            .map(|r| r.start)
            .min()
            .unwrap_or(u64::MAX);
        self.take_where(|r| r.end <= limit && r.start < open_from)
    }

    /// Every run left, sorted by (start, secret): the end of the stream.
    pub fn finish(&mut self) -> Vec<Run> {
        self.take_where(|_| true)
    }

    fn take_where(&mut self, done: impl Fn(&Run) -> bool) -> Vec<Run> {
        let mut out = Vec::new();
        for runs in self.pending.values_mut() {
            runs.retain(|r| {
                let take = done(r);
                if take {
                    out.push(*r);
                }
                !take
            });
        }
        self.pending.retain(|_, runs| !runs.is_empty());
        out.sort_unstable_by_key(|r| (r.start, r.secret));
        out
    }
}

impl SecretSet {
    /// Every occurrence of every pattern wholly inside `buf`, overlapping ones
    /// included, in no particular order.
    pub fn find_occurrences(&self, buf: &[u8]) -> Vec<Match> {
        let mut all = Vec::new();
        self.index.find_all(self, buf, &mut all);
        all
    }

    /// Every occurrence of a unit wholly inside `buf` or inside one of its
    /// decoded views (backslash escapes, shell quoting, doubled quotes,
    /// entities, percent, wrapped bodies, colour codes, pty line breaks; those
    /// this set reads), each as the source range from its first decoded byte's
    /// source to its last's: what a stream of `buf` masks. A scanner finds a
    /// value a program escaped where redaction would mask it.
    ///
    /// `buf` is decoded from its start: pass buffers that start where the text
    /// does (or overlap the one before by [`SecretSet::max_occurrence_span`]).
    pub fn find_occurrences_in_views(&self, buf: &[u8]) -> Vec<Match> {
        let mut all = self.find_occurrences(buf);
        if !self.views.is_empty() {
            let mut scratch = crate::views::Scratch::default();
            let mut held = crate::views::Evidence::default();
            crate::views::find(self, buf, &mut all, buf.len(), &mut held, &mut scratch);
        }
        all
    }

    /// The most source bytes one occurrence found by
    /// [`SecretSet::find_occurrences_in_views`] spans when it is no longer than
    /// a pattern or a unit in decoded bytes (0 when empty): a scanner whose
    /// windows overlap by one byte less sees each such occurrence whole in some
    /// window, and longer runs as overlapping parts.
    pub fn max_occurrence_span(&self) -> usize {
        self.max_pattern_len()
            .max(crate::views::max_source_span(self))
    }

    /// Every secret found in `buf`: one [`Match`] per run of overlapping
    /// occurrences of the same secret (named by its longest occurrence's
    /// pattern), sorted by start. Occurrences of different secrets are reported
    /// separately even when they overlap, so no secret that is present goes
    /// unreported; see the module documentation.
    pub fn find_matches(&self, buf: &[u8]) -> Vec<Match> {
        let mut merger = RunMerger::new();
        for m in self.find_occurrences(buf) {
            merger.add(self, 0, m);
        }
        merger
            .finish()
            .into_iter()
            .map(|r| Match {
                start: r.start as usize,
                end: r.end as usize,
                pattern: r.pattern,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretSetBuilder;

    fn set(values: &[&[u8]]) -> SecretSet {
        let mut b = SecretSetBuilder::new();
        for (i, v) in values.iter().enumerate() {
            b.add(format!("s{i}"), v);
        }
        b.build().0
    }

    /// (start, end, secret name, encoding) of each match.
    fn found(set: &SecretSet, buf: &[u8]) -> Vec<(usize, usize, String, &'static str)> {
        set.find_matches(buf)
            .into_iter()
            .map(|m| {
                let info = set.pattern_info(m.pattern);
                (
                    m.start,
                    m.end,
                    set.secret_name(info.secret).to_string(),
                    info.encoding.name(),
                )
            })
            .collect()
    }

    #[test]
    fn overlapping_secrets_are_each_reported() {
        let s = set(&[b"bbbbbbCCCCCC", b"CCCCCCdddddd"]);
        assert_eq!(
            found(&s, b"x bbbbbbCCCCCCdddddd y"),
            vec![(2, 14, "s0".into(), "raw"), (8, 20, "s1".into(), "raw"),]
        );
        // Adjacent occurrences too, and their union is the whole line.
        assert_eq!(
            found(&s, b"bbbbbbCCCCCCCCCCCCdddddd"),
            vec![(0, 12, "s0".into(), "raw"), (12, 24, "s1".into(), "raw")]
        );
    }

    #[test]
    fn overlapping_occurrences_of_one_secret_are_one_run_named_by_the_longest() {
        // A line of a multi-line value lies inside the value: one finding, raw.
        let s = set(&[b"first-line-of-it\nsecond-line-of-it"]);
        let buf = b"> first-line-of-it\nsecond-line-of-it <";
        assert_eq!(found(&s, buf), vec![(2, 36, "s0".into(), "raw")]);
        // Alone, the line is found as itself.
        assert_eq!(
            found(&s, b"second-line-of-it"),
            vec![(0, 17, "s0".into(), "line")]
        );
        // Two occurrences that only touch are two findings.
        let s = set(&[b"abcabc-secret"]);
        assert_eq!(found(&s, b"abcabc-secretabcabc-secret").len(), 2);
    }
}
