//! Hostile registries for tests, on 127.0.0.1: a scripted HTTP/1.1 server
//! ([`Stub`]: each request answered by a closure of its path, every request and
//! its `Authorization` header recorded), a listener that writes bytes no TLS
//! client can read ([`Stub::garbage`]), and a black hole ([`BlackHole`]) that
//! accepts connections and never answers, counting how many are open at once.
//! Every listener stops (and closes what it holds) on drop.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One request a [`Stub`] answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// `GET /v2/... ` without the HTTP version.
    pub line: String,
    /// The `Authorization` header, if sent.
    pub authorization: Option<String>,
}

/// An HTTP answer: status, extra headers, body.
pub fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} Stub\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    out.into_bytes()
}

/// Accepts connections on 127.0.0.1 and hands each to a handler thread until dropped.
#[derive(Debug)]
struct Listener {
    addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Listener {
    fn start(handle: impl Fn(TcpStream) + Send + Sync + 'static) -> Listener {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = stopping.clone();
        let handle = Arc::new(handle);
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(conn) = conn {
                    let h = handle.clone();
                    std::thread::spawn(move || h(conn));
                }
            }
        });
        Listener {
            addr,
            stopping,
            accept: Some(accept),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then ends and drops the listener.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// A scripted HTTP server.
#[derive(Debug)]
pub struct Stub {
    /// `127.0.0.1:<port>`.
    pub host: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<Mutex<usize>>,
    _listener: Listener,
}

impl Stub {
    /// Answers each request with `answer(path)` (a whole HTTP response).
    pub fn start(answer: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> Stub {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let (s, c) = (seen.clone(), connections.clone());
        let listener = Listener::start(move |conn| {
            *c.lock().unwrap() += 1;
            serve(conn, &answer, &s);
        });
        Stub {
            host: listener.addr.to_string(),
            seen,
            connections,
            _listener: listener,
        }
    }

    /// A TCP service that is not TLS: writes `bytes` to each connection and closes it.
    pub fn garbage(bytes: &'static [u8]) -> Stub {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let c = connections.clone();
        let listener = Listener::start(move |mut conn| {
            *c.lock().unwrap() += 1;
            let _ = conn.write_all(bytes);
            let _ = conn.shutdown(Shutdown::Write);
            let _ = conn.read(&mut [0u8; 4096]);
        });
        Stub {
            host: listener.addr.to_string(),
            seen,
            connections,
            _listener: listener,
        }
    }

    /// The requests answered so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Connections accepted so far (TLS or not, whether a request came or not).
    pub fn connections(&self) -> usize {
        *self.connections.lock().unwrap()
    }
}

/// One request per connection: the request head is read, recorded and answered.
fn serve(conn: TcpStream, answer: &dyn Fn(&str) -> Vec<u8>, seen: &Mutex<Vec<Seen>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut authorization = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("authorization") {
                authorization = Some(v.trim().to_string());
            }
        }
    }
    let line = line.trim_end();
    let line = line.rsplit_once(' ').map_or(line, |(r, _)| r).to_string();
    let path = line.split(' ').nth(1).unwrap_or_default().to_string();
    seen.lock().unwrap().push(Seen {
        line,
        authorization,
    });
    let mut conn = conn;
    let _ = conn.write_all(&answer(&path));
    let _ = conn.shutdown(Shutdown::Write);
}

/// Accepts connections and never answers; holds each until its client closes it.
/// Closed connections are noticed on every accept and every count, so "open at
/// once" does not depend on how soon a reader thread would have run.
#[derive(Debug)]
pub struct BlackHole {
    /// `127.0.0.1:<port>`.
    pub host: String,
    state: Arc<Counts>,
    _listener: Listener,
}

#[derive(Debug, Default)]
struct Counts {
    inner: Mutex<Open>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Open {
    accepted: usize,
    most_open: usize,
    /// The connections held (non-blocking), until their client closes them.
    held: Vec<TcpStream>,
}

impl Open {
    /// Drops the connections whose client has closed them (what they sent is discarded).
    fn sweep(&mut self) {
        let mut buf = [0u8; 4096];
        self.held.retain_mut(|c| loop {
            match c.read(&mut buf) {
                Ok(0) => return false,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        });
    }
}

impl Counts {
    fn lock(&self) -> MutexGuard<'_, Open> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl BlackHole {
    /// A black hole on a free port.
    pub fn start() -> BlackHole {
        Self::counting_into(Arc::default())
    }

    /// Another black hole whose counts are this one's (connections open at once
    /// across both, accepted by both).
    pub fn another(&self) -> BlackHole {
        Self::counting_into(self.state.clone())
    }

    fn counting_into(state: Arc<Counts>) -> BlackHole {
        let s = state.clone();
        let listener = Listener::start(move |conn| {
            let _ = conn.set_nonblocking(true);
            let mut o = s.lock();
            o.sweep();
            o.accepted += 1;
            o.held.push(conn);
            o.most_open = o.most_open.max(o.held.len());
            s.changed.notify_all();
        });
        BlackHole {
            host: listener.addr.to_string(),
            state,
            _listener: listener,
        }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.state.lock().accepted
    }

    /// The most connections open at once so far.
    pub fn most_open(&self) -> usize {
        self.state.lock().most_open
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        let mut o = self.state.lock();
        o.sweep();
        o.held.len()
    }

    /// Waits until `n` connections were accepted.
    pub fn wait_for_accepted(&self, n: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut o = self.state.lock();
        while o.accepted < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the black hole accepted {} connections, not {n}, within {limit:?}",
                o.accepted
            );
            o = self
                .state
                .changed
                .wait_timeout(o, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        for c in self.state.lock().held.drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}
