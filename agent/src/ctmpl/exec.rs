//! Executing a parsed template as Go's `text/template` does under
//! consul-template: dot starts nil, `missingkey=zero` (or `error` with
//! `error_on_missing_key`), `and`/`or` short-circuit, ranges over maps go in
//! key order, variables are scoped to their control structure.

use super::funcs::{self, Context};
use super::gofmt;
use super::parse::{Arg, Branch, Cmd, Node, Pipe, Tree};
use super::value::Value;
use super::{SecretCall, SecretFunc};

/// A failed execution: the line and Go's message (never a value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ExecError {
    /// 1-based line of the action.
    pub line: usize,
    /// What went wrong.
    pub message: String,
}

/// What the template reads from outside.
pub struct Inputs<'a> {
    /// `missingkey=error`.
    pub missing_key_error: bool,
    /// The value of each `secret`/`pkiCert` call.
    pub lookup: &'a dyn Fn(&SecretCall) -> Option<Value>,
    /// `env`, `timestamp`.
    pub context: Context<'a>,
}

enum Flow {
    Normal,
    Break,
    Continue,
}

/// How deep `template` calls may nest (Go's limit is 100,000 frames; a
/// recursive define is a mistake either way).
const MAX_DEPTH: usize = 1000;

pub(super) struct State<'a> {
    tree: &'a Tree,
    inp: &'a Inputs<'a>,
    vars: Vec<(String, Value)>,
    out: String,
    line: usize,
    depth: usize,
}

type R<T> = Result<T, ExecError>;

/// Renders `tree`.
pub fn execute(tree: &Tree, inp: &Inputs<'_>) -> R<String> {
    let mut st = State {
        tree,
        inp,
        vars: vec![("$".to_string(), Value::Nil)],
        out: String::new(),
        line: 1,
        depth: 0,
    };
    st.walk(&Value::Nil, &tree.root)?;
    Ok(st.out)
}

impl State<'_> {
    fn err<T>(&self, m: impl Into<String>) -> R<T> {
        Err(ExecError {
            line: self.line,
            message: m.into(),
        })
    }

    fn walk(&mut self, dot: &Value, list: &[Node]) -> R<Flow> {
        for node in list {
            match node {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipe(dot, p)?;
                    if p.decl.is_empty() {
                        self.out.push_str(&gofmt::print_value(&v));
                    }
                }
                Node::If(b) | Node::With(b) => {
                    let mark = self.vars.len();
                    let v = self.pipe(dot, &b.pipe)?;
                    let flow = if v.truth() {
                        let d = if matches!(node, Node::With(_)) {
                            &v
                        } else {
                            dot
                        };
                        self.walk(d, &b.list)?
                    } else if let Some(e) = &b.else_list {
                        self.walk(dot, e)?
                    } else {
                        Flow::Normal
                    };
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::Range(b) => {
                    let flow = self.range(dot, b)?;
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
                Node::Template(line, name, pipe) => {
                    self.line = *line;
                    let body = match self.tree.defines.get(name) {
                        Some(b) => b,
                        None => return self.err(format!("no such template {name:?}")),
                    };
                    let d = match pipe {
                        Some(p) => self.pipe(dot, p)?,
                        None => Value::Nil,
                    };
                    if self.depth >= MAX_DEPTH {
                        return self.err("exceeded maximum template depth");
                    }
                    let saved =
                        std::mem::replace(&mut self.vars, vec![("$".to_string(), d.clone())]);
                    self.depth += 1;
                    let r = self.walk(&d, body);
                    self.depth -= 1;
                    self.vars = saved;
                    r?;
                }
            }
        }
        Ok(Flow::Normal)
    }

    fn range(&mut self, dot: &Value, b: &Branch) -> R<Flow> {
        let mark = self.vars.len();
        let cmds = Pipe {
            decl: Vec::new(),
            ..b.pipe.clone()
        };
        let v = self.pipe(dot, &cmds)?;
        let items: Vec<(Value, Value)> = match &v {
            Value::List(l) => l
                .iter()
                .enumerate()
                .map(|(i, e)| (Value::Int(i as i64), e.clone()))
                .collect(),
            Value::Map(m) => m
                .iter()
                .map(|(k, e)| (Value::Str(k.clone()), e.clone()))
                .collect(),
            Value::Int(n) => (0..*n).map(|i| (Value::Int(i), Value::Int(i))).collect(),
            Value::Nil => Vec::new(),
            // Go prints the value here; shroud names only its type (it may be a secret).
            other => {
                return self.err(format!(
                    "range can't iterate over a value of type {}",
                    other.type_name()
                ))
            }
        };
        if items.is_empty() {
            if let Some(e) = &b.else_list {
                self.walk(dot, e)?;
            }
            return Ok(Flow::Normal);
        }
        for (k, e) in items {
            self.vars.truncate(mark);
            match b.pipe.decl.as_slice() {
                [] => {}
                [one] => self.set(one, e.clone(), b.pipe.assign)?,
                [kv, ev, ..] => {
                    self.set(kv, k, b.pipe.assign)?;
                    self.set(ev, e.clone(), b.pipe.assign)?;
                }
            }
            let flow = self.walk(&e, &b.list)?;
            if matches!(flow, Flow::Break) {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(Flow::Normal)
    }

    fn set(&mut self, name: &str, v: Value, assign: bool) -> R<()> {
        if !assign {
            self.vars.push((name.to_string(), v));
            return Ok(());
        }
        match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = v,
            None => return self.err(format!("undefined variable: {name}")),
        }
        Ok(())
    }

    fn pipe(&mut self, dot: &Value, p: &Pipe) -> R<Value> {
        self.line = p.line;
        let mut v: Option<Value> = None;
        for c in &p.cmds {
            v = Some(self.cmd(dot, c, v)?);
        }
        let v = v.unwrap_or(Value::Nil);
        for name in &p.decl {
            self.set(name, v.clone(), p.assign)?;
        }
        Ok(v)
    }

    fn cmd(&mut self, dot: &Value, c: &Cmd, fin: Option<Value>) -> R<Value> {
        let (first, rest) = c
            .args
            .split_first()
            .expect("parser never yields empty commands");
        if let Arg::Func(name) = first {
            return self.call(dot, name, rest, fin);
        }
        if !rest.is_empty() || fin.is_some() {
            return self.err(format!(
                "can't give argument to non-function {}",
                describe(first)
            ));
        }
        self.arg(dot, first)
    }

    fn arg(&mut self, dot: &Value, a: &Arg) -> R<Value> {
        Ok(match a {
            Arg::Dot => dot.clone(),
            Arg::Nil => return self.err("nil is not a command"),
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Int(i) => Value::Int(*i),
            Arg::Float(f) => Value::Float(*f),
            Arg::Str(s) => Value::Str(s.clone()),
            Arg::Field(chain) => self.chain(dot.clone(), chain)?,
            Arg::Var(name, chain) => {
                let v = match self.vars.iter().rev().find(|(n, _)| n == name) {
                    Some((_, v)) => v.clone(),
                    None => return self.err(format!("undefined variable: {name}")),
                };
                self.chain(v, chain)?
            }
            Arg::Sub(p, chain) => {
                let v = self.pipe(dot, p)?;
                self.chain(v, chain)?
            }
            Arg::Func(name) => self.call(dot, name, &[], None)?,
        })
    }

    /// `.A.B.C` from `recv`: a nil met inside the chain (a missing or null map
    /// entry) cannot be looked into; a nil to start from reads as nil.
    fn chain(&self, mut recv: Value, chain: &[String]) -> R<Value> {
        let mut from_map = false;
        for name in chain {
            recv = match &recv {
                Value::Map(m) => match m.get(name) {
                    Some(v) => v.clone(),
                    None if self.inp.missing_key_error => {
                        return self.err(format!("map has no entry for key {name:?}"))
                    }
                    None => Value::Nil,
                },
                Value::Struct(s) if s.type_name == "dependency.PemEncoded" && name == "Data" => {
                    recv.clone()
                }
                Value::Struct(s) => match s.field(name) {
                    Some(v) => v.clone(),
                    None => {
                        return self.err(format!(
                            "can't evaluate field {name} in type {}",
                            s.type_name
                        ))
                    }
                },
                Value::Nil if from_map => {
                    return self.err(format!("nil pointer evaluating interface {{}}.{name}"))
                }
                Value::Nil if self.inp.missing_key_error => {
                    return self.err(format!("nil data; no entry for key {name:?}"))
                }
                Value::Nil => Value::Nil,
                other => {
                    return self.err(format!(
                        "can't evaluate field {name} in type {}",
                        other.type_name()
                    ))
                }
            };
            from_map = true;
        }
        Ok(recv)
    }

    fn call(&mut self, dot: &Value, name: &str, args: &[Arg], fin: Option<Value>) -> R<Value> {
        // `and`/`or` evaluate their arguments only as far as needed.
        if name == "and" || name == "or" {
            let n = args.len() + usize::from(fin.is_some());
            if n < 1 {
                return self.err(format!(
                    "wrong number of args for {name}: want at least 1 got 0"
                ));
            }
            let mut last = Value::Nil;
            for a in args {
                last = self.arg(dot, a)?;
                if last.truth() != (name == "and") {
                    return Ok(last);
                }
            }
            if let Some(f) = fin {
                last = f;
            }
            return Ok(last);
        }
        let mut vals = Vec::with_capacity(args.len() + 1);
        for a in args {
            vals.push(self.arg(dot, a)?);
        }
        vals.extend(fin);
        if name == "secret" || name == "pkiCert" {
            let func = if name == "secret" {
                SecretFunc::Secret
            } else {
                SecretFunc::PkiCert
            };
            let strs: Vec<String> = match vals
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect()
            {
                Some(s) => s,
                None => {
                    return self.err(format!("error calling {name}: arguments must be strings"))
                }
            };
            if strs.is_empty() {
                return Ok(Value::Nil);
            }
            let call = SecretCall::new(func, &strs, self.line).map_err(|e| ExecError {
                line: self.line,
                message: e.message,
            })?;
            return match (self.inp.lookup)(&call) {
                Some(v) => Ok(v),
                None => self.err(format!("{name} {:?} was not fetched", call.path)),
            };
        }
        funcs::call(name, &vals, &self.inp.context).or_else(|m| {
            if m.starts_with("wrong number of args") || m.starts_with("function ") {
                self.err(m)
            } else {
                self.err(format!("error calling {name}: {m}"))
            }
        })
    }
}

fn describe(a: &Arg) -> String {
    match a {
        Arg::Dot => ".".into(),
        Arg::Nil => "nil".into(),
        Arg::Bool(b) => b.to_string(),
        Arg::Int(i) => i.to_string(),
        Arg::Float(f) => f.to_string(),
        Arg::Str(s) => format!("{s:?}"),
        Arg::Field(c) => format!(".{}", c.join(".")),
        Arg::Var(n, c) if c.is_empty() => n.clone(),
        Arg::Var(n, c) => format!("{n}.{}", c.join(".")),
        Arg::Func(n) => n.clone(),
        Arg::Sub(..) => "(pipeline)".into(),
    }
}
