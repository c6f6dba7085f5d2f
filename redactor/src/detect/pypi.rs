//! PyPI API tokens (pypi.org/help, "How can I use API tokens"; warehouse's
//! macaroon serialisation): `pypi-` then a base64url macaroon whose first bytes
//! (version 2, location field) always encode as `AgE`.

use super::{base64url, partial_from_anchor, prefixed_token, Ctx, Family, Verdict};

pub(crate) const FAMILY: Family = Family {
    name: "pypi-token",
    anchors: &["pypi-AgE"],
    scan: &["pypi-AgE"],
    examine,
    partial: |c| partial_from_anchor(c, base64url),
};

fn examine(c: &Ctx<'_>) -> Verdict {
    prefixed_token(c, base64url, 50, 4096)
}

#[cfg(test)]
mod tests {
    use super::super::testing::found;

    #[test]
    fn pypi_tokens() {
        let t = format!("pypi-AgEIcHlwaS5vcmc{}", "Ab1_-".repeat(12));
        assert_eq!(found(&format!("password = {t}\n")), vec![("pypi-token", t)]);
        assert!(found("pypi-AgEshort").is_empty());
    }
}
