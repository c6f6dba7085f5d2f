//! A set's patterns: every form of every secret, each distinct form once, in
//! byte order. Each thread derives the forms of a run of secrets into one
//! buffer and sorts them; the runs are then merged.

use zeroize::Zeroizing;

use crate::encodings::{each_variant, Encoding, Scratch};
use crate::set::{is_lower_hex, BuildReport, Entry, PatternInfo};

/// The forms of a run of secrets, in one buffer.
#[derive(Default)]
pub(crate) struct Derived {
    bytes: Zeroizing<Vec<u8>>,
    /// The [`prefix_key`], (offset, length) in `bytes` and origin of each
    /// form, sorted by its bytes; equal forms (of different secrets) by secret.
    forms: Vec<(u64, u32, u32, PatternInfo)>,
    /// Names of the run's empty, short and ordinary values.
    pub(crate) report: BuildReport,
}

impl Derived {
    fn form(&self, i: usize) -> &[u8] {
        let (_, off, len, _) = self.forms[i];
        &self.bytes[off as usize..][..len as usize]
    }
}

/// The first eight bytes, big-endian, zero-padded: when two keys differ they
/// order the byte strings, so most comparisons need no `memcmp` (which was an
/// eighth of the build's time).
fn prefix_key(bytes: &[u8]) -> u64 {
    let mut k = [0u8; 8];
    let n = bytes.len().min(8);
    k[..n].copy_from_slice(&bytes[..n]);
    u64::from_be_bytes(k)
}

/// A form made only of hex digits is stored in lower case (it then matches in
/// any case, `DeadBeef…` included; `push` gets `true` to lower it); a form
/// with a run of at least `piece` lower-case hex digits inside other bytes also
/// gives that run, so that its pieces match in any case too (the rule is per
/// unit, see [`crate::reference`]).
fn hex_forms(form: &[u8], piece: usize, mut push: impl FnMut(&[u8], bool)) {
    if form.iter().all(u8::is_ascii_hexdigit) {
        push(form, true);
        return;
    }
    let mut run = 0;
    for (i, &b) in form.iter().enumerate() {
        if matches!(b, b'0'..=b'9' | b'a'..=b'f') {
            run += 1;
            continue;
        }
        if run >= piece {
            push(&form[i - run..i], false);
        }
        run = 0;
    }
    if run >= piece {
        push(&form[form.len() - run..], false);
    }
    push(form, false);
}

/// Every form of `entries` (the first is secret number `first`) at least
/// `min_length` long, each secret's forms de-duplicated (the first of equal
/// ones kept), sorted.
pub(crate) fn derive(entries: &[Entry], first: usize, min_length: usize, piece: usize) -> Derived {
    let mut out = Derived::default();
    let mut scratch = Scratch::default();
    let mut local = Zeroizing::new(Vec::new());
    let mut forms: Vec<(u32, u32, Encoding)> = Vec::new();
    for (secret, entry) in (first..).zip(entries) {
        let report = &mut out.report;
        if entry.value.is_empty() {
            report.empty.push(entry.name.clone());
            continue;
        }
        if entry.value.len() < min_length {
            report.too_short.push(entry.name.clone());
        } else if crate::ordinary::has_ordinary_piece(&entry.value, piece) {
            report.ordinary.push(entry.name.clone());
        }
        local.clear();
        forms.clear();
        // Armor lines are public: only the parts between them are matched.
        for part in crate::armor::secret_parts(&entry.value) {
            each_variant(part, &mut scratch, |form, encoding| {
                hex_forms(form, piece, |bytes, lower| {
                    if bytes.len() >= min_length {
                        let at = local.len();
                        local.extend_from_slice(bytes);
                        if lower {
                            local[at..].make_ascii_lowercase();
                        }
                        forms.push((at as u32, bytes.len() as u32, encoding));
                    }
                });
            });
        }
        // Most forms of a value repeat another (every escaping of plain text is
        // the text): dropping them here keeps the set-wide merge small. Stable,
        // so the first form of each stays, as the merge keeps the first.
        let form = |f: &(u32, u32, Encoding)| &local[f.0 as usize..][..f.1 as usize];
        forms.sort_by(|a, b| form(a).cmp(form(b)));
        forms.dedup_by(|a, b| form(a) == form(b));
        for f in &forms {
            let info = PatternInfo {
                secret,
                encoding: f.2,
            };
            let bytes = form(f);
            out.forms
                .push((prefix_key(bytes), out.bytes.len() as u32, f.1, info));
            out.bytes.extend_from_slice(bytes);
        }
    }
    let bytes = &out.bytes;
    let form = |f: &(u64, u32, u32, PatternInfo)| &bytes[f.1 as usize..][..f.2 as usize];
    // Offsets ascend with the secret: the last tie-break keeps the sort stable.
    out.forms.sort_unstable_by(|a, b| {
        (a.0.cmp(&b.0))
            .then_with(|| form(a).cmp(form(b)))
            .then(a.1.cmp(&b.1))
    });
    out
}

/// A set's patterns, in byte order.
pub(crate) struct Patterns {
    /// Every pattern's bytes, one after the other.
    pub(crate) arena: Zeroizing<Vec<u8>>,
    /// Each pattern's (offset, length) in `arena`.
    pub(crate) spans: Vec<(u32, u32)>,
    /// Each pattern's origin.
    pub(crate) info: Vec<PatternInfo>,
}

/// The patterns of a set: the runs' forms merged in byte order, each distinct
/// form once (the lowest secret's), then those that add no piece dropped.
pub(crate) fn merge(runs: &[Derived], piece: usize) -> Patterns {
    let mut heads = vec![0usize; runs.len()];
    let mut merged: Vec<(&[u8], PatternInfo)> = Vec::new();
    loop {
        // The least head; of equal ones the earliest run (lower secrets).
        let mut least: Option<(usize, u64, &[u8])> = None;
        for (r, run) in runs.iter().enumerate() {
            if heads[r] < run.forms.len() {
                let (key, form) = (run.forms[heads[r]].0, run.form(heads[r]));
                if least.is_none_or(|(_, k, l)| (key, form) < (k, l)) {
                    least = Some((r, key, form));
                }
            }
        }
        let Some((r, _, form)) = least else { break };
        let info = runs[r].forms[heads[r]].3;
        heads[r] += 1;
        if merged.last().is_none_or(|&(last, _)| last != form) {
            merged.push((form, info));
        }
    }
    // Under the piece rule a pattern inside a longer one of the same secret
    // adds no piece; a prefix sorts right before an extension of it (the full
    // base64 of a value and its core at offset 0).
    let keep = |i: usize| {
        let (cur, info) = merged[i];
        merged.get(i + 1).is_none_or(|&(next, ni)| {
            cur.len() < piece
                || ni.secret != info.secret
                || !next.starts_with(cur)
                // A hex run inside a longer form matches in any case.
                || is_lower_hex(cur) && !is_lower_hex(next)
        })
    };
    let kept: Vec<usize> = (0..merged.len()).filter(|&i| keep(i)).collect();
    let mut arena = Zeroizing::new(Vec::with_capacity(
        kept.iter().map(|&i| merged[i].0.len()).sum(),
    ));
    let mut spans = Vec::with_capacity(kept.len());
    let mut info = Vec::with_capacity(kept.len());
    for i in kept {
        let (bytes, pi) = merged[i];
        spans.push((arena.len() as u32, bytes.len() as u32));
        arena.extend_from_slice(bytes);
        info.push(pi);
    }
    Patterns { arena, spans, info }
}
