//! After the login: bytes copied both ways until either side closes, then
//! both are shut down so the other direction ends too. The server's side is
//! followed message by message (lengths only, nothing is buffered), so that a
//! connection whose credential retired ends with a FATAL ErrorResponse at a
//! message boundary, as a server's own shutdown would.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use rustls::{ClientConnection, StreamOwned};

use super::wire;
use crate::gateway::stats::Stats;
use crate::gateway::stream::Stream;

/// One direction's first buffer: a small query or result in one read, and
/// little memory for each of many idle connections.
const FIRST_CHUNK: usize = 4 * 1024;
/// The most it grows to when reads keep filling it (bulk results, COPY).
const MAX_CHUNK: usize = 64 * 1024;
/// SQLSTATE admin_shutdown, what a server sends when it ends a session.
const ADMIN_SHUTDOWN: &str = "57P01";
/// What the client is told when the lease's grace ends.
const RETIRED: &str = "terminating connection: credential retired";

/// Bytes copied each way.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    /// Client to upstream.
    pub forth: u64,
    /// Upstream to client.
    pub back: u64,
}

/// Copies `client` ↔ `upstream` until one side ends. When `retired` is set
/// (and the upstream's writing half shut), the server ends the session and
/// the client gets a 57P01 ErrorResponse before its connection closes.
pub fn relay(
    client: Stream,
    upstream: Stream,
    retired: Arc<AtomicBool>,
    stats: &Arc<Stats>,
) -> Copied {
    let (client_rx, upstream_rx) = match (client.try_clone(), upstream.try_clone()) {
        (Ok(c), Ok(u)) => (c, u),
        _ => {
            client.shutdown();
            upstream.shutdown();
            return Copied::default();
        }
    };
    let (flag, counter) = (retired.clone(), stats.clone());
    let back = std::thread::Builder::new()
        .name("gateway-relay".into())
        .stack_size(super::super::THREAD_STACK)
        .spawn(move || back(upstream_rx, client, &flag, &counter.to_client));
    let forth = copy(client_rx, upstream, &retired, &stats.to_upstream);
    let back = back.ok().and_then(|h| h.join().ok()).unwrap_or(0);
    Copied { forth, back }
}

/// Client to upstream, until EOF or an error. Once retired, the other
/// direction owns the end (the client must still get the error).
fn copy(mut from: Stream, mut to: Stream, retired: &AtomicBool, counter: &AtomicU64) -> u64 {
    let mut buf = vec![0u8; FIRST_CHUNK];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        total += n as u64;
        counter.fetch_add(n as u64, Ordering::Relaxed);
        grow_when_full(&mut buf, n);
    }
    if !retired.load(Ordering::SeqCst) {
        from.shutdown();
        to.shutdown();
    }
    total
}

/// Upstream to client, following message boundaries; at the end, a retired
/// connection's client gets 57P01 when the last message was whole.
fn back(mut from: Stream, mut to: Stream, retired: &AtomicBool, counter: &AtomicU64) -> u64 {
    let mut buf = vec![0u8; FIRST_CHUNK];
    let mut total = 0u64;
    let mut bounds = Boundaries::default();
    loop {
        let n = match from.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        bounds.feed(&buf[..n]);
        total += n as u64;
        counter.fetch_add(n as u64, Ordering::Relaxed);
        grow_when_full(&mut buf, n);
    }
    if retired.load(Ordering::SeqCst) && bounds.at_boundary() {
        let _ = to.write_all(&wire::fatal(ADMIN_SHUTDOWN, RETIRED));
    }
    from.shutdown();
    to.shutdown();
    total
}

/// As [`relay`] over TLS to the upstream: one thread polls both sides (a TLS
/// session cannot be read and written from two threads).
pub fn relay_tls(
    mut client: Stream,
    mut up: StreamOwned<ClientConnection, TcpStream>,
    retired: &AtomicBool,
    stats: &Stats,
) -> Copied {
    let mut buf = vec![0u8; MAX_CHUNK / 2];
    let mut copied = Copied::default();
    let mut bounds = Boundaries::default();
    let mut upstream_done = false;
    'relay: loop {
        // Plaintext rustls already holds (also what came with the login).
        loop {
            match up.conn.reader().read(&mut buf) {
                Ok(0) => break 'relay,
                Ok(n) => {
                    if client.write_all(&buf[..n]).is_err() {
                        break 'relay;
                    }
                    bounds.feed(&buf[..n]);
                    copied.back += n as u64;
                    stats.to_client.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => break 'relay,
            }
        }
        if upstream_done {
            break;
        }
        let (client_ready, upstream_ready) = {
            let mut fds = [
                PollFd::new(client.as_fd(), PollFlags::POLLIN),
                PollFd::new(up.sock.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
            }
            let ready = |f: &PollFd<'_>| f.revents().is_some_and(|r| !r.is_empty());
            (ready(&fds[0]), ready(&fds[1]))
        };
        if client_ready {
            let n = match client.read(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if send_tls(&mut up, &buf[..n]).is_err() {
                break;
            }
            copied.forth += n as u64;
            stats.to_upstream.fetch_add(n as u64, Ordering::Relaxed);
        }
        if upstream_ready {
            match up.conn.read_tls(&mut up.sock) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // The end: what rustls holds is still delivered above.
                Ok(0) | Err(_) => upstream_done = true,
                Ok(_) => {}
            }
            if up.conn.process_new_packets().is_err() {
                break;
            }
        }
    }
    if retired.load(Ordering::SeqCst) && bounds.at_boundary() {
        let _ = client.write_all(&wire::fatal(ADMIN_SHUTDOWN, RETIRED));
    }
    client.shutdown();
    let _ = up.sock.shutdown(std::net::Shutdown::Both);
    copied
}

/// Doubles `buf` (up to [`MAX_CHUNK`]) when a read filled it: more is
/// coming than it holds.
fn grow_when_full(buf: &mut Vec<u8>, n: usize) {
    if n == buf.len() && buf.len() < MAX_CHUNK {
        buf.resize(buf.len() * 2, 0);
    }
}

/// Encrypts `bytes` and writes them out (blocking, never reading).
fn send_tls(
    up: &mut StreamOwned<ClientConnection, TcpStream>,
    bytes: &[u8],
) -> std::io::Result<()> {
    up.conn.writer().write_all(bytes)?;
    while up.conn.wants_write() {
        up.conn.write_tls(&mut up.sock)?;
    }
    Ok(())
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

    #[test]
    fn a_bulk_copy_arrives_whole_while_the_buffer_grows() {
        use std::os::unix::net::UnixStream;
        let (mut writer, from) = UnixStream::pair().unwrap();
        let (to, mut reader) = UnixStream::pair().unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let feeder = std::thread::spawn(move || {
            writer.write_all(&sent).unwrap();
        });
        let counter = AtomicU64::new(0);
        let copier = std::thread::scope(|s| {
            let h = s.spawn(|| {
                copy(
                    Stream::Unix(from),
                    Stream::Unix(to),
                    &AtomicBool::new(false),
                    &counter,
                )
            });
            let mut got = Vec::new();
            reader.read_to_end(&mut got).unwrap();
            assert!(
                got == data,
                "the bytes differ ({} of {})",
                got.len(),
                data.len()
            );
            h.join().unwrap()
        });
        feeder.join().unwrap();
        assert_eq!(copier, data.len() as u64);
        assert_eq!(counter.load(Ordering::Relaxed), data.len() as u64);
    }

    #[test]
    fn the_buffer_doubles_only_when_filled_up_to_its_bound() {
        let mut buf = vec![0u8; FIRST_CHUNK];
        grow_when_full(&mut buf, FIRST_CHUNK - 1);
        assert_eq!(buf.len(), FIRST_CHUNK);
        for _ in 0..10 {
            let n = buf.len();
            grow_when_full(&mut buf, n);
        }
        assert_eq!(buf.len(), MAX_CHUNK);
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
