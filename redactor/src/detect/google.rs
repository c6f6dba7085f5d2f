//! Google API keys (cloud.google.com, "Manage API keys"; the format `AIza` + 35
//! characters of `[A-Za-z0-9_-]` is what every key the console issues has).

use super::{base64url, partial_from_anchor, prefixed_token, Ctx, Family, Verdict};

pub(crate) const FAMILY: Family = Family {
    name: "google-api-key",
    anchors: &["AIza"],
    scan: &["AIza"],
    examine,
    partial: |c| partial_from_anchor(c, base64url),
};

fn examine(c: &Ctx<'_>) -> Verdict {
    prefixed_token(c, base64url, 35, 35)
}

#[cfg(test)]
mod tests {
    use super::super::testing::found;

    #[test]
    fn google_keys() {
        let t = "AIzaSyA-1234567890abcdefghijklmnopqrst_";
        assert_eq!(t.len(), 39);
        assert_eq!(
            found(&format!("key={t}&q=1")),
            vec![("google-api-key", t.to_string())]
        );
        assert!(found(&format!("{t}x")).is_empty());
    }
}
