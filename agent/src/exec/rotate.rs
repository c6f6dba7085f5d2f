//! `--on-rotate`: what happens to the command when the secrets change.

use std::fmt;
use std::str::FromStr;

use nix::sys::signal::Signal;

/// The action taken on the command after a new redaction set is in force.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnRotate {
    /// Nothing: the command reads the new files when it wants to.
    #[default]
    None,
    /// Send this signal to the command (e.g. SIGHUP to reload configuration).
    Signal(Signal),
    /// Stop the command gracefully (SIGTERM, then SIGKILL after the kill grace)
    /// and start it again with the same arguments.
    Restart,
}

/// Why an `--on-rotate` value was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OnRotateError {
    /// Not `none`, `restart` or `signal:NAME`.
    #[error("expected `none`, `restart` or `signal:NAME` (e.g. `signal:SIGHUP`), got `{0}`")]
    Unknown(String),
    /// `signal:NAME` with a name that is not a signal.
    #[error("unknown signal name `{0}` (expected e.g. SIGHUP, HUP or USR1)")]
    UnknownSignal(String),
}

/// Parses a signal name: `SIGHUP`, `HUP`, `sighup`.
pub fn parse_signal(name: &str) -> Option<Signal> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&full).ok()
}

impl FromStr for OnRotate {
    type Err = OnRotateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(OnRotate::None),
            "restart" => Ok(OnRotate::Restart),
            _ => match s.strip_prefix("signal:") {
                Some(name) => parse_signal(name)
                    .map(OnRotate::Signal)
                    .ok_or_else(|| OnRotateError::UnknownSignal(name.to_string())),
                None => Err(OnRotateError::Unknown(s.to_string())),
            },
        }
    }
}

impl fmt::Display for OnRotate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OnRotate::None => f.write_str("none"),
            OnRotate::Signal(s) => write!(f, "signal:{}", s.as_str()),
            OnRotate::Restart => f.write_str("restart"),
        }
    }
}

/// clap value parser for `--on-rotate`.
pub fn parse_on_rotate(s: &str) -> Result<OnRotate, String> {
    s.parse().map_err(|e: OnRotateError| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!("none".parse(), Ok(OnRotate::None));
        assert_eq!("restart".parse(), Ok(OnRotate::Restart));
        assert_eq!(
            "signal:SIGHUP".parse(),
            Ok(OnRotate::Signal(Signal::SIGHUP))
        );
        assert_eq!("signal:usr1".parse(), Ok(OnRotate::Signal(Signal::SIGUSR1)));
        assert_eq!(
            "signal:SIGNOPE".parse::<OnRotate>(),
            Err(OnRotateError::UnknownSignal("SIGNOPE".into()))
        );
        assert!(matches!(
            "reboot".parse::<OnRotate>(),
            Err(OnRotateError::Unknown(_))
        ));
        assert_eq!(
            OnRotate::Signal(Signal::SIGHUP).to_string(),
            "signal:SIGHUP"
        );
    }
}
