//! `gopkg.in/yaml.v2` as consul-template's `toYAML` uses it: its key order,
//! plain, quoted and literal block scalars, unindented sequences in mappings,
//! and libyaml's folding of long lines.

use super::value::Value;

/// `yaml.Marshal` of gopkg.in/yaml.v2, trailing newline included.
pub fn yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Map(_) | Value::Struct(_) | Value::List(_) if !is_empty(v) => {
            yaml_block(v, 0, &mut out)
        }
        v => {
            out.push_str(&yaml_inline(v, 0));
            out.push('\n');
        }
    }
    out
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Map(m) => m.is_empty(),
        Value::List(l) => l.is_empty(),
        Value::Struct(s) => s.fields.is_empty(),
        _ => false,
    }
}

fn entries(v: &Value) -> Vec<(String, &Value)> {
    match v {
        Value::Map(m) => {
            let mut e: Vec<(String, &Value)> = m.iter().map(|(k, v)| (k.clone(), v)).collect();
            e.sort_by(|a, b| yaml_key_order(&a.0, &b.0));
            e
        }
        // yaml.v2 lower-cases struct field names.
        Value::Struct(s) => s
            .fields
            .iter()
            .map(|(k, v)| (k.to_lowercase(), v))
            .collect(),
        _ => Vec::new(),
    }
}

fn pad(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

/// A non-empty map or list as block lines at `indent`.
fn yaml_block(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::List(l) => {
            for e in l {
                pad(out, indent);
                out.push('-');
                match e {
                    Value::Map(_) | Value::Struct(_) if !is_empty(e) => {
                        // The first key shares the dash's line.
                        let mut inner = String::new();
                        yaml_block(e, indent + 2, &mut inner);
                        out.push(' ');
                        out.push_str(&inner[indent + 2..]);
                    }
                    Value::List(_) if !is_empty(e) => {
                        let mut inner = String::new();
                        yaml_block(e, indent + 2, &mut inner);
                        out.push(' ');
                        out.push_str(&inner[indent + 2..]);
                    }
                    e => {
                        out.push(' ');
                        out.push_str(&fold(&yaml_inline(e, indent + 2), indent + 2, indent + 2));
                        out.push('\n');
                    }
                }
            }
        }
        v => {
            for (k, e) in entries(v) {
                pad(out, indent);
                let key = yaml_scalar(&k, indent);
                let col = indent + key.chars().count() + 2;
                out.push_str(&key);
                out.push(':');
                match e {
                    Value::Map(_) | Value::Struct(_) if !is_empty(e) => {
                        out.push('\n');
                        yaml_block(e, indent + 2, out);
                    }
                    // yaml.v2 does not indent a sequence inside a mapping.
                    Value::List(_) if !is_empty(e) => {
                        out.push('\n');
                        yaml_block(e, indent, out);
                    }
                    e => {
                        out.push(' ');
                        out.push_str(&fold(&yaml_inline(e, indent + 2), col, indent + 2));
                        out.push('\n');
                    }
                }
            }
        }
    }
}

/// libyaml's line folding of plain and single-quoted scalars: past column 80
/// a single space between words becomes a line break and `indent` spaces.
/// `col` is where the scalar starts on its line.
fn fold(text: &str, mut col: usize, indent: usize) -> String {
    if text.starts_with(['"', '|']) || !text.contains(' ') {
        return text.to_string();
    }
    let quoted = text.starts_with('\'');
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut spaces = false;
    for (i, &c) in chars.iter().enumerate() {
        if c != ' ' {
            out.push(c);
            col += 1;
            spaces = false;
            continue;
        }
        let inside = !quoted || (i > 1 && i + 2 < chars.len());
        if inside && !spaces && col > 80 && chars.get(i + 1) != Some(&' ') {
            out.push('\n');
            pad(&mut out, indent);
            col = indent;
        } else {
            out.push(' ');
            col += 1;
        }
        spaces = true;
    }
    out
}

fn yaml_inline(v: &Value, indent: usize) -> String {
    match v {
        Value::Nil => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => yaml_float(*f),
        Value::Number(n) => match n.parse::<i64>() {
            Ok(i) => i.to_string(),
            Err(_) => match n.parse::<f64>() {
                Ok(f) => yaml_float(f),
                Err(_) => yaml_scalar(n, indent),
            },
        },
        Value::Str(s) => yaml_scalar(s, indent),
        Value::List(_) => "[]".into(),
        Value::Map(_) | Value::Struct(_) => "{}".into(),
    }
}

fn yaml_float(f: f64) -> String {
    if f.is_nan() {
        return ".NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    super::gofmt::format_g(f, None)
}

/// Whether yaml.v2 would read `s` as something other than a string.
fn resolves_non_string(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
        "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
        ".NaN", ".NAN", "<<",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let plain = s.replace('_', "");
    let digits = plain.strip_prefix(['-', '+']).unwrap_or(&plain);
    if digits.is_empty() {
        return false;
    }
    if let Some(h) = digits.strip_prefix("0x") {
        return !h.is_empty() && h.bytes().all(|c| c.is_ascii_hexdigit());
    }
    if let Some(b) = digits.strip_prefix("0b") {
        return !b.is_empty() && b.bytes().all(|c| c == b'0' || c == b'1');
    }
    if digits.bytes().all(|c| c.is_ascii_digit()) {
        return true;
    }
    // A float: digits, one dot, optional exponent.
    let first = digits.as_bytes()[0];
    (first.is_ascii_digit() || first == b'.') && digits.parse::<f64>().is_ok() || is_base60(digits)
}

fn is_base60(s: &str) -> bool {
    // yaml.v2 quotes YAML 1.1 sexagesimal numbers such as 1:20.
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() > 1
        && parts[0].bytes().all(|c| c.is_ascii_digit())
        && !parts[0].is_empty()
        && parts[1..]
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|c| c.is_ascii_digit()) || p.contains('.'))
}

/// Whether libyaml's emitter allows `s` as a plain scalar in block context.
fn plain_allowed(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    let first = b[0];
    if matches!(
        first,
        b'#' | b','
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'&'
            | b'*'
            | b'!'
            | b'|'
            | b'>'
            | b'\''
            | b'"'
            | b'%'
            | b'@'
            | b'`'
    ) {
        return false;
    }
    if matches!(first, b'-' | b'?' | b':') && (b.len() == 1 || matches!(b[1], b' ' | b'\t')) {
        return false;
    }
    if matches!(b[0], b' ' | b'\t') || matches!(b[b.len() - 1], b' ' | b'\t') {
        return false;
    }
    if s.ends_with(':') || s.contains(": ") || s.contains(" #") || s.contains(":\t") {
        return false;
    }
    !s.chars().any(|c| {
        (c.is_control() && c != '\t')
            || c == '\u{feff}'
            || c == '\u{85}'
            || c == '\u{2028}'
            || c == '\u{2029}'
    })
}

fn yaml_scalar(s: &str, indent: usize) -> String {
    if s.contains('\n') && literal_allowed(s) {
        return literal(s, indent);
    }
    if !s.contains('\n') && !resolves_non_string(s) && plain_allowed(s) {
        return s.to_string();
    }
    if !s.contains('\n') && !resolves_non_string(s) && single_allowed(s) {
        return format!("'{}'", s.replace('\'', "''"));
    }
    double(s)
}

fn single_allowed(s: &str) -> bool {
    !s.chars().any(|c| c.is_control() && c != '\t')
}

fn literal_allowed(s: &str) -> bool {
    !s.chars()
        .any(|c| (c.is_control() && c != '\n' && c != '\t') || c == '\u{feff}')
        && !s.lines().any(|l| l.ends_with(' ') || l.ends_with('\t'))
        && !s.starts_with(' ')
}

fn literal(s: &str, indent: usize) -> String {
    let trailing = s.len() - s.trim_end_matches('\n').len();
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let mut out = format!("|{chomp}");
    let body = s.trim_end_matches('\n');
    let ind = indent.max(2);
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            pad(&mut out, ind);
            out.push_str(line);
        }
    }
    for _ in 1..trailing {
        out.push('\n');
    }
    out
}

fn double(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// yaml.v2's map key order: digit runs compare as numbers, letters after
/// other characters.
fn yaml_key_order(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an
                .saturating_mul(10)
                .saturating_add(ar[ai] as i64 - '0' as i64);
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn
                .saturating_mul(10)
                .saturating_add(br[bi] as i64 - '0' as i64);
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    #[test]
    fn yaml_folds_long_lines_as_libyaml() {
        let words = "word ".repeat(20);
        let m = Value::Map([("k".to_string(), s(words.trim_end()))].into());
        let out = yaml(&m);
        let first = out.lines().next().unwrap();
        assert!(first.len() > 80 && first.len() < 90, "{out}");
        assert!(out.lines().nth(1).unwrap().starts_with("  word"), "{out}");
    }

    #[test]
    fn yaml_as_v2() {
        let m = Value::Map(
            [
                ("port".to_string(), Value::Number("5432".into())),
                ("pin".to_string(), s("0123")),
                ("flag".to_string(), s("yes")),
                ("hosts".to_string(), Value::List(vec![s("a"), s("b")])),
                (
                    "nested".to_string(),
                    Value::Map([("k".to_string(), s("v: x"))].into()),
                ),
                (
                    "pem".to_string(),
                    s("-----BEGIN X-----\nabc\n-----END X-----\n"),
                ),
                ("a10".to_string(), s("x")),
                ("a9".to_string(), s("")),
            ]
            .into(),
        );
        assert_eq!(
            yaml(&m),
            "a9: \"\"\na10: x\nflag: \"yes\"\nhosts:\n- a\n- b\nnested:\n  k: 'v: x'\npem: |\n  -----BEGIN X-----\n  abc\n  -----END X-----\npin: \"0123\"\nport: 5432\n"
        );
    }
}
