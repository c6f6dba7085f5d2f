//! AWS credentials.
//!
//! Access key ids (AWS IAM User Guide, "Unique identifier prefixes"): `AKIA`
//! (long-term access key), `ASIA` (temporary, from STS), and the other
//! four-letter prefixes of IAM ids that appear beside them, then 16 characters
//! of `[A-Z2-7]`. Secret access keys are 40 characters of `[A-Za-z0-9/+]` with
//! no prefix of their own, so only the one that follows its name is caught:
//! `aws_secret_access_key = …` (the shared credentials file), the environment
//! variable `AWS_SECRET_ACCESS_KEY=…`, and `"SecretAccessKey": "…"` (the JSON
//! of `aws sts assume-role` and `aws configure export-credentials`).

use super::{alnum, Ctx, Family, Start, Verdict};

pub(crate) const KEY_ID: Family = Family {
    name: "aws-access-key-id",
    anchors: &[
        "AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AIPA", "ANPA", "ANVA", "APKA", "AROA",
    ],
    scan: &[
        "AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AIPA", "ANPA", "ANVA", "APKA", "AROA",
    ],
    examine: examine_key_id,
    partial: |c| super::partial_from_anchor(c, key_id_char),
};

pub(crate) const SECRET_KEY: Family = Family {
    name: "aws-secret-key",
    anchors: &[
        "secret_access_key",
        "SECRET_ACCESS_KEY",
        "SecretAccessKey",
        "secretAccessKey",
        "secret-access-key",
    ],
    scan: &["ccess", "CCESS"],
    examine: examine_secret,
    partial: partial_secret,
};

fn key_id_char(b: u8) -> bool {
    b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)
}

fn examine_key_id(c: &Ctx<'_>) -> Verdict {
    match super::prefixed(c, key_id_char, 16, 16) {
        Ok(end) if c.buf.get(end).is_none_or(|&b| !alnum(b)) => Verdict::Mask {
            start: c.at,
            end,
            class: key_id_char,
        },
        Ok(_) => Verdict::No,
        Err(v) => v,
    }
}

fn secret_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'/' || b == b'+'
}

fn quote_or_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'"' | b'\'')
}

/// After the name: quotes and blanks, one `:` or `=` (or `=>`), quotes and
/// blanks; where the value starts, or the verdict.
fn value_start(c: &Ctx<'_>) -> Result<usize, Verdict> {
    // `aws_secret_access_key` and `AWS_…` are the common spellings (a `_`
    // before the anchor); a name glued to letters is something else.
    if c.before().is_some_and(alnum) {
        return Err(Verdict::No);
    }
    let buf = c.buf;
    let mut i = c.after();
    let more = |_: usize| if c.eof { Verdict::No } else { Verdict::More };
    while i < buf.len() && quote_or_space(buf[i]) && i - c.after() < 8 {
        i += 1;
    }
    match buf.get(i) {
        None => return Err(more(i)),
        Some(b':' | b'=') => i += 1,
        Some(_) => return Err(Verdict::No),
    }
    if buf.get(i) == Some(&b'>') {
        i += 1;
    }
    let sep = i;
    while i < buf.len() && quote_or_space(buf[i]) && i - sep < 8 {
        i += 1;
    }
    if i == buf.len() {
        return Err(more(i));
    }
    Ok(i)
}

fn examine_secret(c: &Ctx<'_>) -> Verdict {
    let start = match value_start(c) {
        Ok(s) => s,
        Err(v) => return v,
    };
    match c.run(start, secret_char, 40, 40) {
        Ok(end) => Verdict::Mask {
            start,
            end,
            class: secret_char,
        },
        Err(v) => v,
    }
}

fn partial_secret(c: &Ctx<'_>) -> Option<Start> {
    let forced = Ctx { eof: false, ..*c };
    match value_start(&forced) {
        Ok(start) => Some((start, secret_char)),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::found;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKY";

    #[test]
    fn key_ids() {
        assert_eq!(
            found("aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"),
            vec![("aws-access-key-id", "AKIAIOSFODNN7EXAMPLE".to_string())]
        );
        assert!(found("AKIAIOSFODNN7EXAMPLEX").is_empty());
        assert!(found("AKIA1OSFODNN7EXAMPLE").is_empty());
    }

    #[test]
    fn secret_keys_after_their_name() {
        for text in [
            format!("aws_secret_access_key = {SECRET}\n"),
            format!("export AWS_SECRET_ACCESS_KEY={SECRET}"),
            format!("{{\"SecretAccessKey\": \"{SECRET}\", \"x\": 1}}"),
            format!("secret_access_key: '{SECRET}'"),
        ] {
            assert_eq!(
                found(&text),
                vec![("aws-secret-key", SECRET.to_string())],
                "{text}"
            );
        }
        assert!(found(&format!("the secret_access_key option {SECRET}")).is_empty());
        assert!(found(&format!("secret_access_key={SECRET}x")).is_empty());
    }
}
