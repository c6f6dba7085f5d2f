//! Go's `encoding/json` as consul-template's `toJSON`, `toJSONPretty` and
//! `toUnescapedJSON(Pretty)` use it: sorted map keys, `<`, `>`, `&` and
//! U+2028/U+2029 escaped (unless unescaped), `json.Number` verbatim, floats as
//! Go writes them.

use super::value::Value;

/// `json.Marshal` (`html`: escape `<>&`), indented with `indent` when given.
pub fn json(v: &Value, html: bool, indent: Option<&str>) -> String {
    let mut out = String::new();
    json_into(v, html, indent, 0, &mut out);
    out
}

fn newline(out: &mut String, indent: Option<&str>, depth: usize) {
    if let Some(ind) = indent {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(ind);
        }
    }
}

fn json_into(v: &Value, html: bool, indent: Option<&str>, depth: usize, out: &mut String) {
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&json_float(*f)),
        Value::Number(n) => out.push_str(if n.is_empty() { "0" } else { n }),
        Value::Str(s) => json_str(s, html, out),
        Value::List(l) => {
            if l.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, e) in l.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent, depth + 1);
                json_into(e, html, indent, depth + 1, out);
            }
            newline(out, indent, depth);
            out.push(']');
        }
        Value::Map(m) => {
            let entries: Vec<(&str, &Value)> = m.iter().map(|(k, v)| (k.as_str(), v)).collect();
            json_object(&entries, html, indent, depth, out);
        }
        Value::Struct(s) => {
            let entries: Vec<(&str, &Value)> = s.fields.iter().map(|(k, v)| (*k, v)).collect();
            json_object(&entries, html, indent, depth, out);
        }
    }
}

fn json_object(
    entries: &[(&str, &Value)],
    html: bool,
    indent: Option<&str>,
    depth: usize,
    out: &mut String,
) {
    if entries.is_empty() {
        out.push_str("{}");
        return;
    }
    out.push('{');
    for (i, (k, e)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        newline(out, indent, depth + 1);
        json_str(k, html, out);
        out.push(':');
        if indent.is_some() {
            out.push(' ');
        }
        json_into(e, html, indent, depth + 1, out);
    }
    newline(out, indent, depth);
    out.push('}');
}

fn json_str(s: &str, html: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '<' | '>' | '&' if html => out.push_str(&format!("\\u{:04x}", c as u32)),
            '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// encoding/json's float: `%f`-like shortest unless tiny or huge, then `%e`
/// with a one-digit exponent kept short (`1e-7`, `1e+21`).
fn json_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let e: i32 = e.parse().unwrap_or(0);
        return format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
            .replace("e-0", "e-")
            .replace("e+0", "e+");
    }
    let s = format!("{f}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    #[test]
    fn json_as_go() {
        let m = Value::Map(
            [
                ("b".to_string(), s("<a&b>")),
                ("a".to_string(), Value::Number("5432".into())),
                (
                    "c".to_string(),
                    Value::List(vec![Value::Nil, Value::Bool(true)]),
                ),
            ]
            .into(),
        );
        assert_eq!(
            json(&m, true, None),
            r#"{"a":5432,"b":"\u003ca\u0026b\u003e","c":[null,true]}"#
        );
        assert_eq!(
            json(&m, false, None),
            r#"{"a":5432,"b":"<a&b>","c":[null,true]}"#
        );
        assert_eq!(
            json(&m, true, Some("  ")),
            "{\n  \"a\": 5432,\n  \"b\": \"\\u003ca\\u0026b\\u003e\",\n  \"c\": [\n    null,\n    true\n  ]\n}"
        );
        assert_eq!(json_float(1e21), "1e+21");
        assert_eq!(json_float(2.5), "2.5");
        assert_eq!(json_float(3.0), "3");
    }
}
