//! The `shroud` binary: parse arguments, run the command, map errors to exit codes.

use clap::Parser as _;
use shroud_agent::alloc::ZeroOnFree;
use shroud_agent::cli::Cli;
use shroud_agent::error::{exit_code, EXIT_USAGE};

#[global_allocator]
static ALLOC: ZeroOnFree = ZeroOnFree;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    shroud_agent::logging::init(cli.log_format);
    let code = match shroud_agent::commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // Through the redactor: an error may quote input that holds a value.
            shroud_agent::logging::print_redacted(&format!("shroud: error: {e:#}"));
            exit_code(&e)
        }
    };
    std::process::exit(code);
}
