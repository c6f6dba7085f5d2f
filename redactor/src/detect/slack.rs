//! Slack tokens (api.slack.com, "Token types"): `xoxb-` bot, `xoxp-` user,
//! `xoxa-`/`xoxr-` workspace access and refresh, `xoxe-` and `xoxe.xoxp-`
//! rotating, `xoxs-` session, `xapp-` app-level; the body is `[A-Za-z0-9-]`
//! (numeric team/user ids and a random part separated by dashes).

use super::{partial_from_anchor, prefixed, Ctx, Family, Verdict};

pub(crate) const FAMILY: Family = Family {
    name: "slack-token",
    anchors: &[
        "xoxb-",
        "xoxp-",
        "xoxa-",
        "xoxr-",
        "xoxe-",
        "xoxs-",
        "xoxe.xoxp-",
        "xapp-",
    ],
    // Four bytes each: a three-byte literal would cut every fingerprint to three.
    scan: &["xoxb", "xoxp", "xoxa", "xoxr", "xoxe", "xoxs", "xapp-"],
    examine,
    partial: |c| partial_from_anchor(c, body),
};

fn body(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

fn examine(c: &Ctx<'_>) -> Verdict {
    match prefixed(c, body, 20, 255) {
        Ok(end) if c.buf[c.after()..end].iter().any(u8::is_ascii_digit) => Verdict::Mask {
            start: c.at,
            end,
            class: body,
        },
        Ok(_) => Verdict::No,
        Err(v) => v,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::found;

    #[test]
    fn slack_tokens() {
        let t = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx";
        assert_eq!(
            found(&format!("SLACK={t}\n")),
            vec![("slack-token", t.to_string())]
        );
        assert!(found("xoxb-not-a-token-at-all-really").is_empty());
    }
}
