//! A predecessor's vault-gateway leases at a restart (`[state]`): those of a
//! vault gateway still configured whose `paths` still allow the path they were
//! obtained through are looked up, and the ones alive handed to that gateway
//! (renewed while it runs, revoked when it stops); the others are revoked at
//! once. Without the predecessor's token they are gone with it: it expired or
//! was revoked (with its leases), so nothing is left to adopt.

use std::time::Instant;

use tracing::{error, info, warn};

use super::adopt::Lease;
use super::Engine;
use super::StartError;
use crate::agent::state::{SavedGatewayLease, SavedLease};
use crate::config::GatewayKind;
use crate::events::{self, Event, Outcome, RevokeReason};
use crate::gateway::vault::leases::Adopted;
use crate::gateway::vault::policy;
use crate::vault::api;

impl Engine {
    /// Settles the predecessor's gateway leases `saved` (see the module), then
    /// writes the gateways' lease file with the ones kept.
    pub(super) fn settle_gateway_leases(
        &mut self,
        saved: &[SavedGatewayLease],
        token_adopted: bool,
        deadline: Instant,
    ) -> Result<(), StartError> {
        let mut kept = Vec::new();
        if token_adopted {
            for l in saved {
                match self.owner_of(l) {
                    Err(reason) => self.revoke_gateway_lease(l, reason),
                    Ok(()) => {
                        let as_saved = SavedLease {
                            id: l.id.clone(),
                            first_ttl: l.first_ttl,
                        };
                        let name = format!("gateway {}", l.gateway);
                        if let Lease::Alive(info) = self.lookup_lease(&name, &as_saved, deadline)? {
                            kept.push(Adopted {
                                saved: l.clone(),
                                ttl: info.duration,
                            });
                        }
                    }
                }
            }
        }
        if !saved.is_empty() {
            info!(
                saved = saved.len(),
                kept = kept.len(),
                "settled the gateways' leases of the previous agent"
            );
        }
        if let Some(file) = &self.gateway_file {
            let leases = kept.iter().map(|a| a.saved.clone()).collect();
            let names = self.cfg.gateways.iter().map(|g| g.name.clone()).collect();
            if let Err(e) = file.replace_all(leases, names) {
                error!(error = %e, "cannot save the gateways' leases");
            }
        }
        self.adopted_gateway_leases = kept;
        Ok(())
    }

    /// Wipes the local password or token file of each gateway in `ran` (the
    /// predecessor's) that is no longer configured, unless a secret or a
    /// configured gateway now writes a file of that name.
    pub(super) fn wipe_gone_gateway_files(&mut self, ran: &[String]) {
        let cfg = self.cfg.clone();
        for name in ran
            .iter()
            .filter(|n| !cfg.gateways.iter().any(|g| &g.name == *n))
        {
            for file in [format!("{name}.password"), format!("{name}.token")] {
                let taken = cfg.secrets.iter().any(|s| s.name == file)
                    || cfg.gateways.iter().any(|g| g.password_file() == file);
                if !taken && self.out.adopt(std::path::Path::new(&file)).is_some() {
                    info!(gateway = %name, file = %file, "removing the local file of a gateway no longer configured");
                    self.out.wipe_name(&file);
                }
            }
        }
    }

    /// Ok when a vault gateway of lease `l`'s name is configured and its
    /// `paths` allow `l`'s path; else why it is revoked: `stale` (no such
    /// gateway) or `rebound` (its path is no longer allowed).
    fn owner_of(&self, l: &SavedGatewayLease) -> Result<(), RevokeReason> {
        let gateway = self
            .cfg
            .gateways
            .iter()
            .find(|g| g.name == l.gateway && g.kind == GatewayKind::Vault);
        let Some(forward) = gateway.and_then(|g| g.forward.as_ref()) else {
            warn!(gateway = %l.gateway, lease = %l.id, "the gateway of a lease the previous agent obtained is no longer configured; revoking it");
            return Err(RevokeReason::Stale);
        };
        if !policy::allows(&forward.paths, &l.path) {
            warn!(gateway = %l.gateway, path = %l.path, lease = %l.id, "the gateway no longer allows the path of a lease the previous agent obtained; revoking it");
            return Err(RevokeReason::Rebound);
        }
        Ok(())
    }

    /// Revokes a predecessor's gateway lease (one attempt: a failure is
    /// logged, the lease then ends with the token at exit).
    fn revoke_gateway_lease(&self, l: &SavedGatewayLease, reason: RevokeReason) {
        let result = api::revoke_lease(&self.client, &l.id);
        events::emit(Event::GatewayRevoke {
            gateway: &l.gateway,
            path: &l.path,
            lease_id: &l.id,
            reason,
            outcome: match &result {
                Ok(()) => Outcome::Ok,
                Err(e) => e.outcome(),
            },
        });
        match result {
            Ok(()) => {
                info!(gateway = %l.gateway, lease = %l.id, "revoked a lease obtained through the gateway")
            }
            Err(e) => {
                error!(gateway = %l.gateway, lease = %l.id, error = %e, "cannot revoke a lease the previous agent obtained through a gateway")
            }
        }
    }
}
