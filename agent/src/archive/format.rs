//! Recognising a stream's format from its first bytes.

/// How many leading bytes [`detect`] looks at (one tar header block).
pub const SNIFF_LEN: usize = 512;

/// What a stream is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// gzip (RFC 1952), also `.tgz` and concatenated members.
    Gzip,
    /// bzip2.
    Bzip2,
    /// xz.
    Xz,
    /// Zstandard.
    Zstd,
    /// A raw LZMA stream (`xz --format=lzma`, `.lzma`): no magic, recognised by
    /// a plausible header at the start of a stream only.
    Lzma,
    /// A Unix `ar` archive (`.deb`, `.a`).
    Ar,
    /// An RPM package: lead and headers, then a compressed cpio payload.
    Rpm,
    /// A cpio archive, `newc`/`crc` or portable ASCII (`odc`).
    Cpio,
    /// A 7-Zip archive: recognised, not read (the file is incomplete).
    SevenZ,
    /// A POSIX, GNU or v7 tar archive.
    Tar,
    /// A zip archive (and jar, war, wheel, apk, nupkg, …).
    Zip,
    /// Anything else: scanned as bytes.
    Plain,
}

impl Format {
    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::Gzip => "gzip",
            Format::Bzip2 => "bzip2",
            Format::Xz => "xz",
            Format::Zstd => "zstd",
            Format::Lzma => "lzma",
            Format::Ar => "ar",
            Format::Rpm => "rpm",
            Format::Cpio => "cpio",
            Format::SevenZ => "7z",
            Format::Tar => "tar",
            Format::Zip => "zip",
            Format::Plain => "plain",
        }
    }
}

/// The format of a stream that starts with `head` (up to [`SNIFF_LEN`] bytes;
/// fewer only when the stream is that short).
pub fn detect(head: &[u8]) -> Format {
    if head.starts_with(&[0x1f, 0x8b]) && gzip_header_ok(head) {
        Format::Gzip
    } else if head.len() >= 4 && head.starts_with(b"BZh") && (b'1'..=b'9').contains(&head[3]) {
        Format::Bzip2
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Format::Xz
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Format::Zstd
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        // A local file header, or the end record of an empty archive.
        Format::Zip
    } else if is_tar_header(head) {
        Format::Tar
    } else if head.starts_with(b"!<arch>\n") {
        Format::Ar
    } else if head.starts_with(&[0xed, 0xab, 0xee, 0xdb]) {
        Format::Rpm
    } else if is_cpio_header(head) {
        Format::Cpio
    } else if head.starts_with(SEVEN_Z) {
        Format::SevenZ
    } else if is_lzma_header(head) {
        Format::Lzma
    } else {
        Format::Plain
    }
}

const SEVEN_Z: &[u8] = b"7z\xbc\xaf\x27\x1c";

/// The magic numbers looked for inside a plain stream (a launch script or a
/// binary followed by an archive: self-extracting jars and installers), with how
/// far before the magic the format starts (a tar's `ustar` sits at byte 257).
/// A raw LZMA stream has no magic and is only recognised at a stream's start.
pub const EMBEDDED: &[(&[u8], usize)] = &[
    (&[0x1f, 0x8b, 0x08], 0),
    (b"BZh91AY&SY", 0),
    (b"BZh11AY&SY", 0),
    (b"BZh21AY&SY", 0),
    (b"BZh31AY&SY", 0),
    (b"BZh41AY&SY", 0),
    (b"BZh51AY&SY", 0),
    (b"BZh61AY&SY", 0),
    (b"BZh71AY&SY", 0),
    (b"BZh81AY&SY", 0),
    (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], 0),
    (&[0x28, 0xb5, 0x2f, 0xfd], 0),
    (b"PK\x03\x04", 0),
    (b"ustar\x0000", 257),
    (b"ustar  \x00", 257),
    (b"!<arch>\n", 0),
    (&[0xed, 0xab, 0xee, 0xdb], 0),
    (b"070701", 0),
    (b"070702", 0),
    (b"070707", 0),
    (SEVEN_Z, 0),
];

/// Deflate (the only method) and no reserved flag, when those bytes are there.
fn gzip_header_ok(head: &[u8]) -> bool {
    head.get(2).is_none_or(|m| *m == 8) && head.get(3).is_none_or(|f| f & 0xe0 == 0)
}

/// A cpio header: its magic and then only hex (`newc`, `crc`) or octal (`odc`)
/// digits up to the name.
fn is_cpio_header(head: &[u8]) -> bool {
    let digits = |len: usize, ok: fn(&u8) -> bool| head.len() >= len && head[6..len].iter().all(ok);
    if head.starts_with(b"070701") || head.starts_with(b"070702") {
        digits(110, u8::is_ascii_hexdigit)
    } else if head.starts_with(b"070707") {
        digits(76, |b| (b'0'..=b'7').contains(b))
    } else {
        false
    }
}

/// `xz --format=lzma`'s header: a properties byte (lc, lp, pb), a dictionary
/// size of 2^n or 2^n + 2^(n-1) bytes, and an uncompressed size that is unknown
/// (all ones) or plausible.
fn is_lzma_header(head: &[u8]) -> bool {
    if head.len() < 13 || head[0] >= 225 {
        return false;
    }
    let dict = u32::from_le_bytes(head[1..5].try_into().expect("4 bytes"));
    let size = u64::from_le_bytes(head[5..13].try_into().expect("8 bytes"));
    let dict_ok = dict >= 1 << 12 && {
        let top = 1u32 << (31 - dict.leading_zeros());
        dict == top || dict == top | (top >> 1)
    };
    dict_ok && (size == u64::MAX || size < 1 << 48)
}

/// A tar header block: the `ustar` magic (POSIX and GNU), or for v7 archives a
/// name and a valid header checksum.
fn is_tar_header(head: &[u8]) -> bool {
    if head.len() < SNIFF_LEN {
        return false;
    }
    if &head[257..262] == b"ustar" {
        return checksum_ok(head);
    }
    head[0] != 0 && checksum_ok(head)
}

/// The header checksum: the sum of the block's bytes with the checksum field
/// itself read as spaces, stored as octal in bytes 148..156.
fn checksum_ok(block: &[u8]) -> bool {
    let field = &block[148..156];
    let digits: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(|b| (b'0'..=b'7').contains(b))
        .collect();
    if digits.is_empty() {
        return false;
    }
    let Ok(stored) = u32::from_str_radix(std::str::from_utf8(&digits).unwrap_or(""), 8) else {
        return false;
    };
    let sum: u32 = block[..SNIFF_LEN]
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(*b)
            }
        })
        .sum();
    sum == stored
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_header(magic: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; SNIFF_LEN];
        h[..8].copy_from_slice(b"file.txt");
        h[257..257 + magic.len()].copy_from_slice(magic);
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        let field = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(field.as_bytes());
        h
    }

    #[test]
    fn magic_bytes_name_the_format() {
        assert_eq!(detect(&[0x1f, 0x8b, 8, 0]), Format::Gzip);
        assert_eq!(detect(b"BZh91AY&SY"), Format::Bzip2);
        assert_eq!(detect(b"BZhx"), Format::Plain);
        assert_eq!(detect(b"\xfd7zXZ\x00\x00"), Format::Xz);
        assert_eq!(detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Format::Zstd);
        assert_eq!(detect(b"PK\x03\x04\x14\x00"), Format::Zip);
        assert_eq!(detect(b"PK\x05\x06"), Format::Zip);
        assert_eq!(detect(b"PKnot a zip"), Format::Plain);
        assert_eq!(detect(b"hello"), Format::Plain);
        assert_eq!(detect(b""), Format::Plain);
        assert_eq!(detect(b"!<arch>\ndebian-binary"), Format::Ar);
        assert_eq!(detect(&[0xed, 0xab, 0xee, 0xdb, 3, 0]), Format::Rpm);
        let mut newc = b"070701".to_vec();
        newc.extend_from_slice(&[b'0'; 104]);
        assert_eq!(detect(&newc), Format::Cpio);
        assert_eq!(detect(b"070701 is a number"), Format::Plain);
        assert_eq!(detect(b"7z\xbc\xaf\x27\x1c\x00\x04"), Format::SevenZ);
        let lzma = [
            0x5d, 0, 0, 0x80, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0,
        ];
        assert_eq!(detect(&lzma), Format::Lzma);
        assert_eq!(detect(b"#!/bin/sh\nexec java -jar"), Format::Plain);
    }

    #[test]
    fn tar_needs_a_valid_checksum() {
        assert_eq!(detect(&tar_header(b"ustar\x0000")), Format::Tar);
        assert_eq!(detect(&tar_header(b"ustar  \x00")), Format::Tar);
        assert_eq!(detect(&tar_header(b"")), Format::Tar, "v7");
        let mut bad = tar_header(b"ustar\x0000");
        bad[0] = b'g';
        assert_eq!(detect(&bad), Format::Plain);
        assert_eq!(detect(&[0u8; SNIFF_LEN]), Format::Plain);
        let mut text = vec![b'a'; SNIFF_LEN];
        text[257..262].copy_from_slice(b"ustar");
        assert_eq!(detect(&text), Format::Plain);
    }
}
