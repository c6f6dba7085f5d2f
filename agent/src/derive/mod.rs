//! Values a secret contributes besides itself when it is a document: each leaf
//! of a JSON, YAML or dotenv value, a kubeconfig's credentials, a docker
//! config's decoded `auth`, and a PEM private key in its other standard
//! encoding. Programs print a field of a document on its own (`jq -r
//! .private_key_id`) or re-encode it, so these are masked like the value.
//!
//! Every place a secret value enters a redaction set calls [`derive`]:
//! `--secret-file` and `--secrets-dir` (`secrets_source`), and the agent's
//! values from Vault (which publishes them in `.shroud/values` for exec).
//! A value that is no document contributes nothing, silently.

mod dockerconfig;
mod dotenv;
mod json;
mod kubeconfig;
mod private_key;
mod tree;
mod yaml;

use shroud_redactor::quality::{assess, Verdict};
use zeroize::Zeroizing;

use tree::Node;

/// A value and the name it is reported under.
pub type Named = (String, Zeroizing<Vec<u8>>);

/// Larger values are not parsed (Kubernetes caps a Secret at 1 MiB).
const MAX_DOCUMENT: usize = 1 << 20;
/// At most this many values derived from one secret.
const MAX_DERIVED: usize = 4096;
/// How deep documents inside documents are looked into (a key in a JSON field
/// in a YAML file is depth 2).
const MAX_DEPTH: usize = 3;

/// The values `value` (the secret `name`) contributes besides itself, each
/// named `<name>#<path>` (`sa.json#private_key_id`, `kube#users.ci.token`,
/// `tls.key#pkcs1`). Leaves shorter than `min_length`, and leaves whose pieces
/// are likely in ordinary text ([`assess`]: `"type": "service_account"`, a
/// public URL), are left out: the secret as a whole is masked anyway.
pub fn derive(name: &str, value: &[u8], min_length: usize) -> Vec<Named> {
    let mut out = Vec::new();
    walk(name, value, min_length, 0, &mut out);
    out
}

fn push(out: &mut Vec<Named>, parent: &[u8], name: String, value: Zeroizing<Vec<u8>>) {
    if out.len() < MAX_DERIVED
        && value.as_slice() != parent
        && !out.iter().any(|(_, v)| *v == value)
    {
        out.push((name, value));
    }
}

fn walk(name: &str, value: &[u8], min_length: usize, depth: usize, out: &mut Vec<Named>) {
    if depth >= MAX_DEPTH || value.len() > MAX_DOCUMENT || out.len() >= MAX_DERIVED {
        return;
    }
    for (form, v) in private_key::other_encodings(value) {
        push(out, value, format!("{name}#{form}"), v);
    }
    for (path, leaf) in leaves(value) {
        let child = format!("{name}#{path}");
        walk(&child, &leaf, min_length, depth + 1, out);
        if leaf.len() >= min_length && assess(&leaf) == Verdict::Strong {
            push(out, value, child, leaf);
        }
    }
}

/// The leaves of the document `value` is, by path; none when it is no document.
fn leaves(value: &[u8]) -> Vec<Named> {
    let doc = match json::parse(value) {
        Some(doc) => doc,
        None => {
            if let Some(pairs) = dotenv::parse(value) {
                return pairs;
            }
            match yaml::parse(value) {
                Some(doc) => doc,
                None => return Vec::new(),
            }
        }
    };
    document_leaves(&doc)
}

fn document_leaves(doc: &Node) -> Vec<Named> {
    if kubeconfig::is_kubeconfig(doc) {
        return kubeconfig::credentials(doc);
    }
    let mut out = Vec::new();
    doc.leaves("", &mut out);
    out.extend(dockerconfig::decoded_auths(doc));
    out
}

#[cfg(test)]
mod tests;
