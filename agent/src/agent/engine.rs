//! The lease engine's effects: log in, fetch and publish every secret, then apply
//! the [`Schedule`] (what is due when) with Vault calls and [`publish`] until told
//! to stop; then wipe and revoke. Deadline arithmetic lives in `schedule`, the
//! publication sequence in `publish`, retry loops in `retry`.

use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::{error, info, warn};
use zeroize::Zeroizing;

use super::files::{DirState, FilesError, Output};
use super::handshake::{entry_name, Publisher};
use super::publish::publish;
use super::render::{masked_values, render, RenderError, Rendered};
use super::retry::retry;
use super::schedule::{Due, Grant, RandomJitter, Schedule, Step};
use super::state::{Binding, StateDir, StateError};
use crate::config::{Config, Format, SecretKind, SecretSpec};
use crate::contract::{self, READY_FILE};
use crate::events::{self, Event, Outcome, RevokeReason};
use crate::live::LiveSet;
use crate::vault::api::{self, LeaseInfo, SecretData, TokenInfo};
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
    /// Run mode: a SIGTERM/SIGINT was forwarded to the command at this time;
    /// the shutdown deadline starts to run.
    Stopping(Instant),
}

/// How often the output directory is checked between publications (a deleted
/// one is created again, a replaced one reported).
const DIR_CHECK: Duration = Duration::from_secs(1);

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
    /// The state directory is unusable (not tmpfs, not the agent's, in use by
    /// another agent).
    #[error(transparent)]
    State(#[from] StateError),
    /// Vault stayed unreachable while the previous agent's state was adopted.
    #[error("cannot adopt {what} of the previous agent: {source}")]
    Adopt {
        /// What was being looked up.
        what: &'static str,
        /// The error.
        source: VaultError,
    },
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
        ) || matches!(self, StartError::State(e) if e.is_config())
    }
}

/// Whether a plain `[[secret]]` may share its lease with a template reading
/// the same path: a plain read (no parameters) of a leased kind.
fn shares_plainly(spec: &SecretSpec) -> bool {
    spec.params.is_none() && matches!(spec.kind, SecretKind::Dynamic | SecretKind::Generic)
}

/// What is published for a secret now.
struct Current {
    data: SecretData,
    lease: Option<LeaseInfo>,
    rendered: Rendered,
}

/// A certificate this agent issued, revoked at exit while still valid.
struct IssuedCert {
    secret: usize,
    mount: String,
    serial: String,
    /// When the agent received it: the start of the validity its re-issue
    /// point is a fraction of.
    issued_at: SystemTime,
    not_after: SystemTime,
}

struct Secret {
    spec: SecretSpec,
    current: Option<Current>,
}

impl Secret {
    fn lease_id(&self) -> Option<&str> {
        self.current
            .as_ref()
            .and_then(|c| c.lease.as_ref())
            .map(|l| l.id.as_str())
    }
}

/// Called after new files are in place (rotation hook for run mode).
pub type OnPublish = Box<dyn FnMut() + Send>;

/// The running agent.
pub struct Engine {
    cfg: Arc<Config>,
    client: VaultClient,
    /// One timer per entry of `secrets`, same order.
    schedule: Schedule,
    secrets: Vec<Secret>,
    out: Output,
    publisher: Publisher,
    on_publish: Option<OnPublish>,
    /// When everything must be over (set once a stop was asked for).
    stop_deadline: Option<Instant>,
    /// When the output directory was last checked.
    dir_checked: Instant,
    /// `shroud agent`: also look for the exit marker at each directory check,
    /// so a marker is seen even when the watch could not be placed or is on a
    /// directory that was deleted and created again.
    poll_exit_marker: bool,
    /// The output directory was found unusable (logged once per episode).
    dir_fault: bool,
    /// `[state]`: what a restarted agent adopts.
    state: Option<StateDir>,
    /// What the state is made for (see `binding`).
    binding: Binding,
    /// The token's accessor, kept in the state: an adopting agent checks it.
    accessor: Option<String>,
    /// Leases to revoke that are not current (being replaced, or fetched for a
    /// publication not yet done): saved, so a successor revokes them.
    revoking: Vec<String>,
    /// Certificates issued by this agent (pki), for revocation at exit.
    issued: Vec<IssuedCert>,
    /// The gateways' view of the current values (`share_credentials`).
    credentials: Option<Arc<crate::gateway::Credentials>>,
    /// `[state]`: the vault gateways' lease file.
    gateway_file: Option<Arc<super::state::GatewayLeaseFile>>,
    /// The predecessor's gateway leases found alive, for the gateways.
    adopted_gateway_leases: Vec<crate::gateway::vault::leases::Adopted>,
    /// `[[gateway]]`s are configured and not listening yet: readiness (the
    /// marker, the Ready event) waits for [`Engine::gateways_listening`].
    gateways_pending: bool,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("secrets", &self.secrets.len())
            .finish_non_exhaustive()
    }
}

fn lease_grant(l: &LeaseInfo) -> Grant {
    Grant {
        ttl: l.duration,
        renewable: l.renewable,
    }
}

fn token_grant(t: &TokenInfo) -> Grant {
    Grant {
        ttl: t.ttl,
        renewable: t.renewable,
    }
}

/// The values of `spec`'s `data` to mask, under their redaction-set names, each
/// followed by the values derived from it when it is a document
/// ([`crate::derive`]); a weak value is warned about once.
fn masked(
    spec: &SecretSpec,
    data: &SecretData,
    min_length: usize,
) -> Vec<(String, Zeroizing<Vec<u8>>)> {
    let mut out = Vec::new();
    // Never in a file the workload can read, `.shroud/values` included.
    if spec.gateway_only {
        return out;
    }
    for (field, value) in masked_values(spec, data) {
        let name = entry_name(&spec.name, &field);
        crate::report::warn_weak_once(&name, &value, min_length);
        let derived = crate::derive::derive(&name, &value, min_length);
        out.push((name, value));
        out.extend(derived);
    }
    out
}

mod adopt;
mod gateway_leases;
mod retire;

pub use retire::RetiringCredential;

impl Engine {
    /// Opens the output, logs in, fetches and publishes every secret, writes
    /// `.shroud/ready`; or, with `[state]` left by a previous agent, adopts its
    /// token and leases (see `adopt`). On failure everything obtained so far is
    /// revoked and wiped.
    pub fn start(
        cfg: Arc<Config>,
        live: Option<Arc<LiveSet>>,
        on_publish: Option<OnPublish>,
    ) -> Result<Engine, StartError> {
        // The state first: when another agent holds it, nothing of its output
        // (ready marker included) may be touched.
        let state = match &cfg.state {
            Some(st) => Some(StateDir::open(st, &cfg.vault.address)?),
            None => None,
        };
        let out = Output::open(&cfg.output)?;
        let client = VaultClient::new(&cfg.vault).map_err(StartError::Client)?;
        let binding = super::binding::of(&cfg);
        let mut engine = Engine {
            binding,
            publisher: Publisher::new(
                cfg.redact.retain,
                cfg.redact.lengths(),
                cfg.lifecycle.handshake_timeout,
                live,
            ),
            schedule: Schedule::new(
                cfg.secrets.len(),
                cfg.lifecycle.renew_threshold,
                Instant::now(),
                Box::new(RandomJitter),
            ),
            secrets: cfg
                .secrets
                .iter()
                .map(|spec| Secret {
                    spec: spec.clone(),
                    current: None,
                })
                .collect(),
            cfg,
            client,
            out,
            on_publish,
            stop_deadline: None,
            dir_checked: Instant::now(),
            poll_exit_marker: false,
            dir_fault: false,
            state,
            accessor: None,
            revoking: Vec::new(),
            issued: Vec::new(),
            credentials: None,
            gateway_file: None,
            adopted_gateway_leases: Vec::new(),
            gateways_pending: false,
        };
        engine.gateways_pending = !engine.cfg.gateways.is_empty();
        engine.gateway_file = engine.state.as_ref().map(|s| Arc::new(s.gateway_leases()));
        match engine.adopt_or_render() {
            Ok(()) => Ok(engine),
            // Vault unreachable while adopting: the predecessor's token, leases
            // and files stay as they are for the next attempt to adopt.
            Err(e @ StartError::Adopt { .. }) => Err(e),
            Err(e) => {
                engine.shutdown();
                Err(e)
            }
        }
    }

    /// Logs in, retrying an unreachable Vault until `deadline`.
    fn login_until(&mut self, deadline: Instant) -> Result<(), StartError> {
        retry(
            deadline,
            || self.login(),
            |e, d| warn!(error = %e, retry_in = ?d, "login failed; retrying"),
        )?;
        Ok(())
    }

    fn first_render(&mut self) -> Result<(), StartError> {
        let deadline = Instant::now() + self.cfg.lifecycle.startup_timeout;
        self.login_until(deadline)?;
        self.publisher.take_over(&self.out, false);
        let all = (0..self.secrets.len()).collect::<Vec<_>>();
        self.fetch_all(&all, deadline)?;
        self.publish_all()?;
        self.save_state();
        self.ready();
        Ok(())
    }

    /// First fetch of secrets `which`, retrying an unreachable Vault until
    /// `deadline`; each is saved to the state as soon as it is held.
    fn fetch_all(&mut self, which: &[usize], deadline: Instant) -> Result<(), StartError> {
        for &i in which {
            let name = self.secrets[i].spec.name.clone();
            let read = retry(
                deadline,
                || self.fetch(i),
                |e, d| warn!(secret = %name, error = %e, retry_in = ?d, "fetch failed; retrying"),
            )
            .map_err(|source| {
                let spec = &self.secrets[i].spec;
                StartError::Fetch {
                    secret: spec.name.clone(),
                    path: spec.path.clone(),
                    source: Box::new(source),
                }
            })?;
            let rendered = render(&self.secrets[i].spec, &read.data)?;
            self.install(i, read, rendered);
            self.save_state();
        }
        Ok(())
    }

    /// Announces readiness (the marker itself is written by `publish_all`, or
    /// by `adopt` when nothing had to be published), unless gateways are
    /// still to start.
    fn ready(&self) {
        if !self.gateways_pending {
            events::emit(Event::Ready);
        }
        info!(
            secrets = self.secrets.len(),
            dir = %self.out.dir().display(),
            "secrets rendered"
        );
    }

    /// Publishes every current value and file, then the ready marker (the
    /// first render, and a directory created again).
    fn publish_all(&mut self) -> Result<(), FilesError> {
        let all: Vec<usize> = (0..self.secrets.len()).collect();
        self.publish_current(&all)?;
        self.mark_ready()
    }

    /// Writes the ready marker, unless gateways are still to start: ready
    /// means a workload can use everything, its gateways included.
    fn mark_ready(&mut self) -> Result<(), FilesError> {
        if self.gateways_pending {
            return Ok(());
        }
        self.out.write(Path::new(READY_FILE), b"")
    }

    /// The gateways accept connections: the agent is ready.
    pub fn gateways_listening(&mut self) -> Result<(), FilesError> {
        if !std::mem::replace(&mut self.gateways_pending, false) {
            return Ok(());
        }
        self.mark_ready()?;
        events::emit(Event::Ready);
        Ok(())
    }

    /// One publication of the current files of secrets `which` (those that have
    /// a value), with every current value in the new generation.
    fn publish_current(&mut self, which: &[usize]) -> Result<(), FilesError> {
        let rendered: Vec<(String, Rendered)> = which
            .iter()
            .filter_map(|&i| {
                let s = &self.secrets[i];
                if s.spec.gateway_only {
                    return None;
                }
                Some((s.spec.name.clone(), s.current.as_ref()?.rendered.clone()))
            })
            .collect();
        let files: Vec<(&str, &Rendered)> = rendered
            .iter()
            .map(|(name, r)| (name.as_str(), r))
            .collect();
        let values = self.current_values(None);
        publish(&mut self.out, &mut self.publisher, values, &[], &files).map(drop)
    }

    /// Before a publication, and at least every [`DIR_CHECK`]: the output
    /// directory is still the one held open ([`Output::check`]). A deleted one
    /// has been created again: everything is published there again.
    fn check_output(&mut self) -> Result<(), FilesError> {
        self.dir_checked = Instant::now();
        let result = match self.out.check(&self.cfg.output) {
            Ok(DirState::Same) => Ok(()),
            Ok(DirState::Recreated) => {
                warn!(dir = %self.out.dir().display(), "the output directory was deleted; created it again and publishing every secret there again");
                self.publish_all()
            }
            Err(e) => Err(e),
        };
        match (&result, self.dir_fault) {
            (Ok(()), true) => {
                self.dir_fault = false;
                info!(dir = %self.out.dir().display(), "the output directory is usable again");
                events::emit(Event::Publish {
                    secret: None,
                    outcome: Outcome::Ok,
                });
            }
            (Err(e), false) => {
                self.dir_fault = true;
                error!(error = %e, "the output directory cannot be published to");
                events::emit(Event::Publish {
                    secret: None,
                    outcome: Outcome::Error(e.to_string()),
                });
            }
            _ => {}
        }
        result
    }

    fn login(&mut self) -> Result<(), AuthError> {
        let info = auth::login(&self.cfg.auth, &mut self.client)?;
        self.schedule.logged_in(token_grant(&info), Instant::now());
        self.accessor = info.accessor;
        info!(method = self.cfg.auth.method.name(), ttl = ?info.ttl, "logged in to Vault");
        self.save_state();
        if let Some(board) = &self.credentials {
            board.offer_token(self.client.token());
        }
        Ok(())
    }

    fn fetch(&self, i: usize) -> Result<api::SecretRead, VaultError> {
        let spec = &self.secrets[i].spec;
        let path = spec.read_path();
        let result = match (&spec.format, &spec.params, spec.kind) {
            (Format::Consul(t), _, _) => super::consul::fetch(
                &self.client,
                t,
                self.secrets[i].current.as_ref().map(|c| &c.data),
                &|call| self.held_by_another(i, call),
            ),
            (_, Some(params), SecretKind::Pki) => pki::issue(&self.client, &path, &params.body()),
            (_, Some(params), _) => api::write(&self.client, &path, &params.body()),
            (_, None, kind) => match self.template_holding(i, &path) {
                Some(shared) => Ok(shared),
                None => api::read(&self.client, &path, kind == SecretKind::Kv2),
            },
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
        let spec = &self.secrets[i].spec;
        let certificate = (spec.kind == SecretKind::Pki && read.lease.is_none())
            .then(|| pki::expiration(&read))
            .flatten();
        if let Some(not_after) = certificate {
            let now = SystemTime::now();
            let validity = not_after.duration_since(now).unwrap_or_default();
            self.schedule
                .issued(i, validity, spec.reissue_at, Instant::now());
            // The expiry gauge follows the certificate as it follows a lease.
            events::emit(Event::LeaseTtl {
                secret: &spec.name,
                seconds: validity.as_secs_f64(),
            });
            if let Some(serial) = pki::serial(&read) {
                self.issued.retain(|c| c.not_after > now);
                self.issued.push(IssuedCert {
                    secret: i,
                    mount: pki::mount_of(&spec.path).to_string(),
                    serial: serial.to_string(),
                    issued_at: now,
                    not_after,
                });
            }
        } else {
            if let Format::Consul(t) = &spec.format {
                let now = SystemTime::now();
                self.issued.retain(|c| c.not_after > now);
                for c in super::consul::certificates(t, &read.data) {
                    if self.issued.iter().any(|k| k.serial == c.serial) {
                        continue;
                    }
                    self.issued.push(IssuedCert {
                        secret: i,
                        mount: c.mount,
                        serial: c.serial,
                        issued_at: now,
                        not_after: UNIX_EPOCH + Duration::from_secs(c.not_after),
                    });
                }
            }
            let refresh = self.refresh_of(i, &read.data);
            self.schedule.fetched(
                i,
                read.lease.as_ref().map(lease_grant),
                refresh,
                Instant::now(),
            );
        }
        self.secrets[i].current.replace(Current {
            data: read.data,
            lease: read.lease,
            rendered,
        })
    }

    /// How long until secret `i` (holding `data`) is read again when it holds
    /// no lease: its `refresh`, or sooner when a template's `pkiCert`
    /// certificate is due for re-issue before that (consul-template's
    /// `goodFor` deadline).
    fn refresh_of(&self, i: usize, data: &SecretData) -> Duration {
        let spec = &self.secrets[i].spec;
        let Format::Consul(t) = &spec.format else {
            return spec.refresh;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        super::consul::cert_check_in(t, data, now).map_or(spec.refresh, |due| due.min(spec.refresh))
    }

    /// Every current value as redaction-set entries; with `candidate`, secret
    /// `i`'s values are those of the read being published instead.
    fn current_values(
        &self,
        candidate: Option<(usize, &SecretData)>,
    ) -> Vec<(String, Zeroizing<Vec<u8>>)> {
        self.secrets
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let data = match candidate {
                    Some((c, data)) if c == i => data,
                    _ => &s.current.as_ref()?.data,
                };
                Some(masked(&s.spec, data, self.cfg.redact.min_length))
            })
            .flatten()
            .collect()
    }

    /// Runs until a stop reason arrives on `wake`; returns it.
    pub fn run(&mut self, wake: &Receiver<Wake>) -> Wake {
        loop {
            let now = Instant::now();
            self.expire(now);
            let dir_due = now >= self.dir_checked + DIR_CHECK;
            if dir_due {
                // Logged and counted inside; publications retry by themselves.
                let _ = self.check_output();
                if self.poll_exit_marker && contract::has_exited(self.out.dir()) {
                    return Wake::ExitMarker;
                }
            }
            // Values the pod's execs registered at run time join the set.
            let registered = dir_due
                && self
                    .publisher
                    .add_registered(contract::registered::read_all(self.out.dir()));
            if (self.publisher.prune(now) || registered) && self.check_output().is_ok() {
                let values = self.current_values(None);
                if let Err(e) = self.publisher.publish(&mut self.out, values, &[]) {
                    error!(error = %e, "cannot update the redaction set");
                }
            }
            if registered {
                // A successor re-publishes them (`[state]`).
                self.save_state();
            }
            let other = [
                self.publisher.next_expiry(),
                Some(self.dir_checked + DIR_CHECK),
            ]
            .into_iter()
            .flatten()
            .min();
            match self.schedule.next(now, other) {
                Step::Token => self.token_due(),
                Step::Secret(i) => self.secret_due(i),
                Step::Retire => self.revoke_retired(),
                Step::Sleep(until) => {
                    match wake.recv_timeout(until.saturating_duration_since(now)) {
                        Ok(w) => return w,
                        Err(RecvTimeoutError::Timeout) => {}
                        // Every sender gone: nothing can stop us any more but a
                        // signal handled elsewhere; treat as a stop rather than spin.
                        Err(RecvTimeoutError::Disconnected) => return Wake::Signal(libc::SIGTERM),
                    }
                }
            }
        }
    }

    /// Removes files whose lease has run out (Vault unreachable all along): a
    /// dead credential is not left behind.
    fn expire(&mut self, now: Instant) {
        for i in self.schedule.expire(now) {
            let name = self.secrets[i].spec.name.clone();
            warn!(secret = %name, "lease expired before it could be renewed or replaced; removing the file");
            self.out.wipe_name(&name);
            if let Some(old) = self.secrets[i].current.take() {
                self.publisher.retire(masked(
                    &self.secrets[i].spec,
                    &old.data,
                    self.cfg.redact.min_length,
                ));
            }
            events::emit(Event::LeaseTtl {
                secret: &name,
                seconds: 0.0,
            });
        }
    }

    fn token_due(&mut self) {
        if self.schedule.token.renew {
            let result = api::renew_self(&self.client);
            events::emit(Event::TokenRenew {
                outcome: match &result {
                    Ok(_) => Outcome::Ok,
                    Err(e) => e.outcome(),
                },
            });
            match result {
                Ok(info) => self
                    .schedule
                    .token_renewed(token_grant(&info), Instant::now()),
                Err(e) if e.is_transient() => {
                    let d = self.schedule.token_failed(Instant::now());
                    warn!(error = %e, retry_in = ?d, "token renewal failed; retrying");
                }
                Err(e) => {
                    warn!(error = %e, "token cannot be renewed; logging in again");
                    self.schedule.relogin_now(Instant::now());
                }
            }
            return;
        }
        match self.login() {
            Ok(()) => {
                // Leases die with the token that created them: replace them all
                // under the new token.
                let now = Instant::now();
                for i in 0..self.secrets.len() {
                    if self.secrets[i].lease_id().is_some() {
                        self.schedule.replace_now(i, now);
                    }
                }
            }
            Err(e) => {
                let d = self.schedule.login_failed(Instant::now());
                warn!(error = %e, retry_in = ?d, "login failed; retrying");
            }
        }
    }

    /// After a refusal that may mean Vault no longer knows the token (a restart
    /// that lost its state, an operator's revocation): looks the token up, and
    /// when it is gone logs in again at once and makes every secret due for a
    /// new read, published as a rotation. True when the token was gone (the
    /// caller's own retry is then replaced by that).
    fn token_lost(&mut self, e: &VaultError) -> bool {
        if !e.may_be_token_loss() {
            return false;
        }
        match api::lookup_self(&self.client) {
            Ok(_) => return false,
            Err(lookup) if !lookup.may_be_token_loss() => return false,
            Err(_) => {}
        }
        warn!(error = %e, "Vault no longer knows shroud's token; logging in again");
        match self.login() {
            Ok(()) => self.schedule.refetch_all_now(Instant::now()),
            Err(e) => {
                // The next token step is a login, after the backoff.
                self.schedule.relogin_now(Instant::now());
                let d = self.schedule.login_failed(Instant::now());
                warn!(error = %e, retry_in = ?d, "login failed; retrying");
            }
        }
        true
    }

    fn retry_later(&mut self, i: usize, what: &str, e: &VaultError) {
        let d = self.schedule.secret_failed(i, Instant::now());
        warn!(secret = %self.secrets[i].spec.name, error = %e, retry_in = ?d, "{what} failed; retrying");
    }

    fn secret_due(&mut self, i: usize) {
        match self.schedule.secrets[i].due {
            Due::Renew => self.renew(i),
            Due::Rotate | Due::Refresh => self.refetch(i),
        }
    }

    fn renew(&mut self, i: usize) {
        let Some(cur) = &self.secrets[i].current else {
            self.schedule.set_due(i, Due::Rotate);
            return;
        };
        let Some(lease) = &cur.lease else {
            self.schedule.set_due(i, Due::Refresh);
            return;
        };
        let increment = self.schedule.secrets[i].first_ttl;
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
                info!(secret = %spec.name, ttl = ?renewed.duration, "lease renewed");
                if self
                    .schedule
                    .renewed(i, lease_grant(&renewed), Instant::now())
                {
                    info!(secret = %self.secrets[i].spec.name, ttl = ?renewed.duration, "lease reached its max TTL; replacing it before it expires");
                }
            }
            Err(e) if e.is_transient() => self.retry_later(i, "lease renewal", &e),
            Err(e) if self.token_lost(&e) => {}
            Err(e) => {
                let spec = &self.secrets[i].spec;
                warn!(secret = %spec.name, error = %e, "lease cannot be renewed; fetching new credentials");
                self.schedule.replace_now(i, Instant::now());
            }
        }
    }

    fn refetch(&mut self, i: usize) {
        let read = match self.fetch(i) {
            Ok(r) => r,
            Err(e) if !e.is_transient() && self.token_lost(&e) => return,
            Err(e) => return self.retry_later(i, "fetch", &e),
        };
        let rendered = match render(&self.secrets[i].spec, &read.data) {
            Ok(r) => r,
            Err(e) => {
                error!(error = %e, "cannot render new values; keeping the old ones");
                self.schedule.secret_failed(i, Instant::now());
                return;
            }
        };
        let unchanged = matches!(&self.secrets[i].current, Some(c) if c.lease.is_none() && read.lease.is_none() && c.rendered == rendered);
        if unchanged {
            let refresh = self.refresh_of(i, &read.data);
            self.schedule.unchanged(i, refresh, Instant::now());
            return;
        }
        let name = self.secrets[i].spec.name.clone();
        let new_lease = read.lease.as_ref().map(|l| l.id.clone());
        let old_lease = self.secrets[i].lease_id().map(str::to_string);
        // Saved before the publication: a crash before the new values are
        // installed leaves a successor the new lease to revoke.
        self.revoking.extend(new_lease.clone());
        self.save_state();
        if let Err(e) = self.publish_one(i, &read.data, &rendered) {
            self.publication_failed(i, &e, new_lease.as_deref());
            self.revoking.retain(|r| Some(r) != new_lease.as_ref());
            self.save_state();
            return;
        }
        events::emit(Event::Publish {
            secret: Some(&name),
            outcome: Outcome::Ok,
        });
        // Before the install: the old lease's end is still the schedule's.
        let grace = self.cfg.lifecycle.retire_grace;
        if let Some(id) = &old_lease {
            self.schedule.retire(i, id.clone(), grace, Instant::now());
        }
        let old = self.install(i, read, rendered);
        self.share(i);
        if let Some(old) = &old {
            self.publisher.retire(masked(
                &self.secrets[i].spec,
                &old.data,
                self.cfg.redact.min_length,
            ));
        }
        self.revoking.retain(|r| Some(r) != new_lease.as_ref());
        self.save_state();
        let spec = &self.secrets[i].spec;
        events::emit(Event::Rotate {
            secret: &spec.name,
            path: &spec.path,
            lease_id: new_lease.as_deref(),
        });
        info!(secret = %name, "new values published");
        drop(old);
        // A zero grace (or a lease already at its end) is revoked here, at once.
        self.revoke_retired();
    }

    /// A rotation that failed before its file was in place: the previous values
    /// stay current (their lease is kept), the unused new lease is revoked, and
    /// the rotation is tried again, with backoff, from a new read.
    fn publication_failed(&mut self, i: usize, e: &FilesError, new_lease: Option<&str>) {
        let name = self.secrets[i].spec.name.clone();
        events::emit(Event::Publish {
            secret: Some(&name),
            outcome: Outcome::Error(e.to_string()),
        });
        let d = self.schedule.secret_failed(i, Instant::now());
        error!(secret = %name, error = %e, retry_in = ?d, "publication failed before the new file was in place; the previous values stay current");
        if let Some(id) = new_lease {
            self.revoke_lease(i, id, RevokeReason::Replaced, Instant::now());
        }
    }

    /// The handshake for secret `i`'s new values (`data`, rendered as
    /// `rendered`): the directory checked, the values file with them current
    /// and the old ones retiring, the file staged, acks, rename. Nothing of
    /// the engine's state changes here: the caller installs the new values only
    /// once this worked.
    fn publish_one(
        &mut self,
        i: usize,
        data: &SecretData,
        rendered: &Rendered,
    ) -> Result<(), FilesError> {
        self.check_output()?;
        let name = self.secrets[i].spec.name.clone();
        let retiring = self.secrets[i]
            .current
            .as_ref()
            .map(|c| masked(&self.secrets[i].spec, &c.data, self.cfg.redact.min_length))
            .unwrap_or_default();
        let values = self.current_values(Some((i, data)));
        let files: &[(&str, &Rendered)] = if self.secrets[i].spec.gateway_only {
            &[]
        } else {
            &[(&name, rendered)]
        };
        publish(&mut self.out, &mut self.publisher, values, &retiring, files)?;
        if let Some(hook) = &mut self.on_publish {
            hook();
        }
        Ok(())
    }

    /// Revokes one lease, retrying transient failures until `deadline`.
    /// A leased `call` another template than `i` holds now, not the lease
    /// `i` holds (which it fetches to replace).
    fn held_by_another(
        &self,
        i: usize,
        call: &crate::ctmpl::SecretCall,
    ) -> Option<serde_json::Map<String, serde_json::Value>> {
        let own = self.secrets[i].lease_id();
        self.secrets.iter().enumerate().find_map(|(j, s)| {
            let cur = s.current.as_ref().filter(|_| j != i)?;
            let Format::Consul(t) = &s.spec.format else {
                // A plain [[secret]] of the same leased path: one credential.
                let lease = cur.lease.as_ref().filter(|l| Some(l.id.as_str()) != own)?;
                if !shares_plainly(&s.spec) || !super::consul::same_read(call, &s.spec.read_path())
                {
                    return None;
                }
                let left = self.schedule.secrets[j]
                    .expires
                    .map_or(lease.duration, |e| {
                        e.saturating_duration_since(Instant::now())
                    });
                return Some(super::consul::plain_entry(&cur.data, lease, left.as_secs()));
            };
            super::consul::leased_entry(t, &cur.data, call, own)
        })
    }

    /// For a plain leased `[[secret]]` `i`: the credential a template holds
    /// now from the same path (not `i`'s own lease, which it reads to replace),
    /// as consul-template and Vault Agent would hold one dependency for both.
    fn template_holding(&self, i: usize, path: &str) -> Option<api::SecretRead> {
        if !shares_plainly(&self.secrets[i].spec) {
            return None;
        }
        let own = self.secrets[i].lease_id();
        self.secrets.iter().enumerate().find_map(|(j, s)| {
            let Format::Consul(t) = &s.spec.format else {
                return None;
            };
            let cur = s.current.as_ref().filter(|_| j != i)?;
            let call = t.calls.iter().find(|c| super::consul::same_read(c, path))?;
            let entry = super::consul::leased_entry(t, &cur.data, call, own)?;
            super::consul::shared_read(&entry)
        })
    }

    /// Whether a secret other than `i` holds lease `id` now (templates share
    /// the lease of a call they both make): it is revoked when the last one
    /// lets it go.
    fn held_elsewhere(&self, i: usize, id: &str) -> bool {
        self.secrets
            .iter()
            .enumerate()
            .any(|(j, s)| j != i && s.lease_id() == Some(id))
    }

    fn revoke_lease(&self, i: usize, id: &str, reason: RevokeReason, deadline: Instant) {
        if reason != RevokeReason::Shutdown && self.held_elsewhere(i, id) {
            info!(secret = %self.secrets[i].spec.name, "the replaced lease is still another template's; kept");
            return;
        }
        let result = retry(deadline, || api::revoke_lease(&self.client, id), |_, _| {});
        let name = &self.secrets[i].spec.name;
        events::emit(Event::Revoke {
            secret: Some(name),
            lease_id: Some(id),
            reason,
            outcome: match &result {
                Ok(()) => Outcome::Ok,
                Err(e) => e.outcome(),
            },
        });
        if let Err(e) = &result {
            error!(secret = %name, error = %e, "cannot revoke lease");
        }
    }

    /// A stop was asked for: from now on every Vault call gets at most the time
    /// left until `deadline` (the end of the grace plus `revoke_timeout`), and
    /// the revocation at [`Engine::shutdown`] ends by then too.
    pub fn stop_by(&mut self, deadline: Instant) {
        self.stop_deadline = Some(deadline);
        self.client.set_deadline(Some(deadline));
    }

    /// Wipes every file, then revokes every lease and the token (when
    /// `revoke_on_exit`). Files go first: they must not outlive the process even
    /// when Vault is unreachable and revocation has to wait for its deadline.
    /// The revocation is one deadline, `revoke_timeout` from now (or the one
    /// [`Engine::stop_by`] set, when earlier): every request's timeout is what
    /// is left of it, however many leases there are.
    pub fn shutdown(mut self) {
        let start = Instant::now();
        let files = self.out.wipe_all();
        // Acks are exec's files, but one killed outright cannot remove its own.
        contract::remove_stale_acks(self.out.dir());
        events::emit(Event::Wipe {
            files,
            duration: start.elapsed(),
        });
        info!(files, "files wiped");
        if self.cfg.lifecycle.revoke_on_exit && self.client.token().is_some() {
            let own = Instant::now() + self.cfg.lifecycle.revoke_timeout;
            let deadline = self.stop_deadline.map_or(own, |d| d.min(own));
            self.client.set_deadline(Some(deadline));
            // Templates may share a lease: each is revoked once.
            let mut revoked = std::collections::HashSet::new();
            for i in 0..self.secrets.len() {
                if let Some(id) = self.secrets[i].lease_id().map(str::to_string) {
                    if revoked.insert(id.clone()) {
                        self.revoke_lease(i, &id, RevokeReason::Shutdown, deadline);
                    }
                }
            }
            // Replaced leases in their grace go now too.
            for r in self.schedule.take_retiring() {
                if revoked.insert(r.lease_id.clone()) {
                    self.revoke_lease(r.secret, &r.lease_id, RevokeReason::Shutdown, deadline);
                }
            }
            if self.cfg.lifecycle.revoke_certificates {
                self.revoke_certificates(deadline);
            }
            self.revoke_token(deadline);
        }
        // The workload is over: nothing is left for a successor to adopt.
        if let Some(state) = &self.state {
            state.wipe();
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
            let result = retry(
                deadline,
                || pki::revoke(&self.client, &cert.mount, &cert.serial),
                |_, _| {},
            );
            let secret = &self.secrets[cert.secret].spec.name;
            events::emit(Event::Revoke {
                secret: Some(secret),
                lease_id: None,
                reason: RevokeReason::Shutdown,
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
        let result = retry(deadline, || api::revoke_self(&self.client), |_, _| {});
        events::emit(Event::Revoke {
            secret: None,
            lease_id: None,
            reason: RevokeReason::Shutdown,
            outcome: match &result {
                Ok(()) => Outcome::Ok,
                Err(e) => e.outcome(),
            },
        });
        match result {
            Ok(()) => info!("leases and token revoked"),
            Err(e) => error!(error = %e, "cannot revoke the Vault token"),
        }
    }

    /// From now on every value made current (after its file is in place) is
    /// also offered to `credentials`, starting with the current ones.
    pub fn share_credentials(&mut self, credentials: Arc<crate::gateway::Credentials>) {
        credentials.offer_token(self.client.token());
        if let Some(file) = &self.gateway_file {
            let names = self.cfg.gateways.iter().map(|g| g.name.clone()).collect();
            if let Err(e) = file.set_gateways(names) {
                error!(error = %e, "cannot save the gateways' names");
            }
        }
        credentials.keep_leases(
            self.gateway_file.clone(),
            std::mem::take(&mut self.adopted_gateway_leases),
        );
        self.credentials = Some(credentials);
        for i in 0..self.secrets.len() {
            self.share(i);
        }
    }

    /// Offers secret `i`'s current value to the gateways.
    fn share(&self, i: usize) {
        if let (Some(board), Some(cur)) = (&self.credentials, &self.secrets[i].current) {
            let lease = cur.lease.as_ref().map(|l| l.id.as_str());
            board.offer(&self.secrets[i].spec.name, &cur.data, lease);
        }
    }

    /// The output directory.
    pub fn dir(&self) -> &Path {
        self.out.dir()
    }

    /// Also returns [`Wake::ExitMarker`] from [`Engine::run`] when the marker is
    /// found at a periodic directory check (at most [`DIR_CHECK`] late): the
    /// backstop for the inotify watch.
    pub fn poll_exit_marker(&mut self) {
        self.poll_exit_marker = true;
    }
}
