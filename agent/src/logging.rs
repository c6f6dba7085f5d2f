//! shroud's own log output on stderr, redacted.
//!
//! Every formatted log event is buffered whole and run through a [`Redactor`]
//! loaded with the live secret set before a single byte reaches stderr, so a bug
//! that formats a secret value into a log message (in any encoding the redactor
//! knows) still does not leak it. The agent (or `exec`/`redact`/`scan`) publishes
//! its set with [`set_live`]; until then lines pass unchanged.

use std::io::{self, IsTerminal as _, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use shroud_redactor::{Redactor, SecretSet, SecretSetBuilder};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt as _;
use zeroize::Zeroizing;

use crate::live::LiveSet;

/// How shroud's own log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable on a terminal, JSON otherwise.
    Auto,
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

/// The secret set every log line is redacted with.
static LIVE: ArcSwapOption<LiveSet> = ArcSwapOption::const_empty();

/// Whether stderr's terminal is in raw mode (see [`set_raw_terminal`]).
static RAW_TERMINAL: AtomicBool = AtomicBool::new(false);

/// Tells the log writer that the terminal on stderr is (or no longer is) in raw
/// mode. Raw mode turns off the terminal's `\n` → `\r\n` translation, so while
/// it is on every line shroud writes ends in `\r\n` itself; otherwise the lines
/// stair-step across the screen.
pub fn set_raw_terminal(raw: bool) {
    RAW_TERMINAL.store(raw, Ordering::Relaxed);
}

/// Makes `live` the set shroud's own output is redacted with, from the next line
/// on. Pass the same [`LiveSet`] the streams use so rotations are picked up.
pub fn set_live(live: Arc<LiveSet>) {
    LIVE.store(Some(live));
}

/// shroud's own credentials (Vault tokens), masked in every log line on top of
/// the live set: an HTTP library's debug output prints request headers.
static CREDENTIALS: ArcSwapOption<SecretSet> = ArcSwapOption::const_empty();

/// The last few credentials registered (a re-login replaces the token; a line
/// about the old one may still be on its way).
static RECENT: Mutex<Vec<Zeroizing<Vec<u8>>>> = Mutex::new(Vec::new());

/// How many past credentials stay masked.
const RECENT_CREDENTIALS: usize = 4;

/// Masks `credential` (a Vault token) in shroud's own log lines from now on.
/// It is not added to the workload's redaction set.
pub fn add_credential(credential: &[u8]) {
    let mut recent = RECENT.lock().unwrap_or_else(|e| e.into_inner());
    if recent.iter().any(|c| c.as_slice() == credential) {
        return;
    }
    recent.push(Zeroizing::new(credential.to_vec()));
    let excess = recent.len().saturating_sub(RECENT_CREDENTIALS);
    recent.drain(..excess);
    let mut builder = SecretSetBuilder::new().min_length(8);
    for c in recent.iter() {
        builder.add("vault-token", c);
    }
    CREDENTIALS.store(Some(Arc::new(builder.build().0)));
}

/// Installs the global subscriber. `RUST_LOG`-style filtering via `SHROUD_LOG`
/// (default `info`).
pub fn init(format: LogFormat) {
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !io::stderr().is_terminal(),
    };
    // `try_init` also routes the `log` crate's records (HTTP and TLS libraries)
    // into the same redacting writer.
    let _ = subscriber(json, filter(), RedactingMakeWriter::new(io::stderr)).try_init();
}

fn filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_env("SHROUD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
}

/// The subscriber [`init`] installs, writing through `writer`.
fn subscriber<W>(
    json: bool,
    filter: tracing_subscriber::EnvFilter,
    writer: RedactingMakeWriter<W>,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let ansi = !json && io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        .with_target(false);
    if json {
        Box::new(builder.json().flatten_event(true).finish())
    } else {
        Box::new(builder.finish())
    }
}

/// Writes `line` (a newline is added) to stderr, redacted with the live set: for
/// messages printed outside tracing, such as the final error.
pub fn print_redacted(line: &str) {
    let mut bytes = Zeroizing::new(Vec::with_capacity(line.len() + 1));
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    let out = line_endings(redact(&bytes));
    let _ = io::stderr().lock().write_all(&out);
}

/// `bytes` with `\n` turned into `\r\n` while the terminal is raw.
fn line_endings(bytes: Zeroizing<Vec<u8>>) -> Zeroizing<Vec<u8>> {
    if !RAW_TERMINAL.load(Ordering::Relaxed) {
        return bytes;
    }
    crlf(&bytes)
}

/// Every `\n` not already preceded by `\r` becomes `\r\n`.
fn crlf(bytes: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len() + 8));
    let mut prev = 0u8;
    for &b in bytes {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// `bytes` with every value of the live set masked (unchanged when none is set).
pub fn redact(bytes: &[u8]) -> Zeroizing<Vec<u8>> {
    redact_with(&LIVE, bytes)
}

fn redact_with(live: &ArcSwapOption<LiveSet>, bytes: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len() + 16));
    match &*live.load() {
        Some(live) => {
            let mut r = Redactor::new(live.load());
            r.write(bytes, &mut out);
            r.finish(&mut out);
        }
        None => out.extend_from_slice(bytes),
    }
    match &*CREDENTIALS.load() {
        Some(set) => {
            let mut again = Zeroizing::new(Vec::with_capacity(out.len() + 16));
            let mut r = Redactor::new(set.clone());
            r.write(&out, &mut again);
            r.finish(&mut again);
            again
        }
        None => out,
    }
}

/// A [`MakeWriter`] whose writers hold each event until it is complete, then write
/// it redacted, in one `write_all`, to the inner writer.
pub struct RedactingMakeWriter<M> {
    inner: M,
    live: &'static ArcSwapOption<LiveSet>,
}

impl<M> std::fmt::Debug for RedactingMakeWriter<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedactingMakeWriter")
            .finish_non_exhaustive()
    }
}

impl<M> RedactingMakeWriter<M> {
    /// Redacts with the set given to [`set_live`].
    pub fn new(inner: M) -> Self {
        RedactingMakeWriter { inner, live: &LIVE }
    }

    /// Redacts with the set in `live` instead of the global one (tests).
    pub fn with_live(inner: M, live: &'static ArcSwapOption<LiveSet>) -> Self {
        RedactingMakeWriter { inner, live }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for RedactingMakeWriter<M> {
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter {
            inner: self.inner.make_writer(),
            live: self.live,
            buf: Zeroizing::new(Vec::new()),
        }
    }
}

/// Buffers one event; writes it redacted when dropped.
pub struct RedactingWriter<W: Write> {
    inner: W,
    live: &'static ArcSwapOption<LiveSet>,
    buf: Zeroizing<Vec<u8>>,
}

impl<W: Write> std::fmt::Debug for RedactingWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedactingWriter")
            .field("buffered", &self.buf.len())
            .finish_non_exhaustive()
    }
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    /// Nothing leaves before the event is complete: a secret split across two
    /// writes must be seen whole.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let out = line_endings(redact_with(self.live, &self.buf));
        let _ = self.inner.write_all(&out);
        let _ = self.inner.flush();
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    const SECRET: &str = "s3cr3t-Pa55w0rd-value";

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    fn live_with_secret() -> &'static ArcSwapOption<LiveSet> {
        let mut b = SecretSetBuilder::new();
        b.add("db", SECRET.as_bytes());
        let live = Arc::new(LiveSet::new(b.build().0));
        Box::leak(Box::new(ArcSwapOption::new(Some(live))))
    }

    /// Logs the secret deliberately, the way a bug would: in the message, as a
    /// field (Display and Debug), base64-encoded and inside a span.
    fn log_the_secret(json: bool) -> String {
        let captured = Captured::default();
        let writer = RedactingMakeWriter::with_live(captured.clone(), live_with_secret());
        let sub = subscriber(json, tracing_subscriber::EnvFilter::new("debug"), writer);
        let b64 = base64::engine::general_purpose::STANDARD.encode(SECRET);
        tracing::subscriber::with_default(sub, || {
            let span = tracing::info_span!("fetch", token = SECRET);
            let _g = span.enter();
            tracing::info!("connecting with password {SECRET}");
            tracing::warn!(password = %SECRET, debug = ?SECRET, encoded = %b64, "oops");
        });
        let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        out
    }

    #[test]
    fn secret_logged_as_text_is_masked() {
        let out = log_the_secret(false);
        assert!(!out.contains(SECRET), "{out}");
        assert!(out.contains("connecting with password [REDACTED]"), "{out}");
        assert!(out.contains("password=[REDACTED]"), "{out}");
        assert!(out.contains("encoded=[REDACTED]"), "{out}");
        assert_eq!(out.lines().count(), 2);
    }

    #[test]
    fn secret_logged_as_json_is_masked() {
        let out = log_the_secret(true);
        assert!(!out.contains(SECRET), "{out}");
        assert!(out.contains("[REDACTED]"), "{out}");
        for line in out.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
            assert!(v.get("level").is_some());
        }
        assert!(out.contains(r#""password":"[REDACTED]""#), "{out}");
    }

    #[test]
    fn raw_terminal_lines_end_in_crlf() {
        assert_eq!(
            &crlf(b"one\ntwo\r\nthree\n")[..],
            b"one\r\ntwo\r\nthree\r\n"
        );
        assert_eq!(&crlf(b"\n\n")[..], b"\r\n\r\n");
        assert_eq!(&crlf(b"no newline")[..], b"no newline");
    }

    #[test]
    fn without_a_live_set_lines_pass_unchanged() {
        static NONE: ArcSwapOption<LiveSet> = ArcSwapOption::const_empty();
        assert_eq!(&redact_with(&NONE, b"plain line\n")[..], b"plain line\n");
    }

    #[test]
    fn vault_tokens_are_masked_without_a_live_set() {
        static NONE: ArcSwapOption<LiveSet> = ArcSwapOption::const_empty();
        let token = "s.LoggingTestToken0123456789";
        add_credential(token.as_bytes());
        let line = format!("writing prelude: X-Vault-Token: {token}\r\nAccept: */*\n");
        let out = redact_with(&NONE, line.as_bytes());
        let out = String::from_utf8_lossy(&out);
        assert!(!out.contains(token), "{out}");
        assert!(out.contains("X-Vault-Token: [REDACTED]"), "{out}");
    }
}
