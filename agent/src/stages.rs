//! The stages one output stream goes through, in order: the `::add-mask::`
//! gate (registers values before their line is released), the value matcher,
//! the credential detectors. The matcher goes first so that a registered value
//! in a detectable format is masked as the value (`[REDACTED]`), the
//! detector's name only naming values nobody registered; the detectors leave
//! the matcher's masks alone. Each stage holds back only what it must; an idle
//! flush releases the matcher's and the detectors' held pieces by their rules
//! (the gate holds a command line until its newline).

use std::io;
use std::os::fd::BorrowedFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use shroud_redactor::detect::{Detect, Passed};
use shroud_redactor::{Piece, Redactor, SecretSet};

use crate::addmask::{AddMask, Gate, Item};
use crate::live::LiveSet;
use crate::pump::{write_all, write_pieces, write_slices, PumpConfig, PumpEnd, StreamCounters};

/// Name under which values from `::add-mask::` are registered.
pub const ADD_MASK_NAME: &str = "add-mask";

/// The stages of one stream and their buffers.
pub struct Stages {
    gate: Option<Gate>,
    add_mask: AddMask,
    detect: Option<Detect>,
    redactor: Redactor,
    mask: Vec<u8>,
    items: Vec<Item>,
    /// The detectors' output when it is not a range of their input.
    dout: Vec<u8>,
    /// The matcher's own output (masks, released held bytes).
    out: Vec<u8>,
    pieces: Vec<Piece>,
    /// The detectors' output pieces: (where, range) of the bytes written.
    dpieces: Vec<(Source, std::ops::Range<usize>)>,
}

/// Which buffer a piece of the detectors' output is in.
#[derive(Clone, Copy, Debug)]
enum Source {
    Input,
    Own,
    Detected,
}

impl std::fmt::Debug for Stages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stages")
            .field("redactor", &self.redactor)
            .field("detect", &self.detect)
            .finish()
    }
}

impl Stages {
    /// The stages `config` asks for, with the set in force.
    pub fn new(live: &LiveSet, config: &PumpConfig) -> Stages {
        Stages {
            gate: (config.add_mask != AddMask::Off).then(Gate::default),
            add_mask: config.add_mask,
            detect: config
                .detect
                .as_ref()
                .filter(|d| !d.is_empty())
                .map(|d| Detect::new(Arc::clone(d)).strict(config.strict)),
            redactor: Redactor::new(live.load())
                .with_mask(config.mask.clone())
                .strict(config.strict),
            mask: config.mask.clone(),
            items: Vec::new(),
            dout: Vec::with_capacity(4096),
            out: Vec::with_capacity(4096),
            pieces: Vec::with_capacity(64),
            dpieces: Vec::with_capacity(64),
        }
    }

    /// Held bytes an idle flush would release.
    pub fn flushable(&self) -> usize {
        self.redactor.pending() + self.detect.as_ref().map_or(0, Detect::pending)
    }

    /// Picks up a swapped set.
    pub fn set_secrets(&mut self, set: Arc<SecretSet>) {
        self.redactor.set_secrets(set);
    }

    /// Counters for metrics: detections count as masks.
    pub fn record(&self, counters: &StreamCounters) {
        let s = self.redactor.stats();
        let detected = self.detect.as_ref().map_or(0, Detect::detected);
        counters.bytes.store(s.bytes_in, Ordering::Relaxed);
        counters
            .masked
            .store(s.masked + detected, Ordering::Relaxed);
    }

    /// Consumes bytes read from the workload and writes what is decided.
    pub fn write(
        &mut self,
        input: &[u8],
        output: BorrowedFd<'_>,
        live: &LiveSet,
        swaps: &mut u64,
    ) -> io::Result<PumpEnd> {
        let Some(gate) = self.gate.as_mut() else {
            return self.text(input, output);
        };
        let mut items = std::mem::take(&mut self.items);
        gate.write(input, &mut items);
        let end = self.items(input, &mut items, output, live, swaps);
        items.clear();
        self.items = items;
        end
    }

    fn items(
        &mut self,
        input: &[u8],
        items: &mut Vec<Item>,
        output: BorrowedFd<'_>,
        live: &LiveSet,
        swaps: &mut u64,
    ) -> io::Result<PumpEnd> {
        for item in items.drain(..) {
            let end = match item {
                Item::Input(r) => self.text(&input[r], output)?,
                Item::Held(bytes) => self.text(&bytes, output)?,
                Item::Masked => {
                    self.settle(output)?;
                    write_all(output, &self.mask)?
                }
                Item::Command(cmd) => {
                    for value in cmd.values() {
                        live.register(ADD_MASK_NAME, value);
                    }
                    *swaps = live.swaps();
                    self.redactor.set_secrets(live.load());
                    if !cmd.whole {
                        // The echo is shown, with the value now masked.
                        self.text(&cmd.line, output)?;
                    }
                    if self.add_mask == AddMask::Forward && !cmd.values().is_empty() {
                        // The runner reads its commands from the raw stream:
                        // what the stages hold goes first, then the command.
                        self.settle(output)?;
                        write_all(output, &cmd.forwarded())?
                    } else {
                        PumpEnd::Eof
                    }
                }
            };
            if end == PumpEnd::OutputClosed {
                return Ok(end);
            }
        }
        Ok(PumpEnd::Eof)
    }

    /// Bytes through the matcher and the detectors, written out. The matcher's
    /// output pieces go through the detectors one by one (they are a stream,
    /// so this is the same as their concatenation) and unchanged bytes are
    /// written from the read buffer with one `writev`.
    fn text(&mut self, bytes: &[u8], output: BorrowedFd<'_>) -> io::Result<PumpEnd> {
        self.redactor
            .write_pieces(bytes, &mut self.out, &mut self.pieces);
        let Some(d) = self.detect.as_mut() else {
            let end = write_pieces(output, bytes, &self.out, &self.pieces);
            self.clear();
            return end;
        };
        for p in &self.pieces {
            let (source, r) = match p {
                Piece::Input(r) => (Source::Input, r.clone()),
                Piece::Own(r) => (Source::Own, r.clone()),
            };
            let piece = match source {
                Source::Input => &bytes[r.clone()],
                _ => &self.out[r.clone()],
            };
            let before = self.dout.len();
            match d.write(piece, &mut self.dout) {
                Passed::Input(sub) => self
                    .dpieces
                    .push((source, r.start + sub.start..r.start + sub.end)),
                Passed::Out => self
                    .dpieces
                    .push((Source::Detected, before..self.dout.len())),
                Passed::OutThen(sub) => {
                    self.dpieces
                        .push((Source::Detected, before..self.dout.len()));
                    self.dpieces
                        .push((source, r.start + sub.start..r.start + sub.end));
                }
            }
        }
        let slices = self.dpieces.iter().map(|(source, r)| match source {
            Source::Input => &bytes[r.clone()],
            Source::Own => &self.out[r.clone()],
            Source::Detected => &self.dout[r.clone()],
        });
        let end = write_slices(output, slices);
        self.clear();
        end
    }

    fn clear(&mut self) {
        crate::alloc::wipe_slice(&mut self.dout);
        self.dout.clear();
        crate::alloc::wipe_slice(&mut self.out);
        self.out.clear();
        self.pieces.clear();
        self.dpieces.clear();
    }

    /// The matcher's release (`flush` or `finish`, appended to `out`) through
    /// the detectors, then the detectors' own release, written out.
    fn release(&mut self, output: BorrowedFd<'_>, end_of_stream: bool) -> io::Result<PumpEnd> {
        if end_of_stream {
            self.redactor.finish(&mut self.out);
        } else {
            self.redactor.flush(&mut self.out);
        }
        if let Some(d) = self.detect.as_mut() {
            match d.write(&self.out, &mut self.dout) {
                Passed::Input(r) | Passed::OutThen(r) => self.dout.extend_from_slice(&self.out[r]),
                Passed::Out => {}
            }
            if end_of_stream {
                d.finish(&mut self.dout);
            } else {
                d.flush(&mut self.dout);
            }
            std::mem::swap(&mut self.out, &mut self.dout);
        }
        let end = write_all(output, &self.out);
        self.clear();
        end
    }

    /// Releases everything the matcher and the detectors hold, by the
    /// end-of-stream rule (before a raw write that must come after them).
    fn settle(&mut self, output: BorrowedFd<'_>) -> io::Result<PumpEnd> {
        self.release(output, true)
    }

    /// The stream is idle.
    pub fn flush(&mut self, output: BorrowedFd<'_>) -> io::Result<PumpEnd> {
        self.release(output, false)
    }

    /// End of the stream.
    pub fn finish(&mut self, output: BorrowedFd<'_>, live: &LiveSet) -> io::Result<PumpEnd> {
        if let Some(gate) = self.gate.as_mut() {
            let mut items = std::mem::take(&mut self.items);
            gate.finish(&mut items);
            let mut swaps = 0;
            if self.items(&[], &mut items, output, live, &mut swaps)? == PumpEnd::OutputClosed {
                return Ok(PumpEnd::OutputClosed);
            }
            self.items = items;
        }
        self.settle(output)
    }
}
