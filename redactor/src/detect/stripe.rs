//! Stripe keys (docs.stripe.com, "API keys"): secret `sk_live_`/`sk_test_`,
//! restricted `rk_live_`/`rk_test_`, webhook signing secrets `whsec_`; the body
//! is base62. Publishable keys (`pk_`) are public by design and not masked.

use super::{alnum, partial_from_anchor, prefixed_token, Ctx, Family, Verdict};

pub(crate) const FAMILY: Family = Family {
    name: "stripe-key",
    anchors: &["sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_"],
    scan: &["k_live_", "k_test_", "whsec_"],
    examine,
    partial: |c| partial_from_anchor(c, alnum),
};

fn examine(c: &Ctx<'_>) -> Verdict {
    prefixed_token(c, alnum, 20, 247)
}

#[cfg(test)]
mod tests {
    use super::super::testing::found;

    #[test]
    fn stripe_keys() {
        let t = "sk_live_51HxYzAbCdEfGhIjKlMnOpQrSt";
        assert_eq!(
            found(&format!("key {t}")),
            vec![("stripe-key", t.to_string())]
        );
        assert!(found("sk_live_short").is_empty());
    }
}
