//! `.dockerconfigjson` (and the older `.dockercfg`, without `auths`): each
//! registry's `auth` is base64 of `user:password`, which a client decodes and
//! may print; its user and its password are values of their own.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use zeroize::Zeroizing;

use super::tree::Node;
use super::Named;

/// The registries of a docker config, when `doc` is one.
fn registries(doc: &Node) -> Option<&[(String, Node)]> {
    let map = match doc.get("auths") {
        Some(Node::Map(m)) => m,
        Some(_) => return None,
        None => match doc {
            Node::Map(m) => m,
            _ => return None,
        },
    };
    map.iter()
        .any(|(_, entry)| entry.get("auth").is_some())
        .then_some(map.as_slice())
}

/// For each registry's `auth`: `…auth.decoded` (`user:password`), `…auth.user`
/// and `…auth.password`.
pub fn decoded_auths(doc: &Node) -> Vec<Named> {
    let mut out = Vec::new();
    let prefix = if doc.get("auths").is_some() {
        "auths."
    } else {
        ""
    };
    for (registry, entry) in registries(doc).unwrap_or_default() {
        let Some(auth) = entry.get("auth").and_then(Node::text) else {
            continue;
        };
        let auth: Vec<u8> = auth
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        let Ok(decoded) = STANDARD
            .decode(&auth)
            .or_else(|_| STANDARD_NO_PAD.decode(&auth))
            .map(Zeroizing::new)
        else {
            continue;
        };
        let name = format!("{prefix}{registry}.auth");
        if let Some(colon) = decoded.iter().position(|&b| b == b':') {
            out.push((
                format!("{name}.user"),
                Zeroizing::new(decoded[..colon].to_vec()),
            ));
            out.push((
                format!("{name}.password"),
                Zeroizing::new(decoded[colon + 1..].to_vec()),
            ));
        }
        out.push((format!("{name}.decoded"), decoded));
    }
    out
}
