//! Where the registry client may connect. The pod author chooses the image name,
//! so the first hop; a registry they run chooses the rest (redirects, token
//! realms). Every hop passes the same checks: `https://` (plain `http://` only to
//! a `registry.plain_http` host), no userinfo, a host `registry.allowed` admits,
//! and — checked on the addresses actually connected to, in the HTTP client's
//! resolver ([`super::resolve`]), so a name cannot resolve one way for the check
//! and another for the connection — no internal address for a host that is not
//! listed by name.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

/// The pattern that admits any public host (the default).
pub const ANY_PUBLIC: &str = "*";

/// Why a hop is refused. Shown in the webhook's log only, never to the pod
/// author; URLs are shown without path or query (blob URLs carry signatures).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Neither `https://` nor plain HTTP to a `registry.plain_http` host.
    #[error(
        "{origin}: only https:// is spoken (plain http:// only to a registry.plain_http host)"
    )]
    Scheme {
        /// The URL's origin.
        origin: String,
    },
    /// `user:password@` in the URL (it would name another host than it seems to).
    #[error("{origin}: a URL with userinfo is refused")]
    Userinfo {
        /// The URL's origin.
        origin: String,
    },
    /// A URL without a host.
    #[error("{origin}: no host")]
    NoHost {
        /// The URL's origin.
        origin: String,
    },
    /// The host (and port) is not admitted by `registry.allowed`.
    #[error("{authority} is not admitted by registry.allowed")]
    NotListed {
        /// `host:port`.
        authority: String,
    },
    /// A host not listed by name resolves to a loopback, private or link-local address.
    #[error("{authority} resolves to the internal address {addr}, and registry.allowed does not list it")]
    Internal {
        /// `host:port`.
        authority: String,
        /// The address.
        addr: IpAddr,
    },
}

/// A host pattern of `registry.allowed`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pattern {
    host: HostMatch,
    /// `None`: the scheme's default port (443, or 80 for plain HTTP).
    port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostMatch {
    /// This host exactly (a name, or an IP literal).
    Exact(Host<String>),
    /// Any name below this one (`*.example.com`: `a.example.com`, `b.a.example.com`).
    Below(String),
}

/// `registry.allowed` and `registry.plain_http`, parsed.
#[derive(Clone, Debug, Default)]
pub struct HostPolicy {
    any_public: bool,
    patterns: Vec<Pattern>,
    plain_http: Vec<(Host<String>, u16)>,
}

impl HostPolicy {
    /// Parses the patterns; the error names the entry and why it is wrong.
    pub fn new(allowed: &[String], plain_http: &[String]) -> Result<HostPolicy, String> {
        let mut policy = HostPolicy::default();
        for entry in allowed {
            if entry == ANY_PUBLIC {
                policy.any_public = true;
                continue;
            }
            let (host, port) = split_authority(entry).map_err(|r| format!("`{entry}`: {r}"))?;
            let host = match host.strip_prefix("*.") {
                Some(below) => match Host::parse(below) {
                    Ok(Host::Domain(d)) if !d.is_empty() => HostMatch::Below(d),
                    _ => return Err(format!("`{entry}`: `*.` must be followed by a DNS name")),
                },
                None if host.contains('*') => {
                    return Err(format!(
                        "`{entry}`: a wildcard is only allowed as a leading `*.` (or `*` alone: any public host)"
                    ))
                }
                None => HostMatch::Exact(
                    Host::parse(host).map_err(|e| format!("`{entry}`: not a host: {e}"))?,
                ),
            };
            policy.patterns.push(Pattern { host, port });
        }
        for entry in plain_http {
            let (host, port) = split_authority(entry).map_err(|r| format!("`{entry}`: {r}"))?;
            let host = Host::parse(host).map_err(|e| format!("`{entry}`: not a host: {e}"))?;
            policy.plain_http.push((host, port.unwrap_or(80)));
        }
        Ok(policy)
    }

    /// Whether `url` may be asked: scheme, userinfo and host.
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        let origin = url.origin().ascii_serialization();
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refused::Userinfo { origin });
        }
        let Some(host) = url.host().map(|h| h.to_owned()) else {
            return Err(Refused::NoHost { origin });
        };
        let Some(port) = url.port_or_known_default() else {
            return Err(Refused::Scheme { origin });
        };
        let plain = self
            .plain_http
            .iter()
            .any(|(h, p)| *h == host && *p == port);
        match url.scheme() {
            "https" => {}
            "http" if plain => {}
            _ => return Err(Refused::Scheme { origin }),
        }
        let default_port = if url.scheme() == "http" { 80 } else { 443 };
        if plain
            || self.listed(&host, Some((port, default_port)))
            || (self.any_public && is_public_host(&host))
        {
            Ok(())
        } else {
            Err(Refused::NotListed {
                authority: format!("{host}:{port}"),
            })
        }
    }

    /// Whether the addresses `netloc` (`host:port`) resolved to may be
    /// connected to: a host listed by name (in `registry.allowed` other than
    /// `*`, or in `registry.plain_http`) may be anywhere; any other only on
    /// public addresses.
    pub fn check_addrs(&self, netloc: &str, addrs: &[SocketAddr]) -> Result<(), Refused> {
        let listed = split_authority(netloc)
            .ok()
            .and_then(|(h, _)| Host::parse(h).ok())
            .is_some_and(|h| self.listed(&h, None) || self.plain_http.iter().any(|(p, _)| *p == h));
        if listed {
            return Ok(());
        }
        match addrs.iter().find(|a| is_internal(a.ip())) {
            Some(a) => Err(Refused::Internal {
                authority: netloc.to_string(),
                addr: a.ip(),
            }),
            None => Ok(()),
        }
    }

    /// Whether a pattern other than `*` admits `host`; on `port` (with the
    /// scheme's default port) when given, else on any port.
    fn listed(&self, host: &Host<String>, port: Option<(u16, u16)>) -> bool {
        self.patterns.iter().any(|p| {
            let host_ok = match (&p.host, host) {
                (HostMatch::Exact(h), host) => h == host,
                (HostMatch::Below(d), Host::Domain(name)) => name
                    .strip_suffix(d.as_str())
                    .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
                (HostMatch::Below(_), _) => false,
            };
            host_ok && port.is_none_or(|(port, default)| p.port.unwrap_or(default) == port)
        })
    }
}

/// `host[:port]`, IPv6 in brackets.
fn split_authority(s: &str) -> Result<(&str, Option<u16>), &'static str> {
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']').ok_or("an IPv6 address needs its closing `]`")?;
        let rest = &s[end + 1..];
        match rest.strip_prefix(':') {
            Some(p) => (&s[..=end], Some(p)),
            None if rest.is_empty() => (&s[..=end], None),
            None => return Err("only `:port` may follow `]`"),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() || host.contains(['/', '@', '?', '#']) {
        return Err("must be `host` or `host:port`");
    }
    let port = match port {
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| "the port is not a number 1-65535")?,
        ),
        None => None,
    };
    if port == Some(0) {
        return Err("the port is not a number 1-65535");
    }
    Ok((host, port))
}

/// A name (other than `localhost`) or a public address.
fn is_public_host(host: &Host<String>) -> bool {
    match host {
        Host::Domain(d) => {
            let d = d.trim_end_matches('.');
            !(d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost"))
        }
        Host::Ipv4(ip) => !is_internal(IpAddr::V4(*ip)),
        Host::Ipv6(ip) => !is_internal(IpAddr::V6(*ip)),
    }
}

/// Loopback, private, link-local, shared (CGNAT), unspecified, broadcast,
/// multicast, reserved and documentation ranges, IPv4 embedded in IPv6 included.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_internal_v4(v4);
    }
    // IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::/96) carry an IPv4 address.
    let embedded = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..6] == [0; 6] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return ip.is_loopback() || ip.is_unspecified() || is_internal_v4(embedded);
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        || (s[0] == 0x2001 && s[1] == 0x0db8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&str], plain: &[&str]) -> HostPolicy {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        HostPolicy::new(&v(allowed), &v(plain)).unwrap()
    }

    fn ok(p: &HostPolicy, url: &str) -> bool {
        p.check_url(&Url::parse(url).unwrap()).is_ok()
    }

    #[test]
    fn the_default_admits_public_names_and_addresses_only() {
        let p = policy(&["*"], &[]);
        for u in [
            "https://ghcr.io/v2/",
            "https://registry-1.docker.io:8443/v2/",
            "https://8.8.8.8/v2/",
            "https://[2606:4700::1]/x",
        ] {
            assert!(ok(&p, u), "{u}");
        }
        for u in [
            "https://127.0.0.1:5000/v2/",
            "https://10.0.0.5/v2/",
            "https://169.254.169.254/latest/",
            "https://[::1]/",
            "https://[fd00::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://localhost/",
            "https://a.localhost/",
            "http://ghcr.io/v2/",
            "ftp://ghcr.io/",
            "https://user@ghcr.io/",
            "https://ghcr.io:1@127.0.0.1/",
        ] {
            assert!(!ok(&p, u), "{u}");
        }
    }

    #[test]
    fn listed_hosts_ports_and_wildcards() {
        let p = policy(
            &[
                "127.0.0.1:5000",
                "*.corp.example",
                "registry.local:5000",
                "[::1]:7000",
            ],
            &["127.0.0.1:5001"],
        );
        assert!(ok(&p, "https://127.0.0.1:5000/v2/"));
        assert!(!ok(&p, "https://127.0.0.1:5002/v2/"), "another port");
        assert!(
            !ok(&p, "http://127.0.0.1:5000/v2/"),
            "plain HTTP not listed"
        );
        assert!(
            ok(&p, "http://127.0.0.1:5001/v2/"),
            "plain_http counts as listed"
        );
        assert!(ok(&p, "https://a.corp.example/v2/"));
        assert!(ok(&p, "https://b.a.corp.example/v2/"));
        assert!(!ok(&p, "https://corp.example/v2/"));
        assert!(!ok(&p, "https://evilcorp.example/v2/"));
        assert!(
            !ok(&p, "https://a.corp.example:8443/v2/"),
            "no port: 443 only"
        );
        assert!(ok(&p, "https://REGISTRY.local:5000/v2/"));
        assert!(ok(&p, "https://[::1]:7000/v2/"));
        assert!(
            !ok(&p, "https://ghcr.io/v2/"),
            "no `*`: public hosts are not admitted"
        );
    }

    #[test]
    fn resolved_addresses_of_unlisted_names_must_be_public() {
        let p = policy(&["*", "*.corp.example"], &["127.0.0.1:5001"]);
        let a = |s: &str| vec![s.parse::<SocketAddr>().unwrap()];
        assert!(p.check_addrs("ghcr.io:443", &a("140.82.1.1:443")).is_ok());
        for internal in [
            "127.0.0.1:443",
            "10.1.2.3:443",
            "169.254.169.254:443",
            "[::1]:443",
            "[fc00::1]:443",
        ] {
            assert!(
                matches!(
                    p.check_addrs("rebind.example:443", &a(internal)),
                    Err(Refused::Internal { .. })
                ),
                "{internal}"
            );
        }
        assert!(p
            .check_addrs("r.corp.example:443", &a("10.1.2.3:443"))
            .is_ok());
        assert!(p
            .check_addrs("127.0.0.1:5001", &a("127.0.0.1:5001"))
            .is_ok());
    }

    #[test]
    fn bad_patterns_are_named() {
        for bad in ["a*.example.com", "host:port", "[::1", "*.", "a/b", "host:0"] {
            let e = HostPolicy::new(&[bad.to_string()], &[]).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }
}
