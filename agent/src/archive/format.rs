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
            Format::Tar => "tar",
            Format::Zip => "zip",
            Format::Plain => "plain",
        }
    }
}

/// The format of a stream that starts with `head` (up to [`SNIFF_LEN`] bytes;
/// fewer only when the stream is that short).
pub fn detect(head: &[u8]) -> Format {
    if head.starts_with(&[0x1f, 0x8b]) {
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
    } else {
        Format::Plain
    }
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
