//! Framing of the PostgreSQL wire protocol (v3): reading one message, and the
//! few server messages the gateway writes itself. The client-side codecs and
//! the SCRAM client come from `postgres-protocol`.

use std::io::{self, Read};

/// SQLSTATE: the connection to the server failed.
pub const CONNECTION_FAILURE: &str = "08006";
/// SQLSTATE: the client broke the protocol.
pub const PROTOCOL_VIOLATION: &str = "08P01";
/// SQLSTATE: wrong password.
pub const INVALID_PASSWORD: &str = "28P01";

/// One message: its type byte and its body (without the length).
#[derive(Debug)]
pub struct Frame {
    /// The type byte.
    pub tag: u8,
    /// The body.
    pub body: Vec<u8>,
}

impl Frame {
    /// The message as sent on the wire.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 5);
        out.push(self.tag);
        out.extend_from_slice(&(self.body.len() as i32 + 4).to_be_bytes());
        out.extend_from_slice(&self.body);
        out
    }
}

/// Why a message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The connection failed or ended.
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    /// The length field is impossible or over the limit for this phase.
    #[error("message length {0} is out of bounds")]
    Length(i64),
}

/// Reads one tagged message whose body is at most `max` bytes.
pub fn read_frame(r: &mut impl Read, max: usize) -> Result<Frame, FrameError> {
    let mut head = [0u8; 5];
    r.read_exact(&mut head)?;
    let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]) as i64;
    if len < 4 || (len - 4) as usize > max {
        return Err(FrameError::Length(len));
    }
    let mut body = vec![0u8; (len - 4) as usize];
    r.read_exact(&mut body)?;
    Ok(Frame { tag: head[0], body })
}

/// `AuthenticationRequest` with `code` (0 ok, 3 cleartext password).
pub fn authentication(code: i32) -> Vec<u8> {
    Frame {
        tag: b'R',
        body: code.to_be_bytes().to_vec(),
    }
    .to_wire()
}

/// `BackendKeyData`.
pub fn backend_key_data(pid: i32, key: i32) -> Vec<u8> {
    let mut body = pid.to_be_bytes().to_vec();
    body.extend_from_slice(&key.to_be_bytes());
    Frame { tag: b'K', body }.to_wire()
}

/// `NegotiateProtocolVersion`: only 3.0, and none of `options`.
pub fn negotiate_protocol_version(options: &[String]) -> Vec<u8> {
    let mut body = 0i32.to_be_bytes().to_vec();
    body.extend_from_slice(&(options.len() as i32).to_be_bytes());
    for o in options {
        body.extend_from_slice(o.as_bytes());
        body.push(0);
    }
    Frame { tag: b'v', body }.to_wire()
}

/// A FATAL `ErrorResponse` with `sqlstate` and `message` (which must hold no
/// credential).
pub fn fatal(sqlstate: &str, message: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(message.len() + 32);
    for (field, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', sqlstate),
        (b'M', message),
    ] {
        body.push(field);
        body.extend(value.bytes().filter(|&b| b != 0));
        body.push(0);
    }
    body.push(0);
    Frame { tag: b'E', body }.to_wire()
}

/// What a client is shown instead of the gateway's role name.
pub const ROLE_PLACEHOLDER: &str = "<gateway role>";

/// An ErrorResponse or NoticeResponse with `role` replaced by
/// [`ROLE_PLACEHOLDER`] in every field (a malformed tail is dropped).
pub fn without_role(frame: &Frame, role: &str) -> Frame {
    let mut body = Vec::with_capacity(frame.body.len());
    let mut rest = frame.body.as_slice();
    while let Some((&kind, after)) = rest.split_first() {
        let Some((value, tail)) = cstr(after).filter(|_| kind != 0) else {
            break;
        };
        body.push(kind);
        let mut from = 0;
        if !role.is_empty() {
            for at in memchr::memmem::find_iter(value, role.as_bytes()) {
                body.extend_from_slice(&value[from..at]);
                body.extend_from_slice(ROLE_PLACEHOLDER.as_bytes());
                from = at + role.len();
            }
        }
        body.extend_from_slice(&value[from..]);
        body.push(0);
        rest = tail;
    }
    body.push(0);
    Frame {
        tag: frame.tag,
        body,
    }
}

/// A NUL-terminated string at the start of `bytes`, and the rest after it.
pub fn cstr(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = bytes.iter().position(|&b| b == 0)?;
    Some((&bytes[..end], &bytes[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_lengths_are_bounded() {
        let wire = fatal("28P01", "no\0pe");
        let f = read_frame(&mut wire.as_slice(), 1024).unwrap();
        assert_eq!(f.tag, b'E');
        assert_eq!(f.to_wire(), wire);
        assert!(contains(&f.body, b"C28P01\0"));
        assert!(contains(&f.body, b"Mnope\0"));
        let mut huge = vec![b'p'];
        huge.extend_from_slice(&100_000i32.to_be_bytes());
        assert!(matches!(
            read_frame(&mut huge.as_slice(), 1024),
            Err(FrameError::Length(100_000))
        ));
        let mut neg = vec![b'p'];
        neg.extend_from_slice(&(-5i32).to_be_bytes());
        assert!(matches!(
            read_frame(&mut neg.as_slice(), 1024),
            Err(FrameError::Length(-5))
        ));
    }

    #[test]
    fn the_role_is_replaced_in_every_field_of_an_error() {
        let role = "v-token-ro-abc";
        let mut body = Vec::new();
        for (kind, value) in [
            (b'S', "FATAL".to_string()),
            (b'C', "28000".to_string()),
            (b'M', format!("role \"{role}\" is not permitted to log in")),
            (b'D', format!("{role} and {role}")),
        ] {
            body.push(kind);
            body.extend_from_slice(value.as_bytes());
            body.push(0);
        }
        body.push(0);
        let f = without_role(&Frame { tag: b'E', body }, role);
        assert_eq!(f.tag, b'E');
        assert!(!contains(&f.body, role.as_bytes()));
        assert!(contains(
            &f.body,
            b"Mrole \"<gateway role>\" is not permitted to log in\0"
        ));
        assert!(contains(&f.body, b"D<gateway role> and <gateway role>\0"));
        assert!(contains(&f.body, b"C28000\0"));
        assert_eq!(f.body.last(), Some(&0));
        let wire = f.to_wire();
        let again = read_frame(&mut wire.as_slice(), 1024).unwrap();
        assert_eq!(again.body, f.body, "the length is right");
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }
}
