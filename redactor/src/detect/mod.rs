//! Detectors for well-known credential formats: tokens nobody registered that
//! are recognisable by their shape (a GitHub token, an AWS key id, a JWT, a PEM
//! private key, the password in a URL, an `Authorization` header value).
//!
//! Each family lives in its own file and is a row of [`FAMILIES`]: its name (shown
//! in its mask, `[REDACTED:github-token]`), the literal anchors that start a
//! candidate, and a function that examines the bytes from an anchor on. The
//! streaming stage ([`Detect`]) finds anchors with one SIMD pass over pieces
//! of them (`scan.rs`: slim Teddy, literals grouped into its buckets by
//! measurement) and holds back a candidate until its family decides, with the
//! same discipline as the value matcher: a half-written token never shows, an idle
//! flush masks a plausible start and keeps masking its continuation.

mod authorization;
mod aws;
mod behind;
#[cfg(test)]
mod boundaries;
mod github;
mod gitlab;
mod google;
mod jwt;
mod pem;
mod pypi;
mod scan;
mod slack;
mod stage;
mod stripe;
mod url;

use std::fmt;

pub use github::checksum as github_checksum;
pub use stage::{Detect, Passed, MAX_HOLD};

/// Why a detector selection was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DetectError {
    /// A name in the list is not a detector.
    #[error("unknown detector {name:?} (known: all, none, {known})")]
    Unknown {
        /// The name given.
        name: String,
        /// Every detector name, comma-separated.
        known: String,
    },
}

/// What a family says about the bytes from an anchor on.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Verdict {
    /// Not a credential: go on after the anchor's first byte.
    No,
    /// Undecided until more bytes arrive (the candidate is held).
    More,
    /// `start..end` is a credential; bytes of `class` right after `end` would
    /// continue it (used when the stream is cut at `end`).
    Mask {
        start: usize,
        end: usize,
        class: fn(u8) -> bool,
    },
    /// A PEM private key block whose header ends at `body`: every line after it
    /// is masked up to its END line.
    Block { body: usize },
}

/// The bytes a family examines: the stream from the held piece on, the anchor's
/// position and length, the last bytes before the buffer, and whether the
/// stream ends here (or the candidate is so long it must be decided now).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ctx<'a> {
    pub buf: &'a [u8],
    pub at: usize,
    pub anchor: &'static [u8],
    /// Up to [`behind::LOOK_BEHIND`] bytes that came before `buf`.
    pub behind: &'a [u8],
    pub eof: bool,
}

impl Ctx<'_> {
    /// The byte before the anchor.
    pub fn before(&self) -> Option<u8> {
        if self.at == 0 {
            self.behind.last().copied()
        } else {
            Some(self.buf[self.at - 1])
        }
    }

    /// Whether `word` (ASCII case-insensitive, at most
    /// [`behind::LOOK_BEHIND`] bytes) ends right before the anchor, also when
    /// a write boundary cuts it.
    pub fn preceded_by(&self, word: &[u8]) -> bool {
        debug_assert!(word.len() <= behind::LOOK_BEHIND);
        let (head, tail) = word.split_at(word.len().saturating_sub(self.at));
        ends_with_ignore_case(&self.buf[..self.at], tail)
            && ends_with_ignore_case(self.behind, head)
    }

    /// Where the bytes after the anchor start.
    pub fn after(&self) -> usize {
        self.at + self.anchor.len()
    }

    /// The anchor as written (case-sensitive anchors compare it).
    pub fn anchor_exact(&self) -> bool {
        &self.buf[self.at..self.after()] == self.anchor
    }

    /// The run of `class` bytes starting at `from`, as an end position; `Err`
    /// with the verdict when the run is not decidable or out of `min..=max`.
    pub fn run(
        &self,
        from: usize,
        class: fn(u8) -> bool,
        min: usize,
        max: usize,
    ) -> Result<usize, Verdict> {
        let n = run_len(&self.buf[from..], class, max + 1);
        let end = from + n;
        if end == self.buf.len() && !self.eof {
            return Err(if n > max { Verdict::No } else { Verdict::More });
        }
        if n < min || n > max {
            return Err(Verdict::No);
        }
        Ok(end)
    }
}

fn ends_with_ignore_case(s: &[u8], suffix: &[u8]) -> bool {
    s.len() >= suffix.len() && s[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

/// How many leading bytes of `s` are in `class`, counting at most `limit`.
pub(crate) fn run_len(s: &[u8], class: fn(u8) -> bool, limit: usize) -> usize {
    s.iter().take(limit).take_while(|&&b| class(b)).count()
}

/// `[A-Za-z0-9]`.
pub(crate) fn alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// `[A-Za-z0-9_-]`, the base64url alphabet.
pub(crate) fn base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// A token with a fixed prefix anchor: the anchor as written, a word boundary
/// before it, then `min..=max` bytes of `class` ending at a byte not in it.
pub(crate) fn prefixed(
    c: &Ctx<'_>,
    class: fn(u8) -> bool,
    min: usize,
    max: usize,
) -> Result<usize, Verdict> {
    if !c.anchor_exact() || c.before().is_some_and(|b| alnum(b) || b == b'_') {
        return Err(Verdict::No);
    }
    c.run(c.after(), class, min, max)
}

/// A [`prefixed`] token masked whole, from its anchor: the whole verdict of a
/// family whose format is nothing more than anchor and length.
pub(crate) fn prefixed_token(
    c: &Ctx<'_>,
    class: fn(u8) -> bool,
    min: usize,
    max: usize,
) -> Verdict {
    match prefixed(c, class, min, max) {
        Ok(end) => Verdict::Mask {
            start: c.at,
            end,
            class,
        },
        Err(v) => v,
    }
}

/// At an idle flush, a held prefix-token candidate: mask from its anchor and
/// keep masking `class` bytes after the pause.
pub(crate) fn partial_from_anchor(c: &Ctx<'_>, class: fn(u8) -> bool) -> Option<Start> {
    (c.anchor_exact() && !c.before().is_some_and(|b| alnum(b) || b == b'_'))
        .then_some((c.at, class))
}

/// Where a plausible credential starts and the class of bytes continuing it.
pub(crate) type Start = (usize, fn(u8) -> bool);

/// One family of credentials.
pub(crate) struct Family {
    /// Shown in the mask and used in `--detect` lists.
    pub name: &'static str,
    /// Literal bytes that start a candidate, case-sensitive (a name matched in
    /// any case lists its spellings).
    pub anchors: &'static [&'static str],
    /// What the prefilter searches: pieces of the anchors, at least 3 bytes,
    /// as few as will find every anchor (see [`scan`]).
    pub scan: &'static [&'static str],
    /// Decides a candidate.
    pub examine: fn(&Ctx<'_>) -> Verdict,
    /// At an idle flush, for a candidate that [`Family::examine`] could not
    /// decide: where a plausible start begins and the class of bytes that
    /// continue it, or `None` to release the held bytes verbatim (they are kept
    /// as context).
    pub partial: fn(&Ctx<'_>) -> Option<Start>,
}

/// Every family, in the order of `--detect all`.
pub(crate) const FAMILIES: &[Family] = &[
    github::FAMILY,
    gitlab::FAMILY,
    aws::KEY_ID,
    aws::SECRET_KEY,
    slack::FAMILY,
    stripe::FAMILY,
    google::FAMILY,
    github::NPM,
    pypi::FAMILY,
    jwt::FAMILY,
    pem::FAMILY,
    url::FAMILY,
    authorization::FAMILY,
];

/// The scan literals grouped into the prefilter's Teddy buckets (see
/// `scan::teddy_order`). A bucket accepts every mix of its literals' nibbles
/// at each of the three fingerprint positions, so which literals share one
/// decides how often text passes: these groups were chosen by a local search
/// that moved one literal at a time to the bucket where it added the fewest
/// passing positions (weighted by the bucket's size: each passing position
/// is verified against every literal of its bucket) over the benchmark's log
/// lines and this repository's source text. Against the previous plan (eight
/// runs of six literals sharing bytes, four-byte fingerprints, `eyJ` and
/// `://` in passes of their own): 7.3 / 14.0 GB/s on log lines, 3.9 / 8.1 on
/// source text (stand-alone probe, CPU time; docs/redact.md, "Cost"). The
/// first group is the one a filler repeats (nothing of the log lines passes
/// it). A literal missing here (it gets a group of its own, or joins the
/// last) only costs speed.
const SCAN_BUCKETS: [&[&str]; scan::BUCKETS] = [
    &["k_live_", "k_test_", "://", "b_pat_"],
    &[
        "gho_", "ghu_", "ghr_", "glim", "gloa", "glrt", "glag", "glft", "glff", "gldt",
    ],
    &[
        "glpa", "glpt", "glcb", "whsec_", "glso", "npm_", "ghp_", "ghs_",
    ],
    &["ccess", "CCESS"],
    &["AKIA", "ASIA", "ABIA", "ACCA", "-BEGIN ", "AROA"],
    &["AIPA", "ANPA", "ANVA", "APKA", "AIza", "AGPA", "AIDA"],
    &[
        "xoxb", "xoxp", "xoxa", "xoxr", "xoxe", "xoxs", "pypi-AgE", "xapp-",
    ],
    &["rization", "RIZATION", "eyJ"],
];

/// The names of every detector, in table order.
pub fn names() -> impl Iterator<Item = &'static str> {
    FAMILIES.iter().map(|f| f.name)
}

/// A selection of detectors and the prefilter over their anchors.
pub struct DetectorSet {
    families: Vec<&'static Family>,
    /// Every anchor: (index into `families`, the anchor).
    anchors: Vec<(usize, &'static [u8])>,
    scanner: Option<scan::Scanner>,
    /// For each byte, the anchors whose first byte it is.
    by_first: Vec<Vec<usize>>,
    /// The mask written for each family, same order as `families`.
    masks: Vec<Vec<u8>>,
    /// The value matcher's mask: the stage runs after the matcher, and a
    /// candidate that is exactly this mask is a registered value, already
    /// masked as itself (known values win over detectors).
    value_mask: Vec<u8>,
    max_anchor: usize,
}

impl fmt::Debug for DetectorSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.families.iter().map(|f| f.name))
            .finish()
    }
}

impl DetectorSet {
    /// Parses `all`, `none` (or an empty string) or a comma-separated list of
    /// names; `mask` is the configured mask, into which each family's name is
    /// inserted before a closing `]` (`[REDACTED]` → `[REDACTED:jwt]`).
    pub fn parse(list: &str, mask: &[u8]) -> Result<DetectorSet, DetectError> {
        let list = list.trim();
        let chosen: Vec<&'static Family> = match list {
            "all" => FAMILIES.iter().collect(),
            "" | "none" => Vec::new(),
            _ => {
                let mut chosen = Vec::new();
                for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    let family = FAMILIES.iter().find(|f| f.name == name).ok_or_else(|| {
                        DetectError::Unknown {
                            name: name.to_string(),
                            known: names().collect::<Vec<_>>().join(", "),
                        }
                    })?;
                    if !chosen.iter().any(|f: &&Family| f.name == name) {
                        chosen.push(family);
                    }
                }
                chosen
            }
        };
        Ok(Self::of(chosen, mask))
    }

    /// Every detector.
    pub fn all(mask: &[u8]) -> DetectorSet {
        Self::of(FAMILIES.iter().collect(), mask)
    }

    fn of(families: Vec<&'static Family>, mask: &[u8]) -> DetectorSet {
        let mut anchors = Vec::new();
        for (i, f) in families.iter().enumerate() {
            anchors.extend(f.anchors.iter().map(|a| (i, a.as_bytes())));
        }
        let mut literals: Vec<&'static str> = Vec::new();
        for lit in families.iter().flat_map(|f| f.scan) {
            if !literals.contains(lit) {
                literals.push(lit);
            }
        }
        let mut groups: Vec<Vec<&'static str>> = SCAN_BUCKETS
            .iter()
            .map(|g| g.iter().copied().filter(|l| literals.contains(l)).collect())
            .collect();
        let unplanned: Vec<&'static str> = literals
            .iter()
            .copied()
            .filter(|l| !SCAN_BUCKETS.iter().any(|g| g.contains(l)))
            .collect();
        groups.retain(|g| !g.is_empty());
        if !unplanned.is_empty() {
            if groups.len() < scan::BUCKETS {
                groups.push(unplanned);
            } else if let Some(last) = groups.last_mut() {
                last.extend(unplanned);
            }
        }
        let scanner = (!anchors.is_empty()).then(|| {
            let bytes: Vec<&[u8]> = anchors.iter().map(|a| a.1).collect();
            scan::Scanner::new(&groups, &bytes)
        });
        let masks = families.iter().map(|f| named_mask(mask, f.name)).collect();
        let max_anchor = anchors.iter().map(|a| a.1.len()).max().unwrap_or(0);
        let by_first = (0..=255u8)
            .map(|b| {
                (0..anchors.len())
                    .filter(|&ai| anchors[ai].1[0] == b)
                    .collect()
            })
            .collect();
        assert!(max_anchor <= stage::MAX_ANCHOR, "an anchor is too long");
        DetectorSet {
            families,
            anchors,
            scanner,
            by_first,
            masks,
            value_mask: mask.to_vec(),
            max_anchor,
        }
    }

    /// The anchors whose first byte is `b` (indices into `anchors`; anchors
    /// are case-sensitive).
    pub(crate) fn starting_with(&self, b: u8) -> &[usize] {
        &self.by_first[usize::from(b)]
    }

    /// No detector selected.
    pub fn is_empty(&self) -> bool {
        self.families.is_empty()
    }

    /// The selected names.
    pub fn names(&self) -> Vec<&'static str> {
        self.families.iter().map(|f| f.name).collect()
    }

    /// The leftmost anchor starting at or after `from` and ending within
    /// `buf`: its start, its family's index and the anchor.
    /// `cursor` is this buffer's (see [`scan::Cursor`]).
    pub(crate) fn next_anchor(
        &self,
        buf: &[u8],
        from: usize,
        cursor: &mut scan::Cursor,
    ) -> Option<(usize, usize, &'static [u8])> {
        let (at, ai) = self
            .scanner
            .as_ref()?
            .next(buf, from, &self.anchors, cursor)?;
        let (fi, anchor) = self.anchors[ai];
        Some((at, fi, anchor))
    }
}

/// `[REDACTED]` → `[REDACTED:name]`; a mask not ending in `]` is used as is.
fn named_mask(mask: &[u8], name: &str) -> Vec<u8> {
    match mask.split_last() {
        Some((b']', head)) => [head, b":", name.as_bytes(), b"]"].concat(),
        _ => mask.to_vec(),
    }
}

/// One detection in a whole text, for scanners and reports: the family and the
/// byte range. Never the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detection {
    /// The detector's name.
    pub name: &'static str,
    /// Where the masked bytes are.
    pub range: std::ops::Range<usize>,
}

impl DetectorSet {
    /// Every credential in a complete text (no streaming): what the stage would
    /// mask, as ranges. A private key block is one range from its header's end
    /// to its END line's end.
    pub fn find_all(&self, text: &[u8]) -> Vec<Detection> {
        let mut found = Vec::new();
        let mut pos = 0;
        let mut cursor = scan::Cursor::default();
        while pos < text.len() {
            let Some((at, fi, anchor)) = self.next_anchor(text, pos, &mut cursor) else {
                break;
            };
            let family = self.families[fi];
            let ctx = Ctx {
                buf: text,
                at,
                anchor,
                behind: &[],
                eof: true,
            };
            match (family.examine)(&ctx) {
                Verdict::Mask { start, end, .. } => {
                    found.push(Detection {
                        name: family.name,
                        range: start..end,
                    });
                    pos = end.max(at + 1);
                }
                Verdict::Block { body } => {
                    let end = pem::block_end(&text[body..]).map_or(text.len(), |e| body + e);
                    found.push(Detection {
                        name: family.name,
                        range: body..end,
                    });
                    pos = end.max(at + 1);
                }
                Verdict::No | Verdict::More => pos = at + 1,
            }
        }
        found
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// What `find_all` with every detector finds, as (name, masked text).
    pub fn found(text: &str) -> Vec<(&'static str, String)> {
        DetectorSet::all(b"[REDACTED]")
            .find_all(text.as_bytes())
            .into_iter()
            .map(|d| (d.name, text[d.range].to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_parses_names_all_and_none() {
        assert_eq!(
            DetectorSet::parse("all", b"[R]").unwrap().names().len(),
            FAMILIES.len()
        );
        assert!(DetectorSet::parse("none", b"[R]").unwrap().is_empty());
        assert!(DetectorSet::parse("", b"[R]").unwrap().is_empty());
        let two = DetectorSet::parse("jwt, github-token,jwt", b"[R]").unwrap();
        assert_eq!(two.names(), vec!["jwt", "github-token"]);
        let err = DetectorSet::parse("jwt,nope", b"[R]").unwrap_err();
        assert!(err.to_string().contains("\"nope\""), "{err}");
    }

    #[test]
    fn the_mask_names_the_family() {
        assert_eq!(named_mask(b"[REDACTED]", "jwt"), b"[REDACTED:jwt]");
        assert_eq!(named_mask(b"***", "jwt"), b"***");
    }

    /// The prefilter stays one pass with selective fingerprints (see
    /// `scan.rs`): every literal is at least three bytes long (Teddy's
    /// fingerprint is as long as the shortest), a literal shorter than four
    /// bytes is a whole anchor, there are fewer literals than anchors, and the
    /// bucket plan lists exactly the literals.
    #[test]
    fn scan_literals_are_few_and_long() {
        let mut literals: Vec<&str> = FAMILIES.iter().flat_map(|f| f.scan).copied().collect();
        literals.sort_unstable();
        literals.dedup();
        let anchors: Vec<&str> = FAMILIES.iter().flat_map(|f| f.anchors).copied().collect();
        assert!(literals.len() < anchors.len(), "{literals:?}");
        for l in &literals {
            assert!(l.len() >= 3, "{l:?} is too short a fingerprint");
            assert!(
                l.len() >= 4 || anchors.contains(l),
                "{l:?} is a short piece"
            );
        }
        let mut planned: Vec<&str> = SCAN_BUCKETS
            .iter()
            .flat_map(|g| g.iter())
            .copied()
            .collect();
        planned.sort_unstable();
        assert_eq!(literals, planned);
        // Building the set checks that every anchor has a literal.
        DetectorSet::all(b"[R]");
    }

    #[test]
    fn names_are_unique_and_kebab_case() {
        let mut seen = std::collections::HashSet::new();
        for f in FAMILIES {
            assert!(seen.insert(f.name), "{} twice", f.name);
            assert!(f.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'));
        }
    }
}
