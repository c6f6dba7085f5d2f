//! One module per command; each returns the process exit code.

mod audit;
mod exec;
mod redact;
mod scan;

use crate::cli::{Cli, Command};
use crate::error::usage;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Redact(args) => redact::run(args),
        Command::Exec(args) => exec::run(args),
        Command::Scan(args) => scan::run(args),
        Command::Audit(cmd) => audit::run(cmd),
        other => Err(usage(anyhow::anyhow!(
            "`{}` is not implemented in this build",
            command_name(&other)
        ))
        .into()),
    }
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Redact(_) => "redact",
        Command::Exec(_) => "exec",
        Command::Run(_) => "run",
        Command::Agent(_) => "agent",
        Command::Config(_) => "config",
        Command::Probe(_) => "probe",
        Command::Scan(_) => "scan",
        Command::Audit(_) => "audit",
        Command::Webhook(_) => "webhook",
        Command::CopySelf { .. } => "copy-self",
    }
}
