//! GitHub Actions' `::add-mask::VALUE` workflow command, seen in the wrapped
//! command's output.
//!
//! The runner (actions/runner, `ActionCommand.TryParseV2`) takes a line as a
//! command only when, after leading blanks, it starts with `::`; the data is the
//! rest of the line after the second `::`, with `%0D`, `%0A` and `%25`
//! unescaped, registered whole (and, since 2.3xx, each of its trimmed lines).
//! A line that merely contains the command, as `set -x` echoes it
//! (`+ echo '::add-mask::VALUE'`), is printed by the runner in clear before the
//! echo's own output registers the value (actions/runner#475). The gate here
//! holds every line that contains the marker (or ends a read with a part of
//! it) until its newline, so the value is registered before any byte of the
//! line is released: the whole-line command is consumed, the echo is written
//! with the value masked. A line longer than [`MAX_LINE`] is replaced by the
//! mask whole, never shown.

use std::ops::Range;

use memchr::memmem;
use zeroize::Zeroizing;

/// The marker.
pub const MARKER: &[u8] = b"::add-mask::";

/// The longest line held while waiting for its newline.
pub const MAX_LINE: usize = 64 * 1024;

/// What to do with the command lines themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddMask {
    /// Ignore the marker (pass everything through the redactor).
    Off,
    /// Register; drop whole-line commands (outside GitHub Actions).
    Drop,
    /// Register; pass the command on to the runner as `::add-mask::VALUE` on
    /// the same stream (inside GitHub Actions, `GITHUB_ACTIONS=true`).
    Forward,
}

impl AddMask {
    /// `Forward` inside GitHub Actions, `Drop` elsewhere.
    pub fn from_env() -> AddMask {
        if std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true") {
            AddMask::Forward
        } else {
            AddMask::Drop
        }
    }
}

/// A complete line that contains the marker.
pub struct Command {
    /// The value to register (each trimmed line of a multi-line value is
    /// registered as well, see [`Command::values`]).
    pub value: Zeroizing<Vec<u8>>,
    /// The line is the command itself (only blanks before the marker), as
    /// opposed to an echo of it.
    pub whole: bool,
    /// The line, with its newline.
    pub line: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Command")
            .field("whole", &self.whole)
            .finish()
    }
}

impl Command {
    /// The values to register: the value and each of its trimmed non-empty
    /// lines, as the runner does; none when the value is blank.
    pub fn values(&self) -> Vec<&[u8]> {
        let v = self.value.as_slice();
        if v.iter().all(u8::is_ascii_whitespace) {
            return Vec::new();
        }
        let mut out = vec![v];
        for line in v.split(|&b| b == b'\n' || b == b'\r') {
            let t = line.trim_ascii();
            if !t.is_empty() && t != v && !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }

    /// The command as the runner reads it: `::add-mask::` and the value
    /// escaped, with a newline.
    pub fn forwarded(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(MARKER.to_vec());
        for &b in self.value.iter() {
            match b {
                b'%' => out.extend_from_slice(b"%25"),
                b'\r' => out.extend_from_slice(b"%0D"),
                b'\n' => out.extend_from_slice(b"%0A"),
                _ => out.push(b),
            }
        }
        out.push(b'\n');
        out
    }
}

/// One piece of the gate's output, in order.
#[derive(Debug)]
pub enum Item {
    /// A range of the input, unchanged.
    Input(Range<usize>),
    /// Bytes that were held, unchanged.
    Held(Zeroizing<Vec<u8>>),
    /// A command line, complete.
    Command(Command),
    /// A line over [`MAX_LINE`] that contains the marker: write one mask in its
    /// place; its rest up to the newline is dropped.
    Masked,
}

/// The gate of one stream.
pub struct Gate {
    finder: memmem::Finder<'static>,
    held: Zeroizing<Vec<u8>>,
    /// Everything released of the current line is blank.
    line_blank: bool,
    /// Dropping an over-long line up to its newline.
    discarding: bool,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("held_bytes", &self.held.len())
            .finish()
    }
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            finder: memmem::Finder::new(MARKER),
            held: Zeroizing::new(Vec::new()),
            line_blank: true,
            discarding: false,
        }
    }
}

impl Gate {
    /// Bytes held waiting for a newline.
    pub fn pending(&self) -> usize {
        self.held.len()
    }

    /// Consumes `input`, appending the output pieces to `items`.
    pub fn write(&mut self, input: &[u8], items: &mut Vec<Item>) {
        let mut start = 0;
        if self.discarding {
            match memchr::memchr(b'\n', input) {
                Some(e) => {
                    self.discarding = false;
                    self.line_blank = true;
                    start = e + 1;
                }
                None => return,
            }
        }
        let input = &input[start..];
        if self.held.is_empty() {
            if self.finder.find(input).is_none() && partial_at_end(input) == 0 {
                self.note_released(input);
                items.push(Item::Input(start..start + input.len()));
                return;
            }
            self.process(input, Some(start), items);
            return;
        }
        let mut buf = std::mem::take(&mut self.held);
        buf.extend_from_slice(input);
        self.process(&buf, None, items);
    }

    /// End of stream: a held line is released as it is (it has no newline, so
    /// the runner would not take it as a command either).
    pub fn finish(&mut self, items: &mut Vec<Item>) {
        if !self.held.is_empty() {
            let held = std::mem::take(&mut self.held);
            if let Some(cmd) = self.command(&held, 0, held.len()) {
                items.push(Item::Command(cmd));
            } else {
                items.push(Item::Held(held));
            }
        }
        self.line_blank = true;
        self.discarding = false;
    }

    /// `base` is where `buf` starts in the caller's input, when it is the input.
    fn process(&mut self, buf: &[u8], base: Option<usize>, items: &mut Vec<Item>) {
        let emit = |items: &mut Vec<Item>, gate: &mut Gate, r: Range<usize>| {
            if r.is_empty() {
                return;
            }
            gate.note_released(&buf[r.clone()]);
            items.push(match base {
                Some(b) => Item::Input(b + r.start..b + r.end),
                None => Item::Held(Zeroizing::new(buf[r].to_vec())),
            });
        };
        let mut pos = 0;
        loop {
            let Some(m) = self.finder.find(&buf[pos..]).map(|m| pos + m) else {
                let k = partial_at_end(&buf[pos..]);
                let hold = if k == 0 {
                    buf.len()
                } else {
                    line_start(buf, pos, buf.len() - k)
                };
                emit(items, self, pos..hold);
                self.held.extend_from_slice(&buf[hold..]);
                return;
            };
            let ls = line_start(buf, pos, m);
            let Some(nl) = memchr::memchr(b'\n', &buf[m..]).map(|e| m + e) else {
                emit(items, self, pos..ls);
                if buf.len() - ls > MAX_LINE {
                    items.push(Item::Masked);
                    self.discarding = true;
                    return;
                }
                self.held.extend_from_slice(&buf[ls..]);
                return;
            };
            emit(items, self, pos..ls);
            if let Some(cmd) = self.command(buf, ls, nl + 1) {
                items.push(Item::Command(cmd));
            }
            self.line_blank = true;
            pos = nl + 1;
        }
    }

    /// The command in `buf[ls..end]` (a line, with its newline if any).
    fn command(&self, buf: &[u8], ls: usize, end: usize) -> Option<Command> {
        let line = &buf[ls..end];
        let m = self.finder.find(line)?;
        let whole = self.line_blank && line[..m].iter().all(|&b| b == b' ' || b == b'\t');
        let mut value = &line[m + MARKER.len()..];
        value = value.strip_suffix(b"\n").unwrap_or(value);
        value = value.strip_suffix(b"\r").unwrap_or(value);
        let value = if whole {
            unescape(value)
        } else {
            // An echo of the command: the shell's closing quote is not part of
            // the value (`+ echo '::add-mask::VALUE'`).
            let quote = m
                .checked_sub(1)
                .map(|i| line[i])
                .filter(|q| *q == b'\'' || *q == b'"');
            let v = match quote {
                Some(q) => value.strip_suffix(&[q]).unwrap_or(value),
                None => value,
            };
            Zeroizing::new(v.to_vec())
        };
        Some(Command {
            value,
            whole,
            line: Zeroizing::new(line.to_vec()),
        })
    }

    fn note_released(&mut self, bytes: &[u8]) {
        match memchr::memrchr(b'\n', bytes) {
            Some(i) => self.line_blank = bytes[i + 1..].iter().all(|&b| b == b' ' || b == b'\t'),
            None => self.line_blank &= bytes.iter().all(|&b| b == b' ' || b == b'\t'),
        }
    }
}

/// Where the line holding `at` starts, not before `floor`.
fn line_start(buf: &[u8], floor: usize, at: usize) -> usize {
    memchr::memrchr(b'\n', &buf[floor..at]).map_or(floor, |i| floor + i + 1)
}

/// The length of the longest suffix of `buf` that is a proper prefix of the
/// marker.
fn partial_at_end(buf: &[u8]) -> usize {
    (1..MARKER.len().min(buf.len() + 1))
        .rev()
        .find(|&k| buf.ends_with(&MARKER[..k]))
        .unwrap_or(0)
}

/// The runner's data unescaping: `%0D`, `%0A`, `%25`.
fn unescape(v: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(v.len()));
    let mut i = 0;
    while i < v.len() {
        let rest = &v[i..];
        let (b, n) = if rest.starts_with(b"%0D") || rest.starts_with(b"%0d") {
            (b'\r', 3)
        } else if rest.starts_with(b"%0A") || rest.starts_with(b"%0a") {
            (b'\n', 3)
        } else if rest.starts_with(b"%25") {
            (b'%', 3)
        } else {
            (v[i], 1)
        };
        out.push(b);
        i += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs chunks through a gate: (released text, commands as (value, whole)).
    fn run(chunks: &[&[u8]]) -> (Vec<u8>, Vec<(Vec<u8>, bool)>) {
        let mut g = Gate::default();
        let mut text = Vec::new();
        let mut cmds = Vec::new();
        let mut items = Vec::new();
        for c in chunks {
            g.write(c, &mut items);
            for it in items.drain(..) {
                match it {
                    Item::Input(r) => text.extend_from_slice(&c[r]),
                    Item::Held(h) => text.extend_from_slice(&h),
                    Item::Command(cmd) => {
                        text.extend_from_slice(b"<cmd>");
                        cmds.push((cmd.value.to_vec(), cmd.whole));
                    }
                    Item::Masked => text.extend_from_slice(b"<masked>"),
                }
            }
        }
        g.finish(&mut items);
        for it in items {
            if let Item::Held(h) = it {
                text.extend_from_slice(&h);
            }
        }
        (text, cmds)
    }

    #[test]
    fn whole_line_and_echoed_commands() {
        let (text, cmds) = run(&[b"a\n  ::add-mask::s3cr%25et\n+ echo '::add-mask::tok en'\nb\n"]);
        assert_eq!(text, b"a\n<cmd><cmd>b\n");
        assert_eq!(
            cmds,
            vec![(b"s3cr%et".to_vec(), true), (b"tok en".to_vec(), false)]
        );
    }

    #[test]
    fn a_line_is_held_across_reads_until_its_newline() {
        let line = b"x\n+ echo ::add-mask::abcdef123\nafter\n";
        for cut in 0..line.len() {
            let (a, b) = line.split_at(cut);
            let (text, cmds) = run(&[a, b]);
            assert_eq!(cmds, vec![(b"abcdef123".to_vec(), false)], "cut {cut}");
            // Bytes of the line before a read that showed no part of the marker
            // were released already; nothing from the marker on is.
            let text = String::from_utf8(text).unwrap();
            assert!(
                text.starts_with("x\n") && text.ends_with("<cmd>after\n"),
                "cut {cut}: {text}"
            );
            assert!(
                !text.contains("abc") && !text.contains("::"),
                "cut {cut}: {text}"
            );
        }
    }

    #[test]
    fn a_command_after_released_blanks_is_whole() {
        let (_, cmds) = run(&[b"  ", b"::add-mask::value1\n"]);
        assert_eq!(cmds, vec![(b"value1".to_vec(), true)]);
        let (_, cmds) = run(&[b"x ", b"::add-mask::value1\n"]);
        assert_eq!(cmds, vec![(b"value1".to_vec(), false)]);
    }

    #[test]
    fn an_over_long_line_is_masked_whole() {
        let mut long = b"::add-mask::".to_vec();
        long.extend(std::iter::repeat_n(b'v', MAX_LINE + 10));
        let (text, cmds) = run(&[&long, b"vvv\nnext\n"]);
        assert!(cmds.is_empty());
        assert_eq!(text, b"<masked>next\n");
    }

    #[test]
    fn values_and_forwarding_follow_the_runner() {
        let c = Command {
            value: Zeroizing::new(b"line one\n  two  \n".to_vec()),
            whole: true,
            line: Zeroizing::new(Vec::new()),
        };
        assert_eq!(
            c.values(),
            vec![&b"line one\n  two  \n"[..], b"line one", b"two"]
        );
        assert_eq!(
            c.forwarded().as_slice(),
            b"::add-mask::line one%0A  two  %0A\n"
        );
        let blank = Command {
            value: Zeroizing::new(b"  ".to_vec()),
            whole: true,
            line: Zeroizing::new(Vec::new()),
        };
        assert!(blank.values().is_empty());
    }
}
