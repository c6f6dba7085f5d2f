//! How errors become exit codes. Library code returns typed errors; commands wrap
//! the ones caused by how shroud was invoked in [`Usage`], and the ones that must
//! exit with a particular code (a shell's 126/127) in [`Exit`].

/// Exit code for usage and configuration errors (sysexits' EX_USAGE).
pub const EXIT_USAGE: i32 = 64;

/// An error caused by how shroud was invoked or configured: exit 64.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Usage(#[from] pub anyhow::Error);

/// Wraps any error as a usage error.
pub fn usage(err: impl Into<anyhow::Error>) -> Usage {
    Usage(err.into())
}

/// An error that must end the process with a specific exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    /// The process exit code.
    pub code: i32,
    /// What went wrong; never contains secret values.
    pub message: String,
}

/// The exit code for an error returned by a command.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(exit) = cause.downcast_ref::<Exit>() {
            return exit.code;
        }
        if cause.downcast_ref::<Usage>().is_some() {
            return EXIT_USAGE;
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn usage_and_exit_codes_survive_context() {
        let e: anyhow::Error = Err::<(), _>(usage(anyhow::anyhow!("bad flag")))
            .context("while starting")
            .unwrap_err();
        assert_eq!(exit_code(&e), 64);
        let e = anyhow::Error::new(Exit {
            code: 127,
            message: "not found".into(),
        });
        assert_eq!(exit_code(&e.context("x")), 127);
        assert_eq!(exit_code(&anyhow::anyhow!("other")), 1);
    }
}
