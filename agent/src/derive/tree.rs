//! A parsed document (JSON or YAML) as a plain tree, so the formats built on
//! them (dockerconfig, kubeconfig) are read one way.

use zeroize::Zeroizing;

use super::Named;

/// A node of a parsed document.
pub enum Node {
    /// A scalar, as its text (a string's content, a number as written).
    Leaf(Zeroizing<Vec<u8>>),
    /// A mapping with string keys, in document order.
    Map(Vec<(String, Node)>),
    /// A sequence.
    List(Vec<Node>),
    /// Anything else (null, booleans, aliases): contributes nothing.
    Other,
}

impl Node {
    /// The value under `key`, when this is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The scalar's text, when this is a scalar.
    pub fn text(&self) -> Option<&[u8]> {
        match self {
            Node::Leaf(v) => Some(v),
            _ => None,
        }
    }

    /// True for mappings and sequences: the only documents worth walking.
    pub fn is_container(&self) -> bool {
        matches!(self, Node::Map(_) | Node::List(_))
    }

    /// Every scalar under this node, named by its dotted path below `prefix`.
    pub fn leaves(&self, prefix: &str, out: &mut Vec<Named>) {
        let join = |k: &str| {
            if prefix.is_empty() {
                k.to_string()
            } else {
                format!("{prefix}.{k}")
            }
        };
        match self {
            Node::Leaf(v) => out.push((prefix.to_string(), v.clone())),
            Node::Map(entries) => {
                for (k, v) in entries {
                    v.leaves(&join(k), out);
                }
            }
            Node::List(items) => {
                for (i, v) in items.iter().enumerate() {
                    v.leaves(&join(&i.to_string()), out);
                }
            }
            Node::Other => {}
        }
    }
}
