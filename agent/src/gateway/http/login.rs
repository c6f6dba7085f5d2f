//! Which forwarded requests are audit records `gateway_login`. Every request
//! carries the credential and is counted as an upstream login in the metrics;
//! the audit trail gets the first request with each credential on each
//! upstream connection, and each change of result there — what a postgres
//! gateway's login per connection is — not one record per request.

use std::sync::{Arc, Weak};

use hyper::StatusCode;

use super::Context;
use crate::events::{self, Event, Outcome};
use crate::gateway::stats::LoginResult;
use crate::gateway::Document;
use crate::vault::client::Token;

/// The credential a request carried.
#[derive(Debug, Clone)]
pub enum Used {
    /// Kind http: the secret's value the headers were rendered from.
    Document(Arc<Document>),
    /// Kind vault: the agent's token.
    Token(Arc<Token>),
}

impl Used {
    fn lease_id(&self) -> Option<&str> {
        match self {
            Used::Document(d) => d.lease_id.as_deref(),
            Used::Token(_) => None,
        }
    }

    /// Held weakly: a record must not keep a replaced value alive.
    fn seen(&self) -> Seen {
        match self {
            Used::Document(d) => Seen::Document(Arc::downgrade(d)),
            Used::Token(t) => Seen::Token(Arc::downgrade(t)),
        }
    }
}

/// A credential recorded (its allocation kept, so its address is not reused
/// by a newer value while compared).
#[derive(Debug)]
enum Seen {
    Document(Weak<Document>),
    Token(Weak<Token>),
}

impl Seen {
    fn is(&self, used: &Used) -> bool {
        match (self, used) {
            (Seen::Document(w), Used::Document(a)) => std::ptr::eq(w.as_ptr(), Arc::as_ptr(a)),
            (Seen::Token(w), Used::Token(a)) => std::ptr::eq(w.as_ptr(), Arc::as_ptr(a)),
            _ => false,
        }
    }
}

/// How a request went, as a login.
#[derive(Debug)]
pub enum Answered {
    /// The upstream answered with this status (401 and 403 refuse the
    /// credential).
    Status(StatusCode),
    /// It could not be reached, or failed (the error's text, no value).
    Failed(String),
}

impl Answered {
    fn result(&self) -> LoginResult {
        match self {
            Answered::Status(StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                LoginResult::Refused
            }
            Answered::Status(_) => LoginResult::Ok,
            Answered::Failed(_) => LoginResult::Error,
        }
    }

    fn outcome(&self) -> Outcome {
        match self {
            Answered::Status(s) if self.result() == LoginResult::Refused => {
                Outcome::Denied(format!("the upstream answered {s}"))
            }
            Answered::Status(_) => Outcome::Ok,
            Answered::Failed(why) => Outcome::Error(why.clone()),
        }
    }
}

/// One client connection's last audited login.
#[derive(Debug, Default)]
pub struct Logins {
    last: Option<(u64, Seen, LoginResult)>,
}

impl Logins {
    /// Counts a request with `used` on upstream connection number `upstream`
    /// (0: none could be opened) as a login, and audits it when it is the
    /// first of that credential there or its result changed.
    pub fn record(&mut self, ctx: &Context, upstream: u64, used: &Used, answered: &Answered) {
        let result = answered.result();
        ctx.counters.login(result);
        let known = self
            .last
            .as_ref()
            .is_some_and(|(n, seen, r)| *n == upstream && *r == result && seen.is(used));
        if known {
            return;
        }
        self.last = Some((upstream, used.seen(), result));
        events::emit(Event::GatewayLogin {
            gateway: &ctx.name,
            secret: &ctx.secret,
            lease_id: used.lease_id(),
            outcome: answered.outcome(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::api::SecretData;

    fn document(lease: &str) -> Used {
        Used::Document(Arc::new(Document {
            data: SecretData(serde_json::Map::new()),
            lease_id: Some(lease.into()),
        }))
    }

    #[test]
    fn a_credential_is_the_same_only_while_its_value_is() {
        let (a, b) = (document("l1"), document("l1"));
        let seen = a.seen();
        assert!(seen.is(&a) && !seen.is(&b));
        assert!(!seen.is(&Used::Token(Arc::new(Token(String::new().into())))));
        assert_eq!(a.lease_id(), Some("l1"));
    }

    #[test]
    fn refusals_are_denied_and_failures_errors() {
        let r = |a: Answered| (a.result(), a.outcome().label());
        assert_eq!(r(Answered::Status(StatusCode::OK)), (LoginResult::Ok, "ok"));
        assert_eq!(
            r(Answered::Status(StatusCode::NOT_FOUND)),
            (LoginResult::Ok, "ok")
        );
        assert_eq!(
            r(Answered::Status(StatusCode::FORBIDDEN)),
            (LoginResult::Refused, "denied")
        );
        assert_eq!(
            r(Answered::Failed("cannot connect".into())),
            (LoginResult::Error, "error")
        );
    }
}
