//! Warnings about the redaction set, by secret name only.

use shroud_redactor::BuildReport;
use tracing::warn;

/// Logs one warning per value that is not masked on its own.
pub fn warn_report(report: &BuildReport, min_length: usize) {
    for name in &report.too_short {
        warn!(secret = %name, min_length, "secret value is shorter than the minimum length; it is not masked on its own");
    }
    for name in &report.ordinary {
        warn!(secret = %name, "part of this secret value looks like ordinary text (digits only, or a few repeated characters); text that is not the secret may be masked too");
    }
    for name in &report.empty {
        warn!(secret = %name, "secret value is empty; nothing to mask");
    }
}
