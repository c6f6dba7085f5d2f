//! The vault gateway's own rules on top of the HTTP forwarding: which API
//! paths the workload may use (`policy`), and the leases it obtained through
//! the gateway, renewed while it runs and revoked at stop (`leases`).

pub mod keeper;
pub mod leases;
pub mod policy;

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, InvalidHeaderValue};
use hyper::{Response, StatusCode};

use super::http::upstream::Body;
use crate::vault::Token;

/// A Vault-shaped error answer: `{"errors":[message]}`.
pub fn error(status: StatusCode, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "errors": [message] }).to_string();
    let mut r = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// The `X-Vault-Token` header added to each request: made once per token the
/// agent holds (a new one after each login), not once per request. The
/// previous one is freed, so zeroed (the zero-on-free allocator), once the
/// last request that used it is done.
#[derive(Debug, Default)]
pub struct TokenHeader {
    made: ArcSwapOption<Made>,
}

/// A header and the token it was made from. `Debug` shows neither: the value
/// is marked sensitive, and [`Token`]'s `Debug` hides it.
#[derive(Debug)]
struct Made {
    from: Arc<Token>,
    value: HeaderValue,
}

impl TokenHeader {
    /// The header for `token`, the one the credentials hold now. The header
    /// made before is reused while it is the same token (the same `Arc`: the
    /// cache keeps it alive, so a new token never shares its address).
    pub fn of(&self, token: &Arc<Token>) -> Result<HeaderValue, InvalidHeaderValue> {
        if let Some(made) = &*self.made.load() {
            if Arc::ptr_eq(&made.from, token) {
                return Ok(made.value.clone());
            }
        }
        let mut value = HeaderValue::from_str(&token.0)?;
        value.set_sensitive(true);
        self.made.store(Some(Arc::new(Made {
            from: token.clone(),
            value: value.clone(),
        })));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn token(s: &str) -> Arc<Token> {
        Arc::new(Token(Zeroizing::new(s.to_string())))
    }

    #[test]
    fn the_header_is_made_once_per_token() {
        let h = TokenHeader::default();
        let first = token("hvs.first-token-value");
        let a = h.of(&first).unwrap();
        assert_eq!(a, "hvs.first-token-value");
        assert!(a.is_sensitive());
        // The same bytes, not a copy: made once.
        let b = h.of(&first).unwrap();
        assert_eq!(a.as_bytes().as_ptr(), b.as_bytes().as_ptr());
        // A new login's token (even with the same text) gets its own header.
        let second = token("hvs.second-token-value");
        let c = h.of(&second).unwrap();
        assert_eq!(c, "hvs.second-token-value");
        assert_ne!(c.as_bytes().as_ptr(), a.as_bytes().as_ptr());
        let again = token("hvs.second-token-value");
        assert_ne!(
            h.of(&again).unwrap().as_bytes().as_ptr(),
            c.as_bytes().as_ptr()
        );
        let shown = format!("{h:?}");
        assert!(!shown.contains("token-value"), "{shown}");
    }

    #[test]
    fn a_token_that_is_no_header_value_is_an_error() {
        let h = TokenHeader::default();
        assert!(h.of(&token("bad\ntoken")).is_err());
        assert!(h.of(&token("good")).is_ok());
    }
}
