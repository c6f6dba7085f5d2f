//! JSON documents: an object or an array (a bare string or number is a value,
//! not a document).

use serde_json::Value;
use zeroize::Zeroizing;

use super::tree::Node;

/// The document `value` holds, when it is a JSON object or array.
pub fn parse(value: &[u8]) -> Option<Node> {
    let first = value.iter().find(|b| !b.is_ascii_whitespace())?;
    if !matches!(first, b'{' | b'[') {
        return None;
    }
    // serde_json stops at 128 levels of nesting, so a hostile value cannot
    // exhaust the stack here or in `node`.
    let parsed: Value = serde_json::from_slice(value).ok()?;
    Some(node(parsed))
}

fn node(v: Value) -> Node {
    match v {
        Value::String(s) => Node::Leaf(Zeroizing::new(s.into_bytes())),
        Value::Number(n) => Node::Leaf(Zeroizing::new(n.to_string().into_bytes())),
        Value::Object(m) => Node::Map(m.into_iter().map(|(k, v)| (k, node(v))).collect()),
        Value::Array(a) => Node::List(a.into_iter().map(node).collect()),
        Value::Bool(_) | Value::Null => Node::Other,
    }
}
