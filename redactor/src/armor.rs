//! Text every value of a kind shares is public: the armor lines of a PEM value
//! (`-----BEGIN PRIVATE KEY-----`, `-----END … -----`) are the same in every
//! key, so a piece lying inside them would mask the armor of any key in the
//! output, and a masked body would swallow the line breaks next to it. Only
//! what lies between armor lines is secret: a value holding armor contributes
//! those parts (each with every form) instead of itself.

/// The secret parts of `value`: the value itself, or, when it holds PEM armor
/// lines, each run of lines between them (trimmed of the line breaks and
/// blanks next to the armor), in order. A value of armor lines only has none.
pub(crate) fn secret_parts(value: &[u8]) -> Vec<&[u8]> {
    if memchr::memmem::find(value, b"-----BEGIN ").is_none() {
        return vec![value];
    }
    let mut parts = Vec::new();
    let mut from = 0;
    let mut at = 0;
    for line in value.split_inclusive(|&b| b == b'\n') {
        if is_armor(line) {
            push_trimmed(&mut parts, &value[from..at]);
            from = at + line.len();
        }
        at += line.len();
    }
    push_trimmed(&mut parts, &value[from..]);
    parts
}

/// `-----BEGIN LABEL-----` or `-----END LABEL-----` (RFC 7468 §3), blanks
/// around it allowed.
fn is_armor(line: &[u8]) -> bool {
    let line = line.trim_ascii();
    let Some(rest) = line
        .strip_prefix(b"-----BEGIN ")
        .or_else(|| line.strip_prefix(b"-----END "))
    else {
        return false;
    };
    rest.strip_suffix(b"-----").is_some_and(|label| {
        label
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b'-' | b'_'))
    })
}

fn push_trimmed<'a>(parts: &mut Vec<&'a [u8]>, part: &'a [u8]) {
    let part = part.trim_ascii();
    if !part.is_empty() {
        parts.push(part);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn armor_lines_are_cut_out() {
        assert_eq!(secret_parts(b"plain-value"), vec![&b"plain-value"[..]]);
        let key = b"-----BEGIN PRIVATE KEY-----\nMIIEv\nQIBAD\n-----END PRIVATE KEY-----\n";
        assert_eq!(secret_parts(key), vec![&b"MIIEv\nQIBAD"[..]]);
        let crlf = b"-----BEGIN RSA PRIVATE KEY-----\r\nProc-Type: 4,ENCRYPTED\r\n\r\nMIIE\r\n-----END RSA PRIVATE KEY-----\r\n";
        assert_eq!(
            secret_parts(crlf),
            vec![&b"Proc-Type: 4,ENCRYPTED\r\n\r\nMIIE"[..]]
        );
        // A bundle: text outside the armor stays secret, each body on its own.
        let bundle = b"Bag Attributes\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n-----BEGIN EC PRIVATE KEY-----\nBBBB\n-----END EC PRIVATE KEY-----";
        assert_eq!(
            secret_parts(bundle),
            vec![&b"Bag Attributes"[..], b"AAAA", b"BBBB"]
        );
        // Not armor: a quoted header in code is part of the value.
        let code = b"const H = \"-----BEGIN X-----\";";
        assert_eq!(secret_parts(code), vec![&code[..]]);
    }
}
