//! Warnings about the redaction set, by secret name only.

use std::collections::HashSet;
use std::sync::Mutex;

use shroud_redactor::quality::{assess, Verdict, Weakness};
use shroud_redactor::BuildReport;
use tracing::warn;

/// Logs one warning per value that is not masked on its own.
pub fn warn_report(report: &BuildReport, min_length: usize) {
    for name in &report.too_short {
        warn!(secret = %name, min_length, "secret value is shorter than the minimum length; it is not masked on its own");
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

/// Logs one warning per value whose pieces are likely in ordinary text.
pub fn warn_weak(weak: &[(String, Weakness)]) {
    for (name, why) in weak {
        warn!(secret = %name, reason = %why, "secret value is weak: pieces of it are likely to occur in ordinary text, where they are masked too; use a random value");
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
        warn_weak(&[(name.to_string(), why)]);
    }
}
