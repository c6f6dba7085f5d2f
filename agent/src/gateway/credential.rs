//! The credential handle: the engine offers every value it makes current, the
//! gateways read the newest one at each new upstream login. Nothing else of a
//! secret is kept here.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use serde_json::Value;
use zeroize::Zeroizing;

use super::retire::Leases;
use super::vault::leases::Adopted;
use crate::agent::state::GatewayLeaseFile;
use crate::vault::api::SecretData;
use crate::vault::client::Token;

/// A database login: a secret's `username` and `password` fields.
pub struct Credential {
    /// The role name.
    pub username: String,
    /// The role's password.
    pub password: Zeroizing<String>,
    /// The lease it came with (audit records, and closing its connections
    /// when its grace ends).
    pub lease_id: Option<String>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential").finish_non_exhaustive()
    }
}

impl Credential {
    /// The `username` and `password` string fields of `data`, if both are there.
    pub fn from_data(data: &SecretData, lease_id: Option<&str>) -> Option<Credential> {
        let field = |k: &str| match data.0.get(k) {
            Some(Value::String(s)) => Some(s.as_str()),
            _ => None,
        };
        Some(Credential {
            username: field("username")?.to_string(),
            password: Zeroizing::new(field("password")?.to_string()),
            lease_id: lease_id.map(str::to_string),
        })
    }
}

/// A secret's whole value and the lease it came with: what an http gateway
/// renders its headers from (the lease for its audit records).
pub struct Document {
    /// The value.
    pub data: SecretData,
    /// Its lease, if it has one.
    pub lease_id: Option<String>,
}

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Document").finish_non_exhaustive()
    }
}

/// The current credential of each secret a gateway uses, by secret name.
#[derive(Debug, Default)]
pub struct Credentials {
    slots: BTreeMap<String, ArcSwapOption<Credential>>,
    /// Whole values, for gateways that render headers from any field.
    documents: BTreeMap<String, ArcSwapOption<Document>>,
    /// The agent's own Vault token (the vault gateway's credential).
    token: ArcSwapOption<Token>,
    /// The open connections by the lease they logged in with.
    pub leases: Arc<Leases>,
    /// `[state]`: where the vault gateways keep their leases, and the
    /// predecessor's leases the engine adopted for them.
    kept: std::sync::Mutex<KeptLeases>,
}

/// The vault gateways' leases across restarts (`agent::state::gateway`).
#[derive(Debug, Default)]
struct KeptLeases {
    file: Option<Arc<GatewayLeaseFile>>,
    adopted: Vec<Adopted>,
}

impl Credentials {
    /// Slots for the secrets `names` (others are never kept).
    pub fn for_secrets(names: impl IntoIterator<Item = String>) -> Credentials {
        Credentials {
            slots: names
                .into_iter()
                .map(|n| (n, ArcSwapOption::empty()))
                .collect(),
            ..Credentials::default()
        }
    }

    /// Also keeps the whole value of the secrets `names`.
    pub fn with_documents(mut self, names: impl IntoIterator<Item = String>) -> Credentials {
        self.documents = names
            .into_iter()
            .map(|n| (n, ArcSwapOption::empty()))
            .collect();
        self
    }

    /// `token` is now the agent's Vault token.
    pub fn offer_token(&self, token: Option<&Token>) {
        self.token.store(token.cloned().map(Arc::new));
    }

    /// The agent's current Vault token.
    pub fn token(&self) -> Option<Arc<Token>> {
        self.token.load_full()
    }

    /// Secret `name`'s current value, when it is kept whole.
    pub fn document(&self, name: &str) -> Option<Arc<Document>> {
        self.documents.get(name)?.load_full()
    }

    /// `data` (of lease `lease_id`) is now secret `name`'s current value. A
    /// value without a username and password empties the slot: logins fail
    /// rather than use a stale one.
    pub fn offer(&self, name: &str, data: &SecretData, lease_id: Option<&str>) {
        if let Some(slot) = self.slots.get(name) {
            slot.store(Credential::from_data(data, lease_id).map(Arc::new));
        }
        self.offer_document(name, data, lease_id);
    }

    /// `data` (of lease `lease_id`) is now secret `name`'s current value,
    /// kept whole when a gateway renders from it.
    pub fn offer_document(&self, name: &str, data: &SecretData, lease_id: Option<&str>) {
        if let Some(slot) = self.documents.get(name) {
            slot.store(Some(Arc::new(Document {
                data: SecretData(data.0.clone()),
                lease_id: lease_id.map(str::to_string),
            })));
        }
    }

    /// Lease `lease_id`'s grace is over and it is about to be revoked: the
    /// connections that logged in with it are closed. Returns how many.
    pub fn retire(&self, lease_id: &str) -> usize {
        self.leases.retire(lease_id)
    }

    /// The engine's `[state]` lease file for the vault gateways, and the
    /// predecessor's gateway leases it found alive.
    pub fn keep_leases(&self, file: Option<Arc<GatewayLeaseFile>>, adopted: Vec<Adopted>) {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.file = file;
        kept.adopted = adopted;
    }

    /// Gateway `gateway`'s lease file and adopted leases (taken: a gateway
    /// starts once).
    pub fn leases_of(&self, gateway: &str) -> (Option<Arc<GatewayLeaseFile>>, Vec<Adopted>) {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let (mine, others) = std::mem::take(&mut kept.adopted)
            .into_iter()
            .partition(|a| a.saved.gateway == gateway);
        kept.adopted = others;
        (kept.file.clone(), mine)
    }

    /// Secret `name`'s current credential.
    pub fn current(&self, name: &str) -> Option<Arc<Credential>> {
        self.slots.get(name)?.load_full()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(json: &str) -> SecretData {
        SecretData(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn the_newest_offer_is_current_and_others_are_ignored() {
        let c = Credentials::for_secrets(["db".to_string()]);
        assert!(c.current("db").is_none());
        c.offer(
            "db",
            &data(r#"{"username":"u1","password":"p1"}"#),
            Some("l1"),
        );
        c.offer("other", &data(r#"{"username":"x","password":"y"}"#), None);
        assert!(c.current("other").is_none());
        let first = c.current("db").unwrap();
        c.offer(
            "db",
            &data(r#"{"username":"u2","password":"p2"}"#),
            Some("l2"),
        );
        assert_eq!(c.current("db").unwrap().username, "u2");
        assert_eq!(c.current("db").unwrap().lease_id.as_deref(), Some("l2"));
        // A login in progress keeps the one it loaded.
        assert_eq!(
            (first.username.as_str(), first.password.as_str()),
            ("u1", "p1")
        );
        c.offer("db", &data(r#"{"token":"t"}"#), None);
        assert!(c.current("db").is_none());
        assert!(!format!("{first:?}").contains("p1"));
    }
}
