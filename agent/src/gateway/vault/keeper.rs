//! Keeps the leases obtained through a vault gateway: renews each when due
//! while the gateway runs, revokes them all when it stops (before the agent
//! revokes its token), each an audit record (`gateway_renew`,
//! `gateway_revoke`). Calls go to Vault with the agent's token, as the
//! agent's own renewals do.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use serde_json::{json, Value};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::events::{self, Event, Outcome, RevokeReason};
use crate::gateway::http::Context;

/// How often due leases are looked for.
const TICK: Duration = Duration::from_secs(1);

/// Renews due leases until `stop` turns true.
pub async fn renew(ctx: Arc<Context>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.changed() => return,
        }
        for (id, path, increment) in ctx.leases.due(Instant::now()) {
            let body = json!({ "lease_id": id, "increment": increment.as_secs() });
            let result = call(&ctx, "sys/leases/renew", &body).await;
            events::emit(Event::GatewayRenew {
                gateway: &ctx.name,
                path: &path,
                lease_id: &id,
                outcome: match &result {
                    Ok(_) => Outcome::Ok,
                    Err(e) => Outcome::Error(e.clone()),
                },
            });
            match result {
                Ok(v) => {
                    let d = v.get("lease_duration").and_then(Value::as_u64).unwrap_or(0);
                    info!(gateway = %ctx.name, lease = %id, duration = d, "renewed a lease obtained through the gateway");
                    ctx.leases
                        .renewed(&id, Duration::from_secs(d), Instant::now());
                }
                Err(e) => {
                    warn!(gateway = %ctx.name, lease = %id, error = %e, "cannot renew a lease obtained through the gateway");
                    ctx.leases.stop_renewing(&id);
                }
            }
        }
    }
}

/// Revokes every lease recorded (audited), then writes the state without them.
pub async fn revoke_all(ctx: &Context) {
    for (id, path) in ctx.leases.take_all() {
        let result = call(ctx, "sys/leases/revoke", &json!({ "lease_id": id })).await;
        events::emit(Event::GatewayRevoke {
            gateway: &ctx.name,
            path: &path,
            lease_id: &id,
            reason: RevokeReason::Shutdown,
            outcome: match &result {
                Ok(_) => Outcome::Ok,
                Err(e) => Outcome::Error(e.clone()),
            },
        });
        match result {
            Ok(_) => {
                info!(gateway = %ctx.name, lease = %id, "revoked a lease obtained through the gateway")
            }
            Err(e) => {
                error!(gateway = %ctx.name, lease = %id, error = %e, "cannot revoke a lease obtained through the gateway")
            }
        }
    }
    ctx.leases.save();
}

/// A PUT to Vault with the agent's token; the answer's JSON (Null when empty).
async fn call(ctx: &Context, path: &str, body: &Value) -> Result<Value, String> {
    let token = ctx
        .credentials
        .token()
        .ok_or("the agent holds no Vault token")?;
    let mut sender = ctx.upstream.connect().await.map_err(|e| e.to_string())?;
    let mut req = Request::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *req.method_mut() = Method::PUT;
    *req.uri_mut() = format!("{}/v1/{path}", ctx.upstream.url.base_path)
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| e.to_string())?;
    let h = req.headers_mut();
    h.insert(
        hyper::header::HOST,
        ctx.upstream
            .url
            .authority()
            .parse()
            .map_err(|_| "bad host")?,
    );
    let mut t = hyper::header::HeaderValue::from_str(&token.0).map_err(|_| "bad token")?;
    t.set_sensitive(true);
    h.insert("x-vault-token", t);
    if let Some(ns) = &ctx.namespace {
        h.insert(
            "x-vault-namespace",
            ns.parse().map_err(|_| "bad namespace")?,
        );
    }
    h.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    let answer = tokio::time::timeout(Duration::from_secs(10), sender.send_request(req))
        .await
        .map_err(|_| "Vault did not answer in time".to_string())?
        .map_err(|e| e.to_string())?;
    let status = answer.status();
    let bytes = answer
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if !status.is_success() {
        let errors = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("errors").map(Value::to_string))
            .unwrap_or_default();
        return Err(format!("{path}: {status} {errors}"));
    }
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}
