//! After the login: bytes copied both ways until either side closes, then
//! both are shut down so the other direction ends too.

use std::io::{Read, Write};

use crate::gateway::stream::Stream;

/// One direction's buffer: a query or a result batch in one read.
const CHUNK: usize = 32 * 1024;

/// Copies `client` ↔ `upstream` until one side ends; returns the bytes copied
/// (client → upstream, upstream → client).
pub fn relay(client: Stream, upstream: Stream) -> (u64, u64) {
    let (client_rx, upstream_rx) = match (client.try_clone(), upstream.try_clone()) {
        (Ok(c), Ok(u)) => (c, u),
        _ => {
            client.shutdown();
            upstream.shutdown();
            return (0, 0);
        }
    };
    let back = std::thread::Builder::new()
        .name("gateway-relay".into())
        .stack_size(super::super::THREAD_STACK)
        .spawn(move || copy(upstream_rx, client));
    let forth = copy(client_rx, upstream);
    let back = back.ok().and_then(|h| h.join().ok()).unwrap_or(0);
    (forth, back)
}

/// Copies until EOF or an error, then shuts both down.
fn copy(mut from: Stream, mut to: Stream) -> u64 {
    let mut buf = vec![0u8; CHUNK];
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
    }
    from.shutdown();
    to.shutdown();
    total
}
