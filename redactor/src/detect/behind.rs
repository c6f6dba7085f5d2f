//! The last few bytes a stage passed on: what a family looks back at before
//! an anchor that starts a write (`Proxy-` before `Authorization`, `aws_`
//! before `secret_access_key`, a word boundary), whatever the write cut.

use zeroize::{Zeroize, ZeroizeOnDrop};

/// How far back any family looks.
pub(crate) const LOOK_BEHIND: usize = 8;

/// The last [`LOOK_BEHIND`] bytes before the stage's next byte (wiped on
/// drop: they may be a credential's).
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub(crate) struct Behind {
    bytes: [u8; LOOK_BEHIND],
    len: usize,
}

impl std::fmt::Debug for Behind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Behind({} bytes)", self.len)
    }
}

impl Behind {
    /// The bytes, oldest first.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[LOOK_BEHIND - self.len..]
    }

    /// `passed` went by: it is now the most recent.
    pub fn advance(&mut self, passed: &[u8]) {
        let n = passed.len().min(LOOK_BEHIND);
        if n == 0 {
            return;
        }
        self.bytes.copy_within(n.., 0);
        self.bytes[LOOK_BEHIND - n..].copy_from_slice(&passed[passed.len() - n..]);
        self.len = (self.len + n).min(LOOK_BEHIND);
    }

    /// Forget everything (end of stream).
    pub fn clear(&mut self) {
        self.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_bytes_in_order() {
        let mut b = Behind::default();
        assert_eq!(b.as_slice(), b"");
        b.advance(b"Pro");
        b.advance(b"");
        b.advance(b"xy-");
        assert_eq!(b.as_slice(), b"Proxy-");
        b.advance(b"0123456789");
        assert_eq!(b.as_slice(), b"23456789");
        b.advance(b"ab");
        assert_eq!(b.as_slice(), b"456789ab");
        b.clear();
        assert_eq!(b.as_slice(), b"");
    }
}
