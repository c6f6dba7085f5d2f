//! The HTTP client's name resolution: each name is resolved once, by the
//! request's deadline, and exactly the addresses [`HostPolicy::check_addrs`]
//! accepts are handed to the connection (no second lookup a rebinding name
//! server could answer differently).

use std::cell::Cell;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::sync::mpsc;
use std::time::Instant;

use super::allow::{HostPolicy, Refused};

thread_local! {
    /// The deadline of the request this thread is making ([`DnsDeadline`]).
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Name resolution on this thread bounded by a deadline while this lives:
/// ureq puts no bound on DNS, and the pod author may own a slow name server.
#[derive(Debug)]
pub struct DnsDeadline(Option<Instant>);

impl DnsDeadline {
    /// Bounds the lookups of the requests this thread makes until dropped.
    pub fn set(deadline: Instant) -> DnsDeadline {
        DnsDeadline(DEADLINE.replace(Some(deadline)))
    }
}

impl Drop for DnsDeadline {
    fn drop(&mut self) {
        DEADLINE.set(self.0);
    }
}

/// The HTTP client's name resolution: resolves once (by the request's
/// deadline), checks the addresses, and hands exactly those to the connection.
#[derive(Debug)]
pub struct GuardedResolver(pub std::sync::Arc<HostPolicy>);

impl ureq::Resolver for GuardedResolver {
    fn resolve(&self, netloc: &str) -> io::Result<Vec<SocketAddr>> {
        let addrs = match DEADLINE.get() {
            Some(deadline) => resolve_by(netloc, deadline)?,
            None => netloc.to_socket_addrs()?.collect(),
        };
        self.0
            .check_addrs(netloc, &addrs)
            .map_err(|r| io::Error::new(io::ErrorKind::PermissionDenied, r))?;
        Ok(addrs)
    }
}

/// `netloc`'s addresses, or an error once `deadline` has passed. The lookup
/// runs on its own thread, which a slow name server may keep a while longer
/// (bounded by the system resolver's own timeouts), but not the caller.
fn resolve_by(netloc: &str, deadline: Instant) -> io::Result<Vec<SocketAddr>> {
    if let Ok(addr) = netloc.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    let late = || {
        io::Error::new(
            io::ErrorKind::TimedOut,
            "name resolution did not finish by the admission's deadline",
        )
    };
    let left = deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(late)?;
    let (tx, rx) = mpsc::channel();
    let name = netloc.to_string();
    std::thread::Builder::new()
        .name("shroud-dns".into())
        .spawn(move || {
            let _ = tx.send(name.to_socket_addrs().map(Iterator::collect));
        })?;
    rx.recv_timeout(left).map_err(|_| late())?
}

/// The refusal inside a transport error of the guarded resolver, if that is
/// what it is.
pub fn refusal(t: &ureq::Transport) -> Option<Refused> {
    let source = std::error::Error::source(t)?;
    let io = source.downcast_ref::<io::Error>()?;
    io.get_ref()?.downcast_ref::<Refused>().cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_resolution_ends_by_the_deadline() {
        let past = Instant::now();
        let e = resolve_by("vm.invalid:443", past).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        // Addresses need no lookup, whatever the time.
        assert_eq!(
            resolve_by("127.0.0.1:5000", past).unwrap(),
            ["127.0.0.1:5000".parse::<SocketAddr>().unwrap()]
        );
        let later = Instant::now() + std::time::Duration::from_secs(30);
        assert!(resolve_by("localhost:80", later)
            .unwrap()
            .iter()
            .all(|a| a.ip().is_loopback()));
    }
}
