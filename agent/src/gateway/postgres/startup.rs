//! The client's first packet: SSLRequest, GSSENCRequest, CancelRequest or a
//! StartupMessage, validated before anything is sent upstream.

use std::io::Read;

use super::wire::{cstr, FrameError};

/// PostgreSQL's own bound on a startup packet.
const MAX_STARTUP: i64 = 10_000;
const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;
const CANCEL_REQUEST: u32 = 80_877_102;

/// What the client opened with.
#[derive(Debug, PartialEq, Eq)]
pub enum Opening {
    /// SSLRequest: answered 'N', then the client sends its startup.
    Ssl,
    /// GSSENCRequest: answered 'N' as well.
    GssEnc,
    /// CancelRequest with the key the gateway gave.
    Cancel {
        /// BackendKeyData process id.
        pid: i32,
        /// BackendKeyData secret key.
        key: i32,
    },
    /// StartupMessage.
    Startup(Startup),
}

/// A StartupMessage's content.
#[derive(Debug, PartialEq, Eq)]
pub struct Startup {
    /// The minor protocol version asked for (3.x); the gateway speaks 3.0.
    pub minor: u16,
    /// The parameters in order (`user`, `database`, `application_name`…),
    /// protocol options (`_pq_.*`) left out.
    pub params: Vec<(String, String)>,
    /// The protocol options asked for, none of which the gateway supports.
    pub options: Vec<String>,
}

impl Startup {
    /// Parameter `name`'s value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why the opening packet is unusable.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The connection failed or ended.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A request code or protocol version the gateway does not know.
    #[error("unsupported frontend protocol {major}.{minor}")]
    Version {
        /// Major version (or the high half of a request code).
        major: u16,
        /// Minor version.
        minor: u16,
    },
    /// The body is not what its code says.
    #[error("malformed startup packet: {0}")]
    Malformed(&'static str),
}

/// Reads and parses the opening packet.
pub fn read_opening(r: &mut impl Read) -> Result<Opening, StartupError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).map_err(FrameError::Io)?;
    let len = i32::from_be_bytes(len) as i64;
    if !(8..=MAX_STARTUP).contains(&len) {
        return Err(FrameError::Length(len).into());
    }
    let mut body = vec![0u8; len as usize - 4];
    r.read_exact(&mut body).map_err(FrameError::Io)?;
    parse(&body)
}

fn parse(body: &[u8]) -> Result<Opening, StartupError> {
    let code = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    let rest = &body[4..];
    match code {
        SSL_REQUEST if rest.is_empty() => Ok(Opening::Ssl),
        GSSENC_REQUEST if rest.is_empty() => Ok(Opening::GssEnc),
        CANCEL_REQUEST if rest.len() == 8 => Ok(Opening::Cancel {
            pid: i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]),
            key: i32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]),
        }),
        SSL_REQUEST | GSSENC_REQUEST | CANCEL_REQUEST => {
            Err(StartupError::Malformed("request of the wrong length"))
        }
        _ if code >> 16 == 3 => startup(code as u16, rest).map(Opening::Startup),
        _ => Err(StartupError::Version {
            major: (code >> 16) as u16,
            minor: code as u16,
        }),
    }
}

fn startup(minor: u16, mut rest: &[u8]) -> Result<Startup, StartupError> {
    let text = |b: &[u8]| {
        String::from_utf8(b.to_vec())
            .map_err(|_| StartupError::Malformed("a parameter is not UTF-8"))
    };
    let mut params = Vec::new();
    let mut options = Vec::new();
    loop {
        let (name, after) =
            cstr(rest).ok_or(StartupError::Malformed("unterminated parameter name"))?;
        if name.is_empty() {
            if !after.is_empty() {
                return Err(StartupError::Malformed("bytes after the parameters"));
            }
            break;
        }
        let (value, after) =
            cstr(after).ok_or(StartupError::Malformed("unterminated parameter value"))?;
        let name = text(name)?;
        if name.starts_with("_pq_.") {
            options.push(name);
        } else {
            params.push((name, text(value)?));
        }
        rest = after;
    }
    let s = Startup {
        minor,
        params,
        options,
    };
    match s.get("user") {
        Some(u) if !u.is_empty() => Ok(s),
        _ => Err(StartupError::Malformed("no user parameter")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(code: u32, rest: &[u8]) -> Vec<u8> {
        let mut p = ((rest.len() + 8) as i32).to_be_bytes().to_vec();
        p.extend_from_slice(&code.to_be_bytes());
        p.extend_from_slice(rest);
        p
    }

    fn read(p: &[u8]) -> Result<Opening, StartupError> {
        read_opening(&mut &p[..])
    }

    #[test]
    fn openings_are_recognised() {
        assert_eq!(read(&packet(SSL_REQUEST, b"")).unwrap(), Opening::Ssl);
        assert_eq!(read(&packet(GSSENC_REQUEST, b"")).unwrap(), Opening::GssEnc);
        let mut key = 7i32.to_be_bytes().to_vec();
        key.extend_from_slice(&(-9i32).to_be_bytes());
        assert_eq!(
            read(&packet(CANCEL_REQUEST, &key)).unwrap(),
            Opening::Cancel { pid: 7, key: -9 }
        );
        let Opening::Startup(s) =
            read(&packet(196_610, b"user\0app\0database\0db\0_pq_.x\0y\0\0")).unwrap()
        else {
            panic!("not a startup")
        };
        assert_eq!(
            (s.minor, s.get("user"), s.get("database")),
            (2, Some("app"), Some("db"))
        );
        assert_eq!(s.options, ["_pq_.x"]);
    }

    #[test]
    fn garbage_is_refused() {
        assert!(read(b"GET / HTTP/1.1\r\n\r\n").is_err());
        assert!(read(&packet(196_608, b"user\0app\0")).is_err());
        assert!(read(&packet(196_608, b"database\0x\0\0")).is_err());
        assert!(read(&packet(196_608, b"user\0app\0\0junk")).is_err());
        assert!(read(&packet(CANCEL_REQUEST, b"1234")).is_err());
        assert!(matches!(
            read(&packet(0x0002_0000, b"")),
            Err(StartupError::Version { major: 2, .. })
        ));
        assert!(read(&[0, 0, 0, 4]).is_err());
        assert!(read(&[0x7f, 0, 0, 0]).is_err());
    }
}
