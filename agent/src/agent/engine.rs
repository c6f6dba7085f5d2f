//! The lease engine: log in, fetch and publish every secret, then keep the token
//! and leases alive (renew, rotate before max TTL, re-read kv2), retrying with
//! backoff while Vault is unreachable, until told to stop; then wipe and revoke.

use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::{error, info, warn};
use zeroize::Zeroizing;

use super::backoff::{renew_after, Backoff};
use super::files::{FilesError, Output};
use super::handshake::{entry_name, Publisher};
use super::render::{masked_values, render, RenderError, Rendered};
use crate::config::{Config, SecretKind, SecretSpec};
use crate::events::{self, Event, Outcome};
use crate::live::LiveSet;
use crate::vault::api::{self, LeaseInfo, SecretData};
use crate::vault::auth::{self, AuthError};
use crate::vault::pki;
use crate::vault::{VaultClient, VaultError};

/// What woke the engine up: a reason to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// SIGTERM, SIGINT (the number).
    Signal(i32),
    /// `.shroud/exited` appeared.
    ExitMarker,
    /// The wrapped command ended (run mode) with this exit code.
    ChildExited(i32),
}

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The output directory is unusable (not tmpfs, not writable).
    #[error(transparent)]
    Files(#[from] FilesError),
    /// Login failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Vault settings (TLS) are unusable.
    #[error(transparent)]
    Client(VaultError),
    /// A secret could not be read.
    #[error("secret `{secret}` ({path}): {source}")]
    Fetch {
        /// Secret name.
        secret: String,
        /// Configured path.
        path: String,
        /// The error.
        source: Box<VaultError>,
    },
    /// A secret could not be rendered.
    #[error(transparent)]
    Render(#[from] RenderError),
}

impl StartError {
    /// True for errors caused by the configuration (exit 64).
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            StartError::Files(FilesError::NotTmpfs { .. })
                | StartError::Render(_)
                | StartError::Client(_)
                | StartError::Auth(
                    AuthError::Credential { .. }
                        | AuthError::Empty { .. }
                        | AuthError::Identity { .. }
                )
        )
    }
}

/// What is due next for a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    /// Renew the lease.
    Renew,
    /// Fetch new credentials and publish them.
    Rotate,
    /// Re-read and publish when changed (kv2, unleased).
    Refresh,
}

/// What is published for a secret now.
struct Current {
    data: SecretData,
    lease: Option<LeaseInfo>,
    /// The lease's first TTL: a renewal shorter than this hit the max TTL.
    first_ttl: Duration,
    expires: Option<Instant>,
    rendered: Rendered,
}

/// A certificate this agent issued, revoked at exit while still valid.
struct IssuedCert {
    secret: usize,
    mount: String,
    serial: String,
    not_after: SystemTime,
}

struct SecretState {
    spec: SecretSpec,
    current: Option<Current>,
    next: Instant,
    due: Due,
    backoff: Backoff,
}

struct TokenState {
    next: Option<Instant>,
    /// Renew-self (true) or log in again (false) when `next` comes.
    renew: bool,
    first_ttl: Duration,
    backoff: Backoff,
}

/// Called after new files are in place (rotation hook for run mode).
pub type OnPublish = Box<dyn FnMut() + Send>;

/// The running agent.
pub struct Engine {
    cfg: Arc<Config>,
    client: VaultClient,
    token: TokenState,
    secrets: Vec<SecretState>,
    out: Output,
    publisher: Publisher,
    on_publish: Option<OnPublish>,
    issued: Vec<IssuedCert>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("secrets", &self.secrets.len())
            .finish_non_exhaustive()
    }
}

fn lease_id(c: &Option<Current>) -> Option<&str> {
    c.as_ref()
        .and_then(|c| c.lease.as_ref())
        .map(|l| l.id.as_str())
}

impl Engine {
    /// Opens the output, logs in, fetches and publishes every secret, writes
    /// `.shroud/ready`. On failure everything obtained so far is revoked and wiped.
    pub fn start(
        cfg: Arc<Config>,
        live: Option<Arc<LiveSet>>,
        on_publish: Option<OnPublish>,
    ) -> Result<Engine, StartError> {
        let out = Output::open(&cfg.output)?;
        let client = VaultClient::new(&cfg.vault).map_err(StartError::Client)?;
        let now = Instant::now();
        let mut engine = Engine {
            publisher: Publisher::new(
                cfg.redact.retain,
                cfg.redact.min_length,
                cfg.lifecycle.handshake_timeout,
                live,
            ),
            secrets: cfg
                .secrets
                .iter()
                .map(|spec| SecretState {
                    spec: spec.clone(),
                    current: None,
                    next: now,
                    due: Due::Rotate,
                    backoff: Backoff::default(),
                })
                .collect(),
            token: TokenState {
                next: None,
                renew: false,
                first_ttl: Duration::ZERO,
                backoff: Backoff::default(),
            },
            cfg,
            client,
            out,
            on_publish,
            issued: Vec::new(),
        };
        match engine.first_render() {
            Ok(()) => Ok(engine),
            Err(e) => {
                engine.shutdown();
                Err(e)
            }
        }
    }

    fn first_render(&mut self) -> Result<(), StartError> {
        let deadline = Instant::now() + self.cfg.lifecycle.startup_timeout;
        let mut backoff = Backoff::default();
        loop {
            match self.login() {
                Ok(()) => break,
                Err(e) if e.is_transient() && Instant::now() < deadline => {
                    let d = backoff.next_delay();
                    warn!(error = %e, retry_in = ?d, "login failed; retrying");
                    std::thread::sleep(d);
                }
                Err(e) => return Err(e.into()),
            }
        }
        for i in 0..self.secrets.len() {
            let mut backoff = Backoff::default();
            let read = loop {
                match self.fetch(i) {
                    Ok(r) => break r,
                    Err(e) if e.is_transient() && Instant::now() < deadline => {
                        let d = backoff.next_delay();
                        warn!(secret = %self.secrets[i].spec.name, error = %e, retry_in = ?d, "fetch failed; retrying");
                        std::thread::sleep(d);
                    }
                    Err(source) => {
                        let spec = &self.secrets[i].spec;
                        return Err(StartError::Fetch {
                            secret: spec.name.clone(),
                            path: spec.path.clone(),
                            source: Box::new(source),
                        });
                    }
                }
            };
            let rendered = render(&self.secrets[i].spec, &read.data)?;
            self.install(i, read, rendered);
        }
        let staged = self
            .secrets
            .iter()
            .map(|s| {
                (
                    s.spec.name.clone(),
                    s.current.as_ref().map(|c| c.rendered.clone()),
                )
            })
            .collect::<Vec<_>>();
        let generation = {
            let values = self.current_values();
            self.publisher.publish(&mut self.out, values)
        }?;
        let mut files = Vec::new();
        for (name, bytes) in staged {
            if let Some(rendered) = bytes {
                files.push(self.out.stage_rendered(&name, &rendered)?);
            }
        }
        self.await_acks(generation);
        for f in files {
            self.out.commit(f)?;
        }
        self.out.write(Path::new(".shroud/ready"), b"")?;
        events::emit(Event::Ready);
        info!(
            secrets = self.secrets.len(),
            dir = %self.out.dir().display(),
            "secrets rendered"
        );
        Ok(())
    }

    fn login(&mut self) -> Result<(), AuthError> {
        let info = auth::login(&self.cfg.auth, &mut self.client)?;
        let now = Instant::now();
        self.token.first_ttl = info.ttl;
        self.token.backoff.reset();
        if info.ttl.is_zero() {
            self.token.next = None;
        } else {
            self.token.next = Some(now + renew_after(info.ttl, self.cfg.lifecycle.renew_threshold));
            self.token.renew = info.renewable;
        }
        info!(method = self.cfg.auth.method.name(), ttl = ?info.ttl, "logged in to Vault");
        Ok(())
    }

    fn fetch(&mut self, i: usize) -> Result<api::SecretRead, VaultError> {
        let spec = &self.secrets[i].spec;
        let path = spec.read_path();
        let result = match (&spec.params, spec.kind) {
            (Some(params), SecretKind::Pki) => pki::issue(&self.client, &path, &params.body()),
            (Some(params), _) => api::write(&self.client, &path, &params.body()),
            (None, kind) => api::read(&self.client, &path, kind == SecretKind::Kv2),
        };
        let outcome = match &result {
            Ok(_) => Outcome::Ok,
            Err(e) => e.outcome(),
        };
        if let Outcome::Denied(reason) = &outcome {
            events::emit(Event::Denial {
                secret: Some(&spec.name),
                path: Some(&spec.path),
                reason,
            });
        }
        events::emit(Event::Fetch {
            secret: &spec.name,
            path: &spec.path,
            lease_id: result
                .as_ref()
                .ok()
                .and_then(|r| r.lease.as_ref())
                .map(|l| l.id.as_str()),
            outcome,
        });
        if let Ok(r) = &result {
            if let Some(l) = &r.lease {
                events::emit(Event::LeaseTtl {
                    secret: &spec.name,
                    seconds: l.duration.as_secs_f64(),
                });
            }
        }
        result
    }

    /// Makes `read` the current value of secret `i` and schedules what is next.
    /// Returns the previous value, if any.
    fn install(&mut self, i: usize, read: api::SecretRead, rendered: Rendered) -> Option<Current> {
        let threshold = self.cfg.lifecycle.renew_threshold;
        let now = Instant::now();
        let s = &mut self.secrets[i];
        s.backoff.reset();
        let cert = (s.spec.kind == SecretKind::Pki)
            .then(|| pki::expiration(&read))
            .flatten();
        let (next, due, expires) = match (&read.lease, cert) {
            (Some(l), _) if !l.duration.is_zero() => (
                now + renew_after(l.duration, threshold),
                if l.renewable { Due::Renew } else { Due::Rotate },
                Some(now + l.duration),
            ),
            // A certificate is re-issued at `reissue_at` of its validity; the
            // role's max TTL already caps `expiration`.
            (None, Some(not_after)) => {
                let left = not_after
                    .duration_since(SystemTime::now())
                    .unwrap_or_default();
                if let Some(serial) = pki::serial(&read) {
                    let now = SystemTime::now();
                    self.issued.retain(|c| c.not_after > now);
                    self.issued.push(IssuedCert {
                        secret: i,
                        mount: pki::mount_of(&s.spec.path).to_string(),
                        serial: serial.to_string(),
                        not_after,
                    });
                }
                (
                    now + renew_after(left, s.spec.reissue_at),
                    Due::Rotate,
                    Some(now + left),
                )
            }
            _ => (now + s.spec.refresh, Due::Refresh, None),
        };
        s.next = next;
        s.due = due;
        s.current.replace(Current {
            first_ttl: read.lease.as_ref().map(|l| l.duration).unwrap_or_default(),
            data: read.data,
            lease: read.lease,
            expires,
            rendered,
        })
    }

    fn current_values(&self) -> Vec<(String, Zeroizing<Vec<u8>>)> {
        let mut v = Vec::new();
        for s in &self.secrets {
            if let Some(c) = &s.current {
                for (field, value) in masked_values(&s.spec, &c.data) {
                    v.push((entry_name(&s.spec.name, &field), value));
                }
            }
        }
        v
    }

    fn await_acks(&self, generation: u64) {
        let lagging = self.publisher.wait_acks(&self.out, generation);
        if !lagging.is_empty() {
            warn!(
                generation,
                execs = ?lagging,
                "exec did not acknowledge the new redaction set in time; publishing anyway"
            );
        }
    }

    /// Runs until a stop reason arrives on `wake`; returns it.
    pub fn run(&mut self, wake: &Receiver<Wake>) -> Wake {
        loop {
            let now = Instant::now();
            self.expire(now);
            if self.publisher.prune(now) {
                if let Err(e) = {
                    let values = self.current_values();
                    self.publisher.publish(&mut self.out, values)
                } {
                    error!(error = %e, "cannot update the redaction set");
                }
            }
            if let Some(at) = self.token.next {
                if at <= now {
                    self.token_due();
                    continue;
                }
            }
            if let Some(i) = (0..self.secrets.len()).find(|&i| self.secrets[i].next <= now) {
                self.secret_due(i);
                continue;
            }
            let next = self
                .secrets
                .iter()
                .map(|s| s.next)
                .chain(self.token.next)
                .chain(self.publisher.next_expiry())
                .chain(
                    self.secrets
                        .iter()
                        .filter_map(|s| s.current.as_ref()?.expires),
                )
                .min()
                .unwrap_or(now + Duration::from_secs(3600));
            match wake.recv_timeout(next.saturating_duration_since(now)) {
                Ok(w) => return w,
                Err(RecvTimeoutError::Timeout) => {}
                // Every sender gone: nothing can stop us any more but a signal
                // handled elsewhere; treat as a stop rather than spin.
                Err(RecvTimeoutError::Disconnected) => return Wake::Signal(libc::SIGTERM),
            }
        }
    }

    /// Removes files whose lease has run out (Vault unreachable all along): a
    /// dead credential is not left behind.
    fn expire(&mut self, now: Instant) {
        for i in 0..self.secrets.len() {
            let expired =
                matches!(&self.secrets[i].current, Some(c) if c.expires.is_some_and(|e| e <= now));
            if expired {
                let name = self.secrets[i].spec.name.clone();
                warn!(secret = %name, "lease expired before it could be renewed or replaced; removing the file");
                self.out.wipe_name(&name);
                if let Some(old) = self.secrets[i].current.take() {
                    let leaves = masked_values(&self.secrets[i].spec, &old.data)
                        .into_iter()
                        .map(|(f, v)| (entry_name(&name, &f), v))
                        .collect();
                    self.publisher.retire(leaves);
                }
                events::emit(Event::LeaseTtl {
                    secret: &name,
                    seconds: 0.0,
                });
                let s = &mut self.secrets[i];
                s.due = Due::Rotate;
                s.next = now;
            }
        }
    }

    fn token_due(&mut self) {
        if self.token.renew {
            let result = api::renew_self(&self.client);
            events::emit(Event::TokenRenew {
                outcome: match &result {
                    Ok(_) => Outcome::Ok,
                    Err(e) => e.outcome(),
                },
            });
            let threshold = self.cfg.lifecycle.renew_threshold;
            match result {
                Ok(info) => {
                    self.token.backoff.reset();
                    // Shorter than the first TTL: capped by the max TTL, so the
                    // next step is a new login before it runs out.
                    self.token.renew = info.renewable && info.ttl >= self.token.first_ttl;
                    self.token.next = Some(Instant::now() + renew_after(info.ttl, threshold));
                }
                Err(e) if e.is_transient() => {
                    let d = self.token.backoff.next_delay();
                    warn!(error = %e, retry_in = ?d, "token renewal failed; retrying");
                    self.token.next = Some(Instant::now() + d);
                }
                Err(e) => {
                    warn!(error = %e, "token cannot be renewed; logging in again");
                    self.token.renew = false;
                    self.token.next = Some(Instant::now());
                }
            }
            return;
        }
        match self.login() {
            Ok(()) => {
                // Leases die with the token that created them: replace them all
                // under the new token.
                let now = Instant::now();
                for s in &mut self.secrets {
                    if lease_id(&s.current).is_some() {
                        s.due = Due::Rotate;
                        s.next = now;
                    }
                }
            }
            Err(e) => {
                let d = self.token.backoff.next_delay();
                warn!(error = %e, retry_in = ?d, "login failed; retrying");
                self.token.next = Some(Instant::now() + d);
            }
        }
    }

    fn retry(&mut self, i: usize, what: &str, e: &VaultError) {
        let s = &mut self.secrets[i];
        let d = s.backoff.next_delay();
        warn!(secret = %s.spec.name, error = %e, retry_in = ?d, "{what} failed; retrying");
        s.next = Instant::now() + d;
    }

    fn secret_due(&mut self, i: usize) {
        match self.secrets[i].due {
            Due::Renew => self.renew(i),
            Due::Rotate | Due::Refresh => self.refetch(i),
        }
    }

    fn renew(&mut self, i: usize) {
        let Some(cur) = &self.secrets[i].current else {
            self.secrets[i].due = Due::Rotate;
            return;
        };
        let Some(lease) = &cur.lease else {
            self.secrets[i].due = Due::Refresh;
            return;
        };
        let increment = cur.first_ttl;
        let result = api::renew_lease(&self.client, &lease.id, increment);
        let spec = &self.secrets[i].spec;
        events::emit(Event::Renew {
            secret: &spec.name,
            path: &spec.path,
            lease_id: Some(&lease.id),
            outcome: match &result {
                Ok(_) => Outcome::Ok,
                Err(e) => e.outcome(),
            },
        });
        match result {
            Ok(renewed) => {
                events::emit(Event::LeaseTtl {
                    secret: &spec.name,
                    seconds: renewed.duration.as_secs_f64(),
                });
                let threshold = self.cfg.lifecycle.renew_threshold;
                let now = Instant::now();
                let s = &mut self.secrets[i];
                s.backoff.reset();
                // Vault grants exactly the increment unless the max TTL cuts it.
                let capped = !renewed.renewable || renewed.duration < increment;
                if let Some(c) = &mut s.current {
                    c.expires = Some(now + renewed.duration);
                }
                s.next = now + renew_after(renewed.duration, threshold);
                info!(secret = %s.spec.name, ttl = ?renewed.duration, "lease renewed");
                if capped {
                    info!(secret = %s.spec.name, ttl = ?renewed.duration, "lease reached its max TTL; replacing it before it expires");
                    s.due = Due::Rotate;
                }
            }
            Err(e) if e.is_transient() => self.retry(i, "lease renewal", &e),
            Err(e) => {
                warn!(secret = %spec.name, error = %e, "lease cannot be renewed; fetching new credentials");
                let s = &mut self.secrets[i];
                s.due = Due::Rotate;
                s.next = Instant::now();
            }
        }
    }

    fn refetch(&mut self, i: usize) {
        let read = match self.fetch(i) {
            Ok(r) => r,
            Err(e) => return self.retry(i, "fetch", &e),
        };
        let rendered = match render(&self.secrets[i].spec, &read.data) {
            Ok(r) => r,
            Err(e) => {
                error!(error = %e, "cannot render new values; keeping the old ones");
                let s = &mut self.secrets[i];
                s.next = Instant::now() + s.backoff.next_delay();
                return;
            }
        };
        let unchanged = matches!(&self.secrets[i].current, Some(c) if c.lease.is_none() && read.lease.is_none() && c.rendered == rendered);
        if unchanged {
            let s = &mut self.secrets[i];
            s.backoff.reset();
            s.next = Instant::now() + s.spec.refresh;
            return;
        }
        let name = self.secrets[i].spec.name.clone();
        let new_lease = read.lease.as_ref().map(|l| l.id.clone());
        let old = self.install(i, read, rendered.clone());
        if let Err(e) = self.publish_one(i, old.as_ref(), &rendered) {
            error!(secret = %name, error = %e, "cannot publish new values");
        }
        let spec = &self.secrets[i].spec;
        events::emit(Event::Rotate {
            secret: &spec.name,
            path: &spec.path,
            lease_id: new_lease.as_deref(),
        });
        info!(secret = %name, "new values published");
        if let Some(old) = old {
            if let Some(l) = &old.lease {
                self.revoke_lease(i, &l.id, Instant::now());
            }
        }
    }

    /// The handshake for one secret: values (new + retired old) first, then the file.
    fn publish_one(
        &mut self,
        i: usize,
        old: Option<&Current>,
        rendered: &Rendered,
    ) -> Result<(), FilesError> {
        let name = self.secrets[i].spec.name.clone();
        let name = name.as_str();
        if let Some(old) = old {
            let leaves = masked_values(&self.secrets[i].spec, &old.data)
                .into_iter()
                .map(|(f, v)| (entry_name(name, &f), v))
                .collect();
            self.publisher.retire(leaves);
        }
        let generation = {
            let values = self.current_values();
            self.publisher.publish(&mut self.out, values)
        }?;
        let staged = self.out.stage_rendered(name, rendered)?;
        self.await_acks(generation);
        self.out.commit(staged)?;
        if let Some(hook) = &mut self.on_publish {
            hook();
        }
        Ok(())
    }

    /// Revokes one lease, retrying transient failures until `deadline`.
    fn revoke_lease(&self, i: usize, id: &str, deadline: Instant) -> bool {
        let mut backoff = Backoff::default();
        loop {
            let result = api::revoke_lease(&self.client, id);
            let done = match &result {
                Ok(()) => true,
                Err(e) => !e.is_transient() || Instant::now() >= deadline,
            };
            if done {
                events::emit(Event::Revoke {
                    secret: Some(&self.secrets[i].spec.name),
                    lease_id: Some(id),
                    outcome: match &result {
                        Ok(()) => Outcome::Ok,
                        Err(e) => e.outcome(),
                    },
                });
                if let Err(e) = &result {
                    error!(secret = %self.secrets[i].spec.name, error = %e, "cannot revoke lease");
                }
                return result.is_ok();
            }
            let d = backoff
                .next_delay()
                .min(deadline.saturating_duration_since(Instant::now()));
            std::thread::sleep(d);
        }
    }

    /// Wipes every file, then revokes every lease and the token (when
    /// `revoke_on_exit`). Files go first: they must not outlive the process even
    /// when Vault is unreachable and revocation has to wait for its deadline.
    pub fn shutdown(mut self) {
        let start = Instant::now();
        let files = self.out.wipe_all();
        // Acks are exec's files, but one killed outright cannot remove its own.
        super::handshake::remove_stale_acks(&self.out.meta("acks"));
        events::emit(Event::Wipe {
            files,
            duration: start.elapsed(),
        });
        info!(files, "files wiped");
        if self.cfg.lifecycle.revoke_on_exit && self.client.token().is_some() {
            let deadline = Instant::now() + self.cfg.lifecycle.revoke_timeout;
            for i in 0..self.secrets.len() {
                let id = lease_id(&self.secrets[i].current).map(str::to_string);
                if let Some(id) = id {
                    self.revoke_lease(i, &id, deadline);
                }
            }
            if self.cfg.lifecycle.revoke_certificates {
                self.revoke_certificates(deadline);
            }
            self.revoke_token(deadline);
        }
        // Dropping the state frees (and the allocator zeroes) every value.
        for s in &mut self.secrets {
            s.current = None;
        }
        self.client.set_token(None);
    }

    /// Revokes every certificate this agent issued that has not expired yet
    /// (an expired one is worthless, and Vault may have tidied it away).
    fn revoke_certificates(&mut self, deadline: Instant) {
        let now = SystemTime::now();
        for cert in std::mem::take(&mut self.issued) {
            if cert.not_after <= now {
                continue;
            }
            let mut backoff = Backoff::default();
            let result = loop {
                let result = pki::revoke(&self.client, &cert.mount, &cert.serial);
                match &result {
                    Err(e) if e.is_transient() && Instant::now() < deadline => {
                        let d = backoff
                            .next_delay()
                            .min(deadline.saturating_duration_since(Instant::now()));
                        std::thread::sleep(d);
                    }
                    _ => break result,
                }
            };
            let secret = &self.secrets[cert.secret].spec.name;
            events::emit(Event::Revoke {
                secret: Some(secret),
                lease_id: None,
                outcome: match &result {
                    Ok(()) => Outcome::Ok,
                    Err(e) => e.outcome(),
                },
            });
            match result {
                Ok(()) => info!(secret = %secret, serial = %cert.serial, "certificate revoked"),
                Err(e) => {
                    error!(secret = %secret, serial = %cert.serial, error = %e, "cannot revoke certificate")
                }
            }
        }
    }

    fn revoke_token(&self, deadline: Instant) {
        let mut backoff = Backoff::default();
        loop {
            let result = api::revoke_self(&self.client);
            let done = match &result {
                Ok(()) => true,
                Err(e) => !e.is_transient() || Instant::now() >= deadline,
            };
            if done {
                events::emit(Event::Revoke {
                    secret: None,
                    lease_id: None,
                    outcome: match &result {
                        Ok(()) => Outcome::Ok,
                        Err(e) => e.outcome(),
                    },
                });
                match result {
                    Ok(()) => info!("leases and token revoked"),
                    Err(e) => error!(error = %e, "cannot revoke the Vault token"),
                }
                return;
            }
            let d = backoff
                .next_delay()
                .min(deadline.saturating_duration_since(Instant::now()));
            std::thread::sleep(d);
        }
    }

    /// The output directory.
    pub fn dir(&self) -> &Path {
        self.out.dir()
    }
}
