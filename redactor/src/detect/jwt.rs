//! JSON Web Tokens (RFC 7519 §3; JWS compact serialisation, RFC 7515 §7.1; JWE,
//! RFC 7516 §7.1): three (JWS) or five (JWE) base64url parts separated by `.`,
//! the first decoding to a JSON object with an `alg` member. A JSON object
//! starting `{"` always encodes as `eyJ`, the anchor.

use base64::Engine as _;

use super::{base64url, Ctx, Family, Start, Verdict};

pub(crate) const FAMILY: Family = Family {
    name: "jwt",
    anchors: &["eyJ"],
    scan: &["eyJ"],
    examine,
    partial,
};

/// A JWT's bytes: base64url and the separating dots.
fn jwt_char(b: u8) -> bool {
    base64url(b) || b == b'.'
}

const MAX_PART: usize = 16 * 1024;

fn boundary_before(c: &Ctx<'_>) -> bool {
    c.anchor_exact() && !c.before().is_some_and(jwt_char)
}

/// The header part decodes to a JSON object with `alg`.
fn header_ok(part: &[u8]) -> bool {
    let Ok(json) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part) else {
        return false;
    };
    matches!(
        serde_json::from_slice::<serde_json::Value>(&json),
        Ok(serde_json::Value::Object(o)) if o.contains_key("alg")
    )
}

fn examine(c: &Ctx<'_>) -> Verdict {
    if !boundary_before(c) {
        return Verdict::No;
    }
    let buf = c.buf;
    let mut parts = 0;
    let mut i = c.at;
    let mut ends = [0usize; 5];
    loop {
        let n = super::run_len(&buf[i..], base64url, MAX_PART + 1);
        if n > MAX_PART {
            return Verdict::No;
        }
        i += n;
        if i == buf.len() && !c.eof {
            return Verdict::More;
        }
        ends[parts] = i;
        parts += 1;
        if parts == 1 && (n < 10 || !header_ok(&buf[c.at..i])) {
            return Verdict::No;
        }
        if parts < 5 && buf.get(i) == Some(&b'.') {
            if i + 1 == buf.len() && !c.eof {
                return Verdict::More;
            }
            i += 1;
            continue;
        }
        break;
    }
    // `header.payload.signature` (the signature may be empty: `alg: none`), or
    // the five parts of a JWE; a dot right after the last part ends a sentence.
    let end = match parts {
        3 | 4 => ends[2],
        5 => ends[4],
        _ => return Verdict::No,
    };
    if ends[1] - ends[0] < 3 {
        return Verdict::No;
    }
    Verdict::Mask {
        start: c.at,
        end,
        class: jwt_char,
    }
}

fn partial(c: &Ctx<'_>) -> Option<Start> {
    boundary_before(c).then_some((c.at, jwt_char as fn(u8) -> bool))
}

#[cfg(test)]
mod tests {
    use super::super::testing::found;
    use base64::Engine as _;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn jwts_with_a_json_header() {
        let t = format!(
            "{}.{}.{}",
            b64(r#"{"alg":"HS256","typ":"JWT"}"#),
            b64(r#"{"sub":"1234567890"}"#),
            "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
        );
        assert_eq!(found(&format!("Bearer-ish {t}.")), vec![("jwt", t.clone())]);
        let unsigned = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(r#"{"a":1}"#));
        assert_eq!(
            found(&format!("{unsigned} ")),
            vec![("jwt", unsigned.clone())]
        );
        // No alg, or not JSON: not a JWT.
        let no_alg = format!("{}.{}.sig", b64(r#"{"typ":"JWT"}"#), b64("{}"));
        assert!(found(&no_alg).is_empty());
        assert!(found("eyJhbGciOiJIUz.eyJzdWIi.x").is_empty());
    }
}
