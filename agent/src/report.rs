//! Warnings about the redaction set, by secret name only.

use std::collections::HashSet;
use std::sync::Mutex;

use shroud_redactor::quality::{assess, Verdict, Weakness};
use shroud_redactor::BuildReport;
use tracing::warn;

/// The one warning about a value whose pieces are likely in ordinary text, from
/// either test: the redactor's per-piece one (`BuildReport::ordinary`) or the
/// whole-value one (`quality::assess`, with its reason).
const WEAK: &str = "secret value is weak: pieces of it are likely to occur in ordinary text, where they are masked too; use a random value";
/// The reason given for `BuildReport::ordinary`.
const ORDINARY_PIECE: &str =
    "a piece of lower-case words, digits only or a few repeated characters";

/// Logs one warning per value that is not masked on its own, or is weak. Values
/// derived from a document (`name#path`) are not named: the document is.
pub fn warn_report(report: &BuildReport, min_length: usize) {
    for name in &report.too_short {
        warn!(secret = %name, min_length, "secret value is shorter than the minimum length; it is not masked on its own");
    }
    for name in report.ordinary.iter().filter(|n| !n.contains('#')) {
        warn!(secret = %name, reason = ORDINARY_PIECE, "{WEAK}");
    }
    for name in &report.empty {
        warn!(secret = %name, "secret value is empty; nothing to mask");
    }
}

/// Logs one warning per file of `--secrets-dir` that was not read, and why.
pub fn warn_skipped(skipped: &[crate::secrets_source::walk::Skipped]) {
    for s in skipped {
        warn!(path = %s.path.display(), reason = %s.reason, "secrets directory: file skipped");
    }
}

/// Logs one warning per value whose pieces are likely in ordinary text, unless
/// [`warn_report`] already named it from `report`.
pub fn warn_weak(weak: &[(String, Weakness)], report: &BuildReport) {
    for (name, why) in weak {
        if !report.ordinary.contains(name) {
            warn!(secret = %name, reason = %why, "{WEAK}");
        }
    }
}

/// [`warn_weak`] for `name` unless this process already warned about it (the
/// agent assesses its values at every publication).
pub fn warn_weak_once(name: &str, value: &[u8], min_length: usize) {
    static WARNED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    if value.len() < min_length {
        return;
    }
    let Verdict::Weak(why) = assess(value) else {
        return;
    };
    let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    if warned
        .get_or_insert_with(HashSet::new)
        .insert(name.to_string())
    {
        warn!(secret = %name, reason = %why, "{WEAK}");
    }
}
