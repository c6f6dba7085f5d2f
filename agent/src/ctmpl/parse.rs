//! Go `text/template` parsing: segments from the lexer → a tree of actions and
//! control structures (`if`/`else if`/`else`, `range`, `with`, `define`,
//! `template`, `block`, `break`, `continue`), pipelines and commands.
//! Unknown functions are parse errors, as in Go.

use std::collections::HashMap;

use super::lexer::{Segment, Tok};
use super::ParseError;

/// A parsed template: its body and the templates it defines.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// The top-level list.
    pub root: Vec<Node>,
    /// `{{define "name"}}` bodies.
    pub defines: HashMap<String, Vec<Node>>,
}

/// One node of a list.
#[derive(Debug, Clone)]
pub enum Node {
    /// Literal text.
    Text(String),
    /// `{{ pipeline }}`.
    Action(Pipe),
    /// `{{if}}`.
    If(Branch),
    /// `{{range}}`.
    Range(Branch),
    /// `{{with}}`.
    With(Branch),
    /// `{{template "name" pipeline}}`.
    Template(usize, String, Option<Pipe>),
    /// `{{break}}`.
    Break,
    /// `{{continue}}`.
    Continue,
}

/// A control structure: its pipeline, body and `else` body.
#[derive(Debug, Clone)]
pub struct Branch {
    /// The pipeline deciding the branch (or ranged over).
    pub pipe: Pipe,
    /// The body.
    pub list: Vec<Node>,
    /// The `else` body (holding one nested node for `else if`/`else with`).
    pub else_list: Option<Vec<Node>>,
}

/// A pipeline: optional variable declarations and `|`-separated commands.
#[derive(Debug, Clone)]
pub struct Pipe {
    /// The action's line (1-based).
    pub line: usize,
    /// Declared or assigned variables (`$x :=`, `$k, $v :=`).
    pub decl: Vec<String>,
    /// `=` rather than `:=`.
    pub assign: bool,
    /// The commands; each one's result is the last argument of the next.
    pub cmds: Vec<Cmd>,
}

/// One command: operands, the first of which may be a function.
#[derive(Debug, Clone)]
pub struct Cmd {
    /// The operands.
    pub args: Vec<Arg>,
}

/// An operand.
#[derive(Debug, Clone)]
pub enum Arg {
    /// `.`.
    Dot,
    /// `nil`.
    Nil,
    /// `true` / `false`.
    Bool(bool),
    /// Integer constant.
    Int(i64),
    /// Float constant.
    Float(f64),
    /// String constant.
    Str(String),
    /// `.A.B`.
    Field(Vec<String>),
    /// `$x.A.B`.
    Var(String, Vec<String>),
    /// A function name.
    Func(String),
    /// `(pipeline).A.B`.
    Sub(Box<Pipe>, Vec<String>),
}

struct Parser<'a> {
    segs: Vec<Segment>,
    pos: usize,
    is_func: &'a dyn Fn(&str) -> bool,
    defines: HashMap<String, Vec<Node>>,
}

/// How a list ended.
enum End {
    Eof,
    Close,
    /// `else` and the tokens after it (`if …`, `with …`, or none).
    Else(Vec<Tok>, usize),
}

/// Parses `segs`; `is_func` says which function names exist.
pub fn parse(segs: Vec<Segment>, is_func: &dyn Fn(&str) -> bool) -> Result<Tree, ParseError> {
    let mut p = Parser {
        segs,
        pos: 0,
        is_func,
        defines: HashMap::new(),
    };
    let (root, end) = p.list()?;
    match end {
        End::Eof => Ok(Tree {
            root,
            defines: p.defines,
        }),
        End::Close => Err(p.err_at(p.line(), "unexpected {{end}}")),
        End::Else(_, line) => Err(p.err_at(line, "unexpected {{else}}")),
    }
}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

impl Parser<'_> {
    fn line(&self) -> usize {
        match self.segs.get(self.pos.saturating_sub(1)) {
            Some(Segment::Action(_, l)) => *l,
            _ => 0,
        }
    }

    fn err_at(&self, line: usize, m: &str) -> ParseError {
        err(line, m)
    }

    fn list(&mut self) -> Result<(Vec<Node>, End), ParseError> {
        let mut out = Vec::new();
        while self.pos < self.segs.len() {
            let seg = self.segs[self.pos].clone();
            self.pos += 1;
            let (toks, line) = match seg {
                Segment::Text(t) => {
                    out.push(Node::Text(t));
                    continue;
                }
                Segment::Action(toks, line) => (toks, line),
            };
            let (head, rest) = match toks.split_first() {
                Some((Tok::Ident(w), rest)) => (w.as_str(), rest.to_vec()),
                Some(_) => {
                    out.push(Node::Action(self.pipe(&toks, line, false)?));
                    continue;
                }
                None => return Err(err(line, "missing value for command")),
            };
            let node = match head {
                "end" => {
                    if !rest.is_empty() {
                        return Err(err(line, "unexpected tokens after end"));
                    }
                    return Ok((out, End::Close));
                }
                "else" => return Ok((out, End::Else(rest, line))),
                "if" => Node::If(self.branch(&rest, line, "if")?),
                "with" => Node::With(self.branch(&rest, line, "with")?),
                "range" => Node::Range(self.branch(&rest, line, "range")?),
                "break" => Node::Break,
                "continue" => Node::Continue,
                "define" => {
                    let name = match rest.as_slice() {
                        [Tok::Str(n)] => n.clone(),
                        _ => return Err(err(line, "define needs a template name string")),
                    };
                    let (body, end) = self.list()?;
                    if !matches!(end, End::Close) {
                        return Err(err(line, "unexpected EOF in define"));
                    }
                    self.defines.insert(name, body);
                    continue;
                }
                "template" | "block" => {
                    let (name, pipe_toks) = match rest.split_first() {
                        Some((Tok::Str(n), r)) => (n.clone(), r),
                        _ => return Err(err(line, format!("{head} needs a template name string"))),
                    };
                    let pipe = if pipe_toks.is_empty() {
                        None
                    } else {
                        Some(self.pipe(pipe_toks, line, false)?)
                    };
                    if head == "block" {
                        let (body, end) = self.list()?;
                        if !matches!(end, End::Close) {
                            return Err(err(line, "unexpected EOF in block"));
                        }
                        self.defines.insert(name.clone(), body);
                    }
                    Node::Template(line, name, pipe)
                }
                _ => Node::Action(self.pipe(&toks, line, false)?),
            };
            out.push(node);
        }
        Ok((out, End::Eof))
    }

    fn branch(&mut self, toks: &[Tok], line: usize, kind: &str) -> Result<Branch, ParseError> {
        let pipe = self.pipe(toks, line, kind == "range")?;
        if pipe.cmds.is_empty() {
            return Err(err(line, format!("missing value for {kind}")));
        }
        let (list, end) = self.list()?;
        let else_list = match end {
            End::Eof => return Err(err(line, format!("unexpected EOF in {kind}"))),
            End::Close => None,
            End::Else(rest, l) if rest.is_empty() => {
                let (e, end) = self.list()?;
                match end {
                    End::Close => Some(e),
                    End::Eof => return Err(err(l, format!("unexpected EOF in {kind}"))),
                    End::Else(_, l2) => return Err(err(l2, "expected end; found {{else}}")),
                }
            }
            End::Else(rest, l) => match rest.split_first() {
                // `else if` in an if, `else with` in a with (Go 1.23): a nested
                // node closed by the same end. Go refuses the other pairings.
                Some((Tok::Ident(w), r)) if w == kind && (w == "if" || w == "with") => {
                    let b = self.branch(r, l, w)?;
                    Some(vec![if w == "if" {
                        Node::If(b)
                    } else {
                        Node::With(b)
                    }])
                }
                _ => return Err(err(l, "unexpected tokens after else")),
            },
        };
        Ok(Branch {
            pipe,
            list,
            else_list,
        })
    }

    fn pipe(&self, toks: &[Tok], line: usize, two_vars: bool) -> Result<Pipe, ParseError> {
        let mut decl = Vec::new();
        let mut assign = false;
        let mut rest = toks;
        // `$x :=`, `$x =`, `$k, $v :=`
        let decl_end = toks
            .iter()
            .position(|t| matches!(t, Tok::Declare | Tok::Assign));
        if let (Some(n), Some(Tok::Var(_, f))) = (decl_end, toks.first()) {
            if f.is_empty()
                && toks[..n]
                    .iter()
                    .all(|t| matches!(t, Tok::Var(_, f) if f.is_empty()) || *t == Tok::Comma)
            {
                for t in &toks[..n] {
                    if let Tok::Var(v, _) = t {
                        decl.push(v.clone());
                    }
                }
                if decl.len() > 2 || (decl.len() == 2 && !two_vars) {
                    return Err(err(line, "too many declarations in command"));
                }
                assign = toks[n] == Tok::Assign;
                rest = &toks[n + 1..];
            }
        }
        let mut cmds = Vec::new();
        let mut depth = 0usize;
        let mut start = 0;
        for (i, t) in rest.iter().enumerate() {
            match t {
                Tok::LParen => depth += 1,
                Tok::RParen => depth = depth.saturating_sub(1),
                Tok::Pipe if depth == 0 => {
                    cmds.push(self.cmd(&rest[start..i], line)?);
                    start = i + 1;
                }
                _ => {}
            }
        }
        if start < rest.len() || !cmds.is_empty() {
            cmds.push(self.cmd(&rest[start..], line)?);
        }
        Ok(Pipe {
            line,
            decl,
            assign,
            cmds,
        })
    }

    fn cmd(&self, toks: &[Tok], line: usize) -> Result<Cmd, ParseError> {
        if toks.is_empty() {
            return Err(err(line, "missing command"));
        }
        let mut args = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            let arg = match &toks[i] {
                Tok::Field(f) if f.is_empty() => Arg::Dot,
                Tok::Field(f) => Arg::Field(f.clone()),
                Tok::Var(v, f) => Arg::Var(v.clone(), f.clone()),
                Tok::Str(s) => Arg::Str(s.clone()),
                Tok::Int(n) => Arg::Int(*n),
                Tok::Float(n) => Arg::Float(*n),
                Tok::Bool(b) => Arg::Bool(*b),
                Tok::Nil => Arg::Nil,
                Tok::Ident(name) => {
                    if !(self.is_func)(name) {
                        return Err(err(line, format!("function {name:?} not defined")));
                    }
                    Arg::Func(name.clone())
                }
                Tok::LParen => {
                    let mut depth = 0;
                    let close = toks[i..]
                        .iter()
                        .position(|t| {
                            match t {
                                Tok::LParen => depth += 1,
                                Tok::RParen => depth -= 1,
                                _ => {}
                            }
                            depth == 0
                        })
                        .ok_or_else(|| err(line, "unclosed left paren"))?
                        + i;
                    let inner = self.pipe(&toks[i + 1..close], line, false)?;
                    if inner.cmds.is_empty() {
                        return Err(err(line, "missing value in parenthesized pipeline"));
                    }
                    i = close;
                    let chain = match toks.get(i + 1) {
                        Some(Tok::Chain(c)) => {
                            i += 1;
                            c.clone()
                        }
                        _ => Vec::new(),
                    };
                    Arg::Sub(Box::new(inner), chain)
                }
                Tok::RParen => return Err(err(line, "unexpected right paren")),
                Tok::Declare | Tok::Assign => return Err(err(line, "unexpected declaration")),
                other => return Err(err(line, format!("unexpected {other:?} in operand"))),
            };
            args.push(arg);
            i += 1;
        }
        Ok(Cmd { args })
    }
}
