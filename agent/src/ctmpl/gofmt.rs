//! Go's `fmt` as templates reach it: how a value prints (`{{ . }}`, `%v`),
//! `print`/`println`, and `printf` with the verbs templates use (`%s %d %v %q
//! %x %X %t %f %e %g %c %%`, flags, width, precision), bad-verb and
//! missing/extra-argument notations included.

use super::value::Value;

/// A value as `{{ . }}` prints it: `<no value>` for nil, else `%v`.
pub fn print_value(v: &Value) -> String {
    match v {
        Value::Nil => "<no value>".to_string(),
        v => fmt_v(v),
    }
}

/// `%v`.
pub fn fmt_v(v: &Value) -> String {
    match v {
        Value::Nil => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => format_g(*f, None),
        Value::Number(s) | Value::Str(s) => s.clone(),
        Value::List(l) => format!("[{}]", l.iter().map(fmt_v).collect::<Vec<_>>().join(" ")),
        Value::Map(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", fmt_v(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Value::Struct(s) => format!(
            "{{{}}}",
            s.fields
                .iter()
                .map(|(_, v)| fmt_v(v))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// `fmt.Sprint`: a space between operands when neither is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        let is_str = |v: &Value| matches!(v, Value::Str(_) | Value::Number(_));
        if i > 0 && !is_str(a) && !is_str(&args[i - 1]) {
            out.push(' ');
        }
        out.push_str(&fmt_v(a));
    }
    out
}

/// `fmt.Sprintln`.
pub fn sprintln(args: &[Value]) -> String {
    let mut s = args.iter().map(fmt_v).collect::<Vec<_>>().join(" ");
    s.push('\n');
    s
}

/// strconv.FormatFloat(f, 'g', prec or -1, 64) (shortest when None).
pub fn format_g(f: f64, prec: Option<usize>) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits, as Go's -1 precision.
    let sci = match prec {
        None => format!("{f:e}"),
        Some(p) => format!("{:.*e}", p.max(1) - 1, f),
    };
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    // Go: shortest formatting switches to %e from exponent 6 on.
    let eprec = prec.map_or(6, |p| p.max(1) as i32);
    if exp < -4 || exp >= eprec {
        let mant = if prec.is_some() {
            trim_zeros(mant)
        } else {
            mant.to_string()
        };
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    let s = match prec {
        None => format!("{f}"),
        Some(p) => format!("{:.*}", (p as i32 - 1 - exp).max(0) as usize, f),
    };
    if prec.is_some() {
        trim_zeros(&s)
    } else {
        s
    }
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// strconv.Quote.
pub fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32))
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32))
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    zero: bool,
    space: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

fn bad(verb: char, v: &Value) -> String {
    match v {
        Value::Nil => format!("%!{verb}(<nil>)"),
        v => format!("%!{verb}({}={})", v.type_name(), fmt_v(v)),
    }
}

fn int_fmt(i: i64, verb: char, sp: &Spec) -> String {
    let mag = i.unsigned_abs();
    let mut digits = match verb {
        'x' => format!("{mag:x}"),
        'X' => format!("{mag:X}"),
        'o' => format!("{mag:o}"),
        'b' => format!("{mag:b}"),
        _ => mag.to_string(),
    };
    if let Some(p) = sp.prec {
        while digits.len() < p {
            digits.insert(0, '0');
        }
    }
    if sp.sharp {
        match verb {
            'x' => digits.insert_str(0, "0x"),
            'X' => digits.insert_str(0, "0X"),
            'o' => digits.insert(0, '0'),
            _ => {}
        }
    }
    let sign = if i < 0 {
        "-"
    } else if sp.plus {
        "+"
    } else if sp.space {
        " "
    } else {
        ""
    };
    format!("{sign}{digits}")
}

fn float_fmt(f: f64, verb: char, sp: &Spec) -> String {
    let s = match verb {
        'f' | 'F' => format!("{:.*}", sp.prec.unwrap_or(6), f),
        'e' | 'E' => {
            let s = format!("{:.*e}", sp.prec.unwrap_or(6), f);
            let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
            let e: i32 = e.parse().unwrap_or(0);
            let s = format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
            if verb == 'E' {
                s.to_uppercase()
            } else {
                s
            }
        }
        _ => format_g(f, sp.prec),
    };
    if sp.plus && f >= 0.0 {
        format!("+{s}")
    } else {
        s
    }
}

fn hex_bytes(b: &[u8], upper: bool) -> String {
    b.iter()
        .map(|c| {
            if upper {
                format!("{c:02X}")
            } else {
                format!("{c:02x}")
            }
        })
        .collect()
}

fn one(verb: char, v: &Value, sp: &Spec) -> String {
    match (verb, v) {
        ('T', v) => v.type_name().to_string(),
        ('U', Value::Int(i)) => format!("U+{:04X}", i),
        ('v', Value::Float(f)) => float_fmt(*f, 'g', sp),
        ('v', Value::Int(i)) => int_fmt(*i, 'd', sp),
        ('v', v) => fmt_v(v),
        ('s', Value::Str(s) | Value::Number(s)) => match sp.prec {
            Some(p) => s.chars().take(p).collect(),
            None => s.clone(),
        },
        ('s' | 'q' | 'x' | 'X' | 'd', Value::List(l)) => {
            format!(
                "[{}]",
                l.iter()
                    .map(|e| one(verb, e, sp))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
        ('s' | 'q' | 'x' | 'X' | 'd', Value::Map(m)) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, e)| format!(
                    "{}:{}",
                    one(verb, &Value::Str(k.clone()), sp),
                    one(verb, e, sp)
                ))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        ('q', Value::Str(s) | Value::Number(s)) => quote(s),
        ('q', Value::Int(i)) => match char::from_u32(*i as u32) {
            Some(c) => format!(
                "'{}'",
                &quote(&c.to_string())[1..quote(&c.to_string()).len() - 1]
            ),
            None => bad(verb, v),
        },
        ('x' | 'X', Value::Str(s) | Value::Number(s)) => hex_bytes(s.as_bytes(), verb == 'X'),
        ('d' | 'x' | 'X' | 'o' | 'b', Value::Int(i)) => int_fmt(*i, verb, sp),
        ('c', Value::Int(i)) => char::from_u32(*i as u32)
            .map(String::from)
            .unwrap_or_else(|| "\u{fffd}".into()),
        ('t', Value::Bool(b)) => b.to_string(),
        ('f' | 'F' | 'e' | 'E' | 'g' | 'G', Value::Float(f)) => float_fmt(*f, verb, sp),
        _ => bad(verb, v),
    }
}

fn pad(s: String, sp: &Spec, numeric: bool) -> String {
    let Some(w) = sp.width else { return s };
    let len = s.chars().count();
    if len >= w {
        return s;
    }
    let fill = w - len;
    if sp.minus {
        format!("{s}{}", " ".repeat(fill))
    } else if sp.zero && numeric {
        let (sign, rest) = match s.strip_prefix(['-', '+']) {
            Some(r) => (&s[..1], r),
            None => ("", s.as_str()),
        };
        format!("{sign}{}{rest}", "0".repeat(fill))
    } else {
        format!("{}{s}", " ".repeat(fill))
    }
}

/// `fmt.Sprintf(format, args...)`.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut next = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut sp = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => sp.minus = true,
                '+' => sp.plus = true,
                '#' => sp.sharp = true,
                '0' => sp.zero = true,
                ' ' => sp.space = true,
                _ => break,
            }
            chars.next();
        }
        let num = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
            let mut n = None;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                n = Some(n.unwrap_or(0) * 10 + d as usize);
                chars.next();
            }
            n
        };
        sp.width = num(&mut chars);
        if chars.peek() == Some(&'.') {
            chars.next();
            sp.prec = Some(num(&mut chars).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        let numeric = matches!(arg, Value::Int(_) | Value::Float(_));
        out.push_str(&pad(one(verb, arg, &sp), &sp, numeric));
    }
    if next < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|a| match a {
                Value::Nil => "<nil>".to_string(),
                a => format!("{}={}", a.type_name(), fmt_v(a)),
            })
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printf_as_go() {
        let s = |x: &str| Value::Str(x.into());
        assert_eq!(sprintf("%s:%d", &[s("a"), Value::Int(5)]), "a:5");
        assert_eq!(sprintf("%d", &[s("a")]), "%!d(string=a)");
        assert_eq!(sprintf("%q", &[s("a\"b\n")]), "\"a\\\"b\\n\"");
        assert_eq!(sprintf("%x|%X", &[s("hi"), Value::Int(255)]), "6869|FF");
        assert_eq!(
            sprintf("%5s|%-4d|%05d", &[s("ab"), Value::Int(7), Value::Int(-42)]),
            "   ab|7   |-0042"
        );
        assert_eq!(sprintf("%s %s", &[s("a")]), "a %!s(MISSING)");
        assert_eq!(sprintf("%s", &[s("a"), Value::Int(1)]), "a%!(EXTRA int=1)");
        assert_eq!(sprintf("%v", &[Value::Nil]), "<nil>");
        assert_eq!(sprintf("%s", &[Value::Nil]), "%!s(<nil>)");
        assert_eq!(sprintf("%.2f%%", &[Value::Float(1.23456)]), "1.23%");
        let m = Value::Map(
            [
                ("b".into(), s("2")),
                ("a".into(), Value::List(vec![s("x"), Value::Nil])),
            ]
            .into(),
        );
        assert_eq!(sprintf("%v", &[m]), "map[a:[x <nil>] b:2]");
    }

    #[test]
    fn floats_as_go() {
        assert_eq!(format_g(1e6, None), "1e+06");
        assert_eq!(format_g(100000.0, None), "100000");
        assert_eq!(format_g(1.5, None), "1.5");
        assert_eq!(format_g(0.0001, None), "0.0001");
        assert_eq!(format_g(0.00001, None), "1e-05");
        assert_eq!(format_g(123456789.0, None), "1.23456789e+08");
    }
}
