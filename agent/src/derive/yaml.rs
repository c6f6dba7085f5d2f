//! YAML documents: a mapping or a sequence at the top (several documents in one
//! value are read as a list of them). Built from the parser's event stream
//! (not its recursive loader) with an explicit, bounded stack, and aliases are
//! never expanded (no "billion laughs").

use yaml_rust2::parser::{Event, Parser};
use zeroize::Zeroizing;

use super::tree::Node;

/// Nesting deeper than this is not a secret document: give up.
const MAX_DEPTH: usize = 64;

/// A container being built: a list, or a map with the key waiting for its value.
enum Open {
    List(Vec<Node>),
    Map(Vec<(String, Node)>, Option<String>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    docs: Vec<Node>,
    too_deep: bool,
}

impl Builder {
    fn push(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Open::List(items)) => items.push(node),
            Some(Open::Map(entries, key)) => match key.take() {
                None => {
                    // A key: scalars only (complex keys are skipped with their value).
                    *key = Some(match node {
                        Node::Leaf(k) => String::from_utf8_lossy(&k).into_owned(),
                        _ => String::new(),
                    });
                }
                Some(k) if !k.is_empty() => entries.push((k, node)),
                Some(_) => {}
            },
        }
    }
}

impl Builder {
    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Scalar(text, ..) => self.push(Node::Leaf(Zeroizing::new(text.into_bytes()))),
            Event::Alias(_) => self.push(Node::Other),
            Event::SequenceStart(..) | Event::MappingStart(..) if self.stack.len() >= MAX_DEPTH => {
                self.too_deep = true;
            }
            Event::SequenceStart(..) => self.stack.push(Open::List(Vec::new())),
            Event::MappingStart(..) => self.stack.push(Open::Map(Vec::new(), None)),
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match self.stack.pop() {
                    Some(Open::List(items)) => Node::List(items),
                    Some(Open::Map(entries, _)) => Node::Map(entries),
                    None => Node::Other,
                };
                self.push(node);
            }
            _ => {}
        }
    }
}

/// The document `value` holds, when it is YAML with a mapping or sequence on top.
pub fn parse(value: &[u8]) -> Option<Node> {
    let text = std::str::from_utf8(value).ok()?;
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    loop {
        let (event, _) = parser.next_token().ok()?;
        if event == Event::StreamEnd {
            break;
        }
        builder.on_event(event);
        if builder.too_deep {
            return None;
        }
    }
    let mut docs = builder.docs;
    match docs.len() {
        1 => docs.pop().filter(Node::is_container),
        0 => None,
        _ => {
            docs.retain(Node::is_container);
            (!docs.is_empty()).then_some(Node::List(docs))
        }
    }
}
