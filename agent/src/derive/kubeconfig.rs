//! kubeconfig files: the credentials of each user (token, password, client key
//! and certificate, auth-provider and exec settings), with the `*-data` fields
//! base64-decoded (a `client-key-data` is a PEM key). Cluster addresses, CA
//! certificates and context names are public and would mask ordinary output,
//! so they contribute nothing.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use zeroize::Zeroizing;

use super::tree::Node;
use super::Named;

/// True when `doc` looks like a kubeconfig (`users` and `clusters`, or `kind: Config`).
pub fn is_kubeconfig(doc: &Node) -> bool {
    matches!(doc.get("users"), Some(Node::List(_)))
        && (doc.get("clusters").is_some()
            || doc.get("kind").and_then(Node::text) == Some(b"Config".as_slice()))
}

/// Every credential of every user, named `users.<user name>.<path>`.
pub fn credentials(doc: &Node) -> Vec<Named> {
    let Some(Node::List(users)) = doc.get("users") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, entry) in users.iter().enumerate() {
        let name = entry
            .get("name")
            .and_then(Node::text)
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_else(|| i.to_string());
        if let Some(user) = entry.get("user") {
            user.leaves(&format!("users.{name}"), &mut out);
        }
    }
    let decoded: Vec<Named> = out
        .iter()
        .filter(|(path, _)| path.ends_with("-data"))
        .filter_map(|(path, v)| {
            let v = STANDARD.decode(v.as_slice()).ok()?;
            Some((format!("{path}.decoded"), Zeroizing::new(v)))
        })
        .collect();
    out.extend(decoded);
    out
}
