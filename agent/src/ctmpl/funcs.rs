//! The functions a template can call: Go's built-ins (`and or not len index
//! slice print printf println html urlquery eq ne lt le gt ge`), consul-template's
//! helpers (template/funcs.go) and the `sprig_*` ones people use, each with Go's
//! argument order and consul-template's edge cases. `secret` and `pkiCert` are
//! answered by the caller (see `exec`).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use super::gofmt;
use super::gotime;
use super::value::Value;
use super::{json, yaml};

/// Every function name a template may use (checked at parse time, as Go does).
pub const NAMES: &[&str] = &[
    // Go built-ins
    "and",
    "or",
    "not",
    "len",
    "index",
    "slice",
    "print",
    "printf",
    "println",
    "html",
    "urlquery",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    // consul-template: Vault
    "secret",
    "pkiCert",
    // consul-template: helpers
    "base64Decode",
    "base64Encode",
    "base64URLDecode",
    "base64URLEncode",
    "contains",
    "containsAll",
    "containsAny",
    "containsNone",
    "containsNotAll",
    "env",
    "mustEnv",
    "envOrDefault",
    "in",
    "indent",
    "join",
    "trim",
    "trimPrefix",
    "trimSuffix",
    "trimSpace",
    "parseBool",
    "parseFloat",
    "parseInt",
    "parseJSON",
    "parseUint",
    "regexReplaceAll",
    "regexMatch",
    "replaceAll",
    "split",
    "splitToMap",
    "timestamp",
    "toLower",
    "toJSON",
    "toJSONPretty",
    "toUnescapedJSON",
    "toUnescapedJSONPretty",
    "toTitle",
    "toUpper",
    "toYAML",
    "sha256Hex",
    "hmacSHA256Hex",
    "add",
    "subtract",
    "multiply",
    "divide",
    "modulo",
    "minimum",
    "maximum",
    // sprig (consul-template exposes sprig's functions as sprig_<name>)
    "sprig_default",
    "sprig_empty",
    "sprig_coalesce",
    "sprig_trim",
    "sprig_upper",
    "sprig_lower",
    "sprig_title",
    "sprig_b64enc",
    "sprig_b64dec",
    "sprig_quote",
    "sprig_squote",
    "sprig_trimPrefix",
    "sprig_trimSuffix",
    "sprig_trimAll",
    "sprig_replace",
    "sprig_contains",
    "sprig_hasPrefix",
    "sprig_hasSuffix",
    "sprig_join",
    "sprig_splitList",
    "sprig_repeat",
    "sprig_nospace",
    "sprig_indent",
    "sprig_nindent",
    "sprig_list",
    "sprig_dict",
    "sprig_toString",
    "sprig_sha256sum",
    "sprig_cat",
];

/// Whether `name` is a function.
pub fn exists(name: &str) -> bool {
    NAMES.contains(&name)
}

/// What a function needs from outside the template.
pub struct Context<'a> {
    /// The environment `env` reads (Vault Agent passes its own).
    pub getenv: &'a dyn Fn(&str) -> Option<String>,
    /// The time `timestamp` formats.
    pub now: SystemTime,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

fn want(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() == n {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ))
    }
}

/// A string parameter, as Go's reflection checks it.
fn text(v: &Value) -> Result<&str, String> {
    match v {
        Value::Str(s) | Value::Number(s) => Ok(s),
        Value::Nil => Err("invalid value; expected string".into()),
        other => Err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )),
    }
}

fn strs(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::List(l) => l.iter().map(|e| text(e).map(str::to_string)).collect(),
        Value::Nil => Ok(Vec::new()),
        other => Err(format!(
            "wrong type for value; expected []string; got {}",
            other.type_name()
        )),
    }
}

fn int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(format!(
            "wrong type for value; expected int; got {}",
            other.type_name()
        )),
    }
}

fn s(x: impl Into<String>) -> Value {
    Value::Str(x.into())
}

/// Calls function `name` (not `and`/`or`, which `exec` short-circuits, nor
/// `secret`/`pkiCert`).
pub fn call(name: &str, a: &[Value], cx: &Context<'_>) -> Result<Value, String> {
    let b64 = |e: &base64::engine::GeneralPurpose, what: &str| -> Result<Value, String> {
        want(name, a, 1)?;
        let d = e
            .decode(text(&a[0])?)
            .map_err(|err| format!("{what}: {}", go_b64_error(err)))?;
        Ok(s(String::from_utf8_lossy(&d)))
    };
    let str1 = |f: &dyn Fn(&str) -> String| -> Result<Value, String> {
        want(name, a, 1)?;
        Ok(s(f(text(&a[0])?)))
    };
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    match name {
        "not" => {
            want(name, a, 1)?;
            Ok(Value::Bool(!a[0].truth()))
        }
        "len" => {
            want(name, a, 1)?;
            Ok(Value::Int(match &a[0] {
                Value::Str(x) | Value::Number(x) => x.len(),
                Value::List(l) => l.len(),
                Value::Map(m) => m.len(),
                Value::Nil => return Err("len of nil pointer".into()),
                o => return Err(format!("len of type {}", o.type_name())),
            } as i64))
        }
        "index" => {
            let (first, keys) = a
                .split_first()
                .ok_or("wrong number of args for index: want at least 1 got 0")?;
            let mut v = first.clone();
            for k in keys {
                v = match (&v, k) {
                    (Value::Map(m), k) => m
                        .get(text(k).map_err(|_| {
                            format!("value has type {}; should be string", k.type_name())
                        })?)
                        .cloned()
                        .unwrap_or(Value::Nil),
                    (Value::List(l), Value::Int(i)) => l
                        .get(usize::try_from(*i).map_err(|_| format!("index out of range: {i}"))?)
                        .cloned()
                        .ok_or_else(|| format!("index out of range: {i}"))?,
                    (Value::Str(x), Value::Int(i)) => Value::Int(
                        *x.as_bytes()
                            .get(*i as usize)
                            .ok_or_else(|| format!("index out of range: {i}"))?
                            as i64,
                    ),
                    (Value::Nil, _) => return Err("index of untyped nil".into()),
                    (v, _) => return Err(format!("can't index item of type {}", v.type_name())),
                };
            }
            Ok(v)
        }
        "slice" => {
            let (first, idx) = a
                .split_first()
                .ok_or("wrong number of args for slice: want at least 1 got 0")?;
            let idx: Vec<usize> = idx
                .iter()
                .map(|v| int(v).map(|i| i as usize))
                .collect::<Result<_, _>>()?;
            match first {
                Value::Str(x) => {
                    let from = idx.first().copied().unwrap_or(0);
                    let to = idx.get(1).copied().unwrap_or(x.len());
                    x.get(from..to)
                        .map(s)
                        .ok_or_else(|| format!("index out of range: {to}"))
                }
                Value::List(l) => {
                    let from = idx.first().copied().unwrap_or(0);
                    let to = idx.get(1).copied().unwrap_or(l.len());
                    l.get(from..to)
                        .map(|x| Value::List(x.to_vec()))
                        .ok_or_else(|| format!("index out of range: {to}"))
                }
                o => Err(format!("can't slice item of type {}", o.type_name())),
            }
        }
        "print" => Ok(s(gofmt::sprint(a))),
        "println" => Ok(s(gofmt::sprintln(a))),
        "printf" => {
            let (f, rest) = a
                .split_first()
                .ok_or("wrong number of args for printf: want at least 1 got 0")?;
            Ok(s(gofmt::sprintf(text(f)?, rest)))
        }
        "html" => Ok(s(gofmt::sprint(a)
            .replace('&', "&amp;")
            .replace('\'', "&#39;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&#34;")
            .replace('\0', "\u{fffd}"))),
        "urlquery" => Ok(s(query_escape(&gofmt::sprint(a)))),
        "eq" => {
            let (x, rest) = a.split_first().ok_or("missing argument for comparison")?;
            if rest.is_empty() {
                return Err("missing argument for comparison".into());
            }
            for y in rest {
                if equal(x, y)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" => {
            want(name, a, 2)?;
            Ok(Value::Bool(!equal(&a[0], &a[1])?))
        }
        "lt" | "le" | "gt" | "ge" => {
            want(name, a, 2)?;
            let o = order(&a[0], &a[1])?;
            Ok(Value::Bool(match name {
                "lt" => o.is_lt(),
                "le" => o.is_le(),
                "gt" => o.is_gt(),
                _ => o.is_ge(),
            }))
        }
        "base64Decode" => b64(&STANDARD, "base64Decode"),
        "base64URLDecode" => b64(&URL_SAFE, "base64URLDecode"),
        "base64Encode" => str1(&|x| STANDARD.encode(x)),
        "base64URLEncode" => str1(&|x| URL_SAFE.encode(x)),
        "contains" => {
            want(name, a, 2)?;
            Ok(Value::Bool(contained(&a[1], &a[0])))
        }
        "in" => {
            want(name, a, 2)?;
            Ok(Value::Bool(contained(&a[0], &a[1])))
        }
        "containsAll" | "containsAny" | "containsNone" | "containsNotAll" => {
            want(name, a, 2)?;
            let needles = match &a[0] {
                Value::List(l) => l.clone(),
                o => {
                    return Err(format!(
                        "wrong type for value; expected []interface {{}}; got {}",
                        o.type_name()
                    ))
                }
            };
            let hits = needles.iter().filter(|n| contained(&a[1], n)).count();
            Ok(Value::Bool(match name {
                "containsAll" => hits == needles.len(),
                "containsAny" => hits > 0,
                "containsNone" => hits == 0,
                _ => hits < needles.len(),
            }))
        }
        "env" => {
            want(name, a, 1)?;
            Ok(s((cx.getenv)(text(&a[0])?).unwrap_or_default()))
        }
        "mustEnv" => {
            want(name, a, 1)?;
            let k = text(&a[0])?;
            match (cx.getenv)(k).filter(|v| !v.is_empty()) {
                Some(v) => Ok(s(v)),
                None => Err(format!("required environment variable {k} is empty")),
            }
        }
        "envOrDefault" => {
            want(name, a, 2)?;
            Ok(s((cx.getenv)(text(&a[0])?).unwrap_or_else(|| {
                text(&a[1]).unwrap_or_default().to_string()
            })))
        }
        "indent" => {
            want(name, a, 2)?;
            let n = int(&a[0])?;
            if n < 0 {
                return Err("indent value must be a positive integer".into());
            }
            Ok(s(indent(n as usize, text(&a[1])?)))
        }
        "join" => {
            want(name, a, 2)?;
            Ok(s(strs(&a[1])?.join(text(&a[0])?)))
        }
        "trim" => {
            want(name, a, 2)?;
            let cut: Vec<char> = text(&a[0])?.chars().collect();
            Ok(s(text(&a[1])?.trim_matches(cut.as_slice())))
        }
        "trimPrefix" | "sprig_trimPrefix" => {
            want(name, a, 2)?;
            let x = text(&a[1])?;
            Ok(s(x.strip_prefix(text(&a[0])?).unwrap_or(x)))
        }
        "trimSuffix" | "sprig_trimSuffix" => {
            want(name, a, 2)?;
            let x = text(&a[1])?;
            Ok(s(x.strip_suffix(text(&a[0])?).unwrap_or(x)))
        }
        "trimSpace" | "sprig_trim" => str1(&|x| x.trim_matches(go_space).to_string()),
        "parseBool" => {
            want(name, a, 1)?;
            let x = text(&a[0])?;
            if x.is_empty() {
                return Ok(Value::Bool(false));
            }
            match x {
                "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Value::Bool(true)),
                "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Value::Bool(false)),
                _ => Err(format!(
                    "parseBool: strconv.ParseBool: parsing {}: invalid syntax",
                    hidden(x)
                )),
            }
        }
        "parseInt" | "parseUint" => {
            want(name, a, 1)?;
            let x = text(&a[0])?;
            if x.is_empty() {
                return Ok(Value::Int(0));
            }
            x.parse::<i64>()
                .ok()
                .filter(|i| name == "parseInt" || *i >= 0)
                .map(Value::Int)
                .ok_or_else(|| {
                    format!(
                        "{name}: strconv.Parse{}: parsing {}: invalid syntax",
                        if name == "parseInt" { "Int" } else { "Uint" },
                        hidden(x)
                    )
                })
        }
        "parseFloat" => {
            want(name, a, 1)?;
            let x = text(&a[0])?;
            if x.is_empty() {
                return Ok(Value::Float(0.0));
            }
            x.parse::<f64>().map(Value::Float).map_err(|_| {
                format!(
                    "parseFloat: strconv.ParseFloat: parsing {}: invalid syntax",
                    hidden(x)
                )
            })
        }
        "parseJSON" => {
            want(name, a, 1)?;
            let x = text(&a[0])?;
            if x.is_empty() {
                return Ok(Value::Map(BTreeMap::new()));
            }
            serde_json::from_str::<serde_json::Value>(x)
                .map(|v| Value::from_json(&v))
                .map_err(|e| format!("parseJSON: {e}"))
        }
        "replaceAll" => {
            want(name, a, 3)?;
            Ok(s(text(&a[2])?.replace(text(&a[0])?, text(&a[1])?)))
        }
        "sprig_replace" => {
            want(name, a, 3)?;
            Ok(s(text(&a[2])?.replace(text(&a[0])?, text(&a[1])?)))
        }
        "regexReplaceAll" => {
            want(name, a, 3)?;
            let re = regex::Regex::new(text(&a[0])?).map_err(|e| e.to_string())?;
            let repl = go_template_repl(text(&a[1])?);
            Ok(s(re.replace_all(text(&a[2])?, repl.as_str()).into_owned()))
        }
        "regexMatch" => {
            want(name, a, 2)?;
            let re = regex::Regex::new(text(&a[0])?).map_err(|e| e.to_string())?;
            Ok(Value::Bool(re.is_match(text(&a[1])?)))
        }
        "split" => {
            want(name, a, 2)?;
            let x = text(&a[1])?.trim_matches(go_space);
            if x.is_empty() {
                return Ok(Value::List(Vec::new()));
            }
            Ok(Value::List(
                go_split(x, text(&a[0])?).into_iter().map(s).collect(),
            ))
        }
        "sprig_splitList" => {
            want(name, a, 2)?;
            Ok(Value::List(
                go_split(text(&a[1])?, text(&a[0])?)
                    .into_iter()
                    .map(s)
                    .collect(),
            ))
        }
        "splitToMap" => {
            want(name, a, 3)?;
            let x = text(&a[2])?.trim_matches(go_space);
            let mut m = BTreeMap::new();
            if !x.is_empty() {
                for part in go_split(x, text(&a[0])?) {
                    if let Some((k, v)) = part.split_once(text(&a[1])?) {
                        m.insert(k.to_string(), s(v));
                    }
                }
            }
            Ok(Value::Map(m))
        }
        "timestamp" => match a {
            [] => Ok(s(gotime::format(cx.now, "2006-01-02T15:04:05Z07:00"))),
            [f] if text(f)? == "unix" => Ok(s(cx
                .now
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
                .to_string())),
            [f] => Ok(s(gotime::format(cx.now, text(f)?))),
            _ => Err(format!(
                "timestamp: wrong number of arguments, expected 0 or 1, but got {}",
                a.len()
            )),
        },
        "toLower" | "sprig_lower" => str1(&|x| x.to_lowercase()),
        "toUpper" | "sprig_upper" => str1(&|x| x.to_uppercase()),
        "toTitle" | "sprig_title" => str1(&title),
        "toJSON" => {
            want(name, a, 1)?;
            Ok(s(json::json(&a[0], true, None)))
        }
        "toJSONPretty" => {
            want(name, a, 1)?;
            Ok(s(json::json(&a[0], true, Some("  "))))
        }
        "toUnescapedJSON" => {
            want(name, a, 1)?;
            Ok(s(json::json(&a[0], false, None)))
        }
        "toUnescapedJSONPretty" => {
            want(name, a, 1)?;
            Ok(s(json::json(&a[0], false, Some("  "))))
        }
        "toYAML" => {
            want(name, a, 1)?;
            Ok(s(yaml::yaml(&a[0]).trim_matches(go_space).to_string()))
        }
        "sha256Hex" | "sprig_sha256sum" => {
            use sha2::Digest;
            str1(&|x| hex::encode(sha2::Sha256::digest(x.as_bytes())))
        }
        "hmacSHA256Hex" => {
            want(name, a, 2)?;
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, text(&a[1])?.as_bytes());
            Ok(s(hex::encode(
                ring::hmac::sign(&key, text(&a[0])?.as_bytes()).as_ref(),
            )))
        }
        "add" | "subtract" | "multiply" | "divide" | "modulo" | "minimum" | "maximum" => {
            want(name, a, 2)?;
            math(name, &a[1], &a[0])
        }
        "sprig_default" => {
            want(name, a, 2)?;
            Ok(if sprig_empty(&a[1]) {
                a[0].clone()
            } else {
                a[1].clone()
            })
        }
        "sprig_empty" => {
            want(name, a, 1)?;
            Ok(Value::Bool(sprig_empty(&a[0])))
        }
        "sprig_coalesce" => Ok(a
            .iter()
            .find(|v| !sprig_empty(v))
            .cloned()
            .unwrap_or(Value::Nil)),
        "sprig_b64enc" => str1(&|x| STANDARD.encode(x)),
        "sprig_b64dec" => {
            want(name, a, 1)?;
            Ok(s(match STANDARD.decode(text(&a[0])?) {
                Ok(d) => String::from_utf8_lossy(&d).into_owned(),
                Err(e) => go_b64_error(e),
            }))
        }
        "sprig_quote" => Ok(s(a
            .iter()
            .filter(|v| **v != Value::Nil)
            .map(|v| gofmt::quote(&gofmt::fmt_v(v)))
            .collect::<Vec<_>>()
            .join(" "))),
        "sprig_squote" => Ok(s(a
            .iter()
            .filter(|v| **v != Value::Nil)
            .map(|v| format!("'{}'", gofmt::fmt_v(v)))
            .collect::<Vec<_>>()
            .join(" "))),
        "sprig_trimAll" => {
            want(name, a, 2)?;
            let cut: Vec<char> = text(&a[0])?.chars().collect();
            Ok(s(text(&a[1])?.trim_matches(cut.as_slice())))
        }
        "sprig_contains" => {
            want(name, a, 2)?;
            Ok(Value::Bool(text(&a[1])?.contains(text(&a[0])?)))
        }
        "sprig_hasPrefix" => {
            want(name, a, 2)?;
            Ok(Value::Bool(text(&a[1])?.starts_with(text(&a[0])?)))
        }
        "sprig_hasSuffix" => {
            want(name, a, 2)?;
            Ok(Value::Bool(text(&a[1])?.ends_with(text(&a[0])?)))
        }
        "sprig_join" => {
            want(name, a, 2)?;
            let items: Vec<String> = match &a[1] {
                Value::List(l) => l
                    .iter()
                    .filter(|v| **v != Value::Nil)
                    .map(gofmt::fmt_v)
                    .collect(),
                Value::Nil => Vec::new(),
                v => vec![gofmt::fmt_v(v)],
            };
            Ok(s(items.join(text(&a[0])?)))
        }
        "sprig_repeat" => {
            want(name, a, 2)?;
            Ok(s(text(&a[1])?.repeat(int(&a[0])?.max(0) as usize)))
        }
        "sprig_nospace" => str1(&|x| x.chars().filter(|c| !c.is_whitespace()).collect()),
        "sprig_indent" | "sprig_nindent" => {
            want(name, a, 2)?;
            let pad = " ".repeat(int(&a[0])?.max(0) as usize);
            let out = format!("{pad}{}", text(&a[1])?.replace('\n', &format!("\n{pad}")));
            Ok(s(if name == "sprig_nindent" {
                format!("\n{out}")
            } else {
                out
            }))
        }
        "sprig_list" => Ok(Value::List(a.to_vec())),
        "sprig_dict" => {
            let mut m = BTreeMap::new();
            for pair in a.chunks(2) {
                let k = gofmt::fmt_v(&pair[0]);
                m.insert(k, pair.get(1).cloned().unwrap_or_else(|| s("")));
            }
            Ok(Value::Map(m))
        }
        "sprig_toString" => {
            want(name, a, 1)?;
            Ok(s(gofmt::fmt_v(&a[0])))
        }
        "sprig_cat" => Ok(s(a
            .iter()
            .filter(|v| **v != Value::Nil)
            .map(gofmt::fmt_v)
            .collect::<Vec<_>>()
            .join(" "))),
        other => Err(format!("function {other:?} not defined")),
    }
}

/// Where Go quotes the offending input, shroud says only how long it was:
/// the input may be a secret, and errors reach logs.
fn hidden(x: &str) -> String {
    format!("<a value of {} bytes>", x.len())
}

fn go_space(c: char) -> bool {
    c.is_whitespace()
}

/// strings.Split: an empty separator splits into UTF-8 characters.
fn go_split(x: &str, sep: &str) -> Vec<String> {
    if sep.is_empty() {
        return x.chars().map(String::from).collect();
    }
    x.split(sep).map(str::to_string).collect()
}

fn go_b64_error(e: base64::DecodeError) -> String {
    let at = match e {
        base64::DecodeError::InvalidByte(i, _) | base64::DecodeError::InvalidLastSymbol(i, _) => i,
        base64::DecodeError::InvalidLength(n) => n,
        base64::DecodeError::InvalidPadding => 0,
    };
    format!("illegal base64 data at input byte {at}")
}

/// Go's `$1`/`${name}` replacement syntax → the regex crate's `${1}`.
fn go_template_repl(r: &str) -> String {
    let mut out = String::new();
    let mut it = r.chars().peekable();
    while let Some(c) = it.next() {
        if c == '$' {
            if it.peek() == Some(&'$') {
                it.next();
                out.push_str("$$");
                continue;
            }
            if it.peek() == Some(&'{') {
                out.push('$');
                continue;
            }
            let name: String =
                std::iter::from_fn(|| it.next_if(|c| c.is_alphanumeric() || *c == '_')).collect();
            out.push_str(&format!("${{{name}}}"));
        } else {
            out.push(c);
        }
    }
    out
}

fn sprig_empty(v: &Value) -> bool {
    !v.truth()
}

fn title(x: &str) -> String {
    let mut out = String::new();
    let mut prev_letter = false;
    for c in x.chars() {
        if !prev_letter {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = c.is_alphanumeric() || c == '\'';
    }
    out
}

fn indent(n: usize, x: &str) -> String {
    let pad = " ".repeat(n);
    let mut out = String::new();
    let mut at_start = true;
    for c in x.chars() {
        if at_start && c != '\n' {
            out.push_str(&pad);
        }
        out.push(c);
        at_start = c == '\n';
    }
    out
}

fn query_escape(x: &str) -> String {
    let mut out = String::new();
    for b in x.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// consul-template's `in`: element of a list (same kind), or substring.
fn contained(list: &Value, needle: &Value) -> bool {
    match list {
        Value::List(l) => l.iter().any(|e| match (e, needle) {
            (Value::Int(x), Value::Int(y)) => x == y,
            (Value::Float(x), Value::Float(y)) => x == y,
            (Value::Str(x), Value::Str(y)) | (Value::Number(x), Value::Number(y)) => x == y,
            _ => false,
        }),
        Value::Str(h) => matches!(needle, Value::Str(n) if h.contains(n.as_str())),
        _ => false,
    }
}

/// Go's `eq` on two basic values.
fn equal(x: &Value, y: &Value) -> Result<bool, String> {
    Ok(match (x, y) {
        (Value::Nil, Value::Nil) => true,
        (Value::Nil, _) | (_, Value::Nil) => false,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Int(a), Value::Int(b)) => a == b,
        (Value::Float(a), Value::Float(b)) => a == b,
        (a, b) if a.as_str().is_some() && b.as_str().is_some() => a.as_str() == b.as_str(),
        (Value::List(_) | Value::Map(_) | Value::Struct(_), _) => {
            return Err(format!("non-comparable type {}", x.type_name()))
        }
        _ => return Err("incompatible types for comparison".into()),
    })
}

fn order(x: &Value, y: &Value) -> Result<std::cmp::Ordering, String> {
    match (x, y) {
        (Value::Int(a), Value::Int(b)) => Ok(a.cmp(b)),
        (Value::Float(a), Value::Float(b)) => a.partial_cmp(b).ok_or_else(|| "NaN".to_string()),
        (a, b) if a.as_str().is_some() && b.as_str().is_some() => Ok(a.as_str().cmp(&b.as_str())),
        (Value::Bool(_) | Value::List(_) | Value::Map(_) | Value::Struct(_) | Value::Nil, _) => {
            Err("invalid type for comparison".into())
        }
        _ => Err("incompatible types for comparison".into()),
    }
}

/// consul-template's math: `add b a` is a + b, ints stay ints.
fn math(name: &str, a: &Value, b: &Value) -> Result<Value, String> {
    let num = |v: &Value| match v {
        Value::Int(i) => Ok((Some(*i), *i as f64)),
        Value::Float(f) => Ok((None, *f)),
        o => Err(format!("{name}: unknown type {}", o.type_name())),
    };
    let (ai, af) = num(a)?;
    let (bi, bf) = num(b)?;
    if let (Some(x), Some(y)) = (ai, bi) {
        return Ok(Value::Int(match name {
            "add" => x.wrapping_add(y),
            "subtract" => x.wrapping_sub(y),
            "multiply" => x.wrapping_mul(y),
            "divide" if y == 0 => return Err("divide: division by 0".into()),
            "divide" => x / y,
            "modulo" if y == 0 => return Err("modulo: division by 0".into()),
            "modulo" => x % y,
            "minimum" => x.min(y),
            _ => x.max(y),
        }));
    }
    Ok(Value::Float(match name {
        "add" => af + bf,
        "subtract" => af - bf,
        "multiply" => af * bf,
        "divide" => af / bf,
        "modulo" => return Err(format!("{name}: unknown type for float")),
        "minimum" => af.min(bf),
        _ => af.max(bf),
    }))
}
