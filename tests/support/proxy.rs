//! A counting, gating HTTP/1.1 proxy on 127.0.0.1 in front of a real server
//! (the test registry): it records every request line it forwards and can hold
//! the requests whose line contains a given text until the test releases them,
//! so a test can make a burst of clients meet one slow fetch without sleeping.
//! It can also answer chosen requests itself (a Vault standby's redirect).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A running proxy; its threads end with the process.
#[derive(Debug)]
pub struct Proxy {
    /// `127.0.0.1:<port>`, to use in place of the upstream's host.
    pub host: String,
    state: Arc<State>,
}

#[derive(Debug, Default)]
struct State {
    inner: Mutex<Inner>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Inner {
    /// Request lines seen (`GET /v2/... HTTP/1.1`), in arrival order.
    seen: Vec<String>,
    /// Requests whose line contains this wait until released.
    hold: Option<String>,
    /// Requests whose line contains the first text get the second, a whole
    /// HTTP response, instead of going up; the connection is then closed.
    answer: Option<(String, String)>,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Proxy {
    /// A proxy forwarding each connection to `upstream` (`host:port`).
    pub fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let state = Arc::new(State::default());
        let upstream = upstream.to_string();
        let s = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (s, upstream) = (s.clone(), upstream.clone());
                std::thread::spawn(move || serve(client, &upstream, &s));
            }
        });
        Proxy { host, state }
    }

    /// Holds from now on every request whose request line contains `text`.
    pub fn hold(&self, text: &str) {
        self.state.lock().hold = Some(text.to_string());
    }

    /// From now on answers every request whose request line contains `text`
    /// with `response` (a whole HTTP/1.1 response) instead of forwarding it.
    pub fn answer(&self, text: &str, response: &str) {
        self.state.lock().answer = Some((text.to_string(), response.to_string()));
    }

    /// Lets held and later requests through.
    pub fn release(&self) {
        self.state.lock().hold = None;
        self.state.changed.notify_all();
    }

    /// The request lines seen so far, without the HTTP version.
    pub fn requests(&self) -> Vec<String> {
        self.state
            .lock()
            .seen
            .iter()
            .map(|l| {
                l.rsplit_once(' ')
                    .map_or(l.as_str(), |(r, _)| r)
                    .to_string()
            })
            .collect()
    }

    /// Waits until `n` requests were seen (held ones included).
    pub fn wait_for_requests(&self, n: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut inner = self.state.lock();
        while inner.seen.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the proxy saw {} requests, not {n}, within {limit:?}: {:?}",
                inner.seen.len(),
                inner.seen
            );
            inner = self
                .state
                .changed
                .wait_timeout(inner, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// One client connection: request heads (and bodies, by Content-Length) go up
/// one by one, each recorded and perhaps held; answers stream back untouched.
fn serve(mut client: TcpStream, upstream: &str, state: &State) {
    let Ok(mut up) = TcpStream::connect(upstream) else {
        return;
    };
    let (Ok(mut back_from), Ok(mut back_to)) = (up.try_clone(), client.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut back_from, &mut back_to);
        let _ = back_to.shutdown(Shutdown::Both);
    });
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        while let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let body = content_length(&head);
            while buf.len() < end + 4 + body {
                match client.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let line = head.lines().next().unwrap_or_default().to_string();
            if let Some(response) = admit(state, line) {
                let _ = client.write_all(response.as_bytes());
                let _ = client.shutdown(Shutdown::Both);
                let _ = up.shutdown(Shutdown::Both);
                return;
            }
            if up.write_all(&buf[..end + 4 + body]).is_err() {
                return;
            }
            buf.drain(..end + 4 + body);
        }
        match client.read(&mut chunk) {
            Ok(0) | Err(_) => {
                let _ = up.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Records `line`, then waits while it is held; returns the canned answer for
/// it, if any.
fn admit(state: &State, line: String) -> Option<String> {
    let mut inner = state.lock();
    inner.seen.push(line.clone());
    state.changed.notify_all();
    while inner.hold.as_deref().is_some_and(|h| line.contains(h)) {
        inner = state.changed.wait(inner).unwrap_or_else(|e| e.into_inner());
    }
    inner
        .answer
        .as_ref()
        .filter(|(text, _)| line.contains(text.as_str()))
        .map(|(_, response)| response.clone())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn content_length(head: &str) -> usize {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}
