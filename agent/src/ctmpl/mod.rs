//! Consul Template templates, byte for byte: Go's `text/template` (lexer,
//! parser, exec) with consul-template's functions and its options
//! (delimiters, `missingkey`). Written here rather than taken from a crate:
//! see docs/migrate.md ("Why not gtmpl"). Knows nothing of Vault or the
//! configuration: the caller finds the `secret`/`pkiCert` calls with
//! [`Template::calls`], fetches them, and answers them at render time.

mod exec;
mod funcs;
mod gofmt;
mod gotime;
mod json;
mod lexer;
mod parse;
mod value;
mod yaml;

use std::collections::BTreeMap;

pub use exec::ExecError;
pub use funcs::Context;
pub use value::{Struct, Value};

/// A template that does not parse, or a `secret` call that cannot be
/// resolved statically. Holds the line, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The template's options (Vault Agent's `template` stanza keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `left_delimiter` (default `{{`).
    pub left: String,
    /// `right_delimiter` (default `}}`).
    pub right: String,
    /// `error_on_missing_key`: a missing map key is an error instead of `<no value>`.
    pub missing_key_error: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            left: "{{".into(),
            right: "}}".into(),
            missing_key_error: false,
        }
    }
}

/// Which Vault function a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecretFunc {
    /// `secret PATH` (a read) or `secret PATH "k=v"…` (a write).
    Secret,
    /// `pkiCert PATH "k=v"…` (a certificate issue).
    PkiCert,
}

/// One distinct Vault request a template makes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretCall {
    /// `secret` or `pkiCert`.
    pub func: SecretFunc,
    /// The Vault path as written.
    pub path: String,
    /// `k=v` parameters (trimmed, as consul-template splits them); empty for a read.
    pub params: BTreeMap<String, String>,
}

impl SecretCall {
    /// From the call's string arguments, as consul-template parses them.
    pub fn new(func: SecretFunc, args: &[String], line: usize) -> Result<SecretCall, ParseError> {
        let (path, rest) = args.split_first().ok_or_else(|| ParseError {
            line,
            message: "secret needs a path".into(),
        })?;
        let mut params = BTreeMap::new();
        for kv in rest.iter().filter(|s| !s.is_empty()) {
            match kv.split_once('=') {
                Some((k, v)) => {
                    params.insert(k.trim().to_string(), v.trim().to_string());
                }
                None => {
                    return Err(ParseError {
                        line,
                        message: format!("not k=v pair {:?}", kv.split('=').next().unwrap_or("")),
                    })
                }
            }
        }
        Ok(SecretCall {
            func,
            path: path.clone(),
            params,
        })
    }
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    tree: parse::Tree,
    missing_key_error: bool,
}

impl Template {
    /// Parses `text` with `opts`' delimiters.
    pub fn parse(text: &str, opts: &Options) -> Result<Template, ParseError> {
        if opts.left.is_empty() || opts.right.is_empty() {
            return Err(ParseError {
                line: 0,
                message: "delimiters must not be empty".into(),
            });
        }
        let segs = lexer::segments(text, &opts.left, &opts.right)?;
        let tree = parse::parse(segs, &funcs::exists)?;
        Ok(Template {
            tree,
            missing_key_error: opts.missing_key_error,
        })
    }

    /// Every distinct `secret`/`pkiCert` call, in order of first use. A call
    /// whose arguments are not all string literals (a variable, a pipeline, a
    /// piped value) cannot be fetched before rendering and is an error naming
    /// its line.
    pub fn calls(&self) -> Result<Vec<SecretCall>, ParseError> {
        let mut out = Vec::new();
        let mut lists: Vec<&[parse::Node]> = vec![&self.tree.root];
        lists.extend(self.tree.defines.values().map(Vec::as_slice));
        for l in lists {
            calls_in_list(l, &mut out)?;
        }
        Ok(out)
    }

    /// Renders with `inputs`.
    pub fn render(
        &self,
        lookup: &dyn Fn(&SecretCall) -> Option<Value>,
        context: Context<'_>,
    ) -> Result<String, ExecError> {
        exec::execute(
            &self.tree,
            &exec::Inputs {
                missing_key_error: self.missing_key_error,
                lookup,
                context,
            },
        )
    }
}

fn calls_in_list(list: &[parse::Node], out: &mut Vec<SecretCall>) -> Result<(), ParseError> {
    use parse::Node;
    for n in list {
        match n {
            Node::Action(p) => calls_in_pipe(p, out)?,
            Node::If(b) | Node::With(b) | Node::Range(b) => {
                calls_in_pipe(&b.pipe, out)?;
                calls_in_list(&b.list, out)?;
                if let Some(e) = &b.else_list {
                    calls_in_list(e, out)?;
                }
            }
            Node::Template(_, _, Some(p)) => calls_in_pipe(p, out)?,
            Node::Template(_, _, None) | Node::Text(_) | Node::Break | Node::Continue => {}
        }
    }
    Ok(())
}

fn calls_in_pipe(p: &parse::Pipe, out: &mut Vec<SecretCall>) -> Result<(), ParseError> {
    use parse::Arg;
    for (i, cmd) in p.cmds.iter().enumerate() {
        for a in &cmd.args {
            if let Arg::Sub(inner, _) = a {
                calls_in_pipe(inner, out)?;
            }
        }
        let func = match cmd.args.first() {
            Some(Arg::Func(f)) if f == "secret" => SecretFunc::Secret,
            Some(Arg::Func(f)) if f == "pkiCert" => SecretFunc::PkiCert,
            _ => continue,
        };
        let name = if func == SecretFunc::Secret {
            "secret"
        } else {
            "pkiCert"
        };
        let not_literal = || {
            ParseError {
            line: p.line,
            message: format!(
                "{name}: every argument must be a string literal (\"path\" \"k=v\"…) so the agent can fetch it before rendering"
            ),
        }
        };
        if i > 0 {
            return Err(not_literal());
        }
        let mut args = Vec::new();
        for a in &cmd.args[1..] {
            match a {
                Arg::Str(s) => args.push(s.clone()),
                _ => return Err(not_literal()),
            }
        }
        if args.is_empty() {
            return Err(not_literal());
        }
        let call = SecretCall::new(func, &args, p.line)?;
        if !out.contains(&call) {
            out.push(call);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
