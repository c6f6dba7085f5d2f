//! The client's login to the gateway itself over TCP: the per-run local
//! password, asked for in cleartext (loopback only) and compared in constant
//! time. It is not the database credential.

use std::io::Write;

use sha2::{Digest, Sha256};

use super::wire::{authentication, read_frame, FrameError};
use crate::gateway::stream::Stream;

/// AuthenticationCleartextPassword.
const CLEARTEXT: i32 = 3;
/// A password message longer than this is not the local password.
const MAX_PASSWORD_MESSAGE: usize = 1024;

/// What the client answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The local password.
    Accepted,
    /// Something else.
    Refused,
    /// It closed the connection instead (psql does, to prompt for a password).
    Gone,
}

/// Asks `client` for the local password and checks it against `expected`.
pub fn check(client: &mut Stream, expected: &[u8]) -> Result<Verdict, FrameError> {
    client.write_all(&authentication(CLEARTEXT))?;
    let frame = match read_frame(client, MAX_PASSWORD_MESSAGE) {
        Ok(f) => f,
        Err(FrameError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Ok(Verdict::Gone)
        }
        Err(e) => return Err(e),
    };
    if frame.tag != b'p' {
        return Ok(Verdict::Refused);
    }
    let given = frame.body.strip_suffix(&[0]).unwrap_or(&frame.body);
    Ok(if same(given, expected) {
        Verdict::Accepted
    } else {
        Verdict::Refused
    })
}

/// Equality whose time does not depend on where the inputs differ: both are
/// hashed first, so even their lengths only change the hashing time.
fn same(a: &[u8], b: &[u8]) -> bool {
    let (x, y) = (Sha256::digest(a), Sha256::digest(b));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_bytes_are_the_same() {
        assert!(same(b"local-pw", b"local-pw"));
        assert!(!same(b"local-pw", b"local-pX"));
        assert!(!same(b"local-pw", b"local-pw "));
        assert!(!same(b"", b"x"));
    }
}
