//! GitHub tokens and npm access tokens.
//!
//! GitHub (github.blog, "Behind GitHub's new authentication token formats",
//! 2021-04-05): `ghp_` (classic personal access), `gho_` (OAuth), `ghu_`
//! (user-to-server), `ghs_` (server-to-server), `ghr_` (refresh), then 30
//! base62 characters of entropy and a 6-character base62 CRC32 checksum of
//! them; fine-grained personal access tokens are `github_pat_` + 22 + `_` + 59
//! characters (no published checksum). npm (github.blog, "Announcing npm's new
//! access token format", 2021-09-23): `npm_` + the same 30 + 6 layout.

use super::{alnum, partial_from_anchor, prefixed, Ctx, Family, Verdict};

pub(crate) const FAMILY: Family = Family {
    name: "github-token",
    anchors: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
    // `b_pat_`: `git` would hit every mention of git.
    scan: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "b_pat_"],
    examine,
    partial: |c| partial_from_anchor(c, pat_char),
};

pub(crate) const NPM: Family = Family {
    name: "npm-token",
    anchors: &["npm_"],
    scan: &["npm_"],
    examine: examine_checksummed,
    partial: |c| partial_from_anchor(c, alnum),
};

fn pat_char(b: u8) -> bool {
    alnum(b) || b == b'_'
}

fn examine(c: &Ctx<'_>) -> Verdict {
    if c.anchor == b"github_pat_" {
        return match prefixed(c, pat_char, 82, 82) {
            Ok(end) => {
                let body = &c.buf[c.after()..end];
                if body[22] == b'_' && body.iter().filter(|&&b| b == b'_').count() == 1 {
                    Verdict::Mask {
                        start: c.at,
                        end,
                        class: pat_char,
                    }
                } else {
                    Verdict::No
                }
            }
            Err(v) => v,
        };
    }
    examine_checksummed(c)
}

/// Prefix + 30 base62 characters + their CRC32 in 6 base62 characters.
fn examine_checksummed(c: &Ctx<'_>) -> Verdict {
    match prefixed(c, alnum, 36, 36) {
        Ok(end) if checksum_ok(&c.buf[c.after()..end]) => Verdict::Mask {
            start: c.at,
            end,
            class: alnum,
        },
        Ok(_) => Verdict::No,
        Err(v) => v,
    }
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The last 6 characters are the base62 CRC32 of the first 30.
pub(crate) fn checksum_ok(body: &[u8]) -> bool {
    let (entropy, sum) = body.split_at(30);
    let mut n: u64 = 0;
    for &b in sum {
        let Some(d) = BASE62.iter().position(|&x| x == b) else {
            return false;
        };
        n = n * 62 + d as u64;
    }
    n == u64::from(crc32fast::hash(entropy))
}

/// The checksum characters for 30 characters of entropy (test generators).
pub fn checksum(entropy: &[u8]) -> String {
    let mut n = u64::from(crc32fast::hash(entropy));
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("ascii")
}

#[cfg(test)]
mod tests {
    use super::super::testing::found;
    use super::*;

    fn token(prefix: &str, entropy: &str) -> String {
        format!("{prefix}{entropy}{}", checksum(entropy.as_bytes()))
    }

    #[test]
    fn classic_tokens_need_a_valid_checksum() {
        let t = token("ghp_", "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123");
        assert_eq!(
            found(&format!("token={t} ok")),
            vec![("github-token", t.clone())]
        );
        let mut bad = t.clone().into_bytes();
        bad[10] = if bad[10] == b'x' { b'y' } else { b'x' };
        let bad = String::from_utf8(bad).unwrap();
        assert!(found(&bad).is_empty());
        // Too long, or glued to a word: not a token.
        assert!(found(&format!("{t}a")).is_empty());
        assert!(found(&format!("x{t}")).is_empty());
        let n = token("npm_", "Zyxwvutsrqponmlkjihgfedcba9876");
        assert_eq!(
            found(&format!("//registry/:_authToken={n}\n")),
            vec![("npm-token", n)]
        );
    }

    #[test]
    fn fine_grained_tokens_have_their_shape() {
        let t = format!("github_pat_{}_{}", "A".repeat(22), "b".repeat(59));
        assert_eq!(found(&format!("\"{t}\"")), vec![("github-token", t)]);
        assert!(found(&format!("github_pat_{}", "A".repeat(82))).is_empty());
    }
}
