//! After the login: bytes copied both ways until either side closes, as one
//! task per connection on the gateway's relay worker (no thread, no buffer of
//! its own while idle: what a read brings goes through the worker's scratch
//! buffer, and only what the other side cannot take at once is copied into a
//! pending buffer of the connection). Both directions make progress
//! independently, over TLS too, so a client that pipelines without reading
//! cannot deadlock it. The server's side is followed message by message
//! (lengths only), so that a connection whose credential retired ends with a
//! FATAL ErrorResponse at a message boundary, as a server's own shutdown would.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, ReadBuf};

use super::wire;
use crate::gateway::stats::Stats;
use crate::gateway::stream::Stream;

/// The most one read takes: a bulk result or COPY moves in 64 KiB steps.
const SCRATCH: usize = 64 * 1024;
/// SQLSTATE admin_shutdown, what a server sends when it ends a session.
const ADMIN_SHUTDOWN: &str = "57P01";
/// What the client is told when the lease's grace ends.
const RETIRED: &str = "terminating connection: credential retired";

thread_local! {
    /// Each worker's read buffer, shared by all its connections: a read's
    /// bytes are written on at once, within the same poll.
    static SCRATCH_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A connection either side of the relay: TCP, Unix or TLS.
pub trait Duplex: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Duplex for T {}

/// The client's connection on the runtime (call within it).
pub fn client_on_runtime(client: Stream) -> io::Result<Box<dyn Duplex>> {
    Ok(match client {
        Stream::Tcp(s) => {
            s.set_nonblocking(true)?;
            Box::new(tokio::net::TcpStream::from_std(s)?)
        }
        Stream::Unix(s) => {
            s.set_nonblocking(true)?;
            Box::new(tokio::net::UnixStream::from_std(s)?)
        }
    })
}

/// Copies `client` ↔ `upstream` until one side ends (counting the bytes in
/// `stats`). When `retired` is set (and the upstream's writing half shut),
/// the server ends the session and the client gets a 57P01 ErrorResponse
/// before its connection closes.
///
/// Both directions are polled by this one future, on the streams themselves:
/// no split halves (whose lock every read and write took) and no select over
/// two futures.
pub async fn relay(
    mut client: Box<dyn Duplex>,
    mut upstream: Box<dyn Duplex>,
    retired: &AtomicBool,
    stats: &Stats,
) {
    let mut forth = Direction::default();
    let mut back = Direction::default();
    let mut bounds = Boundaries::default();
    std::future::poll_fn(|cx| {
        if !forth.ended {
            let counted = |b: &[u8]| {
                stats
                    .to_upstream
                    .fetch_add(b.len() as u64, Ordering::Relaxed);
            };
            if forth
                .poll_copy(cx, &mut *client, &mut *upstream, counted)
                .is_ready()
            {
                forth.ended = true;
                // Once retired, the server's side owns the end: the client
                // must still get the error.
                if !retired.load(Ordering::SeqCst) {
                    return Poll::Ready(());
                }
            }
        }
        back.poll_copy(cx, &mut *upstream, &mut *client, |b| {
            bounds.feed(b);
            stats.to_client.fetch_add(b.len() as u64, Ordering::Relaxed);
        })
    })
    .await;
    if retired.load(Ordering::SeqCst) && bounds.at_boundary() {
        let _ = client
            .write_all(&wire::fatal(ADMIN_SHUTDOWN, RETIRED))
            .await;
    }
    let _ = client.shutdown().await;
}

/// One direction of the relay: what its destination has not taken yet.
#[derive(Debug, Default)]
struct Direction {
    /// Bytes read but not yet written (empty, and unallocated, when idle).
    pending: Vec<u8>,
    /// How many of `pending` are written.
    written: usize,
    /// Something was written since the last flush (TLS holds records until
    /// flushed).
    unflushed: bool,
    /// The source ended, or either side failed.
    ended: bool,
}

impl Direction {
    /// Moves what `from` has to `to` until neither can go on now (Pending)
    /// or `from` ends or either fails (Ready). `seen` gets every chunk read.
    fn poll_copy(
        &mut self,
        cx: &mut Context<'_>,
        from: &mut dyn Duplex,
        to: &mut dyn Duplex,
        mut seen: impl FnMut(&[u8]),
    ) -> Poll<()> {
        loop {
            while self.written < self.pending.len() {
                match Pin::new(&mut *to).poll_write(cx, &self.pending[self.written..]) {
                    Poll::Ready(Ok(n)) if n > 0 => self.written += n,
                    Poll::Ready(_) => return Poll::Ready(()),
                    Poll::Pending => return Poll::Pending,
                }
            }
            if !self.pending.is_empty() {
                // An idle connection holds no buffer.
                self.pending = Vec::new();
                self.written = 0;
            }
            if self.unflushed {
                // TLS: what the session holds goes out before more is read.
                match Pin::new(&mut *to).poll_flush(cx) {
                    Poll::Ready(Ok(())) => self.unflushed = false,
                    Poll::Ready(Err(_)) => return Poll::Ready(()),
                    Poll::Pending => return Poll::Pending,
                }
            }
            match step(cx, from, to, &mut seen) {
                Poll::Ready(Ok(Some(rest))) => {
                    self.pending = rest;
                    self.unflushed = true;
                }
                Poll::Ready(Ok(None) | Err(_)) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// Reads what `from` has into the worker's scratch buffer and writes as much
/// of it as `to` takes now; returns the rest, to be written (usually
/// nothing, which allocates nothing). None at the end of `from`.
fn step(
    cx: &mut Context<'_>,
    from: &mut dyn Duplex,
    to: &mut dyn Duplex,
    seen: &mut impl FnMut(&[u8]),
) -> Poll<io::Result<Option<Vec<u8>>>> {
    SCRATCH_BUF.with_borrow_mut(|scratch| {
        if scratch.len() < SCRATCH {
            scratch.resize(SCRATCH, 0);
        }
        let mut buf = ReadBuf::new(scratch);
        ready!(Pin::new(&mut *from).poll_read(cx, &mut buf))?;
        let got = buf.filled();
        if got.is_empty() {
            return Poll::Ready(Ok(None));
        }
        seen(got);
        let taken = match Pin::new(&mut *to).poll_write(cx, got) {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => 0,
        };
        Poll::Ready(Ok(Some(got[taken..].to_vec())))
    })
}

/// Where the server's stream is: inside a message's 5-byte header or body.
#[derive(Debug, Default)]
struct Boundaries {
    head: [u8; 5],
    head_len: usize,
    body_left: u64,
}

impl Boundaries {
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let n = (self.body_left.min(bytes.len() as u64)) as usize;
                self.body_left -= n as u64;
                bytes = &bytes[n..];
                continue;
            }
            let n = (5 - self.head_len).min(bytes.len());
            self.head[self.head_len..self.head_len + n].copy_from_slice(&bytes[..n]);
            self.head_len += n;
            bytes = &bytes[n..];
            if self.head_len == 5 {
                let h = &self.head;
                let len = i32::from_be_bytes([h[1], h[2], h[3], h[4]]);
                self.body_left = u64::try_from(len).unwrap_or(4).saturating_sub(4);
                self.head_len = 0;
            }
        }
    }

    fn at_boundary(&self) -> bool {
        self.head_len == 0 && self.body_left == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt as _;
    use tokio::net::UnixStream;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Writes `out` while it reads `expect` bytes, then ends its
    /// writing half; returns what it read.
    async fn talk(s: UnixStream, out: &[u8], expect: usize) -> Vec<u8> {
        let (mut rx, mut tx) = s.into_split();
        let mut got = vec![0u8; expect];
        let (written, read) = tokio::join!(tx.write_all(out), rx.read_exact(&mut got));
        written.unwrap();
        read.unwrap();
        tx.shutdown().await.unwrap();
        got
    }

    #[test]
    fn bulk_data_both_ways_at_once_arrives_whole() {
        runtime().block_on(async {
            let (client, gw_client) = UnixStream::pair().unwrap();
            let (gw_upstream, server) = UnixStream::pair().unwrap();
            let stats = Stats::default();
            let retired = AtomicBool::new(false);
            let forth: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
            let back: Vec<u8> = (0..5_000_000u32).map(|i| (i % 241) as u8).collect();
            // Each side writes everything while it reads: far more than the
            // sockets hold, so both directions must move at once.
            let ((), got_back, got_forth) = tokio::join!(
                relay(Box::new(gw_client), Box::new(gw_upstream), &retired, &stats),
                talk(client, &forth, back.len()),
                talk(server, &back, forth.len()),
            );
            assert!(got_forth == forth, "client to server differs");
            assert!(got_back == back, "server to client differs");
            assert_eq!(
                stats.to_upstream.load(Ordering::Relaxed),
                forth.len() as u64
            );
            assert_eq!(stats.to_client.load(Ordering::Relaxed), back.len() as u64);
        });
    }

    #[test]
    fn a_retired_connection_ends_with_57p01_at_a_message_boundary() {
        runtime().block_on(async {
            let (mut client, gw_client) = UnixStream::pair().unwrap();
            let (gw_upstream, mut server) = UnixStream::pair().unwrap();
            let stats = Stats::default();
            let retired = AtomicBool::new(true);
            let server_side = async {
                server.write_all(&wire::authentication(0)).await.unwrap();
                server.shutdown().await.unwrap();
            };
            let client_side = async {
                let mut got = Vec::new();
                client.read_to_end(&mut got).await.unwrap();
                got
            };
            let ((), (), got) = tokio::join!(
                relay(Box::new(gw_client), Box::new(gw_upstream), &retired, &stats),
                server_side,
                client_side
            );
            let mut want = wire::authentication(0);
            want.extend(wire::fatal(ADMIN_SHUTDOWN, RETIRED));
            assert_eq!(got, want);
        });
    }

    #[test]
    fn boundaries_follow_messages_split_anywhere() {
        let mut msgs = wire::fatal("XX000", "one");
        msgs.extend(wire::authentication(0));
        msgs.extend(wire::backend_key_data(1, 2));
        for split in 0..msgs.len() {
            let mut b = Boundaries::default();
            b.feed(&msgs[..split]);
            let first = wire::fatal("XX000", "one").len();
            let whole = [0, first, first + 9].contains(&split);
            assert_eq!(b.at_boundary(), whole, "split at {split}");
            b.feed(&msgs[split..]);
            assert!(b.at_boundary());
        }
    }
}
