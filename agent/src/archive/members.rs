//! Decoding a compressed stream member by member, as the command-line tools do
//! (`gzip -d` joins concatenated members, `xz -d` concatenated streams, `zstd -d`
//! frames), and stopping where the next bytes are not another member: what
//! follows (trailing data, another format) stays in the reader for the caller.

use std::io::{self, BufRead, Read};

use super::format::Format;

/// One member's decoder over `R`.
enum Member<R: BufRead> {
    Gzip(flate2::bufread::GzDecoder<R>),
    Bzip2(bzip2::bufread::BzDecoder<R>),
    Xz(liblzma::bufread::XzDecoder<R>),
    Lzma(liblzma::bufread::XzDecoder<R>),
    Zstd(zstd::stream::read::Decoder<'static, R>),
}

impl<R: BufRead> Member<R> {
    fn new(format: Format, r: R) -> io::Result<Self> {
        Ok(match format {
            Format::Gzip => Member::Gzip(flate2::bufread::GzDecoder::new(r)),
            Format::Bzip2 => Member::Bzip2(bzip2::bufread::BzDecoder::new(r)),
            Format::Xz => Member::Xz(liblzma::bufread::XzDecoder::new(r)),
            Format::Lzma => {
                let stream = liblzma::stream::Stream::new_lzma_decoder(u64::MAX)
                    .map_err(io::Error::other)?;
                Member::Lzma(liblzma::bufread::XzDecoder::new_stream(r, stream))
            }
            Format::Zstd => {
                Member::Zstd(zstd::stream::read::Decoder::with_buffer(r)?.single_frame())
            }
            other => unreachable!("{} is not a compressed stream", other.name()),
        })
    }

    fn into_inner(self) -> R {
        match self {
            Member::Gzip(d) => d.into_inner(),
            Member::Bzip2(d) => d.into_inner(),
            Member::Xz(d) | Member::Lzma(d) => d.into_inner(),
            Member::Zstd(d) => d.finish(),
        }
    }
}

impl<R: BufRead> Read for Member<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Member::Gzip(d) => d.read(buf),
            Member::Bzip2(d) => d.read(buf),
            Member::Xz(d) | Member::Lzma(d) => d.read(buf),
            Member::Zstd(d) => d.read(buf),
        }
    }
}

/// The decoded content of consecutive members of one format.
pub(crate) struct Members<R: BufRead> {
    format: Format,
    current: Option<Member<R>>,
    rest: Option<R>,
}

impl<R: BufRead> Members<R> {
    pub(crate) fn new(format: Format, r: R) -> io::Result<Self> {
        Ok(Members {
            format,
            current: Some(Member::new(format, r)?),
            rest: None,
        })
    }

    /// The reader, positioned after the last member (once this one has ended).
    pub(crate) fn into_inner(self) -> R {
        match (self.rest, self.current) {
            (Some(r), _) => r,
            (None, Some(m)) => m.into_inner(),
            (None, None) => unreachable!("a member or the rest is always held"),
        }
    }

    /// Whether `next` starts another member. An lzma_alone stream has no magic
    /// and no members: it ends the first time.
    fn another(&self, next: &[u8]) -> bool {
        self.format != Format::Lzma && super::format::detect(next) == self.format
    }
}

impl<R: BufRead> Read for Members<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(member) = self.current.as_mut() else {
                return Ok(0);
            };
            let n = member.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let mut inner = self.current.take().expect("held").into_inner();
            // Enough bytes to recognise a magic (the longest is 10, bzip2's).
            let next = inner.fill_buf()?;
            if self.another(next) {
                self.current = Some(Member::new(self.format, inner)?);
            } else {
                self.rest = Some(inner);
                return Ok(0);
            }
        }
    }
}
