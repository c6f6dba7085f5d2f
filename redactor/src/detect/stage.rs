//! The streaming detector stage: bytes in, bytes out with every detected
//! credential replaced by its family's mask, holding back only a candidate
//! that is not decided yet (bounded by [`MAX_HOLD`]).
//!
//! Same discipline as the value matcher: at an idle flush an undecided
//! candidate is masked from where its family says a credential would start and
//! its continuation after the pause is masked too (the `tail`); a held piece
//! that is not a plausible start is released verbatim and kept as context, so
//! a token it begins is still found (only the released bytes showed).

use std::ops::Range;
use std::sync::Arc;

use zeroize::{Zeroize, Zeroizing};

use super::behind::Behind;
use super::scan::Cursor;
use super::{pem, Ctx, DetectorSet, Verdict};

/// A candidate held longer than this is decided as if the stream ended there
/// (and masked whole when it is a credential, its continuation too).
pub const MAX_HOLD: usize = 16 * 1024;

/// No anchor is longer than this (checked when a set is built).
pub(crate) const MAX_ANCHOR: usize = 32;

/// A PEM body longer than this without an END line ends the block.
const MAX_BLOCK: usize = 64 * 1024;

/// What [`Detect::write`] produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Passed {
    /// The output is exactly this range of the input (nothing was detected):
    /// nothing was written to `out`.
    Input(Range<usize>),
    /// The output was appended to `out`.
    Out,
    /// The output is what was appended to `out`, then this range of the
    /// input (the bytes after the last mask, or after held bytes that turned
    /// out to start nothing: they are not copied).
    OutThen(Range<usize>),
}

/// Inside a private key block.
#[derive(Debug)]
struct Block {
    /// Index of the family (for its mask).
    family: usize,
    line_masked: bool,
    /// The last bytes of the body, to find the END line across writes.
    recent: Vec<u8>,
    seen: usize,
}

/// The detector stage of one stream.
pub struct Detect {
    set: Arc<DetectorSet>,
    strict: bool,
    /// The undecided suffix of the stream; its first `emitted` bytes were
    /// already written by a flush and are kept as context.
    held: Zeroizing<Vec<u8>>,
    emitted: usize,
    /// The last bytes before `held` (word boundaries, `Proxy-`).
    behind: Behind,
    /// Bytes of this class continue a credential whose mask was written.
    tail: Option<fn(u8) -> bool>,
    block: Option<Block>,
    scratch: Zeroizing<Vec<u8>>,
    detected: u64,
}

impl std::fmt::Debug for Detect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detect")
            .field("set", &self.set)
            .field("held_bytes", &self.held.len())
            .field("detected", &self.detected)
            .finish()
    }
}

impl Detect {
    /// A stage running `set`.
    pub fn new(set: Arc<DetectorSet>) -> Self {
        Detect {
            set,
            strict: false,
            held: Zeroizing::new(Vec::new()),
            emitted: 0,
            behind: Behind::default(),
            tail: None,
            block: None,
            scratch: Zeroizing::new(Vec::new()),
            detected: 0,
        }
    }

    /// Strict mode: a flush releases nothing.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Bytes held back and not yet written.
    pub fn pending(&self) -> usize {
        self.held.len() - self.emitted
    }

    /// How many credentials were masked so far.
    pub fn detected(&self) -> u64 {
        self.detected
    }

    /// Consumes `input`; the output is either a range of `input` or appended
    /// to `out`.
    pub fn write(&mut self, input: &[u8], out: &mut Vec<u8>) -> Passed {
        let set = Arc::clone(&self.set);
        if set.is_empty() {
            return Passed::Input(0..input.len());
        }
        let mut start = 0;
        if let Some(class) = self.tail {
            start = input.iter().take_while(|&&b| class(b)).count();
            self.behind.advance(&input[..start]);
            if start == input.len() {
                return Passed::Input(start..start);
            }
            self.tail = None;
        }
        if self.block.is_some() {
            let used = self.block_bytes(&input[start..], out);
            self.behind.advance(&input[start..start + used]);
            start += used;
            if self.block.is_some() {
                return Passed::Out;
            }
            let rest = self.process(&input[start..], 0, Mode::Stream, out, Cursor::default());
            return then(start, rest);
        }
        let mut released = false;
        if !self.held.is_empty() && self.starts_nothing(&input[start..]) {
            // The usual held piece: the end of the last write looked like the
            // start of an anchor and is not one. Release it without copying
            // this write behind it.
            out.extend_from_slice(&self.held[self.emitted..]);
            self.behind.advance(&self.held);
            self.clear_held();
            released = true;
        }
        if self.held.is_empty() {
            let rest = &input[start..];
            let mut cursor = Cursor::default();
            if set.next_anchor(rest, 0, &mut cursor).is_none() {
                let hold = self.partial_anchor(rest, 0);
                self.behind.advance(&rest[..hold]);
                self.held.extend_from_slice(&rest[hold..]);
                return if released {
                    Passed::OutThen(start..start + hold)
                } else {
                    Passed::Input(start..start + hold)
                };
            }
            // The cursor keeps what was found: the scan goes on from there.
            let rest = self.process(rest, 0, Mode::Stream, out, cursor);
            return then(start, rest);
        }
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        buf.extend_from_slice(&self.held);
        buf.extend_from_slice(&input[start..]);
        let skip = self.emitted;
        let held = self.held.len();
        self.clear_held();
        let rest = self.process(&buf, skip, Mode::Stream, out, Cursor::default());
        // What is left to write verbatim is in `input` past the held piece.
        out.extend_from_slice(&buf[rest.start..rest.end.min(held).max(rest.start)]);
        let rest = rest.start.max(held) - held..rest.end.max(held) - held;
        buf.zeroize();
        self.scratch = buf;
        then(start, rest)
    }

    /// The stream is idle: release the held piece unless strict (see the
    /// module comment).
    pub fn flush(&mut self, out: &mut Vec<u8>) {
        if self.strict || self.pending() == 0 {
            return;
        }
        self.release(Mode::Flush, out);
    }

    /// End of stream: decide and release everything.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.release(Mode::End, out);
        self.clear_held();
        self.tail = None;
        self.block = None;
        self.behind.clear();
    }

    fn release(&mut self, mode: Mode, out: &mut Vec<u8>) {
        let held = std::mem::replace(&mut self.held, Zeroizing::new(Vec::new()));
        let skip = self.emitted;
        self.emitted = 0;
        let rest = self.process(&held, skip, mode, out, Cursor::default());
        out.extend_from_slice(&held[rest]);
    }

    fn clear_held(&mut self) {
        self.held.zeroize();
        self.held.clear();
        self.emitted = 0;
    }

    /// Scans `buf` (the first `skip` bytes already written), writes what is
    /// decided and holds the rest; returns the part of `buf` after what it
    /// wrote that is to be written verbatim (not copied: a write with an
    /// anchor but nothing to mask, such as every URL's `://`, passes in
    /// place up to what is held). `cursor` is `buf`'s.
    fn process(
        &mut self,
        buf: &[u8],
        skip: usize,
        mode: Mode,
        out: &mut Vec<u8>,
        mut cursor: Cursor,
    ) -> Range<usize> {
        let set = Arc::clone(&self.set);
        let mut pos = 0;
        let mut done = 0; // bytes before this are written (or masked)
        let mut hold = None;
        let emit = |out: &mut Vec<u8>, r: Range<usize>| {
            let from = r.start.max(skip);
            if from < r.end {
                out.extend_from_slice(&buf[from..r.end]);
            }
        };
        while pos < buf.len() {
            let Some((at, fi, anchor)) = set.next_anchor(buf, pos, &mut cursor) else {
                break;
            };
            let family = set.families[fi];
            let forced = buf.len() - at >= MAX_HOLD;
            let ctx = Ctx {
                buf,
                at,
                anchor,
                behind: self.behind.as_slice(),
                eof: mode == Mode::End || forced,
            };
            let verdict = match (family.examine)(&ctx) {
                // Known values win: the matcher ran first and already masked it.
                Verdict::Mask { start, end, .. } if buf[start..end] == set.value_mask[..] => {
                    Verdict::No
                }
                Verdict::Block { body } => {
                    match registered_block(&buf[body..], &set.value_mask, ctx.eof) {
                        Some(true) => Verdict::No,
                        Some(false) => Verdict::Block { body },
                        None => Verdict::More,
                    }
                }
                v => v,
            };
            match verdict {
                Verdict::No => pos = at + 1,
                Verdict::Mask { start, end, class } => {
                    emit(out, done..start);
                    if end > skip {
                        out.extend_from_slice(&set.masks[fi]);
                        self.detected += 1;
                    }
                    done = end;
                    pos = end.max(at + 1);
                    if end == buf.len() && mode != Mode::End {
                        self.tail = Some(class);
                    }
                }
                Verdict::Block { body } => {
                    emit(out, done..body);
                    self.detected += 1;
                    self.block = Some(Block {
                        family: fi,
                        line_masked: false,
                        recent: Vec::new(),
                        seen: 0,
                    });
                    let from = body.max(skip);
                    let used = self.block_bytes(&buf[from..], out);
                    done = from + used;
                    pos = done;
                    if self.block.is_some() {
                        break;
                    }
                }
                Verdict::More if mode == Mode::Flush => {
                    match (family.partial)(&ctx) {
                        // The matcher released its mask at this flush: the
                        // value is registered (decided when its line ends).
                        Some((start, _))
                            if start < buf.len() && set.value_mask.starts_with(&buf[start..]) =>
                        {
                            hold = Some(at)
                        }
                        Some((start, class)) => {
                            emit(out, done..start);
                            out.extend_from_slice(&set.masks[fi]);
                            self.detected += 1;
                            self.tail = Some(class);
                            done = buf.len();
                        }
                        // Released verbatim below, kept as context.
                        None => hold = Some(at),
                    }
                    break;
                }
                Verdict::More => {
                    hold = Some(at);
                    break;
                }
            }
        }
        if self.block.is_some() || self.tail.is_some() {
            // Everything was consumed by the mask.
            if done < buf.len() && self.block.is_none() {
                // A tail set by a mask that ended the buffer: nothing is left.
                debug_assert!(done == buf.len());
            }
            self.behind.advance(buf);
            return buf.len()..buf.len();
        }
        let hold = match mode {
            Mode::End => buf.len(),
            _ => hold.unwrap_or_else(|| self.partial_anchor(buf, pos.max(done))),
        };
        let hold = hold.max(done);
        if mode == Mode::Flush {
            // Release all; keep the undecided part as context.
            emit(out, done..buf.len());
            self.behind.advance(&buf[..hold]);
            self.held.extend_from_slice(&buf[hold..]);
            self.emitted = buf.len() - hold;
            return buf.len()..buf.len();
        }
        self.behind.advance(&buf[..hold]);
        self.held.extend_from_slice(&buf[hold..]);
        self.emitted = skip.saturating_sub(hold).min(self.held.len());
        done.max(skip).min(hold)..hold
    }

    /// Whether no anchor starts in the held piece when `next` follows it,
    /// decided from `next`'s first bytes only (an anchor starting in a piece
    /// shorter than the longest anchor ends within them).
    fn starts_nothing(&self, next: &[u8]) -> bool {
        let max = self.set.max_anchor;
        let held = self.held.len();
        if held >= max || next.len() < max {
            return false;
        }
        let mut joint = [0u8; 2 * MAX_ANCHOR];
        joint[..held].copy_from_slice(&self.held);
        joint[held..held + max].copy_from_slice(&next[..max]);
        let found = self
            .set
            .next_anchor(&joint[..held + max], 0, &mut Cursor::default())
            .is_some_and(|(at, _, _)| at < held);
        joint.zeroize();
        !found
    }

    /// The earliest position at or after `from` whose remainder is a proper
    /// prefix of an anchor as written, or `buf.len()`. Case-sensitive, as the
    /// scanner is: a remainder that only folds to a prefix (`GH`, `Eyj`)
    /// cannot start an anchor and is not held.
    fn partial_anchor(&self, buf: &[u8], from: usize) -> usize {
        let lo = buf
            .len()
            .saturating_sub(self.set.max_anchor.saturating_sub(1))
            .max(from);
        // Called once per write (each of the matcher's output pieces): only
        // the anchors that start with the byte there are compared.
        (lo..buf.len())
            .find(|&i| {
                let rest = &buf[i..];
                self.set.starting_with(rest[0]).iter().any(|&ai| {
                    let a = self.set.anchors[ai].1;
                    a.len() > rest.len() && a[..rest.len()] == *rest
                })
            })
            .unwrap_or(buf.len())
    }

    /// Masks a private key body line by line; returns how many bytes were
    /// consumed (all unless the END line or the size bound came first).
    fn block_bytes(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> usize {
        let set = Arc::clone(&self.set);
        let block = self.block.as_mut().expect("in a block");
        for (i, &b) in bytes.iter().enumerate() {
            block.seen += 1;
            if b == b'\n' {
                out.push(b);
                block.line_masked = false;
            } else if !block.line_masked {
                out.extend_from_slice(&set.masks[block.family]);
                block.line_masked = true;
            }
            if block.recent.len() == 96 {
                block.recent.drain(..48);
            }
            block.recent.push(b);
            let ended = b == b'-' && pem::block_end(&block.recent) == Some(block.recent.len());
            if ended || block.seen >= MAX_BLOCK {
                block.recent.zeroize();
                self.block = None;
                return i + 1;
            }
        }
        block.recent.zeroize();
        block.recent.clear();
        // Keep the last bytes: an END line may be split across writes.
        let keep = bytes.len().min(48);
        block.recent.extend_from_slice(&bytes[bytes.len() - keep..]);
        bytes.len()
    }
}

/// Whether a private key body is a key someone registered: its first line is
/// exactly the value matcher's mask (the matcher masks a registered key's body
/// as one run, up to the line break before its END line). `None` while the
/// line is not complete and the stream goes on.
fn registered_block(body: &[u8], mask: &[u8], eof: bool) -> Option<bool> {
    if body == b"\\" && !eof {
        return None;
    }
    // The header's line break: a newline, CRLF, or `\n` inside a string.
    let lead = if body.starts_with(b"\\n") {
        2
    } else {
        body.iter()
            .take(2)
            .take_while(|&&b| matches!(b, b'\r' | b'\n'))
            .count()
    };
    let line = &body[lead..];
    if line.len() <= mask.len() {
        return match (mask.starts_with(line), eof) {
            (true, false) => None,
            (prefix, true) => Some(prefix && line == mask),
            (false, false) => Some(false),
        };
    }
    Some(line.starts_with(mask) && matches!(line[mask.len()], b'\n' | b'\r' | b'\\'))
}

/// `out`, then `rest` of the input shifted by `start`.
fn then(start: usize, rest: Range<usize>) -> Passed {
    if rest.is_empty() {
        Passed::Out
    } else {
        Passed::OutThen(start + rest.start..start + rest.end)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Stream,
    Flush,
    End,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage() -> Detect {
        Detect::new(Arc::new(DetectorSet::all(b"[REDACTED]")))
    }

    /// Runs `chunks` through a stage, flushing where a chunk is `None`.
    fn run(chunks: &[Option<&str>]) -> String {
        let mut d = stage();
        let mut all = Vec::new();
        for c in chunks {
            let mut out = Vec::new();
            match c {
                Some(c) => match d.write(c.as_bytes(), &mut out) {
                    Passed::Input(r) => all.extend_from_slice(&c.as_bytes()[r]),
                    Passed::Out => all.extend_from_slice(&out),
                    Passed::OutThen(r) => {
                        all.extend_from_slice(&out);
                        all.extend_from_slice(&c.as_bytes()[r]);
                    }
                },
                None => {
                    d.flush(&mut out);
                    all.extend_from_slice(&out);
                }
            }
        }
        let mut out = Vec::new();
        d.finish(&mut out);
        all.extend_from_slice(&out);
        String::from_utf8(all).unwrap()
    }

    /// Whether any 4 consecutive bytes of `secret` show in `out`.
    fn shows_a_piece(out: &str, secret: &str) -> bool {
        secret
            .as_bytes()
            .windows(4)
            .any(|w| out.as_bytes().windows(4).any(|o| o == w))
    }

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLWJ5dGVz";

    #[test]
    fn a_token_split_across_every_write_is_masked() {
        let text = format!("a {JWT} b AKIAIOSFODNN7EXAMPLE c");
        let expected = "a [REDACTED:jwt] b [REDACTED:aws-access-key-id] c";
        assert_eq!(run(&[Some(&text)]), expected);
        for cut in 0..text.len() {
            let (x, y) = text.split_at(cut);
            assert_eq!(run(&[Some(x), Some(y)]), expected, "cut at {cut}");
        }
        let bytes: Vec<String> = text.chars().map(String::from).collect();
        let chunks: Vec<Option<&str>> = bytes.iter().map(|s| Some(s.as_str())).collect();
        assert_eq!(run(&chunks), expected);
    }

    #[test]
    fn a_pause_inside_a_token_shows_no_more_than_its_anchor_prefix() {
        for cut in 1..JWT.len() {
            let (x, y) = JWT.split_at(cut);
            let out = run(&[Some("t="), Some(x), None, Some(y), Some("\n")]);
            assert!(
                !out.contains(&JWT[3.min(cut)..cut.max(3)]) || cut <= 3,
                "cut {cut}: {out}"
            );
            assert!(out.contains("[REDACTED:jwt]"), "cut {cut}: {out}");
            assert!(!out.contains(&y[..y.len().min(4)]), "cut {cut}: {out}");
        }
    }

    #[test]
    fn text_without_anchors_passes_in_place() {
        let mut d = stage();
        let mut out = Vec::new();
        assert_eq!(d.write(b"plain text\n", &mut out), Passed::Input(0..11));
        // A possible anchor start at the end is held.
        assert_eq!(d.write(b"see ey", &mut out), Passed::Input(0..4));
        assert_eq!(d.pending(), 2);
        // It starts nothing: released, the next write passes in place.
        let next = b"es and plain text after it\n";
        assert_eq!(d.write(next, &mut out), Passed::OutThen(0..next.len()));
        assert_eq!(out, b"ey");
        assert_eq!(d.pending(), 0);
        // When it does start an anchor, the token is found across the writes.
        out.clear();
        assert_eq!(d.write(b"x ey", &mut out), Passed::Input(0..2));
        let token = b"JhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLWJ5dGVz end\n";
        let n = token.len();
        assert_eq!(d.write(token, &mut out), Passed::OutThen(n - 5..n));
        assert_eq!(out, b"[REDACTED:jwt]");
        // An anchor with nothing to mask passes in place too.
        out.clear();
        let url = b"GET https://example.org/x and more\n";
        assert_eq!(d.write(url, &mut out), Passed::OutThen(0..url.len()));
        assert!(out.is_empty());
    }

    /// Anchors are case-sensitive, so is the held suffix: a write ending in
    /// what only folds to an anchor's start (`GH`, `EY`, `AUTHORIZ` is one
    /// in upper case, `Authoriz` in title case, `AuthoRIZ` in neither)
    /// passes whole; the start of an anchor as written is held.
    #[test]
    fn only_an_anchor_start_as_written_is_held() {
        for (text, held) in [
            ("see GH", 0),
            ("see gh", 2),
            ("see EY", 0),
            ("see ey", 2),
            ("x AuthoRIZ", 0),
            ("x Authoriz", 8),
            ("x AUTHORIZ", 8),
            ("x aKI", 0),
            ("x AKI", 3),
        ] {
            let mut d = stage();
            let mut out = Vec::new();
            let n = text.len();
            assert_eq!(
                d.write(text.as_bytes(), &mut out),
                Passed::Input(0..n - held),
                "{text}"
            );
            assert_eq!(d.pending(), held, "{text}");
        }
    }

    /// Every URL-credential case of the detector's tests, and a URL with no
    /// userinfo, cut at every offset into two writes and with a pause at
    /// every offset: the same output as written whole, and a pause never
    /// shows four bytes of the password (the candidate is held from `://`).
    #[test]
    fn url_credentials_split_at_every_offset() {
        let cases = [
            (
                "DATABASE_URL=postgres://app:s3cr3t-Pa55@db.internal:5432/app\n",
                Some("s3cr3t-Pa55"),
            ),
            ("redis://:hunter2hunter@cache/0 x\n", Some("hunter2hunter")),
            ("a https://example.com/a:b@c x\n", None),
            ("ftp://user:password@host/ x\n", None),
            ("https://fred:fr3dfr3d@www.example.com/ x\n", None),
            ("http://foo:bar@myhost/ x\n", None),
            (
                "cvs://:pserver:anoncvs@sources.redhat.com:/cvs/src x\n",
                None,
            ),
            ("https://user@host/ x\n", None),
            ("postgres://u:${PGPASS}@h/ x\n", None),
            ("GET https://example.org/x and more\n", None),
            (
                "two amqp://a:one-pw-1@mq/ and amqp://b:two-pw-2@mq/\n",
                Some("one-pw-1"),
            ),
        ];
        for (text, password) in cases {
            let whole = run(&[Some(text)]);
            match password {
                Some(p) => {
                    assert!(!whole.contains(p), "{whole}");
                    assert!(whole.contains("[REDACTED:url-password]@"), "{whole}");
                }
                None => assert_eq!(whole, text),
            }
            for cut in 0..=text.len() {
                let (x, y) = text.split_at(cut);
                assert_eq!(run(&[Some(x), Some(y)]), whole, "cut at {cut}");
                let paused = run(&[Some(x), None, Some(y)]);
                if let Some(p) = password {
                    assert!(!shows_a_piece(&paused, p), "pause at {cut}: {paused}");
                    assert!(
                        paused.contains("[REDACTED:url-password]"),
                        "pause at {cut}: {paused}"
                    );
                }
            }
        }
    }

    #[test]
    fn private_key_lines_are_masked_across_writes() {
        let key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\nkqhkiG9w0BAQ==\n-----END PRIVATE KEY-----\nnext\n";
        let expected = "-----BEGIN PRIVATE KEY-----\n[REDACTED:private-key]\n[REDACTED:private-key]\n[REDACTED:private-key]\nnext\n";
        for cut in 0..key.len() {
            let (x, y) = key.split_at(cut);
            assert_eq!(run(&[Some(x), Some(y)]), expected, "cut at {cut}");
        }
    }

    /// The stage runs after the value matcher: what the matcher masked as a
    /// registered value stays its mask, not a detector's (known values win).
    #[test]
    fn what_the_matcher_masked_is_left_alone() {
        let texts = [
            "curl -H 'Authorization: Bearer [REDACTED]'\nAuthorization: Basic [REDACTED]\n",
            "postgres://app:[REDACTED]@db.internal/x\n",
            "-----BEGIN PRIVATE KEY-----\n[REDACTED]\n-----END PRIVATE KEY-----\nnext\n",
            "-----BEGIN RSA PRIVATE KEY-----\r\n[REDACTED]\r\n-----END RSA PRIVATE KEY-----\r\n",
            r#"{"key": "-----BEGIN PRIVATE KEY-----\n[REDACTED]\n-----END PRIVATE KEY-----\n"}"#,
        ];
        for text in texts {
            for cut in 0..text.len() {
                let (x, y) = text.split_at(cut);
                assert_eq!(run(&[Some(x), Some(y)]), text, "cut at {cut}");
            }
        }
        // A key nobody registered is still the detector's.
        let other = "-----BEGIN PRIVATE KEY-----\n[REDACTED]x\n-----END PRIVATE KEY-----\n";
        assert!(run(&[Some(other)]).contains("[REDACTED:private-key]"));
    }

    /// At a pause the matcher releases a held value as its mask: the
    /// detectors take it for what it is once the line ends.
    #[test]
    fn a_value_mask_released_at_a_pause_is_left_alone() {
        let out = run(&[Some("> Authorization: Bearer [REDACTED]"), None, Some("\n")]);
        assert_eq!(out, "> Authorization: Bearer [REDACTED]\n");
        let out = run(&[Some("> Authorization: Bearer abc"), None, Some("def\n")]);
        assert_eq!(out, "> Authorization: Bearer [REDACTED:authorization]\n");
    }

    /// `Proxy-` is looked back at across a write boundary and a pause (the
    /// `-` alone is held as a possible `-----BEGIN`, then released).
    #[test]
    fn proxy_authorization_split_anywhere_is_masked() {
        let text = "> Proxy-Authorization: Basic dXNlcjpwYXNzd29yZA==\n";
        let expected = "> Proxy-Authorization: Basic [REDACTED:authorization]\n";
        for cut in 0..text.len() {
            let (x, y) = text.split_at(cut);
            assert_eq!(run(&[Some(x), Some(y)]), expected, "cut at {cut}");
            // A pause inside the value masks from its start.
            let paused = run(&[Some(x), None, Some(y)]);
            assert!(paused.contains("[REDACTED:authorization]"), "{paused}");
            assert!(!shows_a_piece(&paused, "dXNlcjpwYXNzd29yZA=="), "{paused}");
        }
        // Another word glued before the name is still another name.
        let other = "X-Authorization: Basic dXNlcjpwYXNzd29yZA==\n";
        for cut in 0..other.len() {
            let (x, y) = other.split_at(cut);
            assert_eq!(run(&[Some(x), Some(y)]), other, "cut at {cut}");
        }
    }

    #[test]
    fn url_password_paused_mid_way() {
        let out = run(&[Some("postgres://app:s3cr"), None, Some("et-pw@db/x\n")]);
        assert_eq!(out, "postgres://app:[REDACTED:url-password]@db/x\n");
    }
}
