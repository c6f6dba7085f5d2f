//! GitLab tokens (docs.gitlab.com, "GitLab token overview", token prefixes):
//! `glpat-` personal/project/group access, `gloas-` OAuth application secret,
//! `gldt-` deploy, `glrt-` runner authentication, `glcbt-` CI/CD job, `glptt-`
//! pipeline trigger, `glft-` feed, `glimt-` incoming mail, `glagent-` agent for
//! Kubernetes, `glsoat-` SCIM OAuth, `glffct-` feature flags client. The body is
//! at least 20 characters of `[A-Za-z0-9_-]`; routable tokens (GitLab 17.x) add
//! `.`-separated parts, so `.` is part of the body but not its last byte.

use super::{base64url, partial_from_anchor, prefixed, Ctx, Family, Verdict};

pub(crate) const FAMILY: Family = Family {
    name: "gitlab-token",
    anchors: &[
        "glpat-", "gloas-", "gldt-", "glrt-", "glcbt-", "glptt-", "glft-", "glimt-", "glagent-",
        "glsoat-", "glffct-",
    ],
    // Their first four bytes: the first three (`glo`, `gla`, `gli`) hit
    // `global`, `glance`, `glibc` and cost the prefilter half its speed.
    scan: &[
        "glpa", "glpt", "gloa", "gldt", "glrt", "glcb", "glft", "glff", "glim", "glag", "glso",
    ],
    examine,
    partial: |c| partial_from_anchor(c, body),
};

fn body(b: u8) -> bool {
    base64url(b) || b == b'.'
}

fn examine(c: &Ctx<'_>) -> Verdict {
    match prefixed(c, body, 20, 300) {
        Ok(mut end) => {
            while c.buf[end - 1] == b'.' {
                end -= 1;
            }
            if end - c.after() < 20 {
                return Verdict::No;
            }
            Verdict::Mask {
                start: c.at,
                end,
                class: body,
            }
        }
        Err(v) => v,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::found;

    #[test]
    fn gitlab_tokens() {
        let t = "glpat-Xy1_z2-AbCdEfGhIjKlMn";
        assert_eq!(
            found(&format!("PRIVATE-TOKEN: {t}.")),
            vec![("gitlab-token", t.to_string())]
        );
        assert!(found("glpat-short").is_empty());
        let routable = "glpat-AbCdEfGhIjKlMnOpQrStUvWxYz0.01.0w1a2b3c4";
        assert_eq!(
            found(routable),
            vec![("gitlab-token", routable.to_string())]
        );
    }
}
