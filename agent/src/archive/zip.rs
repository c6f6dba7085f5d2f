//! Zip archives. The central directory says what `unzip` extracts; streaming
//! readers (Java's `ZipInputStream`, `jar`) follow the local headers instead. So
//! every byte the directory does not account for (a prefix, a local entry it
//! omits, data between entries) is walked as a stream of its own; the headers and
//! the directory themselves are scanned as bytes (with the entry names, already
//! scanned as names, blanked); and a zip without a usable directory is walked
//! by its local headers.

use std::io::{self, BufReader, Read, Seek, SeekFrom};

use super::limits::{Consumed, Counted, Metered};
use super::pushback::Pushback;
use super::walk::{Part, Stop, Walker};
use crate::scanner::read_full;

const LOCAL: &[u8; 4] = b"PK\x03\x04";
const CENTRAL: &[u8; 4] = b"PK\x01\x02";
const DESCRIPTOR: &[u8; 4] = b"PK\x07\x08";

fn u16_at(b: &[u8], at: usize) -> u64 {
    u64::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn u32_at(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes(
        b[at..at + 4].try_into().expect("4 bytes"),
    ))
}

impl<F> Walker<F>
where
    F: FnMut(&str, Part, &mut dyn Read, Option<u64>) -> io::Result<u64>,
{
    /// A zip read through `input` (its members at `depth`). Returns how many
    /// bytes of `input` were accounted for; with `rest`, what follows a
    /// directory-less zip's last local entry is walked too.
    pub(super) fn zip<R: Read + Seek>(
        &mut self,
        name: &str,
        mut input: R,
        depth: u32,
        rest: bool,
    ) -> Result<u64, Stop> {
        let len = input
            .seek(SeekFrom::End(0))
            .and_then(|n| input.rewind().map(|_| n))
            .map_err(|e| self.failed(name, e))?;
        // The zip crate looks for the end record through the whole input; it
        // can only be in the last 64 KiB (its comment's maximum), and a binary
        // with a stray local-header magic must not cost a pass over the rest.
        let eocd = ends_with_directory(&mut input, len).map_err(|e| self.failed(name, e))?;
        input.rewind().map_err(|e| self.failed(name, e))?;
        if !eocd {
            return self.zip_local_only(name, &mut input, depth, rest, len);
        }
        let archive = match zip::ZipArchive::new(&mut input) {
            Ok(a) => a,
            Err(zip::result::ZipError::Io(e)) => return Err(self.failed(name, e)),
            Err(_) => {
                input.rewind().map_err(|e| self.failed(name, e))?;
                return self.zip_local_only(name, &mut input, depth, rest, len);
            }
        };
        // Embedded (without `rest`), what precedes the zip was scanned as the
        // plain stream it was found in.
        let prefix = if rest { 0 } else { archive.offset() };
        let mut layout = self.zip_directory(name, archive, depth)?;
        layout.data.push((0, prefix));
        self.zip_rest(name, &mut input, depth, len, layout)?;
        Ok(len)
    }

    /// The entries the central directory lists; returns where their headers and
    /// data lie.
    fn zip_directory<R: Read + Seek>(
        &mut self,
        name: &str,
        mut archive: zip::ZipArchive<R>,
        depth: u32,
    ) -> Result<Layout, Stop> {
        let zip_err = |w: &Self, at: &str, e: zip::result::ZipError| match e {
            zip::result::ZipError::Io(io) => w.failed(at, io),
            other => Stop::Unreadable {
                at: at.to_string(),
                error: format!("zip: {other}"),
            },
        };
        let mut layout = Layout {
            headers: Vec::new(),
            data: Vec::new(),
            directory: archive.central_directory_start(),
        };
        for i in 0..archive.len() {
            self.entry(name)?;
            let at = match archive.name_for_index(i) {
                Some(n) => format!("{name}!{n}"),
                None => name.to_string(),
            };
            let (stored, header, data, compressed, is_dir, size) = {
                let f = archive.by_index_raw(i).map_err(|e| zip_err(self, &at, e))?;
                (
                    f.name_raw().to_vec(),
                    f.header_start(),
                    f.data_start(),
                    f.compressed_size(),
                    f.is_dir(),
                    f.size(),
                )
            };
            self.entry_name(&at, &stored)?;
            layout.headers.push((header, data, stored));
            layout.data.push((data, data.saturating_add(compressed)));
            // A "directory" holding data is extracted by some tools: scan it.
            if is_dir && size == 0 && compressed == 0 {
                continue;
            }
            let mut file = archive.by_index(i).map_err(|e| zip_err(self, &at, e))?;
            if file.compression() == zip::CompressionMethod::Stored {
                self.stream(&at, &mut file, depth, Some(size))?;
            } else {
                let consumed = Consumed::Fixed(file.compressed_size());
                let mut r = Metered::new(&mut file, self.budget.clone(), consumed);
                self.stream(&at, &mut r, depth, Some(size))?;
            }
        }
        Ok(layout)
    }

    /// Everything but the listed entries' data: the headers and the directory
    /// scanned as bytes (names blanked, offsets kept), the bytes nothing accounts
    /// for walked as streams named `NAME@OFFSET`.
    fn zip_rest<R: Read + Seek>(
        &mut self,
        name: &str,
        input: &mut R,
        depth: u32,
        len: u64,
        layout: Layout,
    ) -> Result<(), Stop> {
        let mut visible = Vec::new();
        let mut blank = Vec::new();
        let io_err = |w: &Self, e| w.failed(name, e);
        for (header, data, stored) in &layout.headers {
            visible.push((*header, (*data).max(*header)));
            let mut fixed = [0u8; 30];
            input
                .seek(SeekFrom::Start(*header))
                .map_err(|e| io_err(self, e))?;
            if read_full(input, &mut fixed).map_err(|e| io_err(self, e))? < 30 {
                continue;
            }
            let n = u16_at(&fixed, 26) as usize;
            let mut local = vec![0u8; n];
            if n == stored.len()
                && read_full(input, &mut local).map_err(|e| io_err(self, e))? == n
                && local == *stored
            {
                blank.push((header + 30, header + 30 + n as u64));
            }
        }
        if layout.directory < len {
            visible.push((layout.directory, len));
            let mut at = layout.directory;
            input
                .seek(SeekFrom::Start(at))
                .map_err(|e| io_err(self, e))?;
            let mut input = BufReader::new(&mut *input);
            let mut fixed = [0u8; 46];
            while read_full(&mut input, &mut fixed).map_err(|e| io_err(self, e))? == 46
                && &fixed[..4] == CENTRAL
            {
                let (n, x, c) = (u16_at(&fixed, 28), u16_at(&fixed, 30), u16_at(&fixed, 32));
                blank.push((at + 46, at + 46 + n));
                at += 46 + n + x + c;
                io::copy(&mut (&mut input).take(n + x + c), &mut io::sink())
                    .map_err(|e| io_err(self, e))?;
            }
        }
        let accounted = union(visible.iter().chain(&layout.data).copied().collect(), len);
        for (start, end) in complement(&accounted, len) {
            input
                .seek(SeekFrom::Start(start))
                .map_err(|e| io_err(self, e))?;
            let at = format!("{name}@{start}");
            self.stream(
                &at,
                &mut (&mut *input).take(end - start),
                depth,
                Some(end - start),
            )?;
        }
        let pieces = subtract(&union(visible, len), &union(blank, len));
        let Some(&(_, end)) = pieces.last() else {
            return Ok(());
        };
        let mut masked = Masked {
            input,
            pieces,
            next: 0,
            pos: 0,
        };
        (self.leaf)(name, Part::Content, &mut masked, Some(end))
            .map(|_| ())
            .map_err(|e| self.failed(name, e))
    }

    /// A zip without a usable directory, by its local headers.
    fn zip_local_only<R: Read + Seek>(
        &mut self,
        name: &str,
        input: &mut R,
        depth: u32,
        rest: bool,
        len: u64,
    ) -> Result<u64, Stop> {
        let mut input: &mut dyn Read = input;
        let mut src = Pushback::new(&mut input);
        self.zip_local(name, &mut src, depth)?;
        let end = src.position();
        if rest && src.skip_zeros().map_err(|e| self.failed(name, e))? {
            let at = format!("{name}@{}", src.position());
            self.stream(&at, &mut src, depth, None)?;
            return Ok(len);
        }
        Ok(end)
    }

    /// Local entries one after the other, while there are; `src` is left at the
    /// first byte that does not start one.
    pub(super) fn zip_local(
        &mut self,
        name: &str,
        src: &mut Pushback<'_>,
        depth: u32,
    ) -> Result<(), Stop> {
        let unreadable = |error: String| Stop::Unreadable {
            at: name.to_string(),
            error,
        };
        loop {
            let mut sig = [0u8; 4];
            let n = read_full(src, &mut sig).map_err(|e| self.failed(name, e))?;
            if n < 4 || &sig != LOCAL {
                src.unread(&sig[..n]);
                return Ok(());
            }
            let mut h = [0u8; 26];
            if read_full(src, &mut h).map_err(|e| self.failed(name, e))? < 26 {
                return Err(unreadable("zip: truncated local header".into()));
            }
            let (version, flags, method) = (h[0], u16_at(&h, 2), u16_at(&h, 4));
            // A local header names a version (up to 6.3) and a method APPNOTE
            // defines; bytes that merely start with the magic (in a binary) do not.
            if version > 63 || !matches!(method, 0..=20 | 93..=99) || u16_at(&h, 22) == 0 {
                return Err(unreadable("zip: not a local header".into()));
            }
            let mut compressed = u32_at(&h, 14);
            let (n, x) = (u16_at(&h, 22) as usize, u16_at(&h, 24) as usize);
            let mut stored = vec![0u8; n];
            let mut extra = vec![0u8; x];
            if read_full(src, &mut stored).map_err(|e| self.failed(name, e))? < n
                || read_full(src, &mut extra).map_err(|e| self.failed(name, e))? < x
            {
                return Err(unreadable("zip: truncated local header".into()));
            }
            if stored.contains(&0) {
                return Err(unreadable("zip: not a local header".into()));
            }
            self.entry(name)?;
            let at = format!("{name}!{}", String::from_utf8_lossy(&stored));
            self.entry_name(&at, &stored)?;
            if compressed == u64::from(u32::MAX) {
                compressed = zip64_compressed(&extra)
                    .ok_or_else(|| unreadable("zip: zip64 entry without its sizes".into()))?;
            }
            if flags & 1 != 0 {
                return Err(unreadable(format!("zip: {at}: encrypted entry")));
            }
            if flags & 8 != 0 && compressed == 0 {
                if method != 8 {
                    return Err(unreadable(format!(
                        "zip: {at}: method {method} with a data descriptor and no size"
                    )));
                }
                // A deflate stream says where it ends.
                let (counted, consumed) = Counted::new(&mut *src);
                let mut buffered = BufReader::new(counted);
                let decoder = flate2::bufread::DeflateDecoder::new(&mut buffered);
                let mut r = Metered::new(decoder, self.budget.clone(), Consumed::Counter(consumed));
                self.stream(&at, &mut r, depth, None)?;
                drop(r);
                let left = zeroize::Zeroizing::new(buffered.buffer().to_vec());
                drop(buffered);
                src.unread(&left);
            } else {
                let mut data = (&mut *src).take(compressed);
                let fixed = Consumed::Fixed(compressed);
                let budget = self.budget.clone();
                match method {
                    0 => self.stream(&at, &mut data, depth, Some(compressed))?,
                    8 => {
                        let d = flate2::read::DeflateDecoder::new(&mut data);
                        self.stream(&at, &mut Metered::new(d, budget, fixed), depth, None)?
                    }
                    12 => {
                        let d = bzip2::read::BzDecoder::new(&mut data);
                        self.stream(&at, &mut Metered::new(d, budget, fixed), depth, None)?
                    }
                    95 => {
                        let d = liblzma::read::XzDecoder::new(&mut data);
                        self.stream(&at, &mut Metered::new(d, budget, fixed), depth, None)?
                    }
                    93 => {
                        let d = zstd::stream::read::Decoder::new(&mut data)
                            .map_err(|e| self.failed(&at, e))?;
                        self.stream(&at, &mut Metered::new(d, budget, fixed), depth, None)?
                    }
                    other => {
                        return Err(unreadable(format!("zip: {at}: method {other} is not read")))
                    }
                }
                io::copy(&mut data, &mut io::sink()).map_err(|e| self.failed(&at, e))?;
            }
            if flags & 8 != 0 {
                // The data descriptor: an optional signature, the CRC and sizes.
                let mut d = [0u8; 4];
                let n = read_full(src, &mut d).map_err(|e| self.failed(name, e))?;
                if &d[..n] != DESCRIPTOR {
                    src.unread(&d[..n]);
                }
                let mut skip = [0u8; 12];
                read_full(src, &mut skip).map_err(|e| self.failed(name, e))?;
            }
        }
    }
}

/// Whether the end-of-central-directory signature is in the last 64 KiB + 22
/// bytes of `input`.
fn ends_with_directory<R: Read + Seek>(input: &mut R, len: u64) -> io::Result<bool> {
    let tail = len.min(u64::from(u16::MAX) + 22);
    input.seek(SeekFrom::Start(len - tail))?;
    let mut buf = vec![0u8; tail as usize];
    let n = read_full(input, &mut buf)?;
    Ok(buf[..n].windows(4).any(|w| w == b"PK\x05\x06"))
}

/// The compressed size in a zip64 extra field (id 1: sizes, uncompressed first).
fn zip64_compressed(extra: &[u8]) -> Option<u64> {
    let mut rest = extra;
    while rest.len() >= 4 {
        let (id, len) = (u16_at(rest, 0), u16_at(rest, 2) as usize);
        let body = rest.get(4..4 + len)?;
        if id == 1 && body.len() >= 16 {
            return Some(u64::from_le_bytes(body[8..16].try_into().ok()?));
        }
        rest = &rest[4 + len..];
    }
    None
}

/// Where a zip's listed entries lie: local headers (start, data start, stored
/// name), data ranges, and where the central directory starts.
struct Layout {
    headers: Vec<(u64, u64, Vec<u8>)>,
    data: Vec<(u64, u64)>,
    directory: u64,
}

/// Sorted, merged ranges clipped to `0..len`.
fn union(mut ranges: Vec<(u64, u64)>, len: u64) -> Vec<(u64, u64)> {
    ranges.retain(|(s, e)| s < e && *s < len);
    ranges.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (s, e) in ranges {
        let e = e.min(len);
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// What of `0..len` sorted, merged `ranges` leave.
fn complement(ranges: &[(u64, u64)], len: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut at = 0;
    for &(s, e) in ranges {
        if s > at {
            out.push((at, s));
        }
        at = at.max(e);
    }
    if at < len {
        out.push((at, len));
    }
    out
}

/// Sorted, merged `ranges` without sorted, merged `holes`.
fn subtract(ranges: &[(u64, u64)], holes: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for &(s, e) in ranges {
        let mut at = s;
        for &(hs, he) in holes {
            if he <= at || hs >= e {
                continue;
            }
            if hs > at {
                out.push((at, hs));
            }
            at = at.max(he);
        }
        if at < e {
            out.push((at, e));
        }
    }
    out
}

/// The bytes of `pieces` at their offsets, zeros between them.
struct Masked<'r, R> {
    input: &'r mut R,
    pieces: Vec<(u64, u64)>,
    next: usize,
    pos: u64,
}

impl<R: Read + Seek> Read for Masked<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(&(start, end)) = self.pieces.get(self.next) else {
            return Ok(0);
        };
        let room = buf.len() as u64;
        if self.pos < start {
            let n = room.min(start - self.pos) as usize;
            buf[..n].fill(0);
            self.pos += n as u64;
            return Ok(n);
        }
        self.input.seek(SeekFrom::Start(self.pos))?;
        let want = room.min(end - self.pos) as usize;
        let n = self.input.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.pos += n as u64;
        if self.pos == end {
            self.next += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_complement_and_subtract() {
        let u = union(vec![(10, 20), (0, 5), (15, 30), (40, 50), (60, 99)], 70);
        assert_eq!(u, vec![(0, 5), (10, 30), (40, 50), (60, 70)]);
        assert_eq!(
            complement(&u, 80),
            vec![(5, 10), (30, 40), (50, 60), (70, 80)]
        );
        assert_eq!(
            subtract(&[(0, 10), (20, 30)], &[(2, 4), (8, 22)]),
            vec![(0, 2), (4, 8), (22, 30)]
        );
    }

    #[test]
    fn masked_reads_the_pieces_in_place() {
        let data: Vec<u8> = (0u8..20).collect();
        let mut cursor = io::Cursor::new(data);
        let mut m = Masked {
            input: &mut cursor,
            pieces: vec![(2, 4), (10, 12)],
            next: 0,
            pos: 0,
        };
        let mut out = Vec::new();
        m.read_to_end(&mut out).unwrap();
        assert_eq!(out, [0, 0, 2, 3, 0, 0, 0, 0, 0, 0, 10, 11]);
    }
}
