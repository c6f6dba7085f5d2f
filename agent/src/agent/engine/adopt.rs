//! Adopting a previous agent's token and leases from `[state]` (a restart after a
//! crash, an OOM kill, a supervisor's restart policy). What is still alive is
//! kept as it is: no login, no new lease, the files and the generation
//! untouched. What is not (token expired or revoked, lease gone) is replaced
//! through the normal rotation handshake, and what the predecessor was
//! replacing, or no longer needs, is revoked.
//!
//! Only what was obtained for the current configuration is adopted (see
//! `agent::binding`): a token obtained under another Vault address,
//! namespace or auth identity is revoked with its leases where it was issued,
//! and a secret whose path, kind or parameters changed is revoked and fetched
//! anew. Its old values stay masked as retired values.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::{error, info, warn};
use zeroize::Zeroizing;

use super::{lease_grant, token_grant, Current, Engine, IssuedCert, StartError};
use crate::agent::binding::{self, Change};
use crate::agent::certs::DirFiles;
use crate::agent::handshake::entry_name;
use crate::agent::render::render;
use crate::agent::render::Rendered;
use crate::agent::retry::retry;
use crate::agent::state::{
    Leftover, Saved, SavedCertificate, SavedLease, SavedRegistered, SavedSecret, SavedToken,
    StateError,
};
use crate::config::SecretKind;
use crate::contract::VALUES_FILE;
use crate::events::{self, Event, Outcome, RevokeReason};
use crate::vault::api::{self, LeaseInfo, SecretData};
use crate::vault::pki;
use crate::vault::{Token, VaultClient, VaultError};

/// Logs a retry of `what` while Vault is unreachable.
fn log_retry(what: &'static str) -> impl FnMut(&VaultError, Duration) {
    move |e, d| warn!(error = %e, retry_in = ?d, "{what} failed; retrying")
}

/// What became of a saved secret's lease.
pub(super) enum Lease {
    /// Unleased (kv2): nothing to look up.
    None,
    /// Alive: adopted with its remaining TTL.
    Alive(LeaseInfo),
    /// Gone (expired, revoked, or its token is): replaced by a rotation.
    Dead,
    /// A certificate still valid and in place: kept, its re-issue scheduled.
    Certificate,
}

/// The files of a directory on disk are exactly those rendered.
fn same_files(rendered: &DirFiles, disk: &[(String, Zeroizing<Vec<u8>>)]) -> bool {
    rendered.len() == disk.len()
        && rendered.iter().all(|(name, bytes)| {
            disk.iter()
                .any(|(n, b)| n == name && b.as_slice() == bytes.as_slice())
        })
}

fn unix_secs(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Engine {
    /// Adopts the saved state when there is one, else renders from scratch. A
    /// state file that cannot be used is logged and removed: a fresh start, never
    /// a crash loop.
    pub(super) fn adopt_or_render(&mut self) -> Result<(), StartError> {
        let saved = match self.state.as_ref().map(|s| s.load()) {
            None | Some(Ok(None)) => None,
            Some(Ok(Some(saved))) => Some(saved),
            Some(Err(StateError::Newer {
                leftover: Some(left),
                ..
            })) => {
                warn!("the previous agent's state has a newer layout; revoking its token and starting fresh");
                self.revoke_leftover(&left);
                if let Some(s) = &self.state {
                    s.wipe();
                }
                None
            }
            Some(Err(e)) => {
                warn!(error = %e, "cannot adopt the previous agent's state; starting fresh");
                if let Some(s) = &self.state {
                    s.wipe();
                }
                None
            }
        };
        match saved {
            Some(saved) => self.adopt(saved),
            None => self.first_render(),
        }
    }

    fn adopt(&mut self, saved: Saved) -> Result<(), StartError> {
        let deadline = Instant::now() + self.cfg.lifecycle.startup_timeout;
        let bound = binding::token_matches(&saved, &self.cfg, &self.binding);
        let token_adopted = match (&saved.token, bound) {
            (Some(t), Ok(())) => self.adopt_token(t, deadline)?,
            (Some(t), Err(change)) => {
                self.revoke_unbound(&saved, t, change);
                false
            }
            (None, _) => false,
        };
        if !token_adopted {
            self.login_until(deadline)?;
        }
        self.publisher.continue_from(saved.generation);
        self.publisher.take_over(&self.out, true);
        // Not Vault's: kept whatever the binding, so they stay masked.
        self.publisher.add_registered(
            saved
                .registered
                .iter()
                .filter(|r| crate::contract::valid_name(&r.name))
                .filter_map(|r| Some((r.name.clone(), r.value()?)))
                .collect(),
        );
        let bound = bound.is_ok();
        self.drop_unconfigured(&saved, bound, token_adopted);
        if bound {
            self.restore_certificates(&saved);
        }
        if token_adopted {
            self.restore_retiring(&saved.retiring);
        }
        self.settle_gateway_leases(&saved.gateways.leases, token_adopted, deadline)?;
        self.wipe_gone_gateway_files(&saved.gateways.names);

        // No saved values: fetched as at a first start.
        let mut fetch = Vec::new();
        // Values adopted but the file is missing or differs (a crash between
        // saving new values and renaming the file): written from the saved values.
        let mut write = Vec::new();
        let (mut kept, mut replaced) = (0, 0);
        for i in 0..self.secrets.len() {
            let spec = self.secrets[i].spec.clone();
            let Some(ss) = saved
                .secrets
                .iter()
                .find(|ss| bound && binding::secret_matches(ss, &spec))
            else {
                fetch.push(i);
                continue;
            };
            let data = SecretData(ss.data.clone());
            let rendered = render(&spec, &data)?;
            let lease = match (&ss.lease, token_adopted) {
                (None, _) => Lease::None,
                (Some(l), true) => self.lookup_lease(&spec.name, l, deadline)?,
                (Some(_), false) => Lease::Dead,
            };
            // A gateway-only secret has no file to be in place.
            let in_place = spec.gateway_only
                || match &rendered {
                    Rendered::File(bytes) => self
                        .out
                        .adopt(Path::new(&spec.name))
                        .is_some_and(|disk| disk.as_slice() == bytes.as_slice()),
                    Rendered::Dir(files) => self
                        .out
                        .adopt_dir(&spec.name)
                        .is_some_and(|disk| same_files(files, &disk)),
                };
            // An unleased certificate: kept while valid and in place, else
            // re-issued through the rotation like a dead lease.
            let lease = match lease {
                Lease::None if spec.kind == SecretKind::Pki => {
                    if self.adopt_certificate(i, &data, in_place) {
                        Lease::Certificate
                    } else {
                        Lease::Dead
                    }
                }
                other => other,
            };
            let first_ttl = Duration::from_secs(ss.lease.as_ref().map_or(0, |l| l.first_ttl));
            let now = Instant::now();
            let lease = match lease {
                Lease::Certificate => {
                    kept += 1;
                    None
                }
                Lease::Alive(info) => {
                    kept += 1;
                    let grant = lease_grant(&info);
                    self.schedule
                        .adopted(i, Some(grant), first_ttl, spec.refresh, now);
                    Some(info)
                }
                Lease::None => {
                    let refresh = self.refresh_of(i, &data);
                    self.schedule.adopted(i, None, first_ttl, refresh, now);
                    None
                }
                Lease::Dead => {
                    // Replaced by the loop's first step, through the normal
                    // rotation handshake (the file is written then).
                    replaced += 1;
                    self.schedule.replace_now(i, now);
                    self.secrets[i].current = Some(Current {
                        data,
                        lease: None,
                        rendered,
                    });
                    continue;
                }
            };
            if !in_place {
                write.push(i);
            }
            self.secrets[i].current = Some(Current {
                data,
                lease,
                rendered,
            });
        }
        self.fetch_all(&fetch, deadline)?;
        write.extend(fetch);
        if write.is_empty() {
            // Every file is in place: the generation stays, the execs' sets too.
            self.out.adopt(Path::new(VALUES_FILE));
            self.publisher.restore_live(self.current_values(None));
        } else {
            self.publish_files(&write)?;
        }
        self.mark_ready()?;
        self.save_state();
        info!(
            leases_kept = kept,
            leases_to_replace = replaced,
            token = if token_adopted {
                "adopted"
            } else {
                "new login"
            },
            generation = self.publisher.generation(),
            "adopted the previous agent's state"
        );
        self.ready();
        Ok(())
    }

    /// The publication of secrets `which` (files missing or not as saved, or
    /// fetched anew): every current value in a new generation, then the files.
    fn publish_files(&mut self, which: &[usize]) -> Result<(), StartError> {
        self.publish_current(which)?;
        Ok(())
    }

    /// Takes over the certificates the predecessor issued that have not
    /// expired: they are revoked at shutdown as this agent's own.
    fn restore_certificates(&mut self, saved: &Saved) {
        let now = SystemTime::now();
        for c in &saved.certificates {
            let Some(secret) = self.secrets.iter().position(|s| s.spec.name == c.secret) else {
                warn!(secret = %c.secret, serial = %c.serial, "a certificate of a secret no longer configured is left to expire");
                continue;
            };
            let not_after = unix_secs(c.not_after);
            if not_after > now {
                self.issued.push(IssuedCert {
                    secret,
                    mount: c.mount.clone(),
                    serial: c.serial.clone(),
                    issued_at: UNIX_EPOCH + Duration::from_millis(c.issued_at_ms),
                    not_after,
                });
            }
        }
    }

    /// Keeps secret `i`'s adopted certificate (`data`) when it is still valid
    /// and its directory is `in_place`: its re-issue is scheduled at the same
    /// point of its original validity. False when it must be re-issued.
    fn adopt_certificate(&mut self, i: usize, data: &SecretData, in_place: bool) -> bool {
        let spec = &self.secrets[i].spec;
        let serial = data.0.get("serial_number").and_then(|v| v.as_str());
        let Some(cert) = self
            .issued
            .iter()
            .find(|c| c.secret == i && Some(c.serial.as_str()) == serial)
        else {
            warn!(secret = %spec.name, "the previous agent's certificate has expired or is not on record; issuing a new one");
            return false;
        };
        if !in_place {
            warn!(secret = %spec.name, serial = %cert.serial, "the previous agent's certificate directory is missing or changed; issuing a new one");
            return false;
        }
        let now = SystemTime::now();
        let validity = cert
            .not_after
            .duration_since(cert.issued_at)
            .unwrap_or_default();
        let elapsed = now.duration_since(cert.issued_at).unwrap_or_default();
        let left = cert.not_after.duration_since(now).unwrap_or_default();
        self.schedule
            .issued_earlier(i, validity, elapsed, spec.reissue_at, Instant::now());
        events::emit(Event::LeaseTtl {
            secret: &spec.name,
            seconds: left.as_secs_f64(),
        });
        info!(secret = %spec.name, serial = %cert.serial, valid_for = ?left, "kept the previous agent's certificate");
        true
    }

    /// Looks the saved token up; true when it is still valid and now ours.
    fn adopt_token(&mut self, t: &SavedToken, deadline: Instant) -> Result<bool, StartError> {
        self.client
            .set_token(Some(Token(Zeroizing::new(t.token.clone()))));
        let client = &self.client;
        let result = retry(
            deadline,
            || api::lookup_self(client),
            log_retry("token lookup"),
        );
        let info = match result {
            Ok(info) if info.accessor.as_deref().is_none_or(|a| a == t.accessor) => info,
            Err(e) if e.is_transient() => {
                return Err(StartError::Adopt {
                    what: "the token",
                    source: e,
                })
            }
            Ok(_) | Err(_) => {
                warn!("the previous agent's token is no longer valid (expired or revoked); logging in again and replacing its leases");
                self.client.set_token(None);
                return Ok(false);
            }
        };
        self.schedule.token_adopted(
            token_grant(&info),
            Duration::from_secs(t.first_ttl),
            Instant::now(),
        );
        self.accessor = info.accessor;
        info!(ttl = ?info.ttl, "adopted the previous agent's Vault token");
        Ok(true)
    }

    /// Looks a saved lease up. A policy without `sys/leases/lookup` gets a
    /// renewal instead, which proves the lease alive just as well.
    pub(super) fn lookup_lease(
        &self,
        name: &str,
        l: &SavedLease,
        deadline: Instant,
    ) -> Result<Lease, StartError> {
        let c = &self.client;
        let mut result = retry(
            deadline,
            || api::lookup_lease(c, &l.id),
            log_retry("lease lookup"),
        );
        if matches!(result, Err(VaultError::Denied { .. })) {
            let increment = Duration::from_secs(l.first_ttl);
            result = retry(
                deadline,
                || api::renew_lease(c, &l.id, increment),
                log_retry("lease renewal"),
            );
        }
        match result {
            Ok(info) if !info.duration.is_zero() => Ok(Lease::Alive(info)),
            Err(e) if e.is_transient() => Err(StartError::Adopt {
                what: "a lease",
                source: e,
            }),
            Ok(_) | Err(_) => {
                warn!(secret = %name, "the previous agent's lease is gone; replacing the credentials");
                Ok(Lease::Dead)
            }
        }
    }

    /// Revokes what the predecessor was replacing, and the leases (and
    /// certificates) of secrets no longer configured as they were (another
    /// path, kind or parameters, or gone; every secret when the token was not
    /// `bound` to this configuration): their files are wiped unless a secret
    /// of the same name replaces them, their values stay masked for the
    /// retention window. Without the predecessor's token its leases are gone
    /// with it (or were revoked with it): nothing is left to revoke.
    fn drop_unconfigured(&mut self, saved: &Saved, bound: bool, token_adopted: bool) {
        let configured = |ss: &SavedSecret| {
            bound
                && self
                    .secrets
                    .iter()
                    .any(|s| binding::secret_matches(ss, &s.spec))
        };
        let mut revoke: Vec<(String, RevokeReason)> = saved
            .revoke
            .iter()
            .map(|id| (id.clone(), RevokeReason::Stale))
            .collect();
        let mut certificates = Vec::new();
        let mut retire = Vec::new();
        for ss in saved.secrets.iter().filter(|ss| !configured(ss)) {
            let still_named = self.secrets.iter().any(|s| s.spec.name == ss.name);
            let reason = if still_named {
                RevokeReason::Rebound
            } else {
                RevokeReason::Stale
            };
            revoke.extend(ss.lease.as_ref().map(|l| (l.id.clone(), reason)));
            certificates.extend(saved.certificates.iter().filter(|c| c.secret == ss.name));
            for (field, value) in SecretData(ss.data.clone()).leaves() {
                retire.push((entry_name(&ss.name, &field), value));
            }
            if still_named {
                info!(secret = %ss.name, "the secret's path, kind or parameters changed (or the token's configuration did); fetching it anew");
            } else {
                self.out.wipe_name(&ss.name);
            }
        }
        self.publisher.retire(retire);
        if !token_adopted {
            return;
        }
        for (id, reason) in revoke {
            self.revoke_stale(&id, reason);
        }
        if self.cfg.lifecycle.revoke_certificates {
            for c in certificates {
                revoke_certificate(&self.client, c, RevokeReason::Rebound);
            }
        }
    }

    /// Revokes a lease a predecessor left (one attempt: a failure is logged).
    pub(super) fn revoke_stale(&self, id: &str, reason: RevokeReason) {
        let result = api::revoke_lease(&self.client, id);
        events::emit(Event::Revoke {
            secret: None,
            lease_id: Some(id),
            reason,
            outcome: match &result {
                Ok(()) => Outcome::Ok,
                Err(e) => e.outcome(),
            },
        });
        if let Err(e) = result {
            error!(error = %e, "cannot revoke a lease the previous agent left");
        }
    }

    /// Revokes the token of a state this agent cannot read (with it, the
    /// leases it created), where it was issued; one attempt.
    fn revoke_leftover(&self, left: &Leftover) {
        let mut vault = self.cfg.vault.clone();
        vault.address.clone_from(&left.vault);
        vault.namespace.clone_from(&left.namespace);
        let result = VaultClient::new(&vault).and_then(|mut client| {
            client.set_token(Some(Token(left.token.clone())));
            client.set_deadline(Some(Instant::now() + self.cfg.lifecycle.revoke_timeout));
            api::revoke_self(&client)
        });
        events::emit(Event::Revoke {
            secret: None,
            lease_id: None,
            reason: RevokeReason::Stale,
            outcome: match &result {
                Ok(()) => Outcome::Ok,
                Err(e) => e.outcome(),
            },
        });
        match result {
            Ok(()) => info!("revoked the token (and leases) of the unreadable state"),
            Err(e) => {
                error!(error = %e, "cannot revoke the token of the unreadable state; it runs out at its TTL")
            }
        }
    }

    /// The predecessor's token was obtained under another configuration
    /// (`change`): its leases, certificates and itself are revoked where it
    /// was issued (its Vault address and namespace), one attempt each, so that
    /// nothing obtained for the old configuration stays alive. A Vault that
    /// cannot be reached is logged: the token then runs out at its TTL.
    fn revoke_unbound(&self, saved: &Saved, t: &SavedToken, change: Change) {
        warn!(change = %change, "the previous agent's token was obtained under another configuration; revoking it and its leases, logging in again");
        let mut vault = self.cfg.vault.clone();
        vault.address.clone_from(&saved.vault);
        if let Some(b) = &saved.binding {
            vault.namespace.clone_from(&b.namespace);
        }
        let mut client = match VaultClient::new(&vault) {
            Ok(c) => c,
            Err(e) => {
                error!(error = %e, "cannot reach the previous agent's Vault to revoke its token");
                return;
            }
        };
        client.set_token(Some(Token(Zeroizing::new(t.token.clone()))));
        client.set_deadline(Some(Instant::now() + self.cfg.lifecycle.revoke_timeout));
        let leases = saved.secrets.iter().filter_map(|ss| {
            let l = ss.lease.as_ref()?;
            Some((Some(ss.name.as_str()), l.id.as_str()))
        });
        let others = saved
            .revoke
            .iter()
            .map(|id| (None, id.as_str()))
            .chain(
                saved
                    .retiring
                    .iter()
                    .map(|r| (Some(r.secret.as_str()), r.id.as_str())),
            )
            .chain(saved.gateways.leases.iter().map(|g| (None, g.id.as_str())));
        for (secret, id) in leases.chain(others) {
            let result = api::revoke_lease(&client, id);
            events::emit(Event::Revoke {
                secret,
                lease_id: Some(id),
                reason: RevokeReason::Rebound,
                outcome: match &result {
                    Ok(()) => Outcome::Ok,
                    Err(e) => e.outcome(),
                },
            });
            if let Err(e) = result {
                error!(error = %e, "cannot revoke a lease of the previous agent's token");
            }
        }
        if self.cfg.lifecycle.revoke_certificates {
            for c in &saved.certificates {
                revoke_certificate(&client, c, RevokeReason::Rebound);
            }
        }
        let result = api::revoke_self(&client);
        events::emit(Event::Revoke {
            secret: None,
            lease_id: None,
            reason: RevokeReason::Rebound,
            outcome: match &result {
                Ok(()) => Outcome::Ok,
                Err(e) => e.outcome(),
            },
        });
        match result {
            Ok(()) => info!("revoked the previous agent's token and leases"),
            Err(e) => {
                error!(error = %e, "cannot revoke the previous agent's token; it runs out at its TTL")
            }
        }
    }

    /// Writes what a successor needs to adopt (no-op without `[state]`).
    /// Failing to is logged: the agent works on, a restart would start fresh.
    pub(super) fn save_state(&self) {
        let Some(state) = &self.state else {
            return;
        };
        let saved = Saved {
            vault: self.cfg.vault.address.clone(),
            binding: Some(self.binding.clone()),
            token: self.client.token().map(|t| SavedToken {
                token: t.0.to_string(),
                accessor: self.accessor.clone().unwrap_or_default(),
                first_ttl: self.schedule.token_first_ttl().as_secs(),
            }),
            generation: self.publisher.generation(),
            secrets: self
                .secrets
                .iter()
                .zip(&self.schedule.secrets)
                .filter_map(|(s, timer)| {
                    let c = s.current.as_ref()?;
                    let (kind, params_sha256) = binding::secret_identity(&s.spec);
                    Some(SavedSecret {
                        name: s.spec.name.clone(),
                        path: s.spec.path.clone(),
                        kind,
                        params_sha256,
                        data: c.data.0.clone(),
                        lease: c.lease.as_ref().map(|l| SavedLease {
                            id: l.id.clone(),
                            first_ttl: timer.first_ttl.as_secs(),
                        }),
                    })
                })
                .collect(),
            revoke: self.revoking.clone(),
            certificates: self
                .issued
                .iter()
                .map(|c| SavedCertificate {
                    secret: self.secrets[c.secret].spec.name.clone(),
                    mount: c.mount.clone(),
                    serial: c.serial.clone(),
                    issued_at_ms: unix_ms(c.issued_at),
                    not_after: c
                        .not_after
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs()),
                })
                .collect(),
            retiring: self.saved_retiring(),
            registered: self
                .publisher
                .registered()
                .iter()
                .map(|(name, value)| SavedRegistered::new(name, value))
                .collect(),
            gateways: Default::default(),
        };
        if let Err(e) = state.save(&saved) {
            error!(error = %e, "cannot save the agent's state; a restart would log in again");
        }
    }
}

/// Revokes a predecessor's certificate that is still valid (one attempt).
fn revoke_certificate(client: &VaultClient, c: &SavedCertificate, reason: RevokeReason) {
    if unix_secs(c.not_after) <= SystemTime::now() {
        return;
    }
    let result = pki::revoke(client, &c.mount, &c.serial);
    events::emit(Event::Revoke {
        secret: Some(&c.secret),
        lease_id: None,
        reason,
        outcome: match &result {
            Ok(()) => Outcome::Ok,
            Err(e) => e.outcome(),
        },
    });
    match result {
        Ok(()) => {
            info!(secret = %c.secret, serial = %c.serial, "revoked the previous agent's certificate")
        }
        Err(e) => {
            error!(secret = %c.secret, serial = %c.serial, error = %e, "cannot revoke the previous agent's certificate")
        }
    }
}
