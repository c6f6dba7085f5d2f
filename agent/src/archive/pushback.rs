//! A reader that bytes can be given back to: a parser that read past the end of
//! what it understood (a decoder's buffer, a sniffed header) returns the bytes, so
//! whatever follows is walked too and no byte of a stream goes unexamined.

use std::io::{self, Read};

/// `inner` with bytes pushed back in front of it, and the position reached.
pub(crate) struct Pushback<'a> {
    front: zeroize::Zeroizing<Vec<u8>>,
    inner: &'a mut dyn Read,
    /// Bytes handed out minus bytes given back: the offset of the next byte.
    position: u64,
}

impl<'a> Pushback<'a> {
    pub(crate) fn new(inner: &'a mut dyn Read) -> Self {
        Pushback {
            front: zeroize::Zeroizing::new(Vec::new()),
            inner,
            position: 0,
        }
    }

    /// Gives back `bytes`, the last ones read, to be read again next.
    pub(crate) fn unread(&mut self, bytes: &[u8]) {
        self.front.splice(0..0, bytes.iter().copied());
        self.position -= bytes.len() as u64;
    }

    /// The offset of the next byte in the stream.
    pub(crate) fn position(&self) -> u64 {
        self.position
    }

    /// Skips zero bytes (tar end blocks, record and stream padding); false at the
    /// end of the stream.
    pub(crate) fn skip_zeros(&mut self) -> io::Result<bool> {
        let mut buf = [0u8; 512];
        loop {
            let n = self.read(&mut buf)?;
            if n == 0 {
                return Ok(false);
            }
            if let Some(i) = buf[..n].iter().position(|b| *b != 0) {
                self.unread(&buf[i..n]);
                return Ok(true);
            }
        }
    }
}

impl Read for Pushback<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = if self.front.is_empty() {
            self.inner.read(buf)?
        } else {
            let n = self.front.len().min(buf.len());
            buf[..n].copy_from_slice(&self.front[..n]);
            self.front.drain(..n);
            n
        };
        self.position += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_given_back_are_read_again_and_positions_follow() {
        let mut src: &[u8] = b"\0\0\0abcdef";
        let mut p = Pushback::new(&mut src);
        assert!(p.skip_zeros().unwrap());
        assert_eq!(p.position(), 3);
        let mut b = [0u8; 4];
        assert_eq!(p.read(&mut b).unwrap(), 4);
        p.unread(&b[2..]);
        assert_eq!(p.position(), 5);
        let mut rest = Vec::new();
        p.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"cdef");
        assert!(!p.skip_zeros().unwrap());
    }
}
