//! Package formats: `ar` (Debian packages, static libraries), RPM (a lead and
//! headers before a compressed cpio payload) and cpio itself. Every header byte
//! that is not a name is part of a stream that is scanned: member data is walked,
//! RPM headers (scripts, file lists, changelogs) are scanned as bytes.

use std::io::{self, Read};

use super::pushback::Pushback;
use super::walk::{Part, Stop, Walker};
use crate::scanner::read_full;

/// Largest RPM header accepted (rpm itself refuses more than 256 MiB).
const RPM_HEADER_MAX: u64 = 256 << 20;

fn number(field: &[u8], radix: u32) -> Option<u64> {
    let text = std::str::from_utf8(field).ok()?.trim_matches([' ', '\0']);
    u64::from_str_radix(text, radix).ok()
}

impl<F> Walker<F>
where
    F: FnMut(&str, Part, &mut dyn Read, Option<u64>) -> io::Result<u64>,
{
    fn unreadable(&self, at: &str, error: &str) -> Stop {
        Stop::Unreadable {
            at: at.to_string(),
            error: error.to_string(),
        }
    }

    /// An `ar` archive: `!<arch>\n`, then 60-byte headers each before its data
    /// (padded to an even length). GNU (`name/`) and BSD (`#1/LEN`) names.
    pub(super) fn ar(
        &mut self,
        name: &str,
        src: &mut Pushback<'_>,
        depth: u32,
    ) -> Result<(), Stop> {
        let mut magic = [0u8; 8];
        read_full(src, &mut magic).map_err(|e| self.failed(name, e))?;
        loop {
            let mut h = [0u8; 60];
            let n = read_full(src, &mut h).map_err(|e| self.failed(name, e))?;
            if n < 60 || &h[58..60] != b"`\n" {
                // Not a member: left for the caller, walked as what follows.
                src.unread(&h[..n]);
                return Ok(());
            }
            let mut size = number(&h[48..58], 10)
                .ok_or_else(|| self.unreadable(name, "ar: bad member size"))?;
            let ident = String::from_utf8_lossy(&h[..16]).trim_end().to_string();
            let mut stored = ident.as_bytes().to_vec();
            if let Some(len) = ident
                .strip_prefix("#1/")
                .and_then(|l| l.parse::<u64>().ok())
            {
                if len > size || len > 4096 {
                    return Err(self.unreadable(name, "ar: bad BSD name length"));
                }
                stored = vec![0u8; len as usize];
                read_full(src, &mut stored).map_err(|e| self.failed(name, e))?;
                size -= len;
                while stored.last() == Some(&0) {
                    stored.pop();
                }
            } else if stored.len() > 1 && stored.last() == Some(&b'/') {
                stored.pop();
            }
            self.entry(name)?;
            let at = format!("{name}!{}", String::from_utf8_lossy(&stored));
            self.entry_name(&at, &stored)?;
            self.stream(&at, &mut (&mut *src).take(size), depth, Some(size))?;
            if size % 2 == 1 {
                let mut pad = [0u8; 1];
                let n = read_full(src, &mut pad).map_err(|e| self.failed(name, e))?;
                if pad[..n] != *b"\n" {
                    src.unread(&pad[..n]);
                }
            }
        }
    }

    /// An RPM package: a 96-byte lead, the signature header (padded to 8
    /// bytes), the header, then the payload (a compressed cpio archive) walked
    /// as a stream named like the package.
    pub(super) fn rpm(
        &mut self,
        name: &str,
        src: &mut Pushback<'_>,
        depth: u32,
    ) -> Result<(), Stop> {
        let mut meta = zeroize::Zeroizing::new(vec![0u8; 96]);
        if read_full(src, &mut meta).map_err(|e| self.failed(name, e))? < 96 {
            return Err(self.unreadable(name, "rpm: truncated lead"));
        }
        for padded in [true, false] {
            let mut intro = [0u8; 16];
            if read_full(src, &mut intro).map_err(|e| self.failed(name, e))? < 16
                || intro[..3] != [0x8e, 0xad, 0xe8]
            {
                return Err(self.unreadable(name, "rpm: bad header"));
            }
            let count = u64::from(u32::from_be_bytes(intro[8..12].try_into().expect("4")));
            let data = u64::from(u32::from_be_bytes(intro[12..16].try_into().expect("4")));
            let mut body = count * 16 + data;
            if padded {
                body += (8 - body % 8) % 8;
            }
            if body > RPM_HEADER_MAX {
                return Err(self.unreadable(name, "rpm: header too large"));
            }
            meta.extend_from_slice(&intro);
            let before = meta.len();
            (&mut *src)
                .take(body)
                .read_to_end(&mut meta)
                .map_err(|e| self.failed(name, e))?;
            if (meta.len() - before) as u64 != body {
                return Err(self.unreadable(name, "rpm: truncated header"));
            }
        }
        let len = meta.len() as u64;
        (self.leaf)(name, Part::Content, &mut meta.as_slice(), Some(len))
            .map_err(|e| self.failed(name, e))?;
        self.stream(name, src, depth, None)
    }

    /// A cpio archive (`newc`/`crc`: hex fields, 4-byte alignment; `odc`: octal
    /// fields) up to its `TRAILER!!!`.
    pub(super) fn cpio(
        &mut self,
        name: &str,
        src: &mut Pushback<'_>,
        depth: u32,
    ) -> Result<(), Stop> {
        loop {
            let mut magic = [0u8; 6];
            let n = read_full(src, &mut magic).map_err(|e| self.failed(name, e))?;
            let (header, radix, align, size_at, name_at) = match &magic[..n] {
                b"070701" | b"070702" => (110, 16, 4, 54..62, 94..102),
                b"070707" => (76, 8, 1, 65..76, 59..65),
                _ => {
                    src.unread(&magic[..n]);
                    return Ok(());
                }
            };
            let mut h = vec![0u8; header];
            h[..6].copy_from_slice(&magic);
            if read_full(src, &mut h[6..]).map_err(|e| self.failed(name, e))? < header - 6 {
                return Err(self.unreadable(name, "cpio: truncated header"));
            }
            let bad = || self.unreadable(name, "cpio: bad header");
            let size = number(&h[size_at], radix).ok_or_else(bad)?;
            let name_len = number(&h[name_at], radix).ok_or_else(bad)?;
            if name_len > 1 << 16 {
                return Err(bad());
            }
            let mut stored = vec![0u8; name_len as usize];
            if read_full(src, &mut stored).map_err(|e| self.failed(name, e))? < stored.len() {
                return Err(self.unreadable(name, "cpio: truncated name"));
            }
            skip(src, pad(header as u64 + name_len, align)).map_err(|e| self.failed(name, e))?;
            while stored.last() == Some(&0) {
                stored.pop();
            }
            if stored == b"TRAILER!!!" {
                return Ok(());
            }
            self.entry(name)?;
            let at = format!("{name}!{}", String::from_utf8_lossy(&stored));
            self.entry_name(&at, &stored)?;
            self.stream(&at, &mut (&mut *src).take(size), depth, Some(size))?;
            skip(src, pad(size, align)).map_err(|e| self.failed(name, e))?;
        }
    }
}

/// Padding after `len` bytes to a multiple of `align`.
fn pad(len: u64, align: u64) -> u64 {
    (align - len % align) % align
}

fn skip(src: &mut Pushback<'_>, n: u64) -> io::Result<()> {
    io::copy(&mut src.take(n), &mut io::sink()).map(|_| ())
}
