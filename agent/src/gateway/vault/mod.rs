//! The vault gateway's own rules on top of the HTTP forwarding: which API
//! paths the workload may use (`policy`), and the leases it obtained through
//! the gateway, renewed while it runs and revoked at stop (`leases`).

pub mod keeper;
pub mod leases;
pub mod policy;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Response, StatusCode};

use super::http::upstream::Body;

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
