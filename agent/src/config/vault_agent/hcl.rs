//! Reading a Vault Agent HCL file: its stanzas and attributes with their line
//! numbers (hcl-rs's editable syntax tree keeps byte spans), and attribute
//! values evaluated to plain values.

use hcl::edit::structure::{Block, BlockLabel, Body, Structure};
use hcl::edit::Span as _;
use hcl::eval::Evaluate as _;

/// A stanza's or attribute's place in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line(pub usize);

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}", self.0)
    }
}

/// The parsed file and its text (for line numbers).
pub struct File<'a> {
    text: &'a str,
}

impl<'a> File<'a> {
    /// Parses `text`.
    pub fn parse(text: &'a str) -> Result<(File<'a>, Body), String> {
        let body = hcl::edit::parser::parse_body(text).map_err(|e| e.to_string())?;
        Ok((File { text }, body))
    }

    fn line_of(&self, span: Option<std::ops::Range<usize>>) -> Line {
        let at = span.map_or(0, |s| s.start).min(self.text.len());
        Line(1 + self.text[..at].matches('\n').count())
    }

    /// The line a block starts on.
    pub fn block_line(&self, b: &Block) -> Line {
        self.line_of(b.span())
    }

    /// The entries of `body`: attributes (name, value, line) and blocks.
    pub fn entries<'b>(&self, body: &'b Body) -> Vec<Entry<'b>> {
        body.iter()
            .map(|s| match s {
                Structure::Attribute(a) => Entry::Attr(
                    a.key.as_str().to_string(),
                    value(&a.value),
                    self.line_of(a.span()),
                ),
                Structure::Block(b) => Entry::Block(b, self.line_of(b.span())),
            })
            .collect()
    }
}

/// One entry of a body.
pub enum Entry<'b> {
    /// `name = value` (the value, or why it cannot be evaluated).
    Attr(String, Result<hcl::Value, String>, Line),
    /// `name "label" { … }`.
    Block(&'b Block, Line),
}

/// The first label of a block (`method "kubernetes"`).
pub fn label(b: &Block) -> Option<String> {
    b.labels.first().map(|l| match l {
        BlockLabel::Ident(i) => i.as_str().to_string(),
        BlockLabel::String(s) => s.as_str().to_string(),
    })
}

fn value(e: &hcl::edit::expr::Expression) -> Result<hcl::Value, String> {
    let expr: hcl::Expression = e.clone().into();
    expr.evaluate(&hcl::eval::Context::new())
        .map_err(|e| e.to_string())
}

/// A value as text: strings as they are, numbers and booleans written out.
pub fn text(v: &hcl::Value) -> Option<String> {
    match v {
        hcl::Value::String(s) => Some(s.clone()),
        hcl::Value::Number(n) => Some(n.to_string()),
        hcl::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A value as a boolean (Vault also takes "true"/"false" strings).
pub fn boolean(v: &hcl::Value) -> Option<bool> {
    match v {
        hcl::Value::Bool(b) => Some(*b),
        hcl::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}
